# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Downloads over http(s) for ``volume`` ``import_from``: streamed into a temporary file while hashed.

The request goes through ``ansible.module_utils.urls.open_url``, so proxies (``http_proxy``,
``https_proxy``, ``no_proxy``), certificate validation and credentials in the URL behave as in
``ansible.builtin.get_url``. The image never sits in memory: it arrives in ``CHUNK``s that are
hashed and written to a file made by ``temporary_file`` (in ``TMPDIR``, default ``/tmp``),
which removes it again when its ``with`` block ends, whether the caller succeeded or failed.

Credentials in a URL never reach a message: everything said about a URL goes through
``redact_url``, and ``url_secrets`` gives the module the values to hide (``no_log_values``)
in what Ansible echoes itself (``invocation``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import ssl
import tempfile
import time
from urllib.error import HTTPError, URLError
from urllib.parse import unquote

from ansible.module_utils import urls

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError

CHUNK = 1024 * 1024
# A progress line per 10 % of a download whose size the server announced, else per 64 MiB.
PROGRESS_PERCENT = 10
PROGRESS_BYTES = 64 * 1024 ** 2
TEMP_PREFIX = 'virtfleet-import-'
MASK = '********'
SCHEMES = ('http', 'https')


def is_url(value):
    """Whether ``value`` is an http:// or https:// URL (any case of the scheme)."""
    scheme, sep, _rest = str(value).partition('://')
    return bool(sep) and scheme.lower() in SCHEMES


def _split_netloc(url):
    """``(scheme://, netloc, rest)`` of ``url``; the netloc ends at the first ``/``, ``?`` or ``#``."""
    scheme, sep, rest = url.partition('://')
    ends = [index for index in (rest.find(char) for char in '/?#') if index >= 0]
    end = min(ends) if ends else len(rest)
    return scheme + sep, rest[:end], rest[end:]


def redact_url(url):
    """``url`` with any ``user:password@`` (or ``token@``) replaced by ``********@``."""
    head, netloc, rest = _split_netloc(str(url))
    if not head or '@' not in netloc:
        return str(url)
    return head + MASK + '@' + netloc.rpartition('@')[2] + rest


def url_secrets(url):
    """The secrets of ``url`` for ``no_log_values``: its password (or its user name when it has no password,
    as tokens are often given), as written and percent-decoded; an empty list when it has no credentials."""
    _head, netloc, _rest = _split_netloc(str(url))
    if '@' not in netloc:
        return []
    userinfo = netloc.rpartition('@')[0]
    user, sep, password = userinfo.partition(':')
    secret = password if sep else user
    return sorted(set(value for value in (secret, unquote(secret)) if value))


def describe_error(exc, timeout):
    """What went wrong, in words, for an exception of ``open_url`` or of reading its answer."""
    if isinstance(exc, HTTPError):
        return 'the server answered HTTP %d %s' % (exc.code, exc.reason or '')
    reason = exc.reason if isinstance(exc, URLError) else exc
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return 'no answer within %s s (download_timeout)' % timeout
    if isinstance(reason, ConnectionRefusedError):
        return 'connection refused (nothing listens on that port)'
    if isinstance(reason, socket.gaierror):
        return 'the host name cannot be resolved (%s)' % (reason.strerror or reason)
    if isinstance(reason, (ssl.SSLCertVerificationError, urls.SSLValidationError)):
        return 'its TLS certificate cannot be verified (%s); fix the certificate or the CA bundle, or set ' \
               'validate_certs: false if you trust the network' % (getattr(reason, 'verify_message', None) or reason)
    if isinstance(reason, ssl.SSLError):
        return 'the TLS handshake failed (%s); is it an https:// server?' % (reason.strerror or reason)
    if isinstance(reason, http.client.IncompleteRead):
        return 'the connection closed after %d bytes, %d more were expected' % (
            len(reason.partial), reason.expected or 0)
    if isinstance(reason, http.client.HTTPException):
        return 'the answer is not valid HTTP (%s: %s)' % (type(reason).__name__, reason)
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


class Progress:
    """Progress lines for ``log``: per ``PROGRESS_PERCENT`` % when ``total`` is known, else per ``PROGRESS_BYTES``."""

    def __init__(self, log, what, total, clock=time.monotonic):
        self.log = log or (lambda _msg: None)
        self.what = what
        self.total = total
        self.clock = clock
        self.start = clock()
        self.step = max(1, total * PROGRESS_PERCENT // 100) if total else PROGRESS_BYTES
        self.next = self.step
        self.lines = 0

    def update(self, received):
        if received < self.next:
            return
        while self.next <= received:
            self.next += self.step
        seconds = self.clock() - self.start
        if self.total:
            done = ' of %d bytes (%d %%)' % (self.total, received * 100 // self.total)
        else:
            done = ' bytes'
        self.log('%s: %d%s after %.1f s, %s' % (self.what, received, done, seconds, rate(received, seconds)))
        self.lines += 1


def rate(size, seconds):
    per_second = size / seconds if seconds > 0 else 0
    return '%.1f MiB/s' % (per_second / 1024 ** 2)


class Download:
    """A finished download: the temporary ``path``, ``size`` in bytes, ``seconds`` and the ``hexdigest``."""

    def __init__(self, url, path, size, seconds, hexdigest):
        self.url = url
        self.path = path
        self.size = size
        self.seconds = seconds
        self.hexdigest = hexdigest

    def result(self):
        """The ``download`` result field: the URL (redacted), bytes, seconds and bytes per second."""
        return {'url': redact_url(self.url), 'bytes': self.size, 'seconds': round(self.seconds, 3),
                'bytes_per_second': int(self.size / self.seconds) if self.seconds > 0 else self.size}


@contextlib.contextmanager
def temporary_file(directory=None):
    """``(file object, path)`` of a new temporary file for a download, removed when the ``with`` block ends,
    however it ends. It is made in ``directory`` (default: ``tempfile``'s, that is ``TMPDIR`` or ``/tmp``),
    readable by its owner only."""
    handle, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix='.part', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as out:
            yield out, path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def fetch(url, out, path, algorithm, timeout=30, validate_certs=True, log=None, opener=None):
    """Download ``url`` into the open file ``out`` (at ``path``), hashing it with ``algorithm``: the ``Download``.

    ``timeout`` bounds the connection and each read (not the whole download). ``log(line)`` gets a
    progress line (``Progress``) and a final one with the size, time and rate. Failures raise
    ``BackendError`` with a message that names the URL (redacted) and what went wrong;
    ``details['stage']`` is ``'connect'``, ``'read'`` or ``'write'``. ``opener`` replaces ``open_url`` (tests).
    """
    shown = redact_url(url)
    opener = opener or urls.open_url
    started = time.monotonic()
    try:
        response = opener(url, method='GET', timeout=timeout, validate_certs=validate_certs, decompress=False,
                          follow_redirects='safe')
    except (HTTPError, URLError, urls.ConnectionError, OSError, http.client.HTTPException, ValueError) as exc:
        if isinstance(exc, HTTPError):
            exc.close()
        raise BackendError('cannot download %s: %s' % (shown, describe_error(exc, timeout)), stage='connect')
    digest = hashlib.new(algorithm)
    received = 0
    with contextlib.closing(response):
        headers = response.headers
        length = headers.get('Content-Length')
        # the announced length is that of the bytes sent, which are the image unless they were encoded
        expected = int(length) if length and length.isdigit() and \
            headers.get('Content-Encoding', 'identity').lower() == 'identity' else None
        progress = Progress(log, 'downloading %s' % shown, expected)
        progress.log('downloading %s (%s) to %s' % (shown, '%d bytes' % expected if expected is not None
                                                    else 'size not announced', path))
        while True:
            try:
                chunk = response.read(CHUNK)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                raise BackendError('cannot download %s: reading failed after %d bytes: %s'
                                   % (shown, received, describe_error(exc, timeout)), stage='read')
            if not chunk:
                break
            digest.update(chunk)
            _write(out, chunk, shown, path)
            received += len(chunk)
            progress.update(received)
        if expected is not None and received != expected:
            raise BackendError('cannot download %s: the connection closed after %d of the %d bytes the server announced'
                               % (shown, received, expected), stage='read')
    _write(out, None, shown, path)
    seconds = time.monotonic() - started
    progress.log('downloaded %s: %d bytes in %.1f s, %s' % (shown, received, seconds, rate(received, seconds)))
    return Download(url, path, received, seconds, digest.hexdigest())


def _write(out, chunk, shown, path):
    """Write ``chunk`` to ``out`` (``None``: flush it)."""
    try:
        if chunk is None:
            out.flush()
        else:
            out.write(chunk)
    except OSError as exc:
        raise BackendError('cannot write the download of %s to %s on the host that runs the module: %s; set TMPDIR '
                           '(environment keyword of the task) to a directory with room for the image'
                           % (shown, path, exc.strerror or exc), stage='write')

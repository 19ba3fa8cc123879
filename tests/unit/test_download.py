"""The http(s) download of volume import_from: URL redaction, error messages, progress lines, the temporary file."""
from __future__ import annotations

import hashlib
import http.client
import io
import os
import socket
import ssl
from email.message import Message
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils._clients import download as dl
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError

MIB = 1024 ** 2


@pytest.mark.parametrize('url,shown', [
    ('https://user:pw@host/a.qcow2', 'https://********@host/a.qcow2'),
    ('http://token@host:8080/a?x=1', 'http://********@host:8080/a?x=1'),
    ('http://u:p@ss@host/a', 'http://********@host/a'),           # an unencoded @ in the password
    ('https://u:pw@host/a@b', 'https://********@host/a@b'),       # credentials and an @ in the path
    ('http://host/a@b?c=d@e#f@g', 'http://host/a@b?c=d@e#f@g'),   # an @ after the host is no credential
    ('http://host', 'http://host'),
    ('/srv/images/a@b.qcow2', '/srv/images/a@b.qcow2'),
])
def test_redact_url(url, shown):
    assert dl.redact_url(url) == shown


def test_url_secrets_are_the_password_or_the_token():
    assert dl.url_secrets('https://user:s%40cret@host/a') == ['s%40cret', 's@cret']
    assert dl.url_secrets('https://tok3n@host/a') == ['tok3n']
    assert dl.url_secrets('https://host/a@b') == [] and dl.url_secrets('/a/b') == []


def test_is_url():
    assert dl.is_url('http://h/a') and dl.is_url('HTTPS://h/a')
    assert not dl.is_url('ftp://h/a') and not dl.is_url('/srv/http://x') and not dl.is_url('a.qcow2')


def _http_error(code, reason):
    return HTTPError('http://h/a', code, reason, Message(), io.BytesIO(b''))


@pytest.mark.parametrize('exc,words', [
    (_http_error(404, 'Not Found'), 'the server answered HTTP 404 Not Found'),
    (_http_error(500, 'Internal Server Error'), 'HTTP 500 Internal Server Error'),
    (URLError(ConnectionRefusedError(111, 'Connection refused')), 'connection refused'),
    (URLError(socket.timeout('timed out')), 'no answer within 7 s (download_timeout)'),
    (TimeoutError('timed out'), 'no answer within 7 s (download_timeout)'),
    (URLError(socket.gaierror(-2, 'Name or service not known')), 'cannot be resolved (Name or service not known)'),
    (URLError(ssl.SSLCertVerificationError(1, 'certificate verify failed')), 'validate_certs: false'),
    (URLError(ssl.SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number')), 'the TLS handshake failed'),
    (http.client.IncompleteRead(b'abc', 5), 'closed after 3 bytes, 5 more were expected'),
    (http.client.BadStatusLine('SSH-2.0'), 'not valid HTTP (BadStatusLine'),
    (ConnectionResetError(104, 'Connection reset by peer'), 'Connection reset by peer'),
])
def test_describe_error(exc, words):
    text = dl.describe_error(exc, 7)
    assert words in text and not any(raw in text for raw in ('[Errno', 'urlopen error', 'HTTP Error')), text


def test_progress_per_tenth_of_an_announced_size_else_per_64_mib():
    lines = []
    clock = iter(range(100)).__next__
    progress = dl.Progress(lines.append, 'downloading u', 100 * MIB, clock=clock)
    for received in range(0, 100 * MIB + 1, MIB):
        progress.update(received)
    assert progress.lines == 10 and '(10 %)' in lines[0] and '(100 %)' in lines[-1], lines
    assert lines[0] == 'downloading u: 10485760 of 104857600 bytes (10 %) after 1.0 s, 10.0 MiB/s', lines
    lines = []
    progress = dl.Progress(lines.append, 'downloading u', None, clock=clock)
    for received in range(0, 200 * MIB, 3 * MIB):
        progress.update(received)
    assert progress.lines == 3 and lines[0].startswith('downloading u: 69206016 bytes after 1.0 s, '), lines


class Answer:
    """What open_url returns: ``headers`` and ``read(n)``; ``fail_after`` bytes, reading raises ``error``."""

    def __init__(self, body, headers=None, fail_after=None, error=None):
        self.body = io.BytesIO(body)
        self.headers = Message()
        for key, value in (headers if headers is not None else {'Content-Length': str(len(body))}).items():
            self.headers[key] = value
        self.fail_after = fail_after
        self.error = error
        self.closed = False

    def read(self, size):
        if self.fail_after is not None and self.body.tell() >= self.fail_after:
            raise self.error
        return self.body.read(size if self.fail_after is None else min(size, self.fail_after - self.body.tell()))

    def close(self):
        self.closed = True


def _fetch(tmp_path, opener, url='https://user:pw@h/a.img', log=None):
    with dl.temporary_file(str(tmp_path)) as (out, path):
        return dl.fetch(url, out, path, 'sha256', timeout=7, log=log, opener=opener)


def test_fetch_streams_hashes_and_logs_and_the_file_goes_away(tmp_path):
    body = os.urandom(3 * dl.CHUNK + 5)
    calls, lines, answers = [], [], []

    def opener(url, **kwargs):
        calls.append((url, kwargs))
        answers.append(Answer(body))
        return answers[-1]
    with dl.temporary_file(str(tmp_path)) as (out, path):
        fetched = dl.fetch('https://user:pw@h/a.img', out, path, 'sha256', timeout=7, log=lines.append,
                           opener=opener)
        with open(path, 'rb') as handle:
            assert handle.read() == body
        assert os.path.basename(path).startswith(dl.TEMP_PREFIX)
    assert os.listdir(str(tmp_path)) == [] and answers[0].closed
    assert fetched.hexdigest == hashlib.sha256(body).hexdigest() and fetched.size == len(body)
    assert calls[0][0] == 'https://user:pw@h/a.img'   # open_url takes the credentials out itself
    assert calls[0][1]['timeout'] == 7 and calls[0][1]['validate_certs'] is True
    result = fetched.result()
    assert result['url'] == 'https://********@h/a.img' and result['bytes'] == len(body)
    assert set(result) == {'url', 'bytes', 'seconds', 'bytes_per_second'}
    assert lines[0].startswith('downloading https://********@h/a.img (%d bytes) to ' % len(body))
    assert lines[-1].startswith('downloaded https://********@h/a.img: %d bytes in ' % len(body))
    assert not any('pw' in line for line in lines)


def test_the_temporary_file_goes_away_on_failure_too(tmp_path):
    with pytest.raises(RuntimeError):
        with dl.temporary_file(str(tmp_path)) as (out, _path):
            out.write(b'partial')
            raise RuntimeError('boom')
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize('answer,error,stage,words', [
    (None, _http_error(404, 'Not Found'), 'connect', 'HTTP 404 Not Found'),
    (None, URLError(ConnectionRefusedError(111, 'Connection refused')), 'connect', 'connection refused'),
    (Answer(b'x' * 10, {'Content-Length': '20'}), None, 'read', 'closed after 10 of the 20 bytes'),
    (Answer(b'x' * 10, fail_after=4, error=TimeoutError('timed out')), None, 'read',
     'reading failed after 4 bytes: no answer within 7 s'),
])
def test_fetch_failures_name_the_url_without_its_credentials(tmp_path, answer, error, stage, words):
    def opener(_url, **_kwargs):
        if error is not None:
            raise error
        return answer
    with pytest.raises(BackendError) as err:
        _fetch(tmp_path, opener)
    assert err.value.msg.startswith('cannot download https://********@h/a.img: ') and words in err.value.msg, \
        err.value.msg
    assert 'pw' not in err.value.msg and err.value.details['stage'] == stage
    assert os.listdir(str(tmp_path)) == []


def test_a_body_without_a_length_is_read_to_its_end(tmp_path):
    fetched = _fetch(tmp_path, lambda _url, **_kwargs: Answer(b'abc' * 1000, {}))
    assert fetched.size == 3000


def test_a_write_failure_says_where_and_what_to_do(tmp_path):
    class Full(io.BytesIO):
        def write(self, _data):
            raise OSError(28, 'No space left on device')
    with pytest.raises(BackendError) as err:
        dl.fetch('http://h/a', Full(), '/tmp/x.part', 'sha256', opener=lambda _url, **_kwargs: Answer(b'abc'))
    assert 'No space left on device' in err.value.msg and 'TMPDIR' in err.value.msg
    assert err.value.details['stage'] == 'write'

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backend-neutral specs of storage pools and volumes.

User input becomes a *partial* spec (``None``: not given, keep the actual
value); ``merge_pool`` completes it with the actual spec or the defaults of a
new pool and validates it per pool type.  Volume capacities are bytes.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from ansible_collections.virtfleet.virt.plugins.module_utils import _spec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients.download import is_url, redact_url
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Step
from ansible_collections.virtfleet.virt.plugins.module_utils._units import parse_size

POOL_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}\Z')
VOLUME_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}\Z')

POOL_STATES = ('active', 'inactive')
VOLUME_FORMATS = ('raw', 'qcow2')
# Pool types that keep volumes as files (and so can hold qcow2 images).
FILE_POOL_TYPES = ('dir', 'fs', 'netfs')
CHECKSUM_ALGORITHMS = ('sha256', 'sha384', 'sha512')
# Seconds to wait for an import_from URL to connect and for each read, unless download_timeout says otherwise.
DOWNLOAD_TIMEOUT = 30
URL_SCHEME_RE = re.compile(r'^([A-Za-z][A-Za-z0-9+.-]*)://')

# Per pool type: the source keys it takes, those it requires, the formats it knows,
# whether it has a target path, and defaults of a new pool.
POOL_TYPES = {
    'dir': dict(source=(), required=(), path='required'),
    'fs': dict(source=('devices', 'format'), required=('devices',), path='required',
               formats=('auto', 'ext2', 'ext3', 'ext4', 'ufs', 'iso9660', 'udf', 'gfs', 'gfs2',
                        'vfat', 'hfs+', 'xfs', 'ocfs2', 'vmfs'),
               one=('devices',)),
    'netfs': dict(source=('hosts', 'dir', 'format'), required=('hosts', 'dir'), path='required',
                  formats=('auto', 'nfs', 'glusterfs', 'cifs'), one=('hosts',)),
    'logical': dict(source=('devices', 'name', 'format'), required=(), path='default',
                    formats=('lvm2',)),
    'disk': dict(source=('devices', 'format'), required=('devices',), path='default',
                 formats=('unknown', 'dos', 'dvh', 'gpt', 'mac', 'bsd', 'pc98', 'sun', 'lvm2'),
                 one=('devices',)),
    'iscsi': dict(source=('hosts', 'iqn', 'initiator', 'auth'), required=('hosts', 'iqn'), path='default',
                  one=('hosts',)),
    'rbd': dict(source=('hosts', 'name', 'auth'), required=('hosts', 'name'), path='none'),
}
POOL_SOURCE_KEYS = ('devices', 'hosts', 'dir', 'name', 'format', 'iqn', 'initiator', 'auth')
POOL_FIELDS = ('type', 'path', 'source', 'autostart')
# Pool types whose build formats a device (and so can destroy data).
FORMATTING_BUILD_TYPES = ('fs', 'disk', 'logical')
AUTH_TYPES = {'iscsi': 'chap', 'rbd': 'ceph'}


def validate_name(name, param='name', kind='pool'):
    regex = POOL_NAME_RE if kind == 'pool' else VOLUME_NAME_RE
    limit = 64 if kind == 'pool' else 255
    if not isinstance(name, str) or not regex.match(name):
        raise SpecError(param, '%r is not a valid %s name: use 1 to %d letters, digits and _.+- '
                               'starting with a letter or digit' % (name, kind, limit))
    return name


# -- pools -------------------------------------------------------------------------

def _norm_path(value, param):
    if value is None:
        return None
    if not os.path.isabs(value):
        raise SpecError(param, '%r must be an absolute path' % value)
    return os.path.normpath(value)


def _host(value, param):
    """``name`` or ``name:port`` (``[v6]:port``) -> normalized ``name[:port]``."""
    text = str(value).strip()
    match = re.match(r'^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$', text) or re.match(r'^([^:\s]+)(?::(\d+))?$', text)
    if not match:
        raise SpecError(param, '%r is not a host name or address (with an optional :port)' % (value,))
    name, port = match.group(1), match.group(2)
    if port is not None and not 0 < int(port) < 65536:
        raise SpecError(param, 'port %s of %r is out of range' % (port, value))
    return join_host(name, int(port) if port else None)


def join_host(name, port):
    if port is None:
        return name
    return ('[%s]:%d' if ':' in name else '%s:%d') % (name, port)


def split_host(value):
    match = re.match(r'^\[(.+)\]:(\d+)$', value) or re.match(r'^([^:]+):(\d+)$', value)
    if match:
        return match.group(1), int(match.group(2))
    return value, None


def pool_partial_from_params(params):
    """The pool options of a module run as a partial spec (``None``: keep)."""
    raw = params.get('source')
    source = None
    if raw is not None:
        source = {}
        for key in POOL_SOURCE_KEYS:
            value = raw.get(key)
            if value is None:
                continue
            if key == 'devices':
                value = [_norm_path(v, 'source.devices') for v in value]
            elif key == 'hosts':
                value = [_host(v, 'source.hosts') for v in value]
            elif key == 'dir':
                value = _norm_path(value, 'source.dir')
            elif key == 'auth':
                value = dict((k, v) for k, v in value.items() if v is not None)
                if not value.get('username') or not (value.get('secret_uuid') or value.get('secret_usage')):
                    raise SpecError('source.auth', 'needs username and one of secret_uuid or secret_usage')
                if value.get('secret_uuid') and value.get('secret_usage'):
                    raise SpecError('source.auth', 'give secret_uuid or secret_usage, not both')
            source[key] = value
    return {
        'type': params.get('type'),
        'path': _norm_path(params.get('path'), 'path'),
        'source': source,
        'autostart': params.get('autostart'),
    }


def merge_pool(name, partial, actual_spec, build=False):
    """The complete desired pool spec: ``partial`` over ``actual_spec`` (or a new pool's defaults)."""
    old = actual_spec or {}
    kind = partial.get('type') or old.get('type')
    if actual_spec is not None and partial.get('type') and partial['type'] != old['type']:
        raise SpecError('type', 'storage pool %s is a %s pool; the type of an existing pool cannot change: '
                                'remove it first (state: absent) or use another name' % (name, old['type']))
    if not kind:
        raise SpecError('type', 'is required to define the new storage pool %s (one of: %s)'
                        % (name, ', '.join(sorted(POOL_TYPES))))
    rule = POOL_TYPES[kind]
    given = partial.get('source') or {}
    for key in given:
        if key not in rule['source']:
            raise SpecError('source.%s' % key, 'does not apply to %s pools (they take: %s)'
                            % (kind, ', '.join('source.' + k for k in rule['source']) or 'no source options'))
    source = dict(old.get('source') or {})
    source.update(given)
    if actual_spec is None:
        _new_pool_defaults(name, kind, source, build)
    for key in rule['required']:
        if not source.get(key):
            raise SpecError('source.%s' % key, 'is required for %s pools' % kind)
    for key in rule.get('one', ()):
        if key in source and len(source[key]) != 1:
            raise SpecError('source.%s' % key, '%s pools take exactly one, got %d' % (kind, len(source[key])))
    formats = rule.get('formats')
    if formats and source.get('format') is not None and source['format'] not in formats:
        raise SpecError('source.format', '%r is not a format of %s pools: use one of %s'
                        % (source['format'], kind, ', '.join(formats)))
    if 'auth' in source:
        source['auth'] = dict(source['auth'], type=AUTH_TYPES[kind])
    path = partial.get('path') or old.get('path')
    if kind == 'logical':
        # libvirt sets a logical pool's target path to /dev/<volume group> whatever the definition says
        path = _default_path(kind, source)
        if partial.get('path') and partial['path'] != path:
            raise SpecError('path', 'the target path of a logical pool is /dev/<volume group>, here %s (libvirt '
                                    'sets it so whatever is asked), not %s: leave path out or give %s; to use '
                                    'another volume group, name it in source.name' % (path, partial['path'], path))
    elif rule['path'] == 'none':
        if partial.get('path'):
            raise SpecError('path', '%s pools have no target path; leave path out' % kind)
        path = None
    elif not path:
        if rule['path'] == 'required':
            raise SpecError('path', 'is required for %s pools (the directory that holds the volumes%s)'
                            % (kind, '' if kind == 'dir' else ', where the pool is mounted'))
        path = _default_path(kind, source)
    autostart = partial.get('autostart')
    if autostart is None:
        autostart = bool(old.get('autostart', False))
    return {'type': kind, 'path': path, 'source': source, 'autostart': autostart}


def _new_pool_defaults(name, kind, source, build):
    if kind == 'fs':
        source.setdefault('format', 'ext4' if build else 'auto')
    elif kind == 'netfs':
        source.setdefault('format', 'auto')
    elif kind == 'logical':
        source.setdefault('name', name)
        source.setdefault('format', 'lvm2')
    elif kind == 'disk':
        source.setdefault('format', 'dos' if build else 'unknown')


def _default_path(kind, source):
    if kind == 'logical':
        return '/dev/' + source['name']
    if kind == 'disk':
        return '/dev'
    return '/dev/disk/by-path'


def pool_changed_fields(before, after):
    return _spec.changed_fields(POOL_FIELDS, before, after)


def pool_steps(current, target):
    """Steps from run state ``current`` to ``target`` (active or inactive)."""
    if target is None or current == target:
        return []
    if target == 'active':
        return [Step('start', 'active')]
    return [Step('stop', 'inactive')]


# -- volumes ----------------------------------------------------------------------

def parse_checksum(value, param='checksum'):
    """``algorithm:hex`` -> ``(algorithm, hex)``."""
    match = re.match(r'^([A-Za-z0-9]+):([0-9A-Fa-f]+)$', (value or '').strip())
    if not match or match.group(1).lower() not in CHECKSUM_ALGORITHMS:
        raise SpecError(param, 'expected "<algorithm>:<hex digest>" with algorithm one of %s, for example '
                               '"sha256:9f86d0..."' % ', '.join(CHECKSUM_ALGORITHMS))
    algorithm, digest = match.group(1).lower(), match.group(2).lower()
    expected = {'sha256': 64, 'sha384': 96, 'sha512': 128}[algorithm]
    if len(digest) != expected:
        raise SpecError(param, 'a %s digest has %d hex digits, got %d' % (algorithm, expected, len(digest)))
    return algorithm, digest


def import_source(value, param='import_from'):
    """``import_from`` as given: an http(s) URL (checked, kept as written) or a file path (expanded as
    Ansible expands ``type: path`` options: ``~`` and ``$VARS``; a URL is left alone)."""
    text = str(value)
    scheme = URL_SCHEME_RE.match(text)
    if not scheme:
        return os.path.expanduser(os.path.expandvars(text))
    shown = redact_url(text)
    if not is_url(text):
        raise SpecError(param, '%s: the %s:// scheme is not supported; give an http:// or https:// URL or a file on '
                               'the host that runs the module' % (shown, scheme.group(1)))
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7f for char in text):
        raise SpecError(param, '%r contains white space or a control character; percent-encode it (%%20 for a space)'
                        % shown)
    try:
        parts = urlsplit(text)
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise SpecError(param, '%s is not a valid URL: %s' % (shown, exc))
    if not host:
        raise SpecError(param, '%s has no host name: use http(s)://HOST[:PORT]/PATH' % shown)
    return text


def split_volume_ref(value, default_pool, param):
    """``name`` or ``pool/name`` -> ``(pool, name)``."""
    pool, _sep, name = value.rpartition('/') if '/' in value else (default_pool, '', value)
    validate_name(pool, param, 'pool')
    validate_name(name, param, 'volume')
    return pool, name


def volume_ref(pool, name, default_pool):
    return name if pool == default_pool else '%s/%s' % (pool, name)


def volume_partial_from_params(params):
    """The volume options of a module run, validated (``None``: not given)."""
    sources = [key for key in ('backing_volume', 'clone_from', 'import_from') if params.get(key)]
    if len(sources) > 1:
        raise SpecError(sources[1], 'cannot be combined with %s: a volume is an overlay, a clone or an '
                                    'import, not several' % sources[0])
    partial = {
        'format': params.get('format'),
        'capacity': parse_size(params['capacity'], 'capacity') if params.get('capacity') is not None else None,
        'allow_shrink': bool(params.get('allow_shrink')),
    }
    pool = params['pool']
    if params.get('backing_volume'):
        partial['backing'] = split_volume_ref(params['backing_volume'], pool, 'backing_volume')
    if params.get('clone_from'):
        partial['clone'] = split_volume_ref(params['clone_from'], pool, 'clone_from')
    timeout = params.get('download_timeout')
    if timeout is not None and timeout <= 0:
        raise SpecError('download_timeout', 'must be more than 0 seconds, got %s' % (timeout,))
    if params.get('import_from'):
        source = import_source(params['import_from'])
        if not params.get('checksum'):
            raise SpecError('checksum', 'is required with import_from, for example "sha256:<hex digest of the image>" '
                                        '(%s)' % ('the checksum its publisher lists, as in SHA256SUMS' if is_url(source)
                                                  else 'sha256sum FILE prints it'))
        partial['import'] = (source, parse_checksum(params['checksum']))
        if is_url(source):
            partial['download'] = {'timeout': timeout or DOWNLOAD_TIMEOUT,
                                   'validate_certs': params.get('validate_certs') is not False}
    elif params.get('checksum'):
        raise SpecError('checksum', 'applies only with import_from')
    return partial


def round_capacity(capacity, fmt):
    """qcow2 images have a virtual size in whole 512-byte sectors: round up as qemu-img does."""
    if fmt == 'qcow2' and capacity % 512:
        return capacity + 512 - capacity % 512
    return capacity


def human_size(size):
    for unit, factor in (('TiB', 1024 ** 4), ('GiB', 1024 ** 3), ('MiB', 1024 ** 2), ('KiB', 1024)):
        if size >= factor and size % factor == 0:
            return '%d %s' % (size // factor, unit)
    return '%d bytes' % size

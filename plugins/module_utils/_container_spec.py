# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend-neutral container spec: validation, normalization and merging.

Every option has one canonical form, the same whether it comes from the user
or is read back from the container engine, so that comparing the two tells
exactly what the user wants changed:

``ports``
    ``"HOST_IP:HOST_PORT:CONTAINER_PORT/PROTOCOL"``, one per port (ranges are
    expanded), IPv6 addresses in brackets, ``0.0.0.0`` for "every address",
    an empty host port for "any free port" (matched by whatever port the
    engine picked), sorted.
``volumes``
    ``"SOURCE:DESTINATION"`` or ``"SOURCE:DESTINATION:ro"``; paths normalized,
    sorted by destination.
``networks``
    sorted network names, or ``["host"]`` / ``["none"]``.
``restart_policy``
    ``no``, ``always``, ``unless-stopped``, ``on-failure`` or ``on-failure:N``.
``memory``
    whole MiB (``None``: no limit); ``cpus`` a float rounded to 3 decimals.
``healthcheck``
    ``None`` (the image's, or none), ``{'test': ['NONE']}`` (disabled), or ``{'test': ['CMD' or
    'CMD-SHELL', ...], 'interval', 'timeout', 'start_period'`` (durations as Go prints them, such as
    ``'30s'``, ``'1m30s'``, ``'500ms'``), ``'retries'}`` (``_container_health``).

A *partial* spec holds only what the user asked for; ``merge`` fills the rest
from the container as it is (or from defaults for a new one).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_health, _spec
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._units import size_mib

NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z')
VOLUME_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*\Z')
NETWORK_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*\Z')
PROTOCOLS = ('tcp', 'udp', 'sctp')
RESTART_POLICIES = ('no', 'always', 'unless-stopped', 'on-failure')
NETWORK_MODES = ('host', 'none')
MIN_MEMORY_MIB = 6  # podman refuses less

# Fields of the normalized spec, in the order they are shown.
FIELDS = ('image', 'image_id', 'command', 'env', 'ports', 'volumes', 'networks', 'restart_policy',
          'labels', 'memory', 'cpus', 'pod', 'healthcheck')

DEFAULTS = {
    'image': None,
    'image_id': None,
    'command': None,      # the image's default
    'env': {},
    'ports': [],
    'volumes': [],
    'networks': None,     # the engine's default network
    'restart_policy': 'no',
    'labels': {},
    'memory': None,
    'cpus': None,
    'pod': None,          # in no pod
    'healthcheck': None,  # the image's (or none)
}


def validate_name(name, param='name'):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError(param, '%r is not a valid container name: use 1 to 128 characters, letters, digits and '
                               '"_.-", starting with a letter or digit' % (name,))
    return name


# -- ports ---------------------------------------------------------------------

def _port_range(text, param, what):
    match = re.match(r'^(\d+)(?:-(\d+))?$', text)
    if not match:
        raise SpecError(param, '%r is not a %s port or range such as 8080 or 8080-8089' % (text, what))
    first = int(match.group(1))
    last = int(match.group(2) or first)
    for port in (first, last):
        if not 1 <= port <= 65535:
            raise SpecError(param, '%s port %d is out of range: ports are 1 to 65535' % (what, port))
    if last < first:
        raise SpecError(param, '%s port range %r runs backwards' % (what, text))
    return list(range(first, last + 1))


def _host_ip(text, param):
    if text in ('', '*'):
        return '0.0.0.0'
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise SpecError(param, '%r is not an IP address to publish on (such as 127.0.0.1 or [::1])' % text)


def format_port(host_ip, host_port, container_port, protocol):
    ip = '[%s]' % host_ip if ':' in host_ip else host_ip
    return '%s:%s:%d/%s' % (ip, host_port or '', container_port, protocol)


def parse_canonical_port(text):
    """``(host_ip, host_port or None, container_port, protocol)`` of a canonical port string."""
    rest, protocol = text.rsplit('/', 1)
    if rest.startswith('['):
        ip, rest = rest[1:].split(']:', 1)
    else:
        ip, rest = rest.split(':', 1)
    host_port, container_port = rest.split(':')
    return ip, int(host_port) if host_port else None, int(container_port), protocol


def _port_key(text):
    ip, host_port, container_port, protocol = parse_canonical_port(text)
    return (container_port, protocol, ip, host_port or 0)


def sort_ports(ports):
    return sorted(ports, key=_port_key)


def parse_port(spec, param):
    """One user port spec -> its canonical strings (a range gives one per port).

    Accepted: ``80``, ``8080:80``, ``127.0.0.1:8080:80``, ``127.0.0.1::80`` (any free host port),
    ``[::1]:8080:80``, ranges ``8080-8081:80-81``, each with an optional ``/tcp``, ``/udp`` or ``/sctp``.
    """
    text = str(spec).strip()
    hint = ('use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], such as "8080:80", '
            '"127.0.0.1:8080:80/tcp" or "[::1]:5353:53/udp"')
    if not text:
        raise SpecError(param, 'empty port spec: %s' % hint)
    protocol = 'tcp'
    if '/' in text:
        text, protocol = text.rsplit('/', 1)
        protocol = protocol.lower()
        if protocol not in PROTOCOLS:
            raise SpecError(param, 'unknown protocol %r in %r: use tcp, udp or sctp' % (protocol, spec))
    if text.startswith('['):
        end = text.find(']')
        if end < 0 or text[end + 1:end + 2] != ':':
            raise SpecError(param, 'cannot read %r: %s' % (spec, hint))
        ip_text, rest = text[1:end], text[end + 2:].split(':')
        if len(rest) != 2:
            raise SpecError(param, 'cannot read %r: %s' % (spec, hint))
        parts = [ip_text] + rest
    else:
        parts = text.split(':')
    if len(parts) == 1:
        ip_text, host_text, container_text = '', '', parts[0]
    elif len(parts) == 2:
        ip_text, (host_text, container_text) = '', parts
    elif len(parts) == 3:
        ip_text, host_text, container_text = parts
    else:
        raise SpecError(param, 'cannot read %r (an IPv6 address goes in brackets): %s' % (spec, hint))
    host_ip = _host_ip(ip_text, param)
    container_ports = _port_range(container_text, param, 'container')
    if host_text:
        host_ports = _port_range(host_text, param, 'host')
        if len(host_ports) != len(container_ports):
            raise SpecError(param, 'host range %s and container range %s in %r differ in length'
                            % (host_text, container_text, spec))
    else:
        host_ports = [None] * len(container_ports)
    return [format_port(host_ip, hp, cp, protocol) for hp, cp in zip(host_ports, container_ports)]


def parse_ports(specs, param='ports'):
    ports = []
    for index, spec in enumerate(specs):
        ports.extend(parse_port(spec, '%s[%d]' % (param, index)))
    seen = {}
    for index, port in enumerate(ports):
        ip, host_port, _cport, protocol = parse_canonical_port(port)
        if port in ports[:index]:
            raise SpecError(param, '%s is listed twice' % port)
        if host_port is not None:
            key = (ip, host_port, protocol)
            if key in seen:
                raise SpecError(param, 'host port %s:%d/%s is published twice (%s and %s)'
                                % (ip, host_port, protocol, seen[key], port))
            seen[key] = port
    return sort_ports(ports)


def merge_ports(desired, actual):
    """Give each desired port without a host port the host port the engine picked, when one matches."""
    explicit = set(p for p in desired if parse_canonical_port(p)[1] is not None)
    free = [p for p in actual if p not in explicit]
    merged = []
    for port in desired:
        ip, host_port, container_port, protocol = parse_canonical_port(port)
        if host_port is None:
            for have in free:
                h_ip, h_port, h_cport, h_proto = parse_canonical_port(have)
                if (h_ip, h_cport, h_proto) == (ip, container_port, protocol):
                    free.remove(have)
                    port = have
                    break
        merged.append(port)
    return sort_ports(merged)


# -- volumes -------------------------------------------------------------------

def _norm_path(path):
    return os.path.normpath(path) if path != '/' else '/'


def format_volume(source, destination, readonly):
    return '%s:%s%s' % (source, destination, ':ro' if readonly else '')


def parse_volume(spec, param):
    """``SOURCE:DESTINATION[:ro|rw]`` -> the canonical string; SOURCE is a host path or a volume name."""
    text = str(spec).strip()
    parts = text.split(':')
    hint = 'use SOURCE:DESTINATION[:ro], SOURCE being an absolute host path or a volume name'
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise SpecError(param, 'cannot read %r: %s (anonymous volumes are not managed: name them)' % (spec, hint))
    source, destination = parts[0], parts[1]
    options = [o for o in (parts[2].split(',') if len(parts) == 3 else []) if o]
    unknown = [o for o in options if o not in ('ro', 'rw')]
    if unknown or len(options) > 1:
        raise SpecError(param, 'unsupported volume options %r in %r: only ro or rw' % (','.join(options), spec))
    if source.startswith('/'):
        source = _norm_path(source)
    elif not VOLUME_NAME_RE.match(source):
        raise SpecError(param, '%r is neither an absolute host path nor a volume name (letters, digits, "_.-")'
                        % source)
    if not destination.startswith('/'):
        raise SpecError(param, 'the destination %r is not an absolute path in the container' % destination)
    return format_volume(source, _norm_path(destination), options == ['ro'])


def volume_destination(volume):
    return volume.split(':')[1]


def parse_volumes(specs, param='volumes'):
    volumes = [parse_volume(spec, '%s[%d]' % (param, i)) for i, spec in enumerate(specs)]
    destinations = [volume_destination(v) for v in volumes]
    for dest in destinations:
        if destinations.count(dest) > 1:
            raise SpecError(param, 'two volumes are mounted on %s' % dest)
    return sorted(volumes, key=volume_destination)


# -- networks, restart policy, resources -------------------------------------------

def parse_networks(names, param='networks'):
    names = [str(n).strip() for n in names]
    if not names:
        raise SpecError(param, 'an empty list means no network: say ["none"] for that')
    for name in names:
        if not NETWORK_NAME_RE.match(name):
            raise SpecError(param, '%r is not a network name' % name)
        if name == 'bridge':
            raise SpecError(param, '"bridge" is not a network name: name the network (podman\'s default '
                                   'network is called "podman")')
    unique = sorted(set(names))
    if any(n in NETWORK_MODES for n in unique) and len(unique) > 1:
        raise SpecError(param, '"host" and "none" cannot be combined with other networks')
    return unique


def parse_restart_policy(value, param='restart_policy'):
    text = str(value).strip().lower()
    name, _sep, count = text.partition(':')
    if name not in RESTART_POLICIES or (count and name != 'on-failure'):
        raise SpecError(param, '%r is not a restart policy: use no, always, unless-stopped, on-failure '
                               'or on-failure:N' % (value,))
    if count:
        if not count.isdigit():
            raise SpecError(param, 'the retry count in %r must be a whole number' % (value,))
        if int(count):
            return 'on-failure:%d' % int(count)
    return name


def parse_memory(value, param='memory'):
    """Whole MiB, or ``None`` for "no limit" (``0``)."""
    if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).strip() == '0':
        return None
    mib = size_mib(value, param)
    if mib < MIN_MEMORY_MIB:
        raise SpecError(param, '%r is below podman\'s minimum memory limit of %d MiB' % (value, MIN_MEMORY_MIB))
    return mib


def parse_cpus(value, param='cpus'):
    if value is None:
        return None
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise SpecError(param, '%r is not a number of CPUs such as 0.5 or 2' % (value,))
    if cpus < 0:
        raise SpecError(param, 'must be 0 (no limit) or more, got %r' % (value,))
    cpus = round(cpus, 3)
    return cpus or None


def _text_map(values, param):
    """A dict of str -> str (env, labels) as the engine stores it."""
    result = {}
    for key, value in (values or {}).items():
        key = str(key)
        if not key or '=' in key or '\0' in key:
            raise SpecError(param, '%r is not a valid name here (empty or containing "=")' % key)
        if isinstance(value, bool):
            raise SpecError('%s.%s' % (param, key), 'is a boolean; quote it ("true", "yes") so that the '
                                                    'container sees the exact string you mean')
        if isinstance(value, (dict, list)):
            raise SpecError('%s.%s' % (param, key), 'must be a string, not a %s' % type(value).__name__)
        value = '' if value is None else str(value)
        if '\0' in value:
            raise SpecError('%s.%s' % (param, key), 'contains a NUL character')
        result[key] = value
    return result


def parse_command(value, param='command'):
    if isinstance(value, (list, tuple)):
        command = [str(item) for item in value]
    else:
        try:
            command = shlex.split(str(value))
        except ValueError as exc:
            raise SpecError(param, 'cannot split %r into arguments: %s' % (value, exc))
    if not command:
        raise SpecError(param, 'is empty: leave it out to run the image\'s default command')
    return command


def parse_image(value):
    image = str(value).strip()
    if not image or any(c.isspace() for c in image) or image.startswith('-'):
        raise SpecError('image', '%r is not an image reference such as localhost/app:1.0' % value)
    return image


def parse_pod(value, param='pod'):
    """A pod name; an empty string is no pod."""
    name = str(value).strip()
    if name and not NAME_RE.match(name):
        raise SpecError(param, '%r is not a pod name (letters, digits and "_.-", starting with a letter or digit)'
                        % (value,))
    return name or None


# the parameters of the partial spec, in the order they are checked
PARSERS = (('image', parse_image), ('command', parse_command), ('env', lambda value: _text_map(value, 'env')),
           ('labels', lambda value: _text_map(value, 'labels')), ('ports', parse_ports),
           ('volumes', parse_volumes), ('networks', parse_networks), ('restart_policy', parse_restart_policy),
           ('memory', parse_memory), ('cpus', parse_cpus), ('pod', parse_pod),
           ('healthcheck', _container_health.parse_healthcheck))


def partial_from_params(params):
    """Validate the module's parameters and return the partial spec they ask for."""
    return _spec.from_params(params, PARSERS)


# -- merging with the actual container ----------------------------------------------

def merge(partial, actual_spec):
    """Return the full desired spec: ``partial`` on top of the actual spec (or defaults)."""
    return _spec.overlay(partial, actual_spec, DEFAULTS, FIELDS,
                         {'ports': lambda value, actual: merge_ports(value, actual or []),
                          'healthcheck': _container_health.merge_healthcheck})


def changed_fields(before, after):
    """The spec fields whose values differ."""
    return _spec.changed_fields(FIELDS, before, after)


# -- run states (the same for every backend) ------------------------------------------

RUN_STATES = ('running', 'paused', 'stopped')


def run_steps(current, target):
    """The steps from run state ``current`` to ``target``, as ``(action, until)``; ``None`` when impossible."""
    if current == target:
        return []
    if current == 'stopping':
        rest = run_steps('stopped', target)
        return None if rest is None else [('wait', 'stopped')] + rest
    table = {
        ('stopped', 'running'): [('start', 'running')],
        ('running', 'stopped'): [('stop', 'stopped')],
        ('paused', 'running'): [('unpause', 'running')],
        ('paused', 'stopped'): [('unpause', 'running'), ('stop', 'stopped')],
    }
    steps = table.get((current, target))
    return list(steps) if steps is not None else None

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The specs of Podman networks and volumes: validation, normalization and merging.

One canonical form, the same whether it comes from the user or from ``podman network inspect`` /
``podman volume inspect``, so that comparing the two tells exactly what the user wants changed.

Network (``container_network``)
    ``driver`` (``bridge``, ``macvlan``); ``subnets``, a list of ``{subnet, gateway, ip_range}`` sorted
    by subnet (IPv4 first) - ``subnet`` and ``ip_range`` in CIDR form (an ip_range that Podman stores as a
    lease range which is no CIDR reads back as ``FIRST-LAST``), ``gateway`` an address or ``None``;
    ``internal``, ``dns_enabled`` booleans; ``labels`` and ``options`` dicts of strings (a macvlan's
    ``parent`` option reads back from the network's interface).
Volume (``container_volume``)
    ``driver`` (``local``); ``options``, a dict with the keys ``type``, ``device``, ``o``; ``labels``.

A partial spec holds only what the user set; ``merge_network``/``merge_volume`` fill the rest from the
object as it is (or from a new object's defaults), and a subnet given without gateway or ip_range takes
what Podman picked for it, so values Podman fills in by itself are never a change.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.virtfleet.virt.plugins.module_utils import _spec
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z')
NETWORK_DRIVERS = ('bridge', 'macvlan')
VOLUME_DRIVERS = ('local',)
VOLUME_OPTION_KEYS = ('type', 'device', 'o')
# network names podman keeps for itself or that mean a network mode to `podman run --network`
RESERVED_NETWORKS = ('podman', 'host', 'none', 'bridge', 'private', 'slirp4netns', 'pasta', 'container', 'ns')

NETWORK_FIELDS = ('driver', 'subnets', 'internal', 'dns_enabled', 'labels', 'options')
NETWORK_DEFAULTS = {
    'driver': 'bridge',
    'subnets': None,      # Podman picks a free IPv4 subnet
    'internal': False,
    'dns_enabled': True,
    'labels': {},
    'options': {},
}
VOLUME_FIELDS = ('driver', 'options', 'labels')
VOLUME_DEFAULTS = {'driver': 'local', 'options': {}, 'labels': {}}


def validate_name(name, kind):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError('name', '%r is not a valid %s name: use 1 to 128 characters, letters, digits and "_.-", '
                                'starting with a letter or digit' % (name, kind))
    if kind == 'network' and name in RESERVED_NETWORKS:
        raise SpecError('name', '%r is reserved by Podman (its default network or a network mode); choose another '
                                'name' % name)
    return name


def text_map(values, param):
    """A dict of str -> str as Podman stores labels and options."""
    if not isinstance(values, dict):
        raise SpecError(param, 'must be a dict of strings, got %s' % type(values).__name__)
    result = {}
    for key, value in values.items():
        key = str(key)
        if not key or '=' in key or '\0' in key or key != key.strip() or ',' in key:
            raise SpecError(param, '%r is not a valid key here (empty, spaces around it, or containing "=" or ",")'
                            % key)
        if isinstance(value, bool):
            raise SpecError('%s.%s' % (param, key), 'is a boolean; quote it ("true") so that Podman stores the '
                                                    'exact string you mean')
        if isinstance(value, (dict, list)):
            raise SpecError('%s.%s' % (param, key), 'must be a string, not a %s' % type(value).__name__)
        value = '' if value is None else str(value)
        if '\0' in value or '\n' in value:
            raise SpecError('%s.%s' % (param, key), 'contains a NUL or newline character')
        result[key] = value
    return result


# -- networks ---------------------------------------------------------------------

def _network(text, param):
    try:
        net = ipaddress.ip_network(str(text).strip(), strict=True)
    except ValueError as exc:
        raise SpecError(param, '%r is not a network in CIDR form such as 10.89.5.0/24 or fd00:5::/64 (%s)'
                        % (text, exc))
    return net


def _subnet_key(entry):
    net = ipaddress.ip_network(entry['subnet'])
    return (net.version, int(net.network_address), net.prefixlen)


def lease_to_range(subnet, start, end):
    """The ip_range (CIDR) that Podman stores as lease range ``start``-``end``: it leases from the range's
    second address to its last. ``FIRST-LAST`` when no CIDR gives that range."""
    first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)
    base = int(first) - 1
    size = int(last) - base + 1
    if size > 1 and size & (size - 1) == 0 and base % size == 0:
        net = ipaddress.ip_network('%s/%d' % (ipaddress.ip_address(base), first.max_prefixlen - size.bit_length() + 1))
        if net.subnet_of(ipaddress.ip_network(subnet)):
            return str(net)
    return '%s-%s' % (first, last)


def parse_subnet(item, param):
    if not isinstance(item, dict):
        raise SpecError(param, 'must be a dict {subnet, gateway, ip_range}, got %s' % type(item).__name__)
    unknown = sorted(set(item) - {'subnet', 'gateway', 'ip_range'})
    if unknown:
        raise SpecError(param, 'unknown keys %s: use subnet, gateway and ip_range' % ', '.join(unknown))
    if not item.get('subnet'):
        raise SpecError(param + '.subnet', 'is required')
    net = _network(item['subnet'], param + '.subnet')
    entry = {'subnet': str(net), 'gateway': None, 'ip_range': None}
    if net.num_addresses < 4:
        raise SpecError(param + '.subnet', '%s is too small for a container network (a /30 or /126 at least)' % net)
    if item.get('gateway') is not None:
        try:
            gateway = ipaddress.ip_address(str(item['gateway']).strip())
        except ValueError:
            raise SpecError(param + '.gateway', '%r is not an IP address' % (item['gateway'],))
        if gateway.version != net.version or gateway not in net:
            raise SpecError(param + '.gateway', '%s is not an address in the subnet %s' % (gateway, net))
        if gateway == net.network_address or (net.version == 4 and gateway == net.broadcast_address):
            raise SpecError(param + '.gateway', '%s is the network or broadcast address of %s' % (gateway, net))
        entry['gateway'] = str(gateway)
    if item.get('ip_range') is not None:
        rng = _network(item['ip_range'], param + '.ip_range')
        if rng.version != net.version or not rng.subnet_of(net):
            raise SpecError(param + '.ip_range', '%s is not inside the subnet %s' % (rng, net))
        if rng.num_addresses < 2:
            raise SpecError(param + '.ip_range', '%s holds no address to lease (Podman leases from its second '
                                                 'address on): give a /31 or larger' % rng)
        entry['ip_range'] = str(rng)
    return entry


def parse_subnets(items, param='subnets'):
    if not isinstance(items, list) or not items:
        raise SpecError(param, 'must be a non-empty list of {subnet, gateway, ip_range}; leave it out to let Podman '
                               'pick a free IPv4 subnet')
    subnets = [parse_subnet(item, '%s[%d]' % (param, i)) for i, item in enumerate(items)]
    nets = [ipaddress.ip_network(s['subnet']) for s in subnets]
    for i, net in enumerate(nets):
        for j in range(i):
            if net.version == nets[j].version and net.overlaps(nets[j]):
                raise SpecError(param, '%s and %s overlap: a network\'s subnets must be disjoint' % (nets[j], net))
    return sorted(subnets, key=_subnet_key)


def parse_network_driver(value):
    driver = str(value).strip().lower()
    if driver not in NETWORK_DRIVERS:
        raise SpecError('driver', '%r is not a network driver: use %s' % (value, ' or '.join(NETWORK_DRIVERS)))
    return driver


NETWORK_PARSERS = (('driver', parse_network_driver), ('subnets', parse_subnets),
                   ('internal', bool), ('dns_enabled', bool),
                   ('labels', lambda value: text_map(value, 'labels')),
                   ('options', lambda value: text_map(value, 'options')))


def network_partial_from_params(params):
    partial = _spec.from_params(params, NETWORK_PARSERS)
    if partial.get('driver') == 'macvlan' and partial.get('internal'):
        raise SpecError('internal', 'a macvlan network cannot be internal (Podman refuses it); use driver: bridge')
    return partial


def _merge_subnets(desired, actual):
    """Give each desired subnet without gateway or ip_range what Podman picked for it."""
    have = dict((s['subnet'], s) for s in actual or [])
    merged = []
    for entry in desired:
        entry = dict(entry)
        old = have.get(entry['subnet'])
        if old is not None:
            for key in ('gateway', 'ip_range'):
                if entry[key] is None:
                    entry[key] = old[key]
        merged.append(entry)
    return merged


_MACVLAN_OPTIONS = ('parent', 'mode')


def merge_network(partial, actual_spec):
    spec = _spec.overlay(partial, actual_spec, NETWORK_DEFAULTS, NETWORK_FIELDS,
                         {'subnets': _merge_subnets})
    if actual_spec and 'options' not in partial and spec['driver'] != actual_spec['driver']:
        # options kept from the network as it is apply to its driver: a macvlan's parent and mode mean
        # nothing to a bridge (Podman refuses them)
        spec['options'] = dict((k, v) for k, v in (spec['options'] or {}).items() if k not in _MACVLAN_OPTIONS)
    if spec['driver'] == 'macvlan' and not spec['subnets']:
        raise SpecError('subnets', 'a macvlan network needs at least one subnet (Podman\'s netavark backend has no '
                                   'DHCP for macvlan)')
    if spec['driver'] == 'macvlan' and spec['internal']:
        raise SpecError('internal', 'a macvlan network cannot be internal (Podman refuses it); use driver: bridge')
    return spec


def network_from_inspect(data):
    """The normalized spec of one ``podman network inspect`` entry."""
    subnets = []
    for item in data.get('subnets') or []:
        lease = item.get('lease_range') or {}
        ip_range = None
        if lease.get('start_ip') and lease.get('end_ip'):
            ip_range = lease_to_range(item['subnet'], lease['start_ip'], lease['end_ip'])
        subnets.append({'subnet': str(ipaddress.ip_network(item['subnet'], strict=False)),
                        'gateway': item.get('gateway') or None, 'ip_range': ip_range})
    options = dict((str(k), str(v)) for k, v in (data.get('options') or {}).items())
    if data.get('driver') == 'macvlan' and data.get('network_interface'):
        options['parent'] = data['network_interface']
    return {
        'driver': data.get('driver'),
        'subnets': sorted(subnets, key=_subnet_key) or None,
        'internal': bool(data.get('internal')),
        'dns_enabled': bool(data.get('dns_enabled')),
        'labels': dict(data.get('labels') or {}),
        'options': options,
    }


def network_create_args(name, spec):
    """The arguments of ``podman network create`` for ``spec``."""
    args = ['--driver', spec['driver']]
    subnets = spec['subnets'] or []
    for entry in subnets:
        args += ['--subnet', entry['subnet']]
    # --gateway and --ip-range pair with the --subnet of the same position: once one subnet has one, every
    # subnet gets one - a subnet without gateway its first address (what Podman picks), one without ip_range
    # the whole subnet (Podman's default lease range)
    if any(e['gateway'] for e in subnets):
        for entry in subnets:
            args += ['--gateway', entry['gateway'] or str(ipaddress.ip_network(entry['subnet']).network_address + 1)]
    if any(e['ip_range'] for e in subnets):
        for entry in subnets:
            if entry['ip_range'] and '-' in entry['ip_range']:
                raise SpecError('subnets', 'ip_range %s is not in CIDR form, which is what podman network create '
                                           'takes: give the ip_range of %s as a CIDR' % (entry['ip_range'], entry['subnet']))
            args += ['--ip-range', entry['ip_range'] or entry['subnet']]
    if any(ipaddress.ip_network(e['subnet']).version == 6 for e in spec['subnets'] or []):
        args.append('--ipv6')
    if spec['internal']:
        args.append('--internal')
    if not spec['dns_enabled']:
        args.append('--disable-dns')
    for key, value in sorted(spec['labels'].items()):
        args += ['--label', '%s=%s' % (key, value)]
    for key, value in sorted(spec['options'].items()):
        args += ['--opt', '%s=%s' % (key, value)]
    return args + [name]


def overlapping(spec, others):
    """``(subnet, other network, its subnet)`` for the first of ``spec``'s subnets that overlaps a subnet of
    another network (``others``: name -> normalized spec), or None."""
    for entry in spec['subnets'] or []:
        net = ipaddress.ip_network(entry['subnet'])
        for other, other_spec in sorted(others.items()):
            for have in other_spec['subnets'] or []:
                theirs = ipaddress.ip_network(have['subnet'])
                if theirs.version == net.version and theirs.overlaps(net):
                    return entry['subnet'], other, have['subnet']
    return None


def network_changed_fields(before, after):
    return _spec.changed_fields(NETWORK_FIELDS, before, after)


# -- volumes ------------------------------------------------------------------------

def parse_volume_driver(value):
    driver = str(value).strip().lower()
    if driver not in VOLUME_DRIVERS:
        raise SpecError('driver', '%r is not a volume driver this module manages: use local' % (value,))
    return driver


def parse_volume_options(value, param='options'):
    options = text_map(value, param)
    unknown = sorted(set(options) - set(VOLUME_OPTION_KEYS))
    if unknown:
        raise SpecError(param, 'unknown keys %s: the local driver takes type, device and o (as mount(8): '
                               '{type: tmpfs, device: tmpfs, o: "size=64m"}, or {type: none, device: /srv/data, '
                               'o: bind})' % ', '.join(unknown))
    if options and ('type' not in options or 'device' not in options):
        raise SpecError(param, 'give type and device together (and o for the mount options), such as '
                               '{type: tmpfs, device: tmpfs} or {type: none, device: /srv/data, o: bind}')
    if options.get('type') in ('none', 'bind') or 'bind' in options.get('o', '').split(','):
        if not options['device'].startswith('/'):
            raise SpecError(param + '.device', '%r is not an absolute host path to bind' % options['device'])
    return options


def parse_volume_labels(value, param='labels'):
    labels = text_map(value, param)
    for key, text in sorted(labels.items()):
        if text.endswith('\r'):
            # `podman volume create --label` drops one trailing carriage return (network and container labels
            # keep it): the volume would never match the task, and every run would recreate it
            raise SpecError('%s.%s' % (param, key), 'ends in a carriage return, which Podman drops from a volume '
                                                    "label; remove it (a file read with Windows line endings?)")
    return labels


VOLUME_PARSERS = (('driver', parse_volume_driver), ('options', parse_volume_options),
                  ('labels', parse_volume_labels))


def volume_partial_from_params(params):
    return _spec.from_params(params, VOLUME_PARSERS)


def merge_volume(partial, actual_spec):
    return _spec.overlay(partial, actual_spec, VOLUME_DEFAULTS, VOLUME_FIELDS)


def volume_from_inspect(data):
    options = data.get('Options') or {}
    return {
        'driver': data.get('Driver') or 'local',
        # podman adds keys of its own (UID, GID, SIZE, ...) derived from o: only the user's keys count
        'options': dict((k, str(options[k])) for k in VOLUME_OPTION_KEYS if k in options),
        'labels': dict(data.get('Labels') or {}),
    }


def volume_create_args(name, spec):
    args = ['--driver', spec['driver']]
    for key in VOLUME_OPTION_KEYS:
        if key in spec['options']:
            args += ['--opt', '%s=%s' % (key, spec['options'][key])]
    for key, value in sorted(spec['labels'].items()):
        args += ['--label', '%s=%s' % (key, value)]
    return args + [name]


def volume_changed_fields(before, after):
    return _spec.changed_fields(VOLUME_FIELDS, before, after)

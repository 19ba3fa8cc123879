# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend-neutral virtual network spec: validation, normalization and merging.

A *partial* spec holds only what the user asked for; ``merge`` fills the rest
from the network as it is (or from defaults for a new one) and ``check``
validates the merged spec as a whole (mode against addresses, DHCP hosts
against the subnet).  Addresses are normalized with ``ipaddress`` so that
``fd00::1`` and ``fd00:0::1`` compare equal, MAC addresses are lower case and
DHCP/DNS host lists are sorted, so that order never causes a change.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.virtfleet.virt.plugins.module_utils import _spec
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

MODES = ('nat', 'route', 'isolated', 'bridge', 'open')
STATES = ('present', 'active', 'started', 'inactive', 'absent')
FAMILIES = ('ipv4', 'ipv6')

# Fields of the normalized spec, in the order they are shown.
FIELDS = ('mode', 'bridge', 'mtu', 'domain', 'ipv4', 'ipv6', 'dhcp_hosts', 'dns_hosts', 'autostart')
# Fields an active network takes without a restart.
LIVE_FIELDS = ('dhcp_hosts', 'dns_hosts', 'autostart')

DEFAULTS = {
    'mode': 'nat',
    'bridge': None,
    'mtu': None,
    'domain': None,
    'ipv4': None,
    'ipv6': None,
    'dhcp_hosts': [],
    'dns_hosts': [],
    'autostart': False,
}

MAC_RE = re.compile(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}\Z')
BRIDGE_RE = re.compile(r'^[A-Za-z0-9_.:-]{1,15}\Z')
HOSTNAME_RE = re.compile(r'^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
                         r'(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$')
_VERSION = {'ipv4': 4, 'ipv6': 6}
_DEFAULT_PREFIX = {'ipv4': 24, 'ipv6': 64}


def _clean(item):
    return dict((k, v) for k, v in item.items() if v is not None)


# -- single values ---------------------------------------------------------------

def ip_address(value, param, family=None):
    """``value`` as a normalized address string, of ``family`` ('ipv4'/'ipv6') when given."""
    try:
        addr = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise SpecError(param, '%r is not an IP address%s' % (
            value, {'ipv4': ' such as 192.168.100.1', 'ipv6': ' such as fd00:100::1'}.get(family, '')))
    if family and addr.version != _VERSION[family]:
        raise SpecError(param, '%s is an IPv%d address; an %s address is needed here'
                        % (addr, addr.version, family.replace('ip', 'IP')))
    return str(addr)


def mac_address(value, param):
    mac = str(value).strip().lower()
    if not MAC_RE.match(mac):
        raise SpecError(param, '%r is not a MAC address such as 52:54:00:12:34:56' % (value,))
    if int(mac[:2], 16) & 1:
        raise SpecError(param, '%s is a multicast address; the first octet must be even' % mac)
    return mac


def hostname(value, param):
    name = str(value).strip()
    if not HOSTNAME_RE.match(name):
        raise SpecError(param, '%r is not a valid host name (letters, digits, "-" and "_", labels '
                               'separated by dots)' % (value,))
    return name


def validate_bridge(value, param='bridge'):
    if not BRIDGE_RE.match(str(value)):
        raise SpecError(param, '%r is not a valid bridge name: use 1 to 15 characters, letters, digits '
                               'and "_.:-"' % (value,))
    return str(value)


def subnet(ip):
    """The ``ipaddress`` network of an ``{'address', 'prefix'}`` dict."""
    return ipaddress.ip_network('%s/%d' % (ip['address'], ip['prefix']), strict=False)


def _host_in(addr, net, param, what):
    """Check that ``addr`` is a usable host address of ``net``."""
    addr = ipaddress.ip_address(addr)
    if addr not in net:
        raise SpecError(param, '%s is outside the network %s; %s must be inside it' % (addr, net, what))
    if net.version == 4 and net.prefixlen < 31 and addr in (net.network_address, net.broadcast_address):
        raise SpecError(param, '%s is the %s address of %s, not a host address'
                        % (addr, 'network' if addr == net.network_address else 'broadcast', net))


# -- user input -> partial spec ----------------------------------------------------

def _ip_from_params(raw, family):
    """One address family: ``None`` removes it (an empty dict), else the validated dict."""
    if raw is None:
        return None
    raw = _clean(raw)
    if not raw:
        return None
    if 'address' not in raw:
        raise SpecError(family + '.address', 'is required when %s is set (give an empty dict to remove %s '
                                             'from the network)' % (family, family.replace('ip', 'IP')))
    address = ip_address(raw['address'], family + '.address', family)
    top = 32 if family == 'ipv4' else 128
    prefix = raw.get('prefix', _DEFAULT_PREFIX[family])
    if not isinstance(prefix, int) or isinstance(prefix, bool) or not 1 <= prefix <= top - 1:
        raise SpecError(family + '.prefix', '%r is not a valid prefix length: use 1 to %d (such as %d)'
                        % (prefix, top - 1, _DEFAULT_PREFIX[family]))
    item = {'address': address, 'prefix': prefix, 'dhcp_range': None}
    net = subnet(item)
    _host_in(address, net, family + '.address', 'the address')
    dhcp = _clean(raw.get('dhcp_range') or {})
    if dhcp:
        param = family + '.dhcp_range'
        if 'start' not in dhcp or 'end' not in dhcp:
            raise SpecError(param, 'needs both start and end')
        start = ip_address(dhcp['start'], param + '.start', family)
        end = ip_address(dhcp['end'], param + '.end', family)
        _host_in(start, net, param + '.start', 'the DHCP range')
        _host_in(end, net, param + '.end', 'the DHCP range')
        if ipaddress.ip_address(start) > ipaddress.ip_address(end):
            raise SpecError(param, 'start %s is after end %s' % (start, end))
        if ipaddress.ip_address(start) <= ipaddress.ip_address(address) <= ipaddress.ip_address(end):
            raise SpecError(param, '%s-%s contains the network\'s own address %s; start the range after it'
                            % (start, end, address))
        item['dhcp_range'] = {'start': start, 'end': end}
    return item


def _dhcp_hosts_from_params(raw):
    hosts, seen = [], {}
    for index, entry in enumerate(raw):
        param = 'dhcp_hosts[%d]' % index
        entry = _clean(entry or {})
        if 'mac' not in entry or 'ip' not in entry:
            raise SpecError(param, 'a static DHCP host needs mac and ip')
        item = {'mac': mac_address(entry['mac'], param + '.mac'),
                'ip': ip_address(entry['ip'], param + '.ip', 'ipv4')}
        if entry.get('name'):
            item['name'] = hostname(entry['name'], param + '.name')
        for key in ('mac', 'ip', 'name'):
            if key in item:
                if (key, item[key]) in seen:
                    raise SpecError(param + '.' + key, '%s is already used by dhcp_hosts[%d]'
                                    % (item[key], seen[(key, item[key])]))
                seen[(key, item[key])] = index
        hosts.append(item)
    return sort_hosts(hosts)


def _dns_hosts_from_params(raw):
    hosts, seen = [], {}
    for index, entry in enumerate(raw):
        param = 'dns_hosts[%d]' % index
        entry = _clean(entry or {})
        if 'ip' not in entry or not entry.get('hostnames'):
            raise SpecError(param, 'a DNS host entry needs ip and at least one name in hostnames')
        ip = ip_address(entry['ip'], param + '.ip')
        if ip in seen:
            raise SpecError(param + '.ip', '%s is already listed in dns_hosts[%d]; give all its names there'
                            % (ip, seen[ip]))
        seen[ip] = index
        names = [hostname(n, '%s.hostnames[%d]' % (param, i)) for i, n in enumerate(entry['hostnames'])]
        hosts.append({'ip': ip, 'hostnames': names})
    return sort_hosts(hosts)


def sort_hosts(hosts):
    """DHCP and DNS host lists in a stable order (by address), so that order is never a change."""
    return sorted(hosts, key=lambda h: (ipaddress.ip_address(h['ip']).version,
                                        ipaddress.ip_address(h['ip']), h.get('mac') or ''))


def partial_from_params(params):
    """Validate the module's parameters and return the partial spec they ask for."""
    spec = {}
    if params.get('mode') is not None:
        if params['mode'] not in MODES:
            raise SpecError('mode', '%r is not a mode; use one of %s' % (params['mode'], ', '.join(MODES)))
        spec['mode'] = params['mode']
    if params.get('bridge') is not None:
        spec['bridge'] = validate_bridge(params['bridge'])
    if params.get('mtu') is not None:
        mtu = params['mtu']
        if mtu != 0 and not 68 <= mtu <= 65535:
            raise SpecError('mtu', '%d is not a valid MTU: use 68 to 65535 (or 0 to remove it)' % mtu)
        spec['mtu'] = mtu or None
    if params.get('domain') is not None:
        spec['domain'] = hostname(params['domain'], 'domain') if params['domain'] else None
    for family in FAMILIES:
        if params.get(family) is not None:
            spec[family] = _ip_from_params(params[family], family)
    if params.get('dhcp_hosts') is not None:
        spec['dhcp_hosts'] = _dhcp_hosts_from_params(params['dhcp_hosts'])
    if params.get('dns_hosts') is not None:
        spec['dns_hosts'] = _dns_hosts_from_params(params['dns_hosts'])
    if params.get('autostart') is not None:
        spec['autostart'] = bool(params['autostart'])
    return spec


# -- merging with the actual network and checking the whole ---------------------------

def merge(partial, actual_spec):
    """Return the full desired spec: ``partial`` on top of the actual spec (or defaults), checked."""
    spec = _spec.overlay(partial, actual_spec, DEFAULTS, FIELDS)
    check(spec, partial)
    return spec


def _blame(partial, *params):
    """The parameter to name in a message: the first of ``params`` the user set, else the first."""
    for param in params:
        if param in partial:
            return param
    return params[0]


def check(spec, partial=None):
    """Validate a full spec as a whole; name the option the user set when there is a choice."""
    partial = partial or {}
    mode = spec['mode']
    if mode == 'bridge':
        if not spec['bridge']:
            raise SpecError('bridge', 'mode bridge attaches the network to an existing host bridge: name it '
                                      'in bridge')
        removal = {'mtu': 'mtu: 0', 'domain': "domain: ''", 'ipv4': 'ipv4: {}', 'ipv6': 'ipv6: {}',
                   'dhcp_hosts': 'dhcp_hosts: []', 'dns_hosts': 'dns_hosts: []'}
        unsupported = [key for key in ('mtu', 'domain', 'ipv4', 'ipv6', 'dhcp_hosts', 'dns_hosts') if spec.get(key)]
        if unsupported:
            raise SpecError(_blame(partial, *(['mode'] + unsupported)),
                            'a mode bridge network has no %s (the host bridge provides the network); remove '
                            'it with %s' % (', '.join(unsupported), ', '.join(removal[k] for k in unsupported)))
    elif mode in ('nat', 'route', 'open') and not (spec['ipv4'] or spec['ipv6']):
        raise SpecError(_blame(partial, 'ipv4', 'mode'),
                        'a mode %s network needs an address: set ipv4 (for example address 192.168.100.1, '
                        'prefix 24) or ipv6' % mode)
    if spec['dhcp_hosts']:
        if not spec['ipv4']:
            raise SpecError('dhcp_hosts', 'static DHCP hosts need ipv4 to be set on the network')
        net = subnet(spec['ipv4'])
        for host in spec['dhcp_hosts']:
            if 'dhcp_hosts' in partial:
                _host_in(host['ip'], net, 'dhcp_hosts', 'the static DHCP host of %s' % host['mac'])
            elif ipaddress.ip_address(host['ip']) not in net:
                raise SpecError('ipv4', 'the network %s does not contain the static DHCP host %s (%s); change '
                                        'dhcp_hosts too' % (net, host['ip'], host['mac']))
            if host['ip'] == spec['ipv4']['address']:
                raise SpecError('dhcp_hosts', '%s (of %s) is the network\'s own address'
                                % (host['ip'], host['mac']))
    return spec


def changed_fields(before, after):
    """The spec fields whose values differ."""
    return _spec.changed_fields(FIELDS, before, after)


def restart_fields(changes):
    """Of ``changes``, those an active network takes only with a restart."""
    return [key for key in changes if key not in LIVE_FIELDS]


# -- run state model (the same for every backend) ----------------------------------------

def target_state(state):
    """The run state to reach for the module's ``state`` (``None``: leave it as it is)."""
    return {'active': 'active', 'started': 'active', 'inactive': 'inactive'}.get(state)


def state_steps(current, target):
    """The steps from ``current`` to ``target`` run state, as ``(action, until)``."""
    if current == target:
        return []
    return [('start', 'active')] if target == 'active' else [('destroy', 'inactive')]

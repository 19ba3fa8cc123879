# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``customization`` option of a VM - the guest's identity - validated and normalized, backend-neutral.

The normalized form is what both backends store and compare::

    {'hostname': 'web1' | None, 'domain': 'example.test' | None, 'dns_servers': ['192.0.2.53'],
     'networks': [{'dhcp': True} | {'ip': '192.0.2.10', 'prefix': 24, 'gateway': '192.0.2.1' | None}],
     'ssh_authorized_keys': ['ssh-ed25519 AAAA... user@host'], 'user_data': {...} | None}

libvirt renders it into the VM's cloud-init seed, vSphere into a guest customization spec.

What a VM's spec shows (and libvirt keeps in the VM's metadata) is ``stored(normalized)``: the same dict with
``user_data`` replaced by ``user_data_sha256`` (the hash of its canonical JSON, None without user_data), so that
neither the spec, a diff nor the domain XML shows the user data, and comparing two of them compares the user data.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML is not on every host that runs a module
    yaml = None

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

# one DNS label (RFC 1123): what a hostname is; a domain is labels joined by dots
_LABEL_RE = re.compile(r'^(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z')


def options():
    """The option's suboptions, as the module declares them."""
    return dict(
        hostname=dict(type='str'),
        domain=dict(type='str'),
        dns_servers=dict(type='list', elements='str'),
        networks=dict(type='list', elements='dict', options=dict(
            dhcp=dict(type='bool', default=False), ip=dict(type='str'), prefix=dict(type='int'),
            gateway=dict(type='str'))),
        ssh_authorized_keys=dict(type='list', elements='str', no_log=False),
        user_data=dict(type='raw', no_log=True),
    )


def _hostname(value):
    if value is None:
        return None
    if not _LABEL_RE.match(value):
        raise SpecError('customization.hostname', '%r is not a host name: use 1 to 63 letters, digits and "-", not '
                        'starting or ending with "-" (put the domain in customization.domain)' % (value,))
    return value.lower()


def _domain(value):
    if value is None:
        return None
    labels = value.rstrip('.').split('.')
    if len(value) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        raise SpecError('customization.domain', '%r is not a DNS domain name (labels of letters, digits and "-", '
                        'joined by dots)' % (value,))
    return '.'.join(labels).lower()


def _address(value, param):
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise SpecError(param, '%r is not an IP address' % (value,))


def _network(raw, index):
    param = 'customization.networks[%d]' % index
    ip, prefix, gateway = raw.get('ip'), raw.get('prefix'), raw.get('gateway')
    if raw.get('dhcp'):
        if ip is not None or prefix is not None or gateway is not None:
            raise SpecError(param, 'dhcp: true takes its address from DHCP: leave ip, prefix and gateway out, or '
                                   'set dhcp: false for a static address')
        return {'dhcp': True}
    if ip is None:
        raise SpecError(param + '.ip', 'is required for a static address (with prefix); set dhcp: true to take an '
                                       'address from DHCP')
    if '/' in ip:
        ip, cidr = ip.split('/', 1)
        if prefix is not None:
            raise SpecError(param + '.prefix', 'is given twice: in ip (%s/%s) and as prefix; give it once' % (ip, cidr))
        if not cidr.isdigit():
            raise SpecError(param + '.ip', '%r has no prefix length after "/"' % raw['ip'])
        prefix = int(cidr)
    addr = _address(ip, param + '.ip')
    if prefix is None:
        raise SpecError(param + '.prefix', 'is required with a static ip: the network\'s prefix length, such as 24 '
                                           'for %s/24' % addr)
    if not 0 < prefix <= addr.max_prefixlen:
        raise SpecError(param + '.prefix', '%d is not a prefix length for IPv%d: use 1 to %d'
                        % (prefix, addr.version, addr.max_prefixlen))
    net = ipaddress.ip_network('%s/%d' % (addr, prefix), strict=False)
    if addr in (net.network_address, net.broadcast_address) and addr.version == 4 and prefix < 31:
        raise SpecError(param + '.ip', '%s is the %s address of %s, not a host address' % (
            addr, 'network' if addr == net.network_address else 'broadcast', net))
    item = {'ip': str(addr), 'prefix': prefix, 'gateway': None}
    if gateway is not None:
        gw = _address(gateway, param + '.gateway')
        if gw.version != addr.version or gw not in net:
            raise SpecError(param + '.gateway', '%s is not in the network %s of ip %s' % (gw, net, addr))
        if gw == addr:
            raise SpecError(param + '.gateway', 'is the VM\'s own address %s' % addr)
        item['gateway'] = str(gw)
    return item


def _user_data(value):
    """Extra cloud-config: a mapping, or a YAML string of one (``#cloud-config`` header optional)."""
    if value is None:
        return None
    if isinstance(value, str):
        if yaml is None:  # pragma: no cover - PyYAML comes with Ansible on the controller
            raise SpecError('customization.user_data', 'needs PyYAML on the host that runs the module to read a '
                                                       'string; give a dictionary instead')
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise SpecError('customization.user_data', 'is not valid YAML: %s' % (getattr(exc, 'problem', None) or exc))
        if value is None:
            return None
    if not isinstance(value, dict):
        raise SpecError('customization.user_data', 'must be cloud-config as a dictionary (or a YAML string of one), '
                                                   'got %s' % type(value).__name__)
    return value


def normalize(raw):
    """The normalized customization of the module's ``customization`` option (``SpecError`` for bad input)."""
    networks = [_network(item, index) for index, item in enumerate(raw.get('networks') or [])]
    dns = [str(_address(server, 'customization.dns_servers[%d]' % index))
           for index, server in enumerate(raw.get('dns_servers') or [])]
    keys = []
    for index, key in enumerate(raw.get('ssh_authorized_keys') or []):
        key = (key or '').strip()
        if len(key.split()) < 2 or '\n' in key:
            raise SpecError('customization.ssh_authorized_keys[%d]' % index,
                            'is not one public key line (type, base64 key, optional comment)')
        keys.append(key)
    return {'hostname': _hostname(raw.get('hostname')), 'domain': _domain(raw.get('domain')), 'dns_servers': dns,
            'networks': networks, 'ssh_authorized_keys': keys, 'user_data': _user_data(raw.get('user_data'))}


def stored(custom):
    """The form a VM's spec shows and compares (see the module's docstring); None for None."""
    if custom is None:
        return None
    out = dict((key, value) for key, value in custom.items() if key != 'user_data')
    user_data = custom.get('user_data')
    out['user_data_sha256'] = None if user_data is None else hashlib.sha256(
        json.dumps(user_data, sort_keys=True, separators=(',', ':'), default=str).encode('utf-8')).hexdigest()
    return out

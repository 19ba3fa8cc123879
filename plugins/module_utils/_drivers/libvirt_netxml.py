# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt network XML <-> normalized network spec, with lxml only.

``parse`` reads the fields the spec manages (the first ``<ip>`` of each
family) and keeps the exact XML of each DHCP and DNS host, which
``virNetworkUpdate`` needs to delete it.  ``render`` patches an existing
definition in place, so that what the spec does not manage (the UUID, the
bridge MAC address libvirt generated, port groups, DNS forwarders, further
``<ip>`` elements, ...) survives an update untouched.
"""

from __future__ import annotations

import ipaddress
import uuid

from ansible_collections.virtfleet.virt.plugins.module_utils import _network_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._xml import etree, from_string, to_string

# Attributes of <bridge> that libvirt refuses in mode bridge.
_BRIDGE_ONLY_MANAGED = ('stp', 'delay', 'zone', 'macTableManager')


def _root(xml):
    return xml if etree.iselement(xml) else from_string(xml)


def _family(ip):
    if ip.get('family'):
        return ip.get('family')
    return 'ipv6' if ':' in (ip.get('address') or '') else 'ipv4'


def _prefix(ip):
    if ip.get('prefix'):
        return int(ip.get('prefix'))
    if ip.get('netmask'):
        return ipaddress.ip_network('0.0.0.0/%s' % ip.get('netmask')).prefixlen
    return 24 if _family(ip) == 'ipv4' else 64


def _normal_ip(value):
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def first_ips(root):
    """``{family: (index among all <ip>, element)}`` of the first <ip> of each family."""
    found = {}
    for index, ip in enumerate(root.findall('ip')):
        found.setdefault(_family(ip), (index, ip))
    return found


def _parse_ip(ip):
    item = {'address': _normal_ip(ip.get('address')), 'prefix': _prefix(ip), 'dhcp_range': None}
    rng = ip.find('dhcp/range')
    if rng is not None:
        item['dhcp_range'] = {'start': _normal_ip(rng.get('start')), 'end': _normal_ip(rng.get('end'))}
    return item


def _raw(elem):
    return etree.tostring(elem, encoding='unicode', with_tail=False)


def _parse_dhcp_host(host):
    item = {'mac': (host.get('mac') or '').lower() or None, 'ip': _normal_ip(host.get('ip')),
            'name': host.get('name')}
    return dict((k, v) for k, v in item.items() if v is not None)


def _parse_dns_host(host):
    return {'ip': _normal_ip(host.get('ip')),
            'hostnames': [h.text.strip() for h in host.findall('hostname') if h.text and h.text.strip()]}


def parse(xml):
    """Return ``(name, uuid, spec, raw)`` of a network definition.

    ``raw`` maps ``'dhcp_hosts'``/``'dns_hosts'`` to ``[(item, xml)]`` and
    ``'ipv4_index'`` to the index of the IPv4 ``<ip>`` (for virNetworkUpdate).
    """
    root = _root(xml)
    forward = root.find('forward')
    bridge = root.find('bridge')
    mtu = root.find('mtu')
    domain = root.find('domain')
    ips = first_ips(root)
    spec = {
        'mode': forward.get('mode', 'nat') if forward is not None else 'isolated',
        'bridge': bridge.get('name') if bridge is not None else None,
        'mtu': int(mtu.get('size')) if mtu is not None and mtu.get('size') else None,
        'domain': domain.get('name') if domain is not None else None,
    }
    raw = {'dhcp_hosts': [], 'dns_hosts': [], 'ipv4_index': None}
    for family in _network_spec.FAMILIES:
        spec[family] = _parse_ip(ips[family][1]) if family in ips else None
    if 'ipv4' in ips:
        raw['ipv4_index'] = ips['ipv4'][0]
        for host in ips['ipv4'][1].findall('dhcp/host'):
            raw['dhcp_hosts'].append((_parse_dhcp_host(host), _raw(host)))
    for host in root.findall('dns/host'):
        raw['dns_hosts'].append((_parse_dns_host(host), _raw(host)))
    spec['dhcp_hosts'] = _network_spec.sort_hosts([item for item, _xml in raw['dhcp_hosts']])
    spec['dns_hosts'] = _network_spec.sort_hosts([item for item, _xml in raw['dns_hosts']])
    return root.findtext('name'), root.findtext('uuid'), spec, raw


def subnets(xml):
    """Every subnet (``ipaddress`` network) of a network definition."""
    found = []
    for ip in _root(xml).findall('ip'):
        try:
            found.append(ipaddress.ip_network('%s/%d' % (ip.get('address'), _prefix(ip)), strict=False))
        except ValueError:
            continue
    return found


def domain_taps(xml, network):
    """Host (tap) device names of a running domain's interfaces on ``network`` (``None`` when not known)."""
    found = []
    for nic in _root(xml).findall('devices/interface'):
        source = nic.find('source')
        if nic.get('type') == 'network' and source is not None and source.get('network') == network:
            target = nic.find('target')
            found.append(target.get('dev') if target is not None else None)
    return found


# -- elements for virNetworkUpdate --------------------------------------------------

def dhcp_host_element(item):
    host = etree.Element('host')
    for key in ('mac', 'name', 'ip'):
        if item.get(key):
            host.set(key, item[key])
    return host


def dns_host_element(item):
    host = etree.Element('host', ip=item['ip'])
    for name in item['hostnames']:
        etree.SubElement(host, 'hostname').text = name
    return host


def dhcp_host_xml(item):
    return _raw(dhcp_host_element(item))


def dns_host_xml(item):
    return _raw(dns_host_element(item))


# -- render ----------------------------------------------------------------------------

def _child(root, tag, before=()):
    """``root``'s first ``tag`` child, created (before the first of ``before`` present) when missing."""
    elem = root.find(tag)
    if elem is None:
        elem = etree.Element(tag)
        for name in before:
            anchor = root.find(name)
            if anchor is not None:
                anchor.addprevious(elem)
                break
        else:
            root.append(elem)
    return elem


def _drop(root, tag):
    for elem in root.findall(tag):
        root.remove(elem)


def _render_forward(root, mode):
    forward = root.find('forward')
    if mode == 'isolated':
        _drop(root, 'forward')
        return
    if forward is not None and forward.get('mode', 'nat') != mode:
        root.remove(forward)
        forward = None
    if forward is None:
        _child(root, 'forward', before=('bridge', 'mtu', 'mac', 'domain', 'dns', 'ip')).set('mode', mode)


def _render_bridge(root, spec):
    bridge = root.find('bridge')
    if spec['bridge']:
        bridge = _child(root, 'bridge', before=('mtu', 'mac', 'domain', 'dns', 'ip'))
        bridge.set('name', spec['bridge'])
    elif bridge is not None and 'name' in bridge.attrib and spec['mode'] != 'bridge':
        del bridge.attrib['name']  # libvirt picks a free virbrN
    if bridge is not None and spec['mode'] == 'bridge':
        for attr in _BRIDGE_ONLY_MANAGED:
            bridge.attrib.pop(attr, None)
    if bridge is not None and not len(bridge.attrib):
        root.remove(bridge)


def _render_ip(root, family, item, hosts):
    elems = [ip for ip in root.findall('ip') if _family(ip) == family]
    if item is None:
        for ip in elems:
            root.remove(ip)
        return
    if elems:
        ip = elems[0]
    else:
        ip = etree.SubElement(root, 'ip')
    if family == 'ipv6':
        ip.set('family', 'ipv6')
    ip.attrib.pop('netmask', None)
    ip.set('address', item['address'])
    ip.set('prefix', str(item['prefix']))
    dhcp = ip.find('dhcp')
    if dhcp is None:
        dhcp = etree.SubElement(ip, 'dhcp')
    _drop(dhcp, 'range')
    if item.get('dhcp_range'):
        rng = etree.Element('range', start=item['dhcp_range']['start'], end=item['dhcp_range']['end'])
        dhcp.insert(0, rng)
    if hosts is not None:
        _drop(dhcp, 'host')
        for host in hosts:
            dhcp.append(dhcp_host_element(host))
    if not len(dhcp) and not len(dhcp.attrib):
        ip.remove(dhcp)


def _render_dns(root, hosts):
    dns = root.find('dns')
    if dns is None and not hosts:
        return
    if dns is None:
        dns = _child(root, 'dns', before=('ip',))
    _drop(dns, 'host')
    for host in hosts:
        dns.append(dns_host_element(host))
    if not len(dns) and not len(dns.attrib):
        root.remove(dns)


def render(name, spec, base_xml=None):
    """The network XML for ``spec``, patched into ``base_xml`` when given."""
    if base_xml:
        root = from_string(base_xml)
    else:
        root = etree.Element('network')
        etree.SubElement(root, 'name').text = name
        # our own UUID: a definition racing another run's for the same name fails "already exists"
        etree.SubElement(root, 'uuid').text = str(uuid.uuid4())
    _render_forward(root, spec['mode'])
    _render_bridge(root, spec)
    if spec['mtu']:
        _child(root, 'mtu', before=('mac', 'domain', 'dns', 'ip')).set('size', str(spec['mtu']))
    else:
        _drop(root, 'mtu')
    if spec['mode'] == 'bridge':
        _drop(root, 'mac')  # libvirt refuses it there
    if spec['domain']:
        _child(root, 'domain', before=('dns', 'ip')).set('name', spec['domain'])
    else:
        _drop(root, 'domain')
    _render_dns(root, spec['dns_hosts'])
    for family in _network_spec.FAMILIES:
        _render_ip(root, family, spec[family], spec['dhcp_hosts'] if family == 'ipv4' else None)
    return to_string(root)

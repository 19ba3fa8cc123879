"""The backend-neutral network spec and the libvirt network XML: validation, merge, parse/render, host updates."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _network_spec as ns
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_netxml as netxml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_network import _host_ops
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def params(**kwargs):
    base = dict((key, None) for key in ('mode', 'bridge', 'mtu', 'domain', 'ipv4', 'ipv6', 'dhcp_hosts',
                                        'dns_hosts', 'autostart'))
    base.update(kwargs)
    return base


def ipv4(address='192.168.210.1', prefix=None, start=None, end=None):
    rng = {'start': start, 'end': end} if start or end else None
    return {'address': address, 'prefix': prefix, 'dhcp_range': rng}


def refused(param, fragment, **kwargs):
    with pytest.raises(SpecError) as exc:
        ns.merge(ns.partial_from_params(params(**kwargs)), None)
    assert exc.value.param == param, exc.value.msg
    assert fragment in exc.value.msg, exc.value.msg
    return exc.value.msg


# -- validation -----------------------------------------------------------------------

def test_partial_holds_only_what_was_given_and_normalizes():
    partial = ns.partial_from_params(params(
        ipv6={'address': 'FD00:0:0::1', 'prefix': None, 'dhcp_range': None},
        dhcp_hosts=[{'mac': '52:54:00:AA:00:02', 'ip': '192.168.210.20', 'name': None},
                    {'mac': '52:54:00:aa:00:01', 'ip': '192.168.210.3', 'name': 'db'}],
        mtu=0, domain=''))
    assert partial == {
        'ipv6': {'address': 'fd00::1', 'prefix': 64, 'dhcp_range': None},
        # sorted by address, MACs lower case, empty names dropped
        'dhcp_hosts': [{'mac': '52:54:00:aa:00:01', 'ip': '192.168.210.3', 'name': 'db'},
                       {'mac': '52:54:00:aa:00:02', 'ip': '192.168.210.20'}],
        'mtu': None, 'domain': None}


def test_empty_ip_dict_removes_the_family():
    assert ns.partial_from_params(params(ipv4={'address': None, 'prefix': None, 'dhcp_range': None})) == {'ipv4': None}


@pytest.mark.parametrize('kwargs, param, fragment', [
    (dict(ipv4=ipv4('192.168.210.256')), 'ipv4.address', 'not an IP address'),
    (dict(ipv4=ipv4('fd00::1')), 'ipv4.address', 'IPv6 address; an IPv4 address is needed'),
    (dict(ipv4=ipv4(prefix=33)), 'ipv4.prefix', 'not a valid prefix'),
    (dict(ipv4=ipv4(prefix=0)), 'ipv4.prefix', 'not a valid prefix'),
    (dict(ipv4=ipv4('192.168.210.0')), 'ipv4.address', 'network address'),
    (dict(ipv4=ipv4('192.168.210.255')), 'ipv4.address', 'broadcast address'),
    (dict(ipv4={'address': None, 'prefix': 24, 'dhcp_range': None}), 'ipv4.address', 'is required'),
    (dict(ipv4=ipv4(start='192.168.210.10')), 'ipv4.dhcp_range', 'needs both start and end'),
    (dict(ipv4=ipv4(start='192.168.210.100', end='192.168.211.5')), 'ipv4.dhcp_range.end', 'outside the network'),
    (dict(ipv4=ipv4(start='192.168.210.200', end='192.168.210.100')), 'ipv4.dhcp_range', 'is after end'),
    (dict(ipv4=ipv4(start='192.168.210.1', end='192.168.210.100')), 'ipv4.dhcp_range', "network's own address"),
    (dict(ipv6={'address': 'fd00::1', 'prefix': 129, 'dhcp_range': None}), 'ipv6.prefix', 'not a valid prefix'),
    (dict(mtu=20), 'mtu', 'not a valid MTU'),
    (dict(bridge='a-bridge-name-too-long'), 'bridge', 'not a valid bridge name'),
    (dict(bridge='virbr9\n'), 'bridge', 'not a valid bridge name'),
    (dict(domain='bad domain'), 'domain', 'not a valid host name'),
    (dict(mode='nope'), 'mode', 'not a mode'),
    (dict(ipv4=ipv4(), dhcp_hosts=[{'mac': 'zz', 'ip': '192.168.210.5'}]), 'dhcp_hosts[0].mac', 'not a MAC'),
    (dict(ipv4=ipv4(), dhcp_hosts=[{'mac': '01:00:00:00:00:01', 'ip': '192.168.210.5'}]),
     'dhcp_hosts[0].mac', 'multicast'),
    (dict(ipv4=ipv4(), dhcp_hosts=[{'mac': '52:54:00:00:00:01', 'ip': 'x'}]), 'dhcp_hosts[0].ip', 'not an IP'),
    (dict(ipv4=ipv4(), dhcp_hosts=[{'mac': '52:54:00:00:00:01', 'ip': '192.168.210.5'},
                                   {'mac': '52:54:00:00:00:01', 'ip': '192.168.210.6'}]),
     'dhcp_hosts[1].mac', 'already used by dhcp_hosts[0]'),
    (dict(ipv4=ipv4(), dhcp_hosts=[{'mac': '52:54:00:00:00:01'}]), 'dhcp_hosts[0]', 'needs mac and ip'),
    (dict(dns_hosts=[{'ip': '10.0.0.1', 'hostnames': []}]), 'dns_hosts[0]', 'at least one name'),
    (dict(dns_hosts=[{'ip': '10.0.0.1', 'hostnames': ['bad name']}]), 'dns_hosts[0].hostnames[0]', 'not a valid'),
    (dict(dns_hosts=[{'ip': '10.0.0.1', 'hostnames': ['a']}, {'ip': '10.0.0.1', 'hostnames': ['b']}]),
     'dns_hosts[1].ip', 'already listed'),
])
def test_bad_input_names_the_parameter(kwargs, param, fragment):
    refused(param, fragment, **kwargs)


def test_whole_spec_checks():
    refused('mode', 'needs an address', mode='nat')
    refused('ipv4', 'needs an address', ipv4={'address': None, 'prefix': None, 'dhcp_range': None})
    refused('mode', 'remove it with ipv4: {}', mode='bridge', bridge='br0', ipv4=ipv4())
    refused('bridge', 'name it', mode='bridge')
    refused('dhcp_hosts', 'outside the network', ipv4=ipv4(),
            dhcp_hosts=[{'mac': '52:54:00:00:00:01', 'ip': '10.9.9.9'}])
    refused('dhcp_hosts', 'ipv4 to be set', mode='isolated',
            dhcp_hosts=[{'mac': '52:54:00:00:00:01', 'ip': '10.9.9.9'}])
    refused('dhcp_hosts', "network's own address", ipv4=ipv4(),
            dhcp_hosts=[{'mac': '52:54:00:00:00:01', 'ip': '192.168.210.1'}])
    assert ns.merge({'mode': 'isolated'}, None)['mode'] == 'isolated'
    assert ns.merge({'mode': 'bridge', 'bridge': 'br0'}, None)['bridge'] == 'br0'


def test_changing_the_subnet_blames_ipv4_for_hosts_left_outside():
    actual = ns.merge(ns.partial_from_params(params(
        ipv4=ipv4(), dhcp_hosts=[{'mac': '52:54:00:00:00:01', 'ip': '192.168.210.5'}])), None)
    with pytest.raises(SpecError) as exc:
        ns.merge(ns.partial_from_params(params(ipv4=ipv4('192.168.211.1'))), actual)
    assert exc.value.param == 'ipv4' and 'change dhcp_hosts too' in exc.value.msg


def test_merge_keeps_what_was_left_out_and_reports_changed_fields():
    actual = ns.merge(ns.partial_from_params(params(mode='nat', bridge='vftbr0', mtu=1400, ipv4=ipv4(),
                                                    autostart=True)), None)
    assert actual['dhcp_hosts'] == [] and actual['ipv6'] is None and actual['autostart'] is True
    same = ns.merge(ns.partial_from_params(params(mtu=1400)), actual)
    assert ns.changed_fields(actual, same) == []
    changed = ns.merge(ns.partial_from_params(params(mtu=1300, dns_hosts=[{'ip': '10.0.0.1', 'hostnames': ['a']}])),
                       actual)
    assert ns.changed_fields(actual, changed) == ['mtu', 'dns_hosts']
    assert ns.restart_fields(['mtu', 'dns_hosts', 'autostart', 'dhcp_hosts']) == ['mtu']


def test_state_model():
    assert ns.target_state('started') == 'active' and ns.target_state('present') is None
    assert ns.state_steps('inactive', 'active') == [('start', 'active')]
    assert ns.state_steps('active', 'inactive') == [('destroy', 'inactive')]
    assert ns.state_steps('active', 'active') == []


# -- XML -----------------------------------------------------------------------------------

LIBVIRT_XML = '''<network>
  <name>vft-x</name>
  <uuid>16b35b0d-7ff7-4e0d-a47f-de4ce527191a</uuid>
  <forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
  <bridge name='vftx' stp='on' delay='0'/>
  <mac address='52:54:00:a6:9b:08'/>
  <dns><forwarder addr='9.9.9.9'/><host ip='192.168.210.5'><hostname>repo</hostname></host></dns>
  <ip address='192.168.210.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.210.100' end='192.168.210.150'/>
      <host mac='52:54:00:00:00:02' name='b' ip='192.168.210.11'/>
      <host mac='52:54:00:00:00:01' name='a' ip='192.168.210.10'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='fd00:0::1' prefix='64'/>
</network>'''


def test_parse_normalizes():
    name, uuid, spec, raw = netxml.parse(LIBVIRT_XML)
    assert (name, uuid) == ('vft-x', '16b35b0d-7ff7-4e0d-a47f-de4ce527191a')
    assert spec == {
        'mode': 'nat', 'bridge': 'vftx', 'mtu': None, 'domain': None,
        'ipv4': {'address': '192.168.210.1', 'prefix': 24,
                 'dhcp_range': {'start': '192.168.210.100', 'end': '192.168.210.150'}},
        'ipv6': {'address': 'fd00::1', 'prefix': 64, 'dhcp_range': None},
        'dhcp_hosts': [{'mac': '52:54:00:00:00:01', 'ip': '192.168.210.10', 'name': 'a'},
                       {'mac': '52:54:00:00:00:02', 'ip': '192.168.210.11', 'name': 'b'}],
        'dns_hosts': [{'ip': '192.168.210.5', 'hostnames': ['repo']}]}
    assert raw['ipv4_index'] == 0 and 'name="b"' in raw['dhcp_hosts'][0][1]
    assert [str(n) for n in netxml.subnets(LIBVIRT_XML)] == ['192.168.210.0/24', 'fd00::/64']


def test_render_patches_in_place_and_round_trips():
    spec = netxml.parse(LIBVIRT_XML)[2]
    spec['autostart'] = False
    spec.update(mtu=1300, domain='vft.test', ipv6=None, dns_hosts=[],
                dhcp_hosts=[{'mac': '52:54:00:00:00:03', 'ip': '192.168.210.12'}])
    xml = netxml.render('vft-x', spec, base_xml=LIBVIRT_XML)
    again = netxml.parse(xml)[2]
    again['autostart'] = False
    assert again == spec
    root = netxml.from_string(xml)
    # what the spec does not manage survives: uuid, generated MAC, NAT port range, DNS forwarder, stp
    assert root.findtext('uuid') == '16b35b0d-7ff7-4e0d-a47f-de4ce527191a'
    assert root.find('mac').get('address') == '52:54:00:a6:9b:08'
    assert root.find('forward/nat/port') is not None and root.find('dns/forwarder') is not None
    assert root.find('bridge').get('stp') == 'on' and root.find('ip').get('netmask') is None


def test_render_mode_changes():
    spec = dict(netxml.parse(LIBVIRT_XML)[2], mode='bridge', bridge='br0', ipv4=None, ipv6=None,
                dhcp_hosts=[], dns_hosts=[])
    root = netxml.from_string(netxml.render('vft-x', spec, base_xml=LIBVIRT_XML))
    assert root.find('forward').get('mode') == 'bridge' and root.find('forward/nat') is None
    assert root.find('bridge').attrib == {'name': 'br0'} and root.find('mac') is None
    assert root.find('ip') is None and root.find('dns/host') is None
    spec = dict(spec, mode='isolated', bridge='vftx', ipv4={'address': '10.0.0.1', 'prefix': 8, 'dhcp_range': None})
    root = netxml.from_string(netxml.render('vft-x', spec, base_xml=LIBVIRT_XML))
    assert root.find('forward') is None and root.find('ip').get('prefix') == '8'
    assert root.find('ip/dhcp') is None


def test_domain_taps():
    xml = '''<domain><devices>
      <interface type='network'><source network='vft-x' bridge='vftx'/><target dev='vnet3'/></interface>
      <interface type='network'><source network='other'/><target dev='vnet4'/></interface>
      <interface type='bridge'><source bridge='vftx'/><target dev='vnet5'/></interface>
    </devices></domain>'''
    assert netxml.domain_taps(xml, 'vft-x') == ['vnet3'] and netxml.domain_taps(xml, 'none') == []


def test_host_ops_delete_before_add_and_keep_unchanged():
    spec, raw = netxml.parse(LIBVIRT_XML)[2:]
    want = [spec['dhcp_hosts'][0], {'mac': '52:54:00:00:00:02', 'ip': '192.168.210.12', 'name': 'b'}]
    ops = _host_ops(raw['dhcp_hosts'], want, netxml.dhcp_host_xml)
    assert [op for op, _xml in ops] == ['delete', 'add']
    assert "ip='192.168.210.11'" in ops[0][1].replace('"', "'") and '192.168.210.12' in ops[1][1]
    assert _host_ops(raw['dhcp_hosts'], spec['dhcp_hosts'], netxml.dhcp_host_xml) == []

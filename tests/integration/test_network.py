"""virtfleet.virt.network and virtfleet.virt.network_info against the real libvirtd and dnsmasq.

A real DHCP client (busybox udhcpc) runs in a network namespace attached by a
veth pair to the network's bridge, so leases, static hosts and DNS entries are
proven by dnsmasq's answers, not by the XML alone.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import uuid

import libvirt
import pytest
from lxml import etree

from conftest import PREFIX, assert_clean_failure

NET_DIR = '/etc/libvirt/qemu/networks'


def _run(*cmd, check=True, timeout=60):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, timeout=timeout)


# -- fixtures -----------------------------------------------------------------------------

class Networks:
    """Unique ``vft-`` network names, ``vft`` bridge names and free private /24 subnets; cleans up."""

    def __init__(self, conn):
        self.conn = conn
        self.names = []
        self.host_bridges = []
        self.taken = set()

    def new(self, stem='net'):
        suffix = uuid.uuid4().hex[:6]
        name = '%s%s-%s' % (PREFIX, stem, suffix)
        self.names.append(name)
        return name, 'vft%s%s' % (stem[:3], suffix)

    def _used_octets(self):
        used = set(self.taken)
        for net in self.conn.listAllNetworks(0):
            try:
                xml = net.XMLDesc(0)
            except libvirt.libvirtError:
                continue
            for ip in etree.fromstring(xml).findall('ip'):
                address = ip.get('address') or ''
                if address.startswith('192.168.'):
                    used.add(int(address.split('.')[2]))
        for match in re.finditer(r'192\.168\.(\d+)\.', _run('ip', '-4', 'route', 'show', 'table', 'all').stdout):
            used.add(int(match.group(1)))
        return used

    def subnet(self):
        """The third octet X of a 192.168.X.0/24 no network or route on this host uses yet."""
        free = sorted(set(range(200, 255)) - self._used_octets())
        assert free, 'no free 192.168.2xx.0/24 test subnet left on this host'
        octet = random.choice(free)
        self.taken.add(octet)
        return octet

    def host_bridge(self):
        name = 'vfthb%s' % uuid.uuid4().hex[:6]
        _run('ip', 'link', 'add', name, 'type', 'bridge')
        self.host_bridges.append(name)
        return name

    def cleanup(self):
        for name in self.names:
            try:
                net = self.conn.networkLookupByName(name)
            except libvirt.libvirtError:
                continue
            for action in (net.destroy, net.undefine):
                try:
                    action()
                except libvirt.libvirtError:
                    pass
        for name in self.host_bridges:
            _run('ip', 'link', 'del', name, check=False)


@pytest.fixture
def nets(conn):
    pool = Networks(conn)
    yield pool
    pool.cleanup()


class DhcpClients:
    """Network namespaces plugged into a bridge by a veth pair, running busybox udhcpc."""

    def __init__(self):
        self.namespaces = []
        self.busybox = shutil.which('busybox')
        assert self.busybox, 'busybox (udhcpc) is missing: run tests/env/libvirt-up.sh, it installs busybox-static'

    def plug(self, bridge, mac):
        tag = uuid.uuid4().hex[:6]
        ns, host_if, ns_if = 'vft-ns-' + tag, 'vftv%sh' % tag, 'vftv%sn' % tag
        _run('ip', 'netns', 'add', ns)
        self.namespaces.append(ns)
        _run('ip', 'link', 'add', host_if, 'type', 'veth', 'peer', 'name', ns_if, 'netns', ns)
        _run('ip', 'link', 'set', host_if, 'master', bridge, 'up')
        _run('ip', '-n', ns, 'link', 'set', ns_if, 'address', mac, 'up')
        _run('ip', '-n', ns, 'link', 'set', 'lo', 'up')
        return ns, ns_if

    def lease(self, ns, ifname, hostname):
        """Ask for a lease; configure it on the interface; return the address dnsmasq gave."""
        out = _run('ip', 'netns', 'exec', ns, self.busybox, 'udhcpc', '-i', ifname, '-n', '-q', '-f',
                   '-t', '15', '-T', '1', '-x', 'hostname:%s' % hostname, '-s', '/bin/true', check=False)
        match = re.search(r'lease of (\S+) obtained', out.stdout + out.stderr)
        assert match, 'udhcpc got no lease:\n%s%s' % (out.stdout, out.stderr)
        _run('ip', '-n', ns, 'addr', 'add', match.group(1) + '/24', 'dev', ifname)
        return match.group(1)

    def resolve(self, ns, name, server):
        out = _run('ip', 'netns', 'exec', ns, self.busybox, 'nslookup', name, server, check=False)
        return out.stdout + out.stderr

    def cleanup(self):
        for ns in self.namespaces:
            _run('ip', 'netns', 'del', ns, check=False)


@pytest.fixture
def dhcp_clients():
    clients = DhcpClients()
    yield clients
    clients.cleanup()


# -- helpers ---------------------------------------------------------------------------------

def _net(conn, name):
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError:
        return None


def _snapshot(conn, name):
    """Everything a write would change: both definitions, run state, autostart, file mtime."""
    net = _net(conn, name)
    if net is None:
        return None
    path = os.path.join(NET_DIR, name + '.xml')
    return (net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE), net.XMLDesc(0) if net.isActive() else None,
            net.isActive(), net.autostart(), os.stat(path).st_mtime_ns if os.path.exists(path) else None)


def _xml(conn, name, inactive=False):
    return etree.fromstring(_net(conn, name).XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE if inactive else 0))


def _dnsmasq_pid(name):
    with open('/run/libvirt/network/%s.pid' % name) as handle:
        pid = int(handle.read().strip())
    assert os.path.exists('/proc/%d' % pid), 'dnsmasq of %s is not running' % name
    return pid


def _mtime(name):
    return os.stat(os.path.join(NET_DIR, name + '.xml')).st_mtime_ns


def _tasks(ansible, module, arg_list):
    """Run one ``module`` task per item of ``arg_list`` in a single playbook; return their results in order."""
    run_id = uuid.uuid4().hex[:8]
    out = os.path.join(ansible.workdir, 'results-%s.json' % run_id)
    tasks = [{'name': 'case %d' % i, 'virtfleet.virt.' + module: args, 'register': 'r%d' % i,
              'ignore_errors': True} for i, args in enumerate(arg_list)]
    results = '[%s]' % ', '.join('r%d' % i for i in range(len(arg_list)))
    tasks.append({'name': 'save the results', 'ansible.builtin.copy': {
        'content': '{{ %s | to_json }}' % results, 'dest': out}})
    path = os.path.join(ansible.workdir, 'play-%s.yml' % run_id)
    with open(path, 'w') as handle:
        json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], handle)
    ansible.playbook(path)
    with open(out) as handle:
        return json.load(handle)


def _nat_args(name, bridge, octet, **extra):
    args = {'name': name, 'state': 'active', 'mode': 'nat', 'bridge': bridge, 'domain': 'vft.test',
            'ipv4': {'address': '192.168.%d.1' % octet, 'prefix': 24,
                     'dhcp_range': {'start': '192.168.%d.100' % octet, 'end': '192.168.%d.150' % octet}}}
    args.update(extra)
    return args


# -- tests ------------------------------------------------------------------------------------

def test_nat_network_leases_to_a_real_client(ansible, conn, nets, dhcp_clients):
    name, bridge = nets.new('nat')
    octet = nets.subnet()
    args = _nat_args(name, bridge, octet, autostart=True, mtu=1400,
                     ipv6={'address': 'fd00:%d::1' % octet, 'prefix': 64})
    r = ansible.task('network', args)
    assert not r.get('failed'), r
    assert r['changed'] and r['actions'] == ['created', 'start'], r
    net = _net(conn, name)
    assert net.isActive() and net.autostart() and net.bridgeName() == bridge
    root = _xml(conn, name)
    assert root.find('forward').get('mode') == 'nat' and root.find('mtu').get('size') == '1400'
    assert root.find('domain').get('name') == 'vft.test'
    assert r['network']['spec']['ipv6'] == {'address': 'fd00:%d::1' % octet, 'prefix': 64, 'dhcp_range': None}
    assert r['network']['state'] == 'active' and r['network']['bridge'] == bridge
    assert r['network']['uuid'] == net.UUIDString() and r['restart_required'] is False

    # the same task again: nothing changes and nothing is written
    before = _snapshot(conn, name)
    r = ansible.task('network', args)
    assert r['changed'] is False and r['actions'] == [], r
    assert _snapshot(conn, name) == before

    # a real DHCP client on the bridge gets a lease from the range, and network_info shows it
    ns, ifname = dhcp_clients.plug(bridge, '52:54:00:aa:%02x:01' % (octet - 200))
    address = dhcp_clients.lease(ns, ifname, 'vft-client')
    assert 100 <= int(address.split('.')[3]) <= 150 and address.startswith('192.168.%d.' % octet)
    r, inactive = _tasks(ansible, 'network_info', [{'name': name}, {'states': ['inactive']}])
    assert not r.get('failed') and not r['changed'], r
    [info] = r['networks']
    assert info['name'] == name and info['state'] == 'active' and info['spec']['autostart'] is True
    leases = [lease for lease in info['dhcp_leases'] if lease['ip'] == address]
    assert leases and leases[0]['mac'] == '52:54:00:aa:%02x:01' % (octet - 200), info['dhcp_leases']
    assert leases[0]['hostname'] == 'vft-client' and leases[0]['prefix'] == 24
    # the states filter
    assert not inactive.get('failed') and name not in [n['name'] for n in inactive['networks']], inactive


def test_dhcp_and_dns_hosts_change_live(ansible, conn, nets, dhcp_clients):
    name, bridge = nets.new('live')
    octet = nets.subnet()
    base = '192.168.%d.' % octet
    args = _nat_args(name, bridge, octet)
    r = ansible.task('network', args)
    assert r['changed'] and _net(conn, name).isActive(), r
    pid = _dnsmasq_pid(name)
    mtime = _mtime(name)
    mac = '52:54:00:bb:%02x:02' % (octet - 200)
    host = {'mac': mac, 'ip': base + '10', 'name': 'fixed'}
    dns = {'ip': base + '5', 'hostnames': ['repo', 'repo.vft.test']}
    wanted = dict(args, dhcp_hosts=[host], dns_hosts=[dns])

    # check mode predicts the change and libvirt shows nothing changed; --diff shows it
    before = _snapshot(conn, name)
    r = ansible.task('network', wanted, check=True, diff=True)
    assert r['changed'] and r['actions'] == ['updated: dhcp_hosts, dns_hosts'] and not r['restart_required'], r
    assert r['diff']['before']['spec']['dhcp_hosts'] == [] and r['diff']['after']['spec']['dhcp_hosts'] == [host]
    assert r['diff']['after']['spec']['dns_hosts'] == [dns]
    assert _snapshot(conn, name) == before

    # applied live and persistently, without restarting the network (same dnsmasq)
    r = ansible.task('network', wanted, diff=True)
    assert r['changed'] and r['restart_required'] is False and r['network']['pending_restart'] == [], r
    assert _net(conn, name).isActive() and _dnsmasq_pid(name) == pid
    for inactive in (False, True):
        root = _xml(conn, name, inactive)
        hosts = root.findall('ip/dhcp/host')
        assert [(h.get('mac'), h.get('ip'), h.get('name')) for h in hosts] == [(mac, base + '10', 'fixed')]
        assert [h.text for h in root.findall('dns/host/hostname')] == ['repo', 'repo.vft.test']
    assert _mtime(name) != mtime

    # dnsmasq really serves them: the static host's MAC gets its address, the DNS entry resolves
    ns, ifname = dhcp_clients.plug(bridge, mac)
    assert dhcp_clients.lease(ns, ifname, 'fixed') == base + '10'
    answer = dhcp_clients.resolve(ns, 'repo.vft.test', base + '1')
    assert base + '5' in answer, answer

    # re-run: unchanged, nothing written, and the lease shows in the module's own result
    mtime = _mtime(name)
    r, reordered = _tasks(ansible, 'network', [
        wanted, dict(wanted, dns_hosts=[dns], dhcp_hosts=[dict(host, mac=mac.upper())])])
    assert r['changed'] is False and _mtime(name) == mtime, r
    assert base + '10' in [lease['ip'] for lease in r['network']['dhcp_leases']], r['network']
    # neither does the spelling of a MAC
    assert reordered['changed'] is False and not reordered.get('failed'), reordered

    # removed live, still without a restart
    r = ansible.task('network', dict(args, dhcp_hosts=[], dns_hosts=[]))
    assert r['changed'] and r['actions'] == ['updated: dhcp_hosts, dns_hosts'], r
    assert _net(conn, name).isActive() and _dnsmasq_pid(name) == pid
    for inactive in (False, True):
        root = _xml(conn, name, inactive)
        assert root.findall('ip/dhcp/host') == [] and root.findall('dns/host') == []


def test_isolated_network_and_autostart_with_each_state(ansible, conn, nets):
    name, bridge = nets.new('iso')
    octet = nets.subnet()
    args = {'name': name, 'mode': 'isolated', 'bridge': bridge, 'ipv4': {'address': '192.168.%d.1' % octet}}

    # present + autostart: defined, not started, autostart set
    r = ansible.task('network', dict(args, state='present', autostart=True))
    assert r['changed'] and r['actions'] == ['created'] and r['network']['state'] == 'inactive', r
    net = _net(conn, name)
    assert not net.isActive() and net.autostart()
    root = _xml(conn, name, inactive=True)
    assert root.find('forward') is None and root.find('ip').get('prefix') == '24'
    assert r['network']['spec']['mode'] == 'isolated' and r['network']['dhcp_leases'] == []

    # active + autostart false
    r = ansible.task('network', dict(args, state='active', autostart=False))
    assert r['changed'] and r['actions'] == ['updated: autostart', 'start'], r
    assert net.isActive() and not net.autostart()
    assert os.path.exists('/sys/class/net/%s/bridge' % bridge)
    assert _xml(conn, name).find('forward') is None

    # present keeps the run state; inactive + autostart true
    r = ansible.task('network', {'name': name, 'state': 'present'})
    assert not r['changed'] and r['network']['state'] == 'active'
    r = ansible.task('network', {'name': name, 'state': 'inactive', 'autostart': True})
    assert r['changed'] and r['actions'] == ['updated: autostart', 'destroy'], r
    assert not net.isActive() and net.autostart()
    assert not os.path.exists('/sys/class/net/%s' % bridge)

    # started is an alias of active
    r = ansible.task('network', {'name': name, 'state': 'started', 'autostart': True})
    assert r['changed'] and r['actions'] == ['start'] and net.isActive() and net.autostart(), r

    # absent (check mode first), then absent again
    r = ansible.task('network', {'name': name, 'state': 'absent'}, check=True, diff=True)
    assert r['changed'] and r['actions'] == ['destroy', 'deleted'] and r['diff']['after'] == {}, r
    assert net.isActive()
    r, again = _tasks(ansible, 'network', [{'name': name, 'state': 'absent'}] * 2)
    assert r['changed'] and r['network'] == {} and _net(conn, name) is None, r
    assert not os.path.exists(os.path.join(NET_DIR, name + '.xml'))
    assert again['changed'] is False and not again.get('failed'), again


def test_check_mode_create_defines_nothing(ansible, conn, nets):
    name, bridge = nets.new('chk')
    octet = nets.subnet()
    r = ansible.task('network', _nat_args(name, bridge, octet, autostart=True), check=True, diff=True)
    assert r['changed'] and r['actions'] == ['created', 'start'], r
    assert r['diff']['before'] == {} and r['diff']['after']['state'] == 'active'
    assert r['diff']['after']['spec']['ipv4']['address'] == '192.168.%d.1' % octet
    assert _net(conn, name) is None and not os.path.exists('/sys/class/net/%s' % bridge)


def test_restart_required_and_restart_with_affected_vms(ansible, conn, nets, guests):
    name, bridge = nets.new('rst')
    octet = nets.subnet()
    args = _nat_args(name, bridge, octet)
    r = ansible.task('network', args)
    assert r['changed'] and r['affected_vms'] == [], r
    vm, disk, log = guests.new('netvm')
    r = ansible.task('vm', guests.spec(vm, disk, log, state='running', interfaces=[{'network': name}]))
    assert r['changed'] and r['vm']['state'] == 'running', r
    tap = etree.fromstring(conn.lookupByName(vm).XMLDesc(0)).find('devices/interface/target').get('dev')
    assert os.path.basename(os.readlink('/sys/class/net/%s/master' % tap)) == bridge
    pid = _dnsmasq_pid(name)

    # check mode: predicts the redefinition and restart_required, writes nothing
    before = _snapshot(conn, name)
    changed = dict(args, mtu=1300)
    r = ansible.task('network', changed, check=True, diff=True)
    assert r['changed'] and r['actions'] == ['updated: mtu'] and r['restart_required'] is True, r
    assert r['diff']['before']['spec']['mtu'] is None and r['diff']['after']['spec']['mtu'] == 1300
    assert r['affected_vms'] == [vm]
    assert _snapshot(conn, name) == before

    # without restart: the definition changes, the running network does not
    r = ansible.task('network', changed)
    assert r['changed'] and r['restart_required'] is True and r['affected_vms'] == [vm], r
    assert r['network']['pending_restart'] == ['mtu']
    assert _xml(conn, name, inactive=True).find('mtu').get('size') == '1300'
    assert _xml(conn, name).find('mtu') is None and _dnsmasq_pid(name) == pid
    r = ansible.task('network', changed)
    assert not r['changed'] and r['restart_required'] is True, r

    # restart: true restarts it (check mode first); the VM is reconnected to the bridge
    r = ansible.task('network', dict(changed, restart=True), check=True)
    assert r['changed'] and r['actions'] == ['destroy', 'start'] and _dnsmasq_pid(name) == pid, r
    r = ansible.task('network', dict(changed, restart=True))
    assert r['changed'] and r['actions'] == ['destroy', 'start'] and r['restart_required'] is False, r
    assert r['affected_vms'] == [vm] and r['network']['pending_restart'] == []
    assert _xml(conn, name).find('mtu').get('size') == '1300' and _dnsmasq_pid(name) != pid
    assert os.path.basename(os.readlink('/sys/class/net/%s/master' % tap)) == bridge
    assert conn.lookupByName(vm).isActive()


def test_bridge_route_and_open_modes(ansible, conn, nets):
    host_bridge = nets.host_bridge()
    name, _bridge = nets.new('brg')
    r = ansible.task('network', {'name': name, 'state': 'active', 'mode': 'bridge', 'bridge': host_bridge})
    assert r['changed'] and r['network']['spec']['mode'] == 'bridge', r
    root = _xml(conn, name)
    assert root.find('forward').get('mode') == 'bridge' and root.find('bridge').get('name') == host_bridge
    r = ansible.task('network', {'name': name, 'state': 'active', 'mode': 'bridge', 'bridge': host_bridge})
    assert not r['changed'], r

    for mode in ('route', 'open'):
        name, bridge = nets.new(mode[:3])
        octet = nets.subnet()
        r = ansible.task('network', {'name': name, 'mode': mode, 'bridge': bridge,
                                     'ipv4': {'address': '192.168.%d.1' % octet, 'prefix': 25}})
        assert r['changed'] and not r.get('failed'), r
        root = _xml(conn, name, inactive=True)
        assert root.find('forward').get('mode') == mode and root.find('ip').get('prefix') == '25'


def test_bad_input_is_refused_and_changes_nothing(ansible, conn, nets):
    name, bridge = nets.new('bad')
    octet = nets.subnet()
    args = _nat_args(name, bridge, octet)
    r = ansible.task('network', args)
    assert r['changed'], r
    before = _snapshot(conn, name)
    sub = '192.168.%d.' % octet
    other, other_bridge = nets.new('ovl')
    cases = [
        # the upper half of the active network's /24
        (_nat_args(other, other_bridge, octet, ipv4={'address': sub + '129', 'prefix': 25}),
         'ipv4', '%s128/25 overlaps %s0/24' % (sub, sub), 'active network %s' % name),
        ({'dhcp_hosts': [{'mac': '52:54:00:zz:00:01', 'ip': sub + '10'}]}, 'dhcp_hosts[0].mac', 'not a MAC'),
        ({'dhcp_hosts': [{'mac': '01:54:00:00:00:01', 'ip': sub + '10'}]}, 'dhcp_hosts[0].mac', 'multicast'),
        ({'dhcp_hosts': [{'mac': '52:54:00:00:00:01', 'ip': '10.1.2.3'}]}, 'dhcp_hosts', 'outside'),
        ({'ipv4': {'address': '192.168.%d.300' % octet}}, 'ipv4.address', 'not an IP address'),
        ({'ipv4': {'address': sub + '1', 'prefix': 33}}, 'ipv4.prefix', 'not a valid prefix'),
        ({'ipv4': {'address': sub + '1', 'dhcp_range': {'start': sub + '100', 'end': '192.168.1.20'}}},
         'ipv4.dhcp_range.end', 'outside the network'),
        ({'mode': 'bogus'}, 'mode', 'must be one of'),
        ({'mode': 'bridge', 'bridge': 'vftnosuch0', 'ipv4': {}, 'domain': ''}, 'bridge', 'does not exist'),
        ({'dns_hosts': [{'ip': 'not-an-ip', 'hostnames': ['a']}]}, 'dns_hosts[0].ip', 'not an IP address'),
    ]
    results = _tasks(ansible, 'network', [dict(args, **extra) for extra, *_fragments in cases])
    for (extra, *fragments), r in zip(cases, results):
        assert_clean_failure(r, *fragments)
        assert not r['changed'], r
    assert _snapshot(conn, name) == before
    assert _net(conn, other) is None


def test_overlap_is_checked_when_the_network_would_run(ansible, conn, nets):
    name, bridge = nets.new('ovs')
    octet = nets.subnet()
    r = ansible.task('network', _nat_args(name, bridge, octet))
    assert r['changed'], r
    other, other_bridge = nets.new('ovd')
    args = _nat_args(other, other_bridge, octet, state='present')
    # defined but not started, it conflicts with nothing
    r = ansible.task('network', args)
    assert r['changed'] and not r.get('failed') and r['network']['state'] == 'inactive', r
    # starting it while the first network runs on the same subnet is refused, naming that network
    before = _snapshot(conn, other)
    r = ansible.task('network', dict(args, state='active'))
    assert_clean_failure(r, 'ipv4', '192.168.%d.0/24 overlaps' % octet, 'active network %s' % name)
    assert _snapshot(conn, other) == before and not _net(conn, other).isActive()

"""virtfleet.virt.host_info against the real libvirtd, run ad hoc as users do."""
from __future__ import annotations

import os

import libvirt
from lxml import etree


def test_host_info_matches_libvirt(ansible, conn, domain_type):
    rc, result = ansible.adhoc('host_info', '')
    assert rc == 0 and result['changed'] is False, ansible.last_stdout
    host = result['host']
    _model, _memory_mib, cpus, mhz, _nodes, _sockets, _cores, _threads = conn.getInfo()
    caps = etree.fromstring(conn.getCapabilities())
    assert host['uuid'] == caps.findtext('host/uuid')
    assert host['hostname'] == conn.getHostname()
    assert host['cpu']['count'] == cpus and host['cpu']['mhz'] == mhz
    assert host['cpu']['model'] == caps.findtext('host/cpu/model')
    stats = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
    assert host['memory']['total_mib'] == stats['total'] // 1024
    assert 0 < host['memory']['free_mib'] <= host['memory']['total_mib']
    assert len(host['numa']) == len(caps.findall('host/topology/cells/cell'))
    assert host['kvm']['usable'] is (domain_type == 'kvm')
    assert host['kvm']['device'] is os.path.exists('/dev/kvm')
    assert host['versions']['hypervisor_type'] == conn.getType()
    major, minor, release = (int(x) for x in host['versions']['libvirt'].split('.'))
    assert major * 1000000 + minor * 1000 + release == conn.getLibVersion()
    assert 'qemu' in host['domain_types']['x86_64']
    assert all(p['size_kib'] > 4 and p['free'] <= p['total'] for p in host['hugepages'])


def test_host_info_unreachable_uri_is_a_clear_failure(ansible):
    rc, result = ansible.adhoc('host_info', 'uri=qemu+unix:///system?socket=/nonexistent/sock')
    assert rc != 0 and 'FAILED!' in ansible.last_stdout
    assert result['msg'].startswith('cannot connect to libvirt at qemu+unix:///system?socket=/nonexistent/sock')
    assert 'Traceback' not in ansible.last_stdout


def test_vm_adhoc_key_value_args(ansible, guests, conn):
    name, disk, log = guests.new('adhoc')
    # nested options go in a JSON -a; simple ones as key=value
    rc, result = ansible.adhoc('vm', {'name': name, 'memory': 32, 'disks': [{'path': disk}]})
    assert rc == 0 and result['changed'], ansible.last_stdout
    assert conn.lookupByName(name).info()[1] == 32 * 1024
    rc, result = ansible.adhoc('vm', 'name=%s memory=32' % name)
    assert rc == 0 and result['changed'] is False
    assert not conn.lookupByName(name).isActive()
    assert libvirt.VIR_DOMAIN_SHUTOFF == conn.lookupByName(name).state()[0]

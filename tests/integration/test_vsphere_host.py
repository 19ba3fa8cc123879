"""virtfleet.virt.host_info on VMware vSphere: govmomi's vCenter simulator, checked through pyvmomi."""
from __future__ import annotations

import json

import pytest

from conftest import assert_clean_failure, vsphere_host

pytest.importorskip('pyVmomi')

HOST, CLUSTER, STANDALONE = 'DC0_C0_H0', 'DC0_C0', 'DC0_H0'
SHAPE = {'backend', 'hostname', 'uuid', 'cpu', 'memory', 'numa', 'hugepages', 'kvm', 'versions', 'domain_types'}


def test_host_info_matches_pyvmomi(ansible, vsphere, vsphere_args):
    r = ansible.task('host_info', dict(vsphere_args, host=HOST))
    assert not r.get('failed') and r['changed'] is False, r
    host = r['host']
    assert SHAPE <= set(host) and host['backend'] == 'vsphere' and host['hostname'] == HOST
    real = vsphere_host(vsphere, HOST)
    hw = real.hardware
    assert host['uuid'] == hw.systemInfo.uuid
    cpu = host['cpu']
    assert cpu['count'] == hw.cpuInfo.numCpuThreads and cpu['sockets'] == hw.cpuInfo.numCpuPackages
    assert cpu['cores_per_socket'] * cpu['sockets'] == hw.cpuInfo.numCpuCores
    assert cpu['threads_per_core'] * cpu['cores_per_socket'] * cpu['sockets'] == cpu['count']
    assert cpu['model'] == real.summary.hardware.cpuModel and cpu['mhz'] == real.summary.hardware.cpuMhz
    assert (cpu['vendor'], cpu['arch']) == ('Intel', 'x86_64')
    assert host['memory']['total_mib'] == hw.memorySize // (1024 * 1024)
    assert 0 <= host['memory']['free_mib'] <= host['memory']['total_mib']
    assert host['memory']['free_mib'] == host['memory']['total_mib'] - real.summary.quickStats.overallMemoryUsage
    assert len(host['numa']) == len(hw.numaInfo.numaNode)
    assert sorted(c for node in host['numa'] for c in node['cpus']) == sorted(
        c for node in hw.numaInfo.numaNode for c in node.cpuID)
    assert host['hugepages'] == []
    assert host['kvm'] == {'usable': False, 'device': None, 'nested': None}
    versions = host['versions']
    assert versions['hypervisor_type'] == 'ESXi' and versions['libvirt'] is None
    assert versions['hypervisor'] == real.config.product.version
    assert versions['hypervisor_build'] == real.config.product.build
    assert versions['vcenter'] == vsphere.RetrieveContent().about.version
    assert host['domain_types'] == {'x86_64': ['vmware']}
    assert host['vsphere']['cluster'] == CLUSTER and host['vsphere']['datacenter'] == 'DC0'
    assert host['vsphere']['connection_state'] == 'connected' and host['vsphere']['maintenance_mode'] is False


def test_host_choice_alias_datacenter_and_cluster(ansible, vsphere_args):
    r = ansible.task('host_info', dict(vsphere_args, esxi_hostname=STANDALONE, datacenter='DC0'))
    assert not r.get('failed') and r['host']['hostname'] == STANDALONE, r
    assert r['host']['vsphere']['cluster'] is None
    r = ansible.task('host_info', dict(vsphere_args, cluster=CLUSTER, host='DC0_C0_H1'))
    assert not r.get('failed') and r['host']['hostname'] == 'DC0_C0_H1', r
    # check mode reads the same
    r2 = ansible.task('host_info', dict(vsphere_args, cluster=CLUSTER, host='DC0_C0_H1'), check=True)
    assert r2['host']['uuid'] == r['host']['uuid'] and r2['changed'] is False


BAD = [
    ({'host': 'vft-no-such-host'}, 'host', "no ESXi host named 'vft-no-such-host'"),
    ({}, 'host', 'name one with option host'),
    ({'cluster': CLUSTER}, 'host', 'name one with option host'),
    ({'cluster': 'vft-no-such-cluster', 'host': HOST}, 'cluster', 'no cluster named'),
    ({'datacenter': 'vft-no-such-dc', 'host': HOST}, 'datacenter', 'no datacenter named'),
    ({'cluster': CLUSTER, 'host': STANDALONE}, 'host', 'no ESXi host named'),
]


@pytest.mark.parametrize('extra,param,fragment', BAD)
def test_bad_host_choice_is_a_clear_failure(ansible, vsphere_args, extra, param, fragment):
    r = ansible.task('host_info', dict(vsphere_args, **extra))
    assert_clean_failure(r, param, fragment)
    if not extra.get('host'):
        assert all(name in r['msg'] for name in ('DC0_C0_H0', 'DC0_C0_H1')), r


def test_wrong_password_is_clear_and_never_shown(ansible, vsphere_args):
    wrong = 'vft-Wr0ng-h0st-Pa55'
    r = ansible.task('host_info', dict(vsphere_args, password=wrong, host=HOST), extra_args=('-vvv',))
    assert_clean_failure(r, 'cannot log in to vSphere', 'user name or password is wrong')
    assert wrong not in json.dumps(r) and wrong not in ansible.last_stdout


def test_vsphere_options_are_refused_on_libvirt(ansible):
    r = ansible.task('host_info', {'backend': 'libvirt', 'host': HOST})
    assert_clean_failure(r, 'host', 'vsphere backend only')
    r = ansible.task('host_info', {'backend': 'libvirt', 'cluster': CLUSTER})
    assert_clean_failure(r, 'cluster', 'vsphere backend only')

"""virtfleet.virt.fleet: many VMs per call, against the real libvirtd."""
from __future__ import annotations

import json
import os

import libvirt

from conftest import assert_clean_failure, domain_snapshot, wait_ticks


def _fleet(guests, count, stem, **extra):
    vms = []
    for index in range(count):
        name, disk, log = guests.new('%s%d' % (stem, index))
        vms.append(guests.spec(name, disk, log, tags={'fleet': stem}, **extra))
    return vms


def test_fleet_converge_rerun_check_and_teardown(ansible, conn, guests):
    vms = _fleet(guests, 4, 'flt', state='running')
    vms[3]['state'] = 'present'
    r = ansible.task('fleet', {'vms': vms, 'workers': 3})
    assert not r.get('failed') and r['changed'], r
    assert r['summary'] == {'total': 4, 'changed': 4, 'failed': 0, 'skipped': 0}
    assert [x['actions'] for x in r['results']] == [['created', 'start']] * 3 + [['created']]
    for vm in vms[:3]:
        assert conn.lookupByName(vm['name']).isActive()
        wait_ticks(vm['serial'][0]['path'])
    assert not conn.lookupByName(vms[3]['name']).isActive()

    # an identical re-run changes nothing and writes nothing (persistent, live, state, autostart)
    files = dict((vm['name'], os.stat('/etc/libvirt/qemu/%s.xml' % vm['name']).st_mtime_ns) for vm in vms)
    snapshots = dict((vm['name'], domain_snapshot(conn, vm['name'])) for vm in vms)
    assert all(snapshots[vm['name']][3] is not None for vm in vms[:3]), 'live XML of the running VMs'
    r = ansible.task('fleet', {'vms': vms})
    assert r['changed'] is False and r['summary']['changed'] == 0, r
    assert all(x['actions'] == [] and x['vm']['name'] == vm['name'] for x, vm in zip(r['results'], vms))

    # check mode on a converged fleet: changed=0; with one change: exactly that one, nothing written
    r = ansible.task('fleet', {'vms': vms}, check=True)
    assert r['changed'] is False
    changed = [dict(vm) for vm in vms]
    changed[1]['vcpus'] = 2
    r = ansible.task('fleet', {'vms': changed}, check=True, diff=True)
    assert r['changed'] is True and r['summary']['changed'] == 1, r
    assert [x['changed'] for x in r['results']] == [False, True, False, False]
    assert len(r['diff']) == 1 and r['diff'][0]['after']['spec']['vcpus'] == 2
    assert files == dict((vm['name'], os.stat('/etc/libvirt/qemu/%s.xml' % vm['name']).st_mtime_ns) for vm in vms)
    assert snapshots == dict((vm['name'], domain_snapshot(conn, vm['name'])) for vm in vms)
    assert conn.lookupByName(vms[1]['name']).vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_CONFIG) == 1

    # teardown of the whole fleet in one call, powering off in parallel
    gone = [{'name': vm['name'], 'state': 'absent'} for vm in vms]
    r = ansible.task('fleet', {'vms': gone, 'force': True, 'shutdown_timeout': 0, 'workers': 4})
    assert r['changed'] and r['summary']['changed'] == 4, r
    assert all(domain_snapshot(conn, vm['name']) is None for vm in vms)
    r = ansible.task('fleet', {'vms': gone})
    assert r['changed'] is False


def test_one_failing_item_does_not_stop_the_others(ansible, conn, guests):
    vms = _fleet(guests, 3, 'fbad')
    vms[1]['disks'] = [{'path': '/nonexistent/fleet-disk.img'}]
    vms[2]['memory'] = 0
    r = ansible.task('fleet', {'vms': vms})
    assert_clean_failure(r, '2 of 3 VMs failed', vms[1]['name'], 'does not exist', vms[2]['name'],
                         'greater than zero')
    assert r['changed'] is True and [x['failed'] for x in r['results']] == [False, True, True]
    assert r['results'][0]['actions'] == ['created']
    assert domain_snapshot(conn, vms[0]['name']) is not None
    assert domain_snapshot(conn, vms[1]['name']) is None and domain_snapshot(conn, vms[2]['name']) is None


def test_fail_fast_refuses_invalid_input_before_any_change(ansible, conn, guests):
    vms = _fleet(guests, 2, 'ffast')
    vms[1]['memory'] = '1 parsec'
    r = ansible.task('fleet', {'vms': vms, 'fail_fast': True})
    assert_clean_failure(r, 'nothing was changed', 'vms[1]', 'unit')
    assert domain_snapshot(conn, vms[0]['name']) is None
    # a name listed twice, with fail_fast: refused before anything is defined
    r = ansible.task('fleet', {'vms': [vms[0], dict(vms[0])], 'fail_fast': True})
    assert_clean_failure(r, 'nothing was changed', 'listed twice')
    assert domain_snapshot(conn, vms[0]['name']) is None
    r = ansible.task('fleet', {'vms': [vms[0], dict(vms[0])]})
    assert_clean_failure(r, 'listed twice')


def _rpc_calls(path):
    """RPC procedure number -> how many calls the libvirt client log at ``path`` shows."""
    calls = {}
    with open(path) as handle:
        for line in handle:
            if 'RPC_CLIENT_MSG_TX_QUEUE' in line:
                proc = int(line.split(' proc=')[1].split()[0])
                calls[proc] = calls.get(proc, 0) + 1
    return calls


def test_fleet_of_200_reads_them_in_one_batch(ansible, conn, guests, workdir):
    """A no-op over 200 VMs: changed=0, and the VMs' state and autostart came from one listing (no lookup and no
    state call per VM: one XMLDesc per VM and a handful of calls besides, in the libvirt client's own log)."""
    vms = _fleet(guests, 200, 'fscale', state='present')
    vms[0]['state'] = 'running'
    r = ansible.task('fleet', {'vms': vms, 'workers': 4})
    assert not r.get('failed') and r['summary']['changed'] == 200, r.get('msg')
    log = os.path.join(workdir, 'fscale-rpc.log')
    if os.path.exists(log):
        os.unlink(log)
    env = {'LIBVIRT_LOG_FILTERS': '1:rpc 4:*', 'LIBVIRT_LOG_OUTPUTS': '1:file:%s' % log}
    r = ansible.task('fleet', {'vms': vms}, play_extra={'environment': env})
    assert r['changed'] is False and r['summary'] == {'total': 200, 'changed': 0, 'failed': 0, 'skipped': 0}, r
    assert all(x['vm']['name'] == vm['name'] and x['vm']['state'] == ('running' if i == 0 else 'stopped')
               for i, (x, vm) in enumerate(zip(r['results'], vms)))
    calls = _rpc_calls(log)
    lookups, states, all_stats = calls.get(23, 0), calls.get(212, 0), calls.get(344, 0)  # remote_protocol.x numbers
    assert (lookups, states, all_stats) == (0, 0, 1), calls
    assert sum(calls.values()) < 200 + 1 + 40, calls  # one XMLDesc per VM (+ the live one of the running VM)


def test_fleet_hides_the_secrets_of_its_items(ansible, guests):
    """A no_log sub-option of an item (cloud_init.user_data) is hidden everywhere in the output, also with a
    refused item beside it; check mode, nothing is written."""
    name, disk, log = guests.new('fsecret')
    secret = 'vft-fleet-secret-%s' % name[-6:]
    vms = [guests.spec(name, disk, log, cloud_init={'user_data': {'password': secret}, 'pool': 'default'},
                       bogus_option=1),
           guests.spec(name + 'b', disk, log, cloud_init={'user_data': '#cloud-config\n# %s\n' % secret})]
    r = ansible.task('fleet', {'vms': vms}, check=True, extra_args=('-vvv',))
    assert r.get('failed') and 'bogus_option' in r['msg'], r
    assert secret not in json.dumps(r) and secret not in ansible.last_stdout
    assert 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in ansible.last_stdout  # -vvv shows the invocation, scrubbed

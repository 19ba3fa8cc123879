"""The vm_fleet role's vm_fleet_snapshot against the real libvirtd: a fleet of 10 counter-guest VMs (qcow2, stopped:
the fastest snapshots) snapshotted in one fleet module run before the role changes them, reverted, the snapshots
deleted; every re-run changed=0, check mode predicts and writes nothing. Read back from the daemon."""
from __future__ import annotations

import json
import os
import re
import subprocess
import uuid

import libvirt

from conftest import assert_clean_failure, domain_snapshot

COUNT = 10
PLAY = [{'name': 'The fleet', 'hosts': 'localhost', 'gather_facts': False,
         'tasks': [{'name': 'Run vm_fleet', 'ansible.builtin.include_role': {'name': 'virtfleet.virt.vm_fleet'}}]}]


def fleet_items(guests, stem, count=COUNT):
    items = []
    for index in range(count):
        name, disk, log = guests.new('%s%d' % (stem, index))
        subprocess.run(['qemu-img', 'convert', '-O', 'qcow2', disk, disk + '.tmp'], check=True)
        os.replace(disk + '.tmp', disk)
        items.append(guests.spec(name, disk, log, disks=[{'path': disk, 'format': 'qcow2'}]))
    return items


def run_role(ansible, play, variables, check=False):
    """Run the role with ``variables``; the number of tasks that changed (or would) and the output."""
    proc = ansible.playbook(play, '-e', json.dumps(variables), *(['--check'] if check else []))
    recap = re.search(r'^localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0', proc.stdout, re.M)
    assert recap, proc.stdout
    return int(recap.group(1)), proc.stdout


def view(conn, names):
    """Per VM: the domain as domain_snapshot sees it, and its snapshots (name, current) - all a run could change."""
    found = {}
    for name in names:
        dom = conn.lookupByName(name)
        found[name] = (domain_snapshot(conn, name),
                       sorted((s.getName(), bool(s.isCurrent())) for s in dom.listAllSnapshots(0)))
    return found


def memory_kib(conn, name):
    return conn.lookupByName(name).info()[1]


def test_fleet_snapshot_revert_delete_in_one_run_each(ansible, conn, guests, workdir):
    items = fleet_items(guests, 'fsnap')
    names = [item['name'] for item in items]
    play = os.path.join(workdir, 'fleet-snapshot-%s.yml' % uuid.uuid4().hex[:6])
    with open(play, 'w') as handle:
        json.dump(PLAY, handle)
    base = {'vm_fleet_name': 'vft-fsnap-' + uuid.uuid4().hex[:6], 'vm_fleet_vms': items, 'vm_fleet_state': 'stopped',
            'vm_fleet_workers': 4}
    changed, _out = run_role(ansible, play, base)
    assert changed == 1 and all(memory_kib(conn, name) == 32 * 1024 for name in names)

    # the upgrade run: snapshot "pre" of every VM first, then the change (48 MiB, started paused: no guest CPU)
    upgrade = dict(base, vm_fleet_vms=[dict(item, memory=48) for item in items], vm_fleet_state='paused',
                   vm_fleet_snapshot='pre', vm_fleet_snapshot_description='before the upgrade')
    before = view(conn, names)
    changed, out = run_role(ansible, play, upgrade, check=True)
    assert changed == 2 and view(conn, names) == before, out  # the snapshot task and the converge task would change
    changed, out = run_role(ansible, play, upgrade)
    assert changed == 2, out
    assert out.count('(item=local: present pre)') == 1, 'the whole fleet in one module run:\n' + out
    for name in names:
        dom = conn.lookupByName(name)
        assert [s.getName() for s in dom.listAllSnapshots(0)] == ['pre']
        assert dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED and memory_kib(conn, name) == 48 * 1024
        # taken before the change: the snapshot holds the 32 MiB definition, with no memory state (stopped VM)
        snapshot = dom.snapshotLookupByName('pre').getXMLDesc(0)
        assert "<memory unit='KiB'>32768</memory>" in snapshot and '<state>shutoff</state>' in snapshot
        assert '<description>before the upgrade</description>' in snapshot
    changed, out = run_role(ansible, play, upgrade)
    assert changed == 0, out

    # revert the fleet: the VMs are back at the snapshot (stopped, 32 MiB); nothing else is converged.
    # Check mode first, through the fleet module as the role calls it (a role run costs three module runs)
    by_name = [{'name': name} for name in names]
    before = view(conn, names)
    r = ansible.task('fleet', {'vms': by_name, 'snapshot': {'name': 'pre', 'state': 'reverted'}}, check=True)
    assert r['summary'] == {'total': COUNT, 'changed': COUNT, 'failed': 0, 'skipped': 0}, r
    assert all(x['actions'] == ['updated: at_snapshot', 'reverted to snapshot pre, VM stopped'] for x in r['results'])
    assert view(conn, names) == before
    revert = dict(upgrade, vm_fleet_snapshot_state='reverted')
    changed, out = run_role(ansible, play, revert)
    assert changed == 1, out
    for name in names:
        assert conn.lookupByName(name).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
        assert memory_kib(conn, name) == 32 * 1024
    changed, out = run_role(ansible, play, revert)
    assert changed == 0, out  # provably still at "pre": libvirt's reason "from snapshot" and the marker

    # delete the snapshots of the whole fleet; the VMs stay as they are. --diff shows each VM's snapshot list
    before = view(conn, names)
    r = ansible.task('fleet', {'vms': by_name, 'snapshot': {'name': 'pre', 'state': 'absent'}}, check=True, diff=True)
    assert r['summary']['changed'] == COUNT and view(conn, names) == before, r
    assert [d['before_header'] for d in r['diff']] == ['%s snapshots' % name for name in names]
    assert all([e['name'] for e in d['before']['spec']['snapshots']] == ['pre'] and d['after']['spec']['snapshots'] == []
               for d in r['diff'])
    delete = dict(upgrade, vm_fleet_snapshot_state='absent')
    changed, out = run_role(ansible, play, delete)
    assert changed == 1, out
    after = view(conn, names)
    assert all(after[name] == (before[name][0], []) for name in names)
    changed, out = run_role(ansible, play, delete)
    assert changed == 0, out


def test_a_vm_whose_snapshot_fails_is_not_changed(ansible, conn, guests):
    """The fleet module's snapshot step: a VM that cannot take the snapshot (a raw disk) fails alone and is not
    converged; a VM that does not exist yet is created without one; with fail_fast nothing is converged."""
    good = fleet_items(guests, 'fsnapok', count=1)[0]
    name, disk, log = guests.new('fsnapraw')
    raw = guests.spec(name, disk, log, disks=[{'path': disk, 'format': 'raw'}])
    r = ansible.task('fleet', {'vms': [dict(good, state='stopped'), dict(raw, state='stopped')]})
    assert not r.get('failed'), r
    new_name, new_disk, new_log = guests.new('fsnapnew')
    new = guests.spec(new_name, new_disk, new_log, state='stopped')

    vms = [dict(good, memory=48), dict(raw, memory=48), new]
    r = ansible.task('fleet', {'vms': vms, 'snapshot': {'name': 'pre'}})
    assert_clean_failure(r, '1 of 3 VMs failed', raw['name'], 'snapshot step', 'qcow2')
    ok, bad, created = r['results']
    assert ok['actions'][:2] == ['updated: snapshots', 'created snapshot pre'] and 'memory' in ok['actions'][2], ok
    assert ok['snapshot']['name'] == 'pre' and ok['snapshot']['created'] and not ok['failed']
    assert bad['failed'] and not bad['changed'] and bad['snapshot'] == {}
    assert created['actions'] == ['created'] and created['snapshot'] == {}
    assert memory_kib(conn, good['name']) == 48 * 1024 and memory_kib(conn, raw['name']) == 32 * 1024
    assert [s.getName() for s in conn.lookupByName(good['name']).listAllSnapshots(0)] == ['pre']
    assert conn.lookupByName(raw['name']).listAllSnapshots(0) == []

    # fail_fast: the raw VM's failure stops every item before any VM changes
    vms = [dict(good, memory=64), dict(raw, memory=64)]
    r = ansible.task('fleet', {'vms': vms, 'snapshot': {'name': 'pre'}, 'fail_fast': True})
    assert_clean_failure(r, raw['name'], 'snapshot step')
    assert r['results'][0]['skipped'] and not r['results'][0]['changed'] and r['summary']['skipped'] == 1
    assert memory_kib(conn, good['name']) == 48 * 1024 and memory_kib(conn, raw['name']) == 32 * 1024

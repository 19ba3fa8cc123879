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

from conftest import domain_snapshot

COUNT = 10
PLAY = [{'name': 'The fleet', 'hosts': 'localhost', 'gather_facts': False,
         'tasks': [{'name': 'Run vm_fleet', 'ansible.builtin.include_role': {'name': 'virtfleet.virt.vm_fleet'}}]}]


def fleet_items(guests, stem):
    items = []
    for index in range(COUNT):
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

    # revert the fleet: the VMs are back at the snapshot (stopped, 32 MiB); nothing else is converged
    revert = dict(upgrade, vm_fleet_snapshot_state='reverted')
    before = view(conn, names)
    changed, out = run_role(ansible, play, revert, check=True)
    assert changed == 1 and view(conn, names) == before, out
    changed, out = run_role(ansible, play, revert)
    assert changed == 1, out
    for name in names:
        assert conn.lookupByName(name).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
        assert memory_kib(conn, name) == 32 * 1024
    changed, out = run_role(ansible, play, revert)
    assert changed == 0, out  # provably still at "pre": libvirt's reason "from snapshot" and the marker

    # delete the snapshots of the whole fleet; the VMs stay as they are
    delete = dict(upgrade, vm_fleet_snapshot_state='absent')
    before = view(conn, names)
    changed, out = run_role(ansible, play, delete, check=True)
    assert changed == 1 and view(conn, names) == before, out
    changed, out = run_role(ansible, play, delete)
    assert changed == 1, out
    after = view(conn, names)
    assert all(after[name] == (before[name][0], []) for name in names)
    changed, out = run_role(ansible, play, delete)
    assert changed == 0, out

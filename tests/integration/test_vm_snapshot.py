"""vm_snapshot and vm_snapshot_info against the real libvirtd: the counter guest on qcow2 disks, internal snapshots
with and without memory, revert, delete (with children), external disk-only snapshots, check mode, --diff,
idempotent re-runs and each bad input, read back from the daemon."""
from __future__ import annotations

import os
import subprocess
import time

import libvirt
import pytest
from lxml import etree

from conftest import assert_clean_failure, domain_snapshot, serial_ticks, wait_ticks


def daemon_view(conn, name):
    """Everything a snapshot task could change: the VM (definition, state, live XML) and its snapshots' XML."""
    dom = conn.lookupByName(name)
    snaps = sorted((s.getName(), s.getXMLDesc(0), bool(s.isCurrent())) for s in dom.listAllSnapshots(0))
    return domain_snapshot(conn, name), snaps


def snapshot_names(conn, name):
    return sorted(s.getName() for s in conn.lookupByName(name).listAllSnapshots(0))


def qcow2_guest(guests, stem='snap'):
    """A counter guest whose disk is qcow2 (converted in place: guests.cleanup removes it)."""
    name, disk, log = guests.new(stem)
    subprocess.run(['qemu-img', 'convert', '-O', 'qcow2', disk, disk + '.tmp'], check=True)
    os.replace(disk + '.tmp', disk)
    return name, disk, log


@pytest.fixture
def overlays():
    """External snapshot overlay files to remove afterwards."""
    paths = []
    yield paths
    for path in paths:
        if os.path.exists(path):
            os.unlink(path)


def overlay(disk, snapshot):
    """Where libvirt puts the overlay of an external snapshot: the disk's path, the snapshot's name for its extension."""
    return os.path.splitext(disk)[0] + '.' + snapshot


def ticks_since(log, counted, size, count=3, timeout=120):
    """The counter values the guest printed after a revert: those after the first ``counted`` of a log of
    ``size`` bytes then, or all of them when QEMU was started afresh (libvirt restarts it for a revert and the
    serial file starts empty)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ticks = serial_ticks(log)
        new = ticks if os.path.getsize(log) < size else ticks[counted:]
        if len(new) >= count:
            return new
        time.sleep(0.2)
    raise AssertionError('no %d new ticks in %s after the revert' % (count, log))


def define(ansible, guests, name, disk, log, state='stopped', fmt='qcow2', **extra):
    result = ansible.task('vm', guests.spec(name, disk, log, state=state, disks=[{'path': disk, 'format': fmt}],
                                            **extra))
    assert not result.get('failed'), result


def snap(ansible, vm, name, check=False, diff=False, **args):
    return ansible.task('vm_snapshot', dict(vm=vm, name=name, **args), check=check, diff=diff)


def test_memory_snapshot_revert_brings_the_counter_back(ansible, conn, guests):
    name, disk, log = qcow2_guest(guests)
    define(ansible, guests, name, disk, log, state='running')
    wait_ticks(log, 5)

    before = daemon_view(conn, name)
    predicted = snap(ansible, name, 'pre', check=True, diff=True, memory=True)
    assert predicted['changed'] and not predicted.get('failed'), predicted
    assert daemon_view(conn, name)[1] == before[1] == [] and conn.lookupByName(name).isActive()
    assert predicted['diff']['before']['spec']['snapshots'] == []
    assert [s['name'] for s in predicted['diff']['after']['spec']['snapshots']] == ['pre']

    low = serial_ticks(log)[-1]
    taken = snap(ansible, name, 'pre', memory=True, description='before <the> "upgrade" & more')
    high = serial_ticks(log)[-1]
    assert taken['changed'] and taken['snapshot']['memory'] and taken['snapshot']['vm_state'] == 'running', taken
    assert taken['snapshot']['description'] == 'before <the> "upgrade" & more'
    again = snap(ansible, name, 'pre', memory=True)
    assert not again['changed'] and again['actions'] == [], again

    # the guest counts on well past the snapshot, then goes back to it
    wait_ticks(log, high + 25)
    counted, size = len(serial_ticks(log)), os.path.getsize(log)
    top = serial_ticks(log)[-1]
    reverted = snap(ansible, name, 'pre', state='reverted')
    assert reverted['changed'] and reverted['vm']['state'] == 'running', reverted
    resumed = ticks_since(log, counted, size)
    # the first tick after the revert continues from the snapshot's value, not from where the guest was
    assert low <= resumed[0] <= high + 2 < top, (low, high, top, resumed[:5])
    assert conn.lookupByName(name).state()[0] == libvirt.VIR_DOMAIN_RUNNING

    # a running VM has run since its revert: not provably at the snapshot, so reverted again and reported
    assert snap(ansible, name, 'pre', state='reverted')['changed']


def test_stopped_snapshots_revert_delete_check_mode_diff_and_reruns(ansible, conn, guests):
    name, disk, log = qcow2_guest(guests)
    define(ansible, guests, name, disk, log)
    first = snap(ansible, name, 'one')
    assert first['changed'] and first['snapshot']['location'] == 'internal' and not first['snapshot']['memory']
    second = snap(ansible, name, 'two', description='child')
    assert second['snapshot']['parent'] == 'one' and second['snapshot']['current'], second
    assert not snap(ansible, name, 'two')['changed']

    # a running VM reverted to a snapshot taken while stopped: check mode predicts and writes nothing
    assert not ansible.task('vm', {'name': name, 'state': 'running'}).get('failed')
    before = daemon_view(conn, name)
    predicted = snap(ansible, name, 'one', state='reverted', check=True, diff=True)
    assert predicted['changed'] and daemon_view(conn, name) == before, predicted
    assert predicted['diff']['before']['spec']['current'] == 'two'
    assert predicted['diff']['before']['state'] == 'running' and predicted['diff']['after']['state'] == 'stopped'
    assert predicted['diff']['after']['spec']['current'] == 'one'
    assert predicted['diff']['after']['spec']['at_snapshot'] == 'one'
    done = snap(ansible, name, 'one', state='reverted')
    assert done['changed'] and done['vm']['spec']['at_snapshot'] == 'one' and done['vm']['state'] == 'stopped', done
    assert conn.lookupByName(name).snapshotCurrent(0).getName() == 'one'
    # provably still there (shut off "from snapshot", current, marked): unchanged, and nothing written
    at = daemon_view(conn, name)
    rerun = snap(ansible, name, 'one', state='reverted')
    assert not rerun['changed'] and rerun['actions'] == [] and daemon_view(conn, name) == at, rerun
    assert not snap(ansible, name, 'one', state='reverted', check=True)['changed']
    # while it stays shut off, "from snapshot" stays: a revert to another snapshot is provable too
    assert snap(ansible, name, 'two', state='reverted')['vm']['spec']['at_snapshot'] == 'two'
    assert not snap(ansible, name, 'two', state='reverted')['changed']

    # the VM ran since: not at the snapshot any more, reverted again; shut off (destroyed) before that revert, it
    # keeps the reason "destroyed", which cannot tell whether it ran since: reverted (and reported) each time
    assert not ansible.task('vm', {'name': name, 'state': 'running'}).get('failed')
    assert not ansible.task('vm', {'name': name, 'state': 'stopped', 'force': True, 'shutdown_timeout': 1}).get('failed')
    assert snap(ansible, name, 'one', state='reverted')['changed']
    unknown = snap(ansible, name, 'one', state='reverted')
    assert unknown['changed'] and unknown['vm']['spec']['at_snapshot'] is None, unknown

    # the current snapshot deleted: libvirt makes its parent current, which the VM is not at
    snap(ansible, name, 'two', state='reverted')
    snap(ansible, name, 'two', state='absent')
    assert conn.lookupByName(name).snapshotCurrent(0).getName() == 'one'
    assert snap(ansible, name, 'one', state='reverted')['changed']

    # delete with children: check mode first, then for real, then again (ok, unchanged)
    snap(ansible, name, 'three')
    snap(ansible, name, 'four')
    assert snapshot_names(conn, name) == ['four', 'one', 'three']
    before = daemon_view(conn, name)
    predicted = snap(ansible, name, 'one', state='absent', children=True, check=True, diff=True)
    assert predicted['changed'] and daemon_view(conn, name) == before, predicted
    assert [s['name'] for s in predicted['diff']['before']['spec']['snapshots']] == ['one', 'three', 'four']
    assert predicted['diff']['after']['spec']['snapshots'] == []
    gone = snap(ansible, name, 'one', state='absent', children=True)
    assert gone['changed'] and gone['snapshot'] == {} and snapshot_names(conn, name) == [], gone
    assert not snap(ansible, name, 'one', state='absent')['changed']
    # the data went too: no internal snapshot left in the qcow2 file
    listed = subprocess.run(['qemu-img', 'snapshot', '-U', '-l', disk], capture_output=True, text=True, check=True)
    assert listed.stdout.strip() == '', listed.stdout


def test_absent_without_children_moves_them_up(ansible, conn, guests):
    name, disk, log = qcow2_guest(guests)
    define(ansible, guests, name, disk, log)
    for snapshot in ('a', 'b', 'c'):
        snap(ansible, name, snapshot)
    result = snap(ansible, name, 'b', state='absent', diff=True)
    assert result['changed'], result
    parents = dict((s['name'], s['parent']) for s in result['vm']['spec']['snapshots'])
    assert parents == {'a': None, 'c': 'a'}
    assert conn.lookupByName(name).snapshotLookupByName('c', 0).getParent(0).getName() == 'a'


def test_paused_revert_of_a_memory_snapshot_is_idempotent(ansible, conn, guests):
    name, disk, log = qcow2_guest(guests)
    define(ansible, guests, name, disk, log, state='running')
    wait_ticks(log, 3)
    assert snap(ansible, name, 'm', memory=True)['changed']
    first = snap(ansible, name, 'm', state='reverted', vm_state='paused')
    assert first['changed'] and first['vm']['state'] == 'paused', first
    assert conn.lookupByName(name).state()[0] == libvirt.VIR_DOMAIN_PAUSED
    at = daemon_view(conn, name)
    again = snap(ansible, name, 'm', state='reverted', vm_state='paused')
    assert not again['changed'] and daemon_view(conn, name) == at, again
    # stopped: reverted paused, then powered off; its disks stay at the snapshot
    stopped = snap(ansible, name, 'm', state='reverted', vm_state='stopped')
    assert stopped['changed'] and not conn.lookupByName(name).isActive(), stopped


def test_snapshot_info_lists_the_tree(ansible, conn, guests):
    name, disk, log = qcow2_guest(guests, 'snapinfo')
    define(ansible, guests, name, disk, log, tags={'suite': name})
    snap(ansible, name, 'root')
    snap(ansible, name, 'leaf', description='x')
    found = ansible.task('vm_snapshot_info', {'vm': name})
    assert not found['changed'] and len(found['vms']) == 1, found
    vm = found['vms'][0]
    assert vm['current'] == 'leaf' and vm['state'] == 'stopped'
    assert [(s['name'], s['parent'], s['current'], s['memory'], s['vm_state']) for s in vm['snapshots']] == [
        ('root', None, False, False, 'stopped'), ('leaf', 'root', True, False, 'stopped')]
    assert all(s['created'] and s['created'].endswith('Z') for s in vm['snapshots'])
    by_tag = ansible.task('vm_snapshot_info', {'tags': {'suite': name}})
    assert [v['name'] for v in by_tag['vms']] == [name]
    assert ansible.task('vm_snapshot_info', {'tags': {'suite': name}, 'states': ['running']})['vms'] == []
    assert ansible.task('vm_snapshot_info', {'vm': 'vft-none-' + name[-6:]})['vms'] == []


def test_external_snapshot_is_taken_but_not_reverted(ansible, conn, guests, overlays):
    name, disk, log = qcow2_guest(guests)
    overlays.append(overlay(disk, 'outside'))
    define(ansible, guests, name, disk, log)
    snap(ansible, name, 'inside')
    taken = snap(ansible, name, 'outside', location='external')
    assert taken['changed'] and taken['snapshot']['location'] == 'external', taken
    assert os.path.exists(overlay(disk, 'outside'))
    before = daemon_view(conn, name)
    refused = snap(ansible, name, 'outside', state='reverted')
    assert_clean_failure(refused, 'libvirt 9.0 cannot revert external snapshots', 'nothing was changed')
    assert daemon_view(conn, name) == before
    # absent removes the record only (libvirt 9.0 cannot delete external data), and says so
    gone = snap(ansible, name, 'outside', state='absent')
    assert gone['changed'] and 'outside' not in snapshot_names(conn, name), gone
    assert any('only its record was removed' in w for w in gone.get('warnings', [])), gone
    assert os.path.exists(overlay(disk, 'outside'))


@pytest.mark.parametrize('case', ['unknown_vm', 'unknown_snapshot', 'raw_disk', 'running_without_memory',
                                  'quiesce_without_agent', 'double_quote', 'stopped_with_memory'])
def test_bad_input_fails_clearly_and_changes_nothing(ansible, conn, guests, case):
    name, disk, log = qcow2_guest(guests, 'snapbad')
    running = case in ('running_without_memory', 'quiesce_without_agent')
    if case == 'raw_disk':
        subprocess.run(['qemu-img', 'convert', '-O', 'raw', disk, disk + '.tmp'], check=True)
        os.replace(disk + '.tmp', disk)
    define(ansible, guests, name, disk, log, state='running' if running else 'stopped',
           fmt='raw' if case == 'raw_disk' else 'qcow2')
    if not running and case != 'raw_disk':
        assert snap(ansible, name, 'existing')['changed']
    before = daemon_view(conn, name)
    args, fragments = {
        'unknown_vm': (dict(vm='vft-nosuchvm-' + name[-6:], name='x'), ('vm: there is no VM named',)),
        'unknown_snapshot': (dict(vm=name, name='missing', state='reverted'),
                             ("has no snapshot 'missing' to revert to", "'existing'")),
        'raw_disk': (dict(vm=name, name='x'), ('location: disk vda', 'is raw', 'qcow2 disks only',
                                               'nothing was changed')),
        'running_without_memory': (dict(vm=name, name='x'), ('memory:', 'internal snapshot of a running VM must '
                                                                        'include the memory state')),
        'quiesce_without_agent': (dict(vm=name, name='x', quiesce=True, location='external'),
                                  ('quiesce: no QEMU guest agent answers', 'nothing was changed')),
        'double_quote': (dict(vm=name, name='say "hi"'), ('name: holds', 'double quote')),
        'stopped_with_memory': (dict(vm=name, name='x', memory=True), ('memory: VM', 'is stopped')),
    }[case]
    for check in (True, False):
        result = ansible.task('vm_snapshot', args, check=check)
        assert_clean_failure(result, *fragments)
        assert not result['changed']
        assert daemon_view(conn, name) == before


def test_xml_metacharacters_in_names_are_text(ansible, conn, guests):
    name, disk, log = qcow2_guest(guests)
    define(ansible, guests, name, disk, log)
    tricky = "pre<upgrade>&amp;'x'<memory snapshot='external'>"
    taken = snap(ansible, name, tricky, description="<name>other</name>")
    assert taken['changed'] and taken['snapshot']['name'] == tricky, taken
    assert snapshot_names(conn, name) == [tricky]
    root = etree.fromstring(conn.lookupByName(name).snapshotLookupByName(tricky, 0).getXMLDesc(0))
    assert root.findtext('name') == tricky and root.findtext('description') == '<name>other</name>'
    assert [m.get('snapshot') for m in root.findall('memory')] == ['no']  # no element came from the name
    assert not snap(ansible, name, tricky)['changed']
    # the revert marker holds the name in an attribute: read back equal, so the re-run is no change
    assert not ansible.task('vm', {'name': name, 'state': 'running'}).get('failed')
    assert snap(ansible, name, tricky, state='reverted')['changed']
    assert not snap(ansible, name, tricky, state='reverted')['changed']
    assert snap(ansible, name, tricky, state='absent')['changed'] and snapshot_names(conn, name) == []


def test_uefi_vm_internal_snapshot_is_refused_external_taken(ansible, conn, guests, overlays):
    name, disk, log = qcow2_guest(guests, 'snapuefi')
    overlays.append(overlay(disk, 'ext'))
    define(ansible, guests, name, disk, log, firmware='uefi')
    before = daemon_view(conn, name)
    refused = snap(ansible, name, 'x')
    assert_clean_failure(refused, 'boots with UEFI', 'location: external')
    assert daemon_view(conn, name) == before
    taken = snap(ansible, name, 'ext', location='external')
    assert taken['changed'] and taken['snapshot']['location'] == 'external', taken


def test_vm_absent_with_delete_volumes_takes_the_snapshot_data(ansible, conn, guests, storage):
    pool, path = storage.dir_pool('snappool')
    name, disk, log = guests.new('snapvol')
    volume = name + '.qcow2'
    subprocess.run(['qemu-img', 'convert', '-O', 'qcow2', disk, os.path.join(path, volume)], check=True)
    conn.storagePoolLookupByName(pool).refresh(0)
    result = ansible.task('vm', {'name': name, 'memory': 32, 'disks': [{'pool': pool, 'volume': volume}],
                                 'serial': [{'type': 'file', 'path': log}]})
    assert not result.get('failed'), result
    assert snap(ansible, name, 'kept-inside')['changed']
    volume_path = os.path.join(path, volume)
    listed = subprocess.run(['qemu-img', 'snapshot', '-U', '-l', volume_path], capture_output=True, text=True,
                            check=True).stdout
    assert 'kept-inside' in listed  # the snapshot's data is in the volume
    gone = ansible.task('vm', {'name': name, 'state': 'absent', 'delete_volumes': True})
    assert gone['changed'] and not gone.get('failed'), gone
    assert name not in [d.name() for d in conn.listAllDomains(0)]
    assert not os.path.exists(volume_path)
    assert volume not in conn.storagePoolLookupByName(pool).listVolumes()

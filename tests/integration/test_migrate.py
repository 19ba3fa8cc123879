"""virtfleet.virt.migrate between two simulated hypervisor hosts (tests/env/twohost-up.sh).

The module runs in the root namespace: it reaches the source hv1 through its unix socket and the
source libvirtd migrates peer-to-peer to hv2 over TCP on the private link between the two namespaces.
The test guest counts on its serial port, in a log file both hosts append to: a counter that keeps
increasing by one proves the guest kept running, on whichever host, and never rebooted.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid

import libvirt
import pytest

from conftest import assert_clean_failure, serial_ticks, sha256_file, wait_new_ticks, wait_ticks


def _args(twohost, name, src='hv1', dst='hv2', **extra):
    args = {'name': name, 'uri': twohost[src].uri, 'destination': twohost[dst].tcp_uri,
            'destination_connect_uri': twohost[dst].uri}
    args.update(extra)
    return args


def _state(host, name):
    dom = host.domain(name)
    return None if dom is None else dom.state()[0]


def _domains(host):
    return sorted((d.name(), d.UUIDString(), d.state()[0]) for d in host.conn.listAllDomains(0))


def assert_counting_since(log, before, more=5):
    """The guest prints ``more`` new ticks, past ``before``, and the whole log never went backwards (no reboot)."""
    ticks = wait_new_ticks(log, more, before)
    assert ticks[0] == 0, 'the log starts at the first boot'
    backwards = [(a, b) for a, b in zip(ticks, ticks[1:]) if b <= a]
    assert not backwards, 'the counter went backwards (the guest restarted): %s' % backwards[:5]
    return ticks[-1]


def _run_tasks(ansible, tasks):
    """Run several tasks in one playbook (one ansible-playbook start); return their registered results."""
    run_id = uuid.uuid4().hex[:8]
    out = os.path.join(ansible.workdir, 'results-%s.json' % run_id)
    play = {'hosts': 'localhost', 'gather_facts': False, 'tasks': []}
    for index, (module, args, check) in enumerate(tasks):
        play['tasks'].append({'name': 'task %d' % index, 'virtfleet.virt.' + module: args, 'register': 'r%d' % index,
                              'ignore_errors': True, 'check_mode': check})
    play['tasks'].append({'ansible.builtin.copy': {
        'content': '{{ [%s] | to_json }}' % ', '.join('r%d' % i for i in range(len(tasks))), 'dest': out},
        'check_mode': False})
    path = os.path.join(ansible.workdir, 'play-%s.yml' % run_id)
    with open(path, 'w') as handle:
        json.dump([play], handle)
    ansible.playbook(path)
    with open(out) as handle:
        return json.load(handle)


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError('timed out after %s s waiting for %s' % (timeout, what))


def test_live_migration_keeps_the_guest_counting(ansible, twohost, sim_guests):
    hv1, hv2 = twohost['hv1'], twohost['hv2']
    guest = sim_guests.new('hv1', storage='shared')
    first = wait_ticks(guest.log)
    hv2_before = _domains(hv2)
    # the shared directory is a local file system that libvirt cannot recognise as shared: unsafe
    args = _args(twohost, guest.name, unsafe=True)

    # check mode: pre-checks pass, the move is predicted, nothing moves
    r = ansible.task('migrate', args, check=True, diff=True)
    assert not r.get('failed'), r
    assert r['changed'] is True and r['actions'] == ['migrated (live) to %s' % hv2.tcp_uri], r
    assert r['prechecks']['cpu'] in ('identical', 'superset')
    assert r['prechecks']['networks'] == ['vft-net'] and r['prechecks']['storage_pools'] == ['vft-shared']
    assert r['vm']['hostname'] == 'vft-hv2' and r['diff']['before']['hostname'] == 'vft-hv1'
    assert _state(hv1, guest.name) == libvirt.VIR_DOMAIN_RUNNING and _domains(hv2) == hv2_before
    assert 'job' not in r

    # the live migration: the guest arrives running on hv2 and keeps counting there
    source_qemu = hv1.qemu_pid(guest.name)
    before = serial_ticks(guest.log)[-1]
    r = ansible.task('migrate', args, diff=True)
    assert not r.get('failed'), r
    assert r['changed'] is True and r['vm']['hostname'] == 'vft-hv2' and r['vm']['state'] == 'running'
    assert r['diff'] == {'before': {'uri': hv1.uri, 'hostname': 'vft-hv1', 'state': 'running'},
                         'after': {'uri': hv2.tcp_uri, 'hostname': 'vft-hv2', 'state': 'running'}}
    job = r['job']
    assert job['time_elapsed_ms'] > 0 and job['downtime_ms'] >= 0 and job['memory_iterations'] >= 1
    assert job['data_transferred_bytes'] > 0 and job['postcopy'] is False and job['wall_time_ms'] > 0
    assert hv1.domain(guest.name) is None, 'undefined on the source'
    dom = hv2.domain(guest.name)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING and dom.isPersistent()
    assert hv1.qemu_pid(guest.name) is None and not os.path.exists('/proc/%d' % source_qemu)
    assert hv2.qemu_pid(guest.name), 'only the QEMU on hv2 is left to write the log'
    last = assert_counting_since(guest.log, before)
    assert last > first

    # the same task again: it already runs on the destination, nothing is written
    definition = os.path.join(hv2.base, 'etc', 'qemu', guest.name + '.xml')
    mtime = os.stat(definition).st_mtime_ns
    r = ansible.task('migrate', args)
    assert not r.get('failed') and r['changed'] is False and r['actions'] == [], r
    r = ansible.task('migrate', args, check=True)
    assert r['changed'] is False, r
    assert os.stat(definition).st_mtime_ns == mtime

    # back to hv1, driven by the module (not peer-to-peer), with the tuning options
    back = _args(twohost, guest.name, src='hv2', dst='hv1', unsafe=True, peer_to_peer=False, auto_converge=True,
                 parallel_connections=2, compression=['xbzrle'], bandwidth=200, max_downtime=500, timeout=120)
    r = ansible.task('migrate', back)
    assert not r.get('failed'), r
    assert r['changed'] and r['vm']['hostname'] == 'vft-hv1'
    assert _state(hv1, guest.name) == libvirt.VIR_DOMAIN_RUNNING and hv2.domain(guest.name) is None

    # and to hv2 again, tunnelled through the libvirt connection, keeping the source definition
    r = ansible.task('migrate', _args(twohost, guest.name, unsafe=True, tunnelled=True, undefine_source=False))
    assert not r.get('failed'), r
    assert r['changed'] and _state(hv2, guest.name) == libvirt.VIR_DOMAIN_RUNNING
    assert _state(hv1, guest.name) == libvirt.VIR_DOMAIN_SHUTOFF, 'the source keeps a stopped definition'
    r = ansible.task('migrate', _args(twohost, guest.name, unsafe=True, tunnelled=True, undefine_source=False))
    assert r['changed'] is False and any('remains on the source' in w for w in r.get('warnings', [])), r
    assert_counting_since(guest.log, last)


def test_post_copy_switch(ansible, twohost, sim_guests):
    hv1, hv2 = twohost['hv1'], twohost['hv2']
    guest = sim_guests.new('hv1', storage='shared')
    before = wait_ticks(guest.log)
    hv1.limit_rate('8mbit')  # the memory pass takes about a second: time to switch to post-copy
    r = ansible.task('migrate', _args(twohost, guest.name, unsafe=True, post_copy=True, post_copy_after=0))
    hv1.unlimit_rate()
    assert not r.get('failed'), r
    assert _state(hv2, guest.name) == libvirt.VIR_DOMAIN_RUNNING and hv1.domain(guest.name) is None
    assert_counting_since(guest.log, before)
    # Timing on a quiet machine: the boot sector's memory (mostly zero pages) can be sent before the first
    # poll asks for the switch, and the destination does not always report statistics of the completed job.
    # Such a run proves the migration, not post-copy: it is reported as xfailed, never as a pass.
    if r['job']['postcopy'] is not True:
        pytest.xfail('the migration completed before the switch to post-copy: %s' % r['job'])
    if 'postcopy_requests' not in r['job']:
        pytest.xfail('the destination reported no statistics of the completed post-copy job: %s' % r['job'])
    assert r['job']['postcopy_requests'] >= 0, r['job']


def test_offline_migration(ansible, twohost, sim_guests):
    hv1, hv2 = twohost['hv1'], twohost['hv2']
    guest = sim_guests.new('hv1', storage='shared', start=False)
    args = _args(twohost, guest.name, mode='offline')

    r = ansible.task('migrate', args, check=True)
    assert r['changed'] is True and hv2.domain(guest.name) is None and hv1.domain(guest.name) is not None, r

    r = ansible.task('migrate', args)
    assert not r.get('failed'), r
    assert r['changed'] is True and r['actions'] == ['migrated (offline) to %s' % hv2.tcp_uri]
    assert r['vm']['state'] == 'stopped' and r['vm']['hostname'] == 'vft-hv2'
    assert r['prechecks']['memory'].startswith('not checked')
    assert hv1.domain(guest.name) is None
    dom = hv2.domain(guest.name)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF and dom.isPersistent()

    r = ansible.task('migrate', args)
    assert r['changed'] is False and r['actions'] == [], r

    # it starts on the destination from the migrated definition: the (shared) log was empty until then
    assert serial_ticks(guest.log) == []
    dom.create()
    assert_counting_since(guest.log, 0)
    assert hv2.qemu_pid(guest.name) and hv1.domain(guest.name) is None


def test_copy_storage_between_private_directories(ansible, twohost, sim_guests):
    hv1, hv2 = twohost['hv1'], twohost['hv2']
    # all: a whole raw disk; incremental: the top of a qcow2 disk whose (raw) base both hosts share
    whole = sim_guests.new('hv1', storage='private', extra_mib=2)
    base = os.path.join(twohost.shared, 'vft-base-%s.img' % uuid.uuid4().hex[:6])
    shutil.copyfile(sim_guests.image, base)
    top = sim_guests.new('hv1', storage='private', backing=base)
    try:
        digest = sha256_file(whole.disk_paths['hv1'])
        before = wait_ticks(whole.log)
        assert not os.path.exists(whole.disk_paths['hv2'])

        hv1.limit_rate('16mbit')  # long enough for the module to see the disk copy in the job statistics
        try:
            r = ansible.task('migrate', _args(twohost, whole.name, copy_storage='all'))
        finally:
            hv1.unlimit_rate()
        assert not r.get('failed'), r
        assert r['changed'] and r['actions'] == ['migrated (live, copy storage: all) to %s' % hv2.tcp_uri]
        assert r['prechecks']['copied_disks'] == [whole.disk]
        assert r['job']['disk_total_bytes'] >= 3 * 1024 * 1024 and r['job']['disk_transferred_bytes'] > 0, r['job']
        assert _state(hv2, whole.name) == libvirt.VIR_DOMAIN_RUNNING and hv1.domain(whole.name) is None
        # hv2's own copy of the disk, byte for byte
        assert sha256_file(whole.disk_paths['hv2']) == digest
        assert_counting_since(whole.log, before)

        # incremental: libvirt cannot create the top image, the pre-check says so
        before = wait_ticks(top.log)
        r = ansible.task('migrate', _args(twohost, top.name, copy_storage='incremental'))
        assert_clean_failure(r, 'copy_storage=incremental: libvirt cannot create %s' % top.disk)
        # with the top image created on hv2 over the same base, only the top is copied
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', top.disk_paths['hv2']],
                       check=True)
        hv2.conn.storagePoolLookupByName('vft-images').refresh(0)
        r = ansible.task('migrate', _args(twohost, top.name, copy_storage='incremental'))
        assert not r.get('failed'), r
        assert r['actions'] == ['migrated (live, copy storage: incremental) to %s' % hv2.tcp_uri]
        assert _state(hv2, top.name) == libvirt.VIR_DOMAIN_RUNNING and hv1.domain(top.name) is None
        assert_counting_since(top.log, before)
    finally:
        for host in (hv1, hv2):
            dom = host.domain(top.name)
            if dom is not None and dom.isActive():
                dom.destroy()
        os.unlink(base)


def _migrate_in_background(ansible, args):
    box = {}
    thread = threading.Thread(target=lambda: box.update(result=ansible.task('migrate', args)))
    thread.start()
    return thread, box


def _wait_moving(host, name, at_least=1024 * 1024, timeout=60):
    """Wait until the source's migration job of ``name`` has moved ``at_least`` bytes."""
    dom = host.domain(name)

    def moving():
        try:
            return dom.jobStats().get('data_processed', 0) >= at_least
        except libvirt.libvirtError:
            return False
    _wait(moving, timeout, 'the migration of %s to move data' % name)


def test_failures_mid_migration_leave_the_guest_running_on_the_source(ansible, twohost, sim_guests):
    """The safety proof: the destination's libvirtd dies during the migration, then a migration runs out of
    its timeout; each time the guest keeps running on the source, keeps counting, its disk is intact, and
    the module fails with a clear message. Then the migration succeeds."""
    hv1, hv2 = twohost['hv1'], twohost['hv2']
    guest = sim_guests.new('hv1', storage='private', extra_mib=8)
    digest = sha256_file(guest.disk_paths['hv1'])
    ticks = wait_ticks(guest.log)
    args = _args(twohost, guest.name, copy_storage='all', timeout=300)
    hv1.limit_rate('8mbit')  # about 1 MiB/s: the 9 MiB disk takes ~9 s to copy
    try:
        # 1. kill the destination daemon while the disk is being copied
        thread, box = _migrate_in_background(ansible, args)
        _wait_moving(hv1, guest.name)
        hv2.kill_libvirtd()
        thread.join(120)
        r = box['result']
        print('destination killed:', r['msg'])
        assert_clean_failure(r, 'migrating VM %s from' % guest.name, 'failed',
                             'Nothing moved: VM %s is still running on the source' % guest.name)
        assert r['changed'] is False
        assert _state(hv1, guest.name) == libvirt.VIR_DOMAIN_RUNNING
        ticks = assert_counting_since(guest.log, ticks)
        assert sha256_file(guest.disk_paths['hv1']) == digest

        # hv2 comes back and throws away the half-migrated guest its dead daemon had started
        twohost.up()
        _wait(lambda: hv2.domain(guest.name) is None, 30, 'hv2 to drop the incoming guest')

        # 2. a migration that runs out of its timeout is aborted cleanly
        r = ansible.task('migrate', dict(args, timeout=3))
        print('timeout:', r['msg'])
        assert_clean_failure(r, 'did not finish within timeout=3 s and was aborted',
                             'Nothing moved: VM %s is still running on the source' % guest.name)
        assert _state(hv1, guest.name) == libvirt.VIR_DOMAIN_RUNNING and hv2.domain(guest.name) is None
        ticks = assert_counting_since(guest.log, ticks)
        assert sha256_file(guest.disk_paths['hv1']) == digest
    finally:
        hv1.unlimit_rate()

    # 3. nothing the failures left behind stands in the way: the migration succeeds
    r = ansible.task('migrate', args)
    assert not r.get('failed'), r
    assert _state(hv2, guest.name) == libvirt.VIR_DOMAIN_RUNNING and hv1.domain(guest.name) is None
    assert sha256_file(guest.disk_paths['hv2']) == digest
    assert_counting_since(guest.log, ticks)


def test_prechecks_fail_before_anything_moves(ansible, twohost, sim_guests):
    hv1, hv2 = twohost['hv1'], twohost['hv2']
    guest = sim_guests.new('hv1', storage='shared')
    running_since = wait_ticks(guest.log)
    stopped = sim_guests.new('hv1', storage='shared', start=False)
    suffix = uuid.uuid4().hex[:6]
    # a network and a storage pool that exist on hv1 only, used by a third VM
    net = hv1.conn.networkDefineXML("<network><name>vft-only1-%s</name><bridge name='vftb%s' stp='off'/></network>"
                                    % (suffix, suffix))
    net.create()
    pool_dir = os.path.join(twohost.shared, 'only1-' + suffix)
    os.makedirs(pool_dir)
    pool = hv1.conn.storagePoolDefineXML("<pool type='dir'><name>vft-only1-%s</name><target><path>%s</path>"
                                         "</target></pool>" % (suffix, pool_dir), 0)
    pool.create(0)
    lonely = sim_guests.new('hv1', network=net.name(), disk_dir=pool_dir)
    # on hv2: a VM with the name of the stopped VM (another UUID), and a twin with the UUID of the third VM
    stopped_xml = hv1.domain(stopped.name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    same_name = hv2.conn.defineXML(re.sub(r'<uuid>[^<]*</uuid>', '', stopped_xml))
    twin_name = lonely.name + '-twin'
    twin = hv2.conn.defineXML(hv1.domain(lonely.name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).replace(
        '<name>%s</name>' % lonely.name, '<name>%s</name>' % twin_name))
    try:
        hv2_before = _domains(hv2)
        hv1_before = _domains(hv1)
        unreachable = 'qemu+unix:///system?socket=/nonexistent'
        cases = [
            (_args(twohost, guest.name, unsafe=True, destination_connect_uri=unreachable), False,
             ['the destination %s is not reachable' % unreachable]),
            # every failed check is named, in one message
            (_args(twohost, lonely.name, unsafe=True, destination_memory_reserve='100TiB'), False,
             ['network %s, which the VM uses, does not exist on the destination' % net.name(),
              'storage pool %s (disk vda) does not exist on the destination' % pool.name(),
              'not enough free memory on the destination']),
            (_args(twohost, lonely.name, unsafe=True, destination_memory_reserve='100TiB'), True,
             ['network %s, which the VM uses, does not exist on the destination' % net.name(),
              'storage pool %s (disk vda) does not exist on the destination' % pool.name(),
              'not enough free memory on the destination']),
            (_args(twohost, lonely.name, copy_storage='all'), False,
             ['copy_storage: the destination has no storage pool with target %s' % pool_dir]),
            (_args(twohost, guest.name, unsafe=True, destination=hv1.tcp_uri, destination_connect_uri=hv1.uri), False,
             ['is the same host as the source']),
            (_args(twohost, stopped.name), False,
             ['is stopped on the source; a live migration needs a running VM', 'mode=offline']),
            (_args(twohost, guest.name, mode='offline'), False, ['mode=offline moves stopped VMs only']),
            (_args(twohost, stopped.name, mode='offline'), False,
             ['a VM named %s already exists on the destination' % stopped.name]),
            (_args(twohost, lonely.name, unsafe=True), False,
             ['a VM with the same UUID %s already exists on the destination as %s'
              % (hv1.domain(lonely.name).UUIDString(), twin_name)]),
            (_args(twohost, 'vft-nowhere-' + suffix), False, ['exists neither on the source']),
            # libvirt itself refuses storage it cannot see as shared (without unsafe), or TLS without
            # certificates on the hosts: before anything moves, and the module says where the VM is
            (_args(twohost, guest.name), False,
             ['Unsafe migration', 'Nothing moved: VM %s is still running on the source' % guest.name]),
            (_args(twohost, guest.name, unsafe=True, tls=True), False,
             ['Nothing moved: VM %s is still running on the source' % guest.name]),
        ]
        results = _run_tasks(ansible, [('migrate', args, check) for args, check, _fragments in cases])
        for (args, check, fragments), r in zip(cases, results):
            assert_clean_failure(r, *fragments)
            assert r['changed'] is False, r
        assert _domains(hv1) == hv1_before and _domains(hv2) == hv2_before, 'nothing moved'
    finally:
        same_name.undefine()
        twin.undefine()
        lonely_dom = hv1.domain(lonely.name)
        if lonely_dom is not None:
            lonely_dom.destroy()
        net.destroy()
        net.undefine()
        pool.destroy()
        pool.undefine()
        shutil.rmtree(pool_dir, ignore_errors=True)
    # the guest ran all along: on hv1, counting past the value it had before the failed migrations,
    # without a restart (the log, shared by both hosts, never went backwards)
    assert _state(hv1, guest.name) == libvirt.VIR_DOMAIN_RUNNING and hv2.domain(guest.name) is None
    assert_counting_since(guest.log, running_since)


def test_bad_options_are_refused_before_connecting(ansible, twohost):
    cases = [
        ({'tunnelled': True, 'peer_to_peer': False}, 'tunnelled: needs peer_to_peer=true'),
        ({'mode': 'offline', 'bandwidth': 10}, 'bandwidth: applies to live migration only'),
        ({'post_copy_after': 5}, 'post_copy_after: needs post_copy=true'),
        ({'compression': ['zstd']}, 'set parallel_connections too'),
        ({'timeout': 0}, 'timeout: must be 1 or more'),
    ]
    results = _run_tasks(ansible, [('migrate', _args(twohost, 'vft-any', **bad), False) for bad, _fragment in cases])
    for (bad, fragment), r in zip(cases, results):
        assert_clean_failure(r, fragment)

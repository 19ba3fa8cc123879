"""virtfleet.virt.storage_pool and storage_pool_info against the real libvirtd."""
from __future__ import annotations

import os
import shutil
import subprocess

import libvirt
import pytest

from conftest import ENV, assert_clean_failure, pool_snapshot, volume_names


def _blkid_type(device):
    return subprocess.run(['blkid', '-o', 'value', '-s', 'TYPE', device], capture_output=True, text=True, check=False).stdout.strip()


def _persistent_file(name):
    return '/etc/libvirt/storage/%s.xml' % name


def test_dir_pool_lifecycle(ansible, conn, storage):
    name = storage.name('dir')
    path = storage.path(name)
    args = {'name': name, 'type': 'dir', 'path': path, 'build': True, 'state': 'active', 'autostart': True}

    # check mode predicts everything, defines and creates nothing
    r = ansible.task('storage_pool', args, check=True, diff=True)
    assert r['changed'] and r['actions'] == ['created', 'start'], r
    assert r['diff']['before'] == {} and r['diff']['after'] == {
        'state': 'active', 'spec': {'type': 'dir', 'path': path, 'source': {}, 'autostart': True}}
    assert pool_snapshot(conn, name) is None and not os.path.exists(path)

    r = ansible.task('storage_pool', args)
    assert r['changed'] and r['actions'] == ['created', 'start'], r
    assert r['pool']['state'] == 'active' and r['pool']['spec']['autostart'] is True
    assert r['pool']['capacity'] > 0 and r['pool']['volumes'] == []
    xml, active, autostart = pool_snapshot(conn, name)
    assert active and autostart and os.path.isdir(path)

    # the same task again: nothing changes, nothing is written
    mtime = os.stat(_persistent_file(name)).st_mtime_ns
    r = ansible.task('storage_pool', args)
    assert r['changed'] is False and r['actions'] == [], r
    assert pool_snapshot(conn, name) == (xml, 1, 1) and os.stat(_persistent_file(name)).st_mtime_ns == mtime

    # refresh rescans a file dropped into the directory, without counting as a change
    with open(os.path.join(path, 'dropped.img'), 'wb') as handle:
        handle.truncate(1024 * 1024)
    r = ansible.task('storage_pool', {'name': name, 'refresh': True})
    assert r['changed'] is False and r['refreshed'] is True and r['pool']['volumes'] == ['dropped.img'], r

    # storage_pool_info: the same shape, filtered
    r_info = ansible.task('storage_pool_info', {'name': name})
    assert r_info['pools'] == [r['pool']] and not r_info['changed']
    r_info = ansible.task('storage_pool_info', {'types': ['dir'], 'states': ['inactive']})
    assert name not in [p['name'] for p in r_info['pools']]

    # inactive + autostart off in one run (autostart is honoured with any state); check mode first
    stop = {'name': name, 'state': 'inactive', 'autostart': False}
    r = ansible.task('storage_pool', stop, check=True, diff=True)
    assert r['changed'] and r['actions'] == ['updated: autostart', 'stop'], r
    assert r['diff']['before']['state'] == 'active' and r['diff']['after']['state'] == 'inactive'
    assert r['diff']['after']['spec']['autostart'] is False
    assert pool_snapshot(conn, name)[1:] == (1, 1)
    r = ansible.task('storage_pool', stop)
    assert r['changed'] and pool_snapshot(conn, name)[1:] == (0, 0), r
    r = ansible.task('storage_pool', stop)
    assert not r['changed']

    # a new path on an active pool: saved, pending until restarted (or restarted when allowed)
    ansible.task('storage_pool', {'name': name, 'state': 'active'})
    new_path = storage.path(name + '-moved')
    os.makedirs(new_path)
    r = ansible.task('storage_pool', {'name': name, 'path': new_path})
    assert r['changed'] and r['pool']['pending_restart'] is True and r['pool']['spec']['path'] == new_path, r
    assert any('restart_if_required' in w for w in r.get('warnings', [])), r
    r = ansible.task('storage_pool', {'name': name, 'path': new_path, 'restart_if_required': True})
    assert r['changed'] and r['actions'] == ['stop', 'start'] and r['pool']['pending_restart'] is False, r
    r = ansible.task('storage_pool', {'name': name, 'path': path, 'restart_if_required': True})
    assert r['changed'] and r['pool']['volumes'] == ['dropped.img'], r

    # absent keeps the data by default (check mode changes nothing at all)
    r = ansible.task('storage_pool', {'name': name, 'state': 'absent'}, check=True, diff=True)
    assert r['changed'] and r['diff']['after'] == {} and pool_snapshot(conn, name) is not None
    r = ansible.task('storage_pool', {'name': name, 'state': 'absent'})
    assert r['changed'] and r['actions'] == ['stop', 'deleted'] and pool_snapshot(conn, name) is None, r
    assert os.path.exists(os.path.join(path, 'dropped.img'))
    r = ansible.task('storage_pool', {'name': name, 'state': 'absent'})
    assert not r['changed'] and not r.get('failed')

    # ... and deletes volumes and directory only with delete_data
    r = ansible.task('storage_pool', dict(args, autostart=False))
    assert r['changed'] and r['pool']['volumes'] == ['dropped.img'], r
    r = ansible.task('storage_pool', {'name': name, 'state': 'absent', 'delete_data': True})
    assert r['changed'] and r['deleted_volumes'] == [os.path.join(path, 'dropped.img')], r
    assert pool_snapshot(conn, name) is None and not os.path.exists(path)


def test_a_failed_data_deletion_reports_what_it_did(ansible, conn, storage):
    """An fs pool on an image file (found by the fuzzer, storage_pool #770): libvirt mounts it through an implicit loop
    device and, not recognising that mount as the pool's, leaves it mounted when it stops the pool; deleting the
    pool's directory then fails. What the run did before (start, volumes deleted, stop) is reported as a change."""
    name = storage.name('fsimg')
    path = storage.path(name)
    image = storage.path(name + '.img')
    with open(image, 'wb') as handle:
        handle.truncate(32 * 1024 * 1024)
    r = ansible.task('storage_pool', {'name': name, 'type': 'fs', 'path': path, 'build': True, 'force': True,
                                      'source': {'devices': [image], 'format': 'ext4'}, 'state': 'inactive'})
    assert r['changed'] and not os.path.ismount(path), r
    r = ansible.task('storage_pool', {'name': name, 'state': 'absent', 'delete_data': True})
    assert_clean_failure(r, 'Device or resource busy', '%s is still mounted' % path, 'without delete_data')
    assert r['changed'] and r['actions'] == ['started (to delete its volumes)',
                                             'deleted volume %s' % os.path.join(path, 'lost+found'), 'stopped',
                                             'deleted in part'], r
    # the way out the message names
    subprocess.run(['umount', path], check=True)
    os.rmdir(path)
    r = ansible.task('storage_pool', {'name': name, 'state': 'absent'})
    assert r['changed'] and r['actions'] == ['deleted'] and pool_snapshot(conn, name) is None, r


def test_fs_pool_on_a_loop_device(ansible, conn, storage):
    device = storage.loop(64)
    subprocess.run(['mkfs.ext2', '-q', '-F', device], check=True)
    name = storage.name('fs')
    path = storage.path(name)
    args = {'name': name, 'type': 'fs', 'path': path, 'source': {'devices': [device], 'format': 'ext4'},
            'build': True, 'state': 'active'}

    # the device holds another filesystem: build refuses, nothing is defined, formatted or created
    r = ansible.task('storage_pool', args)
    assert_clean_failure(r, 'force: true', device)
    assert pool_snapshot(conn, name) is None and _blkid_type(device) == 'ext2' and not os.path.exists(path)

    # check mode: the same prediction as a real run, nothing formatted
    r = ansible.task('storage_pool', dict(args, force=True), check=True, diff=True)
    assert r['changed'] and r['actions'] == ['created', 'start'], r
    assert r['diff']['after']['spec']['source'] == {'devices': [device], 'format': 'ext4'}
    assert pool_snapshot(conn, name) is None and _blkid_type(device) == 'ext2'

    # force formats it as ext4, then the pool mounts it
    r = ansible.task('storage_pool', dict(args, force=True))
    assert r['changed'] and r['pool']['state'] == 'active', r
    assert _blkid_type(device) == 'ext4' and os.path.ismount(path)
    r = ansible.task('storage_pool', args)
    assert not r['changed'], r

    # a volume on it; removing the pool (without delete_data) unmounts it and keeps the data
    r = ansible.task('volume', {'pool': name, 'name': 'keep.raw', 'capacity': 4})
    assert r['changed'] and not r.get('failed'), r
    r = ansible.task('storage_pool', {'name': name, 'state': 'absent'})
    assert r['changed'] and not os.path.ismount(path), r

    # defined again with build: the ext4 already there is kept (not formatted), with a warning
    r = ansible.task('storage_pool', args)
    assert r['changed'] and 'keep.raw' in r['pool']['volumes'], r
    assert any('not formatted' in w for w in r.get('warnings', [])), r
    assert 'keep.raw' in volume_names(conn, name) and _blkid_type(device) == 'ext4'


def test_bad_input_changes_nothing(ansible, conn, storage):
    name = storage.name('bad')
    path = storage.path(name)
    r = ansible.task('storage_pool', {'name': name, 'type': 'zfs-ish', 'path': path})
    assert_clean_failure(r, 'type', 'dir', 'logical')
    r = ansible.task('storage_pool', {'name': name, 'path': path})
    assert_clean_failure(r, 'type', 'is required')
    r = ansible.task('storage_pool', {'name': name, 'type': 'dir', 'path': path, 'source': {'devices': ['/dev/null']}})
    assert_clean_failure(r, 'source.devices', 'does not apply to dir pools')
    r = ansible.task('storage_pool', {'name': name, 'type': 'fs', 'path': path})
    assert_clean_failure(r, 'source.devices', 'required for fs pools')
    r = ansible.task('storage_pool', {'name': name, 'type': 'fs', 'path': path,
                                      'source': {'devices': ['/dev/vft-no-such-disk']}})
    assert_clean_failure(r, 'source.devices', 'does not exist')
    r = ansible.task('storage_pool', {'name': name, 'type': 'netfs', 'path': path,
                                      'source': {'host': 'nfs1', 'dir': '/export', 'format': 'ext4'}})
    assert_clean_failure(r, 'source.format', "'ext4' is not a format of netfs pools")
    r = ansible.task('storage_pool', {'name': name, 'type': 'dir', 'path': 'relative/dir'})
    assert_clean_failure(r, 'path', 'absolute')
    caps = conn.getStoragePoolCapabilities(0)
    if "<pool type='rbd' supported='no'>" in caps:
        r = ansible.task('storage_pool', {'name': name, 'type': 'rbd',
                                          'source': {'name': 'rbd', 'hosts': ['mon1:6789']}})
        assert_clean_failure(r, 'type', 'rbd pools are not supported by libvirt')
    assert pool_snapshot(conn, name) is None and not os.path.exists(path)

    # the type of an existing pool does not change
    r = ansible.task('storage_pool', {'name': name, 'type': 'dir', 'path': path})
    assert r['changed'], r
    r = ansible.task('storage_pool', {'name': name, 'type': 'netfs', 'path': path})
    assert_clean_failure(r, 'type', 'is a dir pool')


def _definition(kind, name, storage):
    """Options of a ``kind`` pool named ``name`` and the spec it should read back as."""
    unique = name.rsplit('-', 1)[1]
    if kind == 'netfs':
        path = storage.path(name)
        source = {'host': 'nfs-%s.example:2049' % unique, 'dir': '/export/' + unique}
        return ({'path': path, 'source': source},
                {'path': path, 'source': {'hosts': [source['host']], 'dir': source['dir'], 'format': 'auto'}})
    if kind == 'logical':
        # devices need not exist for a definition, but the module checks local paths: use real ones
        devices = [storage.loop(8), storage.loop(8)]
        vg = 'vftvg' + unique
        return ({'source': {'devices': devices, 'name': vg}},
                {'path': '/dev/' + vg, 'source': {'devices': devices, 'name': vg, 'format': 'lvm2'}})
    if kind == 'disk':
        devices = [storage.loop(8)]
        return ({'source': {'devices': devices, 'format': 'gpt'}},
                {'path': '/dev', 'source': {'devices': devices, 'format': 'gpt'}})
    source = {'host': '192.0.2.10:3260', 'iqn': 'iqn.2024-01.example:' + unique, 'initiator': 'iqn.2024-01.example:h',
              'auth': {'username': 'u1', 'secret_usage': 'vft-chap-' + unique}}
    return ({'source': source},
            {'path': '/dev/disk/by-path', 'source': {'hosts': [source['host']], 'iqn': source['iqn'],
                                                     'initiator': source['initiator'],
                                                     'auth': dict(source['auth'], type='chap')}})


@pytest.mark.parametrize('kind', ['netfs', 'logical', 'disk', 'iscsi'])
def test_other_types_are_defined_and_idempotent(ansible, conn, storage, kind):
    """Definitions round-trip for every type libvirt has here (starting them needs the real storage)."""
    name = storage.name(kind)
    args, expected = _definition(kind, name, storage)
    task = dict(args, name=name, type=kind)
    r = ansible.task('storage_pool', task, diff=True)
    assert r['changed'] and r['pool']['state'] == 'inactive', r
    assert r['pool']['spec'] == dict(expected, type=kind, autostart=False), r['pool']['spec']
    assert r['diff']['after']['spec'] == r['pool']['spec']
    r = ansible.task('storage_pool', task)
    assert not r['changed'], r
    r = ansible.task('storage_pool_info', {'types': [kind], 'name': name})
    assert [p['name'] for p in r['pools']] == [name]
    r = ansible.task('storage_pool', {'name': name, 'state': 'absent'})
    assert r['changed'] and pool_snapshot(conn, name) is None


def _modprobe(module):
    """Load a kernel module when this machine can (True when it loaded)."""
    tool = shutil.which('modprobe')
    return bool(tool) and subprocess.run([tool, '-q', module], capture_output=True, check=False).returncode == 0


def _device_mapper_reason():
    if not os.path.exists('/dev/mapper/control') and not (_modprobe('dm_mod') and os.path.exists('/dev/mapper/control')):
        return 'this kernel has no device-mapper (/dev/mapper/control is missing, modprobe dm_mod fails): LVM cannot work here'
    if not shutil.which('vgcreate'):
        return 'the LVM tools are not installed (lvm2)'
    return None


def test_logical_pool_on_a_loop_device(ansible, conn, storage):
    reason = _device_mapper_reason()
    if reason:
        pytest.skip(reason)
    device = storage.loop(64)
    name = storage.name('lvm')
    vg = name.replace('-', '_')
    args = {'name': name, 'type': 'logical', 'source': {'devices': [device], 'name': vg}, 'build': True,
            'state': 'active'}
    r = ansible.task('storage_pool', args)
    assert r['changed'] and r['pool']['state'] == 'active', r
    assert subprocess.run(['vgs', vg], capture_output=True, check=False).returncode == 0
    assert not ansible.task('storage_pool', args)['changed']
    r = ansible.task('volume', {'pool': name, 'name': 'lv1', 'capacity': 8})
    assert r['changed'] and os.path.exists('/dev/%s/lv1' % vg), r
    assert not ansible.task('volume', {'pool': name, 'name': 'lv1', 'capacity': 8})['changed']
    r = ansible.task('volume', {'pool': name, 'name': 'lv1', 'capacity': 8, 'format': 'qcow2'})
    assert_clean_failure(r, 'format')
    r = ansible.task('storage_pool', {'name': name, 'state': 'absent', 'delete_data': True})
    assert r['changed'] and subprocess.run(['vgs', vg], capture_output=True, check=False).returncode != 0, r


def _nfs_reason():
    """Why this machine cannot run the netfs test (None when it can): only the kernel may say no.

    tests/env/nfs-up.sh installs and starts an NFS server on 127.0.0.1; it exits 3 with the reason
    when the kernel has no NFS client or server, and anything else it fails on fails the test.
    """
    if os.environ.get('VIRTFLEET_TEST_NFS'):
        return None
    proc = subprocess.run(['bash', os.path.join(ENV, 'nfs-up.sh')], capture_output=True, text=True, timeout=600,
                          check=False)
    if proc.returncode == 3:
        return proc.stdout.strip()
    assert proc.returncode == 0, 'tests/env/nfs-up.sh failed:\n' + proc.stdout + proc.stderr
    return None


def test_netfs_pool_mounts_an_nfs_export(ansible, conn, storage):
    reason = _nfs_reason()
    if reason:
        pytest.skip(reason)
    local = not os.environ.get('VIRTFLEET_TEST_NFS')
    if local:
        export_dir = storage.path(storage.name('export'))
        os.makedirs(export_dir)
        subprocess.run(['exportfs', '-o', 'rw,no_root_squash,insecure', '127.0.0.1:' + export_dir], check=True)
        host = '127.0.0.1'
    else:
        host, export_dir = os.environ['VIRTFLEET_TEST_NFS'].split(':', 1)
    try:
        name = storage.name('nfs')
        path = storage.path(name)
        args = {'name': name, 'type': 'netfs', 'path': path, 'build': True, 'state': 'active',
                'source': {'host': host, 'dir': export_dir, 'format': 'nfs'}}
        r = ansible.task('storage_pool', args)
        assert r['changed'] and r['pool']['state'] == 'active' and os.path.ismount(path), r
        assert not ansible.task('storage_pool', args)['changed']
        volume = name + '.qcow2'
        r = ansible.task('volume', {'pool': name, 'name': volume, 'format': 'qcow2', 'capacity': 8})
        assert r['changed'] and os.path.exists(os.path.join(path, volume)), r
        r = ansible.task('volume', {'pool': name, 'name': volume, 'state': 'absent'})
        assert r['changed'], r
        r = ansible.task('storage_pool', {'name': name, 'state': 'absent'})
        assert r['changed'] and not os.path.ismount(path)
    finally:
        if local:
            subprocess.run(['exportfs', '-u', '127.0.0.1:' + export_dir], check=False)


def test_autostart_left_out_is_kept(ansible, conn, storage):
    """autostart left out keeps whatever the pool has, also when only the state changes."""
    name = storage.name('keep')
    path = storage.path(name)
    r = ansible.task('storage_pool', {'name': name, 'type': 'dir', 'path': path, 'build': True,
                                      'autostart': True, 'state': 'inactive'})
    assert r['changed'] and pool_snapshot(conn, name)[1:] == (0, 1), r
    r = ansible.task('storage_pool', {'name': name, 'state': 'active'})
    assert r['changed'] and r['actions'] == ['start'] and pool_snapshot(conn, name)[1:] == (1, 1), r
    assert conn.storagePoolLookupByName(name).info()[0] == libvirt.VIR_STORAGE_POOL_RUNNING

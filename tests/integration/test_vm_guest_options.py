"""virtfleet.virt.vm's guest-facing options against the real libvirtd, with the boot-sector guest: the cloud-init
seed the module keeps for a VM, the guest agent's channel, direct kernel boot, and what wait_for_address refuses.
What a real Linux guest does with them is proven in test_real_guests.py."""
from __future__ import annotations

import json
import os

import libvirt
import pytest
from lxml import etree

from conftest import assert_clean_failure, volume_names
from test_cloud_init import _extract, _label

SECRET = 'vft-Seed-Secret-9'
AGENT = 'org.qemu.guest_agent.0'


def _xml(conn, name, live=False):
    dom = conn.lookupByName(name)
    return etree.fromstring(dom.XMLDesc(0 if live else libvirt.VIR_DOMAIN_XML_INACTIVE))


def _defined(conn, name):
    try:
        conn.lookupByName(name)
        return True
    except libvirt.libvirtError:
        return False


def test_cloud_init_seed_kept_with_the_vm(ansible, conn, guests, storage, workdir):
    pool, path = storage.dir_pool('ci')
    name, disk, log = guests.new('ci')
    seed = os.path.join(path, name + '-cidata.iso')
    user_data = '#cloud-config\npassword: %s\nwrite_files:\n  - path: /etc/vft\n    content: one\n' % SECRET
    cloud_init = {'user_data': user_data, 'meta_data': {'local-hostname': 'vft-one'}}
    args = guests.spec(name, disk, log, state='running', cloud_init=cloud_init)

    # no pool to keep the seed in: refused before anything is written
    r = ansible.task('vm', args)
    assert_clean_failure(r, 'cloud_init.pool', 'no disk in a storage pool')
    assert not _defined(conn, name) and volume_names(conn, pool) == []

    # not YAML: refused, naming the option, nothing written
    bad = dict(args, cloud_init={'pool': pool, 'user_data': '#cloud-config\nwrite_files: [\n'})
    r = ansible.task('vm', bad)
    assert_clean_failure(r, 'cloud_init.user_data', 'not valid YAML')
    assert not _defined(conn, name) and volume_names(conn, pool) == []

    args['cloud_init'] = dict(cloud_init, pool=pool)
    r = ansible.task('vm', args, check=True, diff=True)
    assert r['changed'] and r['actions'] == ['created', 'start'], r
    assert not _defined(conn, name) and volume_names(conn, pool) == []
    after = r['diff']['after']['spec']['cloud_init']
    assert after['volume'] == name + '-cidata.iso' and after['pool'] == pool and len(after['content_sha256']) == 64

    r = ansible.task('vm', args)
    assert r['changed'] and not r.get('failed'), (r.get('msg'), r['actions'])
    assert SECRET not in json.dumps(r) and SECRET not in ansible.last_stdout
    assert volume_names(conn, pool) == [name + '-cidata.iso'] and _label(seed) == 'cidata'
    files = _extract(seed, os.path.join(workdir, name + '-1'))
    assert files['user-data'] == user_data
    assert json.loads(files['meta-data']) == {'instance-id': name, 'local-hostname': 'vft-one'}
    disks = _xml(conn, name).findall("devices/disk/source[@volume='%s-cidata.iso']/.." % name)
    assert len(disks) == 1 and disks[0].find('target').get('bus') == 'virtio'
    assert disks[0].find('readonly') is not None and disks[0].find('source').get('pool') == pool
    assert r['vm']['spec']['cloud_init'] == after

    # the same task again: the seed is not rewritten, the VM not redefined
    stat = os.stat(seed)
    xml = conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    r = ansible.task('vm', args, check=True, diff=True)
    assert r['changed'] is False, (r['diff']['before']['spec']['disks'], r['diff']['after']['spec']['disks'])
    r = ansible.task('vm', args)
    assert r['changed'] is False and r['actions'] == [] and r['reboot_required'] is False, r
    assert (os.stat(seed).st_ino, os.stat(seed).st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == xml
    # a task that does not name cloud_init leaves the seed attached, though its disks list does not name it
    r = ansible.task('vm', dict(args, cloud_init=None))
    assert r['changed'] is False, r

    # new content on the running VM: rewritten, reboot_required, and the instance-id note
    changed = dict(args, cloud_init=dict(args['cloud_init'], user_data=user_data.replace('one', 'two')))
    r = ansible.task('vm', changed, check=True)
    assert r['changed'] and r['actions'] == ['updated: cloud_init'] and r['reboot_required'] is True, r
    assert os.stat(seed).st_mtime_ns == stat.st_mtime_ns
    r = ansible.task('vm', changed)
    assert r['changed'] and r['actions'] == ['updated: cloud_init'] and r['reboot_required'] is True, r
    assert any('instance-id' in w for w in r.get('warnings', [])), r
    assert 'content: two' in _extract(seed, os.path.join(workdir, name + '-2'))['user-data']
    assert conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == xml
    r = ansible.task('vm', changed)
    assert r['changed'] is False, r

    # removed with the VM's volumes
    r = ansible.task('vm', {'name': name, 'state': 'absent', 'force': True, 'shutdown_timeout': 0, 'delete_volumes': True})
    assert r['changed'] and seed in r['deleted_volumes'], r
    assert volume_names(conn, pool) == [] and not os.path.exists(seed)


def test_guest_agent_channel_and_direct_kernel_boot(ansible, conn, guests, workdir):
    name, disk, log = guests.new('kb')
    kernel, initrd = os.path.join(workdir, name + '.vmlinuz'), os.path.join(workdir, name + '.initrd')
    for path in (kernel, initrd):
        with open(path, 'wb') as handle:
            handle.write(b'not booted: the VM stays stopped')
    args = guests.spec(name, disk, log, state='stopped', guest_agent=True, kernel=kernel, initrd=initrd,
                       cmdline='root=LABEL=root console=ttyS0')

    # what cannot work is refused, naming the option
    r = ansible.task('vm', dict(args, kernel=kernel + '.missing'))
    assert_clean_failure(r, 'kernel', 'is not a file')
    r = ansible.task('vm', dict(args, kernel=None))
    assert_clean_failure(r, 'initrd', 'applies only with kernel')
    assert not _defined(conn, name)

    r = ansible.task('vm', args)
    assert r['changed'] and not r.get('failed'), r
    root = _xml(conn, name)
    assert [c.find('target').get('name') for c in root.findall('devices/channel')] == [AGENT]
    assert root.findtext('os/kernel') == kernel and root.findtext('os/initrd') == initrd
    assert root.findtext('os/cmdline') == 'root=LABEL=root console=ttyS0'
    assert r['vm']['spec']['guest_agent'] is True and r['vm']['spec']['kernel'] == kernel
    r = ansible.task('vm', args)
    assert r['changed'] is False, r

    # compared and updated like any option; an empty string removes one
    r = ansible.task('vm', dict(args, cmdline='console=ttyS0'), check=True, diff=True)
    assert r['changed'] and r['diff']['after']['spec']['cmdline'] == 'console=ttyS0', r
    assert _xml(conn, name).findtext('os/cmdline') == 'root=LABEL=root console=ttyS0'
    r = ansible.task('vm', dict(args, kernel='', initrd='', cmdline='', guest_agent=False))
    assert r['changed'] and r['actions'] == ['updated: kernel, initrd, cmdline, guest_agent'], r
    root = _xml(conn, name)
    assert root.find('os/kernel') is None and root.find('os/initrd') is None and root.find('os/cmdline') is None
    assert root.findall('devices/channel') == []

    # the channel is hot-added to (and removed from) a running VM
    r = ansible.task('vm', {'name': name, 'state': 'running'})
    assert r['changed'], r
    r = ansible.task('vm', {'name': name, 'state': 'running', 'guest_agent': True})
    assert r['changed'] and r['reboot_required'] is False, r
    assert [c.find('target').get('name') for c in _xml(conn, name, live=True).findall('devices/channel')] == [AGENT]
    assert [c.find('target').get('name') for c in _xml(conn, name).findall('devices/channel')] == [AGENT]
    r = ansible.task('vm', {'name': name, 'state': 'running', 'guest_agent': False})
    assert r['changed'] and r['reboot_required'] is False, r
    assert _xml(conn, name, live=True).findall('devices/channel') == []


def test_wait_for_address_refusals(ansible, conn, guests, test_network):
    name, disk, log = guests.new('wa')
    args = guests.spec(name, disk, log, state='running', wait_for_address=True, wait_for_address_timeout=3)

    # no interface: refused at once, before anything is written
    r = ansible.task('vm', args)
    assert_clean_failure(r, 'wait_for_address', 'no network interface')
    assert not _defined(conn, name)

    # a stopped VM never gets one
    r = ansible.task('vm', dict(args, state='stopped', interfaces=[{'network': test_network}]))
    assert r['failed'] and 'only a running VM gets an address' in r['msg'], r
    assert r['changed'] and r['actions'] == ['created'], 'the VM it created is reported'

    # the boot sector never asks for an address: the wait ends at its timeout and says what it looked at
    r = ansible.task('vm', dict(args, interfaces=[{'network': test_network}]))
    assert r['failed'] and 'no IPv4 address after waiting wait_for_address_timeout (3 s)' in r['msg'], r
    assert r['changed'] and r['actions'] == ['start'], 'the start it made is reported'
    assert conn.lookupByName(name).isActive()


@pytest.mark.parametrize('mode', ['acpi', 'agent'])
def test_shutdown_mode_reaches_libvirt(ansible, conn, guests, mode):
    """The boot sector answers neither the power button nor an agent: the graceful request is made the way
    shutdown_mode says (the agent one fails at once without an agent), and force powers it off."""
    name, disk, log = guests.new('sm')
    args = guests.spec(name, disk, log, state='running', guest_agent=True)
    assert not ansible.task('vm', args).get('failed')
    r = ansible.task('vm', dict(args, state='stopped', shutdown_mode=mode, shutdown_timeout=2))
    assert r['failed'], r
    if mode == 'agent':
        assert 'asking VM %s to shut down (agent)' % name in r['msg'] and 'agent' in r['msg'], r
    else:
        assert 'did not reach stopped within shutdown_timeout (2 s)' in r['msg'], r
    r = ansible.task('vm', dict(args, state='stopped', shutdown_mode=mode, shutdown_timeout=2, force=True))
    assert r['changed'] and not r.get('failed') and r['actions'][-1].startswith('destroy'), r
    assert not conn.lookupByName(name).isActive()


def test_a_seed_in_an_inactive_pool_does_not_break_reading_the_vm(ansible, conn, guests, storage):
    """A VM whose seed volume's pool is stopped: vm_info (and vm_fleet, which lists every VM) still read it, the
    seed's content unknown; a task that asks for cloud_init says the pool is inactive. A cloud_fleet_remove.yml run
    that failed half-way left such a VM, and every later vm_info on the host failed."""
    pool, _path = storage.dir_pool('cio')
    name, disk, log = guests.new('cio')
    args = guests.spec(name, disk, log, cloud_init={'pool': pool, 'user_data': '#cloud-config\n{}\n'})
    r = ansible.task('vm', args)
    assert r['changed'] and not r.get('failed'), r
    conn.storagePoolLookupByName(pool).destroy()
    try:
        r = ansible.task('vm_info', {'name': name})
        assert not r.get('failed'), r
        assert r['vms'][0]['spec']['cloud_init'] == {'pool': pool, 'volume': name + '-cidata.iso',
                                                     'content_sha256': None, 'files': []}, r['vms'][0]['spec']
        r = ansible.task('vm', args)
        assert_clean_failure(r, "storage pool '%s' is inactive" % pool)
        assert not r['changed'], r
    finally:
        conn.storagePoolLookupByName(pool).create(0)

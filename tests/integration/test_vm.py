"""virtfleet.virt.vm against the real libvirtd: lifecycle, idempotency, check mode, diff, live updates."""
from __future__ import annotations

import os

import libvirt
import pytest
from lxml import etree

from conftest import assert_clean_failure, domain_snapshot, wait_ticks

TAGS_NS = 'https://virtfleet.dev/xmlns/virt/vm/1.0'


def _persistent_file(name):
    return '/etc/libvirt/qemu/%s.xml' % name


def test_lifecycle(ansible, conn, guests, domain_type):
    name, disk, log = guests.new('life')
    args = guests.spec(name, disk, log, state='running', vcpus=1, max_vcpus=4, memory=32, max_memory=64,
                       tags={'fleet': 'it'})

    # create and start; the guest's serial output proves it really executes
    r = ansible.task('vm', args)
    assert not r.get('failed'), r
    assert r['changed'] and r['actions'] == ['created', 'start']
    assert r['vm']['state'] == 'running' and r['vm']['spec']['domain_type'] == domain_type
    dom = conn.lookupByName(name)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    first = wait_ticks(log)

    # the same task again: nothing changes and nothing is written
    mtime = os.stat(_persistent_file(name)).st_mtime_ns
    xml_before = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    r = ansible.task('vm', args)
    assert r['changed'] is False and r['actions'] == [], r
    assert os.stat(_persistent_file(name)).st_mtime_ns == mtime
    assert dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == xml_before

    # check mode predicts the change, libvirt shows nothing changed, --diff shows it
    changed = dict(args, memory=48, vcpus=2)
    r = ansible.task('vm', changed, check=True, diff=True)
    assert r['changed'] is True and r['actions'] == ['updated: memory, vcpus'], r
    assert r['diff']['before']['spec']['memory'] == 32 and r['diff']['after']['spec']['memory'] == 48
    assert r['diff']['before']['spec']['vcpus'] == 1 and r['diff']['after']['spec']['vcpus'] == 2
    assert dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == xml_before
    assert os.stat(_persistent_file(name)).st_mtime_ns == mtime
    assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE) == 1

    # live update: vCPUs hot-plugged up to max_vcpus, memory written to the config
    r = ansible.task('vm', changed, diff=True)
    assert r['changed'] is True, r
    assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE) == 2
    assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_CONFIG) == 2
    config = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert config.findtext('currentMemory') == str(48 * 1024)
    # The boot-sector guest has no balloon driver, so QEMU cannot shrink its memory: the module
    # must say so truthfully instead of pretending the running guest took it.
    live = etree.fromstring(dom.XMLDesc(0))
    if live.findtext('currentMemory') == str(48 * 1024):
        assert r['reboot_required'] is False
    else:
        assert r['reboot_required'] is True and 'memory' in r['vm']['pending_restart']
    assert 'vcpus' not in r['vm']['pending_restart']
    assert wait_ticks(log, first) > first, 'the guest kept running through the live update'

    # a change that cannot be applied live says reboot_required, and keeps saying it
    r = ansible.task('vm', dict(changed, max_vcpus=6))
    assert r['changed'] and r['reboot_required'] is True and 'max_vcpus' in r['vm']['pending_restart']
    r = ansible.task('vm', dict(changed, max_vcpus=6))
    assert not r['changed'] and r['reboot_required'] is True

    # restart_if_required restarts the guest and the new config is live afterwards
    r = ansible.task('vm', dict(changed, max_vcpus=6, restart_if_required=True, force=True, shutdown_timeout=1))
    assert r['changed'] and r['reboot_required'] is False, r
    assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_VCPU_MAXIMUM) == 6
    assert any(a.startswith('destroy') for a in r['actions']) and r['actions'][-1] == 'start'

    # pause and resume
    r = ansible.task('vm', {'name': name, 'state': 'paused'})
    assert r['changed'] and dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED
    r = ansible.task('vm', {'name': name, 'state': 'running'})
    assert r['changed'] and dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING

    # graceful stop: the boot sector ignores ACPI, so without force the module fails and the VM runs on
    r = ansible.task('vm', {'name': name, 'state': 'stopped', 'shutdown_timeout': 2})
    assert_clean_failure(r, 'shutdown_timeout (2 s)', 'force: true')
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    # with force it is powered off after the timeout, and the result says so
    r = ansible.task('vm', {'name': name, 'state': 'stopped', 'shutdown_timeout': 1, 'force': True})
    assert r['changed'] and dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert r['actions'] == ['destroy (no shutdown within shutdown_timeout 1 s, force: true)'], r

    # absent, then absent again
    r = ansible.task('vm', {'name': name, 'state': 'absent'}, diff=True)
    assert r['changed'] and r['diff']['after'] == {} and r['diff']['before']['state'] == 'stopped'
    assert domain_snapshot(conn, name) is None
    assert os.path.exists(disk), 'disks are kept unless delete_volumes'
    r = ansible.task('vm', {'name': name, 'state': 'absent'})
    assert r['changed'] is False and not r.get('failed')


def test_check_mode_create_defines_nothing(ansible, conn, guests):
    name, disk, log = guests.new('check')
    r = ansible.task('vm', guests.spec(name, disk, log, state='running'), check=True, diff=True)
    assert r['changed'] is True and r['actions'] == ['created', 'start'], r
    assert r['diff']['before'] == {} and r['diff']['after']['state'] == 'running'
    assert r['diff']['after']['spec']['memory'] == 32
    assert domain_snapshot(conn, name) is None


def test_present_leaves_power_state_and_defaults(ansible, conn, guests):
    name, disk, log = guests.new('present')
    r = ansible.task('vm', guests.spec(name, disk, log))
    assert r['changed'] and r['vm']['state'] == 'stopped'
    spec = r['vm']['spec']
    assert (spec['memory'], spec['max_memory'], spec['vcpus'], spec['max_vcpus']) == (32, 32, 1, 1)
    assert spec['disks'] == [{'bus': 'virtio', 'device': 'disk', 'format': 'raw', 'path': disk,
                              'readonly': False, 'target': 'vda'}]
    conn.lookupByName(name).create()
    r = ansible.task('vm', {'name': name})
    assert not r['changed'] and r['vm']['state'] == 'running'
    # a string with a unit means the same as the integer MiB
    r = ansible.task('vm', {'name': name, 'memory': '32MiB', 'max_memory': '32 MiB'})
    assert not r['changed'], r


def test_tags_title_description_stored_exactly(ansible, conn, guests):
    name, disk, log = guests.new('tags')
    tags = {'owner': '<a&b "quoted" \'single\'>', 'ünïcode': 'ça va; rm -rf / $(id) `id`', 'empty': ''}
    title = 'web <tier> & "front"'
    description = 'line one\nline <two> & three'
    r = ansible.task('vm', guests.spec(name, disk, log, tags=tags, title=title, description=description))
    assert r['changed'] and r['vm']['spec']['tags'] == tags
    root = etree.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    stored = dict((t.get('name'), t.text or '') for t in root.find('metadata').find('{%s}tags' % TAGS_NS))
    assert stored == tags
    assert root.findtext('title') == title and root.findtext('description') == description
    r = ansible.task('vm', {'name': name, 'tags': tags, 'title': title, 'description': description})
    assert not r['changed'], r
    r = ansible.task('vm', {'name': name, 'title': 'one\ntwo'})
    assert_clean_failure(r, 'title', 'single line')


def test_mac_stays_stable_and_nics_attach_live(ansible, conn, guests, test_network):
    name, disk, log = guests.new('nic')
    args = guests.spec(name, disk, log, state='running', interfaces=[{'network': test_network}])
    r = ansible.task('vm', args)
    assert r['changed'] and not r.get('failed'), r
    mac = r['vm']['spec']['interfaces'][0]['mac']
    assert mac.startswith('52:54:00:')
    r = ansible.task('vm', args)
    assert not r['changed'] and r['vm']['spec']['interfaces'][0]['mac'] == mac
    # a second NIC is hot-plugged into the running guest and written to the config, same MAC in both
    two = dict(args, interfaces=[{'network': test_network}, {'network': test_network, 'model': 'e1000'}])
    r = ansible.task('vm', two)
    assert r['changed'] and r['reboot_required'] is False, r
    dom = conn.lookupByName(name)
    live = etree.fromstring(dom.XMLDesc(0))
    config = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    live_macs = [m.get('address') for m in live.findall('devices/interface/mac')]
    config_macs = [m.get('address') for m in config.findall('devices/interface/mac')]
    assert len(live_macs) == 2 and sorted(live_macs) == sorted(config_macs) and mac in live_macs
    r = ansible.task('vm', two)
    assert not r['changed'], r


def test_disk_hotplug_live(ansible, conn, guests):
    name, disk, log = guests.new('disk')
    extra = os.path.join(guests.dir, name + '-data.img')
    with open(extra, 'wb') as handle:
        handle.truncate(4 * 1024 * 1024)
    try:
        args = guests.spec(name, disk, log, state='running')
        assert ansible.task('vm', args)['changed']
        wait_ticks(log)
        r = ansible.task('vm', dict(args, disks=[{'path': disk}, {'path': extra, 'cache': 'none'}]))
        assert r['changed'] and r['reboot_required'] is False, r
        live = etree.fromstring(conn.lookupByName(name).XMLDesc(0))
        assert extra in [s.get('file') for s in live.findall('devices/disk/source')]
        assert [d['target'] for d in r['vm']['spec']['disks']] == ['vda', 'vdb']
    finally:
        os.unlink(extra)


def test_xml_escape_hatch(ansible, conn, guests):
    name, disk, log = guests.new('xml')
    fragment = ("<domain><devices><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
                "</devices><on_crash>destroy</on_crash></domain>")
    r = ansible.task('vm', guests.spec(name, disk, log, xml=fragment))
    assert r['changed'], r
    root = etree.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert root.find('devices/rng').get('model') == 'virtio' and root.findtext('on_crash') == 'destroy'
    r = ansible.task('vm', {'name': name, 'xml': fragment})
    assert not r['changed'], r
    r = ansible.task('vm', {'name': name, 'xml': '<domain><memory>1</memory></domain>'})
    assert_clean_failure(r, 'xml', 'structured options')


def test_uefi_guest_and_managed_save_are_removed(ansible, conn, guests):
    name, disk, log = guests.new('uefi')
    r = ansible.task('vm', guests.spec(name, disk, log, firmware='uefi', memory=64, state='running'))
    assert r['changed'] and not r.get('failed'), r
    assert r['vm']['spec']['firmware'] == 'uefi'
    root = etree.fromstring(conn.lookupByName(name).XMLDesc(0))
    nvram = root.findtext('os/nvram')
    assert nvram and os.path.exists(nvram)
    r = ansible.task('vm', {'name': name, 'firmware': 'uefi', 'memory': 64})
    assert not r['changed'], r
    conn.lookupByName(name).managedSave(0)
    assert conn.lookupByName(name).hasManagedSaveImage(0)
    r = ansible.task('vm', {'name': name, 'state': 'absent'})
    assert r['changed'] and not r.get('failed'), r
    assert domain_snapshot(conn, name) is None and not os.path.exists(nvram)


BAD_INPUTS = [
    ({'memory': 0}, 'memory', 'greater than zero'),
    ({'memory': -5}, 'memory', 'greater than zero'),
    ({'memory': '2 parsecs'}, 'memory', 'unit'),
    ({'vcpus': 8, 'max_vcpus': 4}, 'vcpus', 'max_vcpus'),
    ({'disks': [{'path': '/nonexistent/disk.img'}]}, 'disks[0].path', 'does not exist'),
    ({'disks': [{'path': '/tmp', 'bus': 'floppy'}]}, 'bus', 'must be one of'),
    ({'interfaces': [{'network': 'no-such-net'}]}, 'interfaces[0].network', 'does not exist'),
    ({'interfaces': [{'network': 'x', 'mac': 'zz:00'}]}, 'mac', 'not a MAC'),
    ({'machine': 'no-such-machine'}, 'machine', 'not a machine type'),
]


@pytest.mark.parametrize('extra,param,fragment', BAD_INPUTS)
def test_bad_input_is_refused_and_changes_nothing(ansible, conn, guests, extra, param, fragment):
    name, disk, log = guests.new('bad')
    # a new VM with bad input is not defined
    r = ansible.task('vm', dict(guests.spec(name, disk, log), **extra))
    assert_clean_failure(r, param, fragment)
    assert domain_snapshot(conn, name) is None
    # an existing VM with bad input is left exactly as it was
    assert ansible.task('vm', guests.spec(name, disk, log))['changed']
    before = domain_snapshot(conn, name)
    r = ansible.task('vm', dict({'name': name}, **extra))
    assert_clean_failure(r, param, fragment)
    assert domain_snapshot(conn, name) == before


@pytest.mark.parametrize('bad_name', ['a<b>&"c"', 'x' * 65, 'has space', '../etc'])
def test_bad_names_are_refused(ansible, conn, bad_name):
    r = ansible.task('vm', {'name': bad_name, 'memory': 32})
    assert_clean_failure(r, 'name', 'not a valid name')
    assert bad_name not in [d.name() for d in conn.listAllDomains(0)]


def test_unreachable_libvirtd_is_a_clear_failure(ansible):
    r = ansible.task('vm', {'name': 'vft-nowhere', 'uri': 'qemu+unix:///system?socket=/nonexistent/sock'})
    assert_clean_failure(r, 'cannot connect to libvirt at qemu+unix:///system?socket=/nonexistent/sock')


def test_module_defaults_group_sets_the_connection(ansible, conn, guests):
    name, disk, log = guests.new('group')
    play_extra = {'module_defaults': {'group/virtfleet.virt.all': {'uri': 'qemu+unix:///system?socket=/nonexistent/s'}}}
    r = ansible.task('vm', guests.spec(name, disk, log), play_extra=play_extra)
    assert_clean_failure(r, '/nonexistent/s')
    r = ansible.task('vm_info', {'name': name}, play_extra=play_extra)
    assert_clean_failure(r, '/nonexistent/s')
    play_extra['module_defaults']['group/virtfleet.virt.all']['uri'] = 'qemu:///system'
    assert ansible.task('vm', guests.spec(name, disk, log), play_extra=play_extra)['changed']


def test_absent_removes_snapshot_metadata_and_delete_volumes(ansible, conn, guests, workdir):
    import subprocess
    name, disk, log = guests.new('snap')
    qcow = disk + '.qcow2'
    subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', disk, qcow], check=True)
    pool_dir = os.path.dirname(qcow)
    pool_name = 'vft-snap-pool-' + name[-6:]
    pool = conn.storagePoolCreateXML(
        "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>" % (pool_name, pool_dir), 0)
    try:
        r = ansible.task('vm', guests.spec(name, qcow, log, state='running'))
        assert r['changed'] and r['vm']['spec']['disks'][0]['format'] == 'qcow2', r
        wait_ticks(log)
        dom = conn.lookupByName(name)
        dom.snapshotCreateXML('<domainsnapshot><name>before</name></domainsnapshot>', 0)
        assert dom.snapshotNum(0) == 1
        pool.refresh(0)
        r = ansible.task('vm', {'name': name, 'state': 'absent', 'force': True, 'shutdown_timeout': 0,
                                'delete_volumes': True})
        assert r['changed'] and r['deleted_volumes'] == [qcow], r
        assert domain_snapshot(conn, name) is None and not os.path.exists(qcow)
        assert os.path.exists(disk), 'only the VM\'s own disks are deleted'
    finally:
        pool.destroy()

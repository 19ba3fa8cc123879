"""virtfleet.virt.vm clone_from / linked_clone / template / customization on libvirt (issue #16), with the
counting boot-sector guest: a template VM, linked and full clones that boot (their serial consoles count), the
template's volume unchanged, re-runs, check mode, delete, vm_info's template filter and the bad inputs."""
from __future__ import annotations

import json
import os
import shutil

import libvirt
from lxml import etree

from conftest import assert_clean_failure, sha256_file, volume_names, wait_ticks


def _template(ansible, conn, guests, pool, path, network=None, stem='tmpl'):
    """A template VM whose disk is the counter image as volume <name>.img of ``pool``: (name, volume path)."""
    name, disk, log = guests.new(stem)
    volume = os.path.join(path, name + '.img')
    shutil.copyfile(disk, volume)
    conn.storagePoolLookupByName(pool).refresh(0)
    r = ansible.task('vm', {'name': name, 'memory': 32, 'disks': [{'pool': pool, 'volume': name + '.img'}],
                            'serial': [{'type': 'file', 'path': log}], 'template': True,
                            'interfaces': [{'network': network}] if network else []})
    assert not r.get('failed') and r['changed'] and r['vm']['spec']['template'] is True, r
    return name, volume


def _macs_and_uuid(conn, name):
    root = etree.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return [m.get('address') for m in root.iter('mac')], root.findtext('uuid')


def _disk_files(conn, name):
    root = etree.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return [(d.find('source').get('pool'), d.find('source').get('volume'))
            for d in root.iter('disk') if d.get('device') == 'disk']


def test_template_linked_and_full_clones(ansible, conn, storage, guests, test_network):
    pool, path = storage.dir_pool('clone')
    tmpl, tvol = _template(ansible, conn, guests, pool, path, test_network)
    digest = sha256_file(tvol)
    tmpl_uuid = conn.lookupByName(tmpl).UUIDString()

    # a template is never started: asked in the same task, or later without template: false
    r = ansible.task('vm', {'name': tmpl, 'state': 'running', 'template': True})
    assert_clean_failure(r)
    assert r['msg'].startswith('template:'), r['msg']
    r = ansible.task('vm', {'name': tmpl, 'state': 'running'})
    assert_clean_failure(r)
    assert 'template' in r['msg'] and 'template: false' in r['msg'], r['msg']
    assert conn.lookupByName(tmpl).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF

    clones = []
    for index, linked in enumerate((True, True, True, False)):
        name, _disk, log = guests.new('cl%d' % index)
        clones.append((name, log, linked, {'name': name, 'clone_from': tmpl, 'linked_clone': linked,
                                           'serial': [{'type': 'file', 'path': log}], 'state': 'running'}))

    # check mode predicts the clone and writes nothing
    before = volume_names(conn, pool)
    r = ansible.task('vm', clones[0][3], check=True)
    assert not r.get('failed') and r['changed'], r
    assert clones[0][0] not in conn.listDefinedDomains() + [d.name() for d in conn.listAllDomains(0)]
    assert volume_names(conn, pool) == before

    for name, log, linked, args in clones:
        r = ansible.task('vm', args)
        assert not r.get('failed') and r['changed'], r
        assert r['vm']['cloned_from'] == {'name': tmpl, 'uuid': tmpl_uuid, 'linked': linked}, r['vm']
        assert r['vm']['spec']['template'] is False and r['vm']['state'] == 'running'
        volume = '%s-vda.%s' % (name, 'qcow2' if linked else 'img')
        assert _disk_files(conn, name) == [(pool, volume)]
        info = etree.fromstring(conn.storagePoolLookupByName(pool).storageVolLookupByName(volume).XMLDesc(0))
        assert (info.findtext('backingStore/path') == tvol) is linked, etree.tostring(info)
    ids = [_macs_and_uuid(conn, name) for name, _log, _linked, _args in clones] + [_macs_and_uuid(conn, tmpl)]
    assert len(set(uid for _macs, uid in ids)) == 5, ids
    macs = [mac for found, _uid in ids for mac in found]
    assert len(macs) == 5 and len(macs) == len(set(macs)), ids
    for name, log, _linked, _args in clones:
        wait_ticks(log)  # each clone boots the template's disk on its own
    print('clones %s boot; template volume %s' % ([c[0] for c in clones], digest[:12]))

    # re-run: no re-clone, nothing changes
    for _name, _log, _linked, args in clones:
        r = ansible.task('vm', args)
        assert not r.get('failed') and r['changed'] is False, r
    assert sha256_file(tvol) == digest

    # vm_info: templates only when asked
    r = ansible.task('vm_info', {'template': True})
    names = [vm['name'] for vm in r['vms']]
    assert tmpl in names and not set(c[0] for c in clones) & set(names), names
    r = ansible.task('vm_info', {})
    names = [vm['name'] for vm in r['vms']]
    assert tmpl not in names and set(c[0] for c in clones) <= set(names), names

    # bad inputs against the VMs made above
    r = ansible.task('vm', {'name': guests.new('cl')[0], 'clone_from': clones[1][0]}, check=True)
    assert_clean_failure(r)
    assert r['msg'].startswith('clone_from:') and 'running' in r['msg'] and 'stop it first' in r['msg'], r['msg']
    r = ansible.task('vm', {'name': clones[1][0], 'clone_from': clones[3][0]})
    assert_clean_failure(r)
    assert 'a different VM of that name exists' in r['msg'] and 'cloned from %s' % tmpl in r['msg'], r['msg']
    r = ansible.task('vm', {'name': tmpl, 'clone_from': clones[3][0]})
    assert_clean_failure(r)
    assert 'a different VM of that name exists' in r['msg'] and 'is not a clone' in r['msg'], r['msg']
    r = ansible.task('vm', {'name': tmpl, 'state': 'absent', 'delete_volumes': True})
    assert_clean_failure(r)
    assert r['msg'].startswith('delete_volumes:') and clones[0][0] in r['msg'], r['msg']
    assert os.path.exists(tvol) and tmpl in [d.name() for d in conn.listAllDomains(0)]

    # deleting a linked clone with delete_volumes deletes its overlay, never the template's volume
    name = clones[0][0]
    overlay = os.path.join(path, name + '-vda.qcow2')
    r = ansible.task('vm', {'name': name, 'state': 'absent', 'force': True, 'shutdown_timeout': 0,
                            'delete_volumes': True})
    assert not r.get('failed') and r['changed'] and r['deleted_volumes'] == [overlay], r
    assert not os.path.exists(overlay) and os.path.exists(tvol) and sha256_file(tvol) == digest


def test_clone_bad_inputs(ansible, conn, storage, guests):
    pool, path = storage.dir_pool('clbad')
    tmpl, _tvol = _template(ansible, conn, guests, pool, path)
    before = volume_names(conn, pool)
    name = guests.new('clbad')[0]

    r = ansible.task('vm', {'name': name, 'clone_from': 'vft-no-such-vm-0'})
    assert_clean_failure(r)
    assert r['msg'].startswith('clone_from:') and 'does not exist' in r['msg'], r['msg']
    r = ansible.task('vm', {'name': name, 'clone_from': tmpl, 'customization': {'networks': [{'ip': '192.0.2.10'}]}})
    assert_clean_failure(r)
    assert 'prefix' in r['msg'], r['msg']
    r = ansible.task('vm', {'name': name, 'clone_from': tmpl, 'customization': {'hostname': 'a'},
                            'cloud_init': {'user_data': {'packages': []}}})
    assert_clean_failure(r)
    assert r['msg'].startswith('customization:') and 'cloud_init' in r['msg'], r['msg']
    r = ansible.task('vm', {'name': name, 'clone_from': tmpl, 'state': 'running', 'template': True})
    assert_clean_failure(r)
    assert r['msg'].startswith('template:'), r['msg']
    assert volume_names(conn, pool) == before
    assert name not in [d.name() for d in conn.listAllDomains(0)]


def test_clone_into_a_full_pool(ansible, conn, storage, guests):
    device = storage.loop(16)
    pool = storage.name('clfull')
    path = storage.path(pool)
    r = ansible.task('storage_pool', {'name': pool, 'type': 'fs', 'path': path, 'build': True, 'state': 'active',
                                      'source': {'devices': [device], 'format': 'ext4'}})
    assert not r.get('failed') and os.path.ismount(path), r
    tmpl, _tvol = _template(ansible, conn, guests, pool, path)
    # fill the filesystem to its last byte
    fd = os.open(os.path.join(path, 'filler'), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 4096, 512):
            try:
                while True:
                    os.write(fd, b'\1' * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    conn.storagePoolLookupByName(pool).refresh(0)
    before = (volume_names(conn, pool), sorted(os.listdir(path)))
    for linked, fragment in ((False, 'storage pool %s has' % pool), (True, 'storage pool %s' % pool)):
        name = guests.new('clfull')[0]
        r = ansible.task('vm', {'name': name, 'clone_from': tmpl, 'linked_clone': linked})
        assert_clean_failure(r)
        assert fragment in r['msg'], r['msg']
        conn.storagePoolLookupByName(pool).refresh(0)
        assert (volume_names(conn, pool), sorted(os.listdir(path))) == before
        assert name not in [d.name() for d in conn.listAllDomains(0)]
        print('linked' if linked else 'full', r['msg'][:200])


def test_customization_renders_the_seed(ansible, conn, storage, guests, test_network):
    pool, path = storage.dir_pool('clcust')
    tmpl, _tvol = _template(ansible, conn, guests, pool, path, test_network)
    name = guests.new('clcust')[0]
    key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq7 test@vft'
    args = {'name': name, 'clone_from': tmpl, 'linked_clone': True,
            'customization': {'hostname': 'web1', 'domain': 'example.test', 'dns_servers': ['192.0.2.53'],
                              'networks': [{'ip': '192.0.2.10/24', 'gateway': '192.0.2.1'}],
                              'ssh_authorized_keys': [key], 'user_data': {'runcmd': [['touch', '/secret-marker']]}}}
    r = ansible.task('vm', args)
    assert not r.get('failed') and r['changed'], r
    custom = r['vm']['spec']['customization']
    assert custom['hostname'] == 'web1' and 'user_data' not in custom and len(custom['user_data_sha256']) == 64, custom
    assert 'secret-marker' not in json.dumps(r)
    (macs, vm_uuid) = _macs_and_uuid(conn, name)
    seed = os.path.join(path, name + '-cidata.iso')
    data = open(seed, 'rb').read()
    assert ('iid-%s' % vm_uuid).encode() in data and b'local-hostname' in data and b'"web1"' in data
    assert macs[0].encode() in data and b'192.0.2.10/24' in data and key.encode() in data
    assert b'secret-marker' in data
    mtime = os.stat(seed).st_mtime_ns

    r = ansible.task('vm', args)
    assert not r.get('failed') and r['changed'] is False, r
    assert os.stat(seed).st_mtime_ns == mtime

    args['customization']['hostname'] = 'web2'
    r = ansible.task('vm', args)
    assert not r.get('failed') and r['changed'], r
    assert any('next first boot of the instance' in w for w in r.get('warnings', [])), r
    assert b'"web2"' in open(seed, 'rb').read()

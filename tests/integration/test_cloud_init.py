"""virtfleet.virt.cloud_init_seed against the real libvirtd: NoCloud ISO content, idempotency by content."""
from __future__ import annotations

import json
import os
import subprocess

from conftest import assert_clean_failure, volume_names

SECRET = 'vft-Secret-Passw0rd'


def _extract(iso, dest):
    """The files of ``iso`` (read back with xorriso, independently of the module's ISO library)."""
    subprocess.run(['xorriso', '-osirrox', 'on', '-indev', iso, '-extract', '/', dest],
                   check=True, capture_output=True)
    found = {}
    for name in sorted(os.listdir(dest)):
        with open(os.path.join(dest, name), 'rb') as handle:
            found[name] = handle.read().decode()
    return found


def _label(iso):
    return subprocess.run(['blkid', '-o', 'value', '-s', 'LABEL', iso], capture_output=True, text=True, check=False).stdout.strip()


def test_seed_iso_content_and_regeneration(ansible, conn, storage, workdir):
    pool, path = storage.dir_pool('seed')
    iso = os.path.join(path, 'vm1-seed.iso')
    user_data = '#cloud-config\npassword: %s\nchpasswd: {expire: false}\n' % SECRET
    args = {'pool': pool, 'name': 'vm1-seed.iso', 'user_data': user_data,
            'meta_data': {'instance-id': 'vm1-0001', 'local-hostname': 'vm1'}}

    # check mode: predicted, nothing created, and the secret is never shown
    r = ansible.task('cloud_init_seed', args, check=True, diff=True)
    assert r['changed'] and r['actions'] == ['created'], r
    assert volume_names(conn, pool) == []
    assert len(r['diff']['after']['spec']['content_sha256']) == 64
    assert r['diff']['after']['spec']['files'] == ['meta-data', 'user-data']

    r = ansible.task('cloud_init_seed', args, diff=True)
    assert r['changed'] and not r.get('failed'), r
    assert SECRET not in json.dumps(r) and SECRET not in ansible.last_stdout
    digest = r['seed']['spec']['content_sha256']
    assert r['seed']['path'] == iso and r['seed']['capacity'] == os.path.getsize(iso)
    assert _label(iso) == 'cidata'
    files = _extract(iso, os.path.join(workdir, 'seed1'))
    assert files == {'user-data': user_data,
                     'meta-data': json.dumps({'instance-id': 'vm1-0001', 'local-hostname': 'vm1'}, indent=2,
                                             sort_keys=True) + '\n'}

    # same content again: unchanged, the image is not rewritten
    stat = os.stat(iso)
    r = ansible.task('cloud_init_seed', args)
    assert r['changed'] is False and r['actions'] == [] and r['seed']['spec']['content_sha256'] == digest, r
    assert (os.stat(iso).st_ino, os.stat(iso).st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)

    # new content: check mode predicts it and changes nothing, --diff shows hashes (never content)
    changed = dict(args, network_config={'version': 2, 'ethernets': {'eth0': {'dhcp4': True}}},
                   user_data=user_data.replace(SECRET, SECRET + '2'))
    r = ansible.task('cloud_init_seed', changed, check=True, diff=True)
    assert r['changed'] and r['actions'] == ['updated: content'], r
    assert r['diff']['before']['spec']['content_sha256'] == digest
    assert r['diff']['after']['spec']['content_sha256'] != digest
    assert r['diff']['after']['spec']['files'] == ['meta-data', 'network-config', 'user-data']
    assert os.stat(iso).st_mtime_ns == stat.st_mtime_ns
    r = ansible.task('cloud_init_seed', changed, diff=True)
    assert r['changed'] and SECRET not in json.dumps(r) and SECRET not in ansible.last_stdout, r
    files = _extract(iso, os.path.join(workdir, 'seed2'))
    assert sorted(files) == ['meta-data', 'network-config', 'user-data']
    assert SECRET + '2' in files['user-data']
    assert json.loads(files['network-config']) == {'version': 2, 'ethernets': {'eth0': {'dhcp4': True}}}
    r = ansible.task('cloud_init_seed', changed)
    assert not r['changed'], r

    # a dict user_data becomes #cloud-config; meta-data gets the volume name as instance-id
    r = ansible.task('cloud_init_seed', {'pool': pool, 'name': 'vm2-seed.iso', 'user_data': {'packages': ['htop']}})
    assert r['changed'], r
    files = _extract(os.path.join(path, 'vm2-seed.iso'), os.path.join(workdir, 'seed3'))
    assert files['user-data'].startswith('#cloud-config\n') and json.loads(files['user-data'].split('\n', 1)[1]) == \
        {'packages': ['htop']}
    assert json.loads(files['meta-data']) == {'instance-id': 'vm2-seed.iso'}

    # absent: check mode keeps it, then it is gone, then a no-op
    r = ansible.task('cloud_init_seed', {'pool': pool, 'name': 'vm1-seed.iso', 'state': 'absent'}, check=True)
    assert r['changed'] and os.path.exists(iso)
    r = ansible.task('cloud_init_seed', {'pool': pool, 'name': 'vm1-seed.iso', 'state': 'absent'})
    assert r['changed'] and not os.path.exists(iso)
    r = ansible.task('cloud_init_seed', {'pool': pool, 'name': 'vm1-seed.iso', 'state': 'absent'})
    assert not r['changed']


def test_seed_refuses_a_volume_it_did_not_make_and_bad_input(ansible, conn, storage):
    pool, path = storage.dir_pool('seedbad')
    r = ansible.task('volume', {'pool': pool, 'name': 'data.raw', 'capacity': 1})
    assert r['changed'], r
    before = os.stat(os.path.join(path, 'data.raw'))
    r = ansible.task('cloud_init_seed', {'pool': pool, 'name': 'data.raw', 'user_data': '#cloud-config\n'})
    assert_clean_failure(r, 'data.raw', 'is not a cloud-init seed made by this module')
    assert os.stat(os.path.join(path, 'data.raw')).st_mtime_ns == before.st_mtime_ns
    r = ansible.task('cloud_init_seed', {'pool': pool, 'name': 'x.iso', 'meta_data': ['not', 'a', 'dict']})
    assert_clean_failure(r, 'meta_data', 'expected a string')
    r = ansible.task('cloud_init_seed', {'pool': 'vft-no-such-pool', 'name': 'x.iso'})
    assert_clean_failure(r, 'pool', 'does not exist')
    assert volume_names(conn, pool) == ['data.raw']

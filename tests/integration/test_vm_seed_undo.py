"""virtfleet.virt.vm on libvirt: a run whose definition fails leaves no cloud-init seed behind (found by the hardening
fuzzer: the seed of a customization stayed in the pool with changed=false), and a machine change between i440fx and
q35 is refused before anything is written."""
from __future__ import annotations

import os
import shutil

from conftest import assert_clean_failure, volume_names

CUSTOM = {'networks': [{'gateway': '192.0.2.1', 'ip': '192.0.2.10', 'prefix': 24}]}


def test_a_failed_definition_leaves_no_seed(ansible, conn, storage, guests, test_network):
    pool, path = storage.dir_pool('seedundo')
    name, disk, _log = guests.new('seedundo')
    shutil.copyfile(disk, os.path.join(path, name + '.img'))
    conn.storagePoolLookupByName(pool).refresh(0)
    base = {'name': name, 'memory': 32, 'disks': [{'pool': pool, 'volume': name + '.img'}],
            'interfaces': [{'network': test_network}]}
    r = ansible.task('vm', dict(base, machine='pc'))
    assert not r.get('failed') and r['changed'], r
    before = volume_names(conn, pool)

    # the fuzzer's case: machine q35 on the pc VM, with a customization (a new seed)
    r = ansible.task('vm', dict(base, machine='q35', customization=CUSTOM, firmware='bios', graphics={}))
    assert_clean_failure(r, 'machine:', 'q35')
    assert not r['changed'] and volume_names(conn, pool) == before, r

    # a definition libvirt rejects: the seed written for it is removed again
    bad_xml = "<domain><devices><controller type='pci' index='0' model='pcie-root'/></devices></domain>"
    r = ansible.task('vm', dict(base, customization=CUSTOM, xml=bad_xml))
    assert_clean_failure(r, 'defining VM failed')
    assert not r['changed'] and volume_names(conn, pool) == before, r

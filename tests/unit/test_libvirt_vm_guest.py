"""The cloud-init seed disk of a libvirt VM in its spec (module_utils/_drivers/libvirt_vm_guest.py)."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec as vs
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_vm_guest as guest
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

ROOT = {'pool': 'p', 'volume': 'vm1.qcow2', 'device': 'disk', 'target': 'vda', 'bus': 'virtio', 'format': 'qcow2',
        'readonly': False}
SEED = {'pool': 'p', 'volume': 'vm1-cidata.iso', 'device': 'disk', 'target': 'vdb', 'bus': 'virtio', 'format': 'raw',
        'readonly': True}


def actual():
    spec = vs.merge({'disks': [ROOT, SEED]}, None)
    spec['cloud_init'] = {'pool': 'p', 'volume': 'vm1-cidata.iso', 'content_sha256': 'a' * 64, 'files': ['user-data']}
    return {'spec': spec}


def desired(partial, have):
    return guest.keep_attached(vs.merge(guest.with_seed_disk(partial, have), have['spec']))


def test_a_disks_list_without_the_seed_keeps_it_where_it_is():
    have = actual()
    spec = desired({'disks': [{'pool': 'p', 'volume': 'vm1.qcow2'}, {'pool': 'p', 'volume': 'data.raw'}]}, have)
    targets = dict((d['volume'], d['target']) for d in spec['disks'])
    assert targets == {'vm1.qcow2': 'vda', 'vm1-cidata.iso': 'vdb', 'data.raw': 'vdc'}
    assert vs.changed_fields(have['spec'], desired({'disks': [{'pool': 'p', 'volume': 'vm1.qcow2'}]}, have)) == []


def test_a_vm_without_a_seed_is_left_alone():
    have = {'spec': vs.merge({'disks': [ROOT]}, None)}
    partial = {'disks': [{'pool': 'p', 'volume': 'vm1.qcow2'}]}
    assert guest.with_seed_disk(partial, have) is partial and guest.with_seed_disk(partial, None) is partial


@pytest.mark.parametrize('request_kind, param', [({'customization': True}, 'customization'), ({}, 'cloud_init.pool')])
def test_a_seed_without_a_pool_names_the_option_that_asked_for_it(request_kind, param):
    wanted = dict({'volume': 'web1-cidata.iso', 'data': {}, 'content_sha256': '0' * 64, 'files': []}, **request_kind)
    with pytest.raises(SpecError) as err:
        guest.Seeds(None).desired(wanted, {'disks': [{'path': '/var/lib/x.img', 'device': 'disk'}]})
    assert err.value.param == param

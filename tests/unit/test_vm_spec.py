"""The backend-neutral VM spec: validation, merge, power model."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec as vs
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def params(**kwargs):
    base = dict((key, None) for key in (
        'domain_type', 'arch', 'machine', 'firmware', 'autostart', 'memory', 'max_memory', 'vcpus', 'max_vcpus',
        'cpu', 'boot', 'disks', 'interfaces', 'graphics', 'serial', 'title', 'description', 'tags', 'xml'))
    base.update(kwargs)
    return base


def disk(**kwargs):
    base = dict(path=None, pool=None, volume=None, device='disk', bus=None, target=None, format=None,
                cache=None, readonly=None)
    base.update(kwargs)
    return base


def nic(**kwargs):
    base = dict(network=None, bridge=None, direct=None, mode=None, model=None, mac=None)
    base.update(kwargs)
    return base


@pytest.mark.parametrize('name', ['web1', 'a', 'db-01.prod', 'x_y+z', 'A' * 64])
def test_valid_names(name):
    assert vs.validate_name(name) == name


@pytest.mark.parametrize('name', ['', '-x', 'a b', 'a/b', 'a<b', 'é', 'A' * 65, None, 'web1\n'])
def test_invalid_names(name):
    with pytest.raises(SpecError, match='not a valid name'):
        vs.validate_name(name)


@pytest.mark.parametrize('kwargs,param,fragment', [
    (dict(vcpus=0), 'vcpus', 'at least 1'),
    (dict(vcpus=4, max_vcpus=2), 'vcpus', 'max_vcpus'),
    (dict(memory=4096, max_memory='2GiB'), 'memory', 'max_memory'),
    (dict(disks=[disk()]), 'disks[0]', 'needs a source'),
    (dict(disks=[disk(path='/a', pool='p', volume='v')]), 'disks[0]', 'not both'),
    (dict(disks=[disk(pool='p')]), 'disks[0]', 'go together'),
    (dict(disks=[disk(path='rel/a.img')]), 'disks[0].path', 'absolute'),
    (dict(disks=[disk(path='/a', target='xyz1')]), 'disks[0].target', 'target name'),
    (dict(disks=[disk(path='/a', target='vda'), disk(path='/b', target='vda')]), 'disks', 'same target'),
    (dict(interfaces=[nic()]), 'interfaces[0]', 'exactly one'),
    (dict(interfaces=[nic(network='a', bridge='b')]), 'interfaces[0]', 'exactly one'),
    (dict(interfaces=[nic(network='a', mac='01:00:00:00:00:01')]), 'interfaces[0].mac', 'multicast'),
    (dict(interfaces=[nic(network='a', mode='vepa')]), 'interfaces[0].mode', 'direct'),
    # found by tests/hardening/fuzz.py: '..' passed the /sys/class/net check, a trailing newline the regexes
    (dict(interfaces=[nic(bridge='../../../tmp')]), 'interfaces[0].bridge', 'host interface name'),
    (dict(interfaces=[nic(direct='..')]), 'interfaces[0].direct', 'host interface name'),
    (dict(interfaces=[nic(bridge='br 0')]), 'interfaces[0].bridge', 'host interface name'),
    (dict(interfaces=[nic(network='a', mac='52:54:00:00:00:01\n')]), 'interfaces[0].mac', 'not a MAC'),
    (dict(disks=[disk(path='/a', target='vda\n')]), 'disks[0].target', 'target name'),
    (dict(cpu={'mode': 'custom', 'model': None}), 'cpu.model', 'needs a model'),
    (dict(cpu={'mode': 'host-model', 'model': 'qemu64'}), 'cpu.model', 'only with cpu mode custom'),
    (dict(title='a\nb'), 'title', 'single line'),
    # found by tests/hardening/fuzz.py: libvirt adds <boot dev='hd'/>, so boot: [] changed the VM on every run
    (dict(boot=[]), 'boot', 'at least one device'),
    (dict(description='bell\x07'), 'description', 'control character'),
    (dict(tags={'': 'x'}), 'tags', 'must not be empty'),
    (dict(serial=[{'type': 'file', 'path': None}]), 'serial[0].path', 'absolute path'),
])
def test_partial_refuses_bad_input_naming_the_parameter(kwargs, param, fragment):
    with pytest.raises(SpecError) as err:
        vs.partial_from_params(params(**kwargs))
    assert err.value.param == param and fragment in err.value.msg


def test_partial_keeps_only_what_the_user_set():
    partial = vs.partial_from_params(params(memory='2GiB', tags={'n': 1}, cpu={'mode': None, 'model': 'qemu64'}))
    assert partial == {'memory': 2048, 'tags': {'n': '1'}, 'cpu': {'mode': 'custom', 'model': 'qemu64'}}


def test_merge_new_vm_defaults_and_targets():
    partial = vs.partial_from_params(params(disks=[disk(path='/a'), disk(device='cdrom'), disk(path='/b')],
                                            interfaces=[nic(network='default')]))
    spec = vs.merge(partial, None)
    assert (spec['memory'], spec['max_memory'], spec['vcpus'], spec['max_vcpus']) == (1024, 1024, 1, 1)
    assert [(d['target'], d['bus']) for d in spec['disks']] == [('vda', 'virtio'), ('sda', 'sata'), ('vdb', 'virtio')]
    assert spec['disks'][1]['readonly'] is True
    assert spec['interfaces'] == [{'type': 'network', 'source': 'default', 'model': 'virtio'}]


ACTUAL = {
    'domain_type': 'kvm', 'arch': 'x86_64', 'machine': 'pc-i440fx-7.2', 'firmware': 'bios',
    'memory': 512, 'max_memory': 1024, 'vcpus': 1, 'max_vcpus': 2, 'cpu': None, 'boot': ['hd'],
    'disks': [{'device': 'disk', 'path': '/a', 'target': 'vda', 'bus': 'virtio', 'format': 'qcow2', 'readonly': False}],
    'interfaces': [{'type': 'network', 'source': 'default', 'model': 'virtio', 'mac': '52:54:00:aa:bb:cc'}],
    'graphics': None, 'serial': [], 'title': None, 'description': None, 'tags': {'a': 'b'},
    'autostart': False, 'xml': None, 'kernel': None, 'initrd': None, 'cmdline': None, 'guest_agent': False,
    'cloud_init': None, 'customization': None, 'template': False,
}


def test_merge_unspecified_fields_keep_actual_values():
    assert vs.merge({}, ACTUAL) == ACTUAL
    assert vs.changed_fields(ACTUAL, vs.merge({'memory': 512}, ACTUAL)) == []


def test_merge_keeps_generated_mac_and_disk_details():
    partial = vs.partial_from_params(params(disks=[disk(path='/a')], interfaces=[nic(network='default')]))
    spec = vs.merge(partial, ACTUAL)
    assert spec['interfaces'][0]['mac'] == '52:54:00:aa:bb:cc'
    assert spec['disks'] == ACTUAL['disks']
    assert vs.changed_fields(ACTUAL, spec) == []


def test_merge_a_nic_with_another_mac_is_a_new_nic():
    partial = vs.partial_from_params(params(interfaces=[nic(network='default', mac='52:54:00:00:00:01')]))
    spec = vs.merge(partial, ACTUAL)
    assert spec['interfaces'] == [{'type': 'network', 'source': 'default', 'model': 'virtio',
                                   'mac': '52:54:00:00:00:01'}]


def test_merge_bus_change_reassigns_target():
    partial = vs.partial_from_params(params(disks=[disk(path='/a', bus='sata')]))
    spec = vs.merge(partial, ACTUAL)
    assert spec['disks'][0]['target'] == 'sda' and spec['disks'][0]['format'] == 'qcow2'


def test_merge_raising_memory_raises_maximum_unless_both_given():
    assert vs.merge({'memory': 2048}, ACTUAL)['max_memory'] == 2048
    assert vs.merge({'vcpus': 4}, ACTUAL)['max_vcpus'] == 4
    with pytest.raises(SpecError, match='below the VM'):
        vs.merge({'max_memory': 256}, ACTUAL)


@pytest.mark.parametrize('current,target,actions', [
    ('stopped', 'running', ['start']),
    ('running', 'stopped', ['shutdown']),
    ('paused', 'stopped', ['resume', 'shutdown']),
    ('stopped', 'paused', ['start_paused']),
    ('crashed', 'running', ['destroy', 'start']),
    ('pmsuspended', 'stopped', ['wakeup', 'shutdown']),
    ('shutting_down', 'running', ['wait', 'start']),
    ('running', 'running', []),
])
def test_power_steps(current, target, actions):
    assert [step[0] for step in vs.power_steps(current, target)] == actions


def test_disks_that_libvirt_reordered_by_target_are_no_change():
    wanted = {'disks': [{'path': '/b.img'}, {'path': '/a.img', 'target': 'vda'}]}
    first = vs.merge(wanted, None)
    assert [d['target'] for d in first['disks']] == ['vdb', 'vda']
    stored = dict(first, disks=sorted(first['disks'], key=lambda d: d['target']))  # as libvirt keeps them
    assert vs.changed_fields(stored, vs.merge(wanted, stored)) == []

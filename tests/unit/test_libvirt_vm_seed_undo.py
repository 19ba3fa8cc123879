"""A libvirt VM definition that fails undoes the cloud-init seed it wrote, or reports it as a change; a VM does not
move between the i440fx and q35 machines in place (module_utils/_drivers/libvirt_vm.py)."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_vm
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan

SEED = {'pool': 'p', 'volume': 'vm1-cidata.iso', 'content_sha256': 'a' * 64, 'files': ['network-config']}
XML_ERROR = ("defining VM failed: XML error: The PCI controller with index='0' must be model='pcie-root' for this "
             "machine type, but model='pci-root' was found instead")


class FakeSeeds:
    def __init__(self, new, remove_fails=False):
        self.new = new
        self.remove_fails = remove_fails
        self.volumes = []

    def write(self, seed):
        if self.new:
            self.volumes.append(seed['volume'])
        return self.new

    def remove(self, seed):
        if self.remove_fails:
            raise BackendError('deleting volume %s failed: busy' % seed['volume'])
        self.volumes.remove(seed['volume'])

    def changed_warning(self, vm_name, seed):
        return 'seed of %s changed' % vm_name


class FakeCloner:
    def remove_volumes(self, made):
        assert not made


class FailingDefineClient:
    uri = 'qemu:///system'

    def define_domain(self, xml):
        raise BackendError(XML_ERROR)


def driver(monkeypatch, seeds):
    monkeypatch.setattr(libvirt_vm.domxml, 'render', lambda *args, **kwargs: '<domain/>')
    drv = object.__new__(libvirt_vm.LibvirtVMDriver)
    drv.client = FailingDefineClient()
    drv.seeds = seeds
    drv._cloner = FakeCloner()
    drv._new = {}
    return drv


def update(drv):
    actual = {'name': 'vm1', 'uuid': '0' * 32, 'dom': object(), 'xml': '<domain/>', 'state': 'shutoff',
              'spec': {'machine': 'pc-q35-7.2'}}
    plan = Plan(['cloud_init', 'graphics'], details={'spec': {'cloud_init': dict(SEED)}, 'live_ops': []})
    drv.apply_update(actual, plan)


def test_a_failed_update_removes_the_seed_volume_it_created(monkeypatch):
    seeds = FakeSeeds(new=True)
    with pytest.raises(BackendError) as err:
        update(driver(monkeypatch, seeds))
    assert seeds.volumes == []
    assert not err.value.details.get('performed') and not err.value.details.get('actions')


def test_a_failed_update_that_rewrote_a_seed_reports_it(monkeypatch):
    with pytest.raises(BackendError) as err:
        update(driver(monkeypatch, FakeSeeds(new=False)))
    assert err.value.details['actions'] == ['rewrote cloud-init seed p/vm1-cidata.iso']


@pytest.mark.parametrize('step', ['create', 'update'])
def test_a_seed_that_cannot_be_removed_after_the_failure_is_a_change_named_in_the_error(monkeypatch, step):
    seeds = FakeSeeds(new=True, remove_fails=True)
    drv = driver(monkeypatch, seeds)
    with pytest.raises(BackendError) as err:
        if step == 'create':
            drv.create('vm1', {'cloud_init': dict(SEED)})
        else:
            update(drv)
    assert err.value.details['performed'] is True
    assert 'p/vm1-cidata.iso' in err.value.details['actions'][0] and 'busy' in err.value.details['actions'][0]
    assert err.value.msg.startswith(XML_ERROR) and 'p/vm1-cidata.iso' in err.value.msg
    assert seeds.volumes == ['vm1-cidata.iso']


def test_a_failed_create_removes_the_seed_volume_it_created(monkeypatch):
    seeds = FakeSeeds(new=True)
    with pytest.raises(BackendError) as err:
        driver(monkeypatch, seeds).create('vm1', {'cloud_init': dict(SEED)})
    assert seeds.volumes == [] and not err.value.details.get('performed')


@pytest.mark.parametrize('old, new', [('pc-i440fx-7.2', 'q35'), ('pc-q35-7.2', 'pc'), ('pc-i440fx-7.2', 'pc-q35-7.2')])
def test_a_machine_family_change_is_refused_naming_machine(old, new):
    with pytest.raises(SpecError) as err:
        libvirt_vm.check_machine_family({'name': 'vm1', 'spec': {'machine': old}}, {'machine': new})
    assert err.value.param == 'machine' and 'delete the VM' in err.value.msg


@pytest.mark.parametrize('old, new', [('pc-i440fx-7.2', 'pc'), ('pc-q35-7.2', 'q35'), ('pc-q35-7.2', None)])
def test_a_machine_change_within_a_family_passes(old, new):
    libvirt_vm.check_machine_family({'name': 'vm1', 'spec': {'machine': old}}, {'machine': new})

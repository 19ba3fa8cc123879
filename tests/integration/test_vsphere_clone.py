"""virtfleet.virt.vm on VMware vSphere: templates, clones (full and linked) and guest customization, on govmomi's
vCenter simulator, checked through pyvmomi.

The simulator applies a customization (CustomizeVM_Task) at the VM's next power-on: it then reports the new host
name and address as guest.hostName and guest.ipAddress.
"""
from __future__ import annotations

import json

import pytest

from conftest import assert_clean_failure, vsphere_snapshot

pytest.importorskip('pyVmomi')

CLUSTER, HOST, DATASTORE, OTHER_DATASTORE, PORTGROUP = 'DC0_C0', 'DC0_H0', 'LocalDS_0', 'LocalDS_1', 'VM Network'
CLONE_KEY, CUSTOM_KEY = 'virtfleet.clone_of', 'virtfleet.customization'  # where the driver records them


def vsphere_vm(si, name):
    """The VM named ``name`` or None, skipping the dangling references the simulator may hold."""
    from pyVmomi import vim, vmodl
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        for obj in view.view:
            try:
                if obj.name == name:
                    return obj
            except vmodl.fault.ManagedObjectNotFound:
                continue
    finally:
        view.Destroy()
    return None


@pytest.fixture
def vms(vsphere, vsphere_vms):
    """``vsphere_vms``, left so that the simulator (govmomi 0.24) forgets them when they are destroyed: it keeps a
    destroyed VM in the VM list of its resource pool when it was a template (MarkAsTemplate unsets the VM's pool),
    and in the VM list of the host it was created on when it was relocated (RelocateVM_Task does not move it
    between the hosts' lists); such dangling references break later inventory walks of the simulator."""
    from pyVim.task import WaitForTask
    from pyVmomi import vim
    yield vsphere_vms
    content = vsphere.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    hosts = list(view.view)
    view.Destroy()
    for name in vsphere_vms.names:
        vm = vsphere_vm(vsphere, name)
        if vm is None:
            continue
        if vm.config.template:
            host = vm.runtime.host
            vm.MarkAsVirtualMachine(pool=host.parent.resourcePool, host=host)
        listed = [h for h in hosts if vm._moId in [v._moId for v in h.vm]]
        if listed and vm.runtime.host._moId not in [h._moId for h in listed]:
            WaitForTask(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=listed[0])))


def _vm(ansible, conn, args, **kwargs):
    return ansible.task('vm', dict(conn, **args), **kwargs)


def _extra(vm):
    found = {}
    for option in vm.config.extraConfig:
        found[option.key] = option.value  # the simulator appends; the last value wins
    return dict((k, v) for k, v in found.items() if v != '')


def _source(ansible, conn, vms, stem, template=True):
    """A stopped VM with a disk and a NIC in the cluster, marked as a template (through the module)."""
    name = vms.new(stem)
    args = {'name': name, 'cluster': CLUSTER, 'datastore': DATASTORE, 'memory': 64, 'vcpus': 1,
            'disks': [{'size': '1GiB'}], 'interfaces': [{'network': PORTGROUP}], 'description': 'the base',
            'tags': {'role': 'base'}}
    r = _vm(ansible, conn, args)
    assert r['changed'] and r['vm']['spec']['template'] is False, r
    if template:
        r = _vm(ansible, conn, {'name': name, 'template': True})
        assert r['changed'] and r['actions'] == ['updated: template'], r
    return name


CUSTOM = {'hostname': 'web1', 'domain': 'example.test', 'dns_servers': ['192.0.2.53'],
          'networks': [{'ip': '192.0.2.10', 'prefix': 24, 'gateway': '192.0.2.1'}]}


def test_template_clone_customize_power_on(ansible, vsphere, vsphere_args, vms):
    tpl = _source(ansible, vsphere_args, vms, 'tpl')
    real = vsphere_vm(vsphere, tpl)
    assert real.config.template is True  # (its resourcePool is unset: the simulator cannot Fetch an unset property)

    # a template is read back as one: the same task again, and template: true again, change nothing
    before = vsphere_snapshot(vsphere, tpl)
    r = _vm(ansible, vsphere_args, {'name': tpl, 'template': True, 'memory': 64})
    assert r['changed'] is False and r['actions'] == [] and r['vm']['spec']['template'] is True, r
    assert vsphere_snapshot(vsphere, tpl) == before

    # a template is never started, and template with state running is refused
    r = _vm(ansible, vsphere_args, {'name': tpl, 'state': 'running'})
    assert_clean_failure(r, 'template')
    r = _vm(ansible, vsphere_args, {'name': tpl, 'template': True, 'state': 'running'})
    assert_clean_failure(r, 'template')
    assert vsphere_snapshot(vsphere, tpl) == before
    assert vsphere_vm(vsphere, tpl).runtime.powerState == 'poweredOff'

    # vm_info: templates only when asked, or by name
    r = ansible.task('vm_info', dict(vsphere_args))
    assert tpl not in [v['name'] for v in r['vms']], r
    r = ansible.task('vm_info', dict(vsphere_args, template=True))
    found = [v for v in r['vms'] if v['name'] == tpl]
    assert len(found) == 1 and found[0]['spec']['template'] is True, r
    assert all(v['spec']['template'] for v in r['vms']), r
    r = ansible.task('vm_info', dict(vsphere_args, name=tpl))
    assert [v['name'] for v in r['vms']] == [tpl] and r['vms'][0]['spec']['template'] is True, r

    # clone the template with a new identity, more memory, and power it on
    name = vms.new('web')
    args = {'name': name, 'clone_from': tpl, 'memory': 128, 'customization': CUSTOM, 'state': 'running'}
    r = _vm(ansible, vsphere_args, args, check=True)
    assert r['changed'] is True and r['actions'] == ['created', 'start'], r
    assert vsphere_vm(vsphere, name) is None  # check mode wrote nothing
    r = _vm(ansible, vsphere_args, args)
    assert not r.get('failed') and r['changed'] and r['actions'] == ['created', 'start'], r
    vm = r['vm']
    tpl_uuid = vsphere_vm(vsphere, tpl).config.instanceUuid
    assert vm['cloned_from'] == {'name': tpl, 'uuid': tpl_uuid, 'linked': False}, vm
    assert vm['spec']['template'] is False and vm['spec']['memory'] == 128 and vm['spec']['vcpus'] == 1
    assert vm['spec']['description'] == 'the base' and vm['spec']['tags'] == {'role': 'base'}
    assert vm['spec']['customization']['hostname'] == 'web1'
    assert vm['spec']['customization']['networks'] == [{'ip': '192.0.2.10', 'prefix': 24, 'gateway': '192.0.2.1'}]
    real = vsphere_vm(vsphere, name)
    assert real.config.template is False and real.config.hardware.memoryMB == 128
    assert real.runtime.powerState == 'poweredOn'
    # the simulator applied the customization at power-on
    assert real.guest.hostName == 'web1' and real.guest.ipAddress == '192.0.2.10'
    assert vm['vsphere']['guest_hostname'] == 'web1'
    assert '192.0.2.10' in [a['address'] for a in vm['addresses']]
    assert json.loads(_extra(real)[CLONE_KEY])['name'] == tpl
    assert json.loads(_extra(real)[CUSTOM_KEY])['hostname'] == 'web1'
    assert len(real.config.hardware.device) == len(vsphere_vm(vsphere, tpl).config.hardware.device)

    # the same task again: nothing changes and nothing is written (not cloned, not customized again)
    before = vsphere_snapshot(vsphere, name)
    r = _vm(ansible, vsphere_args, args)
    assert r['changed'] is False and r['actions'] == [] and r['reboot_required'] is False, r
    assert vsphere_snapshot(vsphere, name) == before

    # the source is unchanged
    real_tpl = vsphere_vm(vsphere, tpl)
    assert real_tpl.config.template is True and real_tpl.config.hardware.memoryMB == 64


def test_running_vm_customization_waits_for_the_next_start(ansible, vsphere, vsphere_args, vms):
    src = _source(ansible, vsphere_args, vms, 'src', template=False)
    name = vms.new('run')
    r = _vm(ansible, vsphere_args, {'name': name, 'clone_from': src, 'state': 'running'})
    assert r['changed'] and r['vm']['spec']['customization'] is None, r
    # a running VM cannot be customized: it is recorded, reported as pending, and applied at the next start
    custom = {'hostname': 'db1', 'networks': [{'ip': '198.51.100.7/24'}]}
    r = _vm(ansible, vsphere_args, {'name': name, 'customization': custom})
    assert r['changed'] and r['reboot_required'] is True and r['vm']['pending_restart'] == ['customization'], r
    assert any('customization' in w for w in r.get('warnings', [])), r
    before = vsphere_snapshot(vsphere, name)
    r = _vm(ansible, vsphere_args, {'name': name, 'customization': custom})
    assert r['changed'] is False and r['reboot_required'] is True, r
    assert vsphere_snapshot(vsphere, name) == before
    r = _vm(ansible, vsphere_args, {'name': name, 'customization': custom, 'state': 'running',
                                    'restart_if_required': True, 'force': True, 'shutdown_timeout': 0})
    assert r['changed'] and 'applied pending: customization' in r['actions'], r
    assert r['reboot_required'] is False and r['vm']['pending_restart'] == [], r
    real = vsphere_vm(vsphere, name)
    assert real.guest.hostName == 'db1' and real.guest.ipAddress == '198.51.100.7'


def test_clone_into_another_host_and_datastore(ansible, vsphere, vsphere_args, vms):
    tpl = _source(ansible, vsphere_args, vms, 'tpl')
    name = vms.new('away')
    args = {'name': name, 'clone_from': tpl, 'host': HOST, 'datastore': OTHER_DATASTORE}
    r = _vm(ansible, vsphere_args, args)
    assert not r.get('failed') and r['changed'], r
    real = vsphere_vm(vsphere, name)
    assert real.runtime.host.name == HOST and real.resourcePool is not None
    assert real.config.files.vmPathName.startswith('[%s]' % OTHER_DATASTORE), real.config.files.vmPathName
    assert r['vm']['vsphere']['host'] == HOST and r['vm']['vsphere']['cluster'] is None
    assert r['vm']['vsphere']['datastore'] == OTHER_DATASTORE
    before = vsphere_snapshot(vsphere, name)
    r = _vm(ansible, vsphere_args, args)
    assert r['changed'] is False, r
    assert vsphere_snapshot(vsphere, name) == before

    # a template becomes a VM again (its host's pool), and template: false on a VM is no change
    r = _vm(ansible, vsphere_args, {'name': tpl, 'template': False})
    assert r['changed'] and r['actions'] == ['updated: template'], r
    real_tpl = vsphere_vm(vsphere, tpl)
    assert real_tpl.config.template is False and real_tpl.resourcePool is not None
    before = vsphere_snapshot(vsphere, tpl)
    r = _vm(ansible, vsphere_args, {'name': tpl, 'template': False})
    assert r['changed'] is False, r
    assert vsphere_snapshot(vsphere, tpl) == before


def test_linked_clone_needs_a_snapshot(ansible, vsphere, vsphere_args, vms):
    src = _source(ansible, vsphere_args, vms, 'lsrc', template=False)
    name = vms.new('linked')
    args = {'name': name, 'clone_from': src, 'linked_clone': True}
    r = _vm(ansible, vsphere_args, args)
    assert_clean_failure(r, 'linked_clone', 'snapshot')
    assert vsphere_vm(vsphere, name) is None
    r = ansible.task('vm_snapshot', dict(vsphere_args, vm=src, name='base'))
    assert r['changed'], r
    r = _vm(ansible, vsphere_args, args)
    assert not r.get('failed') and r['changed'], r
    assert r['vm']['cloned_from']['linked'] is True and r['vm']['cloned_from']['name'] == src
    r = _vm(ansible, vsphere_args, args)
    assert r['changed'] is False, r


def test_bad_input(ansible, vsphere, vsphere_args, vms):
    name = vms.new('bad')
    for check in (True, False):
        r = _vm(ansible, vsphere_args, {'name': name, 'clone_from': 'vft-no-such-template'}, check=check)
        assert_clean_failure(r, 'clone_from', 'vft-no-such-template')
    assert vsphere_vm(vsphere, name) is None

    src = _source(ansible, vsphere_args, vms, 'bsrc', template=False)
    r = _vm(ansible, vsphere_args, {'name': name, 'clone_from': src,
                                    'customization': {'networks': [{'ip': '192.0.2.10'}]}})
    assert_clean_failure(r, 'customization.networks[0].prefix', 'is required')
    r = _vm(ansible, vsphere_args, {'name': name, 'clone_from': src,
                                    'customization': {'ssh_authorized_keys': ['ssh-ed25519 AAAA a@b']}})
    assert_clean_failure(r, 'customization.ssh_authorized_keys', 'vSphere')
    assert vsphere_vm(vsphere, name) is None

    # another VM of the clone's name exists: never taken for the clone
    other = _source(ansible, vsphere_args, vms, 'other', template=False)
    before = vsphere_snapshot(vsphere, other)
    r = _vm(ansible, vsphere_args, {'name': other, 'clone_from': src})
    assert_clean_failure(r, 'clone_from', 'not a clone')
    assert vsphere_snapshot(vsphere, other) == before

    # a running VM does not become a template
    r = _vm(ansible, vsphere_args, {'name': other, 'state': 'running'})
    assert r['changed'], r
    r = _vm(ansible, vsphere_args, {'name': other, 'template': True})
    assert_clean_failure(r, 'template', 'stop')
    assert vsphere_vm(vsphere, other).config.template is False


def test_a_template_whose_customization_fails_stays_a_template(ansible, vsphere, vsphere_args, vms):
    """The fuzzer's case: a template customized (pending until a power-on that never comes) and customized again.
    vSphere refuses the second (CustomizationPending) after the run made the template a VM to customize it: the
    run marks it a template again, reports what it did, and says what to do."""
    tpl = _source(ansible, vsphere_args, vms, 'tplc')
    r = _vm(ansible, vsphere_args, {'name': tpl, 'template': True, 'customization': CUSTOM})
    assert r['changed'] and r['vm']['spec']['template'] is True, r
    assert vsphere_vm(vsphere, tpl).config.template is True
    r = _vm(ansible, vsphere_args, {'name': tpl, 'template': True, 'customization': {}, 'cluster': CLUSTER,
                                    'force': True, 'shutdown_timeout': 0})
    assert r.get('failed'), r
    assert 'still pending' in r['msg'] and 'Power the VM on once' in r['msg'], r
    assert r['changed'] is True and any('template again' in a for a in r['actions']), r
    real = vsphere_vm(vsphere, tpl)
    assert real.config.template is True and real.runtime.powerState == 'poweredOff'
    assert json.loads(_extra(real)[CUSTOM_KEY])['hostname'] == 'web1'  # the first customization is still the one

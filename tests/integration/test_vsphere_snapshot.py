"""virtfleet.virt.vm_snapshot and vm_snapshot_info on VMware vSphere: govmomi's vCenter simulator, checked through
pyvmomi (the snapshot tree vSphere keeps, the VM's power state)."""
from __future__ import annotations

import pytest

from conftest import assert_clean_failure, vsphere_vm

pytest.importorskip('pyVmomi')

CLUSTER, DATASTORE = 'DC0_C0', 'LocalDS_0'


def _new_vm(si, name, power_on=True):
    """A small VM made through pyvmomi (the vm module is tested elsewhere), powered on."""
    from pyVim.task import WaitForTask
    from pyVmomi import vim
    dc = si.RetrieveContent().rootFolder.childEntity[0]
    cluster = next(c for c in dc.hostFolder.childEntity if c.name == CLUSTER)
    config = vim.vm.ConfigSpec(name=name, memoryMB=32, numCPUs=1, guestId='otherGuest64',
                               files=vim.vm.FileInfo(vmPathName='[%s]' % DATASTORE))
    WaitForTask(dc.vmFolder.CreateVM_Task(config=config, pool=cluster.resourcePool))
    vm = vsphere_vm(si, name)
    if power_on:
        WaitForTask(vm.PowerOnVM_Task())
    return vm


def _tree(vm):
    """vSphere's snapshot tree of ``vm``: (name, parent name, power state recorded, quiesced) parents first, and
    the current snapshot's name."""
    info = vm.snapshot
    if info is None:
        return [], None
    found, names = [], {}

    def walk(trees, parent):
        for tree in trees or []:
            names[tree.snapshot._moId] = tree.name
            found.append((tree.name, parent, tree.state, tree.quiesced))
            walk(tree.childSnapshotList, tree.name)
    walk(info.rootSnapshotList, None)
    current = names.get(info.currentSnapshot._moId) if info.currentSnapshot is not None else None
    return found, current


def _snap(ansible, conn, vm, name, check=False, diff=False, **args):
    return ansible.task('vm_snapshot', dict(conn, vm=vm, name=name, **args), check=check, diff=diff)


def _names(result):
    return [(e['name'], e['parent'], e['current']) for e in result['vm']['spec']['snapshots']]


def test_create_revert_remove_and_the_tree(ansible, vsphere, vsphere_args, vsphere_vms):
    from pyVim.task import WaitForTask
    name = vsphere_vms.new('snap')
    vm = _new_vm(vsphere, name)

    # check mode with diff: predicted, nothing taken
    r = _snap(ansible, vsphere_args, name, 'base', check=True, diff=True, memory=True, quiesce=True,
              description='before the upgrade')
    assert not r.get('failed'), r
    assert r['changed'] and r['actions'] == ['updated: snapshots', 'created snapshot base'], r
    assert r['diff']['before']['spec']['snapshots'] == []
    assert [e['name'] for e in r['diff']['after']['spec']['snapshots']] == ['base']
    assert _tree(vm) == ([], None)

    # taken: the memory and quiesce flags went to CreateSnapshot_Task (the simulator keeps quiesced)
    r = _snap(ansible, vsphere_args, name, 'base', memory=True, quiesce=True, description='before the upgrade')
    assert not r.get('failed') and r['changed'], r
    snap = r['snapshot']
    assert (snap['name'], snap['parent'], snap['vm_state'], snap['memory'], snap['current'], snap['description']) == \
        ('base', None, 'running', True, True, 'before the upgrade'), r
    assert snap['created'].endswith('Z') and snap['location'] == 'internal'
    assert _tree(vm) == ([('base', None, 'poweredOn', True)], 'base')

    # the same task again: compared by name, nothing taken
    r = _snap(ansible, vsphere_args, name, 'base', memory=True, quiesce=True, description='before the upgrade')
    assert not r.get('failed') and not r['changed'] and not r.get('warnings'), r
    assert len(_tree(vm)[0]) == 1

    # a disk-only snapshot of the stopped VM, below the current one
    WaitForTask(vm.PowerOffVM_Task())
    r = _snap(ansible, vsphere_args, name, 'child')
    assert not r.get('failed') and r['changed'] and r['snapshot']['parent'] == 'base', r
    assert r['snapshot']['memory'] is False and r['snapshot']['vm_state'] == 'stopped'

    # revert to the memory snapshot: the VM runs again, as the snapshot recorded
    r = _snap(ansible, vsphere_args, name, 'base', state='reverted', diff=True)
    assert not r.get('failed') and r['changed'], r
    assert r['actions'] == ['updated: at_snapshot', 'reverted to snapshot base, VM running'], r
    assert r['vm']['state'] == 'running' and r['vm']['spec']['current'] == 'base'
    assert r['diff']['before']['spec']['current'] == 'child' and r['diff']['after']['spec']['current'] == 'base'
    assert vm.runtime.powerState == 'poweredOn' and _tree(vm)[1] == 'base'

    # revert to the snapshot without memory: stopped; vm_state overrides it
    r = _snap(ansible, vsphere_args, name, 'child', state='reverted')
    assert not r.get('failed') and r['changed'] and r['vm']['state'] == 'stopped', r
    assert vm.runtime.powerState == 'poweredOff' and _tree(vm)[1] == 'child'
    r = _snap(ansible, vsphere_args, name, 'child', state='reverted', vm_state='paused')
    assert not r.get('failed') and r['changed'] and r['vm']['state'] == 'paused', r
    assert vm.runtime.powerState == 'suspended'
    WaitForTask(vm.PowerOffVM_Task())

    # a grandchild, then the tree as vm_snapshot_info lists it
    r = _snap(ansible, vsphere_args, name, 'grandchild')
    assert not r.get('failed') and r['changed'], r
    r = ansible.task('vm_snapshot_info', dict(vsphere_args, vm=name))
    assert not r.get('failed'), r
    (found,) = r['vms']
    assert (found['name'], found['state'], found['current'], found['at_snapshot']) == \
        (name, 'stopped', 'grandchild', None), r
    assert [(e['name'], e['parent'], e['vm_state'], e['memory'], e['current']) for e in found['snapshots']] == [
        ('base', None, 'running', True, False), ('child', 'base', 'stopped', False, False),
        ('grandchild', 'child', 'stopped', False, True)]

    # remove without children (check mode first): the grandchild moves up to base
    r = _snap(ansible, vsphere_args, name, 'child', state='absent', check=True, diff=True)
    assert r['changed'] and r['actions'] == ['updated: snapshots', 'deleted snapshot child'], r
    assert len(_tree(vm)[0]) == 3
    r = _snap(ansible, vsphere_args, name, 'child', state='absent')
    assert not r.get('failed') and r['changed'] and _names(r) == [('base', None, False), ('grandchild', 'base', True)]
    assert _tree(vm) == ([('base', None, 'poweredOn', True), ('grandchild', 'base', 'poweredOff', False)], 'grandchild')

    # remove with children: the whole subtree; then absent again is no change
    r = _snap(ansible, vsphere_args, name, 'base', state='absent', children=True)
    assert not r.get('failed') and r['changed'], r
    assert r['actions'] == ['updated: snapshots', 'deleted snapshot base and the snapshots below it: grandchild']
    assert _tree(vm)[0] == [] and r['vm']['spec']['snapshots'] == []
    r = _snap(ansible, vsphere_args, name, 'base', state='absent', children=True)
    assert not r.get('failed') and not r['changed'], r


@pytest.mark.parametrize('args, fragments', [
    (dict(vm='vft-no-such-vm', name='s'), ('vm: there is no VM named vft-no-such-vm',)),
    (dict(name='nope', state='reverted'), ("name: VM", "has no snapshot 'nope' to revert to (its snapshots: 'one')")),
    (dict(name='two', location='external'), ('location: applies to the libvirt backend only', 'vSphere keeps')),
    (dict(name='two', memory=True), ('memory: VM', 'is stopped: it has no memory state to keep')),
])
def test_bad_input_is_refused_and_changes_nothing(ansible, vsphere, vsphere_args, vsphere_vms, args, fragments):
    from pyVim.task import WaitForTask
    name = vsphere_vms.new('snapbad')
    vm = _new_vm(vsphere, name, power_on=False)
    WaitForTask(vm.CreateSnapshot_Task(name='one', description='', memory=False, quiesce=False))
    before = _tree(vm)
    r = ansible.task('vm_snapshot', dict(vsphere_args, **dict(dict(vm=name), **args)))
    assert_clean_failure(r, *fragments)
    assert not r.get('changed') and _tree(vm) == before and vm.runtime.powerState == 'poweredOff'

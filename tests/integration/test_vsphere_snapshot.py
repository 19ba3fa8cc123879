"""virtfleet.virt.vm_snapshot and vm_snapshot_info on VMware vSphere: govmomi's vCenter simulator, checked through
pyvmomi (the snapshot tree vSphere keeps, the VM's power state)."""
from __future__ import annotations

import json
import os
import uuid

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


def _snapshot_info(vm):
    """``vm.snapshot`` through the PropertyCollector (the simulator panics on a Fetch of the unset property)."""
    from pyVmomi import vmodl
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=vm, skip=False)],
                         propSet=[pc.PropertySpec(type=type(vm), pathSet=['snapshot'], all=False)])
    for item in _collector(vm).RetrieveContents([spec]):
        for prop in item.propSet or []:
            return prop.val
    return None


def _collector(vm):
    from pyVmomi import vim
    return vim.ServiceInstance('ServiceInstance', vm._stub).RetrieveContent().propertyCollector


def _tree(vm):
    """vSphere's snapshot tree of ``vm``: (name, parent name, power state recorded, quiesced) parents first, and
    the current snapshot's name."""
    info = _snapshot_info(vm)
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


def _play(ansible, conn, tasks):
    """Run ``tasks`` (``(module, args, check, diff)``) as one play, each registered with ignore_errors, and return
    their results in order: one ansible-playbook run for several steps (CI's budget is tight)."""
    run_id = uuid.uuid4().hex[:8]
    out = os.path.join(ansible.workdir, 'snap-results-%s.json' % run_id)
    play = {'hosts': 'localhost', 'gather_facts': False, 'tasks': []}
    for index, (module, args, check, diff) in enumerate(tasks):
        play['tasks'].append({'name': 'step %d' % index, 'virtfleet.virt.' + module: dict(conn, **args),
                              'register': 'r%d' % index, 'ignore_errors': True, 'check_mode': check, 'diff': diff})
    play['tasks'].append({'name': 'results', 'ansible.builtin.copy': {
        'dest': out, 'content': '{{ [%s] | to_json }}' % ', '.join('r%d' % i for i in range(len(tasks)))}})
    path = os.path.join(ansible.workdir, 'snap-play-%s.yml' % run_id)
    with open(path, 'w') as handle:
        json.dump([play], handle)
    ansible.playbook(path)
    with open(out) as handle:
        results = json.load(handle)
    for result in results:
        result.pop('invocation', None)
    return results


def snap(vm, name, check=False, diff=False, **args):
    return ('vm_snapshot', dict(vm=vm, name=name, **args), check, diff)


def _names(result):
    return [(e['name'], e['parent'], e['current']) for e in result['vm']['spec']['snapshots']]


def _ok(result, changed):
    assert not result.get('failed') and result['changed'] is changed, result
    return result


def test_create_revert_remove_and_the_tree(ansible, vsphere, vsphere_args, vsphere_vms):
    from pyVim.task import WaitForTask
    name = vsphere_vms.new('snap')
    vm = _new_vm(vsphere, name)
    base = dict(memory=True, quiesce=True, description='before the upgrade')

    # check mode with diff, then taken, then the same task again (compared by name: nothing taken)
    check, taken, again = _play(ansible, vsphere_args, [
        snap(name, 'base', check=True, diff=True, **base), snap(name, 'base', **base), snap(name, 'base', **base)])
    _ok(check, True)
    assert check['actions'] == ['updated: snapshots', 'created snapshot base'], check
    assert check['diff']['before']['spec']['snapshots'] == []
    assert [e['name'] for e in check['diff']['after']['spec']['snapshots']] == ['base']
    _ok(taken, True)  # so check mode took nothing
    got = taken['snapshot']
    assert (got['name'], got['parent'], got['vm_state'], got['memory'], got['current'], got['description']) == \
        ('base', None, 'running', True, True, 'before the upgrade'), taken
    assert got['created'].endswith('Z') and got['location'] == 'internal'
    _ok(again, False)
    assert not again.get('warnings'), again
    # the memory and quiesce flags went to CreateSnapshot_Task (the simulator keeps quiesced and the power state)
    assert _tree(vm) == ([('base', None, 'poweredOn', True)], 'base')

    # a snapshot of the stopped VM below the current one; reverts leave the power state the snapshot recorded,
    # or vm_state's
    WaitForTask(vm.PowerOffVM_Task())
    child, to_base, to_child, paused = _play(ansible, vsphere_args, [
        snap(name, 'child'), snap(name, 'base', diff=True, state='reverted'), snap(name, 'child', state='reverted'),
        snap(name, 'child', state='reverted', vm_state='paused')])
    _ok(child, True)
    assert (child['snapshot']['parent'], child['snapshot']['memory'], child['snapshot']['vm_state']) == \
        ('base', False, 'stopped'), child
    _ok(to_base, True)
    assert to_base['actions'] == ['updated: at_snapshot', 'reverted to snapshot base, VM running'], to_base
    assert (to_base['vm']['state'], to_base['vm']['spec']['current']) == ('running', 'base')
    assert to_base['diff']['before']['spec']['current'] == 'child'
    assert to_base['diff']['after']['spec']['current'] == 'base'
    _ok(to_child, True)
    assert (to_child['vm']['state'], to_child['vm']['spec']['current']) == ('stopped', 'child'), to_child
    _ok(paused, True)  # never provably at the snapshot on vSphere: reverted again
    assert paused['vm']['state'] == 'paused' and paused['vm']['spec']['at_snapshot'] is None, paused
    assert vm.runtime.powerState == 'suspended' and _tree(vm)[1] == 'child'

    # a grandchild, the tree as vm_snapshot_info lists it, a removal without children (check mode first)
    stopped, grandchild, info, check, removed = _play(ansible, vsphere_args, [
        snap(name, 'child', state='reverted', vm_state='stopped'), snap(name, 'grandchild'),
        ('vm_snapshot_info', dict(vm=name), False, False),
        snap(name, 'child', check=True, diff=True, state='absent'), snap(name, 'child', state='absent')])
    assert _ok(stopped, True)['vm']['state'] == 'stopped'
    _ok(grandchild, True)
    (found,) = _ok(info, False)['vms']
    assert (found['name'], found['state'], found['current'], found['at_snapshot']) == \
        (name, 'stopped', 'grandchild', None), info
    assert [(e['name'], e['parent'], e['vm_state'], e['memory'], e['current']) for e in found['snapshots']] == [
        ('base', None, 'running', True, False), ('child', 'base', 'stopped', False, False),
        ('grandchild', 'child', 'stopped', False, True)]
    assert _ok(check, True)['actions'] == ['updated: snapshots', 'deleted snapshot child'], check
    assert [e['name'] for e in check['diff']['after']['spec']['snapshots']] == ['base', 'grandchild']
    assert _names(_ok(removed, True)) == [('base', None, False), ('grandchild', 'base', True)]  # after check mode
    assert _tree(vm) == ([('base', None, 'poweredOn', True), ('grandchild', 'base', 'poweredOff', False)], 'grandchild')

    # removal with children: the whole subtree; absent again is no change
    removed, again = _play(ansible, vsphere_args, [snap(name, 'base', state='absent', children=True)] * 2)
    assert _ok(removed, True)['actions'] == [
        'updated: snapshots', 'deleted snapshot base and the snapshots below it: grandchild'], removed
    assert removed['vm']['spec']['snapshots'] == []
    _ok(again, False)
    assert _tree(vm)[0] == []


BAD = [
    (dict(vm='vft-no-such-vm', name='s'), ('vm: there is no VM named vft-no-such-vm',)),
    (dict(name='nope', state='reverted'), ('name: VM', "has no snapshot 'nope' to revert to (its snapshots: 'one')")),
    (dict(name='two', location='external'), ('location: applies to the libvirt backend only', 'vSphere keeps')),
    (dict(name='two', memory=True), ('memory: VM', 'is stopped: it has no memory state to keep')),
]


def test_bad_input_is_refused_and_changes_nothing(ansible, vsphere, vsphere_args, vsphere_vms):
    from pyVim.task import WaitForTask
    name = vsphere_vms.new('snapbad')
    vm = _new_vm(vsphere, name, power_on=False)
    WaitForTask(vm.CreateSnapshot_Task(name='one', description='', memory=False, quiesce=False))
    before = _tree(vm)
    results = _play(ansible, vsphere_args, [('vm_snapshot', dict(dict(vm=name), **args), False, False)
                                            for args, _fragments in BAD])
    for result, (_args, fragments) in zip(results, BAD):
        assert_clean_failure(result, *fragments)
        assert not result.get('changed'), result
    assert _tree(vm) == before and vm.runtime.powerState == 'poweredOff'

"""The vSphere snapshot driver through ``_reconcile.ensure`` with an in-memory client: the flags passed to vSphere,
what is refused before any write, what check mode predicts, the power state after a revert, removeChildren."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile as rc
from ansible_collections.virtfleet.virt.plugins.module_utils import _snapshot_spec as ss
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_snapshot as vs
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def tree(name, parent=None, current=False, state='stopped', quiesced=False):
    return dict(ref='snap-' + name, name=name, parent=parent, current=current, state=state, quiesced=quiesced,
                description=None, created='2026-01-01T00:00:00Z')


def params(**extra):
    base = dict(vm='web1', name='s', state='present', memory=False, quiesce=False, description=None,
                children=False, vm_state=None, location='internal')
    base.update(extra)
    return base


class FakeClient:
    """VM web1 (ref ``vm-ref``) with the snapshots given, in power state ``state``; records every write and
    behaves like the simulator: a revert changes the current snapshot, not the power state."""

    def __init__(self, snapshots=(), state='stopped'):
        self.snapshots = [dict(s) for s in snapshots]
        self.state = state
        self.writes = []

    def vm_snapshots(self, ref):
        assert ref == 'vm-ref'
        return {'name': 'web1', 'state': self.state, 'snapshots': [dict(s) for s in self.snapshots]}

    def vm_state(self, _ref):
        return self.state

    def create_snapshot(self, _ref, _vm, name, description, memory, quiesce):
        self.writes.append(('create', name, description, memory, quiesce))
        parent = next((s['name'] for s in self.snapshots if s['current']), None)
        for item in self.snapshots:
            item['current'] = False
        self.snapshots.append(dict(tree(name, parent, True, self.state, quiesce), description=description))
        return 'snap-' + name

    def revert_snapshot(self, snap, _vm, _name, suppress_power_on):
        self.writes.append(('revert', snap, suppress_power_on))
        for item in self.snapshots:
            item['current'] = item['ref'] == snap

    def remove_snapshot(self, snap, _vm, _name, children):
        self.writes.append(('remove', snap, children))

    def power_on(self, _ref, _vm):
        self.writes.append(('power_on',))
        self.state = 'running'

    def power_off(self, _ref, _vm):
        self.writes.append(('power_off',))
        self.state = 'stopped'

    def suspend(self, _ref, _vm):
        self.writes.append(('suspend',))
        self.state = 'paused'


@pytest.fixture(autouse=True)
def one_vm(monkeypatch):
    """The inventory holds VM web1 only (the lookup by name is vsphere_vm_placement's, tested with the VM driver)."""
    monkeypatch.setattr(vs.VSphereVMDriver, 'inventory', lambda self: None)
    monkeypatch.setattr(vs.placements, 'candidates',
                        lambda inv, placement, name: [{'ref': 'vm-ref'}] if name == 'web1' else [])


def run(client, check=False, **extra):
    driver = vs.VSphereSnapshotDriver(client, ss.request_from_params(params(**extra)))
    return rc.ensure(driver, driver.request['vm'], None, 'present', None, rc.Options(check_mode=check))


@pytest.mark.parametrize('memory, quiesce', [(True, True), (False, True), (True, False), (False, False)])
def test_create_passes_memory_and_quiesce_to_vsphere(memory, quiesce):
    client = FakeClient([tree('a', current=True, state='running')], state='running')
    outcome, _before, after = run(client, name='b', memory=memory, quiesce=quiesce, description='d')
    assert outcome.changed and outcome.actions == ['updated: snapshots', 'created snapshot b']
    assert client.writes == [('create', 'b', 'd', memory, quiesce)]
    assert outcome.extra['snapshot']['parent'] == 'a' and outcome.extra['snapshot']['current']
    assert after['spec']['current'] == 'b'


def test_check_mode_predicts_a_new_snapshot_and_writes_nothing():
    client = FakeClient([tree('a', current=True)])
    outcome, before, after = run(client, check=True, name='b')
    assert outcome.changed and client.writes == []
    assert [(e['name'], e['parent'], e['current']) for e in after['spec']['snapshots']] == [
        ('a', None, False), ('b', 'a', True)]
    assert [e['name'] for e in before['spec']['snapshots']] == ['a']


def test_an_existing_snapshot_is_no_change_and_warns_of_other_flags():
    client = FakeClient([tree('a', current=True, state='stopped')])
    outcome, _before, _after = run(client, name='a', description='other')
    assert not outcome.changed and client.writes == []
    assert 'kept as it is' in outcome.warnings[0] and 'description' in outcome.warnings[0]


@pytest.mark.parametrize('names, extra, fragment', [
    ('a', dict(name='b', memory=True), 'memory: VM web1 is stopped'),
    ('a', dict(name='b', quiesce=True), 'quiesce: VM web1 is stopped'),
    ('a', dict(name='b', vm='nope'), 'vm: there is no VM named nope'),
    ('ac', dict(name='zz', state='reverted'), "name: VM web1 has no snapshot 'zz' to revert to (its snapshots: 'a', 'c')"),
    ('aa', dict(name='b'), "more than one snapshot named 'a'"),
])
def test_refused_before_any_write(names, extra, fragment):
    client = FakeClient([tree(n, current=i == len(names) - 1) for i, n in enumerate(names)])
    with pytest.raises(SpecError) as err:
        run(client, **extra)
    assert fragment in str(err.value) and client.writes == []


@pytest.mark.parametrize('recorded, vm_state, before, writes, after', [
    ('running', None, 'stopped', [('revert', 'snap-a', False), ('power_on',)], 'running'),
    ('running', None, 'running', [('revert', 'snap-a', False)], 'running'),
    ('stopped', None, 'running', [('revert', 'snap-a', True), ('power_off',)], 'stopped'),
    ('paused', None, 'running', [('revert', 'snap-a', True), ('suspend',)], 'paused'),
    ('stopped', 'paused', 'stopped', [('revert', 'snap-a', True), ('power_on',), ('suspend',)], 'paused'),
    ('running', 'stopped', 'running', [('revert', 'snap-a', True), ('power_off',)], 'stopped'),
])
def test_revert_then_the_power_state_the_snapshot_or_vm_state_says(recorded, vm_state, before, writes, after):
    client = FakeClient([tree('a', state=recorded), tree('b', 'a', current=True)], state=before)
    outcome, _before, result = run(client, name='a', state='reverted', vm_state=vm_state)
    assert outcome.changed and client.writes == writes and client.state == after
    assert result['state'] == after and result['spec']['current'] == 'a' and result['spec']['at_snapshot'] is None


def test_a_revert_is_never_proven_so_always_repeated_and_predicted():
    client = FakeClient([tree('a', current=True)], state='stopped')
    outcome, _before, after = run(client, check=True, name='a', state='reverted')
    assert outcome.changed and client.writes == [] and after['state'] == 'stopped'
    outcome, _before, _after = run(client, name='a', state='reverted')
    assert outcome.changed and client.writes == [('revert', 'snap-a', True)]


@pytest.mark.parametrize('children, action, kept', [
    (False, 'deleted snapshot a', [('b', None, True)]),
    (True, 'deleted snapshot a and the snapshots below it: b', []),
])
def test_remove_with_or_without_children(children, action, kept):
    client = FakeClient([tree('a'), tree('b', 'a', current=True)])
    outcome, _before, after = run(client, check=True, name='a', state='absent', children=children)
    assert outcome.actions == ['updated: snapshots', action] and client.writes == []
    assert [(e['name'], e['parent'], e['current']) for e in after['spec']['snapshots']] == kept
    run(client, name='a', state='absent', children=children)
    assert client.writes == [('remove', 'snap-a', children)]


def test_absent_on_a_missing_snapshot_is_ok():
    client = FakeClient([tree('a', current=True)])
    outcome, _before, _after = run(client, name='zz', state='absent')
    assert not outcome.changed and client.writes == [] and outcome.extra['snapshot'] == {}


def test_memory_reads_from_the_recorded_power_state():
    entries = [vs.entry_of(tree(n, state=s)) for n, s in (('r', 'running'), ('p', 'paused'), ('s', 'stopped'))]
    assert [(e['vm_state'], e['memory'], e['location'], e['size']) for e in entries] == [
        ('running', True, 'internal', None), ('paused', True, 'internal', None), ('stopped', False, 'internal', None)]

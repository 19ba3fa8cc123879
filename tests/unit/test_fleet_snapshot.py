"""The fleet module's snapshot step (``_fleet``) and ``_reconcile.run_many``, with the in-memory libvirt client of
test_snapshot: which VMs the step takes, memory for running VMs only, check mode, fail_fast."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _fleet
from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile as rc
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError

from .test_snapshot import FakeClient, entry


def snapshot(**extra):
    return dict(dict(name='pre', state='present', memory=False, description=None, vm_state=None), **extra)


def step(client, names=('web1',), check=False, **extra):
    return _fleet.snapshot_many(client, list(names), snapshot(**extra), rc.Options(check_mode=check), workers=2)


@pytest.mark.parametrize('power', ['running', 'paused', 'stopped'])
def test_memory_applies_where_there_is_memory(power):
    """The driver refuses a running VM without memory and a stopped VM with it: the step asks each VM for what
    it has (libvirt then takes the memory of an active VM with the internal snapshot)."""
    client = FakeClient(state=power)
    done = step(client, memory=True)
    assert done[0]['error'] is None and done[0]['outcome'].changed
    assert client.writes[0][0] == 'create' and done[0]['outcome'].extra['snapshot']['name'] == 'pre'


def test_a_running_vm_without_memory_fails_alone_with_the_drivers_message():
    done = step(FakeClient(state='running'))
    assert 'must include the memory state' in done[0]['error'] and not done[0]['outcome'].changed


def test_a_missing_vm_is_left_out_and_an_existing_snapshot_is_no_change():
    client = FakeClient([entry('pre', current=True)])
    done = step(client, names=('web1', 'nosuch'))
    assert [item['error'] for item in done] == [None, None]
    assert not any(item['outcome'].changed for item in done) and client.writes == []
    assert done[1]['outcome'].extra == {'snapshot': {}} and done[1]['before'] is None


def test_check_mode_predicts_revert_and_delete_and_writes_nothing():
    client = FakeClient([entry('pre', current=True)], state='running')
    for state in ('reverted', 'absent'):
        done = step(client, check=True, state=state)
        assert done[0]['outcome'].changed and done[0]['error'] is None
    assert client.writes == []


def test_delete_then_rerun_is_no_change():
    client = FakeClient([entry('pre', current=True)])
    assert step(client, state='absent')[0]['outcome'].actions == ['updated: snapshots', 'deleted snapshot pre']
    client.entries = []
    assert not step(client, state='absent')[0]['outcome'].changed


@pytest.mark.parametrize('extra, fragment', [
    (dict(vm_state='running'), 'snapshot: vm_state: has no effect with state: present'),
    (dict(state='absent', memory=True), 'snapshot: memory: has no effect with state: absent'),
    (dict(name='a\nb'), 'snapshot: name'),
])
def test_the_option_is_refused_before_the_connection_opens(extra, fragment):
    with pytest.raises(SpecError) as err:
        _fleet.snapshot_request(snapshot(**extra), 'fleet')
    assert fragment in err.value.msg


def test_run_many_skips_what_had_not_begun_after_a_failure_with_fail_fast():
    def fail():
        raise BackendError('boom')

    calls = [('a', fail)] + [(name, lambda: (rc.Outcome(), None, None)) for name in ('b', 'c')]
    done = rc.run_many(calls, workers=1, fail_fast=True)
    assert done[0]['error'] == 'boom' and isinstance(done[0]['outcome'], rc.Outcome)
    assert [item.get('skipped') for item in done] == [None, True, True]
    assert [item.get('skipped') for item in rc.run_many(calls, workers=1)] == [None, None, None]


@pytest.mark.parametrize('snapshot, fragment', [
    ({'name': 'a"b', 'state': 'present'}, 'double quote'),
    ({'name': 'a\\b', 'state': 'reverted'}, 'double quote or a backslash'),
    ({'name': 'a/b', 'state': 'present'}, 'contains "/"'),
])
def test_a_snapshot_name_no_vm_can_take_is_refused_before_the_fleet_runs(snapshot, fragment):
    """Checked for the fleet as a whole: a VM the run creates has no snapshot step in that run, and the next run
    would refuse the name (the fuzzer's fleet set #426: changed in the first run, failed in the second)."""
    with pytest.raises(SpecError) as err:
        _fleet.snapshot_request(snapshot, 'fleet')
    assert err.value.param == 'snapshot' and fragment in err.value.msg


def test_a_snapshot_name_with_a_quote_can_still_be_deleted():
    assert _fleet.snapshot_request({'name': 'a"b', 'state': 'absent'}, 'fleet')['name'] == 'a"b'

"""The reconcile loop against a fake driver: changed, check mode, waits, escalation."""
from __future__ import annotations

import copy

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile as rc
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError, WaitTimeout
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result, Step
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import VMDriver


class FakeDriver(VMDriver):
    """An in-memory VM backend; records every write."""

    def __init__(self, vms=None, ignores_shutdown=False):
        super().__init__(None)
        self.vms = vms or {}
        self.writes = []
        self.ignores_shutdown = ignores_shutdown

    def read(self, name):
        vm = self.vms.get(name)
        return copy.deepcopy(vm) if vm else None

    def desired(self, partial, actual):
        spec = dict(actual['spec']) if actual else {'memory': 1024}
        spec.update(partial)
        return spec

    def describe(self, actual):
        return {'name': actual['name'], 'state': actual['state'], 'spec': actual['spec']}

    def create(self, name, spec):
        self.writes.append(('create', name))
        self.vms[name] = {'name': name, 'state': 'stopped', 'spec': dict(spec), 'live': None}

    def plan_update(self, actual, spec):
        changes = sorted(k for k in spec if actual['spec'].get(k) != spec[k])
        return Plan(changes, reboot_required=actual['state'] == 'running' and 'memory' in changes,
                    details={'spec': spec})

    def apply_update(self, actual, plan):
        self.writes.append(('update', actual['name'], tuple(plan.changes)))
        self.vms[actual['name']]['spec'] = dict(plan.details['spec'])
        return Result(reboot_required=plan.reboot_required)

    def delete(self, actual, options):
        self.writes.append(('delete', actual['name']))
        del self.vms[actual['name']]
        return Result(extra={'deleted_volumes': []})

    def steps(self, current, target):
        if current == target:
            return []
        if target == 'running':
            return [Step('start', 'running')]
        return [Step('shutdown', 'stopped', graceful=True, escalate='destroy')]

    def perform(self, name, action):
        self.writes.append((action, name))
        if action == 'shutdown' and self.ignores_shutdown:
            return
        self.vms[name]['state'] = 'running' if action == 'start' else 'stopped'

    def state(self, name):
        return self.vms[name]['state']


def opts(**kwargs):
    kwargs.setdefault('poll_interval', 0.01)
    return rc.Options(**kwargs)


def test_create_and_start_then_noop():
    driver = FakeDriver()
    outcome, before, after = rc.ensure(driver, 'a', {'memory': 512}, 'present', 'running', opts())
    assert outcome.changed and outcome.actions == ['created', 'start']
    assert before is None and after['state'] == 'running'
    driver.writes.clear()
    outcome, before, after = rc.ensure(driver, 'a', {'memory': 512}, 'present', 'running', opts())
    assert not outcome.changed and driver.writes == [] and before == after


def test_check_mode_never_writes_and_predicts():
    driver = FakeDriver({'a': {'name': 'a', 'state': 'stopped', 'spec': {'memory': 1024}}})
    outcome, before, after = rc.ensure(driver, 'a', {'memory': 2048}, 'present', 'running', opts(check_mode=True))
    assert driver.writes == []
    assert outcome.changed and outcome.actions == ['updated: memory', 'start']
    assert before['spec']['memory'] == 1024 and after['spec']['memory'] == 2048 and after['state'] == 'running'
    outcome, _before, after = rc.ensure(driver, 'new', {}, 'present', None, opts(check_mode=True))
    assert outcome.changed and driver.writes == [] and 'new' not in driver.vms


def test_absent_missing_is_unchanged_and_present_is_stopped_then_deleted():
    driver = FakeDriver()
    outcome, _b, _a = rc.ensure(driver, 'a', {}, 'absent', None, opts())
    assert not outcome.changed
    driver.vms['a'] = {'name': 'a', 'state': 'running', 'spec': {}}
    outcome, before, after = rc.ensure(driver, 'a', {}, 'absent', None, opts())
    assert outcome.actions == ['shutdown', 'deleted'] and after is None and 'a' not in driver.vms


def test_graceful_timeout_without_force_fails_and_leaves_it_running():
    driver = FakeDriver({'a': {'name': 'a', 'state': 'running', 'spec': {}}}, ignores_shutdown=True)
    with pytest.raises(WaitTimeout) as err:
        rc.ensure(driver, 'a', {}, 'present', 'stopped', opts(shutdown_timeout=0.05))
    assert 'force: true' in err.value.msg and 'still running' in err.value.msg
    assert driver.vms['a']['state'] == 'running' and ('destroy', 'a') not in driver.writes


def test_graceful_timeout_with_force_escalates():
    driver = FakeDriver({'a': {'name': 'a', 'state': 'running', 'spec': {}}}, ignores_shutdown=True)
    outcome, _b, after = rc.ensure(driver, 'a', {}, 'present', 'stopped', opts(shutdown_timeout=0.05, force=True))
    assert after['state'] == 'stopped' and outcome.actions[-1].startswith('destroy (no shutdown')


def test_a_warning_about_a_pending_change_is_given_only_when_the_run_does_not_restart():
    class Pending(FakeDriver):
        def apply_update(self, actual, plan):
            result = super().apply_update(actual, plan)
            result.unless_restarted.append('VM %s keeps its old memory until it restarts' % actual['name'])
            return result
    vm = {'name': 'a', 'state': 'running', 'spec': {'memory': 1024}}
    outcome, _b, _a = rc.ensure(Pending({'a': copy.deepcopy(vm)}), 'a', {'memory': 2048}, 'present', None, opts())
    assert outcome.warnings == ['VM a keeps its old memory until it restarts'] and outcome.reboot_required
    outcome, _b, _a = rc.ensure(Pending({'a': copy.deepcopy(vm)}), 'a', {'memory': 2048}, 'present', None,
                                opts(restart_if_required=True))
    assert outcome.warnings == [] and outcome.actions[-2:] == ['shutdown', 'start']


def test_a_graceful_request_that_cannot_be_made_fails_unless_force():
    class NoAgent(FakeDriver):
        def perform(self, name, action):
            if action == 'shutdown':
                raise BackendError('VM %s has no guest agent for a graceful shutdown' % name, not_graceful=True)
            return super().perform(name, action)
    driver = NoAgent({'a': {'name': 'a', 'state': 'running', 'spec': {}}})
    with pytest.raises(BackendError, match='no guest agent') as err:
        rc.ensure(driver, 'a', {}, 'present', 'stopped', opts(shutdown_timeout=0.05))
    assert not err.value.outcome.changed and driver.vms['a']['state'] == 'running'
    outcome, _b, after = rc.ensure(driver, 'a', {}, 'present', 'stopped', opts(shutdown_timeout=0.05, force=True))
    assert after['state'] == 'stopped' and outcome.actions == ['destroy (no shutdown within shutdown_timeout 0.05 s, '
                                                               'force: true)']


def test_reboot_required_is_reported_or_restarted_on_request():
    vm = {'name': 'a', 'state': 'running', 'spec': {'memory': 1024}}
    driver = FakeDriver({'a': copy.deepcopy(vm)})
    outcome, _b, _a = rc.ensure(driver, 'a', {'memory': 2048}, 'present', None, opts())
    assert outcome.reboot_required is True
    driver = FakeDriver({'a': copy.deepcopy(vm)})
    outcome, _b, after = rc.ensure(driver, 'a', {'memory': 2048}, 'present', None, opts(restart_if_required=True))
    assert outcome.reboot_required is False and outcome.actions[-2:] == ['shutdown', 'start']
    assert after['state'] == 'running'


def test_an_error_part_way_carries_what_already_changed():
    class Failing(FakeDriver):
        def perform(self, name, action):
            raise BackendError('start failed: no')
    driver = Failing({'a': {'name': 'a', 'state': 'stopped', 'spec': {'memory': 1}}})
    with pytest.raises(BackendError) as err:
        rc.ensure(driver, 'a', {'memory': 2}, 'present', 'running', opts())
    assert err.value.outcome.changed and err.value.outcome.actions == ['updated: memory']


def test_diff_views():
    assert rc.diff(None, {'state': 'running', 'spec': {}, 'uuid': 'x'}) == {
        'before': {}, 'after': {'state': 'running', 'spec': {}}}


# -- races with a run at the same time and partly done actions (tests/hardening) -------------------------------

class Racing(FakeDriver):
    """Another run does the same thing right before each write of this one."""

    def create(self, name, spec):
        self.vms[name] = {'name': name, 'state': 'stopped', 'spec': dict(spec), 'live': None}
        raise BackendError('defining %s failed: already exists' % name, exists=True)

    def perform(self, name, action):
        self.vms[name]['state'] = 'running' if action == 'start' else 'stopped'
        raise BackendError('%s failed: Requested operation is not valid: domain is already running' % action)

    def delete(self, actual, options):
        self.vms.pop(actual['name'], None)
        raise NotFound('undefining %s: no such domain' % actual['name'])


def test_already_exists_is_converged_not_a_crash():
    driver = Racing()
    outcome, _b, after = rc.ensure(driver, 'a', {'memory': 512}, 'present', 'running', opts())
    assert after['state'] == 'running' and driver.vms['a']['spec'] == {'memory': 512}
    assert 'created by someone else' in outcome.warnings[0] and 'already running' in outcome.warnings[1]
    assert 'created' not in outcome.actions


def test_a_create_failure_that_is_no_race_still_fails():
    class Broken(FakeDriver):
        def create(self, name, spec):
            self.vms[name] = {'name': name, 'state': 'stopped', 'spec': {}, 'live': None}  # half made
            raise BackendError('defining %s failed: disk full' % name)
    with pytest.raises(BackendError, match='disk full'):
        rc.ensure(Broken(), 'a', {'memory': 512}, 'present', None, opts())


def test_removed_by_someone_else_meanwhile_is_absent():
    driver = Racing({'a': {'name': 'a', 'state': 'stopped', 'spec': {}}})
    outcome, before, after = rc.ensure(driver, 'a', {}, 'absent', None, opts())
    assert after is None and before['name'] == 'a' and 'removed by someone else' in outcome.warnings[0]


def test_update_raced_to_the_same_spec_is_converged():
    class SameTime(FakeDriver):
        def apply_update(self, actual, plan):
            self.vms[actual['name']]['spec'] = dict(plan.details['spec'])
            raise BackendError('updating failed: there is an existing dhcp host entry')
    driver = SameTime({'a': {'name': 'a', 'state': 'stopped', 'spec': {'memory': 1}}})
    outcome, _b, after = rc.ensure(driver, 'a', {'memory': 2}, 'present', None, opts())
    assert after['spec'] == {'memory': 2} and 'brought to the requested spec' in outcome.warnings[0]
    assert 'existing dhcp host entry' in outcome.warnings[0] and 'someone else' in outcome.warnings[0]
    # this run's update may be what made the change: it is reported, never hidden
    assert outcome.changed and outcome.actions == ['updated: memory']


def test_a_performed_action_that_did_not_take_counts_as_a_change():
    class ExitsAtOnce(FakeDriver):
        def perform(self, name, action):
            raise BackendError('container %s stopped right after it started' % name, performed=True)
    driver = ExitsAtOnce({'a': {'name': 'a', 'state': 'stopped', 'spec': {}}})
    with pytest.raises(BackendError) as err:
        rc.ensure(driver, 'a', {}, 'present', 'running', opts())
    assert err.value.outcome.changed and err.value.outcome.actions == ['start']


def test_notes_of_a_power_action_reach_the_result():
    class Crashed(FakeDriver):
        def perform(self, name, action):
            super().perform(name, action)
            return Result(warnings=['VM %s had crashed; it was started again' % name])
    driver = Crashed({'a': {'name': 'a', 'state': 'stopped', 'spec': {}}})
    outcome, _b, after = rc.ensure(driver, 'a', {}, 'present', 'running', opts())
    assert after['state'] == 'running' and outcome.actions == ['start']
    assert outcome.warnings == ['VM a had crashed; it was started again']


class AddressDriver(FakeDriver):
    """A VM that gets its address after ``polls`` reads."""

    def __init__(self, polls, **kwargs):
        super().__init__(**kwargs)
        self.polls = polls
        self.graceful = []

    def address(self, name):
        self.polls -= 1
        if self.polls > 0:
            return None
        return {'address': '10.0.0.5', 'interface': 'vnet0', 'mac': '52:54:00:00:00:01', 'source': 'lease'}

    def perform_graceful(self, name, action, mode):
        self.graceful.append((action, mode))
        return self.perform(name, action)


def test_wait_for_address_waits_and_reports_where_it_came_from(monkeypatch):
    monkeypatch.setattr(rc.time, 'sleep', lambda _s: None)
    driver = AddressDriver(polls=3)
    outcome, _before, _after = rc.ensure(driver, 'a', {'memory': 1, 'interfaces': ['n']}, 'present', 'running',
                                         opts(wait_for_address=True))
    assert outcome.actions == ['created', 'start'] and driver.polls == 0
    assert outcome.extra['address']['address'] == '10.0.0.5' and outcome.extra['address']['source'] == 'lease'
    # check mode does not wait; a VM without an interface is refused before any write
    driver = AddressDriver(polls=3)
    rc.ensure(driver, 'b', {'memory': 1, 'interfaces': ['n']}, 'present', 'running',
              opts(wait_for_address=True, check_mode=True))
    assert driver.polls == 3 and driver.writes == []
    with pytest.raises(SpecError) as err:
        rc.ensure(driver, 'b', {'memory': 1, 'interfaces': []}, 'present', 'running', opts(wait_for_address=True))
    assert err.value.param == 'wait_for_address' and driver.writes == []


def test_wait_for_address_times_out_and_needs_a_running_vm(monkeypatch):
    monkeypatch.setattr(rc.time, 'sleep', lambda _s: None)
    driver = AddressDriver(polls=10 ** 9)
    with pytest.raises(WaitTimeout) as err:
        rc.ensure(driver, 'a', {'memory': 1, 'interfaces': ['n']}, 'present', 'running',
                  opts(wait_for_address=True, wait_for_address_timeout=0))
    assert 'no IPv4 address after waiting wait_for_address_timeout (0 s)' in err.value.msg
    assert err.value.outcome.actions == ['created', 'start']
    with pytest.raises(SpecError) as err:
        rc.ensure(driver, 'c', {'memory': 1, 'interfaces': ['n']}, 'present', 'stopped', opts(wait_for_address=True))
    assert 'only a running VM gets an address' in err.value.msg and err.value.outcome.actions == ['created']


def test_graceful_steps_carry_the_shutdown_mode():
    driver = AddressDriver(polls=1, vms={'a': {'name': 'a', 'state': 'running', 'spec': {'memory': 1}, 'live': None}})
    outcome, _before, _after = rc.ensure(driver, 'a', {}, 'present', 'stopped', opts(shutdown_mode='agent'))
    assert outcome.actions == ['shutdown'] and driver.graceful == [('shutdown', 'agent')]

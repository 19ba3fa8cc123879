# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The single place that compares desired with actual state.

It decides ``changed``, honours check mode (drivers are never asked to write
in check mode), builds ``diff`` and waits for state changes. Drivers implement
the contract of ``_drivers/_base.Driver`` and hand back the values of ``_plan``
(``Plan``, ``Step``); this module sits above both.
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import NotFound, SpecError, VirtError, WaitTimeout
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Result, wait_for


class Options:
    """Knobs of the reconcile loop that every module shares."""

    def __init__(self, check_mode=False, force=False, shutdown_timeout=120, wait_timeout=60,
                 restart_if_required=False, delete_options=None, poll_interval=0.25, shutdown_mode=None,
                 wait_for_address=False, wait_for_address_timeout=300, wait_healthy=False):
        self.check_mode = check_mode
        self.force = force
        self.shutdown_timeout = shutdown_timeout
        self.wait_timeout = wait_timeout
        self.restart_if_required = restart_if_required
        self.delete_options = delete_options or {}
        self.poll_interval = poll_interval
        self.shutdown_mode = shutdown_mode  # how a graceful step asks (the driver's perform_graceful)
        self.wait_for_address = wait_for_address
        self.wait_for_address_timeout = wait_for_address_timeout
        self.wait_healthy = wait_healthy  # containers: wait (wait_timeout) until the healthcheck passes


class Outcome:
    """What a run did, for the module's result.

    ``changed`` and ``actions`` (what was done, in order), ``warnings`` for the user,
    ``reboot_required`` (``None`` unless the driver ``reports_reboot`` and the resource is kept)
    and ``extra``, the further result fields the driver reported (``deleted_volumes``, ...).
    """

    def __init__(self):
        self.changed = False
        self.actions = []
        self.warnings = []
        self.extra = {}
        self.reboot_required = None
        self.reread = False  # someone else changed the resource during the run: describe it afresh

    def did(self, action):
        self.changed = True
        self.actions.append(action)

    def absorb(self, result):
        """Take a driver's ``Result`` (or ``None``): its warnings, result fields and actions."""
        if result is None:
            return
        self.warnings.extend(result.warnings)
        self.extra.update(result.extra)
        for action in result.actions:
            self.did(action)

    def fields(self, reboot_key='reboot_required'):
        """The result fields of the run: ``extra``, and ``reboot_required`` as ``reboot_key`` when known."""
        found = dict(self.extra)
        if reboot_key and self.reboot_required is not None:
            found[reboot_key] = self.reboot_required
        return found


def _notes(notes):
    """The notes dict of a relocation driver as a ``Result``."""
    notes = dict(notes or {})
    return Result(warnings=notes.pop('warnings', []), extra=notes)


def _state_is(driver, name, wanted):
    """Whether ``name`` is in state ``wanted`` now (False when it cannot be read)."""
    try:
        return driver.state(name) == wanted
    except VirtError:
        return False


def _run_steps(driver, name, steps, opts, outcome):
    for step in steps:
        try:
            if step.graceful:
                outcome.absorb(driver.perform_graceful(name, step.action, opts.shutdown_mode))
            else:
                outcome.absorb(driver.perform(name, step.action))
        except VirtError as exc:
            for action in exc.details.get('actions') or ():  # what the step wrote before it failed
                outcome.did(action)
            if exc.details.get('not_graceful') and step.graceful and step.escalate and opts.force:
                pass  # the graceful request cannot be made (no guest agent): force escalates after shutdown_timeout
            elif exc.details.get('performed'):  # done, but it did not take (e.g. the process exited at once)
                outcome.did(step.action)
                raise
            elif _state_is(driver, name, step.until):
                # a run at the same time got there first: the state is what counts
                outcome.warnings.append('%s %s was already %s when this run tried to %s it (changed at the same '
                                        'time by someone else)' % (driver.kind, name, step.until, step.action))
                outcome.reread = True
                continue
            else:
                raise
        timeout = opts.shutdown_timeout if step.graceful else opts.wait_timeout
        try:
            wait_for(lambda: driver.state(name), step.until, timeout,
                     '%s %s (after %s)' % (driver.kind, name, step.action), opts.poll_interval)
            outcome.did(step.action)
        except WaitTimeout as exc:
            if not (step.graceful and opts.force and step.escalate):
                if step.graceful:
                    exc.msg = ('%s %s did not reach %s within shutdown_timeout (%s s) after a graceful %s '
                               '(the guest may ignore ACPI requests); it is still %s. Set force: true to '
                               '%s it after shutdown_timeout.'
                               % (driver.kind, name, step.until, opts.shutdown_timeout, step.action,
                                  exc.details.get('state'), step.escalate or 'stop'))
                else:
                    outcome.did(step.action)  # it was done; the state did not follow
                raise
            driver.perform(name, step.escalate)
            wait_for(lambda: driver.state(name), step.until, opts.wait_timeout,
                     '%s %s (after %s)' % (driver.kind, name, step.escalate), opts.poll_interval)
            outcome.did('%s (no %s within shutdown_timeout %s s, force: true)'
                        % (step.escalate, step.action, opts.shutdown_timeout))


def _wait_for_address(driver, name, current, opts):
    """Wait until ``name`` has an IPv4 address; the address, where it came from and how long it took."""
    if current != 'running':
        raise SpecError('wait_for_address', '%s %s is %s: only a running VM gets an address; set state: running'
                        % (driver.kind, name, current))
    started = time.monotonic()
    deadline = started + opts.wait_for_address_timeout
    while True:
        found = driver.address(name)
        if found is not None:
            return dict(found, waited=round(time.monotonic() - started, 1))
        if time.monotonic() >= deadline:
            raise WaitTimeout('%s %s has no IPv4 address after waiting wait_for_address_timeout (%s s); looked in '
                              'the guest agent\'s answer, the DHCP leases and the ARP table (vSphere: what VMware '
                              'Tools reports). Is the guest booting, its network up and on DHCP?'
                              % (driver.kind, name, opts.wait_for_address_timeout))
        time.sleep(max(opts.poll_interval, 1.0))


def _health_log(health, count=3):
    """The last ``count`` health log entries as text: exit code and output."""
    entries = health['log'][-count:]
    if not entries:
        return 'no check has finished yet'
    return '; '.join('exit code %s: %s' % (entry['exit_code'], repr(entry['output'][-300:]) if entry['output']
                                           else '(no output)') for entry in entries)


def _wait_healthy(driver, name, current, opts):
    """Wait until ``name`` reports healthy; fail when it turns unhealthy or stops, or after ``wait_timeout``.

    The engine runs the checks every interval from its own timer (Podman: a systemd timer). Where no check
    ran for an interval (no timer: no systemd), this loop runs one itself (``driver.run_health_check``), every
    interval (every second when the interval is 0, which schedules no checks).
    """
    if current != 'running':
        raise SpecError('wait_healthy', '%s %s is %s: only a running container becomes healthy; set state: started'
                        % (driver.kind, name, current))
    started = time.monotonic()
    deadline = started + opts.wait_timeout
    last_entry, next_check, ran = None, None, 0
    while True:
        health = driver.health(name)
        now = time.monotonic()
        if health['status'] == 'healthy':
            return {'status': 'healthy', 'waited': round(now - started, 1), 'checks_run': ran,
                    'log': health['log'][-3:]}
        if not health['configured']:
            raise SpecError('wait_healthy', '%s %s has no healthcheck: set healthcheck.test, or leave wait_healthy out'
                            % (driver.kind, name))
        if not health['running']:
            raise VirtError('%s %s stopped while waiting for it to become healthy (status %s, exit code %s); its last '
                            'health checks: %s' % (driver.kind, name, health['state'], health['exit_code'],
                                                   _health_log(health)), performed=True)
        if health['status'] == 'unhealthy':
            raise VirtError('%s %s is unhealthy (%d failed checks in a row); its last health checks: %s'
                            % (driver.kind, name, health['failing_streak'], _health_log(health)), performed=True)
        if now >= deadline:
            raise WaitTimeout('%s %s is still %s after waiting wait_timeout (%s s) for it to become healthy; its '
                              'last health checks: %s' % (driver.kind, name, health['status'], opts.wait_timeout,
                                                          _health_log(health)), state=health['status'])
        interval = health['interval'] or 1.0
        entry = health['log'][-1]['start'] if health['log'] else None
        if next_check is None or entry != last_entry:  # the first look, or the engine ran a check itself
            last_entry, next_check = entry, now + interval
        if now >= next_check:
            driver.run_health_check(name)
            ran += 1
            next_check = time.monotonic() + interval
            continue
        time.sleep(max(0.05, min(opts.poll_interval, next_check - now, deadline - now)))


def _transition(driver, name, current, target, opts, outcome):
    steps = driver.steps(current, target)
    if not steps:
        return current
    if opts.check_mode:
        for step in steps:
            outcome.did(step.action)
        return target
    _run_steps(driver, name, steps, opts, outcome)
    return target


def ensure(driver, name, partial, state, target, opts):
    """Converge resource ``name`` to ``state`` ('absent' or present) and transition target.

    ``target`` is the runtime state to reach (``None``: leave it as it is).
    Returns ``(outcome, before, after)`` where before/after are ``describe`` views.
    An error raised part-way carries the ``outcome`` so far (what already changed).
    """
    outcome = Outcome()
    try:
        found = _ensure(driver, name, partial, state, target, opts, outcome)
    except VirtError as exc:
        exc.outcome = outcome
        raise
    outcome.absorb(driver.found)  # what the driver noticed while reading and validating
    return found


def _gone(driver, name):
    try:
        return driver.read(name) is None
    except VirtError:
        return False


def _converged(driver, name, partial):
    """Whether ``name`` exists now and has nothing left to update (another run converged it)."""
    try:
        actual = driver.align(partial, driver.read(name))
        return actual is not None and not driver.plan_update(actual, driver.desired(partial, actual)).changes
    except VirtError:
        return False


def _updated(outcome, plan):
    """Report an update that was made: the changed fields, then the run-state actions it took."""
    outcome.did('updated: %s' % ', '.join(plan.changes))
    for action in plan.actions:
        outcome.did(action)


def _allow_use(driver, use, opts, outcome):
    """Refuse an action on a resource in use (``use``, an ``InUse``) unless ``force``; report whom it affects."""
    if use is None:
        return
    if use.blocking and not opts.force:
        raise SpecError('force', use.refusal)
    outcome.extra[driver.in_use_key] = list(use.affected)


def _ensure(driver, name, partial, state, target, opts, outcome, raced=False):
    if not (opts.check_mode or raced):
        driver.rescan(name)  # a write to the backend's view of the resource: never in check mode
    actual = driver.read(name)

    if state == 'absent':
        if driver.in_use_key:
            outcome.extra[driver.in_use_key] = []
        if actual is None:
            return outcome, None, None
        before = driver.describe(actual)
        _allow_use(driver, driver.in_use(actual), opts, outcome)
        stopped = driver.stopped_state
        try:
            if before['state'] != stopped:
                _transition(driver, name, before['state'], stopped, opts, outcome)
            if not opts.check_mode:
                try:
                    outcome.absorb(driver.delete(actual, opts.delete_options))
                except VirtError as exc:
                    if exc.details.get('performed'):  # removed in part: a change, and the error says what is left
                        for action in exc.details.get('actions') or ():
                            outcome.did(action)
                        outcome.did('deleted in part')
                    raise
        except NotFound:
            # it vanished under this run (another run removed it): absent is what was asked for
            if opts.check_mode or not _gone(driver, name):
                raise
            outcome.warnings.append('%s %s was removed by someone else while this run removed it'
                                    % (driver.kind, name))
            return outcome, before, None
        outcome.did('deleted')
        return outcome, before, None

    actual = driver.align(partial, actual)
    spec = driver.desired(partial, actual)
    if opts.wait_for_address:
        driver.check_address(spec)
    if opts.wait_healthy:
        driver.check_health(spec)
    outcome.extra.update(copy.deepcopy(driver.result_fields))
    before = driver.describe(actual) if actual is not None else None
    if actual is None:
        if not opts.check_mode:
            try:
                outcome.absorb(driver.create(name, spec))
            except VirtError as exc:
                if exc.details.get('performed'):  # created in part, and the driver could not undo it
                    outcome.did('created in part')
                    raise
                # "already exists": another run created it meanwhile; converge it as it is now
                if raced or not exc.details.get('exists') or _gone(driver, name):
                    raise
                outcome.warnings.append('%s %s was created by someone else at the same time; this run converged '
                                        'it instead' % (driver.kind, name))
                return _ensure(driver, name, partial, state, target, opts, outcome, raced=True)
        outcome.did('created')
        current = driver.initial_state
        reboot_required = False
        pending_warnings = []
    else:
        plan = driver.plan_update(actual, spec)
        outcome.extra.update(plan.extra)
        if plan.changes:
            _allow_use(driver, plan.in_use, opts, outcome)
        reboot_required = plan.reboot_required
        pending_warnings = []
        if plan.changes:
            if not opts.check_mode:
                try:
                    result = driver.apply_update(actual, plan)
                except VirtError as exc:
                    for action in exc.details.get('actions') or ():  # what the failed update did (and undid)
                        outcome.did(action)
                    if exc.details.get('performed'):  # the update was made; a later step of it failed
                        _updated(outcome, plan)
                        raise
                    if raced or not _converged(driver, name, partial):
                        raise
                    # which of the two made the change cannot be told: reported as one, never hidden
                    outcome.warnings.append('%s %s was brought to the requested spec while this run\'s update of '
                                            'it failed (%s): by someone else at the same time, or by the failed '
                                            'update itself; reported as a change' % (driver.kind, name, exc.msg))
                    outcome.did('updated: %s' % ', '.join(plan.changes))
                    return _ensure(driver, name, partial, state, target, opts, outcome, raced=True)
                outcome.absorb(result)
                if result is not None:
                    pending_warnings = result.unless_restarted
                    if result.reboot_required is not None:
                        reboot_required = result.reboot_required
            _updated(outcome, plan)
        current = plan.state or before['state']

    if not (reboot_required and opts.restart_if_required and current in driver.restartable_states):
        outcome.warnings.extend(pending_warnings)
    else:
        restart_to = target or current
        current = _transition(driver, name, current, driver.stopped_state, opts, outcome)
        current = _transition(driver, name, current, restart_to, opts, outcome)
        reboot_required = False
    if target is not None:
        current = _transition(driver, name, current, target, opts, outcome)
    if outcome.changed and current == driver.stopped_state and not opts.check_mode:
        # what waited for the stop is written now (vSphere: the changes pending a restart), so a re-run has nothing to do
        outcome.absorb(driver.settle_stopped(name))
    if opts.wait_for_address and not opts.check_mode:
        outcome.extra['address'] = _wait_for_address(driver, name, current, opts)
        outcome.reread = True
    if opts.wait_healthy and not opts.check_mode:
        outcome.extra['health'] = _wait_healthy(driver, name, current, opts)

    if opts.check_mode:
        after = dict(before or {}, spec=spec, state=current)
    elif outcome.changed or outcome.reread:
        after = driver.describe(driver.read(name))
    else:
        after = before  # nothing was written: no second read
    if driver.reports_reboot:
        outcome.reboot_required = bool(reboot_required and current in driver.restartable_states)
    return outcome, before, after


def ensure_many(driver, jobs, workers=4, fail_fast=False):
    """Run ``ensure`` for many resources on one driver, ``workers`` at a time.

    ``jobs`` are ``(name, partial, state, target, opts)`` tuples. Returns one dict per job,
    in order, with ``name``, ``outcome``, ``before``, ``after`` and ``error`` (a message, or
    ``None``); with ``fail_fast``, jobs not started after the first error come back ``skipped``.
    Slow steps (starts, graceful shutdowns, power-offs) overlap; the driver's client must be
    safe to share between threads (libvirt connections are).
    """
    return run_many([(job[0], functools.partial(ensure, driver, *job)) for job in jobs], workers, fail_fast)


def run_many(calls, workers=4, fail_fast=False):
    """Run ``(name, call)`` pairs, ``workers`` at a time: each ``call()`` returns ``(outcome, before, after)``
    like ``ensure`` (and raises a ``VirtError`` that carries ``outcome``, as ``ensure`` does). Results as
    ``ensure_many``'s, in order; a call that needs its own driver per resource (one whose request names the
    resource) runs here with the others."""
    results = [None] * len(calls)
    stop = threading.Event()

    def work(index):
        name, call = calls[index]
        if stop.is_set():
            results[index] = {'name': name, 'outcome': Outcome(), 'before': None, 'after': None,
                              'error': None, 'skipped': True}
            return
        try:
            outcome, before, after = call()
            results[index] = {'name': name, 'outcome': outcome, 'before': before, 'after': after, 'error': None}
        except VirtError as exc:
            results[index] = {'name': name, 'outcome': getattr(exc, 'outcome', None) or Outcome(), 'before': None,
                              'after': None, 'error': exc.msg}
            if fail_fast:
                stop.set()

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(work, range(len(calls))))
    return results


def relocate(driver, name, opts):
    """Converge "resource ``name`` is at the driver's destination": a move between two endpoints
    (a VM between hypervisors), where ``ensure`` converges one resource in place.

    The driver implements:

    ``locate(name)``
        where the resource is: a dict with ``at`` = ``'source'`` (it has to move) or
        ``'destination'`` (nothing to do) and optional ``warnings``; raises when the resource is
        at neither end or the placement is ambiguous
    ``describe(placement)``
        the public view of the resource where it is
    ``precheck(placement)``
        reads only: proves the move can succeed (raising with a message that names every failed
        check) and returns a ``Plan`` whose ``changes`` name the move, ``details['after']`` the
        predicted view and ``details['notes']`` what the checks found
    ``move(placement, plan)``
        the write, returning notes; when it fails it raises and the resource is where it was, or,
        when the move ran but did not reach the destination, raises an error marked ``performed``
        (reported as changed, with the move's actions)

    Returns ``(outcome, before, after)`` like ``ensure``; check mode stops after ``precheck``.
    """
    outcome = Outcome()
    try:
        placement = driver.locate(name)
        outcome.absorb(Result(warnings=placement.get('warnings')))
        before = driver.describe(placement)
        if placement['at'] == 'destination':
            return outcome, before, before
        plan = driver.precheck(placement)
        outcome.absorb(_notes(plan.details.get('notes')))
        if not opts.check_mode:
            try:
                outcome.absorb(_notes(driver.move(placement, plan)))
            except VirtError as exc:
                if exc.details.get('performed'):
                    for change in plan.changes:
                        outcome.did(change)
                raise
        for change in plan.changes:
            outcome.did(change)
        if opts.check_mode:
            return outcome, before, plan.details.get('after', before)
        return outcome, before, driver.describe(driver.locate(name))
    except VirtError as exc:
        exc.outcome = outcome
        raise


def diff(before, after, keys=('state', 'spec')):
    """The ``diff`` return value: before/after views limited to what the user manages."""
    def view(value):
        if value is None:
            return {}
        return dict((k, value.get(k)) for k in keys if k in value)
    return {'before': view(before), 'after': view(after)}

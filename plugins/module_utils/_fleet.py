# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet module's runner: its items validated one by one, the snapshot step, the items converged.

The snapshot step: one snapshot name taken, reverted to or deleted on many VMs in one module
run, on the run's one connection, ``workers`` VMs at a time.

Each VM goes through ``_reconcile.ensure`` with its own ``LibvirtSnapshotDriver`` (the driver's request names
the VM), so a fleet's snapshot and a ``vm_snapshot`` task with the same options decide ``changed``, check mode
and ``--diff`` alike. What is the fleet's own:

- a listed VM that does not exist has nothing to snapshot: it is left out (no change, no error);
- ``memory`` applies to the VMs that run or are paused; a stopped VM has no memory state, so its snapshot is
  of its disks only (``vm_snapshot`` refuses ``memory: true`` on a stopped VM: a fleet mixes both).
"""

from __future__ import annotations

import os

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _reconcile, _snapshot_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_snapshot import LibvirtSnapshotDriver, check_name
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_vm import LibvirtVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._vm_options import vm_request

ACTIVE = ('running', 'paused')
# From this many items on, the fleet reads which VMs exist, their state and autostart in two calls for all of them
# (``LibvirtVMDriver.prefetch``) instead of three calls per VM.
PREFETCH_MIN = 3


def snapshot_request(snapshot, vm, vm_power=None):
    """The ``vm_snapshot`` request of the fleet's ``snapshot`` option for VM ``vm`` (power state ``vm_power``;
    ``None``: not known yet, to validate the option before the connection opens)."""
    params = dict(snapshot, vm=vm, quiesce=False, children=False, location='internal')
    if params['state'] == 'present' and vm_power is not None:
        params['memory'] = bool(params.get('memory')) and vm_power in ACTIVE
    try:
        request = _snapshot_spec.request_from_params(params)
        if vm_power is None:  # the same name on every VM, also those this run creates
            check_name(request['name'], request['state'])
        return request
    except SpecError as exc:
        raise SpecError('snapshot', exc.msg)


def _snapshot_one(client, name, snapshot, opts):
    actual = LibvirtSnapshotDriver(client).read(name)
    if actual is None:  # nothing to snapshot yet (the fleet may create it)
        outcome = _reconcile.Outcome()
        outcome.extra['snapshot'] = {}
        return outcome, None, None
    driver = LibvirtSnapshotDriver(client, snapshot_request(snapshot, name, actual['state']))
    return _reconcile.ensure(driver, name, None, 'present', None, opts)


def snapshot_many(client, names, snapshot, opts, workers=4, fail_fast=False):
    """Converge snapshot ``snapshot`` (the fleet module's option: ``name``, ``state``, ``description``,
    ``memory``, ``vm_state``) on every VM of ``names`` that exists; results as ``_reconcile.ensure_many``'s."""
    return _reconcile.run_many([(name, lambda name=name: _snapshot_one(client, name, snapshot, opts))
                                for name in names], workers, fail_fast)


def _is_free_text(option, value):
    """Whether ansible-core's validation passes the string ``value`` of ``option`` through untouched, whatever it
    says: type str, or type path with nothing to expand (no ``~`` at its start, no ``$``); no choices; not
    no_log (its value is collected as a secret)."""
    kind = option.get('type', 'str')
    if kind == 'path' and (value.startswith('~') or '$' in value):
        return False
    return kind in ('str', 'path') and not option.get('choices') and not option.get('no_log')


def _mask(spec, params, texts, mark):
    """``params`` with each free text string (``_is_free_text``, sub-options included) replaced by a
    placeholder (``mark`` and its number; ``texts`` maps it to the text); anything else as it is."""
    if not isinstance(params, dict):
        return params
    options = {}
    for key, option in spec.items():
        for alias in [key] + list(option.get('aliases') or ()):
            options[alias] = option
    masked = {}
    for key, value in params.items():
        option = options.get(key)
        if option is None:
            masked[key] = value
        elif type(value) is str and _is_free_text(option, value):  # pylint: disable=unidiomatic-typecheck
            token = '%s%d\x00' % (mark, len(texts))
            texts[token] = value
            masked[key] = token
        elif option.get('options') and isinstance(value, dict):
            masked[key] = _mask(option['options'], value, texts, mark)
        elif option.get('options') and isinstance(value, list):
            masked[key] = [_mask(option['options'], item, texts, mark) for item in value]
        else:
            masked[key] = value
    return masked


def _unmask(value, texts):
    """A copy of the validated ``value`` with the placeholders of ``_mask`` given their text back."""
    if isinstance(value, dict):
        return dict((key, item if item is None or item is True or item is False else _unmask(item, texts))
                    for key, item in value.items())
    if isinstance(value, list):
        return [_unmask(item, texts) for item in value]
    if isinstance(value, str):
        return texts.get(value, value)
    return value


class ItemValidator:
    """Validates list items (the fleet's ``vms``) against one argument spec, as ``ArgumentSpecValidator`` does
    for each, at the cost of one validation per distinct shape of item.

    A shape is the item with its free text values (``_is_free_text``: names, paths, titles - strings that
    validation passes through unchanged) taken out: a fleet's items usually differ only in those, so a fleet
    of 1000 VMs costs a handful of validations. Everything validation looks at - keys, types, numbers,
    choices, ``no_log`` values - is part of the shape, so the result, its error messages and the secrets it
    names are those of validating the item itself.
    """

    def __init__(self, spec):
        self.spec = spec
        self._validators = {}  # plain or finite (finite_spec's copy, for an item holding inf/NaN) -> validator
        self._shapes = {}  # shape -> (validated parameters, errors, no_log values)
        self._mark = '\x00vfmask-%s-' % os.urandom(8).hex()  # no value given can be mistaken for a placeholder

    def validate(self, raw):
        """``(validated parameters, error messages, no_log values)`` of the item ``raw`` (a dict)."""
        texts = {}
        masked = _mask(self.spec, raw, texts, self._mark)
        shape = repr(masked)  # types included: '1' and 1, 1 and 1.0, True and 1 differ
        if shape not in self._shapes:
            spec = _module.finite_spec(self.spec, raw)  # inf, NaN: refused, not a traceback
            kind = 'plain' if spec is self.spec else 'finite'
            if kind not in self._validators:
                self._validators[kind] = ArgumentSpecValidator(spec)
            validator = self._validators[kind]
            checked = validator.validate(masked)
            self._shapes[shape] = (checked.validated_parameters, list(checked.error_messages),
                                   set(checked._no_log_values))
        params, errors, no_log = self._shapes[shape]
        return _unmask(params, texts), [_unmask(error, texts) for error in errors], set(no_log)


def requests_of(module, item_spec):
    """``(name, request or SpecError)`` per item of ``vms``, validated against ``item_spec`` (the module's)
    before anything is written; the ``no_log`` values of the items join the module's."""
    opts = _module.reconcile_options(module)
    validator = ItemValidator(item_spec)
    requests, seen = [], set()
    for index, raw in enumerate(module.params['vms']):
        not_dicts = _module.bad_suboptions(item_spec, raw)
        params, errors, no_log = validator.validate(raw if not not_dicts else {})
        module.no_log_values.update(no_log)
        name = params.get('name') if not not_dicts else raw.get('name')
        try:
            if not_dicts:
                raise SpecError(None, '; '.join(not_dicts))
            if errors:
                raise SpecError(None, '; '.join(errors))
            if name in seen:
                raise SpecError('name', '%s is listed twice' % name)
            seen.add(name)
            requests.append((name, vm_request(params, opts)))
        except SpecError as exc:
            requests.append((name, SpecError('vms[%d]' % index, exc.msg)))
    return requests


def _item_result(item, snap=None):
    """One entry of ``results``: the item's convergence (``item``, None when it did not run) after its snapshot
    step (``snap``, None without one)."""
    outcome = item['outcome'] if item else _reconcile.Outcome()
    actions = (snap['outcome'].actions if snap else []) + outcome.actions
    changed = outcome.changed or bool(snap and snap['outcome'].changed)
    entry = {'name': (item or snap)['name'], 'changed': changed, 'actions': actions,
             'vm': (item or {}).get('after') or {}, 'failed': False}
    entry.update(outcome.fields())
    if snap is not None:
        entry['snapshot'] = snap['outcome'].extra.get('snapshot') or {}
        if snap['error'] is not None:
            entry.update(failed=True, msg='snapshot step: %s' % snap['error'])
    if item and item['error'] is not None:
        entry.update(failed=True, msg=item['error'])
    if (item or snap).get('skipped'):
        entry['skipped'] = True
    return entry


def _snapshot_step(module, session, jobs):
    """The ``snapshot`` option's step: ``{name: result}`` of the VMs it ran on (``snapshot_many``)."""
    params = module.params
    names = [job[0] for job in jobs if job[2] != 'absent']
    done = snapshot_many(session.client, names, params['snapshot'], _module.reconcile_options(module),
                         params['workers'], params['fail_fast'])
    return dict((item['name'], item) for item in done)


def run(module, item_spec):
    """The fleet module's run: its items validated one by one before the connection opens (one bad item fails
    alone), the snapshot step, then the items converged ``workers`` at a time; exits the module."""
    params = module.params
    if params['workers'] < 1:
        module.fail_json(msg='workers must be at least 1, got %d' % params['workers'])
    if params['snapshot']:
        try:
            snapshot_request(params['snapshot'], 'fleet')
        except SpecError as exc:
            module.fail_json(msg='nothing was changed: %s' % exc.msg)
    requests = requests_of(module, item_spec)
    refused = [error for _name, error in requests if isinstance(error, SpecError)]
    if refused and params['fail_fast']:
        module.fail_json(msg='nothing was changed: %s' % '; '.join(error.msg for error in refused))
    results, diffs = [], []
    with _module.Session(module) as session:
        jobs = [request for _name, request in requests if not isinstance(request, SpecError)]
        snaps = _snapshot_step(module, session, jobs) if params['snapshot'] else {}
        stopped = [snap for snap in snaps.values() if snap['error'] is not None]
        if stopped and params['fail_fast']:
            jobs = []  # a VM is changed only once every snapshot was taken
        jobs = [job for job in jobs if job[0] not in set(snap['name'] for snap in stopped)]
        driver = LibvirtVMDriver(session.client)
        if len(jobs) >= PREFETCH_MIN:  # after the snapshot step, which may change their state
            driver.prefetch([job[0] for job in jobs])
        done = dict((item['name'], item) for item in
                    _reconcile.ensure_many(driver, jobs, params['workers'], params['fail_fast']))
        for name, request in requests:
            if isinstance(request, SpecError):
                results.append({'name': name, 'changed': False, 'actions': [], 'vm': {}, 'failed': True,
                                'msg': request.msg})
                continue
            snap, item = snaps.get(name), done.get(name)
            if item is None and (snap is None or snap['error'] is None):  # fail_fast stopped it before it began
                item = {'name': name, 'outcome': _reconcile.Outcome(), 'after': None, 'error': None, 'skipped': True}
            results.append(_item_result(item, snap))
            for source in (snap, item):
                for warning in source['outcome'].warnings if source else ():
                    module.warn('%s: %s' % (name, warning))
            if snap and snap['outcome'].changed:
                header = '%s snapshots' % name
                diffs.append(dict(_reconcile.diff(snap['before'], snap['after']), before_header=header,
                                  after_header=header))
            if item and item['outcome'].changed:
                diffs.append(dict(_reconcile.diff(item['before'], item['after']), before_header=name, after_header=name))
    failed = [r for r in results if r['failed']]
    summary = {'total': len(results), 'changed': sum(1 for r in results if r['changed']),
               'failed': len(failed), 'skipped': sum(1 for r in results if r.get('skipped'))}
    result = dict(changed=summary['changed'] > 0, results=results, summary=summary)
    if module._diff:
        result['diff'] = diffs
    if failed:
        module.fail_json(msg='%d of %d VMs failed: %s' % (
            len(failed), len(results), '; '.join('%s: %s' % (r['name'], r['msg']) for r in failed)), **result)
    module.exit_json(**result)

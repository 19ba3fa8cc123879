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

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _reconcile, _snapshot_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_snapshot import LibvirtSnapshotDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_vm import LibvirtVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._vm_options import vm_request

ACTIVE = ('running', 'paused')


def snapshot_request(snapshot, vm, vm_power=None):
    """The ``vm_snapshot`` request of the fleet's ``snapshot`` option for VM ``vm`` (power state ``vm_power``;
    ``None``: not known yet, to validate the option before the connection opens)."""
    params = dict(snapshot, vm=vm, quiesce=False, children=False, location='internal')
    if params['state'] == 'present' and vm_power is not None:
        params['memory'] = bool(params.get('memory')) and vm_power in ACTIVE
    try:
        return _snapshot_spec.request_from_params(params)
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


def requests_of(module, item_spec):
    """``(name, request or SpecError)`` per item of ``vms``, validated against ``item_spec`` (the module's)
    before anything is written."""
    opts = _module.reconcile_options(module)
    spec = item_spec
    requests, seen = [], set()
    for index, raw in enumerate(module.params['vms']):
        validator = ArgumentSpecValidator(_module.finite_spec(spec, raw))  # inf, NaN: refused, not a traceback
        not_dicts = _module.bad_suboptions(validator.argument_spec, raw)
        checked = validator.validate(raw if not not_dicts else {})
        params = checked.validated_parameters
        name = params.get('name') if not not_dicts else raw.get('name')
        try:
            if not_dicts:
                raise SpecError(None, '; '.join(not_dicts))
            if checked.error_messages:
                raise SpecError(None, '; '.join(checked.error_messages))
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
        done = dict((item['name'], item) for item in
                    _reconcile.ensure_many(LibvirtVMDriver(session.client), jobs, params['workers'], params['fail_fast']))
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

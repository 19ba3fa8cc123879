# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet runner's snapshot step: one snapshot name taken, reverted to or deleted on many VMs in one module
run, on the run's one connection, ``workers`` VMs at a time.

Each VM goes through ``_reconcile.ensure`` with its own ``LibvirtSnapshotDriver`` (the driver's request names
the VM), so a fleet's snapshot and a ``vm_snapshot`` task with the same options decide ``changed``, check mode
and ``--diff`` alike. What is the fleet's own:

- a listed VM that does not exist has nothing to snapshot: it is left out (no change, no error);
- ``memory`` applies to the VMs that run or are paused; a stopped VM has no memory state, so its snapshot is
  of its disks only (``vm_snapshot`` refuses ``memory: true`` on a stopped VM: a fleet mixes both).
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile, _snapshot_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_snapshot import LibvirtSnapshotDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

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

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vSphere snapshot driver: the contract of ``LibvirtSnapshotDriver`` over ``VSphereClient`` (the resource
``_reconcile.ensure`` converges is the VM's snapshot tree; the request of one ``vm_snapshot`` task says what to
change in it).

- create: ``CreateSnapshot_Task`` with the request's ``memory`` and ``quiesce`` flags as they are; vSphere
  quiesces through VMware Tools and fails the task (no snapshot taken) when they do not answer. A snapshot of a
  stopped VM has no memory to keep and no guest to quiesce: both are refused, as on libvirt.
- revert: ``RevertToSnapshot_Task`` (vSphere told not to power the VM on unless it is to run), then the VM is
  brought to the power state ``vm_state`` asks for, else the one the snapshot recorded (running or paused for a
  snapshot with memory, stopped for one without): whatever vSphere (or the simulator, which leaves the power
  state as it was) did, the VM ends in that state.
- remove: ``RemoveSnapshot_Task``, with ``removeChildren`` for ``children: true``.
- memory: vSphere keeps no "memory" flag in the snapshot tree; the power state it records is the one a revert
  returns to, powered on or suspended only for a snapshot that holds the VM's memory, so ``memory`` reads
  ``true`` for those. (govmomi's simulator records the VM's power state whatever ``memory`` said.)
- ``location: external`` is libvirt's (declared so in the module); vSphere keeps every snapshot itself
  (``internal``). ``size`` is not read (null).

Whether the VM is still at a snapshot ("reverted" unchanged) cannot be known on vSphere: the snapshot tree
names the current snapshot (the parent of the VM's running state), but nothing the API shows in the VM's
properties tells whether the VM ran, or its disks were written, since it was reverted (a power-on and off leaves
no trace there). So ``at_snapshot`` is always null here and ``state: reverted`` always reverts, reported
changed (check mode predicts that).

Snapshots are told apart by name, which vSphere does not require to be unique: a VM with two snapshots of one
name is refused by ``vm_snapshot`` before anything is written (``vm_snapshot_info`` lists them as they are).
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils import _snapshot_spec as snapspec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_placement as placements
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.snapshot_tree import (
    SNAPSHOT_STATES, SnapshotTreeDriver, public)
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_vm import VSphereVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Result


def entry_of(found):
    """A snapshot as ``VSphereClient.vm_snapshots`` reads it, in the normalized form (``ref`` kept)."""
    return {'name': found['name'], 'parent': found['parent'], 'description': found['description'],
            'created': found['created'], 'vm_state': found['state'], 'memory': found['state'] in ('running', 'paused'),
            'location': 'internal', 'current': found['current'], 'size': None, 'quiesced': found['quiesced'],
            'ref': found['ref']}


class VSphereSnapshotDriver(SnapshotTreeDriver):
    def __init__(self, client, request=None, placement=None):
        super().__init__(client, request)
        self.placement = dict((k, v) for k, v in (placement or {}).items() if v is not None)
        self.vms = VSphereVMDriver(client, self.placement)  # its inventory (one query) finds the VM

    # -- reading --------------------------------------------------------------------
    def read(self, name):
        found = placements.candidates(self.vms.inventory(), self.placement, name)
        if not found:
            return None
        ref = found[0]['ref']
        tree = self.client.vm_snapshots(ref)
        if tree is None:  # removed meanwhile
            return None
        return {'name': tree['name'], 'ref': ref, 'state': tree['state'],
                'snapshots': [entry_of(item) for item in tree['snapshots']], 'at_snapshot': None}

    @property
    def where(self):
        where = ['datacenter %s' % self.placement['datacenter']] if self.placement.get('datacenter') else []
        where += ['folder %s' % self.placement['folder']] if self.placement.get('folder') else []
        return 'on this vCenter' + (' (in %s)' % ', '.join(where) if where else '')

    # -- what vSphere allows (the tree's other checks are the shared driver's) --------------
    def provably_at(self, actual, entry, target):
        """Never (the module's docstring says why): a revert is always made again."""
        return False

    def check_tree(self, actual):
        names = [e['name'] for e in actual['snapshots']]
        twice = sorted(set(n for n in names if names.count(n) > 1))
        if twice:
            raise SpecError('name', 'VM %s has more than one snapshot named %s; this module tells snapshots apart by '
                                    'name, so it changes nothing on this VM until they are renamed or removed (in '
                                    'the vSphere Client); nothing was changed'
                            % (actual['name'], ', '.join(repr(n) for n in twice)))

    def check_create(self, actual):
        req, power, vm = self.request, actual['state'], actual['name']
        if power not in SNAPSHOT_STATES:
            raise SpecError('vm', 'VM %s is %s: a snapshot is taken of a running, paused or stopped VM' % (vm, power))
        if power == 'stopped':
            if req['memory']:
                raise SpecError('memory', 'VM %s is stopped: it has no memory state to keep; leave memory out or '
                                          'start the VM first' % vm)
            if req['quiesce']:
                raise SpecError('quiesce', 'VM %s is stopped: there is no guest to quiesce; leave quiesce out' % vm)

    def differences(self, entry):
        req = self.request
        differs = ['memory'] if entry['memory'] != req['memory'] else []
        if req['quiesce'] and not entry['quiesced']:
            differs.append('quiesce')
        return differs

    # -- writing ---------------------------------------------------------------------------
    def apply_update(self, actual, plan):
        req = self.request
        vm = actual['name']
        if req['state'] == 'present':
            self.client.create_snapshot(actual['ref'], vm, req['name'], req['description'], req['memory'],
                                        req['quiesce'])
            return Result(extra={'snapshot': public(self._reread(actual))})
        entry = snapspec.find(actual['snapshots'], req['name'])
        if req['state'] == 'absent':
            self.client.remove_snapshot(entry['ref'], vm, req['name'], req['children'])
            return None
        return self._revert(actual, entry, plan.state)

    def _reread(self, actual):
        tree = self.client.vm_snapshots(actual['ref']) or {'snapshots': []}
        found = [entry_of(item) for item in tree['snapshots'] if item['name'] == self.request['name']]
        return found[-1] if found else None

    def _revert(self, actual, entry, target):
        vm, ref = actual['name'], actual['ref']
        self.client.revert_snapshot(entry['ref'], vm, entry['name'], suppress_power_on=target != 'running')
        try:
            power = self.client.vm_state(ref)
            if target == 'stopped' and power != 'stopped':
                self.client.power_off(ref, vm)
            elif target == 'running' and power != 'running':
                self.client.power_on(ref, vm)
            elif target == 'paused' and power != 'paused':
                if power == 'stopped':
                    self.client.power_on(ref, vm)
                self.client.suspend(ref, vm)
        except VirtError as exc:
            raise BackendError('VM %s was reverted to snapshot %r, then bringing it to %s failed: %s'
                               % (vm, entry['name'], target, exc.msg), performed=True)
        return Result(extra={'snapshot': public(self._reread(actual))})

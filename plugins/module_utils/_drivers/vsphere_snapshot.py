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
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import Driver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_vm import VSphereVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result

PUBLIC = ('name', 'parent', 'description', 'created', 'vm_state', 'memory', 'location', 'current', 'size')
SNAPSHOT_STATES = ('running', 'paused', 'stopped')


def public(entry):
    return dict((key, entry.get(key)) for key in PUBLIC) if entry else {}


def entry_of(found):
    """A snapshot as ``VSphereClient.vm_snapshots`` reads it, in the normalized form (``ref`` kept)."""
    return {'name': found['name'], 'parent': found['parent'], 'description': found['description'],
            'created': found['created'], 'vm_state': found['state'], 'memory': found['state'] in ('running', 'paused'),
            'location': 'internal', 'current': found['current'], 'size': None, 'quiesced': found['quiesced'],
            'ref': found['ref']}


class VSphereSnapshotDriver(Driver):
    kind = 'VM'
    result_fields = {'snapshot': {}}

    def __init__(self, client, request=None, placement=None):
        super().__init__(client)
        self.request = request  # the validated request of a vm_snapshot task (None: reading only)
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

    def describe(self, actual):
        entries = actual['snapshots']
        return {'name': actual['name'], 'state': actual['state'],
                'spec': {'snapshots': [public(entry) for entry in entries], 'current': snapspec.current(entries),
                         'at_snapshot': None}}

    # -- the desired tree ----------------------------------------------------------------
    def desired(self, partial, actual):
        req = self.request
        if actual is None:
            raise SpecError('vm', 'there is no VM named %s on this vCenter%s; check the name (virtfleet.virt.vm_info '
                                  'lists the VMs)' % (req['vm'], self._where()))
        self._check_unique(actual)
        entries = actual['snapshots']
        entry = snapspec.find(entries, req['name'])
        if req['state'] == 'present':
            if entry is None:
                self._check_create(actual)
                new = {'name': req['name'], 'description': req['description'], 'created': None,
                       'vm_state': actual['state'], 'memory': req['memory'], 'location': 'internal', 'size': None}
                entries = snapspec.after_create(entries, new)
            else:
                self._note_differences(entry)
        elif req['state'] == 'absent':
            if entry is not None:
                entries = snapspec.after_delete(entries, req['name'], req['children'])
        else:
            if entry is None:
                names = [e['name'] for e in entries]
                raise SpecError('name', 'VM %s has no snapshot %r to revert to (its snapshots: %s)'
                                % (actual['name'], req['name'], ', '.join(repr(n) for n in names) or 'none'))
            entries = snapspec.after_revert(entries, req['name'])
        return {'snapshots': [public(e) for e in entries], 'current': snapspec.current(entries), 'at_snapshot': None}

    def _where(self):
        where = ['datacenter %s' % self.placement['datacenter']] if self.placement.get('datacenter') else []
        where += ['folder %s' % self.placement['folder']] if self.placement.get('folder') else []
        return ' (in %s)' % ', '.join(where) if where else ''

    def _check_unique(self, actual):
        names = [e['name'] for e in actual['snapshots']]
        twice = sorted(set(n for n in names if names.count(n) > 1))
        if twice:
            raise SpecError('name', 'VM %s has more than one snapshot named %s; this module tells snapshots apart by '
                                    'name, so it changes nothing on this VM until they are renamed or removed (in '
                                    'the vSphere Client); nothing was changed'
                            % (actual['name'], ', '.join(repr(n) for n in twice)))

    def _check_create(self, actual):
        req, power, vm = self.request, actual['state'], actual['name']
        if power not in SNAPSHOT_STATES:
            raise SpecError('vm', 'VM %s is %s: a snapshot is taken of a running, paused or stopped VM' % (vm, power))
        if power == 'stopped':
            if req['memory']:
                raise SpecError('memory', 'VM %s is stopped: it has no memory state to keep; leave memory out or '
                                          'start the VM first' % vm)
            if req['quiesce']:
                raise SpecError('quiesce', 'VM %s is stopped: there is no guest to quiesce; leave quiesce out' % vm)

    def _note_differences(self, entry):
        req = self.request
        differs = ['memory'] if entry['memory'] != req['memory'] else []
        if req['quiesce'] and not entry['quiesced']:
            differs.append('quiesce')
        if req['description'] is not None and (entry['description'] or '') != req['description']:
            differs.append('description')
        if differs:
            self.found.warnings.append(
                'snapshot %r exists (taken %s) with other %s than this task asks for; an existing snapshot is kept '
                'as it is (snapshots are compared by name): delete it first (state: absent) to take it again'
                % (req['name'], entry['created'], ', '.join(differs)))

    # -- writing ---------------------------------------------------------------------------
    def plan_update(self, actual, spec):
        req = self.request
        name = req['name']
        entry = snapspec.find(actual['snapshots'], name)
        if req['state'] == 'present' and entry is None:
            return Plan(['snapshots'], actions=['created snapshot %s' % name],
                        extra={'snapshot': snapspec.find(spec['snapshots'], name)})
        if req['state'] == 'absent' and entry is not None:
            gone = snapspec.subtree(actual['snapshots'], name) if req['children'] else [name]
            below = [n for n in gone if n != name]
            return Plan(['snapshots'], actions=['deleted snapshot %s%s' % (
                name, ' and the snapshots below it: %s' % ', '.join(reversed(below)) if below else '')])
        if req['state'] == 'reverted':  # never provably at the snapshot on vSphere: always reverted
            target = snapspec.revert_state(entry, req['vm_state'])
            return Plan(['at_snapshot'], actions=['reverted to snapshot %s, VM %s' % (name, target)],
                        state=target, extra={'snapshot': dict(public(entry), current=True)})
        return Plan([], extra={'snapshot': public(entry) if req['state'] != 'absent' else {}})

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

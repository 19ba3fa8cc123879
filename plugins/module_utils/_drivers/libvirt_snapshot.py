# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt snapshot driver: a VM seen through its snapshots (the resource ``_reconcile.ensure`` converges is
the VM's snapshot tree; the request of one ``vm_snapshot`` task says what to change in it).

What libvirt 9.0 allows, checked in ``desired`` before anything is written:

- internal snapshots (kept inside the qcow2 disks) of a stopped VM (disks only) or of a running or paused VM
  with its memory; libvirt refuses an internal snapshot of a running VM without memory, of a raw disk and of a
  UEFI (pflash firmware) VM;
- external disk-only snapshots (new qcow2 overlay files the VM then runs on), also quiesced through the guest
  agent; libvirt 9.0 can neither revert them nor delete their data: ``absent`` removes the record only.

Whether the VM is still at a snapshot ("reverted" unchanged): libvirt marks the state a revert leaves a VM in
with the reason "from snapshot" when the revert stops an active VM or leaves it paused, and any start, resume or
stop replaces that reason (a VM shut off already keeps the reason it had: measured on libvirt 9.0). The VM is at
snapshot S when S is libvirt's current snapshot, the reason is still "from snapshot" (so the guest has not run
since) and this collection's marker in the domain's metadata, written after each revert, names S (libvirt makes
the parent current when the current snapshot is deleted, which the reason alone would not show). Otherwise it
cannot be known: a VM left running after the revert has run since, and a VM that was shut off (for another
reason) when it was reverted may have run since; both are reverted again, and reported changed.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils import _snapshot_spec as snapspec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_snapshotxml as snapxml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.snapshot_tree import (
    SNAPSHOT_STATES, SnapshotTreeDriver, public)
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Result
# what QEMU's savevm says when it cannot write the memory state into the qcow2 file (a full filesystem, measured)
VMSTATE_WRITE_FAILED = 'Error while writing VM state'


def _check_loadable(name, what):
    """QEMU (7.2, with libvirt 9.0) cannot load an internal snapshot whose name holds a double quote or a
    backslash: the revert fails ("Snapshot ... does not exist in one or more devices") after libvirt stopped the
    running guest (measured). Refused before anything is written."""
    bad = sorted(set(char for char in name if char in '"\\'))
    if bad:
        raise SpecError('name', 'holds %s: QEMU cannot revert to a snapshot whose name has a double quote or a '
                                'backslash (the revert fails after the running guest was stopped), so such a snapshot '
                                'is not %s here; rename it (other XML metacharacters such as < > & \' are fine)'
                        % (' and '.join(repr(char) for char in bad), what))


def check_name(name, state):
    """Refuse a snapshot name libvirt or QEMU cannot take (``state: present``) or revert to (``reverted``); called
    by the driver and, before anything is written, by ``fleet`` for all its VMs at once (a VM it creates has no
    snapshot to take in that run, but has in the next one)."""
    if state == 'present' and '/' in name:
        raise SpecError('name', 'contains "/", which libvirt refuses in a snapshot name (it names the overlay '
                                'files of external snapshots after it); rename it')
    if state in ('present', 'reverted'):
        _check_loadable(name, 'taken' if state == 'present' else 'reverted to')


class LibvirtSnapshotDriver(SnapshotTreeDriver):
    # -- reading --------------------------------------------------------------------
    def read(self, name):
        return self.read_one(self.client.lookup_domain, self.read_domain, name)

    def read_domain(self, dom):
        entries = snapspec.tree_order(self.read_all(self.client.list_snapshots(dom), self._entry))
        current = snapspec.current(entries)
        at = None
        from_snapshot = self.client.domain_reverted_since_run(dom)
        if current and from_snapshot and \
                snapxml.marked(self.client.domain_metadata(dom, snapxml.MARKER_NS)) == current:
            at = current
        return {'name': dom.name(), 'dom': dom, 'state': self.client.domain_state(dom), 'snapshots': entries,
                'at_snapshot': at, 'from_snapshot': from_snapshot,
                'facts': snapxml.domain_facts(self.client.domain_xml(dom, inactive=True))}

    def _entry(self, snap):
        entry = snapxml.parse(self.client.snapshot_xml(snap))
        entry.update(current=self.client.snapshot_is_current(snap), size=None)  # libvirt does not say the size
        return entry

    # -- what libvirt allows --------------------------------------------------------------
    def provably_at(self, actual, entry, target):
        """libvirt gives the reason "from snapshot" when the revert stops a running (or paused) VM or leaves it
        paused; a VM that was shut off already keeps the reason it had (measured, libvirt 9.0)."""
        return (target == 'stopped' and not entry['memory'] and
                (actual['state'] != 'stopped' or actual['from_snapshot'])) or (target == 'paused' and entry['memory'])

    def check_create(self, actual):
        req, power, facts = self.request, actual['state'], actual['facts']
        vm = actual['name']
        if power not in SNAPSHOT_STATES:
            raise SpecError('vm', 'VM %s is %s: a snapshot is taken of a running, paused or stopped VM; wait until it '
                                  'is one of those' % (vm, power))
        check_name(req['name'], 'present')
        active = power != 'stopped'
        if req['location'] == 'external':
            if req['memory']:
                raise SpecError('memory', 'external snapshots are taken disk-only here (libvirt 9.0 can neither '
                                          'revert nor delete external memory state); use location: internal for a '
                                          'snapshot with memory')
        else:
            if facts['uefi']:
                raise SpecError('location', 'VM %s boots with UEFI (pflash firmware with an nvram varstore): libvirt '
                                            '9.0 takes no internal snapshots of such a VM ("internal snapshots of a '
                                            'VM with pflash based firmware are not supported": the varstore would '
                                            'not be kept), and a stopped VM whose firmware libvirt picks at start '
                                            'is refused alike; take an external disk-only snapshot (location: '
                                            'external), which libvirt 9.0 cannot revert' % vm)
            if not facts['disks']:
                raise SpecError('vm', 'VM %s has no writable disk: an internal snapshot is kept inside its qcow2 '
                                      'disks' % vm)
            for disk in facts['disks']:
                if disk['format'] != 'qcow2':
                    raise SpecError('location', 'disk %s of VM %s (%s) is %s: libvirt keeps internal snapshots inside '
                                                'qcow2 disks only; convert it to qcow2 (qemu-img convert -O qcow2, '
                                                'VM stopped) or take an external disk-only snapshot (location: '
                                                'external); nothing was changed'
                                    % (disk['target'], vm, disk['path'], disk['format'] or 'of unknown format'))
            if active and not req['memory']:
                raise SpecError('memory', 'VM %s is %s: libvirt 9.0 takes an internal snapshot of a running VM only '
                                          'with its memory ("internal snapshot of a running VM must include the '
                                          'memory state"); set memory: true, stop the VM first, or take an external '
                                          'disk-only snapshot (location: external, which libvirt 9.0 cannot revert)'
                                % (vm, power))
        if req['memory'] and not active:
            raise SpecError('memory', 'VM %s is stopped: it has no memory state to keep; leave memory out or start '
                                      'the VM first' % vm)
        if req['quiesce']:
            self._check_quiesce(actual, active)

    def _check_quiesce(self, actual, active):
        vm = actual['name']
        if not active:
            raise SpecError('quiesce', 'VM %s is stopped: there is no guest to quiesce; leave quiesce out' % vm)
        if self.request['location'] != 'external':
            raise SpecError('quiesce', 'libvirt quiesces the guest for external disk-only snapshots only; an '
                                       'internal snapshot of a running VM keeps its memory, so its filesystems need '
                                       'no freezing (and a frozen guest would come back frozen on revert). Leave '
                                       'quiesce out, or take a disk-only snapshot with location: external')
        try:
            self.client.guest_agent_fs_info(actual['dom'])
        except VirtError as exc:
            raise SpecError('quiesce', 'no QEMU guest agent answers in VM %s (%s), and quiesce freezes the guest\'s '
                                       'filesystems through it; give the VM a guest agent channel (virtfleet.virt.vm '
                                       'guest_agent: true) with qemu-guest-agent running in the guest, or leave '
                                       'quiesce out; nothing was changed' % (vm, exc.msg))

    def check_revert(self, actual, entry):
        req = self.request
        check_name(req['name'], 'reverted')
        if entry['location'] == 'external':
            raise SpecError('name', 'snapshot %r of VM %s is external (disk-only, overlay files %s): libvirt 9.0 '
                                    'cannot revert external snapshots ("revert to external snapshot not supported '
                                    'yet"); nothing was changed. Revert to an internal snapshot, or point the VM\'s '
                                    'disks back at the overlays\' backing files by hand'
                            % (req['name'], actual['name'], ', '.join(entry['files']) or 'unknown'))

    def differences(self, entry):
        req = self.request
        return [key for key, wanted in (('memory', req['memory']), ('location', req['location'])) if entry[key] != wanted]

    # -- writing ---------------------------------------------------------------------------
    def apply_update(self, actual, plan):
        if self.request['state'] == 'present':
            return self._create(actual)
        if self.request['state'] == 'absent':
            return self._delete(actual, plan.details['gone'])
        return self._revert(actual, plan.state)

    def _create(self, actual):
        req = self.request
        warnings = []
        job = self.client.domain_paused_by_job(actual['dom'])
        if job:
            warnings.append('VM %s was paused by an interrupted %s job (libvirt does not resume a guest when the job '
                            'or libvirtd dies): snapshot %r records it paused; resume it with '
                            'virtfleet.virt.vm state=running' % (actual['name'], job, req['name']))
        xml = snapxml.render(req['name'], req['description'], memory=req['memory'])
        try:
            snap = self.client.create_snapshot(actual['dom'], xml, disk_only=req['location'] == 'external',
                                               quiesce=req['quiesce'])
        except BackendError as exc:
            if VMSTATE_WRITE_FAILED not in exc.msg:
                raise
            # QEMU (7.2) reports any failed write of the memory state, ENOSPC included, as "Input/output error"
            raise BackendError('%s. QEMU could not write the memory of VM %s into its qcow2 disk (%s); it reports '
                               'every write error so, and the usual cause is a full filesystem under that disk: free '
                               'space there and run the task again. libvirt took no snapshot'
                               % (exc.msg.strip().rstrip('.'), actual['name'],
                                  ', '.join(d['path'] for d in actual['facts']['disks']) or 'unknown'))
        return Result(warnings=warnings, extra={'snapshot': public(self._entry(snap))})

    def _delete(self, actual, gone):
        dom, done, warnings = actual['dom'], [], []
        for name in gone:  # deepest first
            entry = snapspec.find(actual['snapshots'], name)
            external = entry['location'] == 'external'
            try:
                self.client.delete_snapshot(self.client.lookup_snapshot(dom, name), metadata_only=external)
            except VirtError as exc:
                if not done:
                    raise
                raise BackendError('%s; deleted before that: %s' % (exc.msg, ', '.join(done)), performed=True)
            done.append(name)
            if external:
                warnings.append('snapshot %r is external: libvirt 9.0 cannot delete the data of external snapshots, '
                                'so only its record was removed; VM %s keeps running on its overlay files (%s), '
                                'which stay' % (name, actual['name'], ', '.join(entry['files'])))
        return Result(warnings=warnings)

    def _revert(self, actual, target):
        req, dom = self.request, actual['dom']
        entry = snapspec.find(actual['snapshots'], req['name'])
        snap = self.client.lookup_snapshot(dom, req['name'])
        # a revert with memory cannot leave the VM stopped: it comes back paused and is powered off then
        run = {'running': 'running', 'paused': 'paused', 'stopped': 'paused' if entry['memory'] else None}[target]
        self.client.revert_snapshot(dom, snap, run)
        try:
            if target == 'stopped' and entry['memory']:
                self.client.destroy_domain(dom)
            self.client.set_domain_metadata(dom, snapxml.marker(req['name']), snapxml.MARKER_KEY, snapxml.MARKER_NS,
                                            live=target != 'stopped')
        except VirtError as exc:
            raise BackendError('VM %s was reverted to snapshot %r, then: %s' % (actual['name'], req['name'], exc.msg),
                               performed=True)
        return Result(extra={'snapshot': public(self._entry(snap))})

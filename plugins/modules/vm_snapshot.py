#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: vm_snapshot
short_description: Take, revert and delete VM snapshots
version_added: 0.3.0
description:
  - Takes a snapshot of a VM (O(state=present)), reverts the VM to one (O(state=reverted)) or deletes one, with
    the snapshots below it if asked (O(state=absent)).
  - Idempotent - snapshots are compared by name, never by time - a snapshot that exists is left as it is, one
    that does not exist is not deleted again. O(state=reverted) is unchanged only when the VM is provably still
    at the snapshot with nothing run since - the snapshot is the VM's current one, libvirt's reason for the
    VM's power state is still "from snapshot" (any start, resume or stop replaces it) and the module's marker in
    the domain's metadata, written after each revert, names the snapshot. libvirt gives that reason when the
    revert stops a running VM (a snapshot without memory) or leaves it paused (O(vm_state=paused) with a memory
    snapshot), and a VM keeps it while it stays shut off; such a revert is not repeated. When it cannot be known
    the VM is reverted again and the task reports a change - a VM left running has run since its revert, and a
    VM that was already shut off when it was reverted keeps the reason it had (libvirt 9.0), which cannot tell
    whether it ran since. A write to the disks from outside libvirt (C(qemu-img), C(guestfish)) cannot be seen.
  - Check mode predicts RV(ignore:changed) truthfully and changes nothing; C(--diff) shows the VM's snapshot
    list (and power state) before and after.
  - "libvirt 9.0: internal snapshots (kept inside the VM's qcow2 disks) are taken of a stopped VM (disks only)
    or of a running or paused VM with O(memory=true); they revert and delete. External snapshots
    (O(location=external)) are disk-only: new qcow2 overlay files beside the disks, which the VM then runs on;
    libvirt 9.0 cannot revert them (refused) nor delete their data (O(state=absent) removes the record only,
    with a warning)."
  - What libvirt cannot do is refused before anything is written, naming the limit - an internal snapshot of a
    VM with a raw disk or with UEFI firmware (pflash, nvram; libvirt 9.0 refuses it because the nvram varstore
    would not be kept, and lets a stopped VM whose firmware it picks at start slip past that check, which this
    module refuses alike), an internal snapshot of a running VM without its memory, a revert to an external
    snapshot, O(quiesce) when no guest agent answers.
  - O(vm) removed by M(virtfleet.virt.vm) with O(virtfleet.virt.vm#module:state=absent) loses its snapshot
    records; the snapshots' data inside its qcow2 disks goes with the disks when they are deleted
    (O(virtfleet.virt.vm#module:delete_volumes=true)).
  - "vSphere (when O(hostname) is set, as for M(virtfleet.virt.vm)): the same task takes a snapshot with
    C(CreateSnapshot_Task) (O(memory) and O(quiesce) passed to vSphere as they are; vSphere quiesces through
    VMware Tools and fails, taking no snapshot, when they do not answer), reverts with C(RevertToSnapshot_Task)
    and then brings the VM to the power state O(vm_state) says (else the one the snapshot recorded), and deletes
    with C(RemoveSnapshot_Task) (C(removeChildren) for O(children=true)). vSphere keeps every snapshot itself -
    O(location) is libvirt's. It records no memory flag: a snapshot whose recorded power state is powered on or
    suspended holds the memory (RV(snapshot.memory)); govmomi's simulator records the VM's power state whatever
    O(memory) said. vSphere allows several snapshots of one name; this module tells them apart by name, so it
    refuses to change a VM that has such duplicates."
  - "vSphere: whether the VM is still at a snapshot cannot be known - the snapshot tree names the current
    snapshot, but nothing in the VM's properties shows whether it ran or its disks were written since the
    revert - so O(state=reverted) always reverts and reports a change there (RV(vm.spec) C(at_snapshot) is
    always null)."
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.libvirt
  - virtfleet.virt.vsphere
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  vm:
    description: Name of the VM. It must exist.
    type: str
    required: true
  name:
    description:
      - Name of the snapshot - 1 to 255 characters on one line. XML metacharacters (C(<), C(&), quotes) are
        stored as they are (escaped, never interpreted). libvirt refuses a C(/) in a snapshot's name, and QEMU
        cannot revert to one whose name holds a double quote or a backslash (the revert fails after the running
        guest was stopped), so these are refused before anything is written.
    type: str
    required: true
  state:
    description:
      - V(present) - the snapshot exists; it is taken (a child of the VM's current snapshot) when it does not.
      - V(absent) - the snapshot does not exist; the snapshots below it move up to its parent, or are deleted
        too with O(children=true).
      - V(reverted) - the VM is at this snapshot - its disks (and, for a snapshot with memory, its running
        guest) as they were when it was taken, in the power state O(vm_state) says.
    type: str
    choices: [present, absent, reverted]
    default: present
  memory:
    description:
      - With O(state=present), keep the running (or paused) VM's memory and device state in the snapshot, so that
        a revert resumes the guest where it was. libvirt takes an internal snapshot of a running VM only this
        way; a stopped VM has no memory to keep.
      - Used only when the snapshot is taken.
    type: bool
    default: false
  quiesce:
    description:
      - With O(state=present), freeze the guest's filesystems through the QEMU guest agent (vSphere - VMware
        Tools) while the snapshot is taken. On libvirt it fails, before anything is written, when no guest agent
        answers; vSphere fails the snapshot task itself (no snapshot is taken). Refused for a stopped VM.
      - libvirt quiesces only external disk-only snapshots (O(location=external)) of a running VM; an internal
        snapshot keeps the running guest's memory instead, which needs no freezing.
    type: bool
    default: false
  description:
    description: With O(state=present), a description stored with the snapshot when it is taken.
    type: str
  location:
    description:
      - libvirt only. With O(state=present), where the snapshot is kept (vSphere keeps its snapshots itself).
      - V(internal) - inside the VM's qcow2 disks (every disk the snapshot covers must be qcow2).
      - V(external) - disk-only, in new qcow2 overlay files beside the disks (the disk's path with the snapshot's
        name in place of its extension) that the VM
        runs on from then on. libvirt 9.0 cannot revert such a snapshot nor delete its data.
    type: str
    choices: [internal, external]
    default: internal
  children:
    description: With O(state=absent), delete the snapshots below this one too.
    type: bool
    default: false
  vm_state:
    description:
      - With O(state=reverted), the power state the VM is left in after the revert. Default - the state the
        snapshot recorded (running or paused for a snapshot with memory, stopped for one without).
      - V(stopped) with a memory snapshot reverts the VM paused, then powers it off (its disks stay at the
        snapshot); V(running) with a snapshot without memory boots the VM from the reverted disks.
    type: str
    choices: [running, paused, stopped]
  datacenter:
    description:
      - vSphere only. Datacenter of the VM. Needed when vCenter has more than one VM named O(vm).
    type: str
  folder:
    description:
      - vSphere only. VM folder of the VM (as for M(virtfleet.virt.vm)), when O(vm) names more than one VM.
    type: str
seealso:
  - module: virtfleet.virt.vm_snapshot_info
  - module: virtfleet.virt.vm
'''

EXAMPLES = r'''
- name: Snapshot a running VM before an upgrade, memory included
  virtfleet.virt.vm_snapshot:
    vm: web1
    name: pre-upgrade
    memory: true
    description: before the 2026-12 upgrade

- name: Back to it when the upgrade failed (the guest resumes where it was)
  virtfleet.virt.vm_snapshot:
    vm: web1
    name: pre-upgrade
    state: reverted

- name: Delete it, and every snapshot taken after it, when all is well
  virtfleet.virt.vm_snapshot:
    vm: web1
    name: pre-upgrade
    state: absent
    children: true

- name: A disk-only snapshot with the guest's filesystems frozen through its agent (libvirt cannot revert it)
  virtfleet.virt.vm_snapshot:
    vm: db1
    name: backup-point
    location: external
    quiesce: true
'''

RETURN = r'''
snapshot:
  description:
    - The snapshot after the run (in check mode, as predicted; C(created) is null for a snapshot not taken
      yet). Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: Snapshot name.
      type: str
    parent:
      description: The snapshot it was taken from (null for a first snapshot).
      type: str
    description:
      description: Its description.
      type: str
    created:
      description: When it was taken, UTC, ISO 8601.
      type: str
      sample: '2026-12-05T06:12:44Z'
    vm_state:
      description: The VM's power state when it was taken (V(running), V(paused), V(stopped)).
      type: str
    memory:
      description: Whether it holds the VM's memory and device state.
      type: bool
    location:
      description: V(internal) or V(external).
      type: str
    current:
      description: Whether it is the VM's current snapshot (the parent of the next one).
      type: bool
    size:
      description: Bytes it takes, where the backend says; libvirt and vSphere (here) do not (null).
      type: int
  sample: {name: pre-upgrade, parent: null, description: before the upgrade, created: '2026-12-05T06:12:44Z',
           vm_state: running, memory: true, location: internal, current: true, size: null}
vm:
  description: The VM's snapshots after the run (in check mode, as predicted), as C(--diff) shows them.
  returned: always
  type: dict
  contains:
    name:
      description: VM name.
      type: str
    state:
      description: The VM's power state.
      type: str
    spec:
      description:
        - C(snapshots) - the VM's snapshots, parents before their children, each as RV(snapshot);
          C(current) - the name of the current snapshot (null when there is none);
          C(at_snapshot) - the snapshot the VM is provably still at (see O(state=reverted)), else null.
      type: dict
actions:
  description: What the run did (or, in check mode, would do).
  returned: always
  type: list
  elements: str
  sample: ['updated: snapshots', 'created snapshot pre-upgrade']
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _snapshot_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_snapshot import LibvirtSnapshotDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_snapshot import VSphereSnapshotDriver

VSPHERE_PLACEMENT = ('datacenter', 'folder')


def argument_spec():
    spec = _module.connection_argument_spec('libvirt', 'vsphere')
    spec.update(
        vm=dict(type='str', required=True),
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=list(_snapshot_spec.STATES)),
        memory=dict(type='bool', default=False),
        quiesce=dict(type='bool', default=False),
        description=dict(type='str'),
        location=dict(type='str', default='internal', choices=list(_snapshot_spec.LOCATIONS), backends=('libvirt',),
                      hint='vSphere keeps its snapshots itself (delta disks it reverts and deletes); remove it'),
        children=dict(type='bool', default=False),
        vm_state=dict(type='str', choices=list(_snapshot_spec.VM_STATES)),
    )
    spec.update(_module.only('vsphere', **dict((key, dict(type='str')) for key in VSPHERE_PLACEMENT)))
    return spec


def request(module, _backend):
    req = _snapshot_spec.request_from_params(module.params)
    # the resource converged is the VM's snapshot tree: always there while the VM is
    return req['vm'], req, 'present', None, _module.reconcile_options(module)


# backend -> factory(client, params) of the driver (the request validated again: request() ran first)
DRIVERS = {
    'libvirt': lambda client, params: LibvirtSnapshotDriver(client, _snapshot_spec.request_from_params(params)),
    'vsphere': lambda client, params: VSphereSnapshotDriver(
        client, _snapshot_spec.request_from_params(params), dict((key, params.get(key)) for key in VSPHERE_PLACEMENT)),
}


def main():
    _module.run(argument_spec(), _module.ensure('vm', DRIVERS, request, reboot_key=None))


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: fleet
short_description: Converge many virtual machines in one call
version_added: 0.1.0
description:
  - Converges a list of VMs on one connection in one module run. Each item takes the same options
    and follows the same rules as M(virtfleet.virt.vm) (the same driver and reconcile code run it),
    so a fleet item and a M(virtfleet.virt.vm) task with the same options behave alike.
  - One process and one connection serve the whole list, instead of one module process per loop
    item; slow steps (starting, graceful shutdowns, power-offs) run on a bounded pool of
    O(workers) at a time.
  - One bad item does not stop the others unless O(fail_fast=true); the task then fails at the end
    with every failed item's message, and RV(results) says what happened to each item.
  - Check mode and C(--diff) cover every item.
  - One run converges the VMs of one hypervisor (O(uri)). For a fleet across many hypervisors, run it once per
    hypervisor from one play host per hypervisor, so that Ansible's forks run them at once - the per-host form
    of the C(virtfleet.virt.vm_fleet) role does that, with placement over all hypervisors (see its README and
    C(docs/many-hypervisors.md)). A loop over URIs in one task runs them one after another.
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.libvirt
  - virtfleet.virt.libvirt.wait
  - virtfleet.virt.libvirt.vm_wait
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  vms:
    description:
      - The VMs, each with the options of M(virtfleet.virt.vm) (V(name) is required, V(state) defaults to
        V(present)), except the connection options, which apply to the whole list.
      - O(force), O(shutdown_timeout) and O(wait_timeout) set on an item override the module's values.
      - A name may appear once.
    type: list
    elements: dict
    required: true
  workers:
    description: How many VMs are converged at the same time.
    type: int
    default: 4
  fail_fast:
    description:
      - Stop starting new items after the first failure (items already under way finish), and refuse
        the whole list before anything changes when an item's options are invalid.
    type: bool
    default: false
  snapshot:
    description:
      - A snapshot step that runs before any item is converged - every listed VM that exists gets snapshot
        O(snapshot.name) taken (V(present)), is reverted to it (V(reverted)) or has it deleted (V(absent)),
        by the same code and rules as M(virtfleet.virt.vm_snapshot) (internal snapshots in qcow2 disks),
        O(workers) VMs at a time on the module's one connection.
      - Left out of the step - listed VMs that do not exist (a new VM has nothing to snapshot), items with
        V(state=absent) (removing the VM removes its snapshots) and items whose options are invalid.
      - A VM whose snapshot step fails is not converged; with O(fail_fast=true), no item is converged after a
        snapshot step failed.
      - Check mode predicts the snapshot step; the items are then predicted against the VMs as they are before
        it (a revert's power state is not taken into account).
      - To revert or delete without changing the VMs, list them by name only (items with nothing but C(name)).
    type: dict
    suboptions:
      name:
        description: The snapshot's name; the same on every VM.
        type: str
        required: true
      state:
        description: As O(virtfleet.virt.vm_snapshot#module:state), for every VM of the step.
        type: str
        choices: [present, reverted, absent]
        default: present
      memory:
        description:
          - With V(present), running and paused VMs are snapshotted with their memory and device state (libvirt
            takes an internal snapshot of a running VM only with it; without it, running VMs fail the step).
            Stopped VMs have no memory state; their snapshot holds their disks either way.
        type: bool
        default: false
      description:
        description: With V(present), the description of a snapshot taken now (an existing one is kept as it is).
        type: str
      vm_state:
        description: With V(reverted), as O(virtfleet.virt.vm_snapshot#module:vm_state).
        type: str
        choices: [running, paused, stopped]
seealso:
  - module: virtfleet.virt.vm
  - module: virtfleet.virt.vm_info
  - module: virtfleet.virt.vm_snapshot
'''

EXAMPLES = r'''
- name: Twenty web servers, running
  virtfleet.virt.fleet:
    workers: 8
    vms: "{{ range(1, 21) | map('string') | map('regex_replace', '^', 'web') | map('community.general.dict_kv', 'name')
             | map('combine', {'state': 'running', 'memory': '1GiB', 'tags': {'fleet': 'web'}}) | list }}"

- name: Three VMs with their own specs
  virtfleet.virt.fleet:
    vms:
      - name: db1
        state: running
        memory: 4GiB
        vcpus: 2
        disks:
          - path: /var/lib/libvirt/images/db1.qcow2
      - name: cache1
        state: running
        memory: 1GiB
        disks:
          - path: /var/lib/libvirt/images/cache1.qcow2
      - name: old1
        state: absent
        force: true
        shutdown_timeout: 30

- name: Snapshot the web servers (running ones with their memory), then give them 2 GiB
  virtfleet.virt.fleet:
    snapshot:
      name: pre-upgrade
      memory: true
    vms: "{{ groups['web'] | map('community.general.dict_kv', 'name') | map('combine', {'memory': '2GiB'}) | list }}"

- name: Revert the web servers to the snapshot, changing nothing else (items by name only)
  virtfleet.virt.fleet:
    snapshot:
      name: pre-upgrade
      state: reverted
    vms: "{{ groups['web'] | map('community.general.dict_kv', 'name') | list }}"
'''

RETURN = r'''
results:
  description: One entry per item of O(vms), in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    changed:
      description: Whether this VM changed (or would, in check mode).
      type: bool
    actions:
      description: What was done to this VM, in order.
      type: list
      elements: str
    vm:
      description: The VM after the run, as RV(virtfleet.virt.vm#module:vm); empty when absent or failed.
      type: dict
    reboot_required:
      description: As RV(virtfleet.virt.vm#module:reboot_required).
      type: bool
    address:
      description:
        - As RV(virtfleet.virt.vm#module:address) - with O(wait_for_address=true) (of the module or of the item),
          the IPv4 address this VM got, its source and the seconds waited. The waits of the VMs run in parallel
          (O(workers) at a time).
      type: dict
    failed:
      description: Whether this item failed; RV(results[].msg) says why.
      type: bool
    msg:
      description: The failure message of this item.
      type: str
    skipped:
      description: True when O(fail_fast=true) stopped this item from starting.
      type: bool
    snapshot:
      description:
        - With O(snapshot), this VM's snapshot O(snapshot.name) after the step (in check mode, as predicted), as
          RV(virtfleet.virt.vm_snapshot#module:snapshot); empty when it was deleted or the VM was left out.
          The step's actions lead RV(results[].actions).
      type: dict
summary:
  description: Counts of items - total, changed, failed, skipped.
  returned: always
  type: dict
  sample: {total: 20, changed: 2, failed: 0, skipped: 0}
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _fleet, _module, _snapshot_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._vm_options import vm_options, vm_wait_options


def item_spec():
    """Each item: the vm module's options, plus per-item wait options (no defaults: the module's apply)."""
    item = _module.argument_spec(vm_options())  # libvirt takes every option of a VM
    for key, option in _module.argument_spec(dict(_module.wait_argument_spec(), **vm_wait_options())).items():
        item[key] = dict(option, default=None)
    return item


def snapshot_spec():
    return dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=list(_snapshot_spec.STATES)),
        memory=dict(type='bool', default=False),
        description=dict(type='str'),
        vm_state=dict(type='str', choices=list(_snapshot_spec.VM_STATES)),
    )


def argument_spec():
    spec = _module.connection_argument_spec()
    spec.update(_module.wait_argument_spec())
    spec.update(vm_wait_options())
    spec.update(
        # items are validated one by one (see _requests), so one bad item fails alone
        vms=dict(type='list', elements='dict', required=True),
        workers=dict(type='int', default=4),
        fail_fast=dict(type='bool', default=False),
        snapshot=dict(type='dict', options=snapshot_spec()),
    )
    return spec


def main():
    # not _module.run: the items are validated before the connection opens, one by one
    module = _module.new_module(argument_spec())
    _fleet.run(module, item_spec())


if __name__ == '__main__':
    main()

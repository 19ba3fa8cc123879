#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: vm_snapshot_info
short_description: List the snapshot trees of VMs
version_added: 0.3.0
description:
  - Reads the snapshots of one VM (O(vm)) or of every VM that matches the filters of
    M(virtfleet.virt.vm_info) (O(states), O(tags)).
  - Each snapshot is returned as RV(virtfleet.virt.vm_snapshot#module:snapshot) describes it - name, parent,
    creation time, the VM's power state then, with memory or not, current or not, size where the backend
    says - parents before their children.
  - On vSphere (when O(hostname) is set) the tree is vSphere's (one query per VM); see
    M(virtfleet.virt.vm_snapshot) for how its fields read there (RV(vms[].at_snapshot) is always null).
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.libvirt
  - virtfleet.virt.vsphere
attributes:
  check_mode:
    support: full
    details: Reads only.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  vm:
    description: Only the VM of this name (an empty list when there is none).
    type: str
  states:
    description: Only VMs in one of these power states.
    type: list
    elements: str
    choices: [running, paused, stopped, shutting_down, crashed, pmsuspended]
  tags:
    description: Only VMs that carry all of these tags with these values.
    type: dict
seealso:
  - module: virtfleet.virt.vm_snapshot
  - module: virtfleet.virt.vm_info
'''

EXAMPLES = r'''
- name: Snapshots of the shop fleet
  virtfleet.virt.vm_snapshot_info:
    tags:
      fleet: shop
  register: found

- name: The VMs of the fleet that have snapshots
  ansible.builtin.debug:
    msg: "{{ found.vms | selectattr('snapshots') | map(attribute='name') | list }}"
'''

RETURN = r'''
vms:
  description: The matching VMs, sorted by name, with their snapshots.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    state:
      description: The VM's power state.
      type: str
    current:
      description: Name of the VM's current snapshot (null when it has none).
      type: str
    at_snapshot:
      description:
        - The snapshot the VM is provably still at (reverted to it, nothing run since; see
          O(virtfleet.virt.vm_snapshot#module:state=reverted)), else null.
      type: str
    snapshots:
      description: Its snapshots, parents before their children, each as RV(virtfleet.virt.vm_snapshot#module:snapshot).
      type: list
      elements: dict
  sample: [{name: web1, state: running, current: pre-upgrade, at_snapshot: null,
            snapshots: [{name: pre-upgrade, parent: null, description: null, created: '2026-12-05T06:12:44Z',
                         vm_state: running, memory: true, location: internal, current: true, size: null}]}]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vm_backends
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_snapshot import LibvirtSnapshotDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_snapshot import VSphereSnapshotDriver

# backend -> factory(client) of the snapshot driver
SNAPSHOT_DRIVERS = {'libvirt': LibvirtSnapshotDriver, 'vsphere': VSphereSnapshotDriver}


def argument_spec():
    spec = _module.connection_argument_spec('libvirt', 'vsphere')
    spec.update(
        vm=dict(type='str'),
        states=dict(type='list', elements='str',
                    choices=['running', 'paused', 'stopped', 'shutting_down', 'crashed', 'pmsuspended']),
        tags=dict(type='dict'),
    )
    return spec


def list_snapshots(module, session):
    params = module.params
    vms = _module.backend_driver(vm_backends.DRIVERS, session, params)
    snapshots = _module.backend_driver(dict((key, lambda client, _params, factory=factory: factory(client))
                                            for key, factory in SNAPSHOT_DRIVERS.items()), session, params)
    actuals = _module.found(vms, None if params['vm'] is None else _vm_spec.validate_name(params['vm'], 'vm'))
    wanted_tags = dict((k, '' if v is None else str(v)) for k, v in (params['tags'] or {}).items())
    found = []
    for actual in actuals:
        if params['states'] and actual['state'] not in params['states']:
            continue
        if any(actual['spec']['tags'].get(k) != v for k, v in wanted_tags.items()):
            continue
        tree = snapshots.read(actual['name'])
        if tree is None:  # removed meanwhile
            continue
        view = snapshots.describe(tree)
        found.append(dict(name=view['name'], state=view['state'], current=view['spec']['current'],
                          at_snapshot=view['spec']['at_snapshot'], snapshots=view['spec']['snapshots']))
    module.exit_json(changed=False, vms=sorted(found, key=lambda vm: vm['name']))


def main():
    _module.run(argument_spec(), list_snapshots)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: vm_info
short_description: List virtual machines in the same shape as virtfleet.virt.vm returns them
version_added: 0.1.0
description:
  - Reads VMs from the hypervisor, optionally filtered by name, power state, tags and whether they are templates.
  - Each VM is returned exactly as RV(virtfleet.virt.vm#module:vm) describes it.
  - On VMware vSphere (O(hostname) set, see O(backend)) one PropertyCollector query reads every VM with the
    properties it needs, however many VMs there are; templates are listed as O(template) says.
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
  name:
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
  template:
    description:
      - V(true) - only templates (see O(virtfleet.virt.vm#module:template)); V(false) - only VMs that are not templates.
      - Left out - VMs that are not templates, unless O(name) names a template.
    type: bool
seealso:
  - module: virtfleet.virt.vm
'''

EXAMPLES = r'''
- name: Running VMs of the shop fleet
  virtfleet.virt.vm_info:
    states: [running]
    tags:
      fleet: shop
  register: shop

- name: Their names
  ansible.builtin.debug:
    msg: "{{ shop.vms | map(attribute='name') | list }}"
'''

RETURN = r'''
vms:
  description: The matching VMs, sorted by name, each as RV(virtfleet.virt.vm#module:vm).
  returned: always
  type: list
  elements: dict
  sample: [{name: web1, state: running, uuid: 8f1d6e0c-1c70-4c5e-9e1b-2d8e6a3f0c11,
            spec: {memory: 2048, vcpus: 2, tags: {fleet: shop}}, addresses: [], pending_restart: []}]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vm_backends


def argument_spec():
    spec = _module.connection_argument_spec('libvirt', 'vsphere')
    spec.update(
        name=dict(type='str'),
        states=dict(type='list', elements='str',
                    choices=['running', 'paused', 'stopped', 'shutting_down', 'crashed', 'pmsuspended']),
        tags=dict(type='dict'),
        template=dict(type='bool'),
    )
    return spec


def list_vms(module, session):
    params = module.params
    driver = _module.backend_driver(vm_backends.DRIVERS, session, params)
    actuals = _module.found(driver, None if params['name'] is None else _vm_spec.validate_name(params['name']))
    wanted_tags = dict((k, '' if v is None else str(v)) for k, v in (params['tags'] or {}).items())
    vms = []
    for actual in actuals:
        if params['states'] and actual['state'] not in params['states']:
            continue
        if any(actual['spec']['tags'].get(k) != v for k, v in wanted_tags.items()):
            continue
        template = params['template']
        if template is None and params['name'] is None:
            template = False
        if template is not None and bool(actual['spec'].get('template')) != template:
            continue
        vms.append(driver.describe(actual))
    module.exit_json(changed=False, vms=sorted(vms, key=lambda vm: vm['name']))


def main():
    _module.run(argument_spec(), list_vms)


if __name__ == '__main__':
    main()

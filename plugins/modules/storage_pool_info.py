#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_pool_info
short_description: List libvirt storage pools in the same shape as virtfleet.virt.storage_pool returns them
version_added: 0.2.0
description:
  - Reads storage pools, optionally filtered by name, type and state.
  - Each pool is returned exactly as RV(virtfleet.virt.storage_pool#module:pool) describes it.
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.libvirt
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
    description: Only the pool of this name (an empty list when there is none).
    type: str
  types:
    description: Only pools of these types.
    type: list
    elements: str
    choices: [dir, fs, netfs, logical, disk, iscsi, rbd]
  states:
    description: Only pools in one of these states.
    type: list
    elements: str
    choices: [active, inactive]
seealso:
  - module: virtfleet.virt.storage_pool
'''

EXAMPLES = r'''
- name: Active directory pools
  virtfleet.virt.storage_pool_info:
    types: [dir]
    states: [active]
  register: found

- name: Their free space
  ansible.builtin.debug:
    msg: "{{ found.pools | items2dict(key_name='name', value_name='available') }}"
'''

RETURN = r'''
pools:
  description: The matching pools, sorted by name, each as RV(virtfleet.virt.storage_pool#module:pool).
  returned: always
  type: list
  elements: dict
  sample: [{name: images, state: active, spec: {type: dir, path: /srv/images, source: {}, autostart: true},
            volumes: [web1.qcow2], capacity: 107374182400, allocation: 1073741824, available: 106300440576,
            pending_restart: false, uuid: 0b3c3a8e-6a34-4a39-9a2f-7c0f4e1a2b3c}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _storage_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_pool import LibvirtPoolDriver


def main():
    spec = _module.connection_argument_spec()
    spec.update(
        name=dict(type='str'),
        types=dict(type='list', elements='str', choices=sorted(_storage_spec.POOL_TYPES)),
        states=dict(type='list', elements='str', choices=list(_storage_spec.POOL_STATES)),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    with _module.Session(module) as session:
        driver = LibvirtPoolDriver(session.client)
        if params['name'] is not None:
            found = driver.read(params['name'])
            actuals = [found] if found else []
        else:
            actuals = driver.list()
        pools = [driver.describe(actual) for actual in actuals
                 if (not params['types'] or actual['spec']['type'] in params['types'])
                 and (not params['states'] or actual['state'] in params['states'])]
        module.exit_json(changed=False, pools=sorted(pools, key=lambda pool: pool['name']))


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: network_info
short_description: List libvirt virtual networks with their spec and DHCP leases
version_added: 0.2.0
description:
  - Returns libvirt virtual networks in the shape M(virtfleet.virt.network) returns, with the current
    DHCP leases of active networks.
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
    description: Only this network. Left out, every network.
    type: str
  states:
    description: Only networks in these states.
    type: list
    elements: str
    choices: [active, inactive]
seealso:
  - module: virtfleet.virt.network
'''

EXAMPLES = r'''
- name: Leases of the shop network
  virtfleet.virt.network_info:
    name: shop
  register: shop

- name: Addresses handed out
  ansible.builtin.debug:
    msg: "{{ shop.networks[0].dhcp_leases | map(attribute='ip') | list }}"
'''

RETURN = r'''
networks:
  description: The matching networks, sorted by name, each as RV(virtfleet.virt.network#module:network).
  returned: always
  type: list
  elements: dict
  sample: [{name: shop, state: active, uuid: 3e3fce45-4f53-4fa7-bb32-11f34168b82b, persistent: true,
            bridge: virbr-shop, spec: {mode: nat, autostart: true}, pending_restart: [],
            dhcp_leases: [{mac: '52:54:00:12:34:56', ip: 192.168.150.120, prefix: 24, hostname: web1, type: ipv4,
                           client_id: '01:52:54:00:12:34:56', expiry_time: 1767225600, interface: virbr-shop}]}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_network import LibvirtNetworkDriver


def main():
    spec = _module.connection_argument_spec()
    spec.update(
        name=dict(type='str'),
        states=dict(type='list', elements='str', choices=['active', 'inactive']),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    with _module.Session(module) as session:
        driver = LibvirtNetworkDriver(session.client)
        if params['name'] is not None:
            found = driver.read(_vm_spec.validate_name(params['name']))
            actuals = [found] if found else []
        else:
            actuals = driver.list()
        networks = [driver.describe(actual) for actual in actuals
                    if not params['states'] or actual['state'] in params['states']]
        module.exit_json(changed=False, networks=sorted(networks, key=lambda net: net['name']))


if __name__ == '__main__':
    main()

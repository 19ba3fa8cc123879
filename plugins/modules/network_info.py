#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: network_info
short_description: List libvirt virtual networks, or vSphere port groups, with their spec
version_added: 0.2.0
description:
  - Returns libvirt virtual networks in the shape M(virtfleet.virt.network) returns, with the current
    DHCP leases of active networks.
  - On VMware vSphere, the standard vSwitch port groups of the ESXi hosts that O(datacenter), O(cluster)
    and O(host) choose (default - every host), one entry per port group name with the hosts that have it,
    and the distributed port groups of those hosts' datacenters (C(type=distributed), listed only - the
    M(virtfleet.virt.network) module manages standard port groups). All read in one PropertyCollector query.
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
    description: Only this network. Left out, every network.
    type: str
  states:
    description: libvirt only. Only networks in these states.
    type: list
    elements: str
    choices: [active, inactive]
  datacenter:
    description: vSphere only. Only port groups of hosts in (and distributed port groups of) this datacenter.
    type: str
  cluster:
    description: vSphere only. Only port groups of the hosts of this cluster (and distributed port groups of its datacenter).
    type: str
  host:
    description: vSphere only. Only port groups of this ESXi host (and distributed port groups of its datacenter).
    type: str
    aliases: [esxi_hostname]
seealso:
  - module: virtfleet.virt.network
'''

EXAMPLES = r'''
- name: Leases of the shop network
  virtfleet.virt.network_info:
    name: shop
  register: shop

- name: Port groups of a vSphere cluster, standard and distributed
  virtfleet.virt.network_info:
    hostname: vcenter.example.com
    username: administrator@vsphere.local
    password: "{{ vcenter_password }}"
    cluster: prod
  register: pgs

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
# On vSphere an entry is {name, state: present, backend: vsphere, type: standard|distributed, datacenter, spec,
# portgroups}; see RV(virtfleet.virt.network#module:network).

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_network import LibvirtNetworkDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_network import VSpherePortgroupDriver


def argument_spec():
    spec = _module.connection_argument_spec('libvirt', 'vsphere')
    spec['name'] = dict(type='str')
    spec.update(_module.only('libvirt', states=dict(type='list', elements='str', choices=['active', 'inactive'])))
    spec.update(_module.only('vsphere', datacenter=dict(type='str'), cluster=dict(type='str'),
                             host=dict(type='str', aliases=['esxi_hostname'])))
    return spec


def _libvirt(session, params):
    driver = LibvirtNetworkDriver(session.client)
    actuals = _module.found(driver, None if params['name'] is None else _vm_spec.validate_name(params['name']))
    return [driver.describe(actual) for actual in actuals
            if not params['states'] or actual['state'] in params['states']]


def _vsphere(session, params):
    return VSpherePortgroupDriver(session.client, params, listing=True).list(params['name'])


# backend -> lister of the networks (describe views) the options select
BACKENDS = {'libvirt': _libvirt, 'vsphere': _vsphere}


def list_networks(module, session):
    networks = BACKENDS[session.backend](session, module.params)
    module.exit_json(changed=False, networks=sorted(networks, key=lambda net: (net['name'], net.get('type', ''))))


def main():
    _module.run(argument_spec(), list_networks)


if __name__ == '__main__':
    main()

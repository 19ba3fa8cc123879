#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: network
short_description: Manage libvirt virtual networks, or vSphere standard port groups, declaratively
version_added: 0.2.0
description:
  - On VMware vSphere (see O(backend)), manages a standard vSwitch port group - O(name) with O(vlan) on
    O(vswitch) - on the ESXi hosts that O(host) or O(cluster) choose (HostNetworkSystem); see the
    vSphere notes below. The rest of this description is about libvirt networks.
  - Defines, starts, stops and removes a libvirt virtual network from a structured spec - forward mode,
    bridge, MTU, DNS domain, IPv4 and IPv6 addresses with a DHCP range, static DHCP hosts and DNS host entries.
  - Idempotent - options left out keep the network's current value; addresses are compared normalized and
    host lists regardless of order. A run with nothing to change writes nothing.
  - Static DHCP hosts and DNS host entries are changed in place (libvirt C(virNetworkUpdate)), on the running
    network and in its persistent definition, without restarting it (dnsmasq keeps running).
  - Any other change rewrites the persistent definition. An active network picks it up only when restarted,
    which happens only with O(restart=true); otherwise the result says RV(restart_required=true).
    Restarting briefly cuts the network off; RV(affected_vms) lists the running VMs attached to it.
  - Whenever the module starts a network (also after a restart), it plugs the interfaces of running VMs on
    it back into its bridge, as libvirt does only when libvirtd restarts. On a remote hypervisor it cannot,
    and warns instead.
  - Check mode predicts RV(ignore:changed) and RV(restart_required) truthfully and changes nothing;
    C(--diff) shows the network's state and spec before and after.
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
  name:
    description:
      - Name of the network. 1 to 64 characters - letters, digits and C(_.+-), starting with a letter or digit.
      - On vSphere, the port group name (any text, not starting or ending with a space); it must not be the
        name of a distributed port group of the hosts' datacenter.
    type: str
    required: true
  state:
    description:
      - On vSphere only V(present) (the port group is on every chosen host, with O(vlan)) and V(absent)
        (removed from every chosen host).
      - V(present) - the network is defined; a new network is left inactive and an existing one keeps its state.
      - V(active) (or its alias V(started)) - defined and running (its bridge and dnsmasq are up).
      - V(inactive) - defined and stopped.
      - V(absent) - stopped and undefined.
      - O(autostart) applies with every state but V(absent).
    type: str
    choices: [present, active, started, inactive, absent]
    default: present
  autostart:
    description: libvirt only. Start the network when libvirtd starts. Honoured together with any O(state).
    type: bool
  mode:
    description:
      - libvirt only. Forward mode. V(nat) - guests reach outside through NAT; V(route) - routed without NAT;
        V(isolated) - no forwarding (guests reach only each other and the host); V(open) - no firewall rules at all;
        V(bridge) - attach to an existing host bridge named by O(bridge) (no addresses, DHCP or DNS).
      - Default for a new network - V(nat). V(nat), V(route) and V(open) need O(ipv4) or O(ipv6).
    type: str
    choices: [nat, route, isolated, bridge, open]
  bridge:
    description:
      - libvirt only. Bridge device name (at most 15 characters). For mode V(bridge), the existing host bridge to attach
        to; otherwise the bridge libvirt creates, which must not exist yet. Left out for a new network, libvirt picks a
        free C(virbrN).
    type: str
  mtu:
    description: libvirt only. MTU of the bridge. V(0) removes the setting (libvirt's default applies).
    type: int
  domain:
    description: libvirt only. DNS domain of the network's DHCP clients. An empty string removes it.
    type: str
  ipv4:
    description:
      - libvirt only. The network's IPv4 address (the host's address on the bridge) and subnet, with an optional DHCP
        range. When given, it is complete - a DHCP range left out is removed. An empty dict V({}) removes IPv4.
      - The subnet must not overlap that of another active network.
    type: dict
    suboptions:
      address:
        description: Address of the host on the network, such as V(192.168.100.1).
        type: str
      prefix:
        description: Prefix length of the subnet. Default V(24).
        type: int
      dhcp_range:
        description: Addresses dnsmasq hands out, inside the subnet and not including O(ipv4.address).
        type: dict
        suboptions:
          start:
            description: First address of the range.
            type: str
            required: true
          end:
            description: Last address of the range.
            type: str
            required: true
  ipv6:
    description:
      - libvirt only. The network's IPv6 address and subnet, with an optional DHCPv6 range; as O(ipv4). V({}) removes
        IPv6.
    type: dict
    suboptions:
      address:
        description: Address of the host on the network, such as V(fd00:100::1).
        type: str
      prefix:
        description: Prefix length of the subnet. Default V(64).
        type: int
      dhcp_range:
        description: Addresses dnsmasq hands out, inside the subnet.
        type: dict
        suboptions:
          start:
            description: First address of the range.
            type: str
            required: true
          end:
            description: Last address of the range.
            type: str
            required: true
  dhcp_hosts:
    description:
      - libvirt only. Static DHCP (IPv4) leases. When given, the list is complete - hosts not listed are removed; V([])
        removes all. Left out, they are not touched. Changed without restarting the network.
      - Each O(dhcp_hosts[].ip) lies in the O(ipv4) subnet; MACs, addresses and names are unique.
    type: list
    elements: dict
    suboptions:
      mac:
        description: MAC address of the client, such as V(52:54:00:12:34:56).
        type: str
        required: true
      ip:
        description: IPv4 address it gets.
        type: str
        required: true
      name:
        description: Host name it gets (also resolvable through the network's DNS).
        type: str
  dns_hosts:
    description:
      - libvirt only. DNS host entries the network's dnsmasq answers. When given, the list is complete; V([]) removes
        all. Left out, they are not touched. Changed without restarting the network.
    type: list
    elements: dict
    suboptions:
      ip:
        description: IPv4 or IPv6 address (one entry per address).
        type: str
        required: true
      hostnames:
        description: Names that resolve to O(dns_hosts[].ip).
        type: list
        elements: str
        required: true
  restart:
    description:
      - When a change needs the active network restarted to take effect, restart it (stop and start) instead of
        returning RV(restart_required=true). Running VMs attached to it (RV(affected_vms)) lose connectivity
        for a moment.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for the network to be reported active or inactive after starting or stopping it.
    type: int
    default: 60
  host:
    description:
      - vSphere only. The ESXi host whose standard vSwitch gets (or loses) the port group, as vCenter names it.
      - Without O(host) and O(cluster), the connection must manage exactly one host (an ESXi host itself).
    type: str
    aliases: [esxi_hostname]
  cluster:
    description: vSphere only. Manage the port group on every host of this cluster (with O(host), only on that one).
    type: str
  datacenter:
    description: vSphere only. Look for O(cluster) and O(host) in this datacenter only.
    type: str
  vlan:
    description:
      - vSphere only. VLAN ID of the port group - V(0) for none, V(1) to V(4094), V(4095) for all VLANs
        (tagging in the guest). Default for a new port group - V(0); left out, an existing one keeps its VLAN.
      - Changed in place (HostNetworkSystem C(UpdatePortGroup)); VMs on the port group stay connected.
    type: int
    aliases: [vlan_id]
  vswitch:
    description:
      - vSphere only. Standard vSwitch of a new port group. Default V(vSwitch0). It must exist on every chosen host.
      - An existing port group is not moved to another vSwitch (refused; remove it first).
    type: str
    aliases: [switch]
notes:
  - On vSphere, one PropertyCollector query reads the hosts, their vSwitches and port groups, and all options are
    checked against it before the first change. RV(restart_required) is always V(false) (changes take effect at
    once); RV(affected_vms) lists the VMs on networks of that name in the hosts' datacenter.
seealso:
  - module: virtfleet.virt.network_info
  - module: virtfleet.virt.vm
'''

EXAMPLES = r'''
- name: A NAT network with DHCP, running and started at boot
  virtfleet.virt.network:
    name: shop
    state: active
    autostart: true
    mode: nat
    bridge: virbr-shop
    domain: shop.internal
    ipv4:
      address: 192.168.150.1
      prefix: 24
      dhcp_range:
        start: 192.168.150.100
        end: 192.168.150.199
    dhcp_hosts:
      - mac: "52:54:00:00:15:01"
        ip: 192.168.150.10
        name: db1
    dns_hosts:
      - ip: 192.168.150.5
        hostnames: [repo, repo.shop.internal]

- name: An isolated network for a lab (no forwarding, no DHCP)
  virtfleet.virt.network:
    name: lab
    state: active
    mode: isolated
    ipv4:
      address: 10.77.0.1
      prefix: 24

- name: Use an existing host bridge
  virtfleet.virt.network:
    name: lan
    state: active
    mode: bridge
    bridge: br0

- name: Change the MTU and restart the network if it runs
  virtfleet.virt.network:
    name: shop
    mtu: 1400
    restart: true
  register: shop

- name: A VLAN 120 port group on every host of a vSphere cluster
  virtfleet.virt.network:
    hostname: vcenter.example.com
    username: administrator@vsphere.local
    password: "{{ vcenter_password }}"
    cluster: prod
    name: app-vlan120
    vlan: 120
    vswitch: vSwitch0

- name: VMs that were briefly cut off
  ansible.builtin.debug:
    var: shop.affected_vms
'''

RETURN = r'''
network:
  description: The network after the run (in check mode, as predicted). Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: Network name.
      type: str
      sample: shop
    uuid:
      description: libvirt UUID.
      type: str
      sample: 3e3fce45-4f53-4fa7-bb32-11f34168b82b
    state:
      description: V(active) or V(inactive).
      type: str
      sample: active
    persistent:
      description: Whether the network has a persistent definition (false for a transient one).
      type: bool
      sample: true
    bridge:
      description: Bridge device of the network (of the running network when active).
      type: str
      sample: virbr-shop
    backend:
      description: V(vsphere) (libvirt networks do not return it).
      type: str
      returned: on vSphere
    type:
      description: V(standard) - a vSwitch port group; V(distributed) - a distributed port group (network_info only).
      type: str
      returned: on vSphere
    datacenter:
      description: Datacenter of the hosts.
      type: str
      returned: on vSphere
    portgroups:
      description: The port group on each host that has it - host, vswitch, vlan.
      type: list
      elements: dict
      returned: on vSphere
      sample: [{host: esx1, vswitch: vSwitch0, vlan: 120}]
    spec:
      description:
        - The normalized persistent spec, in the shape of this module's options (with O(autostart)).
        - On vSphere C({vlan, vswitch, hosts}) (vlan and vswitch null when the hosts differ); for a distributed
          port group C({vlan, switch, ports}), vlan a number or a list of trunk ranges C({start, end}).
      type: dict
      sample: {mode: nat, bridge: virbr-shop, mtu: null, domain: shop.internal, autostart: true,
               ipv4: {address: 192.168.150.1, prefix: 24, dhcp_range: {start: 192.168.150.100, end: 192.168.150.199}},
               ipv6: null, dhcp_hosts: [{mac: '52:54:00:00:15:01', ip: 192.168.150.10, name: db1}],
               dns_hosts: [{ip: 192.168.150.5, hostnames: [repo, repo.shop.internal]}]}
    pending_restart:
      description: Spec fields whose new value the running network has not picked up yet (see O(restart)).
      type: list
      elements: str
      sample: [mtu]
    dhcp_leases:
      description: Current DHCP leases of an active network (empty when inactive).
      type: list
      elements: dict
      sample: [{mac: '52:54:00:12:34:56', ip: 192.168.150.120, prefix: 24, hostname: web1, type: ipv4,
                client_id: '01:52:54:00:12:34:56', expiry_time: 1767225600, interface: virbr-shop}]
restart_required:
  description: True when the active network needs a restart to pick up its persistent definition (see O(restart)).
  returned: always
  type: bool
  sample: false
affected_vms:
  description:
    - Names of the running VMs attached to the network (at the start of the run) - those a restart or removal
      of the network cuts off.
  returned: always
  type: list
  elements: str
  sample: [web1, db1]
actions:
  description: What the run did (or, in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: [created, start]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _network_spec, _reconcile, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_network
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_network import LibvirtNetworkDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def argument_spec():
    dhcp_range = dict(type='dict', options=dict(start=dict(type='str', required=True),
                                                end=dict(type='str', required=True)))
    spec = _module.connection_argument_spec('libvirt', 'vsphere')
    spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=list(_network_spec.STATES)),
        **_module.only(
            'libvirt',
            autostart=dict(type='bool'),
            mode=dict(type='str', choices=list(_network_spec.MODES)),
            bridge=dict(type='str'),
            mtu=dict(type='int'),
            domain=dict(type='str'),
            ipv4=dict(type='dict', options=dict(address=dict(type='str'), prefix=dict(type='int'),
                                                dhcp_range=dhcp_range)),
            ipv6=dict(type='dict', options=dict(address=dict(type='str'), prefix=dict(type='int'),
                                                dhcp_range=dhcp_range)),
            dhcp_hosts=dict(type='list', elements='dict', options=dict(
                mac=dict(type='str', required=True), ip=dict(type='str', required=True), name=dict(type='str'))),
            dns_hosts=dict(type='list', elements='dict', options=dict(
                ip=dict(type='str', required=True), hostnames=dict(type='list', elements='str', required=True)))),
        restart=dict(type='bool', default=False),  # libvirt only too, refused on vSphere with its own reason
        wait_timeout=dict(type='int', default=60),
        **_module.only('vsphere', datacenter=dict(type='str'), cluster=dict(type='str'),
                       host=dict(type='str', aliases=['esxi_hostname']), vlan=dict(type='int', aliases=['vlan_id']),
                       vswitch=dict(type='str', aliases=['switch'])),
    )
    return spec


def _libvirt(module):
    """``(name, partial, state, target, opts)`` of a libvirt network."""
    params = module.params
    name = _vm_spec.validate_name(params['name'])
    partial = _network_spec.partial_from_params(params) if params['state'] != 'absent' else {}
    target = _network_spec.target_state(params['state'])
    return name, partial, params['state'], target, _module.reconcile_options(
        module, restart_if_required=params['restart'])


def _vsphere(module):
    """``(name, partial, state, target, opts)`` of a standard port group on ESXi hosts."""
    params = module.params
    if params['state'] not in ('present', 'absent'):
        raise SpecError('state', 'a vSphere port group is present or absent; %s applies to libvirt networks only'
                        % params['state'])
    if params['restart']:
        raise SpecError('restart', 'applies to the libvirt backend only (port group changes take effect at once); '
                        'remove it')
    name = params['name']
    if not name or name != name.strip():
        raise SpecError('name', '%r is not a valid port group name: it must not be empty or start or end with '
                                'a space' % (name,))
    partial = dict(vsphere_network.validate_partial(params), name=name) if params['state'] != 'absent' else {}
    return name, partial, params['state'], None, _module.reconcile_options(module)


# backend -> factory(client, params) of the driver
DRIVERS = {
    'libvirt': lambda client, params: LibvirtNetworkDriver(
        client, activating=_network_spec.target_state(params['state']) == 'active'),
    'vsphere': vsphere_network.VSpherePortgroupDriver,
}


def ensure(module, session):
    name, partial, state, target, opts = (_libvirt if session.backend == 'libvirt' else _vsphere)(module)
    driver = _module.backend_driver(DRIVERS, session, module.params)
    affected = driver.attached_vms(name)
    outcome, before, after = _reconcile.ensure(driver, name, partial, state, target, opts)
    outcome.extra.update(restart_required=bool(outcome.reboot_required), affected_vms=affected)
    _module.ensure_result(module, 'network', outcome, before, after, reboot_key=None)


def main():
    _module.run(argument_spec(), ensure)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_network
short_description: Manage Podman networks from a declared spec
version_added: 0.3.0
description:
  - Creates, recreates and removes a Podman network so that it matches the options given, for containers to join
    (the O(virtfleet.virt.container#module:networks) option of virtfleet.virt.container).
  - Idempotent on the normalized state read back from C(podman network inspect) - only what the options set is
    compared, so the subnet, gateway and lease range Podman picked by itself are never a change, and a run with
    nothing to change writes nothing.
  - Options left out are not changed. O(subnets), O(labels) and O(options) are complete - what is not listed is
    removed.
  - Podman cannot change any of these settings in place (C(podman network update), Podman 5.0 and later, changes
    only the DNS servers, which this module does not manage), so every change recreates the network
    (RV(recreated), RV(recreate_reasons)) with the same name. The containers on it are disconnected first and
    connected again to the new network - they keep running and get new addresses (aliases and static
    addresses given to C(podman network connect) by hand are not carried over). A running container on the
    network blocks the recreation unless O(force); stopped ones never do. RV(affected_containers) names them.
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.podman
attributes:
  check_mode:
    support: full
    details: Predicts C(changed), RV(recreated) and RV(affected_containers), and refuses what the run would
      refuse; changes nothing.
  diff_mode:
    support: full
    details: Before and after of the normalized spec.
  platform:
    platforms: posix
options:
  name:
    description:
      - Network name, unique on the host. C(podman) (Podman's default network) and the network modes
        (C(host), C(none), C(bridge), ...) are refused.
    type: str
    required: true
  state:
    description:
      - V(present) - the network exists with this spec.
      - V(absent) - it is removed. Containers on it block the removal unless O(force), which disconnects them
        first (they are kept).
    type: str
    choices: [present, absent]
    default: present
  driver:
    description:
      - V(bridge) (a bridge on the host, with NAT unless O(internal)) or V(macvlan) (containers appear on the
        host's network through the interface given as C(options.parent); it needs O(subnets)).
      - Left out, a new network is a V(bridge).
    type: str
    choices: [bridge, macvlan]
  subnets:
    description:
      - The network's subnets, IPv4 and IPv6 (at most one of each is usual), as C(podman network create --subnet)
        takes them. A network with an IPv6 subnet has IPv6 enabled.
      - Left out, a new network gets a free IPv4 subnet Podman picks (returned in C(spec.subnets)), and an
        existing one keeps its subnets.
      - A subnet that overlaps a subnet of another Podman network is refused.
    type: list
    elements: dict
    suboptions:
      subnet:
        description: The subnet in CIDR form, such as V(10.89.5.0/24) or V(fd00:5::/64), without host bits.
        type: str
        required: true
      gateway:
        description:
          - The gateway address, inside the subnet. Left out, Podman's choice (the first address) is kept.
        type: str
      ip_range:
        description:
          - The part of the subnet containers get addresses from, in CIDR form (such as V(10.89.5.128/25)); Podman
            leases from its second address to its last. Left out, the whole subnet (or what Podman has) is kept.
        type: str
  internal:
    description:
      - Restrict the network to the host and the containers on it (no route out, no NAT). Not for V(macvlan).
      - Left out, a new network is not internal.
    type: bool
  dns_enabled:
    description:
      - Whether containers on the network resolve each other by name (Podman's DNS server on the network);
        V(false) is C(--disable-dns).
      - Left out, a new network has DNS enabled.
    type: bool
  labels:
    description: Network labels.
    type: dict
  options:
    description:
      - Driver options (C(podman network create -o KEY=VALUE)), such as C(mtu), C(vlan), C(isolate) for a
        bridge or C(parent) and C(mode) for a macvlan. Values are strings.
    type: dict
  force:
    description:
      - Recreate the network (on a change) although running containers use it, disconnecting them and
        connecting them again to the new network; remove it (O(state=absent)) although containers use it,
        disconnecting them. The containers themselves are never removed or stopped.
    type: bool
    default: false
notes:
  - A container on a network that is recreated keeps running, but its connection to the network is new - a new
    address, and a short time without it.
seealso:
  - module: virtfleet.virt.container
  - module: virtfleet.virt.container_volume
  - module: virtfleet.virt.container_info
'''

EXAMPLES = r'''
- name: A dual-stack network for the shop's containers
  virtfleet.virt.container_network:
    name: shop
    subnets:
      - subnet: 10.89.20.0/24
        gateway: 10.89.20.1
        ip_range: 10.89.20.128/25
      - subnet: fd00:89:20::/64
    labels:
      fleet: shop

- name: A network for the database tier only, without a way out
  virtfleet.virt.container_network:
    name: shop-db
    internal: true

- name: Containers join it by name
  virtfleet.virt.container:
    name: db1
    image: localhost/db:15
    networks: [shop-db]
    state: started

- name: Change the MTU although containers run on it (they are connected again)
  virtfleet.virt.container_network:
    name: shop
    options:
      mtu: "1400"
    force: true
  register: shop

- name: Which containers were reconnected
  ansible.builtin.debug:
    var: shop.affected_containers

- name: Remove it
  virtfleet.virt.container_network:
    name: shop-db
    state: absent
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
    id:
      description: Network ID. A recreated network has a new one.
      type: str
      sample: 77ea9baf1bc9afae5ee7790038f175b9ee10a2881ac91543e0c164fe864d1581
    created:
      description: When Podman created the network.
      type: str
      sample: '2026-12-05T13:13:34.447834485Z'
    interface:
      description: The host interface of the network (a bridge's name, a macvlan's parent).
      type: str
      sample: podman1
    state:
      description: V(present).
      type: str
      sample: present
    spec:
      description:
        - The normalized spec, in the shape of this module's options, with what Podman picked filled in.
          An ip_range Podman holds as a lease range that is no CIDR shows as C(FIRST-LAST).
      type: dict
      sample: {driver: bridge, subnets: [{subnet: 10.89.20.0/24, gateway: 10.89.20.1, ip_range: 10.89.20.128/25}],
               internal: false, dns_enabled: true, labels: {fleet: shop}, options: {}}
recreated:
  description: True when the run recreated (or, in check mode, would recreate) the network.
  returned: unless O(state=absent)
  type: bool
  sample: false
recreate_reasons:
  description: The spec fields whose change forced the recreation.
  returned: unless O(state=absent)
  type: list
  elements: str
  sample: [options]
affected_containers:
  description:
    - The containers on the network that the run disconnected (and, on a recreation, connected again) - or, in
      check mode, would.
  returned: always
  type: list
  elements: str
  sample: [web1, db1]
actions:
  description: What the run did (or, in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: [created]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _podman_objects_spec, _reconcile
from ansible_collections.virtfleet.virt.plugins.module_utils._clients import podman
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_network import PodmanNetworkDriver


def argument_spec():
    spec = podman.argument_spec()
    spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        driver=dict(type='str', choices=list(_podman_objects_spec.NETWORK_DRIVERS)),
        subnets=dict(type='list', elements='dict', options=dict(
            subnet=dict(type='str', required=True), gateway=dict(type='str'), ip_range=dict(type='str'))),
        internal=dict(type='bool'),
        dns_enabled=dict(type='bool'),
        labels=dict(type='dict'),
        options=dict(type='dict'),
        force=dict(type='bool', default=False),
    )
    return spec


def request(module):
    params = module.params
    name = _podman_objects_spec.validate_name(params['name'], 'network')
    partial = _podman_objects_spec.network_partial_from_params(params) if params['state'] != 'absent' else {}
    return name, partial, params['state'], None, _module.reconcile_options(module)


def ensure(module, session):
    name, partial, state, target, opts = request(module)
    outcome, before, after = _reconcile.ensure(PodmanNetworkDriver(session.client), name, partial, state, target, opts)
    _module.ensure_result(module, 'network', outcome, before, after)


def main():
    _module.run(argument_spec(), ensure, backend='podman')


if __name__ == '__main__':
    main()

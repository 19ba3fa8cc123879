#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_info
short_description: List Podman containers, images, networks, volumes or pods in the shape their modules return them
version_added: 0.1.0
description:
  - Reads containers (or, with O(kind), images, networks, volumes or pods) from Podman, optionally filtered by name,
    run state and labels.
  - Each container is returned exactly as RV(virtfleet.virt.container#module:container) describes it, each
    network as RV(virtfleet.virt.container_network#module:network), each volume as
    RV(virtfleet.virt.container_volume#module:volume), each pod as RV(virtfleet.virt.container_pod#module:pod), each
    image as RV(virtfleet.virt.container_image#module:image) (named images only, under their first name; O(name) reads
    the image under that name).
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.podman
attributes:
  check_mode:
    support: full
    details: Reads only.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  kind:
    description:
      - What to list - V(container) (returned as RV(containers)), V(image) (RV(images)), V(network)
        (RV(networks)), V(volume) (RV(volumes)) or V(pod) (RV(pods)).
    type: str
    choices: [container, image, network, pod, volume]
    default: container
    version_added: 0.3.0
  name:
    description: Only the object of this name (an empty list when there is none).
    type: str
  states:
    description: Only containers in one of these run states (O(kind=container) only).
    type: list
    elements: str
    choices: [running, paused, stopped, stopping]
  labels:
    description:
      - Only objects that carry all of these labels with these values (for containers, labels from the image
        count too).
    type: dict
seealso:
  - module: virtfleet.virt.container
'''

EXAMPLES = r'''
- name: Running containers of the shop fleet
  virtfleet.virt.container_info:
    states: [running]
    labels:
      fleet: shop
  register: shop

- name: Their names
  ansible.builtin.debug:
    msg: "{{ shop.containers | map(attribute='name') | list }}"

- name: The networks of the shop fleet
  virtfleet.virt.container_info:
    kind: network
    labels:
      fleet: shop
  register: shop_networks

- name: One image
  virtfleet.virt.container_info:
    kind: image
    name: localhost/shop-web:1.4
  register: web_image

- name: One volume
  virtfleet.virt.container_info:
    kind: volume
    name: shop-db-data
  register: db_data

- name: The pods of the shop fleet
  virtfleet.virt.container_info:
    kind: pod
    labels:
      fleet: shop
  register: shop_pods
'''

RETURN = r'''
containers:
  description: The matching containers, sorted by name, each as RV(virtfleet.virt.container#module:container).
  returned: when O(kind=container)
  type: list
  elements: dict
  sample: [{name: web1, id: 3adcfd9363e1..., state: running, status: running, exit_code: 0,
            spec: {image: localhost/web:1.4, ports: ['127.0.0.1:8080:80/tcp'], labels: {fleet: shop}}}]
images:
  description: The matching images, sorted by name, each as RV(virtfleet.virt.container_image#module:image).
  returned: when O(kind=image)
  type: list
  elements: dict
  sample: [{name: 'localhost/shop-web:1.4', id: 3bd7f2c1a0e5..., created: '2026-12-05T21:40:02.123456789Z',
            labels: {io.virtfleet.context-sha256: 5e2b...}, state: present,
            spec: {id: 3bd7f2c1a0e5..., context_sha256: 5e2b..., tags: ['localhost/shop-web:stable']}}]
networks:
  description: The matching networks, sorted by name, each as RV(virtfleet.virt.container_network#module:network).
  returned: when O(kind=network)
  type: list
  elements: dict
  sample: [{name: shop, id: 77ea9baf1bc9..., created: '2026-12-05T13:13:34.447834485Z', interface: podman1,
            state: present, spec: {driver: bridge, subnets: [{subnet: 10.89.20.0/24, gateway: 10.89.20.1,
            ip_range: null}], internal: false, dns_enabled: true, labels: {fleet: shop}, options: {}}}]
volumes:
  description: The matching volumes, sorted by name, each as RV(virtfleet.virt.container_volume#module:volume).
  returned: when O(kind=volume)
  type: list
  elements: dict
  sample: [{name: shop-db-data, created: '2026-12-05T13:13:46.561505607Z',
            mountpoint: /var/lib/containers/storage/volumes/shop-db-data/_data, state: present,
            spec: {driver: local, options: {}, labels: {fleet: shop}}}]
pods:
  description: The matching pods, sorted by name, each as RV(virtfleet.virt.container_pod#module:pod).
  returned: when O(kind=pod)
  type: list
  elements: dict
  sample: [{name: shop, id: 36e089405fe8..., created: '2026-12-05T21:28:24.565597989Z', status: running,
            state: present, infra_id: b63db8839010..., containers: [shop-api, shop-web],
            spec: {infra: true, share: [ipc, net, uts], ports: ['127.0.0.1:8080:80/tcp'], networks: [podman],
                   labels: {fleet: shop}, hostname: shop}}]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_spec, _module, _podman_objects_spec
from ansible_collections.virtfleet.virt.plugins.module_utils import _podman_pod_spec
from ansible_collections.virtfleet.virt.plugins.module_utils import _podman_image_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients import podman
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_container import PodmanContainerDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_image import PodmanImageDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_network import PodmanNetworkDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_pod import PodmanPodDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_volume import PodmanVolumeDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


class Kind:
    """One kind of Podman object this module lists: its driver, result key, name check and labels."""

    def __init__(self, driver, key, validate_name, labels):
        self.driver = driver
        self.key = key
        self.validate_name = validate_name
        self.labels = labels  # actual -> the labels a filter matches


# kind option -> how it is listed
KINDS = {
    'container': Kind(PodmanContainerDriver, 'containers', _container_spec.validate_name,
                      lambda actual: actual['raw_labels']),
    'image': Kind(PodmanImageDriver, 'images', _podman_image_spec.parse_ref, lambda actual: actual['labels']),
    'network': Kind(PodmanNetworkDriver, 'networks', lambda name: _podman_objects_spec.validate_name(name, 'network'),
                    lambda actual: actual['spec']['labels']),
    'volume': Kind(PodmanVolumeDriver, 'volumes', lambda name: _podman_objects_spec.validate_name(name, 'volume'),
                   lambda actual: actual['spec']['labels']),
    'pod': Kind(PodmanPodDriver, 'pods', _podman_pod_spec.validate_name, lambda actual: actual['spec']['labels']),
}


def argument_spec():
    spec = podman.argument_spec()
    spec.update(
        kind=dict(type='str', default='container', choices=sorted(KINDS)),
        name=dict(type='str'),
        states=dict(type='list', elements='str', choices=['running', 'paused', 'stopped', 'stopping']),
        labels=dict(type='dict'),
    )
    return spec


def list_objects(module, session):
    params = module.params
    kind = KINDS[params['kind']]
    if params['states'] and params['kind'] != 'container':
        raise SpecError('states', 'filters containers by run state; a %s has none: remove it' % params['kind'])
    driver = kind.driver(session.client)
    actuals = _module.found(driver, None if params['name'] is None else kind.validate_name(params['name']))
    wanted = dict((k, '' if v is None else str(v)) for k, v in (params['labels'] or {}).items())
    found = []
    for actual in actuals:
        if params['states'] and actual['state'] not in params['states']:
            continue
        if any(kind.labels(actual).get(k) != v for k, v in wanted.items()):
            continue
        found.append(driver.describe(actual))
    module.exit_json(changed=False, **{kind.key: sorted(found, key=lambda c: c['name'])})


def main():
    _module.run(argument_spec(), list_objects, backend='podman')


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_pod
short_description: Manage Podman pods from a declared spec
version_added: 0.3.0
description:
  - Creates, recreates and removes a Podman pod so that it matches the options given, for containers to join
    (the O(virtfleet.virt.container#module:pod) option of virtfleet.virt.container). The containers of a pod share
    its network (they reach each other on C(localhost)), its published ports and its host name.
  - Idempotent on the normalized state read back from C(podman pod inspect) - only what the options set is
    compared, so the namespaces and network Podman picks by itself are never a change, and a run with nothing to
    change writes nothing.
  - Options left out are not changed. O(ports), O(networks), O(share) and O(labels) are complete - what is not
    listed is removed.
  - This module manages whether the pod exists, not its run state - its containers are started and stopped with
    virtfleet.virt.container (starting one starts the pod's infra container).
  - Podman 4.3 cannot change a pod in place (there is no C(podman pod update)), so every change recreates the pod
    (RV(recreated), RV(recreate_reasons)) with the same name. Its containers are recreated with it, in the new pod,
    from their spec as virtfleet.virt.container reads it, and the ones that ran are started again
    (RV(affected_containers)). A running container in the pod blocks the recreation unless O(force); stopped ones
    never do.
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
    description: Pod name, unique on the host.
    type: str
    required: true
  state:
    description:
      - V(present) - the pod exists with this spec (its run state is left alone).
      - V(absent) - it is removed. A pod with containers is refused unless O(force), which removes them with it.
    type: str
    choices: [present, absent]
    default: present
  infra:
    description:
      - Whether the pod has an infra container, which holds the namespaces its containers share, its published
        ports, networks and host name. Podman makes its image itself (C(localhost/podman-pause)), without a
        registry. V(false) is a pod that only groups containers - O(share), O(ports), O(networks) and
        O(hostname) are refused with it.
      - Left out, a new pod has one.
    type: bool
  share:
    description:
      - The namespaces the containers of the pod share, of V(cgroup), V(ipc), V(net), V(pid) and V(uts)
        (V(cgroup) is created with C(--share-parent=false), which Podman needs for it).
      - Left out, a new pod shares Podman's default (V(ipc), V(net), V(uts) on Podman 4.3), and an existing one
        keeps what it shares.
    type: list
    elements: str
  ports:
    description:
      - Ports the pod publishes, in the form of O(virtfleet.virt.container#module:ports) (returned in the same
        canonical form). The containers in the pod listen on them; they cannot publish ports themselves.
    type: list
    elements: str
  networks:
    description:
      - Networks the pod joins (they must exist), or V([host]) or V([none]).
      - Left out, a new pod joins Podman's default network, and an existing one keeps its networks.
    type: list
    elements: str
  labels:
    description: Pod labels.
    type: dict
  hostname:
    description: The host name of the pod's containers (its UTS namespace). V("") removes it.
    type: str
  force:
    description:
      - Recreate the pod (on a change) although containers in it run - they are recreated in the new pod and
        started again; remove it (O(state=absent)) with its containers (C(podman pod rm --force)).
    type: bool
    default: false
notes:
  - A recreated pod's containers are new containers (new IDs), created from the spec virtfleet.virt.container
    manages; settings given to C(podman create) by hand (a user, devices, capabilities) are not carried over.
seealso:
  - module: virtfleet.virt.container
  - module: virtfleet.virt.container_network
  - module: virtfleet.virt.container_info
'''

EXAMPLES = r'''
- name: A pod for a web server and its backend, published on the loopback address
  virtfleet.virt.container_pod:
    name: shop
    ports:
      - 127.0.0.1:8080:80
    hostname: shop
    labels:
      fleet: shop

- name: The web server in the pod
  virtfleet.virt.container:
    name: shop-web
    image: localhost/web:1.4
    pod: shop
    state: started

- name: The backend in the same pod - the web server reaches it on localhost:9000
  virtfleet.virt.container:
    name: shop-api
    image: localhost/api:2.0
    pod: shop
    state: started

- name: Publish another port - the pod and its containers are recreated
  virtfleet.virt.container_pod:
    name: shop
    ports:
      - 127.0.0.1:8080:80
      - 127.0.0.1:8443:443
    force: true
  register: shop

- name: Remove the pod with its containers
  virtfleet.virt.container_pod:
    name: shop
    state: absent
    force: true
'''

RETURN = r'''
pod:
  description: The pod after the run (in check mode, as predicted). Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: Pod name.
      type: str
      sample: shop
    id:
      description: Pod ID. A recreated pod has a new one.
      type: str
      sample: 36e089405fe8ae8f6a5505c800c19a486fc5edec8ac5532cb80949b257adf2cd
    created:
      description: When Podman created the pod.
      type: str
      sample: '2026-12-05T21:28:24.565597989Z'
    status:
      description: Podman's status of the pod - created, running, degraded, stopped, exited, ...
      type: str
      sample: running
    state:
      description: V(present).
      type: str
      sample: present
    infra_id:
      description: The ID of the infra container (V(null) without one).
      type: str
    containers:
      description: The names of the pod's containers, its infra container aside.
      type: list
      elements: str
      sample: [shop-api, shop-web]
    spec:
      description: The normalized spec, in the shape of this module's options, with what Podman picked filled in.
      type: dict
      sample: {infra: true, share: [ipc, net, uts], ports: ['127.0.0.1:8080:80/tcp'], networks: [podman],
               labels: {fleet: shop}, hostname: shop}
recreated:
  description: True when the run recreated (or, in check mode, would recreate) the pod.
  returned: unless O(state=absent)
  type: bool
  sample: false
recreate_reasons:
  description: The spec fields whose change forced the recreation.
  returned: unless O(state=absent)
  type: list
  elements: str
  sample: [ports]
affected_containers:
  description:
    - The containers of the pod that the run recreated in the new pod, or (O(state=absent) with O(force)) removed
      with it - or, in check mode, would.
  returned: always
  type: list
  elements: str
  sample: [shop-api, shop-web]
actions:
  description: What the run did (or, in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: [created]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _podman_pod_spec, _reconcile
from ansible_collections.virtfleet.virt.plugins.module_utils._clients import podman
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_pod import PodmanPodDriver


def argument_spec():
    spec = podman.argument_spec()
    spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        infra=dict(type='bool'),
        share=dict(type='list', elements='str'),
        ports=dict(type='list', elements='str'),
        networks=dict(type='list', elements='str'),
        labels=dict(type='dict'),
        hostname=dict(type='str'),
        force=dict(type='bool', default=False),
    )
    return spec


def ensure(module, session):
    params = module.params
    name = _podman_pod_spec.validate_name(params['name'])
    partial = _podman_pod_spec.partial_from_params(params) if params['state'] != 'absent' else {}
    outcome, before, after = _reconcile.ensure(PodmanPodDriver(session.client), name, partial, params['state'], None,
                                               _module.reconcile_options(module))
    _module.ensure_result(module, 'pod', outcome, before, after)


def main():
    _module.run(argument_spec(), ensure, backend='podman')


if __name__ == '__main__':
    main()

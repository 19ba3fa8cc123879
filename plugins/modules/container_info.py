#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_info
short_description: List Podman containers in the same shape as virtfleet.virt.container returns them
version_added: 0.1.0
description:
  - Reads containers from Podman, optionally filtered by name, run state and labels.
  - Each container is returned exactly as RV(virtfleet.virt.container#module:container) describes it.
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
  name:
    description: Only the container of this name (an empty list when there is none).
    type: str
  states:
    description: Only containers in one of these run states.
    type: list
    elements: str
    choices: [running, paused, stopped, stopping]
  labels:
    description:
      - Only containers that carry all of these labels with these values (labels from the image count too).
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
'''

RETURN = r'''
containers:
  description: The matching containers, sorted by name, each as RV(virtfleet.virt.container#module:container).
  returned: always
  type: list
  elements: dict
  sample: [{name: web1, id: 3adcfd9363e1..., state: running, status: running, exit_code: 0,
            spec: {image: localhost/web:1.4, ports: ['127.0.0.1:8080:80/tcp'], labels: {fleet: shop}}}]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_spec, _module
from ansible_collections.virtfleet.virt.plugins.module_utils._clients import podman
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_container import PodmanContainerDriver


def argument_spec():
    spec = podman.argument_spec()
    spec.update(
        name=dict(type='str'),
        states=dict(type='list', elements='str', choices=['running', 'paused', 'stopped', 'stopping']),
        labels=dict(type='dict'),
    )
    return spec


def list_containers(module, session):
    params = module.params
    driver = PodmanContainerDriver(session.client)
    actuals = _module.found(driver, None if params['name'] is None else _container_spec.validate_name(params['name']))
    wanted = dict((k, '' if v is None else str(v)) for k, v in (params['labels'] or {}).items())
    containers = []
    for actual in actuals:
        if params['states'] and actual['state'] not in params['states']:
            continue
        if any(actual['raw_labels'].get(k) != v for k, v in wanted.items()):
            continue
        containers.append(driver.describe(actual))
    module.exit_json(changed=False, containers=sorted(containers, key=lambda c: c['name']))


def main():
    _module.run(argument_spec(), list_containers, backend='podman')


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: volume_info
short_description: List libvirt storage volumes in the same shape as virtfleet.virt.volume returns them
version_added: 0.2.0
description:
  - Reads the volumes of active storage pools (libvirt lists no volumes of inactive pools),
    optionally filtered by pool, name and format.
  - Each volume is returned exactly as RV(virtfleet.virt.volume#module:volume) describes it.
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
  pool:
    description: Only volumes of this pool (an empty list when the pool does not exist or is inactive).
    type: str
  name:
    description: Only volumes of this name.
    type: str
  formats:
    description: Only volumes of these formats, as libvirt reports them (such as V(raw), V(qcow2), V(iso)).
    type: list
    elements: str
seealso:
  - module: virtfleet.virt.volume
'''

EXAMPLES = r'''
- name: The qcow2 volumes of the images pool
  virtfleet.virt.volume_info:
    pool: images
    formats: [qcow2]
  register: found

- name: Overlays and what they are based on
  ansible.builtin.debug:
    msg: "{{ found.volumes | selectattr('spec.backing_volume') | items2dict(key_name='name', value_name='spec') }}"
'''

RETURN = r'''
volumes:
  description: The matching volumes, sorted by pool and name, each as RV(virtfleet.virt.volume#module:volume).
  returned: always
  type: list
  elements: dict
  sample: [{name: web1.qcow2, pool: images, path: /srv/images/web1.qcow2, state: present,
            spec: {format: qcow2, capacity: 21474836480, backing_volume: debian-12.qcow2}, allocation: 200704}]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_volume import LibvirtVolumeDriver


def argument_spec():
    spec = _module.connection_argument_spec()
    spec.update(
        pool=dict(type='str'),
        name=dict(type='str'),
        formats=dict(type='list', elements='str'),
    )
    return spec


def list_volumes(module, session):
    params = module.params
    driver = LibvirtVolumeDriver(session.client, params['pool'])
    actuals = driver.list([params['pool']] if params['pool'] else None)
    volumes = [driver.describe(actual) for actual in actuals
               if (params['name'] is None or actual['name'] == params['name'])
               and (not params['formats'] or actual['spec']['format'] in params['formats'])]
    module.exit_json(changed=False, volumes=sorted(volumes, key=lambda vol: (vol['pool'], vol['name'])))


def main():
    _module.run(argument_spec(), list_volumes)


if __name__ == '__main__':
    main()

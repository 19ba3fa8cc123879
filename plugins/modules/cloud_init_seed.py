#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cloud_init_seed
short_description: Keep a cloud-init NoCloud seed ISO as a libvirt storage volume
version_added: 0.2.0
description:
  - Generates a NoCloud seed image - an ISO 9660 filesystem labelled C(cidata) holding C(user-data),
    C(meta-data) and optionally C(network-config) - and keeps it as a raw volume of a storage pool,
    ready to attach to a VM as a CD-ROM (virtfleet.virt.vm, C(disks) with C(device=cdrom)).
  - Idempotent by content - a hash of the files is stored in the image itself (the ISO's
    application-use field) and compared on the next run. The image is regenerated, and the run reports
    a change, only when the content changes.
  - The content is never returned or shown in C(--diff); the result and the diff show the content hash
    instead. O(user_data), where passwords and keys go, is not logged (C(no_log)).
  - The ISO is built in memory with the pure-Python library pycdlib and streamed into the volume through
    libvirt, so it needs no ISO tool (xorriso, genisoimage) and no temporary file on the host that runs
    the module, and works over remote URIs. That is why pycdlib was chosen over the Debian tools.
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.libvirt
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows the content hash and file names, never the content.
  platform:
    platforms: posix
requirements:
  - pycdlib >= 1.11 on the host that runs the module
options:
  pool:
    description: The storage pool that holds the seed volume. It must exist and be active.
    type: str
    required: true
  name:
    description:
      - Name of the seed volume, such as V(web1-seed.iso). An existing volume of that name that this module
        did not make is refused, never overwritten.
    type: str
    required: true
  state:
    description: V(present) keeps the seed up to date; V(absent) deletes the volume.
    type: str
    choices: [present, absent]
    default: present
  user_data:
    description:
      - The C(user-data) file. A string is written as it is (start it with C(#cloud-config) for
        cloud-config); a dictionary is written as C(#cloud-config) followed by the dictionary (as JSON,
        which YAML reads).
      - Default - an empty C(#cloud-config).
      - Not logged. Given as a dictionary, Ansible masks every value in it wherever it appears in the
        output (a short value such as V(true) or a host name too); a string keeps the output readable.
    type: raw
  meta_data:
    description:
      - The C(meta-data) file, a string written as it is or a dictionary.
      - A dictionary without C(instance-id) gets the volume name as C(instance-id) (cloud-init runs its
        per-instance modules again when the instance-id changes). Default - only C(instance-id), the volume name.
    type: raw
  network_config:
    description:
      - The C(network-config) file (network config version 1 or 2), a string or a dictionary.
        Left out, the seed has no C(network-config) and the guest uses its default (DHCP).
      - Logged like other options; keep secrets (such as Wi-Fi passwords) in O(user_data).
    type: raw
seealso:
  - module: virtfleet.virt.volume
  - module: virtfleet.virt.vm
'''

EXAMPLES = r'''
- name: Seed for web1
  virtfleet.virt.cloud_init_seed:
    pool: images
    name: web1-seed.iso
    meta_data:
      instance-id: web1-0001
      local-hostname: web1
    user_data:
      users:
        - name: ops
          ssh_authorized_keys: ["{{ lookup('file', 'ops.pub') }}"]
          sudo: ALL=(ALL) NOPASSWD:ALL
      chpasswd:
        expire: false
        users:
          - {name: ops, password: "{{ vault_ops_password }}", type: text}
    network_config:
      version: 2
      ethernets:
        eth0: {dhcp4: true}

- name: web1 boots from its overlay with the seed as a CD-ROM
  virtfleet.virt.vm:
    name: web1
    state: running
    disks:
      - {pool: images, volume: web1.qcow2}
      - {pool: images, volume: web1-seed.iso, device: cdrom}
'''

RETURN = r'''
seed:
  description: The seed volume after the run (in check mode, as predicted). Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: Volume name.
      type: str
    pool:
      description: Storage pool.
      type: str
    path:
      description: Path of the ISO on the hypervisor host.
      type: str
    state:
      description: V(present).
      type: str
    spec:
      description: C(content_sha256) - the hash of the files' names and content; C(files) - the file names.
      type: dict
      sample: {content_sha256: 3b9f0c0e3f1c6c5d5f7e8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d, files: [meta-data, user-data]}
    capacity:
      description: Size of the ISO in bytes.
      type: int
actions:
  description: What the run did (or, in check mode, would do).
  returned: always
  type: list
  elements: str
  sample: ['updated: content']
'''

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.virtfleet.virt.plugins.module_utils import _cloud_init, _module, _reconcile, _storage_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_volume import LibvirtSeedDriver


def argument_spec():
    spec = _module.connection_argument_spec()
    spec.update(
        pool=dict(type='str', required=True),
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        user_data=dict(type='raw', no_log=True),
        meta_data=dict(type='raw'),
        network_config=dict(type='raw'),
    )
    return spec


def main():
    # not _module.run: pycdlib is checked before the connection opens
    module = _module.new_module(argument_spec())
    params = module.params
    if params['state'] == 'present' and not _cloud_init.HAS_PYCDLIB:
        module.fail_json(msg=missing_required_lib('pycdlib'), exception=_cloud_init.PYCDLIB_IMPORT_ERROR)
    with _module.Session(module) as session:
        pool = _storage_spec.validate_name(params['pool'], 'pool')
        name = _storage_spec.validate_name(params['name'], 'name', 'volume')
        files, partial = {}, {}
        if params['state'] == 'present':
            files = _cloud_init.seed_files(name, params['user_data'], params['meta_data'], params['network_config'])
            partial = _cloud_init.seed_spec(files)
        driver = LibvirtSeedDriver(session.client, pool, files, require_pool=params['state'] != 'absent')
        outcome, before, after = _reconcile.ensure(driver, name, partial, params['state'], None,
                                                   _module.reconcile_options(module))
        _module.ensure_result(module, 'seed', outcome, before, after)


if __name__ == '__main__':
    main()

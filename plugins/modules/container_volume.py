#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_volume
short_description: Manage Podman named volumes from a declared spec
version_added: 0.3.0
description:
  - Creates, recreates and removes a Podman named volume so that it matches the options given, for containers
    to mount (C(NAME:/path) in the O(virtfleet.virt.container#module:volumes) option of
    virtfleet.virt.container).
  - Idempotent on the normalized state read back from C(podman volume inspect); a run with nothing to change
    writes nothing.
  - Options left out are not changed. O(options) and O(labels) are complete - what is not listed is removed.
  - Podman cannot change a volume in place, so a change recreates it (RV(recreated), RV(recreate_reasons)) - only
    while no container, running or stopped, uses it. Recreating a volume that Podman stores itself (no
    O(options)) discards its data; a bind or tmpfs volume has no data of its own.
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
    description: Volume name, unique on the host.
    type: str
    required: true
  state:
    description:
      - V(present) - the volume exists with this spec.
      - V(absent) - it is removed with its data. A volume that containers use is refused unless O(force).
    type: str
    choices: [present, absent]
    default: present
  driver:
    description:
      - Volume driver. Only V(local) (Podman's own) is managed. Left out, a new volume is V(local).
    type: str
    choices: [local]
  options:
    description:
      - Mount options of the local driver, as mount(8) takes them - the keys C(type), C(device) (both required
        when any option is given) and C(o). Values are strings.
      - 'A bind of a host directory - C(type: none), C(device: /srv/data), C(o: bind); a tmpfs -
        C(type: tmpfs), C(device: tmpfs), C(o: mode=1777,uid=1000).'
      - Podman checks the options when it creates the volume (a refusal names this option and changes nothing);
        the mount itself happens when a container starts. Podman 4.3 refuses C(size=) in C(o) on storage without
        project quotas (it reads it as a quota).
      - Left out, a new volume is a directory Podman keeps in its storage.
    type: dict
  labels:
    description:
      - Volume labels, strings.
      - A value may not end in a carriage return, which C(podman volume create) drops.
    type: dict
  force:
    description:
      - With O(state=absent) - remove the volume although containers use it. Podman then removes those
        containers too (C(podman volume rm --force)), running or not; RV(affected_containers) names them.
      - A change that recreates the volume is refused while containers use it, even with O(force).
    type: bool
    default: false
seealso:
  - module: virtfleet.virt.container
  - module: virtfleet.virt.container_network
  - module: virtfleet.virt.container_info
'''

EXAMPLES = r'''
- name: A volume for the database's data
  virtfleet.virt.container_volume:
    name: shop-db-data
    labels:
      fleet: shop

- name: A tmpfs volume
  virtfleet.virt.container_volume:
    name: shop-cache
    options:
      type: tmpfs
      device: tmpfs
      o: mode=1777

- name: A host directory as a named volume
  virtfleet.virt.container_volume:
    name: shop-media
    options:
      type: none
      device: /srv/shop/media
      o: bind

- name: Mount it in a container
  virtfleet.virt.container:
    name: db1
    image: localhost/db:15
    volumes:
      - shop-db-data:/var/lib/db
    state: started

- name: Remove it, with the containers that use it
  virtfleet.virt.container_volume:
    name: shop-db-data
    state: absent
    force: true
'''

RETURN = r'''
volume:
  description: The volume after the run (in check mode, as predicted). Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: Volume name.
      type: str
      sample: shop-db-data
    created:
      description: When Podman created the volume. A recreated volume has a new time.
      type: str
      sample: '2026-12-05T13:13:46.561505607Z'
    mountpoint:
      description: Where the volume's data is on the host.
      type: str
      sample: /var/lib/containers/storage/volumes/shop-db-data/_data
    state:
      description: V(present).
      type: str
      sample: present
    spec:
      description: The normalized spec, in the shape of this module's options.
      type: dict
      sample: {driver: local, options: {type: tmpfs, device: tmpfs, o: mode=1777}, labels: {fleet: shop}}
recreated:
  description: True when the run recreated (or, in check mode, would recreate) the volume.
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
  description: With O(state=absent) and O(force) - the containers removed with the volume (in check mode, that
    would be).
  returned: always
  type: list
  elements: str
  sample: [db1]
actions:
  description: What the run did (or, in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: [created]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _podman_objects_spec, _reconcile
from ansible_collections.virtfleet.virt.plugins.module_utils._clients import podman
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_volume import PodmanVolumeDriver


def argument_spec():
    spec = podman.argument_spec()
    spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        driver=dict(type='str', choices=list(_podman_objects_spec.VOLUME_DRIVERS)),
        options=dict(type='dict'),
        labels=dict(type='dict'),
        force=dict(type='bool', default=False),
    )
    return spec


def request(module):
    params = module.params
    name = _podman_objects_spec.validate_name(params['name'], 'volume')
    partial = _podman_objects_spec.volume_partial_from_params(params) if params['state'] != 'absent' else {}
    return name, partial, params['state'], None, _module.reconcile_options(module)


def ensure(module, session):
    name, partial, state, target, opts = request(module)
    outcome, before, after = _reconcile.ensure(PodmanVolumeDriver(session.client), name, partial, state, target, opts)
    _module.ensure_result(module, 'volume', outcome, before, after)


def main():
    _module.run(argument_spec(), ensure, backend='podman')


if __name__ == '__main__':
    main()

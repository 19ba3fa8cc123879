# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Podman volume driver: reads, plans and applies named volume specs (``container_volume``).

The actual volume is read from ``podman volume inspect`` and normalized by ``_podman_objects_spec``.
Podman cannot change a volume's driver, options or labels: a change recreates it (``podman volume rm`` and
``create``), which discards the data of a volume Podman stores itself (a bind or tmpfs volume has none of its
own), and only while no container - running or not - uses it. Removal (``absent``) refuses a volume in use
unless ``force``; with ``force`` Podman removes the containers that use it with it
(``podman volume rm --force``), and they are reported (``affected_containers``).
"""

from __future__ import annotations

import uuid

from ansible_collections.virtfleet.virt.plugins.module_utils import _podman_objects_spec as pspec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients.podman import entry_names
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import Driver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import InUse, Plan, Result


class PodmanVolumeDriver(Driver):
    kind = 'volume'
    result_fields = {'recreated': False, 'recreate_reasons': [], 'affected_containers': []}
    in_use_key = 'affected_containers'

    # -- reading ----------------------------------------------------------------------
    def read(self, name):
        return self.read_one(self.client.inspect_volume, self._read, name)

    def _read(self, data):
        return {'name': data.get('Name'), 'created': data.get('CreatedAt'), 'mountpoint': data.get('Mountpoint'),
                'state': 'present', 'spec': pspec.volume_from_inspect(data)}

    def list(self):
        return self.read_all(self.client.list_volume_names(), self.read)

    def describe(self, actual):
        return {'name': actual['name'], 'created': actual['created'], 'mountpoint': actual['mountpoint'],
                'state': actual['state'], 'spec': dict(actual['spec'])}

    def users(self, name):
        return entry_names(self.client.containers_using('volume', name))

    # -- desired spec -------------------------------------------------------------------
    def desired(self, partial, actual):
        return pspec.merge_volume(partial, actual['spec'] if actual else None)

    # -- writing ----------------------------------------------------------------------------
    def create(self, name, spec):
        try:
            self.client.create_volume(pspec.volume_create_args(name, spec))
        except BackendError as exc:
            if not spec['options'] or exc.details.get('exists'):
                raise
            raise SpecError('options', 'Podman refused the volume with these options: %s' % exc.msg)

    def plan_update(self, actual, spec):
        changes = pspec.volume_changed_fields(actual['spec'], spec)
        if not changes:
            return Plan(changes)
        users = self.users(actual['name'])
        if users:
            raise SpecError(changes[0], 'changing %s recreates volume %s (Podman cannot change a volume in place), '
                                        'and the containers %s use it: remove them first (force does not apply: '
                                        'Podman would remove them with the volume)'
                            % (', '.join(changes), actual['name'], ', '.join(users)))
        warnings = []
        if not actual['spec']['options']:
            warnings.append('volume %s was recreated: the data stored in it is gone' % actual['name'])
        return Plan(changes, details={'spec': spec, 'warnings': warnings},
                    extra={'recreated': True, 'recreate_reasons': changes})

    def apply_update(self, actual, plan):
        name = actual['name']
        # a volume of the new spec under a temporary name first: what Podman refuses is refused before the
        # old volume is removed
        probe = '%s-vfprobe-%s' % (name[:100], uuid.uuid4().hex[:8])
        self.create(probe, plan.details['spec'])
        self.client.remove_volume(probe)
        self.client.remove_volume(name)
        try:
            self.create(name, plan.details['spec'])
        except VirtError as exc:
            try:
                self.create(name, actual['spec'])
                exc.details['actions'] = ['removed', 'restored the old volume (empty)']
            except VirtError:
                exc.details['actions'] = ['removed']
                exc.details['performed'] = True
            raise
        return Result(warnings=plan.details['warnings'])

    def in_use(self, actual):
        """The containers that use the volume block its removal (``force`` removes them with it)."""
        users = self.users(actual['name'])
        if not users:
            return None
        return InUse(users, blocking=users, refusal='volume %s is used by the containers %s: remove them first, or '
                                                    'set force: true to remove the volume and, with it, these '
                                                    'containers (podman volume rm --force)'
                     % (actual['name'], ', '.join(users)))

    def delete(self, actual, options):
        users = self.users(actual['name'])
        if users:  # the reconcile loop allowed it (force): Podman removes them with the volume
            self.client.remove_volume_forced(actual['name'])
            return Result(actions=['removed container %s' % c for c in users],
                          warnings=['volume %s was removed with the containers that used it: %s'
                                    % (actual['name'], ', '.join(users))])
        self.client.remove_volume(actual['name'])
        return None

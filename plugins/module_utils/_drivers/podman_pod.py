# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Podman pod driver: reads, plans and applies pod specs (``container_pod``).

The actual pod is read from ``podman pod inspect`` and normalized by ``_podman_pod_spec``. Podman 4.3 has no
``podman pod update``, and what this module manages is fixed when a pod is created, so every change recreates
the pod (``podman pod rm`` and ``create`` under the same name). A probe pod of the new spec is created (never
started) under a temporary name first, so that what Podman refuses is refused before anything is removed.

The containers of a pod (its infra container aside) are recreated with it: each is read with the container
driver, removed, and created again from its normalized spec in the new pod; those that ran are started again.
A running container blocks the recreation unless ``force``; stopped ones never do. Settings the ``container``
module does not manage are not carried over (as on a container's own recreation). ``absent`` refuses a pod with
containers unless ``force``, which removes them with it (``podman pod rm --force``). Which containers were
affected is reported (``affected_containers``).
"""

from __future__ import annotations

import uuid

from ansible_collections.virtfleet.virt.plugins.module_utils import _podman_pod_spec as pspec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients.podman import RUNNING_STATES
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import Driver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_container import PodmanContainerDriver, _ports
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_container_create import create_options
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import InUse, Plan, Result

_REFUSALS = (('ports', 'port'), ('networks', 'network'), ('share', 'namespace'), ('hostname', 'hostname'))


class PodmanPodDriver(Driver):
    kind = 'pod'
    result_fields = {'recreated': False, 'recreate_reasons': [], 'affected_containers': []}
    in_use_key = 'affected_containers'

    # -- reading ----------------------------------------------------------------------
    def read(self, name):
        return self.read_one(self.client.inspect_pod, self._read, name)

    def _read(self, data):
        infra = data.get('InfraContainerID') or None
        members = [c for c in data.get('Containers') or [] if c.get('Id') != infra]
        ports = _ports((data.get('InfraConfig') or {}).get('PortBindings'))
        return {'name': data.get('Name'), 'id': data.get('Id'), 'created': data.get('Created'),
                'status': str(data.get('State') or '').lower(), 'state': 'present', 'infra_id': infra,
                'containers': sorted(c.get('Name') for c in members),
                'running': sorted(c.get('Name') for c in members if str(c.get('State', '')).lower() in RUNNING_STATES),
                'spec': pspec.from_inspect(data, ports)}

    def list(self):
        return self.read_all(self.client.list_pod_names(), self.read)

    def describe(self, actual):
        view = dict((key, actual[key]) for key in ('name', 'id', 'created', 'status', 'state', 'infra_id', 'containers'))
        return dict(view, spec=dict(actual['spec']))

    # -- desired spec -------------------------------------------------------------------
    def desired(self, partial, actual):
        spec = pspec.merge(partial, actual['spec'] if actual else None)
        old = actual['spec']['networks'] if actual else None
        for network in spec['networks'] or []:
            if network not in ('host', 'none') and network not in (old or []) and not self.client.network_exists(network):
                raise SpecError('networks', 'network %r does not exist: create it first (virtfleet.virt.'
                                            'container_network) or use one of: %s'
                                % (network, ', '.join(self.client.list_network_names()) or 'none'))
        return spec

    # -- writing ----------------------------------------------------------------------------
    def create(self, name, spec):
        try:
            self.client.create_pod(pspec.create_args(name, spec))
        except BackendError as exc:
            # what Podman checks itself, named by the option it concerns
            found = [key for key, word in _REFUSALS if word in exc.msg.lower()]
            if exc.details.get('exists') or not found:
                raise
            raise SpecError(found[0], 'Podman refused the pod: %s' % exc.msg)

    def plan_update(self, actual, spec):
        changes = pspec.changed_fields(actual['spec'], spec)
        if not changes:
            return Plan(changes)
        refusal = ('changing %s recreates pod %s (Podman cannot change a pod in place), and its containers %s run: '
                   'stop them first, or set force: true to recreate them in the new pod (they are started again)'
                   % (', '.join(changes), actual['name'], ', '.join(actual['running'])))
        use = InUse(actual['containers'], blocking=actual['running'], refusal=refusal) if actual['containers'] else None
        return Plan(changes, details={'spec': spec}, in_use=use, extra={'recreated': True, 'recreate_reasons': changes})

    def apply_update(self, actual, plan):
        name, spec = actual['name'], plan.details['spec']
        probe = '%s-vfprobe-%s' % (name[:100], uuid.uuid4().hex[:8])
        self.create(probe, spec)  # what Podman refuses is refused here, before anything is removed
        self.client.remove_pod(probe, force=True)
        members = PodmanContainerDriver(self.client)
        saved = [members.read(container) for container in actual['containers']]
        saved = [c for c in saved if c is not None]
        actions = []
        for container in saved:
            self.client.remove_container(container['id'], force=True)
            actions.append('removed container %s' % container['name'])
        try:
            self.client.remove_pod(name, force=True)
            actions.append('removed')
            self.create(name, spec)
            actions.append('recreated')
        except VirtError as exc:
            if 'removed' in actions:
                try:
                    self.client.create_pod(pspec.create_args(name, actual['spec']))
                    actions.append('restored the old pod')
                except VirtError:
                    pass
            self._restore(saved, actions)
            exc.details.update(actions=actions, performed=bool(actions))
            raise
        self._restore(saved, actions)
        return Result(actions=[a for a in actions if 'container' in a], extra={'affected_containers': actual['containers']})

    def _restore(self, saved, actions):
        """Create the saved containers again (in the pod of their name), start those that ran."""
        failed = []
        for container in saved:
            spec = container['spec']
            try:
                self.client.create_container(create_options(container['name'], spec), spec['image'], spec['command'])
                actions.append('created container %s' % container['name'])
                if container['state'] in RUNNING_STATES:
                    self.client.start_container(container['name'])
                    actions.append('started container %s' % container['name'])
            except VirtError as exc:
                failed.append('%s (%s)' % (container['name'], exc.msg))
        if failed:
            pod = saved[0]['spec']['pod']
            raise BackendError('pod %s: creating these containers again failed: %s' % (pod, '; '.join(failed)),
                               performed=True, actions=actions)

    def in_use(self, actual):
        """The containers of the pod block its removal (``force`` removes them with it)."""
        users = actual['containers']
        if not users:
            return None
        return InUse(users, blocking=users, refusal='pod %s has the containers %s: remove them first, or set force: '
                                                    'true to remove them with the pod (podman pod rm --force)'
                     % (actual['name'], ', '.join(users)))

    def delete(self, actual, options):
        users = actual['containers']  # the reconcile loop allowed it (force): Podman removes them with the pod
        self.client.remove_pod(actual['name'], force=bool(users) or actual['status'] not in ('created', 'exited', 'stopped'))
        if not users:
            return None
        return Result(actions=['removed container %s' % c for c in users],
                      warnings=['pod %s was removed with its containers: %s' % (actual['name'], ', '.join(users))])

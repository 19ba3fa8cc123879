# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Podman network driver: reads, plans and applies network specs (``container_network``).

The actual network is read from ``podman network inspect`` and normalized by ``_podman_objects_spec``.
No field this module manages changes in place: ``podman network update`` (Podman 5.0 and later) changes only a
network's DNS servers, which this module does not manage, so every change recreates the network
(``podman network rm`` and ``create``, never ``rm --force``, which would remove the containers on it).

The containers on a network block its recreation and removal: a running (or paused) one unless ``force``,
then it is disconnected before the removal and, on a recreation, connected again to the new network (it keeps
running; it gets a new address and loses the aliases and static addresses of its old connection). A stopped
container on the network is disconnected and connected again the same way without ``force`` on a
recreation (nothing that runs is cut off); on ``absent`` it blocks the removal unless ``force`` too.
Which containers were affected is reported (``affected_containers``).
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils import _podman_objects_spec as pspec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients.podman import RUNNING_STATES, entry_names
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import Driver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import InUse, Plan, Result


class PodmanNetworkDriver(Driver):
    kind = 'network'
    result_fields = {'recreated': False, 'recreate_reasons': [], 'affected_containers': []}
    in_use_key = 'affected_containers'

    # -- reading ----------------------------------------------------------------------
    def read(self, name):
        return self.read_one(self.client.inspect_network, self._read, name)

    def _read(self, data):
        return {'name': data.get('name'), 'id': data.get('id'), 'created': data.get('created'),
                'interface': data.get('network_interface'), 'state': 'present',
                'spec': pspec.network_from_inspect(data)}

    def list(self):
        return [self._read(data) for data in self.client.inspect_networks()]

    def describe(self, actual):
        return {'name': actual['name'], 'id': actual['id'], 'created': actual['created'],
                'interface': actual['interface'], 'state': actual['state'], 'spec': dict(actual['spec'])}

    def users(self, name):
        """``(running, stopped)``: the names of the containers on network ``name``."""
        entries = [e for e in self.client.containers_using('network', name) if name in (e.get('Networks') or [name])]
        running = [e for e in entries if str(e.get('State', '')).lower() in RUNNING_STATES]
        stopped = [e for e in entries if e not in running]
        return entry_names(running), entry_names(stopped)

    # -- desired spec -------------------------------------------------------------------
    def desired(self, partial, actual):
        spec = pspec.merge_network(partial, actual['spec'] if actual else None)
        if actual is None or spec['subnets'] != actual['spec']['subnets']:
            others = dict((a['name'], a['spec']) for a in self.list() if actual is None or a['id'] != actual['id'])
            found = pspec.overlapping(spec, others)
            if found:
                raise SpecError('subnets', '%s overlaps the subnet %s of the network %s: choose a subnet that no '
                                           'other Podman network uses' % (found[0], found[2], found[1]))
        return spec

    # -- writing ----------------------------------------------------------------------------
    def create(self, name, spec):
        self._create(name, spec)

    def _create(self, name, spec):
        try:
            self.client.create_network(pspec.network_create_args(name, spec))
        except BackendError as exc:
            if 'already used on the host' in exc.msg or 'overlap' in exc.msg:
                raise SpecError('subnets', '%s (a subnet overlaps one of another network or a route of the host: '
                                           'choose another subnet)' % exc.msg)
            if exc.details.get('exists'):
                raise
            # what Podman checks itself: the driver options (known keys and values differ between versions)
            if 'subnet' in exc.msg or 'gateway' in exc.msg or 'range' in exc.msg:
                raise SpecError('subnets', 'Podman refused the network: %s' % exc.msg)
            if spec['options']:
                raise SpecError('options', 'Podman refused the network with these options: %s' % exc.msg)
            raise

    def plan_update(self, actual, spec):
        changes = pspec.network_changed_fields(actual['spec'], spec)
        if not changes:
            return Plan(changes)
        running, stopped = self.users(actual['name'])
        refusal = ('changing %s recreates network %s (Podman cannot change it in place), and the running containers '
                   '%s use it: stop them first, or set force: true to disconnect them and connect them again to the '
                   'new network (they keep running, with new addresses)'
                   % (', '.join(changes), actual['name'], ', '.join(running)))
        use = InUse(running + stopped, blocking=running, refusal=refusal)
        return Plan(changes, details={'spec': spec, 'affected': use.affected}, in_use=use,
                    extra={'recreated': True, 'recreate_reasons': changes})

    def apply_update(self, actual, plan):
        name, affected = actual['name'], plan.details['affected']
        actions = []
        for container in affected:
            self.client.network_disconnect(name, container)
            actions.append('disconnected %s' % container)
        try:
            self.client.remove_network(name)
            actions.append('removed')
            self._create(name, plan.details['spec'])
            actions.append('recreated')
        except VirtError as exc:
            if 'removed' in actions:
                # put the old network back, so that the containers can be connected again
                try:
                    self.client.create_network(pspec.network_create_args(name, actual['spec']))
                    actions.append('restored the old network')
                except VirtError:
                    pass
            self._reconnect(name, affected, actions)
            exc.details['actions'] = actions
            raise
        self._reconnect(name, affected, actions)
        return Result(actions=[a for a in actions if a.startswith(('disconnected', 'connected'))],
                      extra={'affected_containers': affected})

    def _reconnect(self, name, containers, actions):
        failed = []
        for container in containers:
            try:
                self.client.network_connect(name, container)
                actions.append('connected %s' % container)
            except VirtError as exc:
                failed.append('%s (%s)' % (container, exc.msg))
        if failed:
            raise BackendError('network %s was recreated, but connecting these containers again failed: %s'
                               % (name, '; '.join(failed)), performed=True, actions=actions)

    def in_use(self, actual):
        """Every container on the network blocks its removal (``force`` disconnects them)."""
        running, stopped = self.users(actual['name'])
        users = running + stopped
        if not users:
            return None
        return InUse(users, blocking=users, refusal='network %s is used by the containers %s: remove them or take '
                                                    'them off the network first, or set force: true to disconnect '
                                                    'them (they are kept%s)'
                     % (actual['name'], ', '.join(sorted(users)),
                        ', and the running ones keep running' if running else ''))

    def delete(self, actual, options):
        running, stopped = self.users(actual['name'])
        affected = sorted(running + stopped)
        for container in affected:
            self.client.network_disconnect(actual['name'], container)
        self.client.remove_network(actual['name'])
        return Result(actions=['disconnected %s' % c for c in affected])

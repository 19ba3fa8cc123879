# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Podman container driver: reads, plans and applies container specs.

The actual state is read from ``podman inspect`` and normalized into the
canonical forms of ``_container_spec`` - never from the command line that
created the container.  What the image or podman put there by themselves
(image environment, labels and default command, ``container=podman``,
``TERM``, ``HOME``, anonymous volumes) is left out, so it never shows up as a
change and a recreation from another image picks up that image's defaults.

What changes in place: networks (``podman network connect``/``disconnect``)
always; memory, cpus and the restart policy with ``podman update`` when this
Podman stores such updates (5.1+ on SQLite; older Podman applies them to the
cgroup only, where they are lost at the next start and invisible to
``podman inspect``).  Everything else recreates the container.  Recreation
creates the new container under a temporary name first (which checks image,
volumes and networks), then swaps the names; when the new one fails to start,
the old one is put back as it was (``podman_container_create``). The run state and its
actions are ``podman_container_run``.
"""

from __future__ import annotations

import os
import re

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_spec as cspec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import Driver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_container_create import (
    MIB,
    Recreation,
    create_options,
    recreation_actions,
    resource_options,
)
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import podman_container_health as phealth
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_container_run import RunState, run_state
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Step

# Environment podman adds to every container, ignored unless the user sets it.
INJECTED_ENV = {'container': 'podman', 'TERM': 'xterm'}
INJECTED_ENV_ANY_VALUE = ('HOSTNAME', 'HOME')
_ANONYMOUS_VOLUME = re.compile(r'^[0-9a-f]{64}$')
# Spec fields `podman update` can change on a Podman that keeps the change.
_UPDATABLE = ('memory', 'cpus', 'restart_policy')


def _env_dict(items):
    env = {}
    for item in items or []:
        key, _sep, value = item.partition('=')
        env[key] = value
    return env


def _ports(bindings):
    ports = []
    for key, entries in (bindings or {}).items():
        container_port, _sep, protocol = key.partition('/')
        for entry in entries or []:
            ip = entry.get('HostIp') or '0.0.0.0'
            ports.append(cspec.format_port(ip, entry.get('HostPort') or None, int(container_port),
                                           protocol or 'tcp'))
    return cspec.sort_ports(ports)


def _volumes(mounts):
    volumes = []
    for mount in mounts or []:
        destination = cspec._norm_path(mount.get('Destination') or '')
        readonly = not mount.get('RW', True)
        if mount.get('Type') == 'bind':
            volumes.append(cspec.format_volume(cspec._norm_path(mount['Source']), destination, readonly))
        elif mount.get('Type') == 'volume':
            name = mount.get('Name') or ''
            if _ANONYMOUS_VOLUME.match(name):
                continue  # anonymous: the image's VOLUME or an unnamed -v; not managed
            volumes.append(cspec.format_volume(name, destination, readonly))
    return sorted(volumes, key=cspec.volume_destination)


def _mib(nbytes):
    if not nbytes:
        return None
    return nbytes // MIB if nbytes % MIB == 0 else round(nbytes / float(MIB), 3)


def _cpus(host_config):
    if host_config.get('NanoCpus'):
        return round(host_config['NanoCpus'] / 1e9, 3) or None
    if host_config.get('CpuQuota', 0) > 0 and host_config.get('CpuPeriod'):
        return round(host_config['CpuQuota'] / float(host_config['CpuPeriod']), 3) or None
    return None


def _restart_policy(policy):
    name = (policy or {}).get('Name') or 'no'
    count = (policy or {}).get('MaximumRetryCount') or 0
    if name == 'on-failure' and count:
        return 'on-failure:%d' % count
    return name


def _network_mode(host_config):
    mode = host_config.get('NetworkMode') or 'bridge'
    return 'bridge' if mode in ('bridge', 'default') else mode


class PodmanContainerDriver(Driver):
    kind = 'container'
    stopped_state = initial_state = 'stopped'
    restartable_states = ('running',)
    # what the plan predicts (also in check mode): whether the update replaces the container, and why
    result_fields = {'recreated': False, 'recreate_reasons': []}

    def __init__(self, client, pull=True, stop_timeout=None, target=None):
        super().__init__(client)
        self.pull = pull
        self.target = target
        self.run = RunState(client, stop_timeout)
        self._images = {}
        self._pods = {}  # pod ID -> name

    # -- reading --------------------------------------------------------------
    def read(self, name):
        return self.read_one(self.client.inspect_container, self._normalize, name)

    def list(self):
        return [self._normalize(data) for data in self.client.inspect_containers(
            [entry['Id'] for entry in self.client.list_containers()])]

    def _image_config(self, image_id):
        if image_id not in self._images:
            try:
                self._images[image_id] = self.client.inspect_image(image_id).get('Config') or {}
            except NotFound:
                self._images[image_id] = {}
        return self._images[image_id]

    def _normalize(self, data):
        config = data.get('Config') or {}
        host = data.get('HostConfig') or {}
        image = self._image_config(data.get('Image'))
        image_env = _env_dict(image.get('Env'))
        raw_env = _env_dict(config.get('Env'))
        env = dict((k, v) for k, v in raw_env.items()
                   if not (image_env.get(k, INJECTED_ENV.get(k)) == v or k in INJECTED_ENV_ANY_VALUE))
        image_labels = image.get('Labels') or {}
        raw_labels = dict(config.get('Labels') or {})
        labels = dict((k, v) for k, v in raw_labels.items() if image_labels.get(k) != v)
        mode = _network_mode(host)
        pod = self._pod_name(data.get('Pod'))
        if pod:
            networks = None  # the pod's
        elif mode == 'bridge':
            networks = sorted((data.get('NetworkSettings') or {}).get('Networks') or {})
        else:
            networks = [mode]
        spec = {
            'image': data.get('ImageName') or config.get('Image'),
            'image_id': data.get('Image'),
            # None: the image's default command (so that a new image brings its own default)
            'command': list(config['Cmd']) if config.get('Cmd') and config['Cmd'] != image.get('Cmd') else None,
            'env': env,
            'ports': _ports(host.get('PortBindings')),
            'volumes': _volumes(data.get('Mounts')),
            'networks': networks,
            'restart_policy': _restart_policy(host.get('RestartPolicy')),
            'labels': labels,
            'memory': _mib(host.get('Memory')),
            'cpus': _cpus(host),
            'pod': pod,
            'healthcheck': phealth.normalize(config, image),
        }
        status = (data.get('State') or {}).get('Status') or 'unknown'
        return {'name': data.get('Name'), 'id': data.get('Id'), 'state': run_state(status), 'status': status,
                'exit_code': (data.get('State') or {}).get('ExitCode'), 'spec': spec, 'network_mode': mode,
                'raw_env': raw_env, 'raw_labels': raw_labels, 'raw_command': config.get('Cmd'),
                'raw_healthcheck': config.get('Healthcheck')}

    def _pod_name(self, pod_id):
        """The name of the pod ``pod_id`` (inspect gives the ID only), or ``None``."""
        if not pod_id:
            return None
        if pod_id not in self._pods:
            try:
                self._pods[pod_id] = self.client.inspect_pod(pod_id).get('Name') or pod_id
            except NotFound:
                self._pods[pod_id] = pod_id
        return self._pods[pod_id]

    def describe(self, actual):
        return {'name': actual['name'], 'id': actual['id'], 'state': actual['state'],
                'status': actual['status'], 'exit_code': actual['exit_code'], 'spec': dict(actual['spec'])}

    # -- desired spec -----------------------------------------------------------
    def align(self, partial, actual):
        """A value the user sets explicitly is theirs even when the image or podman set it too."""
        if actual is None:
            return None
        spec = dict(actual['spec'], env=dict(actual['spec']['env']), labels=dict(actual['spec']['labels']))
        for key, raw in (('env', 'raw_env'), ('labels', 'raw_labels')):
            for name, value in (partial.get(key) or {}).items():
                if name not in spec[key] and actual[raw].get(name) == value:
                    spec[key][name] = value
        if partial.get('command') is not None and spec['command'] is None and \
                partial['command'] == actual['raw_command']:
            spec['command'] = list(partial['command'])
        if partial.get('healthcheck') is not None and spec['healthcheck'] is None:
            spec['healthcheck'] = phealth.chealth.from_inspect(actual['raw_healthcheck'])
        return dict(actual, spec=spec)

    def desired(self, partial, actual):
        if actual is None and not partial.get('image'):
            raise SpecError('image', 'is required to create a container (the container does not exist yet)')
        spec = cspec.merge(partial, actual['spec'] if actual else None)
        if 'image' in partial:
            spec['image_id'] = self._resolve_image(partial['image'])
            if actual is not None and spec['image_id'] == actual['spec']['image_id']:
                spec['image'] = actual['spec']['image']  # the same image, perhaps by another name
        old = actual['spec'] if actual else {}
        self._check_pod(partial, spec, old)
        mode = set(spec['networks'] or []) & set(cspec.NETWORK_MODES)
        if spec['ports'] and mode:
            # podman drops the port mappings of such a container: it would be recreated on every run
            raise SpecError('ports', 'a container on network %s publishes no ports (podman discards them); remove '
                                     'ports, or set networks to a network such as podman' % mode.pop())
        for network in spec['networks'] or []:
            if network not in cspec.NETWORK_MODES and network not in (old.get('networks') or []) \
                    and not self.client.network_exists(network):
                raise SpecError('networks', 'network %r does not exist: create it first (podman network create %s, '
                                            'or virtfleet.virt.network) or use one of: %s'
                                % (network, network, ', '.join(self.client.list_network_names()) or 'none'))
        for volume in spec['volumes']:
            source = volume.split(':')[0]
            if source.startswith('/') and volume not in (old.get('volumes') or []) and not os.path.exists(source):
                raise SpecError('volumes', 'the host path %s does not exist: create it first or fix the volume %r'
                                % (source, volume))
        return spec

    def _check_pod(self, partial, spec, old):
        """A container in a pod publishes no ports and joins no networks of its own: they are the pod's."""
        if not spec['pod']:
            return
        given = [key for key in ('ports', 'networks') if partial.get(key)]
        if given:
            raise SpecError(given[0], 'cannot be set on a container in pod %s (it shares the pod\'s network): remove '
                                      '%s, and publish ports or choose networks on the pod (virtfleet.virt.'
                                      'container_pod)' % (spec['pod'], ' and '.join(given)))
        spec.update(ports=[], networks=None)
        if spec['pod'] != old.get('pod') and not self.client.pod_exists(spec['pod']):
            raise SpecError('pod', 'pod %r does not exist: create it first (virtfleet.virt.container_pod)'
                            % spec['pod'])

    def _resolve_image(self, ref):
        """The ID of the local image ``ref`` names; ``None`` when it must be pulled first."""
        try:
            return self.client.inspect_image(ref)['Id']
        except NotFound:
            pass
        if not self.pull:
            raise SpecError('image', '%r is not present in local storage and pull is false: load, import or build '
                                     'it on this host first (podman load, podman import, podman build)' % ref)
        self.found.warnings.append(
            'image %s is not present in local storage: it is pulled before the container is created' % ref)
        return None

    def _ensure_image(self, spec):
        if spec['image_id'] is not None:
            return
        try:
            self.client.pull_image(spec['image'])
            spec['image_id'] = self.client.inspect_image(spec['image'])['Id']
        except (BackendError, NotFound) as exc:
            raise SpecError('image', '%r is not present in local storage and pulling it failed (%s). Nothing was '
                                     'changed. The image must be present locally (podman load, podman import, '
                                     'podman build) or pullable from a registry this host can reach.'
                            % (spec['image'], exc.msg))

    # -- writing ------------------------------------------------------------------
    def create(self, name, spec):
        self._ensure_image(spec)
        self.client.create_container(create_options(name, spec), spec['image'], spec['command'])

    def plan_update(self, actual, spec):
        changes = cspec.changed_fields(actual['spec'], spec)
        recreate, updates = [], []
        for field in changes:
            # into a pod, networks becomes None (the pod's): that recreates, as the pod change does
            if field == 'networks' and actual['network_mode'] == 'bridge' and spec['networks'] is not None and \
                    not set(spec['networks']) & set(cspec.NETWORK_MODES):
                updates.append(field)
            elif field in _UPDATABLE and spec[field] is not None and self.client.persistent_update():
                updates.append(field)
            elif field == 'image_id' and 'image' in changes:
                continue  # one reason is enough
            else:
                recreate.append(field)
        details = {'spec': spec, 'recreate': recreate, 'updates': updates}
        extra = {'recreated': bool(recreate), 'recreate_reasons': recreate}
        if not recreate:
            return Plan(changes, details=details, extra=extra)
        # the new container ends in the task's run state, or (state: present) runs as the old one did
        was = actual['state']
        end = self.target or ('stopped' if was == 'stopping' else was)
        return Plan(changes, details=details, extra=extra, actions=recreation_actions(was, end), state=end)

    def apply_update(self, actual, plan):
        spec = plan.details['spec']
        if plan.details['recreate']:
            self._ensure_image(spec)
            Recreation(self.client, self.run).replace(actual, spec, plan.actions)
            return None
        name = actual['id']
        fields = [f for f in plan.details['updates'] if f in _UPDATABLE]
        if fields:
            opts = resource_options(spec, fields)
            if 'restart_policy' in fields:
                opts += ['--restart', spec['restart_policy']]
            self.client.update_container(name, opts)
        if 'networks' in plan.details['updates']:
            old, new = set(actual['spec']['networks']), set(spec['networks'])
            for network in sorted(new - old):
                self.client.network_connect(network, name)
            for network in sorted(old - new):
                self.client.network_disconnect(network, name)
        return None

    def delete(self, actual, options):
        self.client.remove_container(actual['id'])
        return None

    # -- run state ----------------------------------------------------------------
    def state(self, name):
        return self.run.state(name)

    def steps(self, current, target):
        steps = cspec.run_steps(current, target)
        if steps is None:
            raise BackendError('cannot bring a container from state %s to %s' % (current, target))
        return [Step(action, until) for action, until in steps]

    def perform(self, name, action):
        return self.run.perform(name, action)

    # -- health (wait_healthy) --------------------------------------------------------
    def check_health(self, spec):
        phealth.check_health(spec, self._image_config(spec['image_id']) if spec.get('image_id') else {})

    def health(self, name):
        return phealth.health(self.client.inspect_container(name))

    def run_health_check(self, name):
        self.client.run_healthcheck(name)

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What creates a Podman container: the ``podman create`` options of a spec, and the recreation that
replaces a container by one built from a new spec. The recreation creates the new container under
a temporary name first (which checks image, volumes and networks), stops the old one, then swaps
the names; when the new one fails to start, the old one is put back as it was.
"""

from __future__ import annotations

import time
import uuid

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_spec as cspec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_container_health import health_options
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError

MIB = 1024 ** 2


def create_options(name, spec):
    """``podman create`` options for ``spec`` (the image and command follow them)."""
    opts = ['--name', name, '--pull', 'never'] + (['--pod', spec['pod']] if spec.get('pod') else [])
    for key, value in sorted(spec['env'].items()):
        opts += ['--env', '%s=%s' % (key, value)]
    for key, value in sorted(spec['labels'].items()):
        opts += ['--label', '%s=%s' % (key, value)]
    for port in spec['ports']:
        opts += ['--publish', publish_option(port)]
    for volume in spec['volumes']:
        opts += ['--volume', volume]
    for network in spec['networks'] or []:
        opts += ['--network', network]
    if spec['restart_policy'] != 'no':
        opts += ['--restart', spec['restart_policy']]
    opts += resource_options(spec)
    return opts + health_options(spec)


def publish_option(port):
    """A canonical port as ``podman --publish`` takes it."""
    ip, host_port, container_port, protocol = cspec.parse_canonical_port(port)
    target = '%d/%s' % (container_port, protocol)
    if ip == '0.0.0.0':
        return '%d:%s' % (host_port, target) if host_port else target
    return '%s:%s:%s' % ('[%s]' % ip if ':' in ip else ip, host_port or '', target)


def resource_options(spec, fields=('memory', 'cpus')):
    opts = []
    if 'memory' in fields and spec['memory'] is not None:
        opts += ['--memory', '%db' % int(round(spec['memory'] * MIB))]
    if 'cpus' in fields and spec['cpus'] is not None:
        opts += ['--cpus', '%g' % spec['cpus']]
    return opts


def recreation_actions(was, end):
    """The run-state actions of a recreation: the old container (in state ``was``) stopped, the new one
    brought to ``end``."""
    actions = ['unpause'] if was == 'paused' else []
    actions += ['stop'] if was != 'stopped' else []
    actions += ['start'] if end in ('running', 'paused') else []
    return actions + (['pause'] if end == 'paused' else [])


class Recreation:
    """Replaces containers; ``run`` is the ``RunState`` that starts the new one (or the old one again)."""

    def __init__(self, client, run):
        self.client = client
        self.run = run

    def replace(self, actual, spec, actions):
        """Replace the container by one built from ``spec``, taking the run-state ``actions`` of the plan
        (the old container stopped, the new one started); roll back on failure. A rollback removes what the
        attempt created (the new container, named volumes podman created for it); an error says which
        run-state actions the old container went through (``details['actions']``)."""
        name, old_id, was = actual['name'], actual['id'], actual['state']
        suffix = uuid.uuid4().hex[:8]
        new_volumes = self._missing_volumes(actual, spec)
        try:
            new_id = self.client.create_container(create_options('%s-vfnew-%s' % (name, suffix), spec),
                                                  spec['image'], spec['command'])
        except BackendError:
            self._remove_volumes(new_volumes)
            raise
        renamed = False
        done = []  # what the old container went through
        try:
            if 'unpause' in actions:
                self.client.unpause_container(old_id)
                done.append('unpause')
            if 'stop' in actions:
                self.client.stop_container(old_id, self.run.stop_timeout)
                done.append('stop')
            self.client.rename_container(old_id, '%s-vfold-%s' % (name, suffix))
            renamed = True
            self.client.rename_container(new_id, name)
            if 'start' in actions:
                self.run.start(new_id, name)
            if 'pause' in actions:
                self.client.pause_container(new_id)
        except BackendError as exc:
            self._roll_back(name, old_id, new_id, was, renamed, exc, done, new_volumes)
        try:
            self._remove_old(old_id)
        except BackendError as exc:
            # the new container is in place: the change was made, only the old one is left over
            raise BackendError('container %s was recreated with the new spec, but removing the old container '
                               '(ID %s, renamed %s-vfold-%s) failed: %s. Remove it with podman rm -f %s'
                               % (name, old_id[:12], name, suffix, exc.msg, old_id[:12]), performed=True)

    def _missing_volumes(self, actual, spec):
        """The named volumes of ``spec`` that do not exist yet: ``podman create`` creates them."""
        used = set(v.split(':')[0] for v in actual['spec']['volumes'])
        names = [v.split(':')[0] for v in spec['volumes'] if not v.startswith('/')]
        return [n for n in names if n not in used and not self.client.volume_exists(n)]

    def _remove_volumes(self, names):
        """Remove the named volumes an attempt created; the names of those left behind."""
        left = []
        for volume in names:
            try:
                if self.client.volume_exists(volume):
                    self.client.remove_volume(volume)
            except BackendError as exc:
                left.append('volume %s was created for the new container and is left over: %s' % (volume, exc.msg))
        return left

    def _remove_old(self, old_id, attempts=3):
        """Remove the replaced container; podman may be restarting it (a restart policy and a command that
        exits at once) and refuse for a moment, so try again."""
        for attempt in range(attempts):
            try:
                return self.client.remove_container(old_id, force=True)
            except BackendError:
                if attempt == attempts - 1:
                    raise
                time.sleep(1)

    def _roll_back(self, name, old_id, new_id, was, renamed, exc, done, new_volumes):
        """Put the old container back; ``done``: the run-state actions it went through for the recreation."""
        problems, restored = [], []
        steps = [(None, lambda: self.client.remove_container(new_id, force=True))]
        if renamed:
            steps.append((None, lambda: self.client.rename_container(old_id, name)))
        if was in ('running', 'paused'):
            steps.append(('start', lambda: self.run.start(old_id, name)))
        if was == 'paused':
            steps.append(('pause', lambda: self.client.pause_container(old_id)))
        for action, step in steps:
            try:
                step()
                if action and done:  # a start of a container that was never stopped changes nothing
                    restored.append(action)
            except BackendError as rollback_exc:
                problems.append(rollback_exc.msg)
        problems += self._remove_volumes(new_volumes)
        # stopped and started again (its processes restarted): a change, reported as one
        actions = (['%s (the old container, for the recreation)' % action for action in done]
                   + ['%s (the old container again, the recreation failed)' % action for action in restored])
        if problems:
            raise BackendError('recreating container %s failed (%s) and restoring the old container (ID %s) failed '
                               'too: %s' % (name, exc.msg, old_id[:12], '; '.join(problems)), actions=actions)
        if actions:
            raise BackendError('recreating container %s failed: %s. The old container (ID %s) was restored with its '
                               'spec as it was, after a %s.' % (name, exc.msg, old_id[:12], ' and '.join(done + restored)),
                               actions=actions)
        raise BackendError('recreating container %s failed: %s. The old container (ID %s) was restored as it was.'
                           % (name, exc.msg, old_id[:12]))

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
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError

MIB = 1024 ** 2


def create_options(name, spec):
    """``podman create`` options for ``spec`` (the image and command follow them)."""
    opts = ['--name', name, '--pull', 'never']
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
    return opts


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
        (the old container stopped, the new one started); roll back on failure."""
        name, old_id, was = actual['name'], actual['id'], actual['state']
        suffix = uuid.uuid4().hex[:8]
        new_id = self.client.create_container(create_options('%s-vfnew-%s' % (name, suffix), spec),
                                              spec['image'], spec['command'])
        renamed = False
        try:
            if 'unpause' in actions:
                self.client.unpause_container(old_id)
            if 'stop' in actions:
                self.client.stop_container(old_id, self.run.stop_timeout)
            self.client.rename_container(old_id, '%s-vfold-%s' % (name, suffix))
            renamed = True
            self.client.rename_container(new_id, name)
            if 'start' in actions:
                self.run.start(new_id, name)
            if 'pause' in actions:
                self.client.pause_container(new_id)
        except BackendError as exc:
            self._roll_back(name, old_id, new_id, was, renamed, exc)
        try:
            self._remove_old(old_id)
        except BackendError as exc:
            # the new container is in place: the change was made, only the old one is left over
            raise BackendError('container %s was recreated with the new spec, but removing the old container '
                               '(ID %s, renamed %s-vfold-%s) failed: %s. Remove it with podman rm -f %s'
                               % (name, old_id[:12], name, suffix, exc.msg, old_id[:12]), performed=True)

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

    def _roll_back(self, name, old_id, new_id, was, renamed, exc):
        problems = []
        for step in (lambda: self.client.remove_container(new_id, force=True),
                     lambda: renamed and self.client.rename_container(old_id, name),
                     lambda: was in ('running', 'paused') and self.run.start(old_id, name),
                     lambda: was == 'paused' and self.client.pause_container(old_id)):
            try:
                step()
            except BackendError as rollback_exc:
                problems.append(rollback_exc.msg)
        if problems:
            raise BackendError('recreating container %s failed (%s) and restoring the old container (ID %s) failed '
                               'too: %s' % (name, exc.msg, old_id[:12], '; '.join(problems)))
        raise BackendError('recreating container %s failed: %s. The old container (ID %s) was restored as it was.'
                           % (name, exc.msg, old_id[:12]))

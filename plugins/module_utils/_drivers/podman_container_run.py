# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run state of a Podman container: podman's status as a run state of the collection, and the
run-state actions (a start checks that the container keeps running)."""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, VirtError

_STATES = {'running': 'running', 'paused': 'paused', 'stopping': 'stopping'}


def run_state(status):
    """Podman's status (created, exited, running, ...) as a run state of the collection."""
    return _STATES.get(status, 'stopped')


def _footprint(data):
    """What a start can change in ``podman inspect`` of a container, by name."""
    state = data.get('State') or {}
    footprint = dict(('State.%s' % key, state.get(key)) for key in ('Status', 'StartedAt', 'FinishedAt', 'ExitCode'))
    footprint.update(('Config.%s' % key, value) for key, value in (data.get('Config') or {}).items())
    return footprint


class RunState:
    """Reads and changes the run state of containers."""

    def __init__(self, client, stop_timeout=None):
        self.client = client
        self.stop_timeout = stop_timeout

    def state(self, ref):
        return run_state((self.client.inspect_container(ref).get('State') or {}).get('Status'))

    def start(self, ref, name):
        before = _footprint(self.client.inspect_container(ref))
        try:
            self.client.start_container(ref)
        except BackendError as exc:
            # podman prepares the container before the runtime starts it (it adds HOME and HOSTNAME to its
            # environment, for one) and keeps that when the start fails: a change, reported with the error
            try:
                after = _footprint(self.client.inspect_container(ref))
            except VirtError:
                after = None
            changed = sorted(key for key in before if after is None or after[key] != before[key])
            if changed:
                exc.details.setdefault('actions', []).append(
                    'start failed, but podman changed the container (%s)' % ', '.join(changed))
            raise
        state = self.client.inspect_container(ref).get('State') or {}
        if run_state(state.get('Status')) != 'running':
            logs = self.client.container_logs(ref).strip()
            raise BackendError('container %s stopped right after it started (status %s, exit code %s)%s'
                               % (name, state.get('Status'), state.get('ExitCode'),
                                  '; its last output: %s' % logs[-500:] if logs else ''), performed=True)

    def perform(self, name, action):
        if action == 'wait':
            return
        if action == 'start':
            self.start(name, name)
        elif action == 'stop':
            self.client.stop_container(name, self.stop_timeout)
        elif action == 'unpause':
            self.client.unpause_container(name)
        else:  # pragma: no cover - the step table names only the actions above
            raise BackendError('unknown container action %s' % action)

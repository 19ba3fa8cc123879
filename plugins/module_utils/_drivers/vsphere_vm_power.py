# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The power steps of a vSphere VM: its state, the steps between states and the actions (PowerOnVM_Task,
SuspendVM_Task, ShutdownGuest, PowerOffVM_Task). Starting or stopping the VM first writes the changes that were
pending a restart (``_apply_pending``, reported as the action ``applied pending: ...``); a template is never
started.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result, Step


class PowerSteps:
    """The power steps of ``VSphereVMDriver`` (a mixin: they use the driver's client, its reading and the
    ``_reconfigure`` and ``_customize`` steps of ``UpdateSteps``)."""

    def _ref(self, name):
        if name not in self._refs:
            if self.read(name) is None:
                raise NotFound('VM %s does not exist' % name)
        return self._refs[name]

    def _refuse_template(self, name):
        actual = self.read(name)
        if actual is not None and actual['spec']['template']:
            raise SpecError('template', 'VM %s is a template and is never started; set template: false to make it '
                            'a VM first' % name)

    def state(self, name):
        return self.client.vm_state(self._ref(name))

    def steps(self, current, target):
        return [Step(action, until, graceful=graceful, escalate='power_off' if graceful else None)
                for action, until, graceful in _vm_spec.power_steps(current, target)]

    def _apply_pending(self, name):
        """Write the changes that waited for the VM to stop (``virtfleet.pending``, a customization), reported
        as an action."""
        actual = self.read(name)
        if actual is None:
            return None
        if actual['spec']['template']:
            return None
        done = sorted(actual['pending'])
        if actual['pending']:
            plan = Plan(['pending'], details={'spec': actual['spec'], 'live': dict(actual['pending']), 'cold': {}})
            self._reconfigure(dict(actual, state='stopped'), plan)
        if actual['customization_pending'] and actual['spec']['customization']:
            self._customize(dict(actual, state='stopped'), actual['spec'])
            done.append('customization')
        if not done:
            return None
        return Result(actions=['applied pending: %s' % ', '.join(done)])

    def settle_stopped(self, name):
        """After a run stopped the VM (or changed it and left it stopped): the changes that were pending a restart
        are written now, as the next start would, so a second run of the same task finds nothing to do."""
        return self._apply_pending(name)

    def perform(self, name, action):
        if action == 'wait':
            return None
        ref = self._ref(name)
        if action in ('start', 'start_paused', 'resume'):
            self._refuse_template(name)
        if action in ('start', 'start_paused'):
            applied = self._apply_pending(name)
            try:
                self.client.power_on(ref, name)
            except VirtError as exc:
                if applied is not None:  # the pending changes were written: reported with the failure
                    exc.details['actions'] = applied.actions
                raise
            if action == 'start_paused':
                self.client.suspend(ref, name)
            return applied
        elif action == 'resume':
            self.client.power_on(ref, name)
        elif action == 'suspend':
            self.client.suspend(ref, name)
        elif action == 'shutdown':
            if not self.client.shutdown_guest(ref, name):
                # the reconcile loop goes on with force (power off after shutdown_timeout), fails without
                raise BackendError('VM %s cannot be shut down gracefully: VMware Tools are not running in the guest. '
                                   'Set force: true to power it off (after shutdown_timeout; 0 powers it off at once)'
                                   % name, not_graceful=True)
        elif action in ('power_off', 'destroy'):
            self.client.power_off(ref, name)
        else:
            raise BackendError('the power action %s is not available on vSphere' % action)
        return None

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The power steps of ``LibvirtVMDriver``: the state of a VM now, the steps from one state to another and
running one power action (start, shutdown, destroy, suspend, resume, wakeup)."""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml as domxml
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Result, Step

# QEMU's answer to 'cont' for a guest stopped on an internal error or a panic
_RESET_REQUIRED = 'Resetting the Virtual Machine is required'


class PowerSteps:
    """The power steps of ``LibvirtVMDriver`` (a mixin: they use the driver's client)."""

    def state(self, name):
        return self.client.domain_state(self.client.lookup_domain(name))

    def steps(self, current, target):
        return [Step(action, until, graceful=graceful, escalate='destroy' if graceful else None)
                for action, until, graceful in _vm_spec.power_steps(current, target)]

    def perform_graceful(self, name, action, mode):
        if action != 'shutdown' or not mode:
            return self.perform(name, action)
        try:
            self.client.shutdown_domain_via(self.client.lookup_domain(name), mode)
        except BackendError as exc:
            if mode != 'agent':
                raise
            # no agent answers: with force the guest is powered off after shutdown_timeout, as for any guest
            # that ignores the request
            raise BackendError('%s (shutdown_mode: agent needs guest_agent: true and the agent running in the '
                               'guest; use acpi or any otherwise)' % exc.msg, not_graceful=True)
        return None

    def perform(self, name, action):
        """Run one power action; returns a warning when the VM had crashed before."""
        if action == 'wait':
            return None
        dom = self.client.lookup_domain(name)
        if action in ('start', 'start_paused') and domxml.parse(self.client.domain_xml(dom, inactive=True))[2]['template']:
            raise SpecError('template', 'VM %s is a template, which is never started: set template: false to make it '
                                        'a VM again, or clone it (clone_from)' % name)
        crashed = action in ('start', 'start_paused', 'destroy') and self.client.domain_crashed(dom)
        if action == 'start':
            self.client.start_domain(dom)
        elif action == 'start_paused':
            self.client.start_domain(dom, paused=True)
        elif action == 'shutdown':
            self.client.shutdown_domain(dom)
        elif action == 'destroy':
            self.client.destroy_domain(dom)
        elif action == 'suspend':
            self.client.suspend_domain(dom)
        elif action == 'resume':
            try:
                self.client.resume_domain(dom)
            except BackendError as exc:
                if _RESET_REQUIRED not in exc.msg:
                    raise
                # QEMU stopped the guest on an internal error or a guest panic (libvirt: paused, reason
                # unknown or crashed): it cannot run on, only be reset - handled like a crashed VM
                self.client.destroy_domain(dom)
                destroyed = 'destroy (it could not be resumed: %s)' % exc.msg
                try:
                    self.client.start_domain(dom)
                except BackendError as err:
                    err.details['actions'] = [destroyed]
                    raise
                return Result(actions=[destroyed, 'start'],
                              warnings=['VM %s had stopped on an internal error or a guest crash (QEMU refused to '
                                        'resume it: the VM must be reset); it was powered off and started again' % name])
        elif action == 'wakeup':
            self.client.wakeup_domain(dom)
        else:  # pragma: no cover - the step table names only the actions above
            raise BackendError('unknown power action %s' % action)
        if not crashed:
            return None
        if action == 'destroy':
            return Result(warnings=['VM %s was in the crashed state; it was powered off' % name])
        return Result(warnings=['VM %s had crashed (its QEMU process ended without a shutdown; libvirt reports it '
                                'shut off, reason crashed); it was started again' % name])

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The update steps of a vSphere VM: what an update changes (``plan_update``), and writing it
(``apply_update``): the hardware and devices (ReconfigVM_Task; what a running VM cannot take now is recorded
pending a restart, ``vsphere_vm_config``) and the guest customization (``vsphere_vm_clone``). A template is
changed as a VM and marked a template again.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_clone as clones
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_config as vmconfig
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_devices as devices
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result


class UpdateSteps:
    """The steps of ``VSphereVMDriver`` that plan and apply an update and customize a VM (a mixin: they use the
    driver's client, inventory, placement and the template steps of ``CloneSteps``)."""

    def plan_update(self, actual, spec):
        """What changes; hardware a running VM cannot take now goes to ``cold`` (pending restart)."""
        running = actual['state'] in self.restartable_states
        changes, live, cold = vmconfig.plan(actual, spec, vmconfig.option_values(self.placement), running)
        custom = spec.get('customization') is not None and spec['customization'] != actual['spec']['customization']
        later = running and (custom or actual.get('customization_pending'))
        return Plan(changes, reboot_required=bool(cold) or bool(later),
                    details={'spec': spec, 'live': live, 'cold': cold})

    def apply_update(self, actual, plan):
        spec, name, ref = plan.details['spec'], actual['name'], actual['ref']
        was_template = actual['spec']['template']
        others = [c for c in plan.changes if c not in ('template', 'customization')]
        custom = spec.get('customization') is not None and spec['customization'] != actual['spec']['customization']
        made_vm = was_template and (others or custom or not spec['template'])
        if made_vm:
            # a template is changed as a VM (and marked again below)
            pool, host = self._vm_pool(actual)
            self.client.mark_as_vm(ref, name, pool['ref'], host['ref'] if host else None)
        wrote = []  # the steps that changed the VM, for an error after them
        try:
            result = self._update_steps(actual, plan, custom, wrote)
        except VirtError as exc:
            if made_vm:
                self._undo_mark_as_vm(exc, ref, name, wrote=bool(wrote))
            elif wrote:
                exc.details['performed'] = True
            raise
        if spec['template'] and (not was_template or others or custom):
            try:
                self.client.mark_as_template(ref, name)
            except VirtError as exc:
                # the VM was changed (and a template made a VM): a change, and the error says it is a VM now
                exc.msg = '%s: VM %s was updated (%s) but is not a template' % (exc.msg, name, ', '.join(plan.changes))
                exc.args = (exc.msg,)
                exc.details['performed'] = True
                raise
        return result

    def _update_steps(self, actual, plan, custom, wrote):
        spec, name = plan.details['spec'], actual['name']
        others = [c for c in plan.changes if c not in ('template', 'customization')]
        result = Result()
        if others:
            result = self._reconfigure(actual, plan)
            wrote.append('reconfigured')
        if custom:
            later = self._customize(actual, spec)
            result.reboot_required = bool(result.reboot_required) or later
            if later:
                result.unless_restarted.append(
                    'the customization of VM %s is applied when this collection next stops or starts it: vSphere '
                    'customizes a powered-off VM, at its next power-on' % name)
            elif actual['spec']['customization'] is not None:
                result.warnings.append('the new customization of VM %s applies at its next power-on' % name)
        return result

    def _customize(self, actual, spec):
        """Customize a powered-off VM now, a running one when it is next stopped or started (True)."""
        later = actual['state'] != 'stopped'
        if not later:
            try:
                self.client.customize_vm(actual['ref'], actual['name'], spec['customization'],
                                         len(spec['interfaces']))
            except BackendError as exc:
                if 'CustomizationPending' not in exc.msg:
                    raise
                raise BackendError(
                    'VM %s was not customized: vSphere refuses a new guest customization while an earlier one is '
                    'still pending (it was customized and has not been powered on since; the pending one runs at '
                    'its next power-on). Power the VM on once (state: running; as a template: set template: false '
                    'first) so the pending customization runs, then set the new customization; or keep the '
                    'customization it has (%s)' % (actual['name'], exc.msg), **exc.details)
        try:
            self.client.reconfigure_vm(actual['ref'], actual['name'], {'extra_config': [
                (clones.CUSTOM_KEY, clones.stored(spec['customization'])),
                (clones.CUSTOM_PENDING_KEY, 'true' if later else '')]})
        except VirtError as exc:
            if not later:  # customized, but not recorded: a change all the same
                exc.details['performed'] = True
            raise
        return later

    def _reconfigure(self, actual, plan):
        spec, live, cold = plan.details['spec'], plan.details['live'], plan.details['cold']
        config = vmconfig.update(actual, spec, live, cold)
        if spec['disks'] != actual['spec']['disks'] or spec['interfaces'] != actual['spec']['interfaces']:
            hosts = [actual['host']] if actual['host'] else []
            config['devices'] = devices.device_changes(self.inventory(), actual, spec, actual['dc'], hosts,
                                                       actual['vsphere']['datastore'])
            grows = devices.grows_before_moves(actual, spec)
            if grows:
                self.client.reconfigure_vm(actual['ref'], actual['name'], {'devices': grows})
        self.client.reconfigure_vm(actual['ref'], actual['name'], config)
        return Result(reboot_required=bool(cold))

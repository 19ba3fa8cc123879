# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt VM driver: reads, plans and applies VM specs on one connection.

Reading VMs (one, all, a fleet's at once) is ``libvirt_vm_read``; the power steps are ``libvirt_vm_power``;
the checks of a desired spec against the host are ``libvirt_vm_checks``; the changes a running
guest takes live are ``libvirt_vm_live``.
"""

from __future__ import annotations

import random
import uuid

from ansible_collections.virtfleet.virt.plugins.module_utils import _cloud_init, _customization, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml as domxml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_vm_guest as guest
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_vm_live as live_changes
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import VMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_vm_checks import HostChecks
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_vm_power import PowerSteps
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_vm_read import ACTIVE, VMReads
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result


def check_machine_family(actual, spec):
    """Refuse to move a VM between the PCI (i440fx ``pc``) and PCI Express (``q35``) machines in place: its domain
    keeps the PCI controllers and device addresses of the machine it was defined with, which the other one rejects
    (libvirt: 'The PCI controller with index=0 must be model=pcie-root')."""
    old, new = actual['spec'].get('machine') or '', spec.get('machine') or ''
    if old and new and ('q35' in old) != ('q35' in new):
        raise SpecError('machine', 'VM %s is a %s machine and %s is %s: its PCI controllers and device addresses '
                                   'belong to the machine it was defined with, so the type cannot change in place. Keep '
                                   'machine: %s, or delete the VM and create it again with machine: %s'
                        % (actual['name'], old, new, 'PCI Express (q35)' if 'q35' in new else 'PCI (i440fx)',
                           old, new))


class LibvirtVMDriver(VMReads, PowerSteps, VMDriver):
    def __init__(self, client):
        super().__init__(client)
        self.host = HostChecks(client)
        self.seeds = guest.Seeds(client)
        self._cloner = None
        self._new = {}  # name -> what desired() fixed for a new VM: its UUID, and the clone's record and volumes

    @property
    def cloner(self):
        """The clone steps, imported on first use: they bring the storage code (a run that clones nothing does
        not load it)."""
        if self._cloner is None:
            from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_vm_clone as clones
            self._cloner = clones.Cloner(self.client)
        return self._cloner

    # -- desired spec -----------------------------------------------------------
    def desired(self, partial, actual):
        name = actual['name'] if actual else self.last_read()
        custom = partial.get('customization')
        if custom is not None and partial.get('cloud_init') is not None:
            raise SpecError('customization', 'and cloud_init both write the VM\'s one cloud-init seed: give one of them '
                                             '(extra cloud-config goes into customization.user_data)')
        if partial.get('template') and actual and actual['state'] in ACTIVE and not actual['spec']['template']:
            raise SpecError('template', 'VM %s is %s: a template never runs, stop it first (state: stopped), then mark '
                                        'it as a template' % (name, actual['state']))
        if custom is not None:
            partial = dict(partial, customization=_customization.stored(custom))
        base = actual['spec'] if actual else None
        new = {'uuid': str(uuid.uuid4())} if actual is None else None
        if partial.get('clone') and actual is not None:
            _check_cloned(actual, partial['clone'])
        elif partial.get('clone'):
            base, new['jobs'], new['clone'] = self._clone_base(name, partial['clone'])
        partial = guest.with_seed_disk(partial, actual)
        spec = _vm_spec.merge(partial, base)
        self.host.spec(partial, spec, base or {})
        if new is not None:
            self._new[name] = new
        if custom is not None:
            for nic in spec['interfaces']:  # the seed's network-config matches the NICs by MAC: fix them now
                nic['mac'] = nic.get('mac') or '52:54:00:%02x:%02x:%02x' % tuple(random.randint(0, 255) for _i in range(3))
            request = guest.customization_seed(name, custom, actual['uuid'] if actual else new['uuid'],
                                               [nic['mac'] for nic in spec['interfaces']])
            return self.seeds.desired(request, spec)
        if partial.get('cloud_init') is not None:
            return self.seeds.desired(partial['cloud_init'], spec)
        return guest.keep_attached(spec)

    def _clone_base(self, name, clone):
        """The spec a new clone starts from, the volumes to make and the record of its source."""
        source = self.read_one(self.client.lookup_domain, self._read_domain, clone['source'])
        if source is None:
            raise SpecError('clone_from', 'VM %r does not exist on %s: name an existing VM or template to clone'
                            % (clone['source'], self.client.uri))
        spec, jobs = self.cloner.plan(name, source, clone['linked'])
        return spec, jobs, {'name': source['name'], 'uuid': source['uuid'], 'linked': clone['linked']}

    def align(self, partial, actual):
        """The raw ``xml`` the user passes is part of the actual spec when the domain already has it."""
        if actual is None or not partial.get('xml'):
            return actual
        satisfied = domxml.fragment_satisfied(partial['xml'], actual['xml'])
        return dict(actual, spec=dict(actual['spec'], xml=partial['xml'] if satisfied else None))

    # -- writing ------------------------------------------------------------------
    def create(self, name, spec):
        new = self._new.pop(name, None) or {}
        made = self.cloner.create_volumes(new['jobs']) if new.get('jobs') else []
        seed = spec.get('cloud_init')
        new_seed = False
        try:
            new_seed = self.seeds.write(seed) if seed else False
            dom = self.client.define_domain(domxml.render(name, spec, new_uuid=new.get('uuid'), clone=new.get('clone')))
            if spec.get('autostart'):
                try:
                    self.client.set_autostart(dom, True)
                except BackendError:
                    self.client.undefine_domain(dom)
                    raise
        except VirtError as err:
            if new_seed:
                self._undo_seed(err, seed)
            self.cloner.remove_volumes(made)
            raise

    def _undo_seed(self, err, seed, made=True):
        """Remove the seed volume a failed definition wrote (``made``: it is new), or mark ``err`` with what stays:
        a seed the run could not remove, or one it rewrote (its old content is gone), is a change."""
        where = '%s/%s' % (seed['pool'], seed['volume'])
        if made:
            try:
                self.seeds.remove(seed)
                return
            except VirtError as exc:
                err.details['performed'] = True
                err.details.setdefault('actions', []).append('wrote cloud-init seed %s (removing it after the failure '
                                                             'failed: %s)' % (where, exc.msg))
                err.msg = '%s; the cloud-init seed %s it wrote is left behind' % (err.msg, where)
                err.args = (err.msg,)
                return
        err.details.setdefault('actions', []).append('rewrote cloud-init seed %s' % where)

    def plan_update(self, actual, spec):
        changes = _vm_spec.changed_fields(actual['spec'], spec)
        if 'machine' in changes:
            check_machine_family(actual, spec)
        ops, leftover = live_changes.plan(actual.get('live_spec'), spec)
        pending = self.pending_restart_fields(actual)
        new_seed = 'cloud_init' in changes and actual['state'] in ACTIVE
        return Plan(changes, reboot_required=bool(leftover or pending or new_seed),
                    details={'live_ops': ops, 'spec': spec})

    def apply_update(self, actual, plan):
        spec = plan.details['spec']
        dom = actual['dom']
        warnings = []
        new_seed = None
        if 'cloud_init' in plan.changes:
            new_seed = self.seeds.write(spec['cloud_init'])
            warnings.append(self.seeds.changed_warning(actual['name'], spec['cloud_init']))
        if 'customization' in plan.changes:
            warnings.append('the customization of VM %s changed: it applies at the next first boot of the instance '
                            '(cloud-init applies it once per instance-id, %s, which stays that of the VM\'s UUID)'
                            % (actual['name'], _cloud_init.instance_id(actual['uuid'])))
        persistent = [c for c in plan.changes if c not in ('autostart', 'cloud_init')]
        if persistent:
            try:
                self.client.define_domain(domxml.render(actual['name'], spec, base_xml=actual['xml']))
            except VirtError as err:
                if new_seed is not None:
                    self._undo_seed(err, spec['cloud_init'], made=new_seed)
                raise
        if 'autostart' in plan.changes:
            self.client.set_autostart(dom, spec['autostart'])
        if plan.details['live_ops']:
            warnings.extend(live_changes.LiveUpdate(self.client, dom).apply(actual, plan.details['live_ops']))
        after = self._read_domain(dom)
        reboot = bool(self.pending_restart_fields(after)) or ('cloud_init' in plan.changes and after['state'] in ACTIVE)
        return Result(warnings=warnings, reboot_required=reboot)

    def delete(self, actual, options):
        linked = guest.linked_clones(self.client, actual['uuid'])
        if linked and options.get('delete_volumes'):
            raise SpecError('delete_volumes', 'VM %s is the source of the linked clones %s: their disks are overlays '
                                              'on its volumes. Delete the clones first, or remove it without '
                                              'delete_volumes (its volumes stay)' % (actual['name'], ', '.join(linked)))
        volumes, kept = [], []
        if options.get('delete_volumes'):
            for disk in actual['spec']['disks']:
                if disk.get('device') != 'disk':
                    continue
                try:
                    if disk.get('volume'):
                        volumes.append(self.client.lookup_volume(disk['pool'], disk['volume']))
                    elif disk.get('path'):
                        volumes.append(self.client.lookup_volume_by_path(disk['path']))
                except NotFound:
                    kept.append(disk.get('path') or '%s/%s' % (disk.get('pool'), disk.get('volume')))
        self.client.undefine_domain(actual['dom'])
        deleted = []
        for vol in volumes:
            path = vol.path()
            self.client.delete_volume(vol)
            deleted.append(path)
        warnings = ['not deleted (not a volume of any libvirt storage pool): %s' % ', '.join(kept)] if kept else []
        if linked:
            warnings.append('VM %s was the source of the linked clones %s; its volumes, their backing files, were kept'
                            % (actual['name'], ', '.join(linked)))
        return Result(warnings=warnings, extra={'deleted_volumes': deleted})


def _check_cloned(actual, clone):
    """A VM that exists is never cloned again; but it must be the clone of the source the task names."""
    record = actual.get('cloned_from')
    if record is None or record['name'] != clone['source']:
        raise SpecError('clone_from', 'a different VM of that name exists: VM %s %s, not from %s. Nothing was '
                                      'changed: name the new VM otherwise, or leave clone_from out to manage this one'
                        % (actual['name'], 'was cloned from %s' % record['name'] if record else 'is not a clone',
                           clone['source']))

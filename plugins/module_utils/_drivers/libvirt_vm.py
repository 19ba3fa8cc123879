# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt VM driver: reads, plans and applies VM specs on one connection.

The checks of a desired spec against the host are ``libvirt_vm_checks``; the changes a running
guest takes live are ``libvirt_vm_live``.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

from ansible_collections.virtfleet.virt.plugins.module_utils import _cloud_init, _customization, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml as domxml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_vm_guest as guest
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_vm_live as live_changes
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import VMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_vm_checks import HostChecks
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result, Step

# QEMU's answer to 'cont' for a guest stopped on an internal error or a panic
_RESET_REQUIRED = 'Resetting the Virtual Machine is required'
_ACTIVE = ('running', 'paused', 'shutting_down', 'crashed', 'pmsuspended')
# How long what ``prefetch`` read stands for a VM's state: a fleet's first reads happen within it; a read later
# in a long run (after slow starts) goes to libvirtd again, as a single VM's read does.
PREFETCH_SECONDS = 5.0
_UNREAD = object()


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


class LibvirtVMDriver(VMDriver):
    def __init__(self, client):
        super().__init__(client)
        self.host = HostChecks(client)
        self.seeds = guest.Seeds(client)
        self._cloner = None
        self._new = {}  # name -> what desired() fixed for a new VM: its UUID, and the clone's record and volumes
        self._reading = threading.local()  # the name this thread read last: desired() of a new VM needs it
        self._batch, self._batch_until = {}, 0.0  # prefetch(): name -> (dom, state, autostart) or None (absent)

    @property
    def cloner(self):
        """The clone steps, imported on first use: they bring the storage code (a run that clones nothing does
        not load it)."""
        if self._cloner is None:
            from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_vm_clone as clones
            self._cloner = clones.Cloner(self.client)
        return self._cloner

    # -- reading --------------------------------------------------------------
    def prefetch(self, names):
        """Read which of ``names`` exist, their state and autostart for every VM at once (``domain_states``:
        two calls, instead of three per VM); the next ``read`` of each name within ``PREFETCH_SECONDS`` uses
        it once (its definition is read then, as always), any later read asks libvirtd again."""
        found = self.client.domain_states()
        self._batch = dict((name, found.get(name)) for name in names)
        self._batch_until = time.monotonic() + PREFETCH_SECONDS

    def _prefetched(self, name):
        if not self._batch:
            return _UNREAD
        entry = self._batch.pop(name, _UNREAD)  # atomic: each entry serves one read
        return entry if time.monotonic() < self._batch_until else _UNREAD

    def read(self, name):
        self._reading.name = name
        entry = self._prefetched(name)
        if entry is None:  # absent when the VMs were listed
            return None
        if entry is not _UNREAD:
            try:
                return self._read_domain(*entry)
            except NotFound:  # removed since: read it again, as one VM
                pass
        return self.read_one(self.client.lookup_domain, self._read_domain, name)

    def _read_domain(self, dom, state=None, autostart=None):
        xml = self.client.domain_xml(dom, inactive=True)
        name, vm_uuid, spec = domxml.parse(xml)
        spec['autostart'] = self.client.domain_autostart(dom) if autostart is None else autostart
        spec['cloud_init'] = self.seeds.actual(_cloud_init.vm_seed_volume(name), spec['disks'])
        if state is None:
            state = self.client.domain_state(dom)
        live_xml = live_spec = None
        if state in _ACTIVE:
            live_xml = self.client.domain_xml(dom)
            live_spec = domxml.parse(live_xml)[2]
            # our metadata is the definition's: the running guest does not take it
            live_spec.update(template=spec['template'], customization=spec['customization'])
        return {'name': name, 'uuid': vm_uuid, 'state': state, 'spec': spec, 'live_spec': live_spec,
                'dom': dom, 'xml': xml, 'live_xml': live_xml, 'cloned_from': domxml.clone_record(xml)}

    def list(self):
        return self.read_all(self.client.domain_states().values(), lambda entry: self._read_domain(*entry))

    def describe(self, actual):
        # only a running guest with a NIC can have an address: skip the round trip otherwise
        has_nic = actual['state'] == 'running' and actual['spec']['interfaces']
        return {'name': actual['name'], 'uuid': actual['uuid'], 'state': actual['state'],
                'spec': dict(actual['spec']), 'pending_restart': self.pending_restart_fields(actual),
                'addresses': self.addresses(actual) if has_nic else [], 'cloned_from': actual.get('cloned_from')}

    def addresses(self, actual):
        return guest.addresses(self.client, actual['dom'])

    def address(self, name):
        actual = self.read(name)
        if actual is None or actual['state'] != 'running':
            return None
        macs = set(n.get('mac') for n in (actual['live_spec'] or actual['spec'])['interfaces'])
        return guest.first_ipv4(self.client, actual['dom'], macs, actual['spec']['guest_agent'])

    def pending_restart_fields(self, actual):
        """Fields whose persistent value the running guest has not picked up yet."""
        live = actual.get('live_spec')
        if not live:
            return []
        return [key for key in _vm_spec.FIELDS
                if key not in live_changes.NOT_LIVE_COMPARED and live.get(key) != actual['spec'].get(key)]

    # -- desired spec -----------------------------------------------------------
    def desired(self, partial, actual):
        name = actual['name'] if actual else getattr(self._reading, 'name', None)
        custom = partial.get('customization')
        if custom is not None and partial.get('cloud_init') is not None:
            raise SpecError('customization', 'and cloud_init both write the VM\'s one cloud-init seed: give one of them '
                                             '(extra cloud-config goes into customization.user_data)')
        if partial.get('template') and actual and actual['state'] in _ACTIVE and not actual['spec']['template']:
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
        new_seed = 'cloud_init' in changes and actual['state'] in _ACTIVE
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
        reboot = bool(self.pending_restart_fields(after)) or ('cloud_init' in plan.changes and after['state'] in _ACTIVE)
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

    # -- power --------------------------------------------------------------------
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


def _check_cloned(actual, clone):
    """A VM that exists is never cloned again; but it must be the clone of the source the task names."""
    record = actual.get('cloned_from')
    if record is None or record['name'] != clone['source']:
        raise SpecError('clone_from', 'a different VM of that name exists: VM %s %s, not from %s. Nothing was '
                                      'changed: name the new VM otherwise, or leave clone_from out to manage this one'
                        % (actual['name'], 'was cloned from %s' % record['name'] if record else 'is not a clone',
                           clone['source']))

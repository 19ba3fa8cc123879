# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vSphere VM driver: the interface of ``LibvirtVMDriver`` over ``VSphereClient``.

The normalized spec is the backend-neutral one of ``_vm_spec`` (memory in MiB,
vcpus, disks, interfaces, description, tags, ...).  vSphere specifics:

- disks: ``pool`` is the datastore and ``volume`` the file in it (``web1/web1.vmdk``);
  ``size`` (MiB) creates a new disk or grows one; targets ``sda..`` name SCSI/SATA
  slots (``sda`` = scsi0:0, unit 7 skipped) and ``hda..`` IDE slots (``vsphere_vm_devices``).
- interfaces: ``network`` is a port group (standard or distributed) name.
- description is the VM's annotation (Notes); tags are extraConfig entries
  ``virtfleet.tags.<name>`` whose values are JSON strings.
- ``max_memory``/``max_vcpus`` equal ``memory``/``vcpus``: vSphere has no separate
  ceiling; a running VM grows memory/vCPUs live only with memory/CPU hot-add enabled.
- A change a running VM cannot take (memory or vCPUs without hot-add or shrinking,
  firmware, hot-add settings, guest OS) is recorded in extraConfig ``virtfleet.pending``
  and reported in ``pending_restart`` with ``reboot_required``; it is applied when this
  collection next starts the VM (the action ``applied pending: ...`` before ``start``), stops
  it (the same action after ``shutdown``: ``settle_stopped``) or updates it while it is
  stopped (``vsphere_vm_config``).

Where a VM is found or created is ``vsphere_vm_placement``.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients.vsphere import VM_FULL, VM_LIGHT, STATE_NAMES
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_config as vmconfig
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_devices as devices
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_placement as placements
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_inventory import Inventory
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import VMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result, Step


class VSphereVMDriver(VMDriver):
    def __init__(self, client, placement=None):
        super().__init__(client)
        self.placement = dict((k, v) for k, v in (placement or {}).items() if v is not None)
        self._inv = None
        self._refs = {}

    # -- reading --------------------------------------------------------------------
    def inventory(self, vm_props=VM_LIGHT):
        if self._inv is None or vm_props is not VM_LIGHT:
            self._inv = Inventory(self.client.inventory(vm_props))
        return self._inv

    def read(self, name):
        inv = self.inventory()
        ref = self._refs.get(name)
        if ref is None:
            found = placements.candidates(inv, self.placement, name)
            if not found:
                return None
            ref = found[0]['ref']
        rows = self.client.vms([ref])
        if not rows:
            self._refs.pop(name, None)
            return None
        self._refs[name] = ref
        return self._actual(rows[0], inv)

    def list(self):
        inv = self.inventory(VM_FULL)
        return [self._actual(row, inv) for row in inv.rows('vms')
                if not row.get('config.template') and row.get('config.hardware.device') is not None]

    def _actual(self, row, inv):
        extra, tags, hardware, pending = vmconfig.read(row)
        config = dict(hardware, **pending)
        found = row.get('config.hardware.device') or []
        controllers, disks, disk_devices, interfaces, nic_devices = devices.read(found, inv)
        spec = dict(_vm_spec.DEFAULTS, domain_type=None, arch='x86_64', firmware=config['firmware'],
                    memory=config['memory'], max_memory=config['memory'], vcpus=config['vcpus'],
                    max_vcpus=config['vcpus'], disks=disks, interfaces=interfaces,
                    description=row.get('config.annotation') or None, tags=tags)
        spec = dict((key, spec.get(key)) for key in _vm_spec.FIELDS)
        host = inv.get(row.get('runtime.host'))
        compute = inv.compute_of_host(host['moid']) if host else None
        dc = inv.datacenter_of(row.get('parent'))
        vmx_store, _path = devices.split_file(row.get('config.files.vmPathName'))
        info = {
            'moid': row['moid'], 'instance_uuid': row.get('config.instanceUuid'),
            'datacenter': dc['name'] if dc else None,
            'cluster': compute['name'] if compute and compute['type'] == 'ClusterComputeResource' else None,
            'host': host['name'] if host else None,
            'resource_pool': (inv.get(row.get('resourcePool')) or {}).get('name'),
            'folder': inv.path(row['parent']) if row.get('parent') in inv.by_id else None,
            'datastore': vmx_store, 'guest_id': config['guest_id'],
            'memory_hot_add': config['memory_hot_add'], 'cpu_hot_add': config['cpu_hot_add'],
        }
        return {'name': row['name'], 'uuid': row.get('config.uuid'),
                'state': STATE_NAMES.get(row.get('runtime.powerState'), 'stopped'),
                'spec': spec, 'vsphere': info, 'hardware': hardware, 'pending': pending,
                'ref': row['ref'], 'row': row, 'devices': found, 'controllers': controllers,
                'disk_devices': disk_devices, 'nic_devices': nic_devices,
                'host': host, 'compute': compute, 'dc': dc, 'extra': extra}

    def describe(self, actual):
        return {'name': actual['name'], 'uuid': actual['uuid'], 'state': actual['state'],
                'spec': dict(actual['spec']), 'pending_restart': self.pending_restart_fields(actual),
                'vsphere': dict(actual['vsphere']),
                'addresses': self.addresses(actual) if actual['state'] == 'running' else []}

    def addresses(self, actual):
        labels = dict((d['key'], d.get('label')) for d in actual['devices'])
        found = []
        for nic in actual['row'].get('guest.net') or []:
            for addr in nic['addresses']:
                found.append({'interface': labels.get(nic['device_key']) or nic.get('network'), 'mac': nic['mac'],
                              'address': addr['address'], 'prefix': addr['prefix']})
        primary = actual['row'].get('guest.ipAddress')
        if primary and not any(item['address'] == primary for item in found):
            found.append({'interface': None, 'mac': None, 'address': primary, 'prefix': None})
        return found

    def address(self, name):
        actual = self.read(name)
        if actual is None or actual['state'] != 'running':
            return None
        return next((dict(item, source='tools') for item in self.addresses(actual)
                     if _vm_spec.usable_ipv4(item['address'])), None)

    def pending_restart_fields(self, actual):
        if actual['state'] not in self.restartable_states:
            return []
        fields = []
        for key in sorted(actual['pending']):
            fields.extend(['memory', 'max_memory'] if key == 'memory' else
                          ['vcpus', 'max_vcpus'] if key == 'vcpus' else [key])
        return fields

    # -- desired spec ---------------------------------------------------------------------
    def desired(self, partial, actual):
        devices.check_partial(partial)
        if partial.get('arch') not in (None, 'x86_64'):
            raise SpecError('arch', 'vSphere VMs here are x86_64')
        spec = _vm_spec.merge(partial, actual['spec'] if actual else None, devices.DEVICE_DEFAULTS)
        spec['max_memory'], spec['max_vcpus'] = spec['memory'], spec['vcpus']
        spec['domain_type'] = None
        spec['disks'].sort(key=devices.disk_order)
        # interfaces keep the order of their devices; new ones come last
        macs = [n.get('mac') for n in (actual['spec']['interfaces'] if actual else [])]
        spec['interfaces'].sort(key=lambda n: macs.index(n['mac']) if n.get('mac') in macs else len(macs))
        inv = self.inventory()
        if actual is None:
            target = placements.resolve(inv, self.placement)
            dc, hosts = target['dc'], target['hosts']
        else:
            placements.validate(inv, self.placement)
            dc, hosts = actual['dc'], [actual['host']] if actual['host'] else []
        devices.check(inv, dc, hosts, spec, actual)
        return spec

    # -- writing ---------------------------------------------------------------------------
    def create(self, name, spec):
        # as desired() found it: the inventory is read once
        target = placements.resolve(self.inventory(), self.placement)
        config = vmconfig.new(name, spec, vmconfig.option_values(self.placement), target['datastore']['name'])
        config['devices'] = devices.device_changes(self.inventory(), None, spec, target['dc'], target['hosts'],
                                                   target['datastore']['name'])
        ref = self.client.create_vm(target['folder']['ref'], target['pool']['ref'],
                                    target['host']['ref'] if target['host'] else None, config)
        self._refs[name] = ref
        return None

    def plan_update(self, actual, spec):
        """What changes; hardware a running VM cannot take now goes to ``cold`` (pending restart)."""
        changes, live, cold = vmconfig.plan(actual, spec, vmconfig.option_values(self.placement),
                                            actual['state'] in self.restartable_states)
        return Plan(changes, reboot_required=bool(cold), details={'spec': spec, 'live': live, 'cold': cold})

    def apply_update(self, actual, plan):
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

    def delete(self, actual, options):
        files = [d.get('file') for d in actual['devices'] if d['kind'] == 'disk' and d.get('file')]
        if options.get('delete_volumes'):
            self.client.destroy_vm(actual['ref'], actual['name'])
            deleted = files
        else:
            self.client.unregister_vm(actual['ref'], actual['name'])
            deleted = []
        self._refs.pop(actual['name'], None)
        return Result(extra={'deleted_volumes': deleted})

    # -- power ------------------------------------------------------------------------------
    def _ref(self, name):
        if name not in self._refs:
            if self.read(name) is None:
                raise NotFound('VM %s does not exist' % name)
        return self._refs[name]

    def state(self, name):
        return self.client.vm_state(self._ref(name))

    def steps(self, current, target):
        return [Step(action, until, graceful=graceful, escalate='power_off' if graceful else None)
                for action, until, graceful in _vm_spec.power_steps(current, target)]

    def _apply_pending(self, name):
        """Write the changes that waited for the VM to stop (``virtfleet.pending``), reported as an action."""
        actual = self.read(name)
        if actual is None or not actual['pending']:
            return None
        plan = Plan(['pending'], details={'spec': actual['spec'], 'live': dict(actual['pending']), 'cold': {}})
        self.apply_update(dict(actual, state='stopped'), plan)
        return Result(actions=['applied pending: %s' % ', '.join(sorted(actual['pending']))])

    def settle_stopped(self, name):
        """After a run stopped the VM (or changed it and left it stopped): the changes that were pending a restart
        are written now, as the next start would, so a second run of the same task finds nothing to do."""
        return self._apply_pending(name)

    def perform(self, name, action):
        if action == 'wait':
            return None
        ref = self._ref(name)
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

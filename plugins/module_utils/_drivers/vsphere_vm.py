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

Where a VM is found or created is ``vsphere_vm_placement``; templates, clones and guest customization are
``vsphere_vm_clone``; planning and writing an update is ``vsphere_vm_update``, the power steps ``vsphere_vm_power``.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients.vsphere import VM_FULL, VM_LIGHT, STATE_NAMES
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_clone as clones
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_config as vmconfig
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_devices as devices
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_placement as placements
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_power as power
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_update as updates
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_inventory import Inventory
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import VMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Result


# the most VM folders (and vApps) a name is looked up in one by one (FindChild); more: one query reads every VM name
FIND_CHILD_LIMIT = 25


class VSphereVMDriver(clones.CloneSteps, updates.UpdateSteps, power.PowerSteps, VMDriver):
    def __init__(self, client, placement=None):
        super().__init__(client)
        self.placement = dict((k, v) for k, v in (placement or {}).items() if v is not None)
        self._inv = None
        self._refs = {}
        self._clones = {}  # id(desired spec) -> how create() clones it

    # -- reading --------------------------------------------------------------------
    def inventory(self, vm_props=VM_LIGHT):
        """The run's inventory. With ``VM_LIGHT`` it is read without the VMs, which it reads (names, parents,
        template flags: one query) only when asked for them (``rows('vms')``); other ``vm_props``: one query
        with every VM with those properties."""
        if vm_props is not VM_LIGHT:
            self._inv = Inventory(self.client.inventory(vm_props))
        elif self._inv is None:
            self._inv = Inventory(self.client.inventory(None), load_vms=self.client.vm_rows)
        return self._inv

    def _find(self, inv, name):
        """The VM (or template) named ``name`` where the placement says, as ``placements.candidates`` finds it but
        without listing the VMs: FindChild in each VM folder (and vApp) that can hold it. Over
        ``FIND_CHILD_LIMIT`` of them, when the folder named is wrong (``candidates`` says so when a VM has the
        name) or when the VMs are read anyway: ``candidates`` over every VM's name (one query)."""
        parents = None
        if not inv.has_vms:
            try:
                parents = inv.vm_parents(self.placement.get('datacenter'), self.placement.get('folder'))
            except SpecError:
                parents = None
        if parents is None or len(parents) > FIND_CHILD_LIMIT:
            return placements.candidates(inv, self.placement, name)
        found = self.client.find_vms([p['ref'] for p in parents], name)
        if len(found) > 1:
            raise BackendError('%d VMs are named %s (%s); set datacenter and folder to say which one' % (
                len(found), name, ', '.join(sorted(inv.path(f['parent']) + '/' + name for f in found))))
        return found

    def read(self, name):
        inv = self.inventory()
        ref = self._refs.get(name)
        if ref is None:
            found = self._find(inv, name)
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
        return [self._actual(row, inv) for row in inv.rows('vms') if row.get('config.hardware.device') is not None]

    def from_row(self, row, inv):
        """The normalized VM (as ``read`` returns it) of a VM row the caller read with ``inv`` (e.g. the
        inventory plugin's ``inventory(VM_PROPS)``); ``describe`` makes it the module's view."""
        return self._actual(row, inv)

    def _actual(self, row, inv):
        extra, tags, hardware, pending = vmconfig.read(row)
        cloned_from, custom, custom_pending = clones.read(extra)
        config = dict(hardware, **pending)
        found = row.get('config.hardware.device') or []
        controllers, disks, disk_devices, interfaces, nic_devices = devices.read(found, inv)
        spec = dict(_vm_spec.DEFAULTS, domain_type=None, arch='x86_64', firmware=config['firmware'],
                    memory=config['memory'], max_memory=config['memory'], vcpus=config['vcpus'],
                    max_vcpus=config['vcpus'], disks=disks, interfaces=interfaces,
                    description=row.get('config.annotation') or None, tags=tags, customization=custom,
                    template=bool(row.get('config.template')))
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
            'guest_hostname': row.get('guest.hostName') or None,
        }
        return {'name': row['name'], 'uuid': row.get('config.uuid'),
                'state': STATE_NAMES.get(row.get('runtime.powerState'), 'stopped'),
                'spec': spec, 'vsphere': info, 'hardware': hardware, 'pending': pending,
                'ref': row['ref'], 'row': row, 'devices': found, 'controllers': controllers,
                'disk_devices': disk_devices, 'nic_devices': nic_devices,
                'host': host, 'compute': compute, 'dc': dc, 'extra': extra,
                'cloned_from': cloned_from, 'customization_pending': custom_pending}

    def describe(self, actual):
        return {'name': actual['name'], 'uuid': actual['uuid'], 'state': actual['state'],
                'spec': dict(actual['spec']), 'pending_restart': self.pending_restart_fields(actual),
                'vsphere': dict(actual['vsphere']),
                'cloned_from': dict(actual['cloned_from']) if actual.get('cloned_from') else None,
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
        fields = ['customization'] if actual.get('customization_pending') else []
        for key in sorted(actual['pending']):
            fields.extend(['memory', 'max_memory'] if key == 'memory' else
                          ['vcpus', 'max_vcpus'] if key == 'vcpus' else [key])
        return fields

    # -- desired spec ---------------------------------------------------------------------
    def desired(self, partial, actual):
        devices.check_partial(partial)
        if partial.get('arch') not in (None, 'x86_64'):
            raise SpecError('arch', 'vSphere VMs here are x86_64')
        clone, source = partial.get('clone'), None
        if actual is not None and clone:
            clones.check_existing(actual, clone)
        base = actual['spec'] if actual else None
        if actual is None and clone:
            source = self._source(clone)
            base = dict(source['spec'], template=False, customization=None)
        spec = _vm_spec.merge(partial, base, devices.DEVICE_DEFAULTS)
        spec['max_memory'], spec['max_vcpus'] = spec['memory'], spec['vcpus']
        spec['domain_type'] = None
        spec['disks'].sort(key=devices.disk_order)
        # interfaces keep the order of their devices; new ones come last
        macs = [n.get('mac') for n in (actual['spec']['interfaces'] if actual else [])]
        spec['interfaces'].sort(key=lambda n: macs.index(n['mac']) if n.get('mac') in macs else len(macs))
        inv = self.inventory()
        clones.check_customization(spec)
        if spec['template'] and actual is not None and not actual['spec']['template'] and \
                actual['state'] != 'stopped':
            raise SpecError('template', 'VM %s is %s; only a stopped VM becomes a template: stop it first '
                            '(state: stopped, in a task before this one)' % (actual['name'], actual['state']))
        if source is not None:
            target = clones.target(inv, self.placement, source)
            devices.check(inv, target['dc'], target['hosts'], spec, source)
            self._clones[id(spec)] = {'source': source, 'target': target, 'linked': clone['linked'],
                                      'snapshot': self._clone_snapshot(source, clone), 'partial': partial}
            return spec
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
        clone = self._clones.pop(id(spec), None)
        if clone is not None:
            return self._create_clone(name, clone)
        # as desired() found it: the inventory is read once
        target = placements.resolve(self.inventory(), self.placement)
        config = vmconfig.new(name, spec, vmconfig.option_values(self.placement), target['datastore']['name'])
        config['devices'] = devices.device_changes(self.inventory(), None, spec, target['dc'], target['hosts'],
                                                   target['datastore']['name'])
        ref = self.client.create_vm(target['folder']['ref'], target['pool']['ref'],
                                    target['host']['ref'] if target['host'] else None, config)
        self._refs[name] = ref
        if spec['template'] or spec.get('customization') is not None:
            # what a new VM's config cannot say: customized while it is off, then marked as a template
            actual = self.read(name)
            plan = self.plan_update(actual, spec)
            if plan.changes:
                return self.apply_update(actual, plan)
        return None

    def delete(self, actual, options):
        files = [d.get('file') for d in actual['devices'] if d['kind'] == 'disk' and d.get('file')]
        if actual['spec']['template']:
            # a template has no resource pool: made a VM first, so that it leaves its pool's list of VMs too
            pool, host = self._vm_pool(actual)
            self.client.mark_as_vm(actual['ref'], actual['name'], pool['ref'], host['ref'] if host else None)
        if options.get('delete_volumes'):
            self.client.destroy_vm(actual['ref'], actual['name'])
            deleted = files
        else:
            self.client.unregister_vm(actual['ref'], actual['name'])
            deleted = []
        self._refs.pop(actual['name'], None)
        return Result(extra={'deleted_volumes': deleted})

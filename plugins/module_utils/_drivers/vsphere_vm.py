# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vSphere VM driver: the interface of ``LibvirtVMDriver`` over ``VSphereClient``.

The normalized spec is the backend-neutral one of ``_vm_spec`` (memory in MiB,
vcpus, disks, interfaces, description, tags, ...).  vSphere specifics:

- disks: ``pool`` is the datastore and ``volume`` the file in it (``web1/web1.vmdk``);
  ``size`` (MiB) creates a new disk or grows one; targets ``sda..`` name SCSI/SATA
  slots (``sda`` = scsi0:0, unit 7 skipped) and ``hda..`` IDE slots.
- interfaces: ``network`` is a port group (standard or distributed) name.
- description is the VM's annotation (Notes); tags are extraConfig entries
  ``virtfleet.tags.<name>`` whose values are JSON strings.
- ``max_memory``/``max_vcpus`` equal ``memory``/``vcpus``: vSphere has no separate
  ceiling; a running VM grows memory/vCPUs live only with memory/CPU hot-add enabled.
- A change a running VM cannot take (memory or vCPUs without hot-add or shrinking,
  firmware, hot-add settings, guest OS) is recorded in extraConfig ``virtfleet.pending``
  and reported in ``pending_restart`` with ``reboot_required``; it is applied when this
  collection next starts the VM (the action ``applied pending: ...`` before ``start``) or
  updates it while it is stopped.
"""

from __future__ import annotations

import json
import string

try:
    from urllib.parse import quote, unquote
except ImportError:  # pragma: no cover - Python 2 is not supported by this collection
    quote = unquote = None

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients.vsphere import VM_FULL, VM_LIGHT, STATE_NAMES
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_inventory import Inventory
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import VMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result, Step

TAG_PREFIX = 'virtfleet.tags.'
PENDING_KEY = 'virtfleet.pending'
DEVICE_DEFAULTS = {'disk_bus': 'scsi', 'cdrom_bus': 'ide', 'nic_model': 'vmxnet3'}
DISK_BUSES = ('scsi', 'sata', 'ide')
NIC_MODELS = ('vmxnet3', 'e1000e', 'e1000')
DEFAULT_GUEST_ID = 'otherGuest64'
_SLOTS = {'scsi': 15, 'sata': 30, 'ide': 2}   # usable units per controller
_PREFIX = {'scsi': 'sd', 'sata': 'sd', 'ide': 'hd'}


def _letters(index):
    text = ''
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = string.ascii_lowercase[rest] + text
    return text


def _index(letters):
    value = 0
    for char in letters:
        value = value * 26 + string.ascii_lowercase.index(char) + 1
    return value - 1


def target_of(bus, bus_number, unit):
    """The guest-neutral target name of a controller slot (scsi0:0 -> sda, unit 7 skipped)."""
    if bus == 'scsi' and unit > 7:
        unit -= 1
    return _PREFIX[bus] + _letters(bus_number * _SLOTS[bus] + unit)


def slot_of(bus, target):
    """(controller bus number, unit number) of a target name on ``bus``."""
    index = _index(target[len(_PREFIX[bus]):])
    bus_number, unit = divmod(index, _SLOTS[bus])
    if bus == 'scsi' and unit >= 7:
        unit += 1
    if bus_number > 3:
        raise SpecError('disks', 'target %s is past the last %s controller' % (target, bus))
    return bus_number, unit


def split_file(path):
    """'[ds] dir/file.vmdk' -> ('ds', 'dir/file.vmdk')."""
    if not path or not path.startswith('['):
        return None, path or None
    store, _sep, rest = path[1:].partition(']')
    return store, rest.strip() or None


def _disk_order(disk):
    """vSphere disks have no order of their own: list them by target (hda.., then sda..)."""
    return (disk['target'][:2], len(disk['target']), disk['target'])


def _tag_key(name):
    return TAG_PREFIX + quote(name, safe='')


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

    def _candidates(self, inv, name):
        found = [v for v in inv.rows('vms') if v.get('name') == name]
        if self.placement.get('datacenter'):
            found = [v for v in found if (inv.datacenter_of(v['moid']) or {}).get('name') == self.placement['datacenter']]
        if found and self.placement.get('folder'):
            folder = inv.folder(inv.datacenter(self.placement.get('datacenter')), self.placement['folder'])
            found = [v for v in found if v.get('parent') == folder['moid']]
        if len(found) > 1:
            raise BackendError('%d VMs are named %s (%s); set datacenter and folder to say which one'
                               % (len(found), name, ', '.join(sorted(inv.path(v['moid']) for v in found))))
        if found and found[0].get('config.template'):
            raise BackendError('%s is a VM template, not a VM; this module does not manage templates' % name)
        return found

    def read(self, name):
        inv = self.inventory()
        ref = self._refs.get(name)
        if ref is None:
            found = self._candidates(inv, name)
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
        devices = row.get('config.hardware.device') or []
        controllers = dict((d['key'], d) for d in devices if d['kind'] == 'controller')
        extra = {}
        for key, value in row.get('config.extraConfig') or []:
            extra[key] = value  # the last value wins; an empty value is a removed entry
        tags = {}
        for key, value in extra.items():
            if key.startswith(TAG_PREFIX) and value not in (None, ''):
                try:
                    tags[unquote(key[len(TAG_PREFIX):])] = json.loads(value)
                except ValueError:
                    tags[unquote(key[len(TAG_PREFIX):])] = value
        try:
            pending = json.loads(extra.get(PENDING_KEY) or '{}')
        except ValueError:
            pending = {}
        firmware = 'uefi' if row.get('config.firmware') == 'efi' else 'bios'
        hardware = {'memory': row.get('config.hardware.memoryMB'), 'vcpus': row.get('config.hardware.numCPU'),
                    'firmware': firmware, 'memory_hot_add': bool(row.get('config.memoryHotAddEnabled')),
                    'cpu_hot_add': bool(row.get('config.cpuHotAddEnabled')),
                    'guest_id': row.get('config.guestId')}
        pending = dict((k, v) for k, v in pending.items() if k in hardware and hardware[k] != v)
        config = dict(hardware, **pending)
        disks, disk_devices, used = [], {}, set()
        for dev in sorted(devices, key=lambda d: (d.get('controller_key') or 0, d.get('unit') or 0, d['key'])):
            if dev['kind'] not in ('disk', 'cdrom'):
                continue
            disk = self._disk(dev, controllers, used)
            disks.append(disk)
            disk_devices[disk['target']] = dev
        disks.sort(key=_disk_order)
        interfaces, nic_devices = [], []
        for dev in sorted((d for d in devices if d['kind'] == 'nic'), key=lambda d: d['key']):
            interfaces.append({'type': 'network', 'source': inv.network_name(dev), 'model': dev['model'],
                               'mac': dev['mac']})
            nic_devices.append(dev)
        spec = dict(_vm_spec.DEFAULTS, domain_type=None, arch='x86_64', firmware=config['firmware'],
                    memory=config['memory'], max_memory=config['memory'], vcpus=config['vcpus'],
                    max_vcpus=config['vcpus'], disks=disks, interfaces=interfaces,
                    description=row.get('config.annotation') or None, tags=tags)
        spec = dict((key, spec.get(key)) for key in _vm_spec.FIELDS)
        host = inv.get(row.get('runtime.host'))
        compute = inv.compute_of_host(host['moid']) if host else None
        dc = inv.datacenter_of(row.get('parent'))
        vmx_store, _path = split_file(row.get('config.files.vmPathName'))
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
                'ref': row['ref'], 'row': row, 'devices': devices, 'controllers': controllers,
                'disk_devices': disk_devices, 'nic_devices': nic_devices,
                'host': host, 'compute': compute, 'dc': dc, 'extra': extra}

    @staticmethod
    def _disk(dev, controllers, used):
        ctrl = controllers.get(dev.get('controller_key')) or {}
        bus = ctrl.get('bus')
        if bus in _PREFIX:
            target = target_of(bus, ctrl.get('bus_number') or 0, dev.get('unit') or 0)
            while target in used:  # SCSI and SATA share the sd names; keep them unique
                target = _PREFIX[bus] + _letters(_index(target[2:]) + 64)
        else:
            bus, target = bus or 'other', 'unit%d' % dev['key']
        used.add(target)
        store, volume = split_file(dev.get('file'))
        item = {'device': dev['kind'], 'bus': bus, 'target': target, 'readonly': dev['kind'] == 'cdrom'}
        if store:
            item['pool'] = store
        if volume:
            item['volume'] = volume
        if dev['kind'] == 'disk':
            item['size'] = dev.get('capacity_kb', 0) // 1024
        return item

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
        return found

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
        self._check_partial(partial)
        spec = _vm_spec.merge(partial, actual['spec'] if actual else None, DEVICE_DEFAULTS)
        spec['max_memory'], spec['max_vcpus'] = spec['memory'], spec['vcpus']
        spec['domain_type'] = None
        spec['disks'].sort(key=_disk_order)
        # interfaces keep the order of their devices; new ones come last
        macs = [n.get('mac') for n in (actual['spec']['interfaces'] if actual else [])]
        spec['interfaces'].sort(key=lambda n: macs.index(n['mac']) if n.get('mac') in macs else len(macs))
        inv = self.inventory()
        if actual is None:
            target = self._resolve_target(inv)
            dc, hosts = target['dc'], target['hosts']
        else:
            self._validate_placement(inv)
            dc, hosts = actual['dc'], [actual['host']] if actual['host'] else []
        old_disks = dict((d['target'], d) for d in (actual['spec']['disks'] if actual else []))
        for index, disk in enumerate(spec['disks']):
            self._check_disk(inv, dc, hosts, disk, old_disks.get(disk['target']), index)
        old_nics = [(n['type'], n['source']) for n in (actual['spec']['interfaces'] if actual else [])]
        for index, nic in enumerate(spec['interfaces']):
            if (nic['type'], nic['source']) not in old_nics:
                inv.network(dc, nic['source'], hosts, 'interfaces[%d].network' % index)
        return spec

    def _check_partial(self, partial):
        for index, disk in enumerate(partial.get('disks') or []):
            param = 'disks[%d]' % index
            if disk.get('path'):
                raise SpecError(param + '.path', 'vSphere disks are files on datastores: set pool (the datastore) '
                                                 'and volume (the file in it, such as web1/web1.vmdk), or size '
                                                 'for a new disk')
            bus = disk.get('bus')
            if bus and bus not in DISK_BUSES:
                raise SpecError(param + '.bus', '%s is not a vSphere bus; use one of %s' % (bus, ', '.join(DISK_BUSES)))
            if bus == 'ide' and disk.get('device', 'disk') == 'disk':
                raise SpecError(param + '.bus', 'use scsi or sata for disks on vSphere (ide is for cdroms here)')
            target = disk.get('target')
            if target and not target.startswith(_PREFIX.get(bus or ('ide' if disk.get('device') == 'cdrom' else 'scsi'))):
                raise SpecError(param + '.target', '%s does not fit bus %s on vSphere: use sd.. for scsi and sata, '
                                                   'hd.. for ide' % (target, bus or 'scsi'))
            if disk.get('volume') and disk.get('device', 'disk') == 'cdrom' and not disk['volume'].endswith('.iso'):
                raise SpecError(param + '.volume', 'a cdrom on vSphere takes an ISO image file (.iso)')
            if disk.get('readonly') and disk.get('device', 'disk') == 'disk':
                raise SpecError(param + '.readonly', 'read-only disks are not supported on vSphere')
            for key in ('format', 'cache'):
                if disk.get(key):
                    raise SpecError('%s.%s' % (param, key), 'applies to libvirt only; remove it for vSphere')
        for index, nic in enumerate(partial.get('interfaces') or []):
            if nic['type'] != 'network':
                raise SpecError('interfaces[%d].%s' % (index, nic['type']), 'vSphere interfaces connect to port '
                                'groups: use network (the port group name)')
            if nic.get('model') and nic['model'] not in NIC_MODELS:
                raise SpecError('interfaces[%d].model' % index, '%s is not a vSphere adapter; use one of %s'
                                % (nic['model'], ', '.join(NIC_MODELS)))
        if partial.get('arch') not in (None, 'x86_64'):
            raise SpecError('arch', 'vSphere VMs here are x86_64')

    def _resolve_target(self, inv):
        p = self.placement
        dc = inv.datacenter(p.get('datacenter'))
        compute, host = inv.compute(dc, p.get('cluster'), p.get('host'))
        hosts = [host] if host else inv.hosts_of(compute)
        if not hosts:
            raise SpecError('cluster', '%s has no hosts to run the VM' % compute['name'])
        return {'dc': dc, 'compute': compute, 'host': host, 'hosts': hosts,
                'pool': inv.resource_pool(compute, p.get('resource_pool')),
                'folder': inv.folder(dc, p.get('folder')),
                'datastore': inv.datastore(dc, p.get('datastore'), hosts)}

    def _validate_placement(self, inv):
        """Placement names of an existing VM must exist too (moving it is not this module's job)."""
        p = self.placement
        if not any(p.get(k) for k in ('datacenter', 'cluster', 'host', 'resource_pool', 'folder', 'datastore')):
            return
        dc = inv.datacenter(p.get('datacenter'))
        compute, host = inv.compute(dc, p.get('cluster'), p.get('host'), required=False)
        if compute is not None:
            hosts = [host] if host else inv.hosts_of(compute)
            inv.resource_pool(compute, p.get('resource_pool'))
            if p.get('datastore'):
                inv.datastore(dc, p['datastore'], hosts)
        elif p.get('datastore'):
            inv.datastore(dc, p['datastore'], [])
        inv.folder(dc, p.get('folder'))

    def _check_disk(self, inv, dc, hosts, disk, old, index):
        param = 'disks[%d]' % index
        if disk['device'] == 'disk' and disk['bus'] not in ('scsi', 'sata'):
            raise SpecError(param + '.bus', '%s disks are not supported on vSphere; use scsi or sata' % disk['bus'])
        if disk['device'] == 'cdrom' and disk['bus'] not in ('ide', 'sata'):
            raise SpecError(param + '.bus', 'vSphere cdroms go on ide or sata, not %s' % disk['bus'])
        if not disk['target'].startswith(_PREFIX[disk['bus']]):
            raise SpecError(param + '.target', '%s does not fit bus %s on vSphere' % (disk['target'], disk['bus']))
        slot_of(disk['bus'], disk['target'])
        if old is not None and old.get('volume') == disk.get('volume') and old.get('pool') == disk.get('pool'):
            if disk['device'] == 'disk' and disk.get('size') is not None and disk['size'] < old.get('size', 0):
                raise SpecError(param + '.size', '%d MiB is smaller than the disk (%d MiB); vSphere cannot shrink '
                                'a disk' % (disk['size'], old['size']))
            return
        if disk.get('pool'):
            inv.datastore(dc, disk['pool'], hosts, param + '.pool')
        elif disk['device'] == 'cdrom' and disk.get('volume'):
            raise SpecError(param + '.pool', 'name the datastore of the ISO image')

    # -- writing ---------------------------------------------------------------------------
    def _option_values(self):
        """The vSphere-only VM settings the user asked for (hot-add, guest OS)."""
        return dict((k, self.placement[k]) for k in ('memory_hot_add', 'cpu_hot_add', 'guest_id') if k in self.placement)

    def create(self, name, spec):
        target = self._resolve_target(self.inventory())  # as desired() found it: the inventory is read once
        options = self._option_values()
        config = {'name': name, 'guest_id': options.get('guest_id', DEFAULT_GUEST_ID),
                  'datastore': target['datastore']['name'], 'memory_mb': spec['memory'], 'vcpus': spec['vcpus'],
                  'firmware': 'efi' if spec['firmware'] == 'uefi' else 'bios',
                  'annotation': spec.get('description') or '',
                  'memory_hot_add': options.get('memory_hot_add', False),
                  'cpu_hot_add': options.get('cpu_hot_add', False),
                  'extra_config': sorted((_tag_key(k), json.dumps(v)) for k, v in (spec.get('tags') or {}).items())}
        config['devices'] = self._device_changes(None, spec, target['dc'], target['hosts'],
                                                 target['datastore']['name'])
        ref = self.client.create_vm(target['folder']['ref'], target['pool']['ref'],
                                    target['host']['ref'] if target['host'] else None, config)
        self._refs[name] = ref
        return None

    def _device_changes(self, actual, spec, dc, hosts, default_store):
        """Device changes from the actual VM's devices (None: a new VM) to ``spec``'s."""
        inv = self.inventory()
        changes, by_target = [], {}
        if actual is not None:
            for disk in actual['spec']['disks']:
                by_target[disk['target']] = (disk, actual['disk_devices'][disk['target']])
            ctrl_by_bus = dict(((c['bus'], c['bus_number']), c['key']) for c in actual['controllers'].values())
            old_nics = list(zip(actual['spec']['interfaces'], actual['nic_devices']))
        else:  # a new VM comes with its two IDE controllers
            ctrl_by_bus, old_nics = {('ide', 0): 200, ('ide', 1): 201}, []
        keys = iter(range(-100, -10000, -1))
        wanted_targets = set(d['target'] for d in spec['disks'])
        for target, (disk, dev) in by_target.items():
            if target not in wanted_targets:
                changes.append({'op': 'remove', 'kind': disk['device'], 'device@ref': dev['device@ref']})
        for disk in spec['disks']:
            old = by_target.get(disk['target'])
            if old is not None and old[0].get('volume') == disk.get('volume') and \
                    old[0].get('pool') == disk.get('pool') and old[0]['bus'] == disk['bus'] and \
                    old[0]['device'] == disk['device']:
                if disk['device'] == 'disk' and disk.get('size') and disk['size'] > old[0].get('size', 0):
                    changes.append({'op': 'edit', 'kind': 'disk', 'device@ref': old[1]['device@ref'],
                                    'size_kb': disk['size'] * 1024})
                continue
            if old is not None:
                changes.append({'op': 'remove', 'kind': old[0]['device'], 'device@ref': old[1]['device@ref']})
            bus_number, unit = slot_of(disk['bus'], disk['target'])
            ctrl_key = ctrl_by_bus.get((disk['bus'], bus_number))
            if ctrl_key is None:
                ctrl_key = next(keys)
                ctrl_by_bus[(disk['bus'], bus_number)] = ctrl_key
                changes.append({'op': 'add', 'kind': 'controller', 'bus': disk['bus'], 'bus_number': bus_number,
                                'subtype': 'pvscsi' if disk['bus'] == 'scsi' else 'ahci', 'key': ctrl_key})
            change = {'op': 'add', 'kind': disk['device'], 'key': next(keys), 'controller_key': ctrl_key, 'unit': unit}
            if disk['device'] == 'cdrom':
                if disk.get('volume'):
                    change['iso'] = '[%s] %s' % (disk['pool'], disk['volume'])
            elif disk.get('volume'):
                change['existing'] = '[%s] %s' % (disk['pool'], disk['volume'])
            else:
                change.update(datastore=disk.get('pool') or default_store, size_kb=disk['size'] * 1024)
            changes.append(change)
        wanted = list(spec['interfaces'])
        for nic, dev in old_nics:
            if nic in wanted:
                wanted.remove(nic)
            else:
                changes.append({'op': 'remove', 'kind': 'nic', 'device@ref': dev['device@ref']})
        for index, nic in enumerate(wanted):
            net = inv.network(dc, nic['source'], hosts, 'interfaces[%d].network' % index)
            changes.append({'op': 'add', 'kind': 'nic', 'key': next(keys), 'model': nic['model'],
                            'mac': nic.get('mac'), 'network': net})
        return changes

    def plan_update(self, actual, spec):
        """What changes; hardware a running VM cannot take now goes to ``cold`` (pending restart)."""
        changes = _vm_spec.changed_fields(actual['spec'], spec)
        options = self._option_values()
        hardware = actual['hardware']
        current = dict(hardware, **actual['pending'])
        changes.extend(k for k in sorted(options) if current.get(k) != options[k])
        wanted = dict(current, firmware=spec['firmware'], memory=spec['memory'], vcpus=spec['vcpus'], **options)
        running = actual['state'] in self.restartable_states
        live, cold = {}, {}
        for key, value in wanted.items():
            if value == hardware.get(key):
                continue
            hot = not running or \
                (key == 'memory' and value > hardware['memory'] and hardware['memory_hot_add']) or \
                (key == 'vcpus' and value > hardware['vcpus'] and hardware['cpu_hot_add'])
            (live if hot else cold)[key] = value
        if not changes and (live or cold != actual['pending']):
            # nothing new asked, but a pending change can be applied now (the VM is stopped)
            changes = sorted(set(live) | set(cold) | set(actual['pending']))
        return Plan(changes, reboot_required=bool(cold), details={'spec': spec, 'live': live, 'cold': cold})

    def apply_update(self, actual, plan):
        spec, live, cold = plan.details['spec'], plan.details['live'], plan.details['cold']
        config = {}
        names = {'memory': 'memory_mb', 'vcpus': 'vcpus', 'memory_hot_add': 'memory_hot_add',
                 'cpu_hot_add': 'cpu_hot_add', 'guest_id': 'guest_id'}
        for key, value in live.items():
            if key == 'firmware':
                config['firmware'] = 'efi' if value == 'uefi' else 'bios'
            else:
                config[names[key]] = value
        extra = []
        if spec.get('description') != actual['spec'].get('description'):
            config['annotation'] = spec.get('description') or ''
        old_tags, new_tags = actual['spec'].get('tags') or {}, spec.get('tags') or {}
        for key in sorted(set(old_tags) | set(new_tags)):
            if key not in new_tags:
                extra.append((_tag_key(key), ''))
            elif old_tags.get(key) != new_tags[key]:
                extra.append((_tag_key(key), json.dumps(new_tags[key])))
        if cold != actual['pending']:
            extra.append((PENDING_KEY, json.dumps(cold, sort_keys=True) if cold else ''))
        config['extra_config'] = extra
        if spec['disks'] != actual['spec']['disks'] or spec['interfaces'] != actual['spec']['interfaces']:
            hosts = [actual['host']] if actual['host'] else []
            config['devices'] = self._device_changes(actual, spec, actual['dc'], hosts,
                                                     actual['vsphere']['datastore'])
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

    def perform(self, name, action):
        if action == 'wait':
            return None
        ref = self._ref(name)
        if action in ('start', 'start_paused'):
            applied = self._apply_pending(name)
            self.client.power_on(ref, name)
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

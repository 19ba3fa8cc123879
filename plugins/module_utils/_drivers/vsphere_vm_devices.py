# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disks, cdroms and NICs of a vSphere VM: read from its devices, checked, and the device changes.

Targets ``sda..`` name SCSI/SATA slots (``sda`` = scsi0:0, unit 7 skipped) and ``hda..`` IDE
slots; a disk's ``pool`` is the datastore and ``volume`` the file in it; a NIC's ``network`` is
a port group (standard or distributed) name.
"""

from __future__ import annotations

import string

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

DEVICE_DEFAULTS = {'disk_bus': 'scsi', 'cdrom_bus': 'ide', 'nic_model': 'vmxnet3'}
DISK_BUSES = ('scsi', 'sata', 'ide')
NIC_MODELS = ('vmxnet3', 'e1000e', 'e1000')
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


def disk_order(disk):
    """vSphere disks have no order of their own: list them by target (hda.., then sda..)."""
    return (disk['target'][:2], len(disk['target']), disk['target'])


def read(devices, inv):
    """``(controllers, disks, disk_devices, interfaces, nic_devices)`` of a VM's devices."""
    controllers = dict((d['key'], d) for d in devices if d['kind'] == 'controller')
    disks, disk_devices, used = [], {}, set()
    for dev in sorted(devices, key=lambda d: (d.get('controller_key') or 0, d.get('unit') or 0, d['key'])):
        if dev['kind'] not in ('disk', 'cdrom'):
            continue
        disk = _disk(dev, controllers, used)
        disks.append(disk)
        disk_devices[disk['target']] = dev
    disks.sort(key=disk_order)
    interfaces, nic_devices = [], []
    for dev in sorted((d for d in devices if d['kind'] == 'nic'), key=lambda d: d['key']):
        interfaces.append({'type': 'network', 'source': inv.network_name(dev), 'model': dev['model'],
                           'mac': dev['mac']})
        nic_devices.append(dev)
    return controllers, disks, disk_devices, interfaces, nic_devices


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


def check_partial(partial):
    """The disks and interfaces the user gave, checked against what vSphere offers."""
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


def check(inv, dc, hosts, spec, actual):
    """The disks and interfaces of ``spec`` against the VM's (``None``: a new VM) and the datacenter ``dc``."""
    old_disks = dict((d['target'], d) for d in (actual['spec']['disks'] if actual else []))
    for index, disk in enumerate(spec['disks']):
        _check_disk(inv, dc, hosts, disk, old_disks.get(disk['target']), index)
    old_nics = [(n['type'], n['source']) for n in (actual['spec']['interfaces'] if actual else [])]
    for index, nic in enumerate(spec['interfaces']):
        if (nic['type'], nic['source']) not in old_nics:
            inv.network(dc, nic['source'], hosts, 'interfaces[%d].network' % index)


def _check_disk(inv, dc, hosts, disk, old, index):
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


def device_changes(inv, actual, spec, dc, hosts, default_store):
    """Device changes from the actual VM's devices (None: a new VM) to ``spec``'s."""
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
            moved = moved_from(actual, disk)
            if moved is not None:  # the capacity the file has (grown first by grows_before_moves), as it is
                change['size_kb'] = max((disk.get('size') or 0) * 1024, moved[1].get('capacity_kb') or 0) or None
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


def moved_from(actual, disk):
    """``(old disk, its device)`` when ``disk`` is a file of the VM's own disks that ``device_changes`` attaches
    anew (another bus or slot: the old device is removed), else None."""
    if actual is None or disk['device'] != 'disk' or not disk.get('volume'):
        return None
    for old in actual['spec']['disks']:
        if old['device'] == 'disk' and (old.get('pool'), old.get('volume')) == (disk.get('pool'), disk['volume']):
            if old['target'] == disk['target'] and old['bus'] == disk['bus']:
                return None  # it stays where it is (and grows in place)
            return old, actual['disk_devices'][old['target']]
    return None


def grows_before_moves(actual, spec):
    """Edits that grow the VM's disks that ``spec`` moves (another bus or slot) and wants larger, for a
    reconfiguration of their own before the one that moves them: a move removes the device and attaches its
    file anew as it is, and the growth cannot go in the same reconfiguration (it would edit the device that is
    removed). Without it the disk would be moved by one run and grown by the next."""
    edits = []
    for disk in spec['disks']:
        moved = moved_from(actual, disk)
        if moved is not None and (disk.get('size') or 0) > moved[0].get('size', 0):
            edits.append({'op': 'edit', 'kind': 'disk', 'device@ref': moved[1]['device@ref'],
                          'size_kb': disk['size'] * 1024})
    return edits

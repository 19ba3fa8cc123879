# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt snapshot XML (``<domainsnapshot>``), the snapshot facts of a domain's XML and the marker that records
which snapshot this collection last reverted a VM to. Built and parsed with lxml: a name with XML metacharacters
is text, never markup."""

from __future__ import annotations

import datetime

from ansible_collections.virtfleet.virt.plugins.module_utils import _xml

# libvirt's <state> of a snapshot -> the VM's power state then, as the collection names power states
# ('disk-snapshot': a disk-only snapshot of a running VM)
STATES = {'running': 'running', 'blocked': 'running', 'paused': 'paused', 'shutoff': 'stopped',
          'shutdown': 'stopped', 'crashed': 'stopped', 'pmsuspended': 'pmsuspended', 'disk-snapshot': 'running'}

MARKER_NS = 'https://virtfleet.dev/xmlns/virt/snapshot/1.0'
MARKER_KEY = 'vfsnap'


def render(name, description=None, memory=False):
    """The ``<domainsnapshot>`` to create: no memory state unless ``memory`` (disk-only is a flag of the call)."""
    root = _xml.etree.Element('domainsnapshot')
    _xml.etree.SubElement(root, 'name').text = name
    if description:
        _xml.etree.SubElement(root, 'description').text = description
    if not memory:
        _xml.etree.SubElement(root, 'memory', snapshot='no')
    return _xml.to_string(root)


def _iso(epoch):
    if not epoch:
        return None
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def parse(xml):
    """The entry of one snapshot (``current`` is read apart)."""
    root = _xml.from_string(xml)
    memory = root.find('memory')
    memory_location = memory.get('snapshot') if memory is not None else 'no'
    disk_locations = set(disk.get('snapshot') for disk in root.findall('disks/disk'))
    external = 'external' in disk_locations or memory_location == 'external'
    return {'name': root.findtext('name'), 'parent': root.findtext('parent/name'),
            'description': root.findtext('description'), 'created': _iso(root.findtext('creationTime')),
            'vm_state': STATES.get(root.findtext('state'), root.findtext('state')),
            'memory': memory_location not in ('no', None), 'location': 'external' if external else 'internal',
            'files': [disk.find('source').get('file') for disk in root.findall('disks/disk')
                      if disk.get('snapshot') == 'external' and disk.find('source') is not None]}


def domain_facts(xml):
    """What decides which snapshots a domain can take: its disks (target, format, path) that a snapshot covers
    (not CD-ROMs, floppies or read-only disks) and whether it boots with UEFI (pflash firmware, nvram)."""
    root = _xml.from_string(xml)
    disks = []
    for disk in root.findall('devices/disk'):
        if disk.get('device', 'disk') not in ('disk', 'lun') or disk.find('readonly') is not None:
            continue
        driver, source, target = disk.find('driver'), disk.find('source'), disk.find('target')
        disks.append({'target': target.get('dev') if target is not None else '?',
                      'format': driver.get('type') if driver is not None else None,
                      'path': None if source is None else (source.get('file') or source.get('dev')
                                                           or source.get('name') or source.get('volume'))})
    os_elem = root.find('os')
    loader = os_elem.find('loader') if os_elem is not None else None
    uefi = os_elem is not None and (os_elem.get('firmware') == 'efi' or os_elem.find('nvram') is not None or
                                    (loader is not None and loader.get('type') == 'pflash'))
    return {'disks': disks, 'uefi': uefi}


def marker(name):
    """The metadata element recording that this collection reverted the VM to snapshot ``name``."""
    root = _xml.etree.Element('reverted')
    root.set('snapshot', name)
    return _xml.etree.tostring(root, encoding='unicode')


def marked(xml):
    """The snapshot name a marker element records (None without one)."""
    if not xml:
        return None
    root = _xml.from_string(xml)
    return root.get('snapshot') if root.tag.endswith('reverted') else None

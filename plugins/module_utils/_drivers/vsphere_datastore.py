# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vSphere datastores as storage pools, in the shape of ``LibvirtPoolDriver.describe`` (read only).

A datastore is a pool: ``state`` is ``active`` when vSphere reports it accessible, else ``inactive``;
``spec.type`` is the datastore type in lower case (``vmfs``, ``nfs``, ``nfs41``, ``vsan``, ``vvol``,
``other``), ``spec.path`` its URL, ``spec.source`` the NFS server and export (``hosts``, ``dir``) or the
VMFS extents (``devices``); ``capacity``/``available`` are vSphere's capacity and free space in bytes and
``allocation`` their difference. Datastores are not browsed, so ``volumes`` is null. Everything comes
from one PropertyCollector query.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_host import select_hosts
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_inventory import Inventory

DATASTORE_PROPS = ('name', 'parent', 'summary.type', 'summary.url', 'summary.capacity', 'summary.freeSpace',
                   'summary.uncommitted', 'summary.accessible', 'summary.maintenanceMode', 'info')
DATASTORE_TYPES = ('vmfs', 'nfs', 'nfs41', 'vsan', 'vvol', 'pmem', 'other')


def _source(info):
    nas = (info or {}).get('nas') or {}
    if nas:
        hosts = nas.get('remoteHostNames') or ([nas['remoteHost']] if nas.get('remoteHost') else [])
        return {'hosts': hosts, 'dir': nas.get('remotePath'), 'format': (nas.get('type') or '').lower() or None}
    vmfs = (info or {}).get('vmfs') or {}
    if vmfs:
        return {'devices': [e.get('diskName') for e in vmfs.get('extent') or []]}
    return {}


class VSphereDatastoreDriver:
    def __init__(self, client, placement=None):
        self.client = client
        self.placement = dict((k, v) for k, v in (placement or {}).items()
                              if k in ('datacenter', 'cluster', 'host') and v is not None)

    def list(self, name=None):
        """The datastores mounted on the hosts the placement options choose (default: all), as pool views."""
        inv = Inventory(self.client.host_inventory('reading datastores', ('name', 'parent', 'datastore'),
                                                   datastore_props=DATASTORE_PROPS))
        hosts = select_hosts(inv, single=False, **self.placement) if inv.rows('hosts') else []
        chosen = set(moid for h in hosts for moid in h.get('datastore') or [])
        pools = []
        for row in inv.rows('datastores'):
            if (name is not None and row['name'] != name) or (self.placement and row['moid'] not in chosen):
                continue
            pools.append(self.describe(inv, row))
        return sorted(pools, key=lambda pool: (pool['name'], pool['vsphere']['datacenter'] or ''))

    @staticmethod
    def describe(inv, row):
        capacity, free = row.get('summary.capacity'), row.get('summary.freeSpace')
        accessible = row.get('summary.accessible') is not False
        return {
            'name': row['name'],
            'uuid': ((row.get('info') or {}).get('vmfs') or {}).get('uuid'),
            'state': 'active' if accessible else 'inactive',
            'spec': {'type': (row.get('summary.type') or 'other').lower(), 'path': row.get('summary.url'),
                     'source': _source(row.get('info')), 'autostart': None},
            'volumes': None,
            'capacity': capacity,
            'allocation': capacity - free if capacity is not None and free is not None else None,
            'available': free,
            'pending_restart': False,
            'vsphere': {
                'moid': row['moid'],
                'datacenter': (inv.datacenter_of(row['moid']) or {}).get('name'),
                'hosts': sorted(h['name'] for h in inv.rows('hosts') if row['moid'] in (h.get('datastore') or [])),
                'uncommitted': row.get('summary.uncommitted'),
                'maintenance_mode': row.get('summary.maintenanceMode'),
            },
        }

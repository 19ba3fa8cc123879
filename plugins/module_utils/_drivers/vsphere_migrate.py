# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vMotion and storage vMotion of a vSphere VM: the interface of ``_reconcile.relocate``.

The destination is given by the placement options ``destination`` (the ESXi host, the option that names
the destination host on libvirt too; ``host`` is its deprecated alias), ``cluster``, ``resource_pool`` and
``datastore`` (any of them; what is left out stays as it is). One ``RelocateVM_Task`` moves the VM:
a host or resource pool change is a vMotion, a datastore change a storage vMotion (every disk and the
configuration files go to the datastore), both together in one task.

"Already there" is decided from the VM's host, cluster and resource pool and from the datastores of its
*disks* - never from the VM's datastore list, which also names datastores of mounted ISO images.
``precheck`` reads only: the destination host is connected and not in maintenance mode, the datastore
is accessible and mounted there, the VM's port groups exist there, and vSphere's own relocation checks
(``VmProvisioningChecker.CheckRelocate_Task``) pass where the server offers them.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_host import select_hosts
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_inventory import Inventory
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_vm import VSphereVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_vm_devices import split_file
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan

# Options of the migrate module that place the VM on vSphere.
TARGET_OPTIONS = ('datacenter', 'folder', 'cluster', 'destination', 'resource_pool', 'datastore')


def disk_stores(actual):
    """Datastores of the VM's disks (not of CD-ROM images); those of its configuration files when it has none."""
    stores = [split_file(dev.get('file'))[0] for dev in actual['devices'] if dev['kind'] == 'disk']
    return sorted(set(s for s in stores if s)) or [actual['vsphere']['datastore']]


class VSphereMigrateDriver:
    def __init__(self, client, target, timeout=None):
        self.client = client
        self.target = dict((k, v) for k, v in target.items() if k in TARGET_OPTIONS and v is not None)
        self.timeout = timeout
        if not any(self.target.get(k) for k in ('cluster', 'destination', 'resource_pool', 'datastore')):
            raise SpecError('destination', 'say where the VM goes: destination (the ESXi host) and/or cluster '
                                           '(vMotion), resource_pool, datastore (storage vMotion)')
        if '://' in (self.target.get('destination') or ''):
            raise SpecError('destination', 'on vSphere this is the name of the ESXi host the VM moves to, not a '
                                           'libvirt URI: %r' % self.target['destination'])

    def locate(self, name):
        # a fresh query on every call: the VM may just have moved
        vms = VSphereVMDriver(self.client, dict((k, self.target.get(k)) for k in ('datacenter', 'folder')))
        actual = vms.read(name)
        if actual is None:
            raise SpecError('name', 'no VM named %r on vSphere at %s' % (name, self.client.where))
        inv = vms.inventory()
        dc = actual['dc']
        compute, host = actual['compute'], None
        if self.target.get('cluster') or self.target.get('destination'):
            try:
                compute, host = inv.compute(dc, self.target.get('cluster'), self.target.get('destination'))
            except SpecError as exc:
                # the inventory names its own option for the host; here it is destination
                if exc.param != 'host':
                    raise
                raise SpecError('destination', exc.msg.split(': ', 1)[-1]) from None
        pool = None
        if self.target.get('resource_pool'):
            pool = inv.resource_pool(compute, self.target['resource_pool'])
        elif compute['moid'] != (actual['compute'] or {}).get('moid'):
            pool = inv.get(compute['resourcePool'])
        hosts = [host] if host else inv.hosts_of(compute)
        store = inv.datastore(dc, self.target['datastore'], hosts) if self.target.get('datastore') else None
        here = {
            'host': host is None or host['moid'] == (actual['host'] or {}).get('moid'),
            'cluster': compute['moid'] == (actual['compute'] or {}).get('moid'),
            'resource_pool': pool is None or pool['moid'] == actual['row'].get('resourcePool'),
            'datastore': store is None or disk_stores(actual) == [store['name']],
        }
        return {'at': 'destination' if all(here.values()) else 'source', 'name': name, 'actual': actual,
                'inv': inv, 'compute': compute, 'host': host, 'pool': pool, 'store': store, 'here': here}

    @staticmethod
    def describe(placement):
        actual = placement['actual']
        info = actual['vsphere']
        return {'name': actual['name'], 'uuid': actual['uuid'], 'state': actual['state'], 'uri': None,
                'hostname': info['host'], 'persistent': True,
                'vsphere': {'datacenter': info['datacenter'], 'cluster': info['cluster'], 'host': info['host'],
                            'resource_pool': info['resource_pool'], 'datastores': disk_stores(actual)}}

    def _move(self, placement):
        actual = placement['actual']
        move = {}
        if not placement['here']['host'] and placement['host']:
            move['host'] = placement['host']['ref']
        if placement['pool'] is not None and not placement['here']['resource_pool']:
            move['pool'] = placement['pool']['ref']
        if placement['store'] is not None and not placement['here']['datastore']:
            move['datastore'] = placement['store']['ref']
            move['disk_keys'] = [dev['key'] for dev in actual['devices'] if dev['kind'] == 'disk']
        return move

    def precheck(self, placement):
        actual, inv, problems = placement['actual'], placement['inv'], []
        host, store, here = placement['host'], placement['store'], placement['here']
        targets = [host] if host else inv.hosts_of(placement['compute'])
        facts = Inventory(self.client.host_inventory(
            'reading the destination hosts', ('name', 'parent', 'runtime.connectionState', 'runtime.inMaintenanceMode')))
        for row in select_hosts(facts, single=False):
            if row['moid'] in [t['moid'] for t in targets]:
                if row.get('runtime.connectionState') != 'connected':
                    problems.append('host %s is %s' % (row['name'], row.get('runtime.connectionState')))
                if row.get('runtime.inMaintenanceMode'):
                    problems.append('host %s is in maintenance mode' % row['name'])
        if store is not None and store.get('summary.accessible') is False:
            problems.append('datastore %s is not accessible' % store['name'])
        networks = sorted(set(i['source'] for i in actual['spec']['interfaces'] if i.get('source')))
        for net in networks:
            try:
                inv.network(actual['dc'], net, targets, 'interfaces')
            except SpecError as exc:
                problems.append(exc.msg.split(': ', 1)[-1])
        move = self._move(placement)
        api = self.client.check_relocate(actual['ref'], actual['name'], move)
        problems += [p for p in api or [] if p.startswith('error: ')]
        if problems:
            raise BackendError('VM %s cannot be relocated (nothing was changed): %s'
                               % (actual['name'], '; '.join(problems)))
        before = self.describe(placement)
        after = dict(before, vsphere=dict(before['vsphere']))
        changes = []
        if not (here['host'] and here['cluster']) or 'pool' in move:
            target_host = host['name'] if host else None
            after['vsphere'].update(cluster=placement['compute']['name'] if placement['compute']['type'] ==
                                    'ClusterComputeResource' else None,
                                    resource_pool=(placement['pool'] or {}).get('name', before['vsphere']['resource_pool']))
            if target_host:
                after['vsphere']['host'] = after['hostname'] = target_host
            changes.append('vmotion to %s' % ', '.join(
                x for x in ('host %s' % target_host if target_host and not here['host'] else None,
                            'cluster %s' % placement['compute']['name'] if not here['cluster'] else None,
                            'resource pool %s' % placement['pool']['name'] if 'pool' in move else None) if x))
        if 'datastore' in move:
            after['vsphere']['datastores'] = [store['name']]
            changes.append('storage vmotion to datastore %s' % store['name'])
        notes = {'prechecks': {'host_state': 'ok', 'networks': networks,
                               'relocate_check': 'not offered by this vSphere' if api is None else
                               ([p for p in api if p.startswith('warning: ')] or 'ok')}}
        return Plan(changes, details={'after': after, 'notes': notes, 'move': move})

    def move(self, placement, plan):
        actual = placement['actual']
        self.client.relocate_vm(actual['ref'], actual['name'], plan.details['move'], self.timeout)
        moved = self.locate(actual['name'])
        left = [k for k, ok in moved['here'].items() if not ok]
        if left:
            # the relocation ran: whatever it did move is a change
            raise BackendError('vSphere reported the relocation of VM %s done, but its %s did not change (%s)'
                               % (actual['name'], ', '.join(left), self.describe(moved)['vsphere']), performed=True)
        return {}

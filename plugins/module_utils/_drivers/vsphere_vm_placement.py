# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a vSphere VM is or goes: the VM a name (with datacenter and folder) picks, and the
datacenter, compute resource, hosts, resource pool, folder and datastore of the placement options."""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError


def candidates(inv, placement, name):
    """The VMs and templates named ``name`` in the placement's datacenter and folder (one at most)."""
    found = [v for v in inv.rows('vms') if v.get('name') == name]
    if placement.get('datacenter'):
        found = [v for v in found if (inv.datacenter_of(v['moid']) or {}).get('name') == placement['datacenter']]
    if found and placement.get('folder'):
        folder = inv.folder(inv.datacenter(placement.get('datacenter')), placement['folder'])
        found = [v for v in found if v.get('parent') == folder['moid']]
    if len(found) > 1:
        raise BackendError('%d VMs are named %s (%s); set datacenter and folder to say which one'
                           % (len(found), name, ', '.join(sorted(inv.path(v['moid']) for v in found))))
    return found


def resolve(inv, placement):
    """Where a new VM goes: datacenter, compute resource, host, hosts, resource pool, folder and datastore."""
    p = placement
    dc = inv.datacenter(p.get('datacenter'))
    compute, host = inv.compute(dc, p.get('cluster'), p.get('host'))
    hosts = [host] if host else inv.hosts_of(compute)
    if not hosts:
        raise SpecError('cluster', '%s has no hosts to run the VM' % compute['name'])
    return {'dc': dc, 'compute': compute, 'host': host, 'hosts': hosts,
            'pool': inv.resource_pool(compute, p.get('resource_pool')),
            'folder': inv.folder(dc, p.get('folder')),
            'datastore': inv.datastore(dc, p.get('datastore'), hosts)}


def validate(inv, placement):
    """Placement names of an existing VM must exist too (moving it is not this module's job)."""
    p = placement
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

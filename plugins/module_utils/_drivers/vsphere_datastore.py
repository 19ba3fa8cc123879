# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vSphere datastores as storage pools, in the shape of ``LibvirtPoolDriver.describe``: listed
(``list``, storage_pool_info) and, for NFS datastores, mounted and unmounted on ESXi hosts through the
interface ``_reconcile.ensure`` calls (storage_pool).

A datastore is a pool: ``state`` is ``active`` when vSphere reports it accessible, else ``inactive``;
``spec.type`` is the datastore type in lower case (``vmfs``, ``nfs``, ``nfs41``, ``vsan``, ``vvol``,
``other``), ``spec.path`` its URL, ``spec.source`` the NFS server and export (``hosts``, ``dir``,
``format``) or the VMFS extents (``devices``), ``spec.hosts`` the ESXi hosts that mount it;
``capacity``/``available`` are vSphere's capacity and free space in bytes and ``allocation`` their
difference. Datastores are not browsed, so ``volumes`` is null. Everything comes from one
PropertyCollector query (again only after this run wrote).

Managing: an NFS datastore is ``present`` when it is mounted on every ESXi host that the placement
options ``datacenter``/``cluster``/``host`` choose (``vsphere_host.select_hosts``); hosts that lack it
mount it (``HostDatastoreSystem.CreateNasDatastore``, ``localPath`` = the datastore name), and
``absent`` unmounts it from each chosen host (``RemoveDatastore``). A datastore of that name from
another server or export, or of another type, is refused - never remounted. Every check runs before
the first write; a mount that fails part-way is undone on the hosts this run mounted.
"""

from __future__ import annotations

import posixpath
import re

from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_host import HostScopedDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan

DATASTORE_PROPS = ('name', 'parent', 'summary.type', 'summary.url', 'summary.capacity', 'summary.freeSpace',
                   'summary.uncommitted', 'summary.accessible', 'summary.maintenanceMode', 'info', 'vm')
DATASTORE_TYPES = ('vmfs', 'nfs', 'nfs41', 'vsan', 'vvol', 'pmem', 'other')
HOST_PROPS = ('name', 'parent', 'datastore', 'vm', 'configManager.datastoreSystem')
# source.format of the storage_pool module -> NFS version; NFS 3 mounts one server, NFS 4.1 several
NFS_FORMATS = ('nfs', 'nfs41')
# source keys of libvirt pools that an NFS datastore does not take
LIBVIRT_SOURCE_KEYS = ('devices', 'name', 'iqn', 'initiator', 'auth')


def _names(items):
    return ', '.join(sorted(set(items))) or 'none'


def _source(info):
    nas = (info or {}).get('nas') or {}
    if nas:
        hosts = nas.get('remoteHostNames') or ([nas['remoteHost']] if nas.get('remoteHost') else [])
        return {'hosts': hosts, 'dir': nas.get('remotePath'), 'format': (nas.get('type') or '').lower() or None}
    vmfs = (info or {}).get('vmfs') or {}
    if vmfs:
        return {'devices': [e.get('diskName') for e in vmfs.get('extent') or []]}
    return {}


def _norm_dir(value):
    return posixpath.normpath(value) if value else value


def _server(value):
    """An NFS server as vSphere takes it: a name or address, without a port."""
    text = str(value).strip()
    match = re.match(r'^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$', text)
    if match:
        name, port = match.group(1), match.group(2)
    elif text.count(':') == 1:
        name, port = text.split(':')
    else:
        name, port = text, None
    if port is not None:
        raise SpecError('source.hosts', '%r: vSphere mounts NFS exports on the standard port; give the server '
                                        'without :port' % (value,))
    if not name or re.search(r'[\s/]', name):
        raise SpecError('source.hosts', '%r is not a host name or address' % (value,))
    return name


def validate_name(name):
    """A datastore name as the module takes it (it is also the NFS mount's local path on ESXi)."""
    if not isinstance(name, str) or not name or name != name.strip() or '/' in name or '\\' in name:
        raise SpecError('name', '%r is not a valid datastore name: it must not be empty, start or end with a '
                                'space, or contain / or \\' % (name,))
    return name


def validate_partial(params):
    """The storage_pool options of a vSphere run as a partial spec ``{type, source}`` (``None``:
    not given), or SpecError naming the option."""
    kind = params.get('type')
    if kind is not None and kind != 'netfs':
        raise SpecError('type', '%s pools are libvirt pools: vSphere mounts NFS datastores only (type: netfs); '
                                'creating VMFS datastores is not supported' % kind)
    raw = params.get('source') or {}
    for key in LIBVIRT_SOURCE_KEYS:
        if raw.get(key) is not None:
            raise SpecError('source.%s' % key, 'applies to libvirt pools only; an NFS datastore takes '
                                               'source.hosts, source.dir and source.format - remove it')
    source = {}
    if raw.get('hosts') is not None:
        if not raw['hosts']:
            raise SpecError('source.hosts', 'name the NFS server')
        servers = [_server(h) for h in raw['hosts']]
        if len(set(s.lower() for s in servers)) != len(servers):
            raise SpecError('source.hosts', 'names a server twice: %s' % ', '.join(servers))
        source['hosts'] = servers
    if raw.get('dir') is not None:
        if not raw['dir'].startswith('/'):
            raise SpecError('source.dir', '%r must be the absolute path of the export on the server' % raw['dir'])
        source['dir'] = _norm_dir(raw['dir'])
    if raw.get('format') is not None:
        if raw['format'] not in NFS_FORMATS:
            raise SpecError('source.format', '%r is not an NFS version vSphere mounts: use nfs (NFS 3, the default) '
                                             'or nfs41 (NFS 4.1)' % raw['format'])
        source['format'] = raw['format']
    return {'type': kind, 'source': source}


class VSphereDatastoreDriver(HostScopedDriver):
    kind = 'datastore'
    stopped_state = 'active'     # nothing to stop before an unmount
    initial_state = 'active'     # a fresh mount is accessible

    def __init__(self, client, placement=None, managing=False, unmounting=False, task_timeout=None):
        super().__init__(client, placement, managing)
        # unmounting (state absent): read() refuses, before anything is written and in check mode too,
        # what must not be unmounted
        self.unmounting = unmounting
        self.task_timeout = task_timeout
        self.found.extra['refreshed'] = False  # a storage_pool result field on every backend; a datastore is not rescanned

    # -- reading ----------------------------------------------------------------------------
    def _query(self):
        return self.client.host_inventory('reading ESXi hosts and their datastores', HOST_PROPS,
                                          datastore_props=DATASTORE_PROPS, vm_names=True)

    def list(self, name=None):
        """The datastores mounted on the hosts the placement options choose (default: all), as pool views."""
        inv = self.inventory()
        hosts = self.hosts() if self.placement and inv.rows('hosts') else []
        chosen = set(moid for h in hosts for moid in h.get('datastore') or [])
        pools = []
        for row in inv.rows('datastores'):
            if (name is not None and row['name'] != name) or (self.placement and row['moid'] not in chosen):
                continue
            pools.append(self.view(inv, row))
        return sorted(pools, key=lambda pool: (pool['name'], pool['vsphere']['datacenter'] or ''))

    @staticmethod
    def mounting(inv, row):
        """Names of the hosts that mount datastore ``row``."""
        return sorted(set(h['name'] for h in inv.rows('hosts') if row['moid'] in (h.get('datastore') or [])))

    @classmethod
    def view(cls, inv, row):
        capacity, free = row.get('summary.capacity'), row.get('summary.freeSpace')
        accessible = row.get('summary.accessible') is not False
        hosts = cls.mounting(inv, row)
        return {
            'name': row['name'],
            'uuid': ((row.get('info') or {}).get('vmfs') or {}).get('uuid'),
            'state': 'active' if accessible else 'inactive',
            'spec': {'type': (row.get('summary.type') or 'other').lower(), 'path': row.get('summary.url'),
                     'source': _source(row.get('info')), 'autostart': None, 'hosts': hosts},
            'volumes': None,
            'capacity': capacity,
            'allocation': capacity - free if capacity is not None and free is not None else None,
            'available': free,
            'pending_restart': False,
            'vsphere': {
                'moid': row['moid'],
                'datacenter': (inv.datacenter_of(row['moid']) or {}).get('name'),
                'hosts': hosts,
                'uncommitted': row.get('summary.uncommitted'),
                'maintenance_mode': row.get('summary.maintenanceMode'),
            },
        }

    def _named(self, name):
        """The datastore called ``name`` in the chosen hosts' datacenter (None when there is none)."""
        inv = self.inventory()
        dcs = set((inv.datacenter_of(h['moid']) or {}).get('moid') for h in self.hosts())
        found = [r for r in inv.rows('datastores')
                 if r['name'] == name and (inv.datacenter_of(r['moid']) or {}).get('moid') in dcs]
        return found[0] if found else None

    def read(self, name):
        row = self._named(name)
        if row is None:
            return None
        mounts = dict((h['name'], row['moid'] in (h.get('datastore') or [])) for h in self.hosts())
        if not any(mounts.values()):
            return None
        actual = {'name': name, 'row': row, 'mounts': mounts}
        if self.unmounting:
            self._check_unmountable(actual)
        return actual

    def describe(self, actual):
        return self.view(self.inventory(), actual['row'])

    def state(self, name):
        actual = self.read(name)
        return self.describe(actual)['state'] if actual else 'absent'

    # -- desired state --------------------------------------------------------------------------
    def desired(self, partial, actual):
        """The full spec (the datastore on every chosen host), checked against the inventory before
        anything is written."""
        inv = self.inventory()
        hosts = self.hosts()
        name = actual['name'] if actual else partial['name']
        given = partial.get('source') or {}
        row = actual['row'] if actual else self._named(name)
        if row is not None:
            kind = (row.get('summary.type') or 'other').lower()
            if kind not in NFS_FORMATS:
                raise SpecError('name', 'datastore %r in datacenter %s is of type %s, not NFS; this module mounts '
                                        'NFS datastores only - choose another name'
                                % (name, (inv.datacenter_of(row['moid']) or {}).get('name'), kind))
            source = _source(row.get('info'))
            source.update(dir=_norm_dir(source.get('dir')), format=source.get('format') or kind)
            self._check_same_export(name, row, source, given)
            mounted = self.mounting(inv, row)
        else:
            if partial.get('type') is None:
                raise SpecError('type', 'is required to mount the new datastore %s: type: netfs (vSphere mounts '
                                        'NFS datastores)' % name)
            for key in ('hosts', 'dir'):
                if not given.get(key):
                    raise SpecError('source.%s' % key, 'is required to mount the new NFS datastore %s (%s)'
                                    % (name, 'the NFS server' if key == 'hosts' else 'the exported directory'))
            source = {'hosts': list(given['hosts']), 'dir': given['dir'], 'format': given.get('format', 'nfs')}
            if source['format'] == 'nfs' and len(source['hosts']) > 1:
                raise SpecError('source.hosts', 'NFS 3 mounts exactly one server; several addresses of one server '
                                                'need source.format: nfs41')
            mounted = []
        self._check_hosts_free(name, row, source, hosts)
        return {'type': source['format'], 'path': row.get('summary.url') if row else None, 'source': source,
                'autostart': None, 'hosts': sorted(set(mounted) | set(h['name'] for h in hosts))}

    @staticmethod
    def _check_same_export(name, row, source, given):
        """Refuse to point an existing datastore at another server, export or NFS version."""
        wanted, have = [], []
        if given.get('hosts') and set(h.lower() for h in given['hosts']) != \
                set(h.lower() for h in source.get('hosts') or []):
            wanted.append('server %s' % ', '.join(given['hosts']))
            have.append('server %s' % ', '.join(source.get('hosts') or []))
        if given.get('dir') and given['dir'] != source.get('dir'):
            wanted.append('export %s' % given['dir'])
            have.append('export %s' % source.get('dir'))
        if given.get('format') and given['format'] != source.get('format'):
            wanted.append('NFS version %s' % given['format'])
            have.append('NFS version %s' % source.get('format'))
        if wanted:
            raise SpecError('source', 'datastore %s is mounted from %s, not %s; it is never remounted from another '
                                      'server or export - unmount it first (state: absent) or use another name'
                            % (name, ' and '.join(have), ' and '.join(wanted)))

    def _check_hosts_free(self, name, row, source, hosts):
        """Refuse hosts that mount the same export under another name (vSphere would refuse the mount)."""
        inv = self.inventory()
        servers = set(h.lower() for h in source.get('hosts') or [])
        for other in inv.rows('datastores'):
            if row is not None and other['moid'] == row['moid']:
                continue
            theirs = _source(other.get('info'))
            if not theirs.get('dir') or _norm_dir(theirs['dir']) != source.get('dir') or \
                    not servers & set(h.lower() for h in theirs.get('hosts') or []):
                continue
            for host in hosts:
                if other['moid'] in (host.get('datastore') or []):
                    raise SpecError('name', 'host %s already mounts %s:%s as datastore %s; an export is mounted once '
                                            'per host - use that name'
                                    % (host['name'], ','.join(source['hosts']), source['dir'], other['name']))

    # -- writes ---------------------------------------------------------------------------------
    def _dss(self):
        return dict((h['name'], h.get('configManager.datastoreSystem@ref')) for h in self.hosts())

    def _mount(self, name, spec, targets):
        """Mount on ``targets`` (host names); on failure, unmount again where this run mounted."""
        dss = self._dss()
        done = []
        self._stale = True
        for host in targets:
            try:
                self.client.mount_nas_datastore(dss[host], host, name, spec['source']['hosts'],
                                                spec['source']['dir'], spec['source']['format'])
            except VirtError as exc:
                if done:
                    undone, report = self._undo(name, done)
                    exc.msg = '%s. %s' % (exc.msg, report)
                    if not undone:
                        exc.details['performed'] = True  # still mounted where this run mounted it: a change
                raise
            done.append(host)
        return None

    def _undo(self, name, done):
        """Unmount from the hosts in ``done``: ``(whether it worked, what to tell)``."""
        try:
            actual = self.read(name)
            if actual is not None:
                self._unmount(actual, done)
            return True, 'Unmounted it again from %s, where this run had mounted it' % ', '.join(done)
        except VirtError as exc:
            return False, 'Unmounting it again from %s failed too: %s' % (', '.join(done), exc.msg)

    def create(self, name, spec):
        return self._mount(name, spec, [h['name'] for h in self.hosts()])

    def plan_update(self, actual, spec):
        add = [h['name'] for h in self.hosts() if not actual['mounts'].get(h['name'])]
        return Plan(['hosts'] if add else [], details={'add': add, 'spec': spec})

    def apply_update(self, actual, plan):
        return self._mount(actual['name'], plan.details['spec'], plan.details['add'])

    @staticmethod
    def _targets(actual):
        return [host for host, mounted in sorted(actual['mounts'].items()) if mounted]

    def delete(self, actual, options):
        self._unmount(actual, self._targets(actual))
        return None

    def _check_unmountable(self, actual):
        """Refuse datastores other than NFS, and NFS datastores that VMs on the chosen hosts use."""
        inv = self.inventory()
        row = actual['row']
        targets = self._targets(actual)
        kind = (row.get('summary.type') or 'other').lower()
        if kind not in NFS_FORMATS:
            raise SpecError('name', 'datastore %s is of type %s, not NFS; this module unmounts NFS datastores only '
                                    '(removing it could destroy its data) - nothing was changed' % (row['name'], kind))
        users = set(row.get('vm') or [])
        busy = []
        for host in self.hosts():
            if host['name'] in targets:
                busy += [(inv.get(vm) or {}).get('name') or vm for vm in host.get('vm') or [] if vm in users]
        if busy:
            raise SpecError('state', 'datastore %s is in use by VMs on the hosts to unmount it from (%s); move or '
                                     'remove them first - nothing was changed' % (row['name'], _names(busy)))

    def _unmount(self, actual, targets):
        row = actual['row']
        dss = self._dss()
        everyone = self.mounting(self.inventory(), row)
        self._stale = True
        for index, host in enumerate(targets):
            try:
                self.client.remove_datastore(dss[host], host, row['ref'], row['name'])
            except BackendError as exc:
                if not exc.details.get('unsupported') or index:
                    if index:
                        exc.details['performed'] = True  # already unmounted from the hosts before this one
                    raise
                # a server without HostDatastoreSystem.RemoveDatastore (govmomi's simulator): unmounting
                # from every host that mounts it is removing the datastore from the inventory
                others = sorted(set(everyone) - set(targets))
                if others:
                    raise BackendError('%s; the datastore is also mounted on %s, so it cannot be removed as a whole '
                                       'instead - nothing was changed' % (exc.msg, ', '.join(others)))
                self.client.destroy_datastore(row['ref'], row['name'], self.task_timeout)
                return

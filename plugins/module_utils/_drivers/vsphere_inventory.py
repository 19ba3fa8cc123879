# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vSphere inventory of one run, indexed: names, parents, paths, placement.

Built from the single PropertyCollector query of ``VSphereClient.inventory``;
everything here works on those plain dicts and asks vSphere nothing more.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def _names(rows):
    return ', '.join(sorted(set(r['name'] for r in rows))) or 'none'


class Inventory:
    """``kinds``: plain dicts by kind (``VSphereClient.inventory``); ``load_vms``: when ``kinds`` holds no VMs, what
    reads them (VM rows) the first time ``rows('vms')`` asks - a run that finds its VM by name never lists them."""

    def __init__(self, kinds, load_vms=None):
        self.kinds = kinds
        self.by_id = {}
        for rows in kinds.values():
            self._index(rows)
        self._dc_cache = {}
        self._load_vms = load_vms

    def _index(self, rows):
        for row in rows:
            self.by_id[row['moid']] = row

    @property
    def has_vms(self):
        """Whether the VM rows are read (asking ``rows('vms')`` reads them when they are not)."""
        return self._load_vms is None

    def rows(self, kind):
        if kind == 'vms' and self._load_vms is not None:
            load, self._load_vms = self._load_vms, None
            self.kinds['vms'] = list(load())
            self._index(self.kinds['vms'])
            self._dc_cache = {}
        return self.kinds.get(kind, [])

    def get(self, moid):
        return self.by_id.get(moid)

    def datacenter_of(self, moid):
        """The datacenter row that holds ``moid`` (None outside any)."""
        if moid in self._dc_cache:
            return self._dc_cache[moid]
        seen, row, found = [], self.by_id.get(moid), None
        while row is not None:
            if row['type'] == 'Datacenter':
                found = row
                break
            seen.append(row['moid'])
            row = self.by_id.get(row.get('parent'))
        for item in seen + [moid]:
            self._dc_cache[item] = found
        return found

    def path(self, moid):
        """Inventory path such as ``/DC0/vm/web``."""
        parts, row = [], self.by_id.get(moid)
        while row is not None:
            parts.append(row['name'])
            row = self.by_id.get(row.get('parent'))
        return '/' + '/'.join(reversed(parts))

    def vm_parents(self, datacenter=None, folder=None):
        """The folders and vApps a VM named with these placement options can be in (directly): the folder named
        (SpecError when there is none), else every VM folder of the datacenter named (of all datacenters when
        none is), and without a datacenter every vApp too - a VM in a vApp has no folder, hence no datacenter."""
        if folder:
            return [self.folder(self.datacenter(datacenter), folder)]
        dcs = set(d['moid'] for d in self.rows('datacenters') if not datacenter or d['name'] == datacenter)
        found = [f for f in self.rows('folders') if 'VirtualMachine' in (f.get('childType') or []) and
                 (self.datacenter_of(f['moid']) or {}).get('moid') in dcs]
        if not datacenter:
            found += [p for p in self.rows('pools') if p['type'] == 'VirtualApp']
        return found

    def in_dc(self, kind, dc):
        return [r for r in self.rows(kind) if (self.datacenter_of(r['moid']) or {}).get('moid') == dc['moid']]

    def compute_of_host(self, host_moid):
        host = self.by_id.get(host_moid)
        return self.by_id.get(host.get('parent')) if host else None

    def hosts_of(self, compute):
        return [self.by_id[h] for h in compute.get('host') or [] if h in self.by_id]

    # -- resolving the user's placement names --------------------------------------------
    def datacenter(self, name):
        dcs = self.rows('datacenters')
        if name:
            found = [d for d in dcs if d['name'] == name]
            if not found:
                raise SpecError('datacenter', 'no datacenter named %r; there are: %s' % (name, _names(dcs)))
            return found[0]
        if len(dcs) == 1:
            return dcs[0]
        raise SpecError('datacenter', 'there are %d datacenters (%s): name one' % (len(dcs), _names(dcs)))

    def compute(self, dc, cluster=None, host=None, required=True):
        """(compute resource, host or None) from the cluster and host names."""
        computes = self.in_dc('compute', dc)
        clusters = [c for c in computes if c['type'] == 'ClusterComputeResource']
        found_cluster = found_host = None
        if cluster:
            matches = [c for c in clusters if c['name'] == cluster]
            if not matches:
                raise SpecError('cluster', 'no cluster named %r in datacenter %s; clusters there: %s'
                                % (cluster, dc['name'], _names(clusters)))
            found_cluster = matches[0]
        if host:
            hosts = self.in_dc('hosts', dc)
            if found_cluster:
                hosts = [h for h in hosts if h.get('parent') == found_cluster['moid']]
            matches = [h for h in hosts if h['name'] == host]
            if not matches:
                where = 'cluster %s' % cluster if cluster else 'datacenter %s' % dc['name']
                raise SpecError('host', 'no host named %r in %s; hosts there: %s' % (host, where, _names(hosts)))
            found_host = matches[0]
            return self.by_id[found_host['parent']], found_host
        if found_cluster:
            return found_cluster, None
        if len(computes) == 1:
            compute = computes[0]
            return compute, (self.hosts_of(compute)[0] if compute['type'] != 'ClusterComputeResource' else None)
        if not required:
            return None, None
        raise SpecError('cluster', 'name the cluster or host for the new VM (option cluster or host); '
                                   'datacenter %s has: %s' % (dc['name'], _names(computes)))

    def resource_pool(self, compute, name):
        if not name:
            return self.by_id[compute['resourcePool']]
        pools = [p for p in self.rows('pools') if p.get('owner') == compute['moid']]
        matches = [p for p in pools if p['name'] == name or self.path(p['moid']).endswith('/' + name.strip('/'))]
        if not matches:
            raise SpecError('resource_pool', 'no resource pool %r in %s; pools there: %s'
                            % (name, compute['name'], _names(pools)))
        return matches[0]

    def folder(self, dc, name):
        root = self.by_id[dc['vmFolder']]
        if not name or name.strip('/') in ('', 'vm'):
            return root
        base = self.path(root['moid'])
        wanted = name if name.startswith('/') else base + '/' + name.strip('/')
        folders = [f for f in self.in_dc('folders', dc) if 'VirtualMachine' in (f.get('childType') or [])]
        matches = [f for f in folders if self.path(f['moid']) == wanted.rstrip('/')]
        if not matches:
            raise SpecError('folder', 'no VM folder %r in datacenter %s (create it first); VM folders there: %s'
                            % (name, dc['name'], ', '.join(sorted(self.path(f['moid']) for f in folders))))
        return matches[0]

    def datastore(self, dc, name, hosts, param='datastore'):
        stores = self.in_dc('datastores', dc)
        reachable = [s for s in stores if all(s['moid'] in (h.get('datastore') or []) for h in hosts)]
        if not name:
            if len(reachable) == 1:
                return reachable[0]
            raise SpecError(param, 'name the datastore for the new VM; datastores reachable there: %s'
                            % _names(reachable))
        matches = [s for s in stores if s['name'] == name]
        if not matches:
            raise SpecError(param, 'no datastore named %r in datacenter %s; datastores there: %s'
                            % (name, dc['name'], _names(stores)))
        if matches[0] not in reachable:
            raise SpecError(param, 'datastore %r is not mounted on %s; datastores reachable there: %s'
                            % (name, ', '.join(h['name'] for h in hosts), _names(reachable)))
        if matches[0].get('summary.accessible') is False:
            raise SpecError(param, 'datastore %r is not accessible now' % name)
        return matches[0]

    def network(self, dc, name, hosts, param):
        nets = [n for n in self.in_dc('networks', dc) if not n['name'].endswith('-DVUplinks') and
                '-DVUplinks-' not in n['name']]
        reachable = [n for n in nets if all(n['moid'] in (h.get('network') or []) for h in hosts)]
        matches = [n for n in nets if n['name'] == name]
        if not matches:
            raise SpecError(param, 'no port group named %r in datacenter %s; port groups there: %s'
                            % (name, dc['name'], _names(reachable)))
        matches = [n for n in matches if n in reachable]
        if not matches:
            raise SpecError(param, 'port group %r is not available on %s; port groups there: %s'
                            % (name, ', '.join(h['name'] for h in hosts), _names(reachable)))
        if len(matches) > 1:
            raise SpecError(param, '%d port groups are named %r; rename one' % (len(matches), name))
        net = dict(matches[0])
        if net['type'] == 'DistributedVirtualPortgroup':
            switch = self.by_id.get(net.get('config.distributedVirtualSwitch')) or {}
            net['portgroup_key'] = net.get('key')
            net['switch_uuid'] = switch.get('uuid')
        net['ref'] = matches[0].get('ref')
        return net

    def network_name(self, nic):
        """The port group name a NIC device (plain dict) is attached to."""
        if nic.get('portgroup_key'):
            for net in self.rows('networks'):
                if net.get('key') == nic['portgroup_key']:
                    return net['name']
            return nic['portgroup_key']
        return nic.get('network_name')

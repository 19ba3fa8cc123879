# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vSphere host driver: an ESXi host's hardware in the shape of ``LibvirtHostDriver.describe``.

Also the choice of ESXi hosts by the placement options ``datacenter``, ``cluster`` and ``host``
(the names the ``vm`` module places a VM with), shared by the other vSphere drivers.

ESXi is not KVM: ``kvm.usable`` is false and ``kvm.device``/``kvm.nested`` null; ESXi manages large
pages itself and reports no huge page pools (``hugepages`` is empty); ``domain_types`` names the
one guest type, ``vmware`` (libvirt's name for ESX guests), for the host's architecture.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils._clients.vsphere import HOST_FACTS
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_inventory import Inventory
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import Driver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

MIB = 1024 * 1024
_VENDORS = {'intel': ('Intel', 'x86_64'), 'amd': ('AMD', 'x86_64'), 'hygon': ('Hygon', 'x86_64'),
            'arm': ('ARM', 'aarch64')}

# Placement options that choose ESXi hosts (doc fragment virtfleet.virt.vsphere.hosts).
HOST_OPTIONS = ('datacenter', 'cluster', 'host')


def _names(rows):
    return ', '.join(sorted(set(r['name'] for r in rows))) or 'none'


def select_hosts(inv, datacenter=None, cluster=None, host=None, single=True, several=False):
    """The host rows that ``datacenter``/``cluster``/``host`` name, from a ``host_inventory``.

    ``single``: exactly one host is wanted; without ``host`` that works only when there is one
    (e.g. a connection straight to an ESXi host). Otherwise all hosts of the cluster (or of the
    named host) are returned. Unknown names fail naming the option and what exists. ``several``:
    the module takes all hosts of a cluster too (said in the message).
    """
    hosts = inv.rows('hosts')
    dcs = inv.rows('datacenters')
    where = 'vSphere'
    if datacenter:
        found = [d for d in dcs if d['name'] == datacenter]
        if not found:
            raise SpecError('datacenter', 'no datacenter named %r; there are: %s' % (datacenter, _names(dcs)))
        hosts = [h for h in hosts if (inv.datacenter_of(h['moid']) or {}).get('moid') == found[0]['moid']]
        where = 'datacenter %s' % datacenter
    if cluster:
        clusters = [c for c in inv.rows('compute') if c['type'] == 'ClusterComputeResource'
                    and (not datacenter or inv.datacenter_of(c['moid']) in [d for d in dcs if d['name'] == datacenter])]
        found = [c for c in clusters if c['name'] == cluster]
        if not found:
            raise SpecError('cluster', 'no cluster named %r in %s; clusters there: %s'
                            % (cluster, where, _names(clusters)))
        if len(found) > 1:
            raise SpecError('cluster', '%d clusters are named %r; name the datacenter too (option datacenter)'
                            % (len(found), cluster))
        hosts = [h for h in hosts if h.get('parent') == found[0]['moid']]
        where = 'cluster %s' % cluster
    if host:
        matches = [h for h in hosts if h['name'] == host]
        if not matches:
            raise SpecError('host', 'no ESXi host named %r in %s; hosts there: %s' % (host, where, _names(hosts)))
        if len(matches) > 1:
            raise SpecError('host', '%d ESXi hosts are named %r; name the datacenter too (option datacenter)'
                            % (len(matches), host))
        return matches
    if not hosts:
        raise SpecError('cluster' if cluster else 'host', 'there is no ESXi host in %s' % where)
    if single and len(hosts) > 1:
        raise SpecError('host', '%s has %d ESXi hosts (%s): name one with option host%s'
                        % (where, len(hosts), _names(hosts),
                           ', or a cluster with option cluster for all its hosts' if several else ''))
    return sorted(hosts, key=lambda h: h['name'])


def placement_of(inv, row):
    """Datacenter and cluster names of a host (cluster null for a standalone host)."""
    dc = inv.datacenter_of(row['moid']) or {}
    compute = inv.get(row.get('parent')) or {}
    return {'datacenter': dc.get('name'),
            'cluster': compute.get('name') if compute.get('type') == 'ClusterComputeResource' else None}


def _div(value, by):
    return value // by if value is not None and by else None


class HostScopedDriver(Driver):
    """Base of the drivers of objects that live on a set of ESXi hosts (port groups, datastores).

    The placement options (``datacenter``, ``cluster``, ``host``) choose the hosts: one host unless
    a cluster or host is named when ``managing``, all the options allow when listing. The run reads
    the inventory once (``_query``, one PropertyCollector query) and again only after it wrote
    (a write sets ``_stale``).
    """

    def __init__(self, client, placement=None, managing=True):
        super().__init__(client)
        self.placement = dict((k, v) for k, v in (placement or {}).items()
                              if k in ('datacenter', 'cluster', 'host') and v is not None)
        self.single = managing and not (self.placement.get('cluster') or self.placement.get('host'))
        self._inv = None
        self._hosts = None
        self._stale = False

    def _query(self):
        """The rows of ``client.host_inventory`` this driver needs."""
        raise NotImplementedError

    def inventory(self):
        """The one query of a run (again only after this run wrote)."""
        if self._inv is None or self._stale:
            self._inv = Inventory(self._query())
            self._hosts = None
            self._stale = False
        return self._inv

    def hosts(self):
        """The hosts this run manages or lists, from the placement options."""
        inv = self.inventory()
        if self._hosts is None:
            self._hosts = select_hosts(inv, single=self.single, several=True, **self.placement)
        return self._hosts


class VSphereHostDriver:
    def __init__(self, client, placement=None):
        self.client = client
        self.placement = dict((k, v) for k, v in (placement or {}).items() if k in HOST_OPTIONS)

    def describe(self):
        inv = Inventory(self.client.host_inventory('reading the ESXi hosts', HOST_FACTS))
        row = select_hosts(inv, **self.placement)[0]
        return self.facts(inv, row)

    def facts(self, inv, row):
        cpu_info = row.get('hardware.cpuInfo') or {}
        packages = row.get('hardware.cpuPkg') or []
        vendor, arch = _VENDORS.get(((packages[0].get('vendor') if packages else None) or '').lower(),
                                    (None, None))
        sockets, cores, threads = (cpu_info.get('numCpuPackages'), cpu_info.get('numCpuCores'),
                                   cpu_info.get('numCpuThreads'))
        total = _div(row.get('hardware.memorySize'), MIB)
        used = row.get('summary.quickStats.overallMemoryUsage')   # MiB
        product = row.get('config.product') or {}
        about = self.client.about()
        numa = []
        for node in (row.get('hardware.numaInfo') or {}).get('numaNode') or []:
            numa.append({'id': node.get('typeId'),
                         'memory_mib': _div(node.get('memorySize') or node.get('memoryRangeLength'), MIB),
                         'cpus': sorted(node.get('cpuID') or [])})
        vsphere = placement_of(inv, row)
        vsphere.update(moid=row['moid'], connection_state=row.get('runtime.connectionState'),
                       power_state=row.get('runtime.powerState'),
                       maintenance_mode=row.get('runtime.inMaintenanceMode'),
                       dns_hostname=row.get('config.network.dnsConfig.hostName'))
        return {
            'backend': 'vsphere',
            'hostname': row['name'],
            'uuid': row.get('hardware.systemInfo.uuid'),
            'cpu': {
                'model': row.get('summary.hardware.cpuModel') or (packages[0].get('description') if packages else None),
                'vendor': vendor,
                'arch': arch,
                'count': threads,
                'sockets': sockets,
                'cores_per_socket': _div(cores, sockets),
                'threads_per_core': _div(threads, cores),
                'mhz': row.get('summary.hardware.cpuMhz') or _div(cpu_info.get('hz'), 1000000),
            },
            'memory': {'total_mib': total,
                       'free_mib': max(total - used, 0) if total is not None and used is not None else None},
            'numa': sorted(numa, key=lambda n: (n['id'] is None, n['id'])),
            'hugepages': [],
            'kvm': {'usable': False, 'device': None, 'nested': None},
            'versions': {
                'libvirt': None,
                'hypervisor': product.get('version'),
                'hypervisor_type': 'ESXi',
                'hypervisor_build': product.get('build'),
                'vcenter': about['version'] if about['api_type'] == 'VirtualCenter' else None,
                'vcenter_build': about['build'] if about['api_type'] == 'VirtualCenter' else None,
            },
            'domain_types': {arch: ['vmware']} if arch else {},
            'vsphere': vsphere,
        }

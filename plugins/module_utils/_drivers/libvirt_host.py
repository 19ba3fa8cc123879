# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt host driver: the hypervisor host's facts in the collection's host shape."""

from __future__ import annotations

import os

from ansible_collections.virtfleet.virt.plugins.module_utils import _xml
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError


def _version(number):
    """libvirt's integer versions: major * 1,000,000 + minor * 1,000 + release."""
    return '%d.%d.%d' % (number // 1000000, (number // 1000) % 1000, number % 1000)


def _nested_enabled():
    """Whether the local kvm_intel/kvm_amd module allows nested guests; None when unknown."""
    for module in ('kvm_intel', 'kvm_amd'):
        path = '/sys/module/%s/parameters/nested' % module
        try:
            with open(path) as handle:
                return handle.read().strip() in ('Y', 'y', '1')
        except OSError:
            continue
    return None


class LibvirtHostDriver:
    def __init__(self, client):
        self.client = client

    def _kvm_usable(self):
        try:
            self.client.domain_capabilities(virttype='kvm')
        except BackendError:
            return False
        return True

    def _memory(self):
        """Total memory, and what new guests can use: free plus buffers and page cache (MiB).

        From the host's memory statistics (all NUMA cells), as the migrate pre-check counts it.
        """
        stats = self.client.memory_stats()
        available = sum(stats.get(key, 0) for key in ('free', 'buffers', 'cached'))
        return {'total_mib': stats['total'] // 1024, 'free_mib': available // 1024}

    def describe(self):
        caps = _xml.from_string(self.client.capabilities())
        model, _memory_mib, cpus, mhz, _nodes, sockets, cores, threads = self.client.node_info()
        cpu = caps.find('host/cpu')
        topology = cpu.find('topology') if cpu is not None else None
        cells = caps.findall('host/topology/cells/cell')
        numa = []
        page_sizes = set()
        for cell in cells:
            memory = cell.find('memory')
            numa.append({
                'id': int(cell.get('id')),
                'memory_mib': int(memory.text) // 1024 if memory is not None else None,
                'cpus': sorted(int(c.get('id')) for c in cell.findall('cpus/cpu')),
            })
            page_sizes.update(int(p.get('size')) for p in cell.findall('pages'))
        hugepages = []
        huge_sizes = sorted(size for size in page_sizes if size > 4)
        if huge_sizes and cells:
            free = self.client.free_pages(huge_sizes, len(cells))
            for size in huge_sizes:
                total = sum(int(p.text) for cell in cells for p in cell.findall('pages')
                            if int(p.get('size')) == size)
                hugepages.append({'size_kib': size, 'total': total,
                                  'free': sum(cell_free.get(size, 0) for cell_free in free.values())})
        domain_types = {}
        for guest in caps.findall('guest'):
            arch = guest.find('arch')
            if arch is None:
                continue
            types = domain_types.setdefault(arch.get('name'), [])
            for dom in arch.findall('domain'):
                if dom.get('type') not in types:
                    types.append(dom.get('type'))
        lib_version, hv_version, hv_type = self.client.versions()
        local = self.client.is_local()
        return {
            'backend': 'libvirt',
            'hostname': self.client.hostname(),
            'uuid': caps.findtext('host/uuid'),
            'cpu': {
                'model': cpu.findtext('model') if cpu is not None else model,
                'vendor': cpu.findtext('vendor') if cpu is not None else None,
                'arch': cpu.findtext('arch') if cpu is not None else model,
                'count': cpus,
                'sockets': int(topology.get('sockets')) if topology is not None else sockets,
                'cores_per_socket': int(topology.get('cores')) if topology is not None else cores,
                'threads_per_core': int(topology.get('threads')) if topology is not None else threads,
                'mhz': mhz,
            },
            'memory': self._memory(),
            'numa': numa,
            'hugepages': hugepages,
            'kvm': {
                'usable': self._kvm_usable(),
                'device': os.path.exists('/dev/kvm') if local else None,
                'nested': _nested_enabled() if local else None,
            },
            'versions': {'libvirt': _version(lib_version), 'hypervisor': _version(hv_version),
                         'hypervisor_type': hv_type},
            'domain_types': dict((arch, sorted(types)) for arch, types in domain_types.items()),
        }

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a libvirt VM's guest takes part in: its addresses (DHCP lease, guest agent, ARP), its cloud-init
NoCloud seed (a volume the driver keeps next to the VM's disks) and the vCPUs it onlines through its agent."""

from __future__ import annotations

import time

from ansible_collections.virtfleet.virt.plugins.module_utils import _cloud_init, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml as domxml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_volume import LibvirtSeedDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError

ADDRESS_SOURCES = ('agent', 'lease', 'arp')


def seed_disk(disks, volume):
    """The disk of the seed volume ``volume`` among ``disks``, or None."""
    return next((d for d in disks if d.get('volume') == volume), None)


def addresses(client, dom, sources=('lease', 'agent')):
    """The guest's addresses from the first of ``sources`` that knows any, each with its ``source``."""
    for source in sources:
        found = []
        for ifname, info in sorted(client.interface_addresses(dom, source).items()):
            for addr in info.get('addrs') or []:
                if addr.get('addr') in ('127.0.0.1', '::1'):
                    continue
                found.append({'interface': ifname, 'mac': info.get('hwaddr'), 'address': addr.get('addr'),
                              'prefix': addr.get('prefix'), 'source': source})
        if found:
            return found
    return []


def first_ipv4(client, dom, macs, agent):
    """The first usable IPv4 address of the guest's NICs (``macs``), asking the guest agent first when the VM
    has one, then the DHCP leases of libvirt's networks, then the host's ARP table. ``None`` while none is known."""
    for source in ADDRESS_SOURCES:
        if source == 'agent' and not agent:
            continue
        for item in addresses(client, dom, (source,)):
            if _vm_spec.usable_ipv4(item['address']) and (item['mac'] or '').lower() in macs:
                return item
    return None


# -- the cloud-init seed ------------------------------------------------------------------

def with_seed_disk(partial, actual):
    """``partial`` with the VM's seed disk as it is in a ``disks`` list that does not name it, so that the seed
    keeps its target and new disks take other ones."""
    seed = actual['spec'].get('cloud_init') if actual else None
    if not seed or partial.get('disks') is None or seed_disk(partial['disks'], seed['volume']) is not None:
        return partial
    disk = seed_disk(actual['spec']['disks'], seed['volume'])
    return dict(partial, disks=partial['disks'] + [dict(disk)]) if disk else partial


def keep_attached(spec):
    """``spec`` with the disk of its seed (``spec['cloud_init']``) in its disks: a VM keeps its seed while it
    has one, whatever a ``disks`` list that does not name it says."""
    seed = spec.get('cloud_init')
    if not seed:
        return spec
    disk = seed_disk(spec['disks'], seed['volume'])
    if disk is None or disk['pool'] != seed['pool']:
        if disk is not None:
            spec['disks'].remove(disk)
        spec['disks'].append({'pool': seed['pool'], 'volume': seed['volume'], 'device': 'disk', 'bus': 'virtio',
                              'format': 'raw', 'readonly': True})
        _vm_spec.assign_targets(spec['disks'])
    return spec


def customization_seed(name, custom, vm_uuid, macs):
    """The seed request (as ``_vm_spec`` makes one of ``cloud_init``) of the normalized customization ``custom``
    of VM ``name``: the same seed volume, written by ``Seeds`` as that of the cloud_init option."""
    files = _cloud_init.customization_files(custom, vm_uuid, macs)
    return dict(_cloud_init.seed_spec(files), volume=_cloud_init.vm_seed_volume(name), data=files, customization=True)


def linked_clones(client, vm_uuid):
    """The names of the VMs whose clone record names VM ``vm_uuid`` as the source of a linked clone."""
    found = []
    for dom in client.list_domains():
        try:
            record = domxml.clone_record(client.domain_xml(dom, inactive=True))
        except (BackendError, NotFound):
            continue  # gone meanwhile
        if record and record['linked'] and record['uuid'] == vm_uuid:
            found.append(dom.name())
    return sorted(found)


class Seeds:
    """The NoCloud seeds of the VMs of one run: the files each VM's request asks for, and reading and writing
    the seed volumes. One object serves the many VMs of a fleet (the files keyed by seed volume)."""

    def __init__(self, client):
        self.client = client
        self.files = {}

    def actual(self, volume, disks):
        """The VM's seed as it is: ``{pool, volume, content_sha256, files}`` read from the attached seed volume."""
        disk = seed_disk(disks, volume)
        if disk is None:
            return None
        try:
            found = LibvirtSeedDriver(self.client, disk['pool'], require_pool=False).read(disk['volume'])
        except SpecError:
            # its pool is inactive: the seed's content cannot be read, which is no failure of a run that only
            # reads the VM (vm_info, or a vm task that does not name cloud_init); writing it says so
            found = None
        spec = found['spec'] if found else {'content_sha256': None, 'files': []}
        return dict(spec, pool=disk['pool'], volume=disk['volume'])

    def desired(self, wanted, spec):
        """The seed of ``spec`` (the merged VM spec) and its disk, added to ``spec['disks']`` when missing.

        ``wanted`` is the request's ``cloud_init`` (``_vm_spec.partial_from_params``): the seed lives in its
        ``pool``, else where it is, else in the pool of the VM's first pool volume; its files are kept for
        ``write``.
        """
        volume = wanted['volume']
        self.files[volume] = wanted['data']
        attached = seed_disk(spec['disks'], volume)
        pool = wanted.get('pool') or (attached or {}).get('pool') or next(
            (d['pool'] for d in spec['disks'] if d.get('pool')), None)
        if not pool and wanted.get('customization'):
            raise SpecError('customization', 'is written to a cloud-init seed volume in the pool of the VM\'s first '
                                             'disk that is a storage pool volume, and the VM has none: give it a disk '
                                             'by pool and volume')
        if not pool:
            raise SpecError('cloud_init.pool', 'name the storage pool that keeps the seed: the VM has no disk in a '
                                               'storage pool to take it from')
        spec['cloud_init'] = {'pool': pool, 'volume': volume, 'content_sha256': wanted['content_sha256'],
                              'files': sorted(wanted['files'])}
        return keep_attached(spec)

    def write(self, seed):
        """Create or rewrite the seed volume; ``True`` when it made a new volume (a failed VM definition removes
        it again)."""
        driver = LibvirtSeedDriver(self.client, seed['pool'], self.files[seed['volume']])
        partial = {'content_sha256': seed['content_sha256'], 'files': seed['files']}
        actual = driver.read(seed['volume'])
        spec = driver.desired(partial, actual)
        if actual is None:
            driver.create(seed['volume'], spec)
            return True
        plan = driver.plan_update(actual, spec)
        if plan.changes:
            driver.apply_update(actual, plan)
        return False

    def changed_warning(self, vm_name, seed):
        """What a changed seed of a VM that exists means for cloud-init."""
        meta = self.files[seed['volume']].get('meta-data', b'').decode('utf-8', 'replace')
        return ('the cloud-init seed of VM %s changed (%s/%s): the guest reads it at its next boot, and cloud-init '
                'runs its per-instance modules again only when the instance-id in meta_data changes (meta-data: %s)'
                % (vm_name, seed['pool'], seed['volume'], ' '.join(meta.split())[:120]))

    def remove(self, seed):
        driver = LibvirtSeedDriver(self.client, seed['pool'], require_pool=False)
        actual = driver.read(seed['volume'])
        if actual is not None:
            driver.delete(actual, {})


# -- vCPUs inside the guest ---------------------------------------------------------------

def online_vcpus(client, dom, count, timeout=30.0):
    """Online ``count`` vCPUs inside the guest through its agent once the hot-plugged ones show there.

    Returns a warning when the agent does not answer or the guest does not take them within ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            client.set_guest_vcpus(dom, count)
            if client.guest_vcpus_online(dom) == count:
                return None
        except BackendError as exc:
            last = exc.msg
        if time.monotonic() >= deadline:
            return ('the running guest has %d vCPUs but its guest agent did not online them within %d s (%s); '
                    'online them in the guest (echo 1 > /sys/devices/system/cpu/cpuN/online)'
                    % (count, timeout, last or 'fewer online'))
        time.sleep(0.5)

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A new libvirt VM cloned from another (``clone_from``): its spec built from the source's, and its volumes.

Each disk of the source (device ``disk``) that is a volume of a storage pool becomes a new volume in the same
pool, named ``<new VM>-<target>.qcow2`` (a linked clone, or a full copy of a qcow2 volume) or
``<new VM>-<target>.img`` (a full copy of a raw volume): a qcow2 overlay whose backing file is the source's
volume (``linked_clone``), or a full copy streamed by libvirt (``createXMLFrom``). Read-only disks outside any
pool and cdroms are shared as they are; the source's cloud-init seed is not copied; the NICs get fresh MACs; a CPU
libvirt chose itself for the source (``check='none'``) is left to libvirt again.
Nothing is written before ``create_volumes``; a failure there removes the volumes it made.
"""

from __future__ import annotations

import copy

from ansible_collections.virtfleet.virt.plugins.module_utils import _cloud_init
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml as domxml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_volume import LibvirtVolumeDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._storage_spec import human_size


def volume_name(vm_name, target, fmt):
    return '%s-%s.%s' % (vm_name, target, 'qcow2' if fmt == 'qcow2' else 'img')


class Cloner:
    """Plans and makes the volumes of one new clone."""

    def __init__(self, client):
        self.client = client

    def _pool_volume(self, disk):
        """``(pool, volume)`` of a disk that is a pool volume, else ``(None, None)``."""
        if disk.get('volume'):
            return disk['pool'], disk['volume']
        if disk.get('path'):
            try:
                vol = self.client.lookup_volume_by_path(disk['path'])
            except NotFound:
                return None, None
            return self.client.volume_pool(vol).name(), vol.name()
        return None, None

    def plan(self, name, source, linked):
        """``(base_spec, jobs)``: the spec of the new VM ``name`` before the task's own options, and the volumes
        to create (``SpecError`` naming clone_from for what cannot be cloned)."""
        where = 'VM %s' % source['name']
        spec = copy.deepcopy(source['spec'])
        seed = _cloud_init.vm_seed_volume(source['name'])
        disks, jobs = [], []
        for disk in spec['disks']:
            if disk.get('volume') == seed:
                continue  # the source's cloud-init seed belongs to the source's instance
            if disk.get('device') != 'disk':
                disks.append(disk)
                continue
            pool, vol = self._pool_volume(disk)
            if pool is None:
                if disk.get('readonly'):
                    disks.append(disk)
                    continue
                raise SpecError('clone_from', 'disk %s of %s (%s) is not a volume of a libvirt storage pool: a clone '
                                              'copies pool volumes only (import the image into a pool with '
                                              'virtfleet.virt.volume)' % (disk['target'], where, disk.get('path')))
            jobs.append(self._job(name, disk, pool, vol, linked, where))
            disks.append({'pool': pool, 'volume': jobs[-1]['volume'], 'device': 'disk', 'bus': disk['bus'],
                          'target': disk['target'], 'format': jobs[-1]['spec']['format'], 'readonly': False})
        if source['state'] != 'stopped':
            shared_ro = linked and all(j['readonly'] for j in jobs)
            if not shared_ro:
                raise SpecError('clone_from', '%s is %s: a clone is made from a shut off VM (stop it first), or, with '
                                              'linked_clone: true, from one whose disks are all read-only%s'
                                % (where, source['state'], '' if linked else ' (this task copies its disks)'))
        self._check_space(jobs, where, linked)
        spec['disks'] = disks
        spec['interfaces'] = [dict((k, v) for k, v in nic.items() if k != 'mac') for nic in spec['interfaces']]
        spec.update(cloud_init=None, customization=None, template=False, xml=None)
        cpu = domxml.from_string(source['xml']).find('cpu')
        if cpu is not None and cpu.get('check') == 'none':
            spec['cpu'] = None  # libvirt's own default CPU (not checked against the host): libvirt picks it again
        return spec, jobs

    def _job(self, name, disk, pool, vol, linked, where):
        driver = LibvirtVolumeDriver(self.client, pool)
        try:
            source_vol = driver.read(vol)
        except SpecError as exc:
            raise SpecError('clone_from', 'disk %s of %s: %s' % (disk['target'], where, exc.msg))
        if source_vol is None:
            raise SpecError('clone_from', 'disk %s of %s: volume %s is not in storage pool %s'
                            % (disk['target'], where, vol, pool))
        fmt = 'qcow2' if linked else source_vol['spec']['format']
        new = volume_name(name, disk['target'], fmt)
        if driver.read(new) is not None:
            raise SpecError('clone_from', 'volume %s already exists in storage pool %s (a clone\'s disk is a new '
                                          'volume named after it): remove it, or name the VM otherwise' % (new, pool))
        try:
            spec = driver.desired({'backing': (pool, vol)} if linked else {'clone': (pool, vol)}, None)
        except SpecError as exc:
            raise SpecError('clone_from', 'disk %s of %s: %s' % (disk['target'], where, exc.msg))
        return {'pool': pool, 'volume': new, 'source': vol, 'driver': driver, 'spec': spec,
                'allocation': source_vol['facts']['allocation'] or 0, 'readonly': bool(disk.get('readonly'))}

    def _check_space(self, jobs, where, linked):
        """A full copy needs the source's allocation free in the pool (an overlay needs a few KiB: its failure is
        handled when it is created)."""
        if linked:
            return
        needed = {}
        for job in jobs:
            needed[job['pool']] = needed.get(job['pool'], 0) + job['allocation']
        for pool, size in sorted(needed.items()):
            free = self.client.pool_available(self.client.lookup_pool(pool))
            if free < size:
                raise SpecError('clone_from', 'storage pool %s has %s free, but the full copy of the disks of %s '
                                              'needs %s there: free space in the pool, or use linked_clone: true'
                                % (pool, human_size(free), where, human_size(size)))

    def create_volumes(self, jobs):
        """Create the volumes of ``jobs``; the names of those made. On a failure the ones made are deleted again
        and the error says which pool refused."""
        made = []
        for job in jobs:
            try:
                job['driver'].create(job['volume'], job['spec'])
            except VirtError as exc:
                self.remove_volumes(made)
                raise BackendError('cloning volume %s of storage pool %s into %s failed: %s%s'
                                   % (job['source'], job['pool'], job['volume'], exc.msg,
                                      ' (the volumes made before it were removed again)' if made else ''))
            made.append(job)
        return made

    def remove_volumes(self, jobs):
        for job in jobs:
            try:
                self.client.delete_volume(self.client.lookup_volume(job['pool'], job['volume']))
            except VirtError:
                pass

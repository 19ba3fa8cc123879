# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pre-checks of a libvirt migration: everything that can be proved before anything moves, read-only.

``Prechecks`` looks at the two hosts, names taken on the destination, the guest CPU, networks and
memory; ``StorageChecks`` at the storage pools the disks need there and, with ``copy_storage``,
where libvirt would create the copies. Each check adds what it found to ``notes`` and what fails
to ``problems``; ``LibvirtMigrateDriver.precheck`` raises ``PrecheckFailed`` naming them all.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils import _xml
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound


class PrecheckFailed(BackendError):
    """A pre-check proved the migration cannot succeed; nothing was changed."""


class MigrationPart:
    """One concern of a ``LibvirtMigrateDriver``, with its source and destination clients and options."""

    def __init__(self, driver):
        self.driver = driver
        self.source = driver.source
        self.dest = driver.dest
        self.opts = driver.opts


def domain_facts(xml):
    """What the pre-checks need from a domain definition."""
    root = _xml.from_string(xml)
    os_type = root.find('os/type')
    cpu = root.find('cpu')
    facts = {
        'virttype': root.get('type'),
        'arch': os_type.get('arch') if os_type is not None else None,
        'machine': os_type.get('machine') if os_type is not None else None,
        'emulator': root.findtext('devices/emulator'),
        'cpu_mode': (cpu.get('mode') or 'custom') if cpu is not None else None,
        'cpu_model': cpu.findtext('model') if cpu is not None else None,
        'cpu_check': cpu.get('check') if cpu is not None else None,
        'cpu_xml': _xml.to_string(cpu) if cpu is not None else None,
        'networks': [],
        'disks': [],
    }
    for nic in root.findall('devices/interface'):
        source = nic.find('source')
        if nic.get('type') == 'network' and source is not None and source.get('network'):
            if source.get('network') not in facts['networks']:
                facts['networks'].append(source.get('network'))
    for disk in root.findall('devices/disk'):
        source = disk.find('source')
        target = disk.find('target')
        facts['disks'].append({
            'type': disk.get('type'),
            'device': disk.get('device') or 'disk',
            'target': target.get('dev') if target is not None else None,
            'path': source.get('file') or source.get('dev') if source is not None else None,
            'pool': source.get('pool') if source is not None else None,
            'volume': source.get('volume') if source is not None else None,
            'readonly': disk.find('readonly') is not None,
            'shareable': disk.find('shareable') is not None,
        })
    return facts


class Prechecks(MigrationPart):
    """The checks of hosts, names, CPU, networks and memory."""

    def run(self, placement, facts, live):
        """``(problems, notes)`` of every check, in order."""
        problems, notes = [], {}
        self._check_hosts(problems, notes)
        self._check_conflicts(placement, problems)
        self._check_cpu(facts, live, problems, notes)
        self._check_networks(facts, live, problems, notes)
        StorageChecks(self.driver).run(facts, problems, notes)
        if live:
            self._check_memory(placement['source'], problems, notes)
        else:
            notes['memory'] = 'not checked: an offline migration does not start the VM on the destination'
        return problems, notes

    def _check_hosts(self, problems, notes):
        notes['hosts'] = {'source': self.driver.hostname(self.source), 'destination': self.driver.hostname(self.dest)}

    def _check_conflicts(self, placement, problems):
        src, dst, by_uuid = placement['source'], placement['dest'], placement['dest_by_uuid']
        if dst is not None:
            problems.append('a VM named %s already exists on the destination (UUID %s, %s); remove or rename it '
                            'there first' % (dst['name'], dst['uuid'], dst['state']))
        if by_uuid is not None and (dst is None or by_uuid['uuid'] != dst['uuid']):
            problems.append('a VM with the same UUID %s already exists on the destination as %s'
                            % (src['uuid'], by_uuid['name']))

    def _check_cpu(self, facts, live, problems, notes):
        mode = facts['cpu_mode']
        if mode in ('host-passthrough', 'maximum'):
            if not live:
                notes['cpu'] = 'not checked: a stopped %s guest takes the CPU of the host it starts on' % mode
                return
            host_cpu = _xml.from_string(self.source.capabilities()).find('host/cpu')
            verdict, why = self.dest.compare_host_cpu(_xml.to_string(host_cpu))
            notes['cpu'] = '%s (%s guest: source host CPU against the destination host CPU)' % (verdict, mode)
            if verdict == 'incompatible':
                problems.append('the guest CPU is %s and the destination host CPU is not a superset of the '
                                'source host CPU (%s)' % (mode, why or 'incompatible'))
            return
        if not facts['cpu_model']:
            notes['cpu'] = 'not checked: the guest CPU names no model (it is chosen when the VM starts)'
            return
        if facts['cpu_check'] == 'none':
            # libvirt does not check such a CPU when the VM starts either: QEMU drops what the host lacks
            notes['cpu'] = "not checked: the guest CPU has check='none' (QEMU adapts it where the VM starts)"
            return
        verdict, why = self.dest.compare_hypervisor_cpu(facts['cpu_xml'], facts['emulator'], facts['arch'],
                                                        facts['machine'], facts['virttype'])
        notes['cpu'] = verdict
        if verdict == 'incompatible':
            problems.append('the guest CPU is not compatible with the destination (%s)' % (why or 'incompatible'))

    def _check_networks(self, facts, live, problems, notes):
        found = []
        for net_name in facts['networks']:
            try:
                net = self.dest.lookup_network(net_name)
            except NotFound:
                problems.append('network %s, which the VM uses, does not exist on the destination; create it there '
                                'first (virtfleet.virt.network)' % net_name)
                continue
            if live and not self.dest.network_is_active(net):
                problems.append('network %s is not active on the destination; start it there first' % net_name)
                continue
            found.append(net_name)
        notes['networks'] = found

    def _check_memory(self, src, problems, notes):
        need_kib = self.source.domain_info(src['dom'])[2]
        stats = self.dest.memory_stats()
        available_kib = sum(int(stats.get(key, 0)) for key in ('free', 'buffers', 'cached'))
        reserve_kib = (self.opts.get('destination_memory_reserve') or 0) // 1024
        notes['memory'] = {'vm_mib': need_kib // 1024, 'destination_available_mib': available_kib // 1024,
                           'reserve_mib': reserve_kib // 1024}
        if need_kib + reserve_kib > available_kib:
            problems.append('not enough free memory on the destination: it has %d MiB available (free, buffers and '
                            'page cache), the VM uses %d MiB%s'
                            % (available_kib // 1024, need_kib // 1024,
                               ' and destination_memory_reserve keeps %d MiB' % (reserve_kib // 1024)
                               if reserve_kib else ''))


class StorageChecks(MigrationPart):
    """The storage pools the VM's disks need on the destination, and where libvirt would create copies."""

    @staticmethod
    def _pool_by_directory(client, path):
        try:
            return client.lookup_pool_by_target_path(path.rsplit('/', 1)[0] or '/')
        except NotFound:
            return None

    def _check_pool(self, pool_name, what, problems, path=None):
        """The pool must exist on the destination: by name, or (for a file disk) one with the same target."""
        try:
            pool = self.dest.lookup_pool(pool_name)
        except NotFound:
            pool = self._pool_by_directory(self.dest, path) if path else None
            if pool is None:
                problems.append('storage pool %s (%s) does not exist on the destination; define it there first '
                                '(virtfleet.virt.storage_pool)' % (pool_name, what))
                return False
        if not self.dest.pool_is_active(pool):
            problems.append('storage pool %s (%s) is not active on the destination; start it there first'
                            % (pool_name, what))
            return False
        return True

    def run(self, facts, problems, notes):
        """Check the pools of the disks (and, with ``copy_storage``, where their copies go)."""
        copy = self.opts['copy_storage']
        pools, copied = [], []
        for disk in facts['disks']:
            what = 'disk %s' % (disk['target'] or disk['path'] or disk['volume'])
            if disk['type'] == 'volume' and disk['pool']:
                if self._check_pool(disk['pool'], what, problems):
                    self._check_volume(disk, what, copy, problems)
                    if disk['pool'] not in pools:
                        pools.append(disk['pool'])
                continue
            if disk['type'] not in ('file', 'block') or not disk['path']:
                continue
            if copy and disk['device'] == 'disk' and not disk['readonly'] and not disk['shareable']:
                if self._copy_target_ok(disk, what, problems):
                    copied.append(disk['path'])
                continue
            pool = self._pool_by_directory(self.source, disk['path'])
            if pool is not None and self._check_pool(pool.name(), what, problems, disk['path']) \
                    and pool.name() not in pools:
                pools.append(pool.name())
        notes['storage_pools'] = pools
        if copy:
            notes['copied_disks'] = copied

    def _check_volume(self, disk, what, copy, problems):
        """A volume disk's volume must be known to its pool on the destination, unless copy_storage=all copies
        the disk (libvirt creates the volume then). A file that is there on shared storage but that the pool has
        not scanned yet counts as missing: libvirt on the destination looks the volume up in the pool."""
        if copy == 'all' and disk['device'] == 'disk' and not disk['readonly'] and not disk['shareable']:
            return
        try:
            self.dest.lookup_volume(disk['pool'], disk['volume'])
        except NotFound:
            problems.append('volume %s of storage pool %s (%s) does not exist on the destination; create it there, '
                            'or, when the pool is on storage the hosts share, refresh the pool there so that libvirt '
                            'sees the file (virtfleet.virt.storage_pool with refresh: true)'
                            % (disk['volume'], disk['pool'], what))

    def _copy_target_ok(self, disk, what, problems):
        """libvirt creates the copy of a file disk only inside a storage pool of the destination."""
        try:
            self.dest.lookup_volume_by_path(disk['path'])
            return True
        except NotFound:
            pass
        if self.opts['copy_storage'] == 'incremental':
            problems.append('copy_storage=incremental: libvirt cannot create %s (%s) on the destination; create it '
                            'there first on top of the same backing image (for example qemu-img create -f qcow2 -b '
                            'BACKING), in a storage pool (refresh the pool so that libvirt sees it)'
                            % (disk['path'], what))
            return False
        directory = disk['path'].rsplit('/', 1)[0] or '/'
        pool = self._pool_by_directory(self.dest, disk['path'])
        if pool is None:
            problems.append('copy_storage: the destination has no storage pool with target %s, where libvirt would '
                            'create the copy of %s (%s); define one there (virtfleet.virt.storage_pool) or create '
                            'the image first' % (directory, disk['path'], what))
            return False
        if not self.dest.pool_is_active(pool):
            problems.append('copy_storage: storage pool %s (target %s) is not active on the destination'
                            % (pool.name(), directory))
            return False
        return True

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt migration driver: moves one VM from a source libvirt to a destination libvirt.

It implements the interface of ``_reconcile.relocate``: ``locate`` (where the VM is),
``describe``, ``precheck`` (every check that can be made before anything moves, read-only)
and ``move`` (the migration job, watched until it ends: overall timeout with a clean
abort, switch to post-copy, job statistics).

Safety: libvirt's migration protocol keeps the VM running on the source until the destination
has confirmed it runs there; when the job fails or is aborted before a switch to post-copy,
libvirt resumes the source. ``move`` checks that afterwards (and resumes a source VM a failed
job left paused), so a failure always says where the VM is.
"""

from __future__ import annotations

import threading
import time

from ansible_collections.virtfleet.virt.plugins.module_utils import _units, _xml
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import (
    BackendError,
    NotFound,
    SpecError,
    VirtError,
    WaitTimeout,
)
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, wait_for

ACTIVE = ('running', 'paused', 'shutting_down', 'crashed', 'pmsuspended')
LIVE_MIGRATABLE = ('running', 'paused')
COMPRESSION_METHODS = ('xbzrle', 'mt', 'zlib', 'zstd')
# options that only a live migration uses, with their "not set" value
_LIVE_ONLY = (('copy_storage', None), ('auto_converge', False), ('post_copy', False), ('compression', None),
              ('parallel_connections', None), ('bandwidth', None), ('max_downtime', None),
              ('destination_memory_reserve', None))
# How long to wait for libvirt to return from an aborted job before reporting anyway.
ABORT_GRACE = 60
# Default passes over guest memory before a post-copy switch when pre-copy does not converge.
POSTCOPY_ITERATIONS = 3
_JOB_FIELDS = (
    ('time_elapsed_ms', 'time_elapsed'), ('downtime_ms', 'downtime'), ('setup_time_ms', 'setup_time'),
    ('data_total_bytes', 'data_total'), ('data_transferred_bytes', 'data_processed'),
    ('memory_total_bytes', 'memory_total'), ('memory_transferred_bytes', 'memory_processed'),
    ('memory_iterations', 'memory_iteration'), ('memory_bps', 'memory_bps'),
    ('memory_dirty_rate', 'memory_dirty_rate'), ('disk_total_bytes', 'disk_total'),
    ('disk_transferred_bytes', 'disk_processed'), ('disk_bps', 'disk_bps'),
    ('postcopy_requests', 'memory_postcopy_requests'), ('auto_converge_throttle', 'auto_converge_throttle'),
)


class PrecheckFailed(BackendError):
    """A pre-check proved the migration cannot succeed; nothing was changed."""


def options_from_params(params):
    """The migration options from the module parameters, validated before anything is read or written."""
    opts = dict((key, params.get(key)) for key in (
        'destination', 'mode', 'migration_uri', 'listen_address', 'copy_storage', 'peer_to_peer', 'tunnelled',
        'persistent', 'undefine_source', 'unsafe', 'auto_converge', 'post_copy', 'post_copy_after',
        'post_copy_after_iterations', 'compression', 'parallel_connections', 'bandwidth', 'max_downtime',
        'tls', 'tls_destination', 'timeout', 'destination_memory_reserve'))
    opts['source'] = params.get('uri')
    if not opts['destination']:
        raise SpecError('destination', 'is required: the libvirt URI of the destination host')
    if opts['destination'] == opts['source']:
        raise SpecError('destination', 'is the source uri (%s); name another host' % opts['source'])
    if opts['mode'] == 'offline':
        given = [key for key, unset in _LIVE_ONLY if opts.get(key) not in (unset, [])]
        if given:
            raise SpecError(given[0], 'applies to live migration only; mode=offline moves the definition of a '
                                      'stopped VM (copy its disks first, e.g. with virtfleet.virt.volume, if the '
                                      'hosts do not share storage). Remove: %s' % ', '.join(given))
        if not opts['persistent']:
            raise SpecError('persistent', 'must be true with mode=offline: an offline migration moves the '
                                          'persistent definition')
    if opts['tunnelled']:
        if not opts['peer_to_peer']:
            raise SpecError('tunnelled', 'needs peer_to_peer=true: libvirt tunnels the migration data through '
                                         'the connection between the two daemons')
        for key in ('migration_uri', 'listen_address', 'parallel_connections'):
            if opts.get(key):
                raise SpecError(key, 'cannot be combined with tunnelled=true (the data goes through the '
                                     'libvirt connection)')
        if opts['tls']:
            raise SpecError('tls', 'cannot be combined with tunnelled=true; a tunnelled migration is as secure '
                                   'as the libvirt connection of destination (use qemu+tls:// there)')
    if opts['tls_destination'] and not opts['tls']:
        raise SpecError('tls_destination', 'needs tls=true')
    if not opts['post_copy']:
        for key in ('post_copy_after', 'post_copy_after_iterations'):
            if opts.get(key) is not None:
                raise SpecError(key, 'needs post_copy=true')
    for key, low in (('post_copy_after', 0), ('post_copy_after_iterations', 1), ('parallel_connections', 1),
                     ('bandwidth', 1), ('max_downtime', 1), ('timeout', 1)):
        if opts.get(key) is not None and opts[key] < low:
            raise SpecError(key, 'must be %d or more, got %d' % (low, opts[key]))
    if opts['post_copy'] and opts['post_copy_after_iterations'] is None:
        opts['post_copy_after_iterations'] = POSTCOPY_ITERATIONS
    compression = opts.get('compression') or []
    for method in compression:
        if method not in COMPRESSION_METHODS:
            raise SpecError('compression', 'unknown method %r: use %s' % (method, ', '.join(COMPRESSION_METHODS)))
    if any(m in ('zlib', 'zstd') for m in compression) and not opts['parallel_connections']:
        raise SpecError('compression', 'zlib and zstd compress the parallel (multifd) streams: set '
                                       'parallel_connections too')
    if opts.get('destination_memory_reserve') is not None:
        opts['destination_memory_reserve'] = _units.parse_size(opts['destination_memory_reserve'],
                                                               'destination_memory_reserve')
    return opts


def _domain_facts(xml):
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


def job_summary(stats, wall_ms=None, postcopy=False, source_last=None):
    """The module's ``job`` return value from libvirt job statistics (VIR_DOMAIN_JOB_*).

    ``stats`` are the destination's statistics of the completed job. They leave out the disk
    copy (copy_storage): its figures come from the last statistics the source reported.
    """
    summary = dict((ours, stats[theirs]) for ours, theirs in _JOB_FIELDS if theirs in stats)
    last = source_last or {}
    if not stats.get('disk_total') and last.get('disk_total'):
        summary['disk_total_bytes'] = last['disk_total']
        summary['disk_transferred_bytes'] = last.get('disk_processed', 0)
        if 'disk_bps' in last:
            summary['disk_bps'] = last['disk_bps']
        for ours, theirs in (('data_total_bytes', 'disk_total'), ('data_transferred_bytes', 'disk_processed')):
            summary[ours] = summary.get(ours, 0) + last.get(theirs, 0)
    summary['postcopy'] = bool(postcopy)
    if wall_ms is not None:
        summary['wall_time_ms'] = wall_ms
    summary['stats'] = dict((key, value) for key, value in stats.items() if isinstance(value, (int, float, str)))
    return summary


class LibvirtMigrateDriver:
    kind = 'VM'

    def __init__(self, source, destination, options, poll_interval=0.25, confirm_timeout=30):
        self.source = source
        self.dest = destination
        self.opts = options
        self.poll_interval = poll_interval
        self.confirm_timeout = confirm_timeout
        self._hostnames = {}

    # -- where the VM is ----------------------------------------------------------------------
    def _find(self, client, name=None, uuid=None):
        try:
            dom = client.lookup_domain(name) if name else client.lookup_domain_by_uuid(uuid)
        except NotFound:
            return None
        return {'dom': dom, 'name': dom.name(), 'uuid': dom.UUIDString(), 'state': client.domain_state(dom),
                'persistent': client.domain_is_persistent(dom)}

    def _reach_destination(self):
        """The first call on the destination: a clear pre-check message when it is not reachable."""
        try:
            self.dest.hostname()
        except BackendError as exc:
            raise PrecheckFailed('pre-check failed, nothing was changed: the destination %s is not reachable (%s). '
                                 'Check destination (and destination_connect_uri when the module reaches the '
                                 'destination by another address than the source host does).'
                                 % (self.dest.uri, exc.msg))

    def hostname(self, client):
        if client.uri not in self._hostnames:
            self._hostnames[client.uri] = client.hostname()
        return self._hostnames[client.uri]

    def locate(self, name):
        live = self.opts['mode'] == 'live'
        src = self._find(self.source, name)
        self._reach_destination()
        host_uuid = self._host_uuid(self.source)
        if host_uuid and host_uuid == self._host_uuid(self.dest):
            raise PrecheckFailed('pre-check failed, nothing was changed: the destination %s is the same host as the '
                                 'source %s (host UUID %s)' % (self.dest.uri, self.opts['source'], host_uuid))
        dst = self._find(self.dest, name)
        by_uuid = self._find(self.dest, uuid=src['uuid']) if src else None
        placement = {'name': name, 'source': src, 'dest': dst, 'dest_by_uuid': by_uuid, 'warnings': []}
        same_vm = dst is not None and (src is None or dst['uuid'] == src['uuid'])
        src_active = src is not None and src['state'] in ACTIVE
        if src_active and same_vm and dst['state'] in ACTIVE:
            raise BackendError('VM %s (UUID %s) is active on both the source %s and the destination %s: a migration '
                               'may be in progress, or an earlier one left a copy. Nothing was changed; find out '
                               'which copy is current before removing the other.'
                               % (name, src['uuid'], self.opts['source'], self.opts['destination']))
        if src_active:
            if not live:
                raise SpecError('mode', 'VM %s is %s on the source; mode=offline moves stopped VMs only. Use '
                                        'mode=live, or stop the VM first' % (name, src['state']))
            if src['state'] not in LIVE_MIGRATABLE:
                raise BackendError('VM %s is %s on the source; only a running or paused VM can be live-migrated. '
                                   'Nothing was changed.' % (name, src['state']))
            placement['at'] = 'source'
            return placement
        if same_vm:
            placement['at'] = 'destination'
            if src is not None:
                placement['warnings'].append(
                    'VM %s is already on the destination; a stopped definition of it remains on the source %s'
                    % (name, self.opts['source']))
            if live and dst['state'] not in ACTIVE:
                placement['warnings'].append('VM %s is already on the destination but %s there'
                                             % (name, dst['state']))
            return placement
        if src is None:
            raise NotFound('VM %s exists neither on the source %s nor on the destination %s'
                           % (name, self.opts['source'], self.opts['destination']))
        if live:
            raise SpecError('mode', 'VM %s is stopped on the source; a live migration needs a running VM. Use '
                                    'mode=offline to move its definition, or start it first' % name)
        placement['at'] = 'source'
        return placement

    def describe(self, placement):
        at_dest = placement['at'] == 'destination'
        info = placement['dest'] if at_dest else placement['source']
        client = self.dest if at_dest else self.source
        return {'name': info['name'], 'uuid': info['uuid'], 'state': info['state'],
                'persistent': info['persistent'], 'hostname': self.hostname(client),
                'uri': self.opts['destination'] if at_dest else self.opts['source']}

    # -- pre-checks (read only) ---------------------------------------------------------------
    def precheck(self, placement):
        src = placement['source']
        live = self.opts['mode'] == 'live'
        xml = self.source.domain_xml(src['dom'], inactive=not live)
        facts = _domain_facts(xml)
        problems, notes = [], {}
        self._check_hosts(problems, notes)
        self._check_conflicts(placement, problems)
        self._check_cpu(facts, live, problems, notes)
        self._check_networks(facts, live, problems, notes)
        self._check_storage(facts, problems, notes)
        if live:
            self._check_memory(src, problems, notes)
        else:
            notes['memory'] = 'not checked: an offline migration does not start the VM on the destination'
        if problems:
            raise PrecheckFailed('pre-checks failed for migrating VM %s from %s to %s; nothing was changed: %s'
                                 % (placement['name'], self.opts['source'], self.opts['destination'],
                                    '; '.join(problems)))
        copy = ', copy storage: %s' % self.opts['copy_storage'] if self.opts['copy_storage'] else ''
        action = 'migrated (%s%s) to %s' % (self.opts['mode'], copy, self.opts['destination'])
        after = dict(self.describe(placement), uri=self.opts['destination'], hostname=self.hostname(self.dest),
                     persistent=bool(self.opts['persistent']) or src['persistent'])
        return Plan([action], details={'notes': {'prechecks': notes}, 'after': after, 'facts': facts})

    def _host_uuid(self, client):
        return _xml.from_string(client.capabilities()).findtext('host/uuid')

    def _check_hosts(self, problems, notes):
        notes['hosts'] = {'source': self.hostname(self.source), 'destination': self.hostname(self.dest)}

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

    def _check_storage(self, facts, problems, notes):
        copy = self.opts['copy_storage']
        pools, copied = [], []
        for disk in facts['disks']:
            what = 'disk %s' % (disk['target'] or disk['path'] or disk['volume'])
            if disk['type'] == 'volume' and disk['pool']:
                if self._check_pool(disk['pool'], what, problems) and disk['pool'] not in pools:
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

    # -- the move ---------------------------------------------------------------------------
    def migration_call(self, state):
        """The flags and parameters of the migration call (names without the VIR_MIGRATE_ prefixes)."""
        opts = self.opts
        flags, params = [], {}
        if opts['mode'] == 'offline':
            flags.append('OFFLINE')
        else:
            flags.extend(['LIVE', 'ABORT_ON_ERROR', 'CHANGE_PROTECTION'])
        if opts['peer_to_peer']:
            flags.append('PEER2PEER')
        for key, flag in (('tunnelled', 'TUNNELLED'), ('persistent', 'PERSIST_DEST'),
                          ('undefine_source', 'UNDEFINE_SOURCE'), ('unsafe', 'UNSAFE'),
                          ('auto_converge', 'AUTO_CONVERGE'), ('post_copy', 'POSTCOPY'), ('tls', 'TLS')):
            if opts.get(key):
                flags.append(flag)
        if opts.get('copy_storage'):
            flags.append('NON_SHARED_DISK' if opts['copy_storage'] == 'all' else 'NON_SHARED_INC')
        if opts.get('compression'):
            flags.append('COMPRESSED')
            params['COMPRESSION'] = list(opts['compression'])
        if opts.get('parallel_connections'):
            flags.append('PARALLEL')
            params['PARALLEL_CONNECTIONS'] = opts['parallel_connections']
        for key, param in (('migration_uri', 'URI'), ('listen_address', 'LISTEN_ADDRESS'),
                           ('bandwidth', 'BANDWIDTH'), ('tls_destination', 'TLS_DESTINATION')):
            if opts.get(key):
                params[param] = opts[key]
        return flags, params

    def move(self, placement, plan):
        src = placement['source']
        dom = src['dom']
        name = placement['name']
        flags, params = self.migration_call(src['state'])
        missing = [flag for flag in flags if not self.source.migration_supports(flag)]
        if missing:
            raise BackendError('this libvirt-python does not know VIR_MIGRATE_%s; upgrade it or leave out the '
                               'option that needs it. Nothing was changed.' % ', VIR_MIGRATE_'.join(missing))
        if self.opts.get('max_downtime'):
            self.source.set_migration_max_downtime(dom, self.opts['max_downtime'])
        started = time.monotonic()
        job = self._run(dom, flags, params)
        wall_ms = int((time.monotonic() - started) * 1000)
        if job['error'] is not None or job['aborted']:
            return self._failed(placement, job, wall_ms)
        return self._confirm(placement, job, wall_ms)

    def _run(self, dom, flags, params):
        """Run the migration call in a thread; watch it: timeout -> abort, post-copy switch, statistics."""
        job = {'error': None, 'aborted': False, 'postcopy': False, 'returned': False, 'last': {},
               'switch_errors': []}
        destination = None if self.opts['peer_to_peer'] else self.dest

        def work():
            try:
                self.source.migrate_domain(dom, self.opts['destination'], flags, params, destination)
            except VirtError as exc:
                job['error'] = exc
            except Exception as exc:  # pragma: no cover - a bug, reported rather than lost in the thread
                job['error'] = BackendError('migration call failed: %r' % exc)
            job['returned'] = True

        worker = threading.Thread(target=work, name='virtfleet-migrate')
        worker.daemon = True
        started = time.monotonic()
        worker.start()
        aborted_at = None
        while worker.is_alive():
            worker.join(self.poll_interval)
            if not worker.is_alive():
                break
            now = time.monotonic()
            if aborted_at is not None:
                if now - aborted_at > ABORT_GRACE:
                    break
                continue
            stats = self._stats(dom)
            if stats:
                job['last'] = stats
            timeout = self.opts.get('timeout')
            if timeout and now - started >= timeout:
                if job['postcopy']:
                    continue  # a post-copy migration cannot be aborted without losing the VM: let it finish
                job['aborted'] = True
                aborted_at = now
                try:
                    self.source.abort_domain_job(dom)
                except (BackendError, NotFound):
                    pass  # it ended on its own between the poll and the abort (the source may have let go of it)
                continue
            if self.opts.get('post_copy') and not job['postcopy'] and self._should_switch(stats, now - started):
                try:
                    self.source.start_postcopy(dom)
                    job['postcopy'] = True
                except (BackendError, NotFound) as exc:
                    # still copying storage: try again at the next poll; or the migration completed between
                    # the poll and the switch, and the source no longer has the domain: the call's own
                    # return says how the job ended
                    job['switch_errors'] = job['switch_errors'][-2:] + [exc.msg]
        return job

    def _stats(self, dom):
        try:
            return self.source.domain_job_stats(dom)
        except VirtError:
            return {}

    def _should_switch(self, stats, elapsed):
        after = self.opts.get('post_copy_after')
        if after is not None and elapsed >= after:
            return True
        iterations = self.opts.get('post_copy_after_iterations')
        return bool(iterations and stats.get('memory_iteration', 0) >= iterations)

    def _confirm(self, placement, job, wall_ms):
        name = placement['name']
        live = self.opts['mode'] == 'live'
        want = placement['source']['state'] if live else 'stopped'
        try:
            wait_for(lambda: self._state_on(self.dest, name), want, self.confirm_timeout,
                     'VM %s on the destination %s after the migration' % (name, self.opts['destination']),
                     self.poll_interval)
        except WaitTimeout as exc:
            raise BackendError('libvirt reported the migration of VM %s as complete, but %s' % (name, exc.msg))
        stats = {}
        if live:
            try:
                stats = self.dest.domain_job_stats(self.dest.lookup_domain(name), completed=True)
            except VirtError:
                stats = {}
        notes = {'job': job_summary(stats, wall_ms, job['postcopy'], job.get('last'))}
        if live and not stats:
            notes['warnings'] = ['the destination did not report statistics of the completed migration']
        return notes

    def _maybe_moved(self, placement, job, wall_ms, why, src_state):
        """The VM left the source although libvirt reported a failure: did it arrive?"""
        name = placement['name']
        try:
            dst_state = self._state_on(self.dest, name)
        except VirtError as exc:
            dst_state = 'unknown (%s)' % exc.msg
        want = placement['source']['state'] if self.opts['mode'] == 'live' else 'stopped'
        if dst_state == want:
            # libvirt failed after the VM had moved (e.g. while cleaning up the source): the move is done
            notes = self._confirm(placement, dict(job, error=None), wall_ms)
            notes.setdefault('warnings', []).append('libvirt reported an error after VM %s had moved: %s'
                                                    % (name, why))
            return notes
        raise BackendError('migrating VM %s from %s to %s failed: %s. VM %s is %s on the source and %s on the '
                           'destination: check both hosts before anything else.'
                           % (name, self.opts['source'], self.opts['destination'], why, name, src_state, dst_state))

    def _state_on(self, client, name):
        try:
            return client.domain_state(client.lookup_domain(name))
        except NotFound:
            return 'absent'

    def _failed(self, placement, job, wall_ms):
        """The job failed or was aborted: find out where the VM is and say so (resuming a paused source)."""
        name = placement['name']
        before = placement['source']['state']
        said = ''
        if job['error'] is not None:
            said = job['error'].msg
            prefix = 'migrating VM %s to %s failed: ' % (name, self.opts['destination'])
            said = 'libvirt reported: ' + (said[len(prefix):] if said.startswith(prefix) else said)
        if job['aborted']:
            why = ('the migration did not finish within timeout=%s s and was aborted with libvirt domainAbortJob (%s)'
                   % (self.opts['timeout'], said or 'libvirt was still cleaning up the connection to the destination '
                                                    '%s s later' % ABORT_GRACE))
        else:
            why = said
        src_state = self._state_on(self.source, name)
        if src_state == 'absent' or (src_state not in ACTIVE and before in ACTIVE):
            return self._maybe_moved(placement, job, wall_ms, why, src_state)
        detail = ''
        if src_state == 'paused' and before == 'running' and not job['postcopy']:
            try:
                self.source.resume_domain(self.source.lookup_domain(name))
                src_state = self._state_on(self.source, name)
                detail = ' (the failed job had left it paused; it was resumed)'
            except VirtError as exc:
                detail = ' (the failed job left it paused and resuming it failed: %s)' % exc.msg
        if src_state == before:
            status = 'Nothing moved: VM %s is still %s on the source %s%s.' % (
                name, src_state, self.opts['source'], detail)
        else:
            status = 'VM %s is now %s on the source %s (it was %s)%s.' % (
                name, src_state, self.opts['source'], before, detail)
        if job['postcopy']:
            status += (' The migration had switched to post-copy: the VM state was split between the hosts; '
                       'recover it with a post-copy resume (virsh migrate --postcopy --postcopy-resume) or from '
                       'the destination.')
        elif self.opts.get('copy_storage'):
            status += ' The destination may keep a partial copy of the disks; a new attempt overwrites it.'
        raise BackendError('migrating VM %s from %s to %s failed: %s. %s'
                           % (name, self.opts['source'], self.opts['destination'], why, status))

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt migration driver: moves one VM from a source libvirt to a destination libvirt.

It implements the interface of ``_reconcile.relocate``: ``locate`` (where the VM is),
``describe``, ``precheck`` (every check that can be made before anything moves, read-only)
and ``move`` (the migration job, watched until it ends: overall timeout with a clean
abort, switch to post-copy, job statistics). The checks are ``libvirt_migrate_checks``; the
call, its watch and where the VM ended up are ``libvirt_migrate_job``.

Safety: libvirt's migration protocol keeps the VM running on the source until the destination
has confirmed it runs there; when the job fails or is aborted before a switch to post-copy,
libvirt resumes the source. ``move`` checks that afterwards (and resumes a source VM a failed
job left paused), so a failure always says where the VM is.
"""

from __future__ import annotations

import time

from ansible_collections.virtfleet.virt.plugins.module_utils import _units, _xml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_migrate_checks import (
    PrecheckFailed,
    Prechecks,
    domain_facts,
)
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_migrate_job import (
    ACTIVE,
    JobResult,
    JobWatch,
    migration_call,
)
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan

LIVE_MIGRATABLE = ('running', 'paused')
COMPRESSION_METHODS = ('xbzrle', 'mt', 'zlib', 'zstd')
# options that only a live migration uses, with their "not set" value
_LIVE_ONLY = (('copy_storage', None), ('auto_converge', False), ('post_copy', False), ('compression', None),
              ('parallel_connections', None), ('bandwidth', None), ('max_downtime', None),
              ('destination_memory_reserve', None))
# Default passes over guest memory before a post-copy switch when pre-copy does not converge.
POSTCOPY_ITERATIONS = 3


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
        facts = domain_facts(xml)
        problems, notes = Prechecks(self).run(placement, facts, live)
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

    # -- the move ---------------------------------------------------------------------------
    def move(self, placement, plan):
        src = placement['source']
        dom = src['dom']
        flags, params = migration_call(self.opts)
        missing = [flag for flag in flags if not self.source.migration_supports(flag)]
        if missing:
            raise BackendError('this libvirt-python does not know VIR_MIGRATE_%s; upgrade it or leave out the '
                               'option that needs it. Nothing was changed.' % ', VIR_MIGRATE_'.join(missing))
        if self.opts.get('max_downtime'):
            self.source.set_migration_max_downtime(dom, self.opts['max_downtime'])
        started = time.monotonic()
        job = JobWatch(self).run(dom, flags, params)
        wall_ms = int((time.monotonic() - started) * 1000)
        result = JobResult(self)
        if job['error'] is not None or job['aborted']:
            return result.failed(placement, job, wall_ms)
        return result.confirm(placement, job, wall_ms)

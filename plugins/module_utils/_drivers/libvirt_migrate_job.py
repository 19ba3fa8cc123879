# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration job of a libvirt migration: the call, its watch and where the VM ended up.

``migration_call`` gives the flags and parameters; ``JobWatch`` runs the call in a thread and
watches it (overall timeout with a clean abort, switch to post-copy, job statistics);
``JobResult`` confirms the VM on the destination, or, when the job failed or was aborted, finds
out where the VM is (resuming a source VM a failed job left paused) and says so.
"""

from __future__ import annotations

import threading
import time

from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_migrate_checks import MigrationPart
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import (
    BackendError,
    NotFound,
    VirtError,
    WaitTimeout,
)
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import wait_for

ACTIVE = ('running', 'paused', 'shutting_down', 'crashed', 'pmsuspended')
# How long to wait for libvirt to return from an aborted job before reporting anyway.
ABORT_GRACE = 60
_JOB_FIELDS = (
    ('time_elapsed_ms', 'time_elapsed'), ('downtime_ms', 'downtime'), ('setup_time_ms', 'setup_time'),
    ('data_total_bytes', 'data_total'), ('data_transferred_bytes', 'data_processed'),
    ('memory_total_bytes', 'memory_total'), ('memory_transferred_bytes', 'memory_processed'),
    ('memory_iterations', 'memory_iteration'), ('memory_bps', 'memory_bps'),
    ('memory_dirty_rate', 'memory_dirty_rate'), ('disk_total_bytes', 'disk_total'),
    ('disk_transferred_bytes', 'disk_processed'), ('disk_bps', 'disk_bps'),
    ('postcopy_requests', 'memory_postcopy_requests'), ('auto_converge_throttle', 'auto_converge_throttle'),
)


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


def migration_call(opts):
    """The flags and parameters of the migration call (names without the VIR_MIGRATE_ prefixes)."""
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


class JobWatch(MigrationPart):
    """Runs the migration call and watches it until it returns."""

    def run(self, dom, flags, params):
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
            worker.join(self.driver.poll_interval)
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


class JobResult(MigrationPart):
    """Where the VM is after the job: confirmed on the destination, or found and reported after a failure."""

    def confirm(self, placement, job, wall_ms):
        """The job returned: the VM must be on the destination as it was on the source; its notes (``job``)."""
        name = placement['name']
        live = self.opts['mode'] == 'live'
        want = placement['source']['state'] if live else 'stopped'
        try:
            wait_for(lambda: self._state_on(self.dest, name), want, self.driver.confirm_timeout,
                     'VM %s on the destination %s after the migration' % (name, self.opts['destination']),
                     self.driver.poll_interval)
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
            notes = self.confirm(placement, dict(job, error=None), wall_ms)
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

    def failed(self, placement, job, wall_ms):
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

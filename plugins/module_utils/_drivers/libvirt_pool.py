# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt storage pool driver: define, build, start/stop, update and remove pools."""

from __future__ import annotations

import os
import shutil
import subprocess

from ansible_collections.virtfleet.virt.plugins.module_utils import _storage_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_storagexml as storagexml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import ActivatedDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result
from ansible_collections.virtfleet.virt.plugins.module_utils._xml import from_string


def probe_device(path):
    """The signatures (``TYPE``, ``PTTYPE``) blkid finds on a local device; {} when it finds none."""
    blkid = shutil.which('blkid') or next((p for p in ('/usr/sbin/blkid', '/sbin/blkid') if os.path.exists(p)), None)
    if blkid is None:
        raise SpecError('build', 'cannot check %s for existing data: blkid (util-linux) is not installed. '
                                 'Install it, or set force: true if the device holds nothing you need' % path)
    proc = subprocess.run([blkid, '-p', '-o', 'export', path], capture_output=True, text=True, check=False)
    if proc.returncode == 2:
        return {}
    if proc.returncode != 0:
        raise SpecError('build', 'cannot check %s for existing data (blkid: %s); set force: true if it holds '
                                 'nothing you need' % (path, (proc.stderr or proc.stdout).strip()))
    found = dict(line.split('=', 1) for line in proc.stdout.splitlines() if '=' in line)
    return dict((key, value) for key, value in found.items() if key in ('TYPE', 'PTTYPE'))


def _build_signature(spec):
    """The signature a build leaves on the device (what may already be there without harm)."""
    if spec['type'] == 'logical':
        return ('TYPE', 'LVM2_member')
    return ('PTTYPE' if spec['type'] == 'disk' else 'TYPE', spec['source'].get('format'))


class LibvirtPoolDriver(ActivatedDriver):
    kind = 'storage pool'

    def __init__(self, client, build=False, force=False, refresh=False):
        super().__init__(client)
        self.build = build
        self.force = force
        self.refresh = refresh
        self.found.extra['refreshed'] = False

    # -- reading --------------------------------------------------------------
    def rescan(self, name):
        """With ``refresh``, rescan an active pool's volumes (for volumes added or removed outside libvirt)."""
        if not self.refresh:
            return
        pool = self.read_one(self.client.lookup_pool, lambda pool: pool, name)
        if pool is not None and self.client.pool_is_active(pool):
            self.client.refresh_pool(pool)
            self.found.extra['refreshed'] = True

    def read(self, name):
        return self.read_one(self.client.lookup_pool, self._read_pool, name)

    def _read_pool(self, pool):
        active = self.client.pool_is_active(pool)
        xml = self.client.pool_xml(pool, inactive=True)
        name, uuid, spec, _sizes = storagexml.parse_pool(xml)
        spec['autostart'] = self.client.pool_autostart(pool)
        actual = {'name': name, 'uuid': uuid, 'state': 'active' if active else 'inactive', 'spec': spec,
                  'pool': pool, 'xml': xml, 'sizes': {}, 'volumes': []}
        if active:
            _name, _uuid, actual['live_spec'], actual['sizes'] = storagexml.parse_pool(self.client.pool_xml(pool))
            actual['volumes'] = sorted(v.name() for v in self.client.list_volumes(pool))
        return actual

    def list(self):
        return [self._read_pool(pool) for pool in self.client.list_pools()]

    def describe(self, actual):
        view = {'name': actual['name'], 'uuid': actual['uuid'], 'state': actual['state'],
                'spec': dict(actual['spec']), 'volumes': list(actual['volumes']),
                'pending_restart': self.pending_restart(actual)}
        view.update(dict((k, actual['sizes'].get(k)) for k in ('capacity', 'allocation', 'available')))
        return view

    @staticmethod
    def pending_restart(actual):
        """True when the active pool still runs an older definition (path or source changed)."""
        live = actual.get('live_spec')
        if not live:
            return False
        return any(live.get(key) != actual['spec'].get(key) for key in ('path', 'source'))

    # -- desired spec -----------------------------------------------------------
    def desired(self, partial, actual):
        name = actual['name'] if actual else partial['name']
        spec = _storage_spec.merge_pool(name, partial, actual['spec'] if actual else None, build=self.build)
        if actual is None:
            self._check_supported(spec['type'])
            self._check_devices(spec)
            if self.build and not self.force and spec['type'] in _storage_spec.FORMATTING_BUILD_TYPES:
                self._check_empty(spec)
        else:
            given = partial.get('source') or {}
            if any(spec['source'].get(k) != actual['spec']['source'].get(k) for k in given) or \
                    (partial.get('path') and partial['path'] != actual['spec']['path']):
                self._check_devices(spec)
        return spec

    def _check_supported(self, kind):
        caps = self.client.storage_pool_capabilities()
        if not caps:
            return
        elem = from_string(caps).find("pool[@type='%s']" % kind)
        if elem is not None and elem.get('supported') == 'no':
            raise SpecError('type', '%s pools are not supported by libvirt at %s (its storage driver was built '
                                    'without them); use another pool type or host' % (kind, self.client.uri))

    def _check_devices(self, spec):
        if not self.client.is_local():
            return
        for device in spec['source'].get('devices') or []:
            if not os.path.exists(device):
                raise SpecError('source.devices', '%s does not exist on this host' % device)

    def _check_empty(self, spec):
        """Refuse (before anything is written) a build that would format a device holding data."""
        for device in spec['source'].get('devices') or []:
            if not self.client.is_local():
                raise SpecError('force', 'building a %s pool formats %s, and over the remote URI %s the module cannot '
                                         'check that the device holds no data: set force: true if it holds nothing '
                                         'you need' % (spec['type'], device, self.client.uri))
            key, value = _build_signature(spec)
            other = sorted('%s=%s' % (k, v) for k, v in probe_device(device).items() if (k, v) != (key, value))
            if other:
                raise SpecError('build', '%s holds data (%s) and building the %s pool would format it. Nothing was '
                                         'changed: set force: true to format it anyway (this destroys that data), '
                                         'or use another device' % (device, ', '.join(other), spec['type']))

    # -- writing ------------------------------------------------------------------
    def create(self, name, spec):
        pool = self.client.define_pool(storagexml.render_pool(name, spec))
        # what build creates (the target directory) is removed again when it fails
        fresh_dir = bool(self.build and spec.get('path') and self.client.is_local() and not os.path.exists(spec['path']))
        try:
            result = self._build(pool, spec) if self.build else None
            if spec.get('autostart'):
                self.client.set_pool_autostart(pool, True)
        except BackendError:
            if fresh_dir and os.path.isdir(spec['path']):
                try:
                    self.client.delete_pool_data(pool)
                except BackendError:
                    pass
            self.client.undefine_pool(pool)
            raise
        return result

    def _build(self, pool, spec):
        formats = spec['type'] in _storage_spec.FORMATTING_BUILD_TYPES
        overwrite = (True if self.force else False) if formats else None
        try:
            built = self.client.build_pool(pool, overwrite=overwrite)
        except BackendError as exc:
            if formats and not self.force:
                exc.msg = ('%s. Nothing was formatted and the pool was not defined. The device seems to hold '
                           'data: set force: true to format it anyway (this destroys the data on it)' % exc.msg)
            raise
        if not built:
            return Result(warnings=['storage pool %s: %s already holds a %s %s; it was kept as it is (not formatted). '
                                    'Set force: true to format it anyway.'
                                    % (pool.name(), ', '.join(spec['source'].get('devices') or []),
                                       spec['source'].get('format'), 'filesystem' if spec['type'] == 'fs' else 'layout')])
        return None

    def plan_update(self, actual, spec):
        changes = _storage_spec.pool_changed_fields(actual['spec'], spec)
        redefine = [c for c in changes if c != 'autostart']
        pending = bool(redefine) or self.pending_restart(actual)
        return Plan(changes, reboot_required=pending and actual['state'] == 'active',
                    details={'spec': spec, 'redefine': redefine})

    def apply_update(self, actual, plan):
        spec = plan.details['spec']
        pool = actual['pool']
        result = Result()
        if plan.details['redefine']:
            self.client.define_pool(storagexml.render_pool(actual['name'], spec, base_xml=actual['xml']))
            if actual['state'] == 'active':
                result.unless_restarted.append('storage pool %s is active and keeps using its previous %s until it '
                                               'is restarted (set restart_if_required: true, or stop and start it)'
                                               % (actual['name'], ' and '.join(plan.details['redefine'])))
        if 'autostart' in plan.changes:
            self.client.set_pool_autostart(pool, spec['autostart'])
        return result

    def delete(self, actual, options):
        pool = actual['pool']
        result = Result()
        if options.get('delete_data'):
            done = []  # what was written so far: a later failure reports it (the pool is then removed in part)
            deleted = []
            try:
                # libvirt lists (and deletes) volumes of active pools only
                if not self.client.pool_is_active(pool):
                    self.client.start_pool(pool)
                    done.append('started (to delete its volumes)')
                for vol in self.client.list_volumes(pool):
                    path = vol.path()
                    self.client.delete_volume(vol)
                    deleted.append(path)
                    done.append('deleted volume %s' % path)
                self.client.stop_pool(pool)
                done.append('stopped')
                self.client.delete_pool_data(pool)
            except BackendError as exc:
                if not done:
                    raise
                path = actual['spec'].get('path')
                if path and self.client.is_local() and os.path.ismount(path):
                    exc.msg = ('%s. %s is still mounted after the pool was stopped: libvirt unmounts only a filesystem '
                               'it recognises as mounted from the pool\'s source device, which an image file (mounted '
                               'through an implicit loop device) is not; give such a pool a block or loop device '
                               '(losetup) as its source. Unmount it (umount %s) and remove the directory, then remove '
                               'the pool without delete_data' % (exc.msg, path, path))
                exc.details['performed'] = True
                exc.details['actions'] = done
                raise
            result.extra['deleted_volumes'] = deleted
        self.client.undefine_pool(pool)
        return result

    # -- run state ----------------------------------------------------------------
    def state(self, name):
        return 'active' if self.client.pool_is_active(self.client.lookup_pool(name)) else 'inactive'

    def steps(self, current, target):
        return _storage_spec.pool_steps(current, target)

    def perform(self, name, action):
        pool = self.client.lookup_pool(name)
        if action == 'start':
            self.client.start_pool(pool)
        elif action == 'stop':
            self.client.stop_pool(pool)
        else:  # pragma: no cover - pool_steps names only the actions above
            raise BackendError('unknown storage pool action %s' % action)

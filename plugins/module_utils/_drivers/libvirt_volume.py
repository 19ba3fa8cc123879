# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt storage volume drivers: plain volumes (new, overlay, clone, import) and cloud-init seeds.

Volumes have no run state: ``steps`` is always empty.  Everything a creation
needs is checked in ``desired`` (before the first write): the pool is active,
the backing/clone volume exists, the imported file has the expected checksum.
An import from an http(s) URL is the exception: ``create`` downloads the image to
a temporary file first (so check mode and an existing volume never fetch it),
verifies its checksum and checks its format and size as ``desired`` checks a file's,
all before the first write, then imports it as a file; the file is removed afterwards.
"""

from __future__ import annotations

import hashlib
import os
import struct

from ansible_collections.virtfleet.virt.plugins.module_utils import _cloud_init, _storage_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients import download
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_storagexml as storagexml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import Driver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result
from ansible_collections.virtfleet.virt.plugins.module_utils._storage_spec import human_size, volume_ref

QCOW2_MAGIC = b'QFI\xfb'
CHUNK = 256 * 1024
# Block pools hand out space in extents (LVM: 4 MiB by default): a capacity that rounds up
# to the actual one within this much is the same capacity there.
_BLOCK_GRANULARITY = 4 * 1024 ** 2


def inspect_image(path):
    """``(format, virtual size)`` of a local image file: qcow2 by its header, else raw."""
    with open(path, 'rb') as handle:
        header = handle.read(32)
    if header[:4] == QCOW2_MAGIC and len(header) >= 32:
        return 'qcow2', struct.unpack('>Q', header[24:32])[0]
    return 'raw', os.path.getsize(path)


def file_digest(path, algorithm):
    digest = hashlib.new(algorithm)
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _check_format(what, detected, fmt):
    if fmt and fmt != detected:
        raise SpecError('format', '%s is a %s image, not %s: convert it first (qemu-img convert) or leave format '
                                  'out' % (what, detected, fmt))


class LibvirtVolumeDriver(Driver):
    kind = 'volume'
    size_fact = 'allocation'  # the size describe() reports

    def __init__(self, client, pool_name, require_pool=True, log=None):
        super().__init__(client)
        self.pool_name = pool_name
        self.require_pool = require_pool
        self.log = log  # log(line): progress of a download (the module's log)
        self.pool = None
        self.pool_type = None
        self._creation = None

    # -- reading --------------------------------------------------------------
    def _lookup_pool(self):
        if self.pool is not None:
            return self.pool
        try:
            pool = self.client.lookup_pool(self.pool_name)
        except NotFound:
            if not self.require_pool:
                return None
            raise SpecError('pool', 'storage pool %r does not exist on %s; create it first '
                                    '(virtfleet.virt.storage_pool) or fix the name' % (self.pool_name, self.client.uri))
        if not self.client.pool_is_active(pool):
            raise SpecError('pool', 'storage pool %r is inactive, so its volumes cannot be read or changed: start it '
                                    '(virtfleet.virt.storage_pool with state: active)' % self.pool_name)
        self.pool = pool
        self.pool_type = storagexml.parse_pool(self.client.pool_xml(pool, inactive=True))[2]['type']
        return pool

    def read(self, name):
        pool = self._lookup_pool()
        if pool is None:
            return None
        try:
            vol = self.client.lookup_volume_in_pool(pool, name)
        except NotFound:
            return None
        return self._read_volume(vol, self.pool_name)

    def _read_volume(self, vol, pool_name):
        facts = storagexml.parse_volume(self.client.volume_xml(vol))
        backing = self._ref_for_path(facts['backing_path'], pool_name) if facts['backing_path'] else None
        spec = {'format': facts['format'], 'capacity': facts['capacity'], 'backing_volume': backing}
        return {'name': facts['name'], 'pool': pool_name, 'vol': vol, 'facts': facts, 'spec': spec,
                'state': 'present'}

    def _ref_for_path(self, path, pool_name):
        """A backing path as ``name`` (in ``pool_name``), ``pool/name``, or the path outside any pool."""
        try:
            vol = self.client.lookup_volume_by_path(path)
            return volume_ref(self.client.volume_pool(vol).name(), vol.name(), pool_name)
        except NotFound:
            return path

    def list(self, pool_names=None):
        found = []
        for pool in self.client.list_pools():
            if pool_names and pool.name() not in pool_names or not self.client.pool_is_active(pool):
                continue
            name = pool.name()
            found.extend(self.read_all(self.client.list_volumes(pool), lambda vol: self._read_volume(vol, name)))
        return found

    def describe(self, actual):
        facts = actual['facts']
        return {'name': actual['name'], 'pool': actual['pool'], 'path': facts['path'], 'state': 'present',
                'spec': dict(actual['spec']), self.size_fact: facts[self.size_fact]}

    # -- desired spec -----------------------------------------------------------
    def desired(self, partial, actual):
        if actual is None:
            return self._desired_new(partial)
        name = actual['name']
        spec = dict(actual['spec'])
        if partial.get('format') and partial['format'] != spec['format']:
            raise SpecError('format', 'volume %s is %s, not %s; an existing volume is not converted: clone it into '
                                      'a new volume (clone_from) with the format you want'
                            % (name, spec['format'], partial['format']))
        if partial.get('backing'):
            wanted = volume_ref(partial['backing'][0], partial['backing'][1], self.pool_name)
            if wanted != spec['backing_volume']:
                raise SpecError('backing_volume', 'volume %s exists with backing volume %s, not %s; the backing store '
                                                  'of an existing volume is not changed: remove the volume first '
                                                  '(state: absent) or use another name'
                                % (name, spec['backing_volume'] or 'none', wanted))
        if partial.get('capacity') is not None:
            capacity = _storage_spec.round_capacity(partial['capacity'], spec['format'])
            if self.pool_type not in _storage_spec.FILE_POOL_TYPES and \
                    0 < spec['capacity'] - capacity < _BLOCK_GRANULARITY:
                capacity = spec['capacity']
            if capacity < spec['capacity'] and not partial.get('allow_shrink'):
                raise SpecError('capacity', 'volume %s is %s; shrinking it to %s cuts off the data beyond that size. '
                                            'Nothing was changed: set allow_shrink: true to shrink it anyway'
                                % (name, human_size(spec['capacity']), human_size(capacity)))
            spec['capacity'] = capacity
        return spec

    def _find(self, pool_name, name, param):
        try:
            pool = self.client.lookup_pool(pool_name)
            return self.client.lookup_volume_in_pool(pool, name)
        except NotFound:
            raise SpecError(param, 'volume %r not found in storage pool %r on %s; create it first '
                                   '(virtfleet.virt.volume) or fix the name' % (name, pool_name, self.client.uri))

    def _desired_new(self, partial):
        fmt = partial.get('format')
        capacity = partial.get('capacity')
        backing = None
        if partial.get('backing'):
            base = self._find(partial['backing'][0], partial['backing'][1], 'backing_volume')
            facts = storagexml.parse_volume(self.client.volume_xml(base))
            if fmt and fmt != 'qcow2':
                raise SpecError('format', 'an overlay on backing_volume is a qcow2 image: use format: qcow2 or leave '
                                          'format out')
            fmt = 'qcow2'
            source_capacity = facts['capacity']
            backing = volume_ref(partial['backing'][0], partial['backing'][1], self.pool_name)
            backing_format = facts['format'] if facts['format'] in _storage_spec.VOLUME_FORMATS else 'raw'
            self._creation = {'how': 'overlay', 'backing_path': facts['path'], 'backing_format': backing_format}
            what = 'the backing volume'
        elif partial.get('clone'):
            source = self._find(partial['clone'][0], partial['clone'][1], 'clone_from')
            facts = storagexml.parse_volume(self.client.volume_xml(source))
            fmt = fmt or (facts['format'] if facts['format'] in _storage_spec.VOLUME_FORMATS else 'raw')
            source_capacity = facts['capacity']
            self._creation = {'how': 'clone', 'source': source, 'source_capacity': source_capacity}
            what = 'the volume it is cloned from'
        elif partial.get('import') and partial.get('download'):
            # the image is fetched by create(): its format and size are checked there, before the first write
            url, (algorithm, digest) = partial['import']
            self._creation = {'how': 'url', 'url': url, 'algorithm': algorithm, 'digest': digest, 'format': fmt,
                              'capacity': capacity, 'download': partial['download']}
            source_capacity = None
            what = 'the imported image'
        elif partial.get('import'):
            path, (algorithm, digest) = partial['import']
            fmt, source_capacity = self._check_import(path, algorithm, digest, fmt)
            self._creation = {'how': 'import', 'path': path, 'size': os.path.getsize(path), 'algorithm': algorithm,
                              'digest': digest, 'image_capacity': source_capacity}
            what = 'the imported image'
        else:
            if capacity is None:
                raise SpecError('capacity', 'is required to create volume (or give backing_volume, clone_from or '
                                            'import_from)')
            fmt = fmt or 'raw'
            source_capacity = what = None
            self._creation = {'how': 'new'}
        return self._new_spec(fmt, capacity, source_capacity, what, backing)

    def _new_spec(self, fmt, capacity, source_capacity, what, backing=None):
        """The spec of a new volume of format ``fmt`` (``None``: not known yet) and ``capacity`` (``None``: that of
        the source, ``source_capacity``, when known), checked against the pool and the source."""
        if fmt == 'qcow2' and self.pool_type not in _storage_spec.FILE_POOL_TYPES:
            raise SpecError('format', 'qcow2 volumes need a pool that keeps files (%s); storage pool %s is a %s pool: '
                                      'use format: raw' % (', '.join(_storage_spec.FILE_POOL_TYPES), self.pool_name,
                                                           self.pool_type))
        if capacity is None:
            capacity = source_capacity
        elif source_capacity is not None and capacity < source_capacity:
            raise SpecError('capacity', '%s is smaller than %s (%s): leave capacity out or make it at least that'
                            % (human_size(capacity), what, human_size(source_capacity)))
        if capacity is not None:
            capacity = _storage_spec.round_capacity(capacity, fmt)
        return {'format': fmt, 'capacity': capacity, 'backing_volume': backing}

    def _check_import(self, path, algorithm, digest, fmt):
        if not os.path.isfile(path):
            raise SpecError('import_from', '%s is not a file on the host that runs the module' % path)
        try:
            detected, capacity = inspect_image(path)
            actual_digest = file_digest(path, algorithm)
        except OSError as exc:
            raise SpecError('import_from', 'cannot read %s: %s' % (path, exc))
        _check_format(path, detected, fmt)
        if actual_digest != digest:
            raise SpecError('checksum', '%s has %s %s, not the expected %s; nothing was imported'
                            % (path, algorithm, actual_digest, digest))
        return detected, capacity

    # -- writing ------------------------------------------------------------------
    def create(self, name, spec):
        how = self._creation['how']
        pool = self.pool
        sparse = self.pool_type in _storage_spec.FILE_POOL_TYPES
        if how == 'new':
            self.client.create_volume(pool, storagexml.render_volume(name, spec['format'], spec['capacity'],
                                                                     sparse=sparse))
        elif how == 'overlay':
            self.client.create_volume(pool, storagexml.render_volume(
                name, 'qcow2', spec['capacity'], self._creation['backing_path'], self._creation['backing_format'],
                sparse=sparse))
        elif how == 'clone':
            source_capacity = self._creation['source_capacity']
            vol = self.client.clone_volume(pool, storagexml.render_volume(name, spec['format'], source_capacity,
                                                                          sparse=sparse),
                                           self._creation['source'])
            if spec['capacity'] > source_capacity:
                self.client.resize_volume(vol, spec['capacity'])
        elif how == 'import':
            self._import(name, spec)
        elif how == 'url':
            return self._import_url(name)
        return None

    def _import_url(self, name):
        """Download the image to a temporary file, check it as ``desired`` checks a file, import it as a file."""
        creation = self._creation
        url, algorithm, digest = creation['url'], creation['algorithm'], creation['digest']
        shown = download.redact_url(url)
        with download.temporary_file() as (out, path):
            try:
                fetched = download.fetch(url, out, path, algorithm, timeout=creation['download']['timeout'],
                                         validate_certs=creation['download']['validate_certs'], log=self.log)
            except BackendError as exc:
                raise SpecError('import_from', '%s; nothing was imported' % exc.msg)
            if fetched.hexdigest != digest:
                raise SpecError('checksum', '%s has %s %s, not the expected %s; nothing was imported (the %d bytes '
                                            'downloaded were removed)' % (shown, algorithm, fetched.hexdigest, digest,
                                                                          fetched.size))
            try:
                detected, image_capacity = inspect_image(path)
            except OSError as exc:
                raise SpecError('import_from', 'cannot read the download of %s at %s: %s' % (shown, path, exc))
            _check_format(shown, detected, creation['format'])
            spec = self._new_spec(detected, creation['capacity'], image_capacity, 'the imported image')
            self._creation = {'how': 'import', 'path': path, 'size': fetched.size, 'algorithm': algorithm,
                              'digest': digest, 'image_capacity': image_capacity}
            self._import(name, spec)
        return Result(extra={'download': fetched.result()})

    def _import(self, name, spec):
        creation = self._creation
        # created raw with the file's exact size: the upload fills it byte for byte and libvirt
        # then reads the image format (raw or qcow2) from the content
        digest = hashlib.new(creation['algorithm'])
        with open(creation['path'], 'rb') as handle:
            def read_chunk(_nbytes):
                data = handle.read(CHUNK)
                digest.update(data)
                return data

            def verify():
                if digest.hexdigest() != creation['digest']:
                    raise BackendError('%s changed while it was uploaded (%s %s, expected %s); the partial volume '
                                       'was removed' % (creation['path'], creation['algorithm'],
                                                        digest.hexdigest(), creation['digest']))
            self._upload(name, creation['size'], read_chunk, verify)
        if spec['capacity'] > creation['image_capacity']:
            self.client.resize_volume(self.client.lookup_volume_in_pool(self.pool, name), spec['capacity'])

    def _upload(self, name, size, read_chunk, verify=None):
        """A new raw volume of ``size`` bytes filled by ``read_chunk``; removed again when the upload fails."""
        vol = self.client.create_volume(self.pool, storagexml.render_volume(name, 'raw', size))
        try:
            self.client.upload_volume(vol, size, read_chunk, verify)
        except BaseException:
            try:
                self.client.delete_volume(vol)
            except BackendError:
                pass
            raise
        self.client.refresh_pool(self.pool)

    def plan_update(self, actual, spec):
        changes = [key for key in ('format', 'capacity', 'backing_volume') if actual['spec'].get(key) != spec.get(key)]
        return Plan(changes, details={'spec': spec, 'shrink': spec['capacity'] < actual['spec']['capacity']})

    def apply_update(self, actual, plan):
        if 'capacity' in plan.changes:
            self.client.resize_volume(actual['vol'], plan.details['spec']['capacity'], shrink=plan.details['shrink'])
        return None

    def delete(self, actual, options):
        if options.get('wipe'):
            self.client.wipe_volume(actual['vol'])
        self.client.delete_volume(actual['vol'])
        return None


class LibvirtSeedDriver(LibvirtVolumeDriver):
    """A cloud-init NoCloud seed ISO kept as a raw volume, regenerated when its content changes.

    The content hash is stored in the ISO's primary volume descriptor (application use
    field) and read back through a 2 KiB stream download, so it works over remote URIs.
    """

    kind = 'cloud-init seed'
    size_fact = 'capacity'

    def __init__(self, client, pool_name, files=None, require_pool=True):
        super().__init__(client, pool_name, require_pool=require_pool)
        self.files = files or {}

    def _read_volume(self, vol, pool_name):
        actual = super()._read_volume(vol, pool_name)
        marker = None
        capacity = actual['facts']['capacity'] or 0
        if capacity >= _cloud_init.PVD_OFFSET + _cloud_init.SECTOR:
            marker = _cloud_init.parse_marker(self.client.download_volume(vol, _cloud_init.PVD_OFFSET,
                                                                          _cloud_init.SECTOR))
        actual['seed'] = marker
        actual['spec'] = dict(marker or {'content_sha256': None, 'files': []})
        return actual

    def desired(self, partial, actual):
        if actual is None:
            self._lookup_pool()
        elif actual['seed'] is None:
            raise SpecError('name', 'volume %s in storage pool %s exists and is not a cloud-init seed made by this '
                                    'module; it was left untouched: choose another name or remove it first '
                                    '(virtfleet.virt.volume, state: absent)' % (actual['name'], self.pool_name))
        return {'content_sha256': partial['content_sha256'], 'files': sorted(partial['files'])}

    def create(self, name, spec):
        image = _cloud_init.build_iso(self.files, spec['content_sha256'])
        chunks = [image[i:i + CHUNK] for i in range(0, len(image), CHUNK)]
        self._upload(name, len(image), lambda _nbytes: chunks.pop(0) if chunks else b'')
        return None

    def plan_update(self, actual, spec):
        return Plan(['content'] if actual['spec'] != spec else [], details={'spec': spec})

    def delete(self, actual, options):
        if actual['seed'] is None:
            raise SpecError('name', 'volume %s in storage pool %s is not a cloud-init seed made by this module; it was '
                                    'left untouched (remove it with virtfleet.virt.volume)' % (actual['name'], self.pool_name))
        return super().delete(actual, options)

    def apply_update(self, actual, plan):
        # a new ISO has another size: replace the volume (same pool, name and path)
        self.client.delete_volume(actual['vol'])
        return self.create(actual['name'], plan.details['spec'])

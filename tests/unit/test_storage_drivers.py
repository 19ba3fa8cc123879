"""Storage drivers against a fake libvirt client: what is refused before any write."""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
from email.message import Message

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile as rc
from ansible_collections.virtfleet.virt.plugins.module_utils import _storage_spec as ss
from ansible_collections.virtfleet.virt.plugins.module_utils._clients import download
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_pool, libvirt_storagexml as sx
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_volume import LibvirtVolumeDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError

MIB = 1024 ** 2


class Named:
    def __init__(self, name, path=None):
        self._name = name
        self._path = path

    def name(self):
        return self._name

    def path(self):
        return self._path


class FakeClient:
    """One active dir pool 'images' holding the volumes given as name -> (format, capacity)."""
    uri = 'qemu:///system'

    def __init__(self, volumes, pool_type='dir'):
        self.pool = Named('images')
        self.pool_type = pool_type
        self.volumes = dict((name, Named(name, '/img/' + name)) for name in volumes)
        self.facts = volumes
        self.writes = []

    def is_local(self):
        return True

    def lookup_pool(self, name):
        if name != 'images':
            raise NotFound('no pool %s' % name)
        return self.pool

    def pool_is_active(self, pool):
        return True

    def pool_xml(self, pool, inactive=False):
        return "<pool type='%s'><name>images</name><target><path>/img</path></target></pool>" % self.pool_type

    def lookup_volume_in_pool(self, pool, name):
        if name not in self.volumes:
            raise NotFound('no volume %s' % name)
        return self.volumes[name]

    def volume_xml(self, vol):
        fmt, capacity = self.facts[vol.name()]
        return ("<volume><name>%s</name><capacity unit='bytes'>%d</capacity><target><path>%s</path>"
                "<format type='%s'/></target></volume>" % (vol.name(), capacity, vol.path(), fmt))

    def resize_volume(self, vol, capacity, shrink=False):
        self.writes.append(('resize', vol.name(), capacity, shrink))

    def create_volume(self, pool, xml):
        facts = sx.parse_volume(xml)
        self.writes.append(('create', facts))
        self.volumes[facts['name']] = Named(facts['name'], '/img/' + facts['name'])
        self.facts[facts['name']] = (facts['format'], facts['capacity'])
        return self.volumes[facts['name']]

    def lookup_volume_by_path(self, path):
        raise NotFound(path)


def run(client, name, state='present', check=False, **params):
    base = {'pool': 'images', 'format': None, 'capacity': None, 'allow_shrink': False, 'backing_volume': None,
            'clone_from': None, 'import_from': None, 'checksum': None}
    base.update(params)
    driver = LibvirtVolumeDriver(client, 'images')
    return rc.ensure(driver, name, ss.volume_partial_from_params(base), state, None, rc.Options(check_mode=check))


def test_grow_and_shrink_only_when_allowed():
    client = FakeClient({'data.raw': ('raw', 16 * MIB)})
    outcome, _before, _after = run(client, 'data.raw', capacity='16MiB')
    assert not outcome.changed and client.writes == []
    with pytest.raises(SpecError) as err:
        run(client, 'data.raw', capacity=8)
    assert err.value.param == 'capacity' and 'allow_shrink' in err.value.msg and client.writes == []
    outcome, _before, _after = run(client, 'data.raw', capacity=8, allow_shrink=True, check=True)
    assert outcome.changed and client.writes == []
    run(client, 'data.raw', capacity=8, allow_shrink=True)
    assert client.writes == [('resize', 'data.raw', 8 * MIB, True)]


def test_missing_backing_volume_and_bad_formats_write_nothing():
    client = FakeClient({'base.raw': ('raw', MIB)})
    with pytest.raises(SpecError) as err:
        run(client, 'vm1.qcow2', backing_volume='nope.raw')
    assert err.value.param == 'backing_volume' and "'nope.raw' not found" in err.value.msg
    with pytest.raises(SpecError) as err:
        run(client, 'base.raw', format='qcow2')
    assert err.value.param == 'format'
    with pytest.raises(SpecError) as err:
        run(FakeClient({}, pool_type='logical'), 'lv', capacity=8, format='qcow2')
    assert err.value.param == 'format' and 'logical' in err.value.msg
    assert client.writes == []


def test_overlay_defaults_to_qcow2_of_the_base_size():
    client = FakeClient({'base.raw': ('raw', MIB)})
    outcome, _before, after = run(client, 'vm1.qcow2', backing_volume='base.raw')
    assert outcome.actions == ['created']
    created = client.writes[0][1]
    assert (created['format'], created['capacity'], created['backing_path'], created['backing_format']) == \
        ('qcow2', MIB, '/img/base.raw', 'raw')


def test_block_pools_tolerate_extent_rounding():
    client = FakeClient({'lv1': ('raw', 12 * MIB)}, pool_type='logical')
    outcome, _before, _after = run(client, 'lv1', capacity=10)
    assert not outcome.changed and client.writes == []


def test_build_refuses_a_device_with_other_data(monkeypatch):
    driver = libvirt_pool.LibvirtPoolDriver(FakeClient({}), build=True)
    spec = {'type': 'fs', 'path': '/mnt', 'source': {'devices': ['/dev/x'], 'format': 'ext4'}, 'autostart': False}
    monkeypatch.setattr(libvirt_pool, 'probe_device', lambda path: {'TYPE': 'ext2'})
    with pytest.raises(SpecError) as err:
        driver._check_empty(spec)
    assert err.value.param == 'build' and 'force: true' in err.value.msg and 'TYPE=ext2' in err.value.msg
    monkeypatch.setattr(libvirt_pool, 'probe_device', lambda path: {'TYPE': 'ext4'})
    driver._check_empty(spec)
    monkeypatch.setattr(libvirt_pool, 'probe_device', lambda path: {})
    driver._check_empty(spec)


class PoolClient(FakeClient):
    """The 'images' pool as the pool driver reads it, counting rescans."""

    def __init__(self):
        super().__init__({})
        self.refreshes = 0

    def pool_autostart(self, pool):
        return False

    def list_volumes(self, pool):
        return []

    def refresh_pool(self, pool):
        self.refreshes += 1


@pytest.mark.parametrize('check', [True, False])
def test_pool_refresh_is_a_step_of_its_own_never_in_check_mode(check):
    client = PoolClient()
    driver = libvirt_pool.LibvirtPoolDriver(client, refresh=True)
    assert driver.read('images') is not None and client.refreshes == 0  # reading never rescans
    outcome, _before, _after = rc.ensure(driver, 'images', {'name': 'images'}, 'present', None,
                                         rc.Options(check_mode=check))
    assert client.refreshes == (0 if check else 1) and outcome.extra['refreshed'] is not check
    assert not outcome.changed and outcome.actions == []


class UploadClient(FakeClient):
    """FakeClient that takes uploads (recording the bytes) and rescans."""

    def upload_volume(self, vol, length, read_chunk, before_finish=None):
        data = b''.join(iter(lambda: read_chunk(length), b''))
        if before_finish is not None:
            before_finish()
        self.writes.append(('upload', vol.name(), length, data))

    def refresh_pool(self, pool):
        pass


QCOW2_4M = b'QFI\xfb' + b'\0' * 20 + (4 * MIB).to_bytes(8, 'big') + b'\0' * 480


@pytest.fixture
def served(monkeypatch, tmp_path):
    """A fake open_url serving ``served.body``; ``served.urls`` are the URLs asked for. TMPDIR is tmp_path."""
    class Served:
        body = QCOW2_4M
        urls = []
        tmp = str(tmp_path)

    class Answer(io.BytesIO):
        headers = Message()

    def opener(url, **_kwargs):
        Served.urls.append(url)
        return Answer(Served.body)
    real_fetch = download.fetch
    monkeypatch.setattr(download, 'fetch', lambda *args, **kwargs: real_fetch(*args, **dict(kwargs, opener=opener)))
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    return Served


def _digest(body, algorithm='sha256'):
    return '%s:%s' % (algorithm, hashlib.new(algorithm, body).hexdigest())


def test_a_url_is_downloaded_only_to_create_a_missing_volume(served):
    client = UploadClient({})
    args = {'import_from': 'http://u:pw@h/a.qcow2', 'checksum': _digest(served.body, 'sha512')}
    outcome, _before, after = run(client, 'a.qcow2', check=True, **args)
    assert outcome.changed and outcome.actions == ['created'] and served.urls == [] and client.writes == []
    assert (after or {}).get('spec') == {'format': None, 'capacity': None, 'backing_volume': None}
    outcome, _before, _after = run(client, 'a.qcow2', capacity=8, **args)
    assert outcome.changed and served.urls == ['http://u:pw@h/a.qcow2']
    assert client.writes[0] == ('create', dict(client.writes[0][1], format='raw', capacity=len(served.body)))
    assert client.writes[1][0] == 'upload' and client.writes[1][3] == served.body
    assert client.writes[2] == ('resize', 'a.qcow2', 8 * MIB, False)
    assert outcome.extra['download']['url'] == 'http://********@h/a.qcow2'
    assert outcome.extra['download']['bytes'] == len(served.body)
    assert os.listdir(served.tmp) == []
    client.facts['a.qcow2'] = ('qcow2', 8 * MIB)
    outcome, _before, _after = run(client, 'a.qcow2', **args)
    assert not outcome.changed and len(served.urls) == 1 and 'download' not in outcome.extra


@pytest.mark.parametrize('args,param,words', [
    ({'checksum': 'sha256:' + '0' * 64}, 'checksum', 'not the expected ' + '0' * 64),
    ({'format': 'raw'}, 'format', 'http://********@h/a.qcow2 is a qcow2 image, not raw'),
    ({'capacity': 1}, 'capacity', 'smaller than the imported image (4 MiB)'),
])
def test_a_downloaded_image_that_does_not_fit_creates_nothing_and_leaves_no_file(served, args, param, words):
    client = UploadClient({})
    base = {'import_from': 'http://u:pw@h/a.qcow2', 'checksum': _digest(served.body)}
    with pytest.raises(SpecError) as err:
        run(client, 'a.qcow2', **dict(base, **args))
    assert err.value.param == param and words in err.value.msg, err.value.msg
    assert 'pw' not in err.value.msg and client.writes == [] and os.listdir(served.tmp) == []


def test_a_downloaded_qcow2_needs_a_file_pool(served):
    client = UploadClient({}, pool_type='logical')
    with pytest.raises(SpecError) as err:
        run(client, 'lv', import_from='http://h/a.qcow2', checksum=_digest(served.body))
    assert err.value.param == 'format' and 'logical' in err.value.msg and client.writes == []


def test_the_volume_module_hands_its_log_to_the_driver():
    from ansible_collections.virtfleet.virt.plugins.modules import volume

    class Module:
        @staticmethod
        def log(_line):
            pass
    driver = volume.drivers(Module)['libvirt'](FakeClient({}), {'pool': 'images', 'state': 'present'})
    assert driver.log is Module.log


class InactivePoolClient(PoolClient):
    """An inactive pool holding one volume, whose data deletion fails (fuzz storage_pool #770: 'busy')."""

    def __init__(self):
        super().__init__()
        self.active = False
        self.vol = Named('v1', '/img/v1')

    def pool_is_active(self, pool):
        return self.active

    def start_pool(self, pool):
        self.active = True
        self.writes.append('start')

    def stop_pool(self, pool):
        self.active = False
        self.writes.append('stop')

    def list_volumes(self, pool):
        return [self.vol] if self.active else []

    def delete_volume(self, vol):
        self.writes.append(('delete', vol.path()))

    def delete_pool_data(self, pool):
        raise BackendError("deleting the data of storage pool images failed: failed to remove pool '/img': "
                           "Device or resource busy")


def test_a_failed_data_deletion_reports_what_it_did_before(monkeypatch):
    monkeypatch.setattr(libvirt_pool.os.path, 'ismount', lambda path: path == '/img')
    client = InactivePoolClient()
    driver = libvirt_pool.LibvirtPoolDriver(client)
    with pytest.raises(BackendError) as err:
        rc.ensure(driver, 'images', {'name': 'images'}, 'absent', None, rc.Options(delete_options={'delete_data': True}))
    outcome = err.value.outcome
    assert client.writes == ['start', ('delete', '/img/v1'), 'stop']
    assert err.value.details['performed'] and 'busy' in err.value.msg and '/img is still mounted' in err.value.msg
    assert outcome.changed and outcome.actions == ['started (to delete its volumes)', 'deleted volume /img/v1', 'stopped',
                                                   'deleted in part']

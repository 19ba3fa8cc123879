"""Storage pool/volume specs (module_utils/_storage_spec.py) and their libvirt XML (libvirt_storagexml.py)."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _storage_spec as ss
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_storagexml as sx
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def params(**kwargs):
    base = {'type': None, 'path': None, 'source': None, 'autostart': None}
    base.update(kwargs)
    return base


def source(**kwargs):
    base = dict((k, None) for k in ss.POOL_SOURCE_KEYS)
    base.update(kwargs)
    return base


@pytest.mark.parametrize('kind,given,expected', [
    ('dir', params(type='dir', path='/srv/img/'), {'path': '/srv/img', 'source': {}}),
    ('fs', params(type='fs', path='/mnt/a', source=source(devices=['/dev/sdb'])),
     {'path': '/mnt/a', 'source': {'devices': ['/dev/sdb'], 'format': 'auto'}}),
    ('netfs', params(type='netfs', path='/mnt/n', source=source(hosts=['nfs1:2049'], dir='/export/')),
     {'path': '/mnt/n', 'source': {'hosts': ['nfs1:2049'], 'dir': '/export', 'format': 'auto'}}),
    ('logical', params(type='logical', source=source(devices=['/dev/sdc'])),
     {'path': '/dev/p1', 'source': {'devices': ['/dev/sdc'], 'name': 'p1', 'format': 'lvm2'}}),
    ('disk', params(type='disk', source=source(devices=['/dev/sdd'])),
     {'path': '/dev', 'source': {'devices': ['/dev/sdd'], 'format': 'unknown'}}),
    ('iscsi', params(type='iscsi', source=source(hosts=['[fd00::1]:3260'], iqn='iqn.x:t',
                                                 auth={'username': 'u', 'secret_usage': 's'})),
     {'path': '/dev/disk/by-path', 'source': {'hosts': ['[fd00::1]:3260'], 'iqn': 'iqn.x:t',
                                              'auth': {'type': 'chap', 'username': 'u', 'secret_usage': 's'}}}),
    ('rbd', params(type='rbd', source=source(hosts=['mon1', 'mon2:6789'], name='rbd')),
     {'path': None, 'source': {'hosts': ['mon1', 'mon2:6789'], 'name': 'rbd'}}),
])
def test_new_pool_defaults_and_xml_round_trip(kind, given, expected):
    partial = ss.pool_partial_from_params(given)
    spec = ss.merge_pool('p1', partial, None)
    assert spec == dict(expected, type=kind, autostart=False)
    name, _uuid, parsed, _sizes = sx.parse_pool(sx.render_pool('p1', spec))
    assert name == 'p1' and dict(parsed, autostart=False) == spec


def test_build_defaults_and_merge_keeps_what_is_left_out():
    spec = ss.merge_pool('p', ss.pool_partial_from_params(params(type='fs', path='/m', source=source(devices=['/d']))),
                         None, build=True)
    assert spec['source']['format'] == 'ext4'
    actual = dict(spec, autostart=True)
    assert ss.merge_pool('p', ss.pool_partial_from_params(params()), actual) == actual
    changed = ss.merge_pool('p', ss.pool_partial_from_params(params(source=source(format='xfs'))), actual)
    assert changed['source'] == {'devices': ['/d'], 'format': 'xfs'}
    assert ss.pool_changed_fields(actual, changed) == ['source']


@pytest.mark.parametrize('given,actual,param,fragment', [
    (params(path='/x'), None, 'type', 'is required'),
    (params(type='dir'), None, 'path', 'is required'),
    (params(type='dir', path='/x', source=source(devices=['/d'])), None, 'source.devices', 'does not apply to dir'),
    (params(type='fs', path='/x'), None, 'source.devices', 'required for fs'),
    (params(type='fs', path='/x', source=source(devices=['/a', '/b'])), None, 'source.devices', 'exactly one'),
    (params(type='fs', path='/x', source=source(devices=['/a'], format='nfs')), None, 'source.format', 'not a format'),
    (params(type='rbd', path='/x', source=source(hosts=['m'], name='r')), None, 'path', 'no target path'),
    (params(type='netfs', path='/x'), {'type': 'dir', 'path': '/x', 'source': {}}, 'type', 'is a dir pool'),
])
def test_pool_spec_errors_name_the_option(given, actual, param, fragment):
    with pytest.raises(SpecError) as err:
        ss.merge_pool('p', ss.pool_partial_from_params(given), actual)
    assert err.value.param == param and fragment in err.value.msg


@pytest.mark.parametrize('path', [None, '/dev/vg0', '/dev/vg0/'])
def test_a_logical_pool_lives_at_dev_volume_group(path):
    """Found by the 1000-set fuzz run: libvirt sets a logical pool's target path to /dev/<vg> whatever it is given,
    so a path given otherwise reported "updated: path" on every run."""
    given = params(type='logical', path=path, source=source(name='vg0'))
    spec = ss.merge_pool('p1', ss.pool_partial_from_params(given), None)
    assert spec['path'] == '/dev/vg0'
    # an existing pool, the same path again or left out: no change
    assert ss.merge_pool('p1', ss.pool_partial_from_params(given), spec) == spec
    assert ss.merge_pool('p1', ss.pool_partial_from_params(params()), spec) == spec


@pytest.mark.parametrize('given,actual', [
    (params(type='logical', path='/var/lib/x'), None),
    (params(type='logical', path='/dev/vg1', source=source(name='vg0')), None),
    (params(path='/srv/p1'), {'type': 'logical', 'path': '/dev/p1', 'source': {'name': 'p1', 'format': 'lvm2'}}),
])
def test_a_logical_pool_refuses_another_path(given, actual):
    with pytest.raises(SpecError) as err:
        ss.merge_pool('p1', ss.pool_partial_from_params(given), actual)
    assert err.value.param == 'path' and 'the target path of a logical pool is /dev/<volume group>' in err.value.msg
    assert 'source.name' in err.value.msg


@pytest.mark.parametrize('name,kind', [('images\n', 'pool'), ('disk.img\n', 'volume'), ('a' * 65, 'pool'),
                                       ('.x', 'volume')])
def test_storage_names_with_a_trailing_newline_are_refused(name, kind):
    """Found by fuzzing: "$" matched before a final newline; libvirt then refused the name in its own words."""
    with pytest.raises(SpecError, match='is not a valid %s name' % kind):
        ss.validate_name(name, kind=kind)


@pytest.mark.parametrize('given,param', [
    (params(type='dir', path='relative'), 'path'),
    (params(type='netfs', source=source(hosts=['a b'])), 'source.hosts'),
    (params(type='netfs', source=source(hosts=['h:99999'])), 'source.hosts'),
    (params(type='iscsi', source=source(auth={'username': 'u'})), 'source.auth'),
    (params(type='iscsi', source=source(auth={'username': 'u', 'secret_uuid': 'a', 'secret_usage': 'b'})), 'source.auth'),
])
def test_bad_pool_options(given, param):
    with pytest.raises(SpecError) as err:
        ss.pool_partial_from_params(given)
    assert err.value.param == param


def test_render_pool_patches_the_existing_definition():
    base = ("<pool type='dir'><name>p</name><uuid>0b3c3a8e-6a34-4a39-9a2f-7c0f4e1a2b3c</uuid>"
            "<capacity unit='bytes'>10</capacity><source/><target><path>/old</path>"
            "<permissions><mode>0711</mode></permissions></target></pool>")
    xml = sx.render_pool('p', {'type': 'dir', 'path': '/new', 'source': {}}, base_xml=base)
    assert '0b3c3a8e' in xml and '<mode>0711</mode>' in xml and '/new' in xml and '/old' not in xml
    assert '<capacity' not in xml


def test_pool_steps():
    assert ss.pool_steps('inactive', 'active')[0].action == 'start'
    assert ss.pool_steps('active', 'inactive')[0].action == 'stop'
    assert ss.pool_steps('active', 'active') == [] and ss.pool_steps('active', None) == []


def vparams(**kwargs):
    base = {'pool': 'images', 'format': None, 'capacity': None, 'allow_shrink': False, 'backing_volume': None,
            'clone_from': None, 'import_from': None, 'checksum': None}
    base.update(kwargs)
    return base


def test_volume_partial():
    partial = ss.volume_partial_from_params(vparams(capacity='10GiB', backing_volume='other/base.qcow2'))
    assert partial['capacity'] == 10 * 1024 ** 3 and partial['backing'] == ('other', 'base.qcow2')
    assert ss.volume_partial_from_params(vparams(capacity=16))['capacity'] == 16 * 1024 ** 2
    assert ss.volume_partial_from_params(vparams(clone_from='base'))['clone'] == ('images', 'base')
    partial = ss.volume_partial_from_params(vparams(import_from='/f', checksum='SHA256:' + 'A' * 64))
    assert partial['import'] == ('/f', ('sha256', 'a' * 64))


@pytest.mark.parametrize('given,param', [
    (vparams(capacity='10XB'), 'capacity'),
    (vparams(capacity=0), 'capacity'),
    (vparams(backing_volume='a', clone_from='b'), 'clone_from'),
    (vparams(import_from='/f'), 'checksum'),
    (vparams(import_from='/f', checksum='sha256:abc'), 'checksum'),
    (vparams(import_from='/f', checksum='md5:' + 'a' * 32), 'checksum'),
    (vparams(checksum='sha256:' + 'a' * 64), 'checksum'),
    (vparams(backing_volume='bad name'), 'backing_volume'),
])
def test_bad_volume_options(given, param):
    with pytest.raises(SpecError) as err:
        ss.volume_partial_from_params(given)
    assert err.value.param == param


def test_sizes():
    assert ss.round_capacity(1000, 'qcow2') == 1024 and ss.round_capacity(1000, 'raw') == 1000
    assert ss.human_size(16 * 1024 ** 2) == '16 MiB' and ss.human_size(1000) == '1000 bytes'


def test_volume_xml():
    xml = sx.render_volume('v.qcow2', 'qcow2', 1024, '/p/base.raw', 'raw', sparse=True)
    facts = sx.parse_volume(xml.replace('<volume>', "<volume type='file'>").replace(
        '<target>', '<target><path>/p/v.qcow2</path>'))
    assert facts['capacity'] == 1024 and facts['allocation'] == 0 and facts['format'] == 'qcow2'
    assert (facts['backing_path'], facts['backing_format'], facts['path']) == ('/p/base.raw', 'raw', '/p/v.qcow2')
    assert sx.parse_volume("<volume><name>x</name><capacity unit='G'>2</capacity></volume>")['capacity'] == 2 << 30


def test_import_from_a_url_is_kept_as_written_and_a_path_is_expanded(monkeypatch):
    monkeypatch.setenv('VFT_IMAGES', '/srv/images')
    url = 'https://user:pw@images.example.com:8443/a$VFT_IMAGES.qcow2?x=~'
    partial = ss.volume_partial_from_params(vparams(import_from=url, checksum='sha512:' + 'a' * 128))
    assert partial['import'] == (url, ('sha512', 'a' * 128))
    assert partial['download'] == {'timeout': ss.DOWNLOAD_TIMEOUT, 'validate_certs': True}
    partial = ss.volume_partial_from_params(vparams(import_from='HTTP://h/a', checksum='sha256:' + 'a' * 64,
                                                    validate_certs=False, download_timeout=5))
    assert partial['download'] == {'timeout': 5, 'validate_certs': False}
    partial = ss.volume_partial_from_params(vparams(import_from='$VFT_IMAGES/a.qcow2', checksum='sha256:' + 'a' * 64))
    assert partial['import'][0] == '/srv/images/a.qcow2' and 'download' not in partial


@pytest.mark.parametrize('given,param,words', [
    (vparams(import_from='ftp://user:pw@h/a'), 'import_from', 'ftp://********@h/a: the ftp:// scheme is not supported; give an http:// or https://'),
    (vparams(import_from='https://user:pw@/a'), 'import_from', 'has no host name'),
    (vparams(import_from='http://h:99999/a'), 'import_from', 'is not a valid URL'),
    (vparams(import_from='http://h/a b'), 'import_from', 'percent-encode'),
    (vparams(import_from='http://h/a'), 'checksum', 'SHA256SUMS'),
    (vparams(import_from='/a'), 'checksum', 'sha256sum FILE'),
    (vparams(import_from='http://h/a', checksum='sha256:' + 'a' * 64, download_timeout=0), 'download_timeout',
     'more than 0 seconds'),
])
def test_bad_import_from(given, param, words):
    with pytest.raises(SpecError) as err:
        ss.volume_partial_from_params(given)
    assert err.value.param == param and words in err.value.msg, err.value.msg
    assert 'pw' not in err.value.msg

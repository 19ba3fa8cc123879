"""cloud-init NoCloud seeds (module_utils/_cloud_init.py)."""
from __future__ import annotations

import json

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _cloud_init as ci
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def test_files_defaults_and_rendering():
    files = ci.seed_files('vm1-seed.iso')
    assert files == {'meta-data': b'{\n  "instance-id": "vm1-seed.iso"\n}\n', 'user-data': b'#cloud-config\n'}
    files = ci.seed_files('s', {'users': ['a']}, 'instance-id: x\n', {'version': 2})
    assert files['user-data'].startswith(b'#cloud-config\n') and json.loads(files['user-data'][14:]) == {'users': ['a']}
    assert files['meta-data'] == b'instance-id: x\n' and json.loads(files['network-config']) == {'version': 2}
    with pytest.raises(SpecError) as err:
        ci.seed_files('s', meta_data=['x'])
    assert err.value.param == 'meta_data'


def test_hash_depends_on_names_and_content_only():
    one = ci.seed_files('s', '#cloud-config\na: 1\n')
    assert ci.content_sha256(one) == ci.content_sha256(dict(one))
    assert ci.content_sha256(one) != ci.content_sha256(ci.seed_files('s', '#cloud-config\na: 2\n'))
    # moving bytes from one file to the other changes the hash
    assert ci.content_sha256({'a': b'xy', 'b': b''}) != ci.content_sha256({'a': b'x', 'b': b'y'})


@pytest.mark.skipif(not ci.HAS_PYCDLIB, reason='pycdlib is not installed')
def test_iso_carries_label_files_and_marker():
    files = ci.seed_files('s', '#cloud-config\npassword: x\n', network_config='version: 2\n')
    spec = ci.seed_spec(files)
    image = ci.build_iso(files, spec['content_sha256'])
    assert len(image) % ci.SECTOR == 0
    pvd = image[ci.PVD_OFFSET:ci.PVD_OFFSET + ci.SECTOR]
    assert pvd[40:72].rstrip() == b'cidata'
    assert ci.parse_marker(pvd) == spec
    assert ci.parse_marker(b'\0' * ci.SECTOR) is None
    import io
    import pycdlib
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    for name, data in files.items():
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path='/' + name)
        assert out.getvalue() == data
    iso.close()


@pytest.mark.parametrize('option, value', [
    ('user_data', '#cloud-config\nwrite_files: [\n'),
    ('meta_data', 'instance-id: [a\n'),
    ('network_config', 'version: 2\n  ethernets: x\n: y'),
    ('meta_data', '- a list\n'),
])
def test_seed_files_refuse_what_cloud_init_would_ignore(option, value):
    with pytest.raises(SpecError) as err:
        ci.seed_files('vm1', **{option: value, 'param': 'cloud_init.'})
    assert err.value.param == 'cloud_init.' + option


def test_seed_files_take_scripts_and_yaml():
    files = ci.seed_files('vm1', user_data='#!/bin/sh\necho [\n', meta_data='instance-id: i-1\n',
                          network_config='version: 2\n')
    assert files['user-data'] == b'#!/bin/sh\necho [\n' and files['meta-data'] == b'instance-id: i-1\n'


def test_customization_files():
    from ansible_collections.virtfleet.virt.plugins.module_utils import _customization as cu
    custom = cu.normalize({'hostname': 'Web1', 'domain': 'example.test', 'dns_servers': ['192.0.2.53'],
                           'networks': [{'ip': '192.0.2.10', 'prefix': 24, 'gateway': '192.0.2.1'}, {'dhcp': True}],
                           'ssh_authorized_keys': ['ssh-ed25519 AAAA b'],
                           'user_data': {'ssh_authorized_keys': ['ssh-ed25519 AAAA a'], 'runcmd': ['true']}})
    files = ci.customization_files(custom, 'u-1', ['52:54:00:00:00:01', '52:54:00:00:00:02'])
    meta = json.loads(files['meta-data'])
    assert meta == {'instance-id': 'iid-u-1', 'local-hostname': 'web1'}
    user = json.loads(files['user-data'][len(b'#cloud-config\n'):])
    assert user['hostname'] == 'web1' and user['fqdn'] == 'web1.example.test' and user['runcmd'] == ['true']
    assert user['ssh_authorized_keys'] == ['ssh-ed25519 AAAA a', 'ssh-ed25519 AAAA b']
    net = json.loads(files['network-config'])
    assert net['version'] == 2
    assert net['ethernets']['eth0'] == {
        'match': {'macaddress': '52:54:00:00:00:01'}, 'set-name': 'eth0', 'addresses': ['192.0.2.10/24'],
        'routes': [{'to': '0.0.0.0/0', 'via': '192.0.2.1'}],
        'nameservers': {'addresses': ['192.0.2.53'], 'search': ['example.test']}}
    assert net['ethernets']['eth1']['dhcp4'] is True and net['ethernets']['eth1']['match'] == {
        'macaddress': '52:54:00:00:00:02'}
    # no network settings: no network-config (cloud-init's DHCP fallback); more networks than NICs: refused
    assert 'network-config' not in ci.customization_files(cu.normalize({'hostname': 'a'}), 'u', [])
    with pytest.raises(SpecError) as err:
        ci.customization_files(custom, 'u-1', ['52:54:00:00:00:01'])
    assert err.value.param == 'customization.networks'
    # the stored form: user_data only as its hash, equal for equal user data
    stored = cu.stored(custom)
    assert 'user_data' not in stored and stored['user_data_sha256'] == cu.stored(dict(custom))['user_data_sha256']
    changed = dict(custom['user_data'], runcmd=['false'])  # a value changed, the keys the same
    assert cu.stored(dict(custom, user_data=changed))['user_data_sha256'] != stored['user_data_sha256']
    assert cu.stored(dict(custom, user_data=None))['user_data_sha256'] is None

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The customization option (a guest's identity) and the clone request, as the vm module reads them."""

from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _customization, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def _net(**kw):
    item = {'dhcp': False, 'ip': None, 'prefix': None, 'gateway': None}
    item.update(kw)
    return item


def test_normalized_shape():
    got = _customization.normalize({
        'hostname': 'Web1', 'domain': 'Example.TEST.', 'dns_servers': ['192.0.2.53', '2001:db8::53'],
        'networks': [_net(ip='192.0.2.10', prefix=24, gateway='192.0.2.1'), _net(dhcp=True),
                     _net(ip='2001:db8::10/64')],
        'ssh_authorized_keys': [' ssh-ed25519 AAAAC3Nz user@host '], 'user_data': '#cloud-config\npackages: [nginx]\n'})
    assert got == {
        'hostname': 'web1', 'domain': 'example.test', 'dns_servers': ['192.0.2.53', '2001:db8::53'],
        'networks': [{'ip': '192.0.2.10', 'prefix': 24, 'gateway': '192.0.2.1'}, {'dhcp': True},
                     {'ip': '2001:db8::10', 'prefix': 64, 'gateway': None}],
        'ssh_authorized_keys': ['ssh-ed25519 AAAAC3Nz user@host'], 'user_data': {'packages': ['nginx']}}


def test_empty_customization():
    assert _customization.normalize({}) == {'hostname': None, 'domain': None, 'dns_servers': [], 'networks': [],
                                            'ssh_authorized_keys': [], 'user_data': None}


@pytest.mark.parametrize('raw, param, words', [
    ({'networks': [_net(ip='192.0.2.10')]}, 'customization.networks[0].prefix', 'required with a static ip'),
    ({'networks': [_net()]}, 'customization.networks[0].ip', 'dhcp: true'),
    ({'networks': [_net(dhcp=True, ip='192.0.2.10')]}, 'customization.networks[0]', 'leave ip'),
    ({'networks': [_net(ip='192.0.2.300', prefix=24)]}, 'customization.networks[0].ip', 'not an IP address'),
    ({'networks': [_net(ip='192.0.2.10', prefix=33)]}, 'customization.networks[0].prefix', '1 to 32'),
    ({'networks': [_net(ip='192.0.2.10/24', prefix=24)]}, 'customization.networks[0].prefix', 'given twice'),
    ({'networks': [_net(ip='192.0.2.0', prefix=24)]}, 'customization.networks[0].ip', 'network address'),
    ({'networks': [_net(ip='192.0.2.10', prefix=24, gateway='198.51.100.1')]}, 'customization.networks[0].gateway',
     'not in the network 192.0.2.0/24'),
    ({'networks': [_net(ip='192.0.2.10', prefix=24, gateway='192.0.2.10')]}, 'customization.networks[0].gateway',
     'own address'),
    ({'hostname': 'web1.example.test'}, 'customization.hostname', 'customization.domain'),
    ({'hostname': '-web'}, 'customization.hostname', 'not a host name'),
    ({'domain': 'exa mple.test'}, 'customization.domain', 'not a DNS domain'),
    ({'dns_servers': ['dns.example']}, 'customization.dns_servers[0]', 'not an IP address'),
    ({'ssh_authorized_keys': ['AAAAonlykey']}, 'customization.ssh_authorized_keys[0]', 'public key line'),
    ({'user_data': '[1, 2]'}, 'customization.user_data', 'dictionary'),
    ({'user_data': 'a: [b'}, 'customization.user_data', 'not valid YAML'),
])
def test_bad_customization_names_the_option(raw, param, words):
    with pytest.raises(SpecError) as err:
        _customization.normalize(raw)
    assert err.value.param == param
    assert words in err.value.msg


def _params(**kw):
    params = dict((key, None) for key in ('domain_type', 'arch', 'machine', 'firmware', 'autostart', 'guest_agent',
                                          'memory', 'max_memory', 'vcpus', 'max_vcpus', 'cpu', 'boot', 'disks',
                                          'interfaces', 'graphics', 'serial', 'title', 'description', 'tags',
                                          'cloud_init', 'xml', 'kernel', 'initrd', 'cmdline', 'customization',
                                          'template', 'clone_from', 'linked_clone'))
    params['name'] = 'web1'
    params.update(kw)
    return params


def test_clone_request_in_the_partial_spec_but_not_in_the_spec():
    partial = _vm_spec.partial_from_params(_params(clone_from='tmpl', linked_clone=True, template=False))
    assert partial['clone'] == {'source': 'tmpl', 'linked': True}
    assert partial['template'] is False
    assert 'clone' not in _vm_spec.merge(partial, None)
    assert _vm_spec.merge(partial, None)['template'] is False
    assert _vm_spec.partial_from_params(_params(clone_from='tmpl'))['clone'] == {'source': 'tmpl', 'linked': False}
    assert 'clone' not in _vm_spec.partial_from_params(_params())


@pytest.mark.parametrize('kw, param', [
    (dict(linked_clone=True), 'linked_clone'),
    (dict(clone_from='web1'), 'clone_from'),
    (dict(clone_from='bad name'), 'clone_from'),
])
def test_bad_clone_request(kw, param):
    with pytest.raises(SpecError) as err:
        _vm_spec.partial_from_params(_params(**kw))
    assert err.value.param == param

"""Podman pods: the spec (canonical forms, validation, merge, create arguments, what counts as a change) and the
container spec's pod option."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_spec as cs
from ansible_collections.virtfleet.virt.plugins.module_utils import _podman_pod_spec as ps
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def params(**kwargs):
    base = dict((key, None) for key in ps.FIELDS)
    base.update(kwargs)
    return base


INSPECT = {'Name': 'p', 'CreateInfra': True, 'Hostname': '', 'Labels': {'a': 'b'},
           'SharedNamespaces': ['uts', 'net', 'ipc'], 'InfraConfig': {'Networks': ['podman'], 'HostNetwork': False}}


def test_partial_is_normalized():
    partial = ps.partial_from_params(params(share=['UTS', 'net', 'net'], ports=['127.0.0.1:8080:80', '53/udp'],
                                            networks=['b', 'a'], labels={'x': 1}, hostname=' web1 '))
    assert partial == {'share': ['net', 'uts'], 'ports': ['0.0.0.0::53/udp', '127.0.0.1:8080:80/tcp'],
                       'networks': ['a', 'b'], 'labels': {'x': '1'}, 'hostname': 'web1'}


@pytest.mark.parametrize('kwargs,param,text', [
    ({'share': ['mnt']}, 'share', "unknown namespaces 'mnt'"),
    ({'share': []}, 'share', 'infra: false'),
    ({'share': 'net'}, 'share', 'must be a list'),
    ({'infra': False, 'ports': ['80']}, 'ports', 'needs the infra container'),
    ({'infra': False, 'hostname': 'h'}, 'hostname', 'needs the infra container'),
    ({'hostname': 'a b'}, 'hostname', 'not a host name'),
    ({'hostname': 'x' * 64}, 'hostname', 'not a host name'),
    ({'labels': {'a': True}}, 'labels.a', 'boolean'),
    ({'ports': ['0:80']}, 'ports[0]', 'out of range'),
    ({'networks': ['host', 'podman']}, 'networks', 'cannot be combined'),
])
def test_bad_input_names_the_option(kwargs, param, text):
    with pytest.raises(SpecError) as err:
        ps.merge(ps.partial_from_params(params(**kwargs)), None)
    assert err.value.param == param and text in err.value.msg


def test_ports_or_networks_need_the_net_namespace():
    with pytest.raises(SpecError) as err:
        ps.merge(ps.partial_from_params(params(share=['ipc'], networks=['podman'])), None)
    assert err.value.param == 'networks'


def test_inspect_round_trip_and_podman_defaults_are_no_change():
    actual = ps.from_inspect(INSPECT, ['127.0.0.1:8080:80/tcp'])
    assert actual == {'infra': True, 'share': ['ipc', 'net', 'uts'], 'ports': ['127.0.0.1:8080:80/tcp'],
                      'networks': ['podman'], 'labels': {'a': 'b'}, 'hostname': None}
    # nothing set, or what Podman picked named again: no change
    for partial in ({}, {'share': ['net', 'ipc', 'uts']}, {'networks': ['podman'], 'ports': ['127.0.0.1::80']}):
        partial = ps.partial_from_params(params(**partial))
        assert ps.changed_fields(actual, ps.merge(partial, actual)) == [], partial
    changed = ps.merge(ps.partial_from_params(params(hostname='h', labels={})), actual)
    assert ps.changed_fields(actual, changed) == ['labels', 'hostname']


def test_a_new_pod_leaves_podman_its_defaults():
    spec = ps.merge({}, None)
    assert spec == dict(ps.DEFAULTS)
    assert ps.create_args('p', spec) == ['--name', 'p']
    assert ps.changed_fields(None, spec) == ['infra', 'ports', 'labels']  # what a created pod gets from the spec


def test_without_infra_the_infra_fields_go():
    actual = ps.from_inspect(dict(INSPECT, Hostname='h'), ['0.0.0.0:80:80/tcp'])
    spec = ps.merge({'infra': False}, actual)
    assert spec == {'infra': False, 'share': [], 'ports': [], 'networks': None, 'labels': {'a': 'b'},
                    'hostname': None}
    assert ps.create_args('p', spec) == ['--name', 'p', '--infra=false', '--label', 'a=b']
    assert ps.from_inspect({'CreateInfra': False, 'Hostname': ''}, []) == dict(spec, labels={})
    # an infra container again: Podman's default namespaces, not the none the pod had
    assert ps.merge({'infra': True}, dict(spec))['share'] is None


def test_create_args():
    spec = ps.merge(ps.partial_from_params(params(share=['cgroup', 'net'], ports=['[::1]:53:53/udp', '8080:80'],
                                                  networks=['n1'], hostname='h', labels={'b': '2', 'a': '1'})), None)
    assert ps.create_args('p', spec) == [
        '--name', 'p', '--share', 'cgroup,net', '--share-parent=false', '--publish', '[::1]:53:53/udp',
        '--publish', '8080:80/tcp', '--network', 'n1', '--hostname', 'h', '--label', 'a=1', '--label', 'b=2']


def test_container_pod_option():
    assert cs.parse_pod(' web ') == 'web' and cs.parse_pod('') is None
    with pytest.raises(SpecError) as err:
        cs.parse_pod('-x')
    assert err.value.param == 'pod'
    assert cs.merge({'pod': None}, dict(cs.DEFAULTS, pod='p'))['pod'] is None
    assert 'pod' in cs.changed_fields(dict(cs.DEFAULTS, pod='a'), dict(cs.DEFAULTS, pod='b'))

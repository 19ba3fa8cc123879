"""The backend-neutral container spec: canonical forms, validation, merge, run states."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_spec as cs
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def params(**kwargs):
    base = dict((key, None) for key in ('image', 'command', 'env', 'labels', 'ports', 'volumes', 'networks',
                                        'restart_policy', 'memory', 'cpus'))
    base.update(kwargs)
    return base


@pytest.mark.parametrize('spec,expected', [
    ('80', ['0.0.0.0::80/tcp']),
    (80, ['0.0.0.0::80/tcp']),
    ('8080:80', ['0.0.0.0:8080:80/tcp']),
    ('8080:80/UDP', ['0.0.0.0:8080:80/udp']),
    ('127.0.0.1:8080:80', ['127.0.0.1:8080:80/tcp']),
    ('127.0.0.1:8080:80/tcp', ['127.0.0.1:8080:80/tcp']),
    ('0.0.0.0:8080:80', ['0.0.0.0:8080:80/tcp']),
    ('127.0.0.1::80', ['127.0.0.1::80/tcp']),
    ('[::1]:5353:53/udp', ['[::1]:5353:53/udp']),
    ('[0:0:0:0:0:0:0:1]:5353:53', ['[::1]:5353:53/tcp']),
    ('8080-8081:80-81', ['0.0.0.0:8080:80/tcp', '0.0.0.0:8081:81/tcp']),
    ('90-91', ['0.0.0.0::90/tcp', '0.0.0.0::91/tcp']),
    ('7000:7000/sctp', ['0.0.0.0:7000:7000/sctp']),
])
def test_ports_have_one_canonical_form(spec, expected):
    assert cs.parse_port(spec, 'ports[0]') == expected


@pytest.mark.parametrize('spec,fragment', [
    ('', 'empty port spec'),
    ('8080:http', 'not a container port'),
    ('http:80', 'not a host port'),
    ('70000:80', 'out of range'),
    ('0:80', 'out of range'),
    ('8081-8080:80-81', 'runs backwards'),
    ('8080-8082:80-81', 'differ in length'),
    ('1.2.3:8080:80', 'not an IP address'),
    ('::1:8080:80', 'brackets'),
    ('[::1:8080:80', 'cannot read'),
    ('8080:80/icmp', 'unknown protocol'),
    ('a:b:c:d', 'brackets'),
])
def test_bad_ports_are_refused_with_the_syntax(spec, fragment):
    with pytest.raises(SpecError) as err:
        cs.parse_port(spec, 'ports[3]')
    assert err.value.param == 'ports[3]' and fragment in err.value.msg


def test_ports_are_sorted_and_duplicates_refused():
    assert cs.parse_ports(['9090:90', '127.0.0.1:8080:80', '53:53/udp']) == [
        '0.0.0.0:53:53/udp', '127.0.0.1:8080:80/tcp', '0.0.0.0:9090:90/tcp']
    with pytest.raises(SpecError, match='published twice'):
        cs.parse_ports(['8080:80', '8080:81'])
    with pytest.raises(SpecError, match='listed twice'):
        cs.parse_ports(['80', '80/tcp'])
    # the same host port on two addresses, or for two protocols, is fine
    assert len(cs.parse_ports(['127.0.0.1:8080:80', '127.0.0.2:8080:80', '8080:80/udp'])) == 3


def test_a_port_without_host_port_keeps_the_one_picked():
    actual = ['127.0.0.1:41503:80/tcp', '0.0.0.0:8080:81/tcp']
    assert cs.merge_ports(['127.0.0.1::80/tcp', '0.0.0.0:8080:81/tcp'], actual) == actual
    # another address or container port is another port
    assert cs.merge_ports(['0.0.0.0::80/tcp'], actual) == ['0.0.0.0::80/tcp']
    # an explicit port wins over the picked one it equals
    assert cs.merge_ports(['127.0.0.1:41503:80/tcp', '127.0.0.1::80/tcp'], actual) == [
        '127.0.0.1::80/tcp', '127.0.0.1:41503:80/tcp']


@pytest.mark.parametrize('spec,expected', [
    ('/srv/www:/www', '/srv/www:/www'),
    ('/srv/www/:/www/:ro', '/srv/www:/www:ro'),
    ('/srv//www:/www:rw', '/srv/www:/www'),
    ('cache:/var/cache', 'cache:/var/cache'),
    ('my_vol.1:/data:ro', 'my_vol.1:/data:ro'),
])
def test_volumes_have_one_canonical_form(spec, expected):
    assert cs.parse_volume(spec, 'volumes[0]') == expected


@pytest.mark.parametrize('spec,fragment', [
    ('/data', 'anonymous volumes are not managed'),
    ('/srv:relative', 'not an absolute path'),
    ('/srv:/data:z', 'unsupported volume options'),
    ('/srv:/data:ro,rw', 'unsupported volume options'),
    ('bad name:/data', 'neither an absolute host path nor a volume name'),
    (':/data', 'cannot read'),
])
def test_bad_volumes_are_refused(spec, fragment):
    with pytest.raises(SpecError) as err:
        cs.parse_volume(spec, 'volumes[1]')
    assert err.value.param == 'volumes[1]' and fragment in err.value.msg


def test_two_volumes_on_one_destination_are_refused():
    with pytest.raises(SpecError, match='two volumes are mounted on /data'):
        cs.parse_volumes(['/a:/data', 'b:/data/'])
    assert cs.parse_volumes(['/b:/z', 'a:/a']) == ['a:/a', '/b:/z']


def test_networks():
    assert cs.parse_networks(['b', 'a', 'b']) == ['a', 'b']
    assert cs.parse_networks(['host']) == ['host']
    with pytest.raises(SpecError, match='cannot be combined'):
        cs.parse_networks(['host', 'a'])
    with pytest.raises(SpecError, match='"none"'):
        cs.parse_networks([])
    with pytest.raises(SpecError, match='called "podman"'):
        cs.parse_networks(['bridge'])


@pytest.mark.parametrize('value,expected', [
    ('no', 'no'), ('Always', 'always'), ('unless-stopped', 'unless-stopped'), ('on-failure', 'on-failure'),
    ('on-failure:0', 'on-failure'), ('on-failure:3', 'on-failure:3'),
])
def test_restart_policies(value, expected):
    assert cs.parse_restart_policy(value) == expected


@pytest.mark.parametrize('value', ['sometimes', 'always:3', 'on-failure:x', ''])
def test_bad_restart_policies(value):
    with pytest.raises(SpecError, match='restart_policy'):
        cs.parse_restart_policy(value)


def test_memory_and_cpus():
    assert cs.parse_memory('64MiB') == cs.parse_memory(64) == cs.parse_memory('64M') == 64
    assert cs.parse_memory('1GiB') == 1024
    assert cs.parse_memory(0) is None and cs.parse_memory('0') is None
    with pytest.raises(SpecError, match='unknown unit'):
        cs.parse_memory('64 parsecs')
    with pytest.raises(SpecError, match='minimum'):
        cs.parse_memory('5MiB')
    with pytest.raises(SpecError, match='whole number of MiB'):
        cs.parse_memory('100k')
    assert cs.parse_cpus(1.5) == 1.5 and cs.parse_cpus('0.25') == 0.25 and cs.parse_cpus(0) is None
    assert cs.parse_cpus(1.23456) == 1.235
    with pytest.raises(SpecError, match='number of CPUs'):
        cs.parse_cpus('many')
    with pytest.raises(SpecError, match='0 \\(no limit\\) or more'):
        cs.parse_cpus(-1)


def test_partial_from_params():
    partial = cs.partial_from_params(params(
        image='localhost/app:1', command='sh -c "echo hi there"', env={'A': 1, 'B': None},
        labels={'x.y': 'z'}, ports=['8080:80'], volumes=['/srv:/srv:ro'], networks=['n1'],
        restart_policy='always', memory='1G', cpus=0.5))
    assert partial == {'image': 'localhost/app:1', 'command': ['sh', '-c', 'echo hi there'],
                       'env': {'A': '1', 'B': ''}, 'labels': {'x.y': 'z'}, 'ports': ['0.0.0.0:8080:80/tcp'],
                       'volumes': ['/srv:/srv:ro'], 'networks': ['n1'], 'restart_policy': 'always',
                       'memory': 1024, 'cpus': 0.5}
    assert cs.partial_from_params(params()) == {}


@pytest.mark.parametrize('extra,param,fragment', [
    ({'env': {'FLAG': True}}, 'env.FLAG', 'quote it'),
    ({'env': {'A=B': 'x'}}, 'env', 'not a valid name'),
    ({'labels': {'l': ['x']}}, 'labels.l', 'must be a string'),
    ({'command': []}, 'command', 'is empty'),
    ({'command': 'sh -c "unterminated'}, 'command', 'cannot split'),
    ({'image': 'has space'}, 'image', 'not an image reference'),
    # found by tests/hardening/fuzz.py: a reference that podman would read as an option
    ({'image': '--privileged'}, 'image', 'not an image reference'),
])
def test_bad_params(extra, param, fragment):
    with pytest.raises(SpecError) as err:
        cs.partial_from_params(params(**extra))
    assert err.value.param == param and fragment in err.value.msg


def test_names():
    assert cs.validate_name('vft-web_1.a') == 'vft-web_1.a'
    for bad in ('-x', 'has space', 'a/b', 'x' * 129, '', 'web1\n'):
        with pytest.raises(SpecError, match='not a valid container name'):
            cs.validate_name(bad)


def test_merge_keeps_what_the_user_left_out():
    actual = dict(cs.DEFAULTS, image='localhost/a:1', image_id='abc', command=['sleep', '1'], env={'A': '1'},
                  ports=['127.0.0.1:41503:80/tcp'], networks=['podman'], memory=64)
    merged = cs.merge({'env': {'B': '2'}, 'ports': ['127.0.0.1::80/tcp']}, actual)
    assert merged['env'] == {'B': '2'} and merged['ports'] == ['127.0.0.1:41503:80/tcp']
    assert merged['command'] == ['sleep', '1'] and merged['memory'] == 64 and merged['networks'] == ['podman']
    assert cs.changed_fields(actual, merged) == ['env']
    new = cs.merge({'image': 'localhost/a:1'}, None)
    assert new['env'] == {} and new['restart_policy'] == 'no' and new['networks'] is None
    assert list(new) == list(cs.FIELDS)


@pytest.mark.parametrize('current,target,steps', [
    ('stopped', 'running', [('start', 'running')]),
    ('running', 'stopped', [('stop', 'stopped')]),
    ('paused', 'running', [('unpause', 'running')]),
    ('paused', 'stopped', [('unpause', 'running'), ('stop', 'stopped')]),
    ('stopping', 'running', [('wait', 'stopped'), ('start', 'running')]),
    ('running', 'running', []),
    ('removing', 'running', None),
])
def test_run_steps(current, target, steps):
    assert cs.run_steps(current, target) == steps

"""virtfleet.virt.container_pod, the pod option of virtfleet.virt.container and container_info (kind: pod) against
real Podman: lifecycle, no write on a re-run, check mode, diff, recreation (with the pod's containers), in-use
refusals, a two-tier pod whose containers reach each other on localhost, bad input.

Podman's own view is read with ``podman pod inspect`` between the runs; an unchanged pod has the same ID and
creation time and the same inspect output.
"""
from __future__ import annotations

import json
import uuid

import pytest

from conftest import PODMAN_IMAGE, PREFIX, assert_clean_failure, free_port, http_get
from test_container import ct, info, play  # noqa: F401 pylint: disable=unused-import

SLEEP = ['sleep', '3600']


def pod(args, check=False, diff=False):
    return ('container_pod', args, check, diff)


def _inspect(podman, name):
    proc = podman.run('pod', 'inspect', name, check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    data = data[0] if isinstance(data, list) else data
    data['SharedNamespaces'] = sorted(data.get('SharedNamespaces') or [])  # Podman prints them in any order
    return data


@pytest.fixture
def pods(podman, containers):  # pylint: disable=unused-argument
    """Unique vft- pod names; removed with their containers afterwards (before ``containers`` cleans up)."""
    made = []

    def new():
        name = '%spod-%s' % (PREFIX, uuid.uuid4().hex[:6])
        made.append(name)
        return name
    yield new
    for name in made:
        podman.run('pod', 'rm', '--force', '--time', '0', name, check=False)


def test_pod_lifecycle(play, podman, pods):
    name = pods()
    port = free_port()
    args = {'name': name, 'ports': ['127.0.0.1:%d:80' % port], 'labels': {'fleet': 'it'}, 'hostname': 'web-it',
            'share': ['net', 'ipc', 'uts', 'pid']}

    [r] = play(pod(args))
    assert not r.get('failed'), r
    assert r['changed'] and r['actions'] == ['created'] and r['recreated'] is False, r
    assert r['pod']['spec'] == {'infra': True, 'share': ['ipc', 'net', 'pid', 'uts'],
                                'ports': ['127.0.0.1:%d:80/tcp' % port], 'networks': ['podman'],
                                'labels': {'fleet': 'it'}, 'hostname': 'web-it'}, r['pod']
    data = _inspect(podman, name)
    assert data['Id'] == r['pod']['id'] and data['Created'] == r['pod']['created'] and data['Hostname'] == 'web-it'
    assert sorted(data['SharedNamespaces']) == ['ipc', 'net', 'pid', 'uts'] and data['Labels'] == {'fleet': 'it'}

    # the same task again and a task naming only the pod: no change, nothing written
    again, bare = play(pod(args, diff=True), pod({'name': name}))
    assert not again['changed'] and again['actions'] == [] and not bare['changed'], (again, bare)
    assert again['diff']['before'] == again['diff']['after']
    assert _inspect(podman, name) == data

    # check mode predicts the recreation and changes nothing
    [checked] = play(pod(dict(args, labels={'fleet': 'it', 'tier': 'web'}), check=True, diff=True))
    assert checked['changed'] and checked['recreated'] and checked['recreate_reasons'] == ['labels'], checked
    assert checked['diff']['after']['spec']['labels'] == {'fleet': 'it', 'tier': 'web'}
    assert _inspect(podman, name) == data

    # update: a recreation (new ID), with a diff; then no change again
    [updated] = play(pod(dict(args, hostname='web2', share=['net', 'ipc']), diff=True))
    assert updated['changed'] and updated['recreated'], updated
    assert updated['recreate_reasons'] == ['share', 'hostname'] and updated['affected_containers'] == []
    assert updated['diff']['before']['spec']['hostname'] == 'web-it'
    assert updated['diff']['after']['spec']['hostname'] == 'web2'
    new = _inspect(podman, name)
    assert new['Id'] != data['Id'] and new['Hostname'] == 'web2' and sorted(new['SharedNamespaces']) == ['ipc', 'net']
    assert new['InfraConfig']['PortBindings'] == data['InfraConfig']['PortBindings']
    [same] = play(pod(dict(args, hostname='web2', share=['ipc', 'net'])))
    assert not same['changed'], same
    # container_info lists it as the module returned it
    [listed] = play(info({'kind': 'pod', 'name': name}))
    assert [p['spec'] for p in listed['pods']] == [same['pod']['spec']], listed

    gone, again = play(pod({'name': name, 'state': 'absent'}, diff=True), pod({'name': name, 'state': 'absent'}))
    assert gone['changed'] and gone['actions'] == ['deleted'] and gone['pod'] == {}, gone
    assert gone['diff']['after'] == {} and gone['diff']['before']['spec']['hostname'] == 'web2'
    assert not again['changed'] and again['actions'] == [], again
    assert _inspect(podman, name) is None


def test_pod_without_infra_and_defaults(play, podman, pods):
    bare, lean = pods(), pods()
    first, again, plain = play(pod({'name': bare}), pod({'name': bare, 'infra': True, 'labels': {}}),
                               pod({'name': lean, 'infra': False}))
    assert first['changed'] and not again['changed'] and plain['changed'], (first, again, plain)
    # what Podman picked (shared namespaces, network) is returned and is no change when named
    [named] = play(pod({'name': bare, 'share': first['pod']['spec']['share'], 'networks': ['podman']}))
    assert not named['changed'], named
    assert plain['pod']['spec'] == {'infra': False, 'share': [], 'ports': [], 'networks': None, 'labels': {},
                                    'hostname': None} and plain['pod']['infra_id'] is None
    assert _inspect(podman, lean)['CreateInfra'] is False


def test_two_tier_pod(play, podman, pods, containers):
    """A web server and a backend in one pod reach each other on localhost; the pod publishes the web port."""
    name, web, backend = pods(), containers.new('web'), containers.new('backend')
    port = free_port()
    token = uuid.uuid4().hex
    web_args = {'name': web, 'image': PODMAN_IMAGE, 'pod': name, 'state': 'started', 'stop_timeout': 0,
                'command': ['httpd', '-f', '-p', '80', '-h', '/var/www']}
    backend_args = {'name': backend, 'image': PODMAN_IMAGE, 'pod': name, 'state': 'started', 'stop_timeout': 0,
                    'command': ['sh', '-c', 'mkdir -p /srv && echo %s > /srv/index.html && exec httpd -f -p 8081 -h /srv'
                                % token]}
    results = play(pod({'name': name, 'ports': ['127.0.0.1:%d:80' % port]}), ct(web_args), ct(backend_args))
    assert all(r['changed'] and not r.get('failed') for r in results), results
    assert results[1]['container']['spec']['pod'] == name and results[1]['container']['spec']['networks'] is None
    for member in (web, backend):
        assert podman.inspect(member)['Pod'] == results[0]['pod']['id']

    # the web container reaches the backend on localhost (busybox's nc over 127.0.0.1: no name lookup)
    fetched = podman.run('exec', web, 'sh', '-c', 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc 127.0.0.1 8081',
                         check=False)
    assert fetched.returncode == 0 and fetched.stdout.splitlines()[-1] == token, fetched
    # and the host reaches the web container through the pod's published port
    assert 'virtfleet test image' in http_get(port)

    # the pod option is idempotent: the same tasks again change nothing
    before = [podman.snapshot(web), podman.snapshot(backend), _inspect(podman, name)['Id']]
    again = play(pod({'name': name, 'ports': ['127.0.0.1:%d:80' % port]}), ct(web_args), ct(backend_args),
                 ct({'name': web, 'pod': name}))
    assert not any(r['changed'] or r.get('failed') for r in again), again
    assert [podman.snapshot(web), podman.snapshot(backend), _inspect(podman, name)['Id']] == before


def test_container_moves_between_pods(play, podman, pods, containers):
    first, second, member = pods(), pods(), containers.new('member')
    args = {'name': member, 'image': PODMAN_IMAGE, 'command': SLEEP, 'state': 'started', 'stop_timeout': 0}
    play(pod({'name': first}), pod({'name': second}), ct(dict(args, pod=first)))
    old = podman.inspect(member)
    checked, moved, again = play(ct(dict(args, pod=second), check=True), ct(dict(args, pod=second)),
                                 ct(dict(args, pod=second)))
    assert checked['changed'] and checked['recreate_reasons'] == ['pod'], checked
    assert moved['changed'] and moved['recreated'] and moved['recreate_reasons'] == ['pod'], moved
    assert not again['changed'], again
    new = podman.inspect(member)
    assert new['Id'] != old['Id'] and new['Pod'] == _inspect(podman, second)['Id']
    assert new['State']['Status'] == 'running'
    # pod: "" takes it out of any pod
    [out] = play(ct(dict(args, pod='')))
    assert out['changed'] and out['container']['spec']['pod'] is None, out
    assert not podman.inspect(member)['Pod']


def test_in_use_is_refused_unless_force(play, podman, pods, containers):
    name, user = pods(), containers.new('poduser')
    play(pod({'name': name, 'labels': {'a': '1'}}),
         ct({'name': user, 'image': PODMAN_IMAGE, 'command': SLEEP, 'pod': name, 'state': 'started',
             'stop_timeout': 0}))
    data, member = _inspect(podman, name), podman.inspect(user)
    change = {'name': name, 'labels': {'a': '2'}}
    refused, refused_check, absent, absent_check = play(
        pod(change), pod(change, check=True), pod({'name': name, 'state': 'absent'}),
        pod({'name': name, 'state': 'absent'}, check=True))
    for result in (refused, refused_check, absent, absent_check):
        assert_clean_failure(result, 'force:', user)
        assert not result['changed']
    assert 'recreates pod' in refused['msg'] and 'labels' in refused['msg']
    assert _inspect(podman, name) == data and podman.inspect(user)['Id'] == member['Id']

    # force: the pod is recreated and its container with it, in the new pod, running again
    [checked] = play(pod(dict(change, force=True), check=True))
    assert checked['changed'] and checked['affected_containers'] == [user] and _inspect(podman, name) == data
    [forced] = play(pod(dict(change, force=True)))
    assert forced['changed'] and forced['recreated'] and forced['affected_containers'] == [user], forced
    assert forced['actions'] == ['removed container %s' % user, 'created container %s' % user,
                                 'started container %s' % user, 'updated: labels'], forced
    new, moved = _inspect(podman, name), podman.inspect(user)
    assert new['Id'] != data['Id'] and new['Labels'] == {'a': '2'}
    assert moved['Id'] != member['Id'] and moved['Pod'] == new['Id'] and moved['State']['Status'] == 'running'
    assert moved['Config']['Cmd'] == SLEEP
    # the container's own task finds nothing to change in the new pod
    [same] = play(ct({'name': user, 'image': PODMAN_IMAGE, 'command': SLEEP, 'pod': name, 'state': 'started'}))
    assert not same['changed'], same

    # a stopped container does not block a recreation; it stays stopped in the new pod
    podman.run('stop', '--time', '0', user)
    [relabeled] = play(pod({'name': name, 'labels': {'a': '3'}}))
    assert relabeled['changed'] and relabeled['affected_containers'] == [user], relabeled
    assert podman.inspect(user)['State']['Status'] in ('created', 'exited')
    assert podman.inspect(user)['Pod'] == _inspect(podman, name)['Id']

    [removed] = play(pod({'name': name, 'state': 'absent', 'force': True}))
    assert removed['changed'] and removed['affected_containers'] == [user], removed
    assert removed['actions'] == ['removed container %s' % user, 'deleted'], removed
    assert _inspect(podman, name) is None and podman.inspect(user) is None


def test_bad_input(play, podman, pods, containers):
    name, user = pods(), containers.new('bad')
    missing = PREFIX + 'pod-none-' + uuid.uuid4().hex[:6]
    [created] = play(pod({'name': name}))
    assert created['changed'], created
    base = {'name': user, 'image': PODMAN_IMAGE, 'command': SLEEP}
    cases = [
        (ct(dict(base, pod=missing)), 'pod:', 'pod %r does not exist' % missing),
        (ct(dict(base, pod=name, ports=['8080:80'])), 'ports:', 'cannot be set on a container in pod'),
        (ct(dict(base, pod=name, networks=['podman'])), 'networks:', 'cannot be set on a container in pod'),
        (ct(dict(base, pod='-x')), 'pod:', 'not a pod name'),
        (pod({'name': name, 'infra': False, 'ports': ['80']}), 'ports:', 'needs the infra container'),
        (pod({'name': name, 'share': ['net', 'mnt']}), 'share:', "unknown namespaces 'mnt'"),
        (pod({'name': name, 'share': []}), 'share:', 'infra: false'),
        (pod({'name': name, 'share': ['ipc'], 'ports': ['80']}), 'ports:', 'share its network namespace'),
        (pod({'name': name, 'networks': [PREFIX + 'no-such-net']}), 'networks:', 'does not exist'),
        (pod({'name': name, 'hostname': 'a b'}), 'hostname:', 'not a host name'),
        (pod({'name': name, 'ports': ['70000:80']}), 'ports[0]:', 'out of range'),
        (pod({'name': '-bad'}), 'name:', 'not a valid pod name'),
    ]
    data = _inspect(podman, name)
    results = play(*[task for task, _param, _text in cases])
    for (task, param, text), result in zip(cases, results):
        assert_clean_failure(result, param, text)
        assert not result['changed'], (task, result)
    assert podman.inspect(user) is None and _inspect(podman, name) == data

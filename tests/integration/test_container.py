"""virtfleet.virt.container and container_info against real Podman: lifecycle, idempotency, check mode,
diff, in-place updates, recreation (with roll-back), published ports, bad input.

Each ``play()`` call is one ansible-playbook run of one or more tasks (podman_path comes from
``module_defaults`` for the action group ``virtfleet.virt.podman``); Podman's own view is checked with
``podman inspect`` between the runs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid

import pytest

from conftest import PODMAN_IMAGE, assert_clean_failure, free_port, http_get

HTTPD = ['httpd', '-f', '-p', '80', '-h', '/www']           # serves the bind mount on /www
HTTPD_IMAGE = ['httpd', '-f', '-p', '80', '-h', '/var/www']  # serves the image's own page


@pytest.fixture(scope='module')
def persistent_update(podman):
    """True when this Podman keeps `podman update` changes (5.1+ on SQLite): then memory changes in place."""
    version = podman.run('version', '--format', '{{.Client.Version}}').stdout.strip()
    numbers = tuple(int(n) for n in re.findall(r'\d+', version)[:2])
    if numbers < (5, 1):
        return False
    info = json.loads(podman.run('info', '--format', 'json').stdout)
    return info['host'].get('databaseBackend') == 'sqlite'


@pytest.fixture
def webroot():
    path = tempfile.mkdtemp(prefix='vft-www-')
    with open(os.path.join(path, 'index.html'), 'w') as handle:
        handle.write('served from the bind mount %s\n' % uuid.uuid4().hex)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def ct(args, check=False, diff=False):
    """A virtfleet.virt.container task for ``play``."""
    return ('container', args, check, diff)


def info(args):
    """A virtfleet.virt.container_info task for ``play``."""
    return ('container_info', args, False, False)


@pytest.fixture
def play(ansible, podman_path):
    """Run tasks in one playbook (one ansible-playbook start); return their registered results in order."""
    def run(*tasks):
        run_id = uuid.uuid4().hex[:8]
        out = os.path.join(ansible.workdir, 'results-%s.json' % run_id)
        steps = [{'name': 'task %d' % i, 'virtfleet.virt.' + module: args, 'register': 'r%d' % i,
                  'ignore_errors': True, 'check_mode': check, 'diff': diff}
                 for i, (module, args, check, diff) in enumerate(tasks)]
        collected = '[%s]' % ', '.join('r%d' % i for i in range(len(tasks)))
        save = {'content': '{{ %s | to_json }}' % collected, 'dest': out}
        steps.append({'name': 'save the results', 'ansible.builtin.copy': save, 'check_mode': False, 'diff': False})
        path = os.path.join(ansible.workdir, 'play-%s.yml' % run_id)
        with open(path, 'w') as handle:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': steps,
                        'module_defaults': {'group/virtfleet.virt.podman': {'podman_path': podman_path}}}], handle)
        ansible.playbook(path)
        with open(out) as handle:
            return json.load(handle)
    return run


def _env(data):
    return dict(item.split('=', 1) for item in data['Config']['Env'])


def _names_like(podman, name):
    return [n for n in podman.run('ps', '-a', '--format', '{{.Names}}').stdout.split() if n.startswith(name)]


def test_lifecycle(play, podman, containers, webroot, persistent_update):
    name = containers.new('life')
    volume = containers.volume_name()
    port = free_port()
    with open(os.path.join(webroot, 'index.html')) as handle:
        page = handle.read()
    args = {'name': name, 'image': PODMAN_IMAGE, 'state': 'started', 'command': HTTPD,
            'ports': ['127.0.0.1:%d:80' % port], 'env': {'GREETING': 'hello world', 'EMPTY': ''},
            'labels': {'fleet': 'it', 'tier': 'web'}, 'volumes': ['%s:/www:ro' % webroot, '%s:/data' % volume],
            'memory': '64MiB', 'restart_policy': 'on-failure:3', 'stop_timeout': 1}

    # create and start
    [r] = play(ct(args))
    assert not r.get('failed'), r
    assert r['changed'] and r['actions'] == ['created', 'start'] and r['recreated'] is False, r
    ct_view = r['container']
    assert ct_view['state'] == 'running' and ct_view['name'] == name
    # the normalized spec holds what the user set, not what the image or podman added
    assert ct_view['spec']['env'] == {'GREETING': 'hello world', 'EMPTY': ''}
    assert ct_view['spec']['labels'] == {'fleet': 'it', 'tier': 'web'}
    assert ct_view['spec']['ports'] == ['127.0.0.1:%d:80/tcp' % port]
    assert ct_view['spec']['volumes'] == ['%s:/data' % volume, '%s:/www:ro' % webroot]
    assert ct_view['spec']['memory'] == 64 and ct_view['spec']['restart_policy'] == 'on-failure:3'
    # podman agrees
    data = podman.inspect(name)
    assert data['Id'] == ct_view['id'] and data['State']['Status'] == 'running'
    env = _env(data)
    assert env['GREETING'] == 'hello world' and env['EMPTY'] == '' and env['VFT_IMAGE_DEFAULT'] == 'from-image'
    assert data['Config']['Labels']['fleet'] == 'it'
    assert data['Config']['Labels']['org.virtfleet.test.image'] == 'vft-busybox'
    mounts = dict((m['Destination'], m) for m in data['Mounts'])
    assert mounts['/www']['Source'] == webroot and mounts['/www']['RW'] is False
    assert mounts['/data']['Name'] == volume and mounts['/data']['RW'] is True
    assert data['HostConfig']['Memory'] == 64 * 1024 * 1024
    assert data['HostConfig']['RestartPolicy'] == {'Name': 'on-failure', 'MaximumRetryCount': 3}
    # the published port answers on 127.0.0.1 with the page from the bind mount
    assert http_get(port) == page
    first_id = ct_view['id']
    snapshot = podman.snapshot(name)

    # the same task again, other spellings of the same spec, and a check-mode run of a change: podman
    # shows that none of them changed anything
    same = dict(args, ports=['127.0.0.1:%d:80/tcp' % port], memory=64, restart_policy='ON-FAILURE:3',
                volumes=['%s:/data:rw' % volume, '%s/:/www/:ro' % webroot], command=' '.join(HTTPD),
                image='localhost/vft-busybox', state='running')
    changed = dict(args, env={'GREETING': 'bonjour', 'EMPTY': ''})
    again, spelled, checked = play(ct(args), ct(same), ct(changed, check=True, diff=True))
    assert again['changed'] is False and again['actions'] == [] and again['recreated'] is False, again
    assert spelled['changed'] is False and spelled['actions'] == [], spelled
    # check mode predicts the recreation (the old container stopped, the new one started) and says why;
    # --diff shows the change
    assert checked['changed'] is True and checked['actions'] == ['updated: env', 'stop', 'start'], checked
    assert checked['recreated'] is True and checked['recreate_reasons'] == ['env']
    assert checked['diff']['before']['spec']['env']['GREETING'] == 'hello world'
    assert checked['diff']['after']['spec']['env']['GREETING'] == 'bonjour'
    assert checked['diff']['before']['state'] == checked['diff']['after']['state'] == 'running'
    assert podman.snapshot(name) == snapshot

    # in place: joining a second network keeps the container (same ID, not restarted); the order of
    # the list does not matter
    network = containers.network()
    joined, reordered = play(ct(dict(args, networks=['podman', network]), diff=True),
                             ct(dict(args, networks=[network, 'podman'])))
    assert joined['changed'] and joined['recreated'] is False and joined['actions'] == ['updated: networks'], joined
    assert joined['diff']['before']['spec']['networks'] == ['podman']
    assert joined['diff']['after']['spec']['networks'] == sorted(['podman', network])
    assert reordered['changed'] is False, reordered
    data = podman.inspect(name)
    assert data['Id'] == first_id and data['State']['StartedAt'] == snapshot[2]
    assert sorted(data['NetworkSettings']['Networks']) == sorted(['podman', network])
    args['networks'] = ['podman', network]

    # memory: in place where podman keeps `podman update` (5.1+ on SQLite), else a truthful recreation
    grown, regrown = play(ct(dict(args, memory='96MiB')), ct(dict(args, memory=96)))
    assert grown['changed'] and not grown.get('failed'), grown
    assert regrown['changed'] is False, regrown
    data = podman.inspect(name)
    assert data['HostConfig']['Memory'] == 96 * 1024 * 1024 and data['State']['Status'] == 'running'
    if persistent_update:
        assert grown['recreated'] is False and data['Id'] == first_id, grown
    else:
        assert grown['recreated'] is True and grown['recreate_reasons'] == ['memory'], grown
        assert data['Id'] != first_id
    args['memory'] = 96
    before_id = data['Id']

    # a change podman cannot apply in place recreates: new ID, same name, running again, and it says so
    changed = dict(changed, networks=args['networks'], memory=96)
    [r] = play(ct(changed, diff=True))
    assert r['changed'] and r['recreated'] is True and r['recreate_reasons'] == ['env'], r
    assert r['actions'] == ['updated: env', 'stop', 'start'], r
    data = podman.inspect(name)
    assert data['Id'] != before_id and data['Id'] == r['container']['id']
    assert data['State']['Status'] == 'running' and _env(data)['GREETING'] == 'bonjour'
    assert sorted(data['NetworkSettings']['Networks']) == sorted(['podman', network])
    assert http_get(port) == page
    assert _names_like(podman, name) == [name]

    # stopped, then stopped again
    stopped, again = play(ct(dict(changed, state='stopped')), ct(dict(changed, state='stopped')))
    assert stopped['changed'] and stopped['actions'] == ['stop'], stopped
    assert stopped['container']['state'] == 'stopped'
    assert again['changed'] is False, again
    assert podman.inspect(name)['State']['Status'] in ('exited', 'stopped')

    # absent (diff shows what went), then absent again; the named volume is kept
    gone, again = play(ct({'name': name, 'state': 'absent'}, diff=True), ct({'name': name, 'state': 'absent'}))
    assert gone['changed'] and gone['actions'] == ['deleted'] and gone['diff']['after'] == {}, gone
    assert gone['diff']['before']['state'] == 'stopped'
    assert again['changed'] is False and not again.get('failed'), again
    assert podman.inspect(name) is None
    assert podman.run('volume', 'exists', volume, check=False).returncode == 0


def test_check_mode_create_creates_nothing(play, podman, containers):
    name = containers.new('check')
    [r] = play(ct({'name': name, 'image': PODMAN_IMAGE, 'state': 'started', 'command': ['sleep', '600'],
                   'ports': ['127.0.0.1::80']}, check=True, diff=True))
    assert r['changed'] is True and r['actions'] == ['created', 'start'], r
    assert r['diff']['before'] == {} and r['diff']['after']['state'] == 'running'
    assert r['diff']['after']['spec']['ports'] == ['127.0.0.1::80/tcp']
    assert podman.inspect(name) is None


def test_present_then_started_and_defaults_are_no_change(play, podman, containers):
    name = containers.new('present')
    # present creates without starting; a port without host port keeps the one podman picked
    created, again = play(ct({'name': name, 'image': PODMAN_IMAGE, 'command': 'sleep 600',
                              'ports': ['127.0.0.1::80'], 'stop_timeout': 1}),
                          ct({'name': name, 'ports': ['127.0.0.1::80']}))
    assert created['changed'] and created['actions'] == ['created'], created
    assert created['container']['state'] == 'stopped'
    assigned = created['container']['spec']['ports'][0]
    assert re.match(r'^127\.0\.0\.1:\d+:80/tcp$', assigned), assigned
    assert again['changed'] is False and again['container']['spec']['ports'] == [assigned], again
    data = podman.inspect(name)
    assert data['State']['Status'] == 'created' and data['Config']['Cmd'] == ['sleep', '600']
    # started
    [r] = play(ct({'name': name, 'state': 'started'}))
    assert r['changed'] and r['actions'] == ['start'], r
    assert podman.inspect(name)['State']['Status'] == 'running'
    snapshot = podman.snapshot(name)
    # values the image sets anyway are no change, whether left out or set explicitly; present leaves
    # the run state alone
    explicit, empty, present = play(
        ct({'name': name, 'image': PODMAN_IMAGE, 'state': 'running', 'env': {'VFT_IMAGE_DEFAULT': 'from-image'},
            'labels': {'org.virtfleet.test.image': 'vft-busybox'}}),
        ct({'name': name, 'env': {}, 'labels': {}}),
        ct({'name': name, 'state': 'present'}))
    assert explicit['changed'] is False, explicit
    assert empty['changed'] is False, empty
    assert present['changed'] is False and present['container']['state'] == 'running', present
    assert podman.snapshot(name) == snapshot


def test_failed_recreation_restores_the_old_container(play, podman, containers):
    """The new container cannot start (its host port is taken): the old one must come back unchanged."""
    holder, name = containers.new('holder'), containers.new('victim')
    taken, own = free_port(), free_port()
    base = {'image': PODMAN_IMAGE, 'state': 'started', 'command': HTTPD_IMAGE, 'stop_timeout': 1}
    results = play(ct(dict(base, name=holder, ports=['127.0.0.1:%d:80' % taken])),
                   ct(dict(base, name=name, ports=['127.0.0.1:%d:80' % own])))
    assert all(r['changed'] and not r.get('failed') for r in results), results
    snapshot = podman.snapshot(name)
    volume = containers.volume_name()  # podman creates it for the new container: the roll-back removes it
    [r] = play(ct(dict(base, name=name, ports=['127.0.0.1:%d:80' % taken], volumes=['%s:/vol' % volume])))
    assert_clean_failure(r, 'recreating container %s failed' % name, 'restored')
    assert podman.snapshot(name)[:2] == snapshot[:2]  # same ID, running again
    # stopped and started again (a new start time): a change, reported (found by the fuzzer, container #445)
    assert podman.snapshot(name)[2] != snapshot[2] and r['changed'] is True, r
    assert r['actions'] == ['stop (the old container, for the recreation)',
                            'start (the old container again, the recreation failed)'], r
    assert podman.run('volume', 'exists', volume, check=False).returncode == 1  # (fuzz container #491)
    bindings = podman.inspect(name)['HostConfig']['PortBindings']
    assert bindings == {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': str(own)}]}
    assert _names_like(podman, name) == [name]
    assert 'virtfleet test image' in http_get(own)


def test_container_info(play, containers):
    fleet = 'vft-%s' % uuid.uuid4().hex[:6]
    up, down = containers.new('info-up'), containers.new('info-down')
    base = {'image': PODMAN_IMAGE, 'command': ['sleep', '600'], 'labels': {'fleet': fleet}, 'stop_timeout': 1}
    results = play(ct(dict(base, name=up, state='started', labels={'fleet': fleet, 'role': 'a'})),
                   ct(dict(base, name=down)))
    assert all(r['changed'] and not r.get('failed') for r in results), results
    described = results[0]['container']
    queries = [
        ({'labels': {'fleet': fleet}}, sorted([up, down])),
        ({'labels': {'fleet': fleet}, 'states': ['running']}, [up]),
        ({'labels': {'fleet': fleet, 'role': 'a'}}, [up]),
        ({'labels': {'org.virtfleet.test.image': 'vft-busybox', 'fleet': fleet}, 'states': ['stopped']}, [down]),
        ({'name': up}, [up]),
        ({'name': 'vft-no-such-container-%s' % fleet}, []),
    ]
    results = play(*[info(query) for query, _expected in queries])
    for (query, expected), result in zip(queries, results):
        assert not result.get('failed') and result['changed'] is False, result
        assert [c['name'] for c in result['containers']] == expected, (query, result)
    assert results[4]['containers'] == [described]


BAD_INPUTS = [
    ({'ports': ['8080:http']}, 'ports[0]', 'not a container port'),
    ({'ports': ['70000:80']}, 'ports[0]', 'out of range'),
    ({'ports': ['1.2.3:8080:80']}, 'ports[0]', 'not an IP address'),
    ({'ports': ['8080:80/icmp']}, 'ports[0]', 'unknown protocol'),
    ({'memory': '64 parsecs'}, 'memory', 'unknown unit'),
    ({'memory': '1MiB'}, 'memory', 'minimum'),
    ({'restart_policy': 'sometimes'}, 'restart_policy', 'not a restart policy'),
    ({'volumes': ['/nonexistent/vft-dir:/data']}, 'volumes', 'does not exist'),
    ({'volumes': ['/tmp:data']}, 'volumes[0]', 'not an absolute path'),
    ({'networks': ['vft-no-such-network']}, 'networks', 'does not exist'),
    ({'env': {'FLAG': True}}, 'env.FLAG', 'quote it'),
    ({'image': 'localhost/vft-no-such-image:1'}, 'image', 'must be present locally'),
    ({'image': 'localhost/vft-no-such-image:1', 'pull': False}, 'image', 'pull is false'),
    ({'podman_path': '/nonexistent/podman'}, 'cannot run podman', 'podman_path'),
]


def test_bad_input_is_refused_and_changes_nothing(play, podman, containers):
    victim = containers.new('victim')
    [r] = play(ct({'name': victim, 'image': PODMAN_IMAGE, 'state': 'started', 'command': ['sleep', '600']}))
    assert r['changed'] and not r.get('failed'), r
    before = podman.snapshot(victim)
    names = [containers.new('bad') for _case in BAD_INPUTS]
    # a new container with bad input is not created ...
    new = [ct(dict({'name': name, 'image': PODMAN_IMAGE, 'state': 'started', 'command': ['sleep', '600']}, **extra))
           for name, (extra, _p, _f) in zip(names, BAD_INPUTS)]
    # ... and an existing container with bad input is left exactly as it was
    old = [ct(dict({'name': victim, 'state': 'started'}, **extra)) for extra, _p, _f in BAD_INPUTS]
    results = play(*(new + old))
    for index, (extra, param, fragment) in enumerate(BAD_INPUTS):
        for result in (results[index], results[len(BAD_INPUTS) + index]):
            try:
                assert_clean_failure(result, param, fragment)
                assert result['changed'] is False, result
            except AssertionError as exc:
                raise AssertionError('bad input %r: %s' % (extra, exc))
        assert podman.inspect(names[index]) is None, extra
    assert podman.snapshot(victim) == before

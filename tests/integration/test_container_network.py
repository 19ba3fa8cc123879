"""virtfleet.virt.container_network, virtfleet.virt.container_volume and container_info (kind: network/volume) against real
Podman: lifecycle, no write on a re-run, check mode, diff, recreation, in-use refusals, overlapping subnets, and
containers that use what the modules created (two containers reaching each other by name on the network, a
named volume whose data survives a container recreation).

Podman's own view is read with ``podman network inspect`` / ``podman volume inspect`` between the runs; an
unchanged object has the same ID and creation time and the same inspect output.
"""
from __future__ import annotations

import json
import random
import time
import urllib.request
import uuid

import pytest

from conftest import PODMAN_IMAGE, PREFIX, assert_clean_failure
from test_container import ct, info, play  # noqa: F401 pylint: disable=unused-import

SLEEP = ['sleep', '3600']


def net(args, check=False, diff=False):
    return ('container_network', args, check, diff)


def vol(args, check=False, diff=False):
    return ('container_volume', args, check, diff)


def _inspect(podman, kind, name):
    proc = podman.run(kind, 'inspect', name, check=False)
    return json.loads(proc.stdout)[0] if proc.returncode == 0 else None


def _block():
    """A /24 of 10.231.0.0/16 and a /64 of fd00:231::/32 no other Podman network of this host uses."""
    third = random.randrange(1, 250)
    return '10.231.%d.0/24' % third, 'fd00:231:%x::/64' % random.randrange(1, 0xffff), third


@pytest.fixture
def objects(podman):
    """Unique vft- network and volume names; removed (with the test's containers) afterwards."""
    made = {'network': [], 'volume': []}

    def new(kind):
        name = '%s%s-%s' % (PREFIX, 'n' if kind == 'network' else 'v', uuid.uuid4().hex[:6])
        made[kind].append(name)
        return name
    yield new
    for name in made['network']:
        podman.run('network', 'rm', name, check=False)
    for name in made['volume']:
        podman.run('volume', 'rm', name, check=False)


def test_network_lifecycle(play, podman, objects):
    name = objects('network')
    v4, v6, third = _block()
    args = {'name': name, 'subnets': [{'subnet': v6}, {'subnet': v4, 'gateway': '10.231.%d.254' % third,
                                                       'ip_range': '10.231.%d.128/25' % third}],
            'labels': {'fleet': 'it'}, 'options': {'mtu': '1400'}, 'internal': True}

    # create
    [r] = play(net(args))
    assert not r.get('failed'), r
    assert r['changed'] and r['actions'] == ['created'] and r['recreated'] is False, r
    spec = r['network']['spec']
    assert spec['subnets'][0] == {'subnet': v4, 'gateway': '10.231.%d.254' % third,
                                  'ip_range': '10.231.%d.128/25' % third}, spec
    assert spec['subnets'][1]['subnet'] == v6 and spec['internal'] is True and spec['dns_enabled'] is True
    assert spec['labels'] == {'fleet': 'it'} and spec['options'] == {'mtu': '1400'} and spec['driver'] == 'bridge'
    data = _inspect(podman, 'network', name)
    assert data['id'] == r['network']['id'] and data['created'] == r['network']['created']
    assert data['internal'] is True and data['ipv6_enabled'] is True and data['options'] == {'mtu': '1400'}
    assert data['subnets'][0]['lease_range'] == {'start_ip': '10.231.%d.129' % third,
                                                 'end_ip': '10.231.%d.255' % third}, data

    # the same task again, and a task naming only the network: no change, nothing written
    again, bare = play(net(args, diff=True), net({'name': name}))
    assert not again['changed'] and again['actions'] == [] and not bare['changed'], (again, bare)
    assert again['diff']['before'] == again['diff']['after']
    assert _inspect(podman, 'network', name) == data

    # check mode predicts the recreation and changes nothing
    [checked] = play(net(dict(args, labels={'fleet': 'it', 'tier': 'web'}), check=True, diff=True))
    assert checked['changed'] and checked['recreated'] and checked['recreate_reasons'] == ['labels'], checked
    assert checked['diff']['after']['spec']['labels'] == {'fleet': 'it', 'tier': 'web'}
    assert _inspect(podman, 'network', name) == data

    # update: what Podman cannot change in place recreates the network (a new ID), with a diff
    [updated] = play(net(dict(args, options={'mtu': '1300'}, dns_enabled=False), diff=True))
    assert updated['changed'] and updated['recreated'], updated
    assert updated['recreate_reasons'] == ['dns_enabled', 'options'] and updated['affected_containers'] == []
    assert updated['diff']['before']['spec']['options'] == {'mtu': '1400'}
    assert updated['diff']['after']['spec']['options'] == {'mtu': '1300'}
    assert updated['diff']['after']['spec']['dns_enabled'] is False
    new = _inspect(podman, 'network', name)
    assert new['id'] != data['id'] and new['options'] == {'mtu': '1300'} and new['dns_enabled'] is False
    assert new['subnets'] == data['subnets'] and new['labels'] == {'fleet': 'it'}
    [same] = play(net(dict(args, options={'mtu': '1300'}, dns_enabled=False)))
    assert not same['changed'], same

    # absent, absent again
    gone, again = play(net({'name': name, 'state': 'absent'}, diff=True), net({'name': name, 'state': 'absent'}))
    assert gone['changed'] and gone['actions'] == ['deleted'] and gone['network'] == {}, gone
    assert gone['diff']['after'] == {} and gone['diff']['before']['spec']['options'] == {'mtu': '1300'}
    assert not again['changed'] and again['actions'] == [], again
    assert _inspect(podman, 'network', name) is None


def test_network_defaults_podman_picks_are_no_change(play, podman, objects):
    name = objects('network')
    first, again = play(net({'name': name}), net({'name': name, 'driver': 'bridge', 'internal': False,
                                                  'dns_enabled': True, 'labels': {}, 'options': {}}))
    assert first['changed'] and not again['changed'], (first, again)
    data = _inspect(podman, 'network', name)
    [subnet] = first['network']['spec']['subnets']
    assert subnet['subnet'] == data['subnets'][0]['subnet'] and subnet['gateway'] == data['subnets'][0]['gateway']
    # the subnet Podman picked, named without gateway: still no change
    [named] = play(net({'name': name, 'subnets': [{'subnet': subnet['subnet']}]}))
    assert not named['changed'], named
    assert _inspect(podman, 'network', name) == data


def test_network_in_use_is_refused_unless_force(play, podman, objects, containers):
    name = objects('network')
    v4, _v6, _third = _block()
    user = containers.new('netuser')
    created, started = play(net({'name': name, 'subnets': [{'subnet': v4}]}),
                            ct({'name': user, 'image': PODMAN_IMAGE, 'command': ['httpd', '-f', '-p', '80', '-h', '/etc'],
                                'networks': [name], 'state': 'started', 'stop_timeout': 0}))
    assert created['changed'] and started['changed'] and not started.get('failed'), (created, started)
    data = _inspect(podman, 'network', name)

    # a change that recreates, and absent: refused (check mode too) naming the container and force
    change = {'name': name, 'subnets': [{'subnet': v4}], 'labels': {'x': 'y'}}
    refused, refused_check, absent, absent_check = play(
        net(change), net(change, check=True), net({'name': name, 'state': 'absent'}),
        net({'name': name, 'state': 'absent'}, check=True))
    for result in (refused, refused_check, absent, absent_check):
        assert_clean_failure(result, 'force', user)
        assert not result['changed']
    assert 'running containers' in refused['msg'] and 'labels' in refused['msg']
    assert _inspect(podman, 'network', name) == data

    # force: recreated, the container is disconnected and connected again and keeps running
    before = podman.inspect(user)
    [forced] = play(net(dict(change, force=True)))
    assert forced['changed'] and forced['recreated'] and forced['affected_containers'] == [user], forced
    assert forced['actions'] == ['disconnected %s' % user, 'connected %s' % user, 'updated: labels'], forced
    assert _inspect(podman, 'network', name)['id'] != data['id']
    after = podman.inspect(user)
    assert after['Id'] == before['Id'] and after['State']['Status'] == 'running'
    assert after['State']['StartedAt'] == before['State']['StartedAt']
    assert list(after['NetworkSettings']['Networks']) == [name]
    address = after['NetworkSettings']['Networks'][name]['IPAddress']
    assert address.startswith(v4.rsplit('.', 1)[0] + '.'), after['NetworkSettings']
    # the host reaches the container's server through the new network
    with urllib.request.urlopen('http://%s/hostname' % address, timeout=10) as response:
        assert response.read().decode().strip() == after['Config']['Hostname']

    # absent with force: disconnected, removed; the container is kept
    [removed] = play(net({'name': name, 'state': 'absent', 'force': True}))
    assert removed['changed'] and removed['affected_containers'] == [user], removed
    assert removed['actions'] == ['disconnected %s' % user, 'deleted'], removed
    assert _inspect(podman, 'network', name) is None
    assert podman.inspect(user)['State']['Status'] == 'running'


def test_overlapping_subnets_and_bad_input(play, podman, objects):
    first, second = objects('network'), objects('network')
    v4, _v6, third = _block()
    [created] = play(net({'name': first, 'subnets': [{'subnet': v4}]}))
    assert created['changed'], created
    cases = [
        ({'subnets': [{'subnet': '10.231.%d.128/25' % third}]}, 'subnets', 'overlaps the subnet %s of the network %s'
         % (v4, first)),
        ({'subnets': [{'subnet': '10.231.%d.1/24' % third}]}, 'subnets[0].subnet', 'host bits'),
        ({'subnets': [{'subnet': '10.232.%d.0/24' % third, 'gateway': '10.9.9.9'}]}, 'subnets[0].gateway',
         'not an address in the subnet'),
        ({'subnets': [{'subnet': '10.232.%d.0/24' % third, 'ip_range': '10.233.0.0/25'}]}, 'subnets[0].ip_range',
         'not inside the subnet'),
        ({'subnets': [{'subnet': '10.232.%d.0/24' % third}, {'subnet': '10.232.%d.0/25' % third}]}, 'subnets',
         'overlap'),
        ({'driver': 'macvlan'}, 'subnets', 'macvlan network needs at least one subnet'),
        ({'labels': {'a': True}}, 'labels.a', 'boolean'),
        ({'options': {'foo': 'bar'}}, 'options', 'Podman refused the network with these options'),
        ({'name': 'podman'}, 'name', 'reserved'),
        ({'name': '-bad'}, 'name', 'not a valid network name'),
    ]
    results = play(*[net(dict({'name': second}, **args)) for args, _param, _text in cases])
    for (args, param, text), result in zip(cases, results):
        assert_clean_failure(result, param + ':', text)
        assert not result['changed'], (args, result)
    assert _inspect(podman, 'network', second) is None
    # a recreation Podman refuses puts the old network back (the same spec, under a new ID) and says so
    [refused] = play(net({'name': first, 'options': {'foo': 'bar'}}))
    assert_clean_failure(refused, 'options:', 'Podman refused')
    assert refused['actions'] == ['removed', 'restored the old network'], refused
    restored = _inspect(podman, 'network', first)
    assert restored['subnets'][0]['subnet'] == v4 and restored.get('options') in (None, {})


def test_volume_lifecycle(play, podman, objects):
    name = objects('volume')
    args = {'name': name, 'labels': {'fleet': 'it'}}
    [r] = play(vol(args))
    assert r['changed'] and r['actions'] == ['created'] and r['recreated'] is False, r
    assert r['volume']['spec'] == {'driver': 'local', 'options': {}, 'labels': {'fleet': 'it'}}
    data = _inspect(podman, 'volume', name)
    assert data['CreatedAt'] == r['volume']['created'] and data['Labels'] == {'fleet': 'it'}

    again, bare = play(vol(args, diff=True), vol({'name': name}))
    assert not again['changed'] and not bare['changed'], (again, bare)
    assert again['diff']['before'] == again['diff']['after']
    assert _inspect(podman, 'volume', name) == data

    tmpfs = {'type': 'tmpfs', 'device': 'tmpfs', 'o': 'mode=0770,uid=1000'}
    [checked] = play(vol(dict(args, options=tmpfs), check=True))
    assert checked['changed'] and checked['recreated'] and checked['recreate_reasons'] == ['options'], checked
    assert _inspect(podman, 'volume', name) == data

    [updated] = play(vol(dict(args, options=tmpfs), diff=True))
    assert updated['changed'] and updated['recreated'] and updated['actions'] == ['updated: options'], updated
    assert updated['diff']['before']['spec']['options'] == {} and updated['diff']['after']['spec']['options'] == tmpfs
    assert any('data stored in it is gone' in w for w in updated.get('warnings', [])), updated
    new = _inspect(podman, 'volume', name)
    assert new['CreatedAt'] != data['CreatedAt'] and new['Options']['o'] == 'mode=0770,uid=1000'
    # podman adds keys of its own (UID) to the options: no change
    [same] = play(vol(dict(args, options=tmpfs)))
    assert not same['changed'], same
    assert _inspect(podman, 'volume', name) == new
    # options Podman refuses: the error names them and the volume is kept as it was (a probe volume is
    # created first). Podman 4 reads size= in o as a quota, which this storage has not.
    if podman.run('version', '--format', '{{.Client.Version}}').stdout.startswith('4.'):
        [refused] = play(vol(dict(args, options=dict(tmpfs, o='size=8m'))))
        assert_clean_failure(refused, 'options:', 'Podman refused')
        assert not refused['changed'] and _inspect(podman, 'volume', name) == new
        assert not [v for v in podman.run('volume', 'ls', '--format', '{{.Name}}').stdout.split()
                    if v.startswith(name + '-')]

    gone, again = play(vol({'name': name, 'state': 'absent'}), vol({'name': name, 'state': 'absent'}))
    assert gone['changed'] and gone['actions'] == ['deleted'] and gone['volume'] == {}, gone
    assert not again['changed'], again
    assert _inspect(podman, 'volume', name) is None


def test_volume_in_use_is_refused_unless_force(play, podman, objects, containers):
    name = objects('volume')
    user = containers.new('voluser')
    play(vol({'name': name}), ct({'name': user, 'image': PODMAN_IMAGE, 'command': SLEEP,
                                  'volumes': ['%s:/data' % name], 'state': 'started'}))
    data = _inspect(podman, 'volume', name)
    change = {'name': name, 'labels': {'x': 'y'}}
    refused, refused_check, absent, absent_check = play(
        vol(change), vol(change, check=True), vol({'name': name, 'state': 'absent'}),
        vol({'name': name, 'state': 'absent'}, check=True))
    for result in (refused, refused_check):
        assert_clean_failure(result, 'labels:', user, 'recreates volume')
    for result in (absent, absent_check):
        assert_clean_failure(result, 'force:', user)
    assert _inspect(podman, 'volume', name) == data and podman.inspect(user) is not None

    checked, forced = play(vol({'name': name, 'state': 'absent', 'force': True}, check=True),
                           vol({'name': name, 'state': 'absent', 'force': True}))
    assert checked['changed'] and checked['affected_containers'] == [user], checked
    assert forced['changed'] and forced['affected_containers'] == [user], forced
    assert forced['actions'] == ['removed container %s' % user, 'deleted'], forced
    assert _inspect(podman, 'volume', name) is None and podman.inspect(user) is None


def test_containers_use_the_network_and_volume(play, podman, objects, containers):
    """Two containers on the new network reach each other by name; the named volume's data survives a
    recreation of the container that mounts it."""
    network, volume = objects('network'), objects('volume')
    web, client = containers.new('web'), containers.new('client')
    web_args = {'name': web, 'image': PODMAN_IMAGE, 'command': ['httpd', '-f', '-p', '80', '-h', '/www'],
                'networks': [network], 'volumes': ['%s:/www' % volume], 'state': 'started', 'env': {'V': '1'}}
    results = play(net({'name': network}), vol({'name': volume}), ct(web_args),
                   ct({'name': client, 'image': PODMAN_IMAGE, 'command': SLEEP, 'networks': [network],
                       'state': 'started'}))
    assert all(r['changed'] and not r.get('failed') for r in results), results
    token = uuid.uuid4().hex
    podman.run('exec', web, 'sh', '-c', 'echo %s > /www/index.html' % token)

    # the client finds the web container by name (Podman's DNS on the network) and fetches the page over it
    # (busybox's nc: its wget crashes on a name lookup in this static image)
    found = podman.run('exec', client, 'nslookup', web)
    assert web in found.stdout and podman.inspect(web)['NetworkSettings']['Networks'][network]['IPAddress'] in found.stdout

    def fetch(attempts=15):
        # aardvark-dns learns a new container's name asynchronously (netavark signals it): a recreated
        # container's name can take a moment to resolve on a loaded machine
        for _attempt in range(attempts):
            done = podman.run('exec', client, 'sh', '-c', 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc %s 80' % web,
                              check=False)
            if done.returncode == 0 or 'bad address' not in done.stderr:
                return done
            time.sleep(1)
        return done
    first = fetch()
    assert first.returncode == 0 and first.stdout.splitlines()[-1] == token, first

    # recreate the web container (env changes): the page written to the volume is still served
    old_id = podman.inspect(web)['Id']
    [recreated] = play(ct(dict(web_args, env={'V': '2'})))
    assert recreated['changed'] and recreated['recreated'], recreated
    assert podman.inspect(web)['Id'] != old_id
    second = fetch()
    assert second.returncode == 0 and second.stdout.splitlines()[-1] == token, second


def test_container_info_kinds(play, objects):
    network, volume = objects('network'), objects('volume')
    play(net({'name': network, 'labels': {'vft': network}}), vol({'name': volume, 'labels': {'vft': volume}}))
    nets, vols, by_label, nothing, states = play(
        info({'kind': 'network', 'name': network}), info({'kind': 'volume', 'name': volume}),
        info({'kind': 'network', 'labels': {'vft': network}}), info({'kind': 'volume', 'name': 'vft-no-such-vol'}),
        info({'kind': 'network', 'states': ['running']}))
    assert [n['name'] for n in nets['networks']] == [network] and 'containers' not in nets, nets
    assert nets['networks'][0]['spec']['labels'] == {'vft': network} and nets['networks'][0]['state'] == 'present'
    assert [v['name'] for v in vols['volumes']] == [volume] and vols['volumes'][0]['spec']['driver'] == 'local'
    assert [n['name'] for n in by_label['networks']] == [network]
    assert nothing['volumes'] == []
    assert_clean_failure(states, 'states:', 'a network has none')

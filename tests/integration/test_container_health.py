"""virtfleet.virt.container's healthcheck and wait_healthy against real Podman, through ansible-playbook, and
the container_fleet role's roll stopping at a container that does not become healthy.

On these machines podman has no systemd connection, so no check runs by itself: wait_healthy runs
``podman healthcheck run`` itself (the result's ``health.checks_run`` counts them).
"""
from __future__ import annotations

import json
import os
import uuid

import pytest

from conftest import PODMAN_IMAGE, assert_clean_failure

SLEEP = ['sleep', '600']
SECOND = 10 ** 9


@pytest.fixture
def play(ansible, podman_path):
    """Run container tasks (module args, check mode) in one playbook; return their registered results."""
    def run(*tasks):
        run_id = uuid.uuid4().hex[:8]
        out = os.path.join(ansible.workdir, 'health-results-%s.json' % run_id)
        steps = [{'name': 'task %d' % i, 'virtfleet.virt.container': args, 'register': 'r%d' % i,
                  'ignore_errors': True, 'check_mode': check}
                 for i, (args, check) in enumerate(tasks)]
        save = {'content': '{{ [%s] | to_json }}' % ', '.join('r%d' % i for i in range(len(tasks))), 'dest': out}
        steps.append({'name': 'save the results', 'ansible.builtin.copy': save, 'check_mode': False})
        path = os.path.join(ansible.workdir, 'health-play-%s.yml' % run_id)
        with open(path, 'w') as handle:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': steps,
                        'module_defaults': {'group/virtfleet.virt.podman': {'podman_path': podman_path}}}], handle)
        ansible.playbook(path)
        with open(out) as handle:
            return json.load(handle)
    return run


def ct(args, check=False):
    return (args, check)


def test_healthy_wait_idempotent_and_check_mode(play, containers, podman):
    name = containers.new('hc')
    args = {'name': name, 'image': PODMAN_IMAGE, 'command': SLEEP, 'state': 'started', 'wait_healthy': True,
            'wait_timeout': 60, 'healthcheck': {'test': 'echo vft-fine', 'interval': 1, 'retries': 2}}
    same = dict(args, healthcheck={'test': ['CMD-SHELL', 'echo vft-fine'], 'interval': '1s', 'retries': 2})
    first, again, checked = play(ct(args), ct(same), ct(same, check=True))
    assert not first.get('failed'), first
    assert first['changed'] and first['actions'][:2] == ['created', 'start']
    assert first['health']['status'] == 'healthy'
    assert first['health']['checks_run'] >= 1  # no systemd here: the wait ran the check itself
    assert first['container']['spec']['healthcheck'] == {
        'test': ['CMD-SHELL', 'echo vft-fine'], 'interval': '1s', 'timeout': '30s', 'retries': 2,
        'start_period': '0s'}
    data = podman.inspect(name)
    assert data['State']['Health']['Status'] == 'healthy'
    assert data['Config']['Healthcheck']['Test'] == ['CMD-SHELL', 'echo vft-fine']
    assert data['Config']['Healthcheck']['Interval'] == SECOND
    # the same healthcheck written another way: no change, nothing written, healthy at once
    assert not again.get('failed'), again
    assert again['changed'] is False and again['health']['status'] == 'healthy'
    assert podman.inspect(name)['Id'] == data['Id']
    assert checked['changed'] is False and 'health' not in checked


def test_unhealthy_fails_with_the_health_log_and_reports_the_creation(play, containers, podman):
    name = containers.new('hc')
    args = {'name': name, 'image': PODMAN_IMAGE, 'command': SLEEP, 'state': 'started', 'wait_healthy': True,
            'wait_timeout': 60,
            'healthcheck': {'test': 'echo vft-broken-out; exit 3', 'interval': '1s', 'retries': 2}}
    failed, rerun = play(ct(args), ct(dict(args, wait_healthy=False)))
    assert_clean_failure(failed, name, 'unhealthy', 'exit code 1', 'vft-broken-out')  # podman records 1 for any failure
    assert failed['changed'] is True and 'created' in failed['actions']  # the container was created, and stays
    data = podman.inspect(name)
    assert data['State']['Status'] == 'running' and data['State']['Health']['Status'] == 'unhealthy'
    # run again without the wait: the container is as asked, nothing to do
    assert not rerun.get('failed') and rerun['changed'] is False, rerun


def test_healthcheck_changes_recreate(play, containers, podman):
    name = containers.new('hc')
    base = {'name': name, 'image': PODMAN_IMAGE, 'command': SLEEP, 'state': 'started'}
    first, = play(ct(dict(base, healthcheck={'test': 'true', 'interval': '1m30s'})))
    assert not first.get('failed'), first
    old = podman.inspect(name)
    assert old['Config']['Healthcheck']['Interval'] == 90 * SECOND
    predicted, = play(ct(dict(base, healthcheck={'retries': 5}), check=True))
    assert predicted['changed'] and predicted['recreated'] and predicted['recreate_reasons'] == ['healthcheck']
    assert podman.inspect(name)['Id'] == old['Id']  # check mode wrote nothing
    changed, again, unchanged = play(ct(dict(base, healthcheck={'retries': 5})),
                                     ct(dict(base, healthcheck={'retries': 5, 'interval': 90})),
                                     ct(base))
    assert changed['changed'] and changed['recreated'] and changed['recreate_reasons'] == ['healthcheck'], changed
    new = podman.inspect(name)
    assert new['Id'] != old['Id'] and new['State']['Status'] == 'running'
    # only what the task set changed: the test and the interval are kept
    assert new['Config']['Healthcheck']['Test'] == ['CMD-SHELL', 'true']
    assert new['Config']['Healthcheck']['Retries'] == 5 and new['Config']['Healthcheck']['Interval'] == 90 * SECOND
    assert again['changed'] is False and unchanged['changed'] is False
    disabled, disabled_again = play(ct(dict(base, healthcheck={'disable': True})),
                                    ct(dict(base, healthcheck={'test': ['NONE']})))
    assert disabled['changed'] and disabled['recreated'], disabled
    assert podman.inspect(name)['Config']['Healthcheck']['Test'] == ['NONE']
    assert disabled_again['changed'] is False, disabled_again


def test_wait_timeout_and_bad_input(play, containers, podman):
    name, other = containers.new('hc'), containers.new('hc')
    slow = {'name': name, 'image': PODMAN_IMAGE, 'command': SLEEP, 'state': 'started', 'wait_healthy': True,
            'wait_timeout': 3,
            # failures within the start period do not count: it stays "starting" until the wait gives up
            'healthcheck': {'test': 'echo vft-not-yet; exit 1', 'interval': '1s', 'start_period': '10m'}}
    timed_out, no_check, bad_duration, not_started = play(
        ct(slow),
        ct({'name': other, 'image': PODMAN_IMAGE, 'command': SLEEP, 'state': 'started', 'wait_healthy': True}),
        ct({'name': other, 'image': PODMAN_IMAGE, 'healthcheck': {'test': 'true', 'interval': 'soon'}}),
        ct({'name': other, 'image': PODMAN_IMAGE, 'wait_healthy': True}))
    assert_clean_failure(timed_out, 'wait_timeout (3 s)', 'starting', 'vft-not-yet')
    assert timed_out['changed'] is True
    assert_clean_failure(no_check, 'wait_healthy', 'no healthcheck')
    assert_clean_failure(bad_duration, 'healthcheck.interval', "'soon'")
    assert_clean_failure(not_started, 'wait_healthy', 'state: started')
    assert podman.inspect(other) is None  # refused before anything was written


def _fleet_play(ansible, workdir, fleet, items, hosts, serial):
    path = os.path.join(workdir, 'health-fleet-%s.yml' % uuid.uuid4().hex[:8])
    with open(path, 'w') as handle:
        json.dump([{'hosts': ':'.join(hosts), 'gather_facts': False, 'serial': serial, 'tasks': [
            {'ansible.builtin.include_role': {'name': 'virtfleet.virt.container_fleet'},
             'vars': {'container_fleet_name': fleet, 'container_fleet_containers': items,
                      'container_fleet_hosts': hosts}}]}], handle)
    return path


def test_fleet_roll_stops_at_the_first_unhealthy_batch(ansible, podman_path, podman, containers, workdir):
    """Three hosts (all this machine, as test_site models hosts), one container each (round-robin: a on hfa, b on
    hfb, c on hfc), rolled two hosts per batch (serial: 2). The new version of a never becomes healthy: the roll
    stops after the first batch, although hfb's part of it succeeded (Ansible alone would go on with the next
    batch, which still has a host left) - hfc keeps the old version."""
    suffix = uuid.uuid4().hex[:6]
    fleet, stem = 'vft-hfleet-' + suffix, 'vft-hfleet-' + suffix
    hosts = ['hfa', 'hfb', 'hfc']
    names = ['%s-%s' % (stem, letter) for letter in 'abc']
    containers.names.extend(names)
    inventory = os.path.join(workdir, 'health-fleet-%s.ini' % suffix)
    python = os.path.join(ansible.venv_bin, 'python')
    with open(inventory, 'w') as handle:
        for host in hosts:
            handle.write('%s ansible_connection=local ansible_python_interpreter=%s\n' % (host, python))

    def items(version, broken=''):
        return [{'name': name, 'image': PODMAN_IMAGE, 'command': SLEEP, 'podman_path': podman_path,
                 'env': {'VERSION': version}, 'wait_timeout': 60,
                 'healthcheck': {'test': 'echo vft-v%s-broken; exit 4' % version if name == broken
                                 else 'echo vft-v%s-ok' % version, 'interval': '1s', 'retries': 2}}
                for name in names]
    v1 = _fleet_play(ansible, workdir, fleet, items('1'), hosts, 2)
    v2 = _fleet_play(ansible, workdir, fleet, items('2', broken=names[0]), hosts, 2)
    first = ansible.playbook(v1, '-i', inventory)
    assert 'failed=0' in first.stdout
    before = dict((n, podman.inspect(n)) for n in names)
    assert all(d['State']['Health']['Status'] == 'healthy' for d in before.values())
    again = ansible.playbook(v1, '-i', inventory)
    assert all('changed=0' in line for line in again.stdout.splitlines() if 'unreachable=0' in line), again.stdout
    rolled = ansible.playbook(v2, '-i', inventory, check=False)
    out = rolled.stdout + rolled.stderr
    assert rolled.returncode != 0, out
    assert 'the roll stops at hfa' in out and 'vft-v2-broken' in out and 'exit code 1' in out, out
    assert '[hfc]' not in out, out  # hfc's batch never ran
    a, b, c = (podman.inspect(n) for n in names)
    assert 'VERSION=2' in a['Config']['Env'] and a['Id'] != before[names[0]]['Id']
    assert a['State']['Health']['Status'] == 'unhealthy'
    assert 'VERSION=2' in b['Config']['Env'] and b['State']['Health']['Status'] == 'healthy'  # same batch: rolled
    # the host of the next batch keeps the old version, untouched
    assert c['Id'] == before[names[2]]['Id'] and 'VERSION=1' in c['Config']['Env']
    assert c['State']['Health']['Status'] == 'healthy'

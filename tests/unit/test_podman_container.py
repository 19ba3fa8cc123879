"""The Podman container driver with a fake podman: normalization of `podman inspect`, plans, recreation
and roll-back, the reconcile loop in check mode, and the client's error translation."""
from __future__ import annotations

import copy

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_spec as cs
from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile
from ansible_collections.virtfleet.virt.plugins.module_utils._clients import podman as podman_client
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_container import PodmanContainerDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_container_create import create_options
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError

IMAGE_ID = 'a' * 64
OTHER_IMAGE_ID = 'b' * 64
IMAGES = {
    'localhost/app:1': {'Id': IMAGE_ID, 'Config': {'Env': ['PATH=/bin', 'APP_HOME=/app'], 'Cmd': ['/bin/sh'],
                                                   'Labels': {'vendor': 'us'}}},
    'localhost/app:2': {'Id': OTHER_IMAGE_ID, 'Config': {'Env': ['PATH=/bin'], 'Cmd': ['/bin/sh']}},
}
IMAGES[IMAGE_ID] = IMAGES['localhost/app:1']
IMAGES['localhost/app'] = IMAGES['localhost/app:1']
IMAGES[OTHER_IMAGE_ID] = IMAGES['localhost/app:2']


def inspect_data(**overrides):
    data = {
        'Id': 'c' * 64, 'Name': 'web', 'Image': IMAGE_ID, 'ImageName': 'localhost/app:1',
        'State': {'Status': 'running', 'ExitCode': 0},
        'Config': {'Env': ['PATH=/bin', 'APP_HOME=/app', 'TERM=xterm', 'container=podman', 'HOME=/root',
                           'HOSTNAME=cccccccccccc', 'GREETING=hi'],
                   'Cmd': ['httpd', '-f'], 'Labels': {'vendor': 'us', 'fleet': 'shop'}},
        'HostConfig': {'PortBindings': {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '8080'}],
                                        '53/udp': [{'HostIp': '', 'HostPort': '5353'}]},
                       'RestartPolicy': {'Name': 'on-failure', 'MaximumRetryCount': 3},
                       'Memory': 64 * 1024 * 1024, 'NanoCpus': 500000000, 'CpuQuota': 50000, 'CpuPeriod': 100000,
                       'NetworkMode': 'bridge'},
        'Mounts': [{'Type': 'bind', 'Source': '/srv/www', 'Destination': '/www/', 'RW': False},
                   {'Type': 'volume', 'Name': 'cache', 'Destination': '/cache', 'RW': True},
                   {'Type': 'volume', 'Name': 'd' * 64, 'Destination': '/anon', 'RW': True}],
        'NetworkSettings': {'Networks': {'podman': {}, 'backend': {}}},
    }
    data.update(overrides)
    return data


class FakePodman:
    """Just enough podman: containers by name and ID, images, networks; records every write."""

    def __init__(self, containers=(), persistent=False, fail_start=()):
        self.containers = dict((c['Name'], copy.deepcopy(c)) for c in containers)
        self.persistent = persistent
        self.fail_start = set(fail_start)
        self.writes = []
        self.networks = {'podman', 'backend', 'front'}
        self.volumes = {'cache'}
        self.start_error = {}  # ID -> message: the start fails (after podman added HOME to the environment)
        self.counter = 0

    def _find(self, ref):
        for data in self.containers.values():
            if ref in (data['Name'], data['Id']):
                return data
        raise NotFound('no such container %s' % ref)

    def close(self):
        pass

    def persistent_update(self):
        return self.persistent

    def inspect_container(self, ref):
        return copy.deepcopy(self._find(ref))

    def inspect_containers(self, refs):
        return [self.inspect_container(r) for r in refs]

    def list_containers(self):
        return [{'Id': c['Id']} for c in self.containers.values()]

    def inspect_image(self, ref):
        if ref not in IMAGES:
            raise NotFound('image not known')
        return copy.deepcopy(IMAGES[ref])

    def pull_image(self, ref):
        self.writes.append(('pull', ref))
        raise BackendError('pulling image %s failed: connection refused' % ref)

    def network_exists(self, name):
        return name in self.networks

    def volume_exists(self, name):
        return name in self.volumes

    def remove_volume(self, name):
        self.writes.append(('volume rm', name))
        self.volumes.remove(name)

    def list_network_names(self):
        return sorted(self.networks)

    def create_container(self, options, image, command=None):
        self.writes.append(('create', options, image, command))
        self.counter += 1
        name = options[options.index('--name') + 1]
        self.volumes.update(v.split(':')[0] for v in options[1::2] if not v.startswith('/') and ':' in v
                            and options[options.index(v) - 1] == '--volume')  # podman creates named volumes
        new_id = ('%d' % self.counter) * 64
        self.containers[name] = inspect_data(Id=new_id, Name=name, State={'Status': 'created', 'ExitCode': 0})
        return new_id

    def start_container(self, ref):
        self.writes.append(('start', ref))
        data = self._find(ref)
        if data['Id'] in self.start_error:
            data['Config']['Env'] = data['Config']['Env'] + ['HOME=/root']
            raise BackendError('starting container %s failed: %s' % (ref, self.start_error[data['Id']]))
        data['State'] = {'Status': 'exited' if data['Id'] in self.fail_start else 'running', 'ExitCode': 1}

    def stop_container(self, ref, timeout=None):
        self.writes.append(('stop', ref))
        self._find(ref)['State'] = {'Status': 'exited', 'ExitCode': 0}

    def pause_container(self, ref):
        self.writes.append(('pause', ref))

    def unpause_container(self, ref):
        self.writes.append(('unpause', ref))

    def remove_container(self, ref, force=False):
        self.writes.append(('rm', ref))
        del self.containers[self._find(ref)['Name']]

    def rename_container(self, ref, new_name):
        self.writes.append(('rename', ref, new_name))
        data = self._find(ref)
        del self.containers[data['Name']]
        data['Name'] = new_name
        self.containers[new_name] = data

    def update_container(self, ref, options):
        self.writes.append(('update', ref, options))

    def network_connect(self, network, ref):
        self.writes.append(('connect', network, ref))

    def network_disconnect(self, network, ref):
        self.writes.append(('disconnect', network, ref))

    def container_logs(self, ref, tail=5):
        return 'httpd: bind: Address in use\n'


def test_inspect_is_normalized_without_what_image_and_podman_added():
    driver = PodmanContainerDriver(FakePodman([inspect_data()]))
    actual = driver.read('web')
    assert actual['state'] == 'running' and actual['id'] == 'c' * 64
    assert actual['spec'] == {
        'image': 'localhost/app:1', 'image_id': IMAGE_ID, 'command': ['httpd', '-f'], 'env': {'GREETING': 'hi'},
        'ports': ['0.0.0.0:5353:53/udp', '127.0.0.1:8080:80/tcp'], 'volumes': ['cache:/cache', '/srv/www:/www:ro'],
        'networks': ['backend', 'podman'], 'restart_policy': 'on-failure:3', 'labels': {'fleet': 'shop'},
        'memory': 64, 'cpus': 0.5, 'pod': None, 'healthcheck': None}
    assert driver.read('nothing') is None


def test_the_image_default_command_is_none_and_set_explicitly_no_change():
    data = inspect_data()
    data['Config']['Cmd'] = ['/bin/sh']
    driver = PodmanContainerDriver(FakePodman([data]))
    actual = driver.read('web')
    assert actual['spec']['command'] is None
    aligned = driver.align({'command': ['/bin/sh']}, actual)
    assert driver.plan_update(aligned, driver.desired({'command': ['/bin/sh']}, aligned)).changes == []
    assert actual['spec']['command'] is None  # align() returns a new view, the actual one stays
    actual = driver.read('web')
    plan = driver.plan_update(actual, driver.desired({'command': ['/bin/sh', '-x']}, actual))
    assert plan.changes == ['command'] and plan.extra['recreate_reasons'] == ['command']
    # another image with the command left out: the new container gets the new image's default
    actual = driver.read('web')
    spec = driver.desired({'image': 'localhost/app:2'}, actual)
    assert spec['command'] is None
    assert '/bin/sh' not in create_options('web', spec)


def test_an_image_default_set_explicitly_is_no_change():
    driver = PodmanContainerDriver(FakePodman([inspect_data()]))
    actual = driver.read('web')
    partial = {'env': {'GREETING': 'hi', 'APP_HOME': '/app', 'TERM': 'xterm'}, 'labels': {'fleet': 'shop', 'vendor': 'us'}}
    aligned = driver.align(partial, actual)
    spec = driver.desired(partial, aligned)
    assert driver.plan_update(aligned, spec).changes == []
    assert 'APP_HOME' not in actual['spec']['env']  # align() returns a new view, the actual one stays
    # the same value for a variable the image does not set is a change
    actual = driver.read('web')
    assert driver.plan_update(actual, driver.desired({'env': {'GREETING': 'hi', 'NEW': ''}}, actual)).changes == ['env']


def test_same_image_by_another_name_is_no_change_a_moved_tag_is():
    driver = PodmanContainerDriver(FakePodman([inspect_data()]))
    actual = driver.read('web')
    spec = driver.desired({'image': 'localhost/app'}, actual)
    assert spec['image'] == 'localhost/app:1' and driver.plan_update(actual, spec).changes == []
    plan = driver.plan_update(actual, driver.desired({'image': 'localhost/app:2'}, actual))
    assert plan.changes == ['image', 'image_id'] and plan.extra['recreate_reasons'] == ['image']


@pytest.mark.parametrize('persistent,recreated', [(False, True), (True, False)])
def test_resources_update_in_place_only_where_podman_keeps_it(persistent, recreated):
    driver = PodmanContainerDriver(FakePodman([inspect_data()], persistent=persistent))
    actual = driver.read('web')
    plan = driver.plan_update(actual, driver.desired({'memory': 128, 'restart_policy': 'always'}, actual))
    assert plan.changes == ['restart_policy', 'memory']
    assert plan.extra['recreated'] is recreated
    assert plan.extra['recreate_reasons'] == (['restart_policy', 'memory'] if recreated else [])
    # removing a limit is never an update in place
    plan = driver.plan_update(actual, driver.desired({'memory': None}, actual))
    assert plan.extra['recreate_reasons'] == ['memory']


def test_networks_change_in_place_and_modes_recreate():
    fake = FakePodman([inspect_data()])
    driver = PodmanContainerDriver(fake)
    actual = driver.read('web')
    plan = driver.plan_update(actual, driver.desired({'networks': ['front', 'podman']}, actual))
    assert plan.changes == ['networks'] and plan.extra['recreated'] is False
    driver.apply_update(actual, plan)
    assert fake.writes == [('connect', 'front', 'c' * 64), ('disconnect', 'backend', 'c' * 64)]
    plan = driver.plan_update(actual, driver.desired({'networks': ['host'], 'ports': []}, actual))
    assert sorted(plan.extra['recreate_reasons']) == ['networks', 'ports']
    # podman would drop the published ports of a host-network container: refused, not recreated each run
    with pytest.raises(SpecError, match='ports: a container on network host publishes no ports'):
        driver.desired({'networks': ['host']}, actual)


def test_moving_a_container_into_a_pod_recreates_it():
    """Found by the 1000-set fuzz run of session 11 (container #65): a container on networks given `pod`
    (networks become the pod's, None) crashed plan_update with a TypeError."""
    driver = PodmanContainerDriver(FakePodman([inspect_data()]))
    actual = driver.read('web')
    plan = driver.plan_update(actual, dict(actual['spec'], pod='shop', networks=None, ports=[]))
    assert sorted(plan.extra['recreate_reasons']) == ['networks', 'pod', 'ports'] and plan.extra['recreated']


def test_ports_given_alone_for_a_container_on_network_none_are_refused():
    """Found by the 1000-set fuzz run: a container already on network none (networks left out) given ports was
    recreated on every run (podman inspect shows no PortBindings for it), reporting "updated: ports" forever."""
    fake = FakePodman([inspect_data(HostConfig={'PortBindings': {}, 'NetworkMode': 'none',
                                                'RestartPolicy': {'Name': 'no'}},
                                    NetworkSettings={'Networks': None})])
    driver = PodmanContainerDriver(fake)
    actual = driver.read('web')
    assert actual['spec']['networks'] == ['none'] and actual['spec']['ports'] == []
    with pytest.raises(SpecError, match='ports: a container on network none publishes no ports'):
        driver.desired({'image': 'localhost/app', 'ports': cs.parse_ports(['42629:80'])}, actual)
    assert fake.writes == []


def test_a_missing_network_or_bind_source_is_refused_before_any_write():
    fake = FakePodman([inspect_data()])
    driver = PodmanContainerDriver(fake)
    with pytest.raises(SpecError, match="network 'nope' does not exist.*backend, front, podman"):
        driver.desired({'networks': ['nope']}, driver.read('web'))
    with pytest.raises(SpecError, match='/nonexistent/vft does not exist'):
        driver.desired({'volumes': ['/nonexistent/vft:/x']}, driver.read('web'))
    # a bind already on the container is not checked again
    assert driver.desired({'volumes': ['/srv/www:/www:ro']}, driver.read('web'))['volumes'] == ['/srv/www:/www:ro']
    assert fake.writes == []


def test_a_missing_image_is_pulled_and_failure_says_what_to_do():
    fake = FakePodman()
    driver = PodmanContainerDriver(fake)
    spec = driver.desired({'image': 'localhost/nope:1'}, None)
    assert spec['image_id'] is None and 'is pulled' in driver.found.warnings[0]
    with pytest.raises(SpecError) as err:
        driver.create('web', spec)
    assert err.value.param == 'image' and 'must be present locally' in err.value.msg
    assert fake.writes == [('pull', 'localhost/nope:1')] and fake.containers == {}
    with pytest.raises(SpecError, match='pull is false'):
        PodmanContainerDriver(fake, pull=False).desired({'image': 'localhost/nope:1'}, None)
    with pytest.raises(SpecError, match='required to create'):
        driver.desired({}, None)


def test_create_options():
    spec = cs.merge({'image': 'localhost/app:1', 'env': {'B': '2', 'A': 'x y'}, 'labels': {'l': 'v'},
                     'ports': cs.parse_ports(['127.0.0.1:8080:80', '90', '[::1]::53/udp', '9000:9000']),
                     'volumes': ['/srv:/srv:ro'], 'networks': ['a', 'b'], 'restart_policy': 'on-failure:2',
                     'memory': 64, 'cpus': 1.5}, None)
    assert create_options('web', spec) == [
        '--name', 'web', '--pull', 'never', '--env', 'A=x y', '--env', 'B=2', '--label', 'l=v',
        '--publish', '[::1]::53/udp', '--publish', '127.0.0.1:8080:80/tcp', '--publish', '90/tcp',
        '--publish', '9000:9000/tcp', '--volume', '/srv:/srv:ro', '--network', 'a', '--network', 'b',
        '--restart', 'on-failure:2', '--memory', '67108864b', '--cpus', '1.5']


def test_recreation_swaps_names_and_keeps_the_run_state():
    fake = FakePodman([inspect_data()])
    driver = PodmanContainerDriver(fake)
    actual = driver.read('web')
    plan = driver.plan_update(actual, driver.desired({'env': {'GREETING': 'bonjour'}}, actual))
    driver.apply_update(actual, plan)
    assert plan.actions == ['stop', 'start'] and plan.state == 'running'
    kinds = [w[0] for w in fake.writes]
    assert kinds == ['create', 'stop', 'rename', 'rename', 'start', 'rm']
    new = driver.read('web')
    assert new['id'] == '1' * 64 and new['state'] == 'running' and list(fake.containers) == ['web']


@pytest.mark.parametrize('was,target,actions,end', [
    ('paused', None, ['unpause', 'stop', 'start', 'pause'], 'paused'),  # state: present keeps the run state
    ('paused', 'running', ['unpause', 'stop', 'start'], 'running'),  # state: started: no pause to undo after
    ('stopping', None, ['stop'], 'stopped'),  # a container on its way down ends stopped, not "stopping"
])
def test_recreation_ends_in_the_task_state(was, target, actions, end):
    driver = PodmanContainerDriver(FakePodman([inspect_data(State={'Status': was, 'ExitCode': 0})]), target=target)
    actual = driver.read('web')
    plan = driver.plan_update(actual, driver.desired({'env': {'GREETING': 'bonjour'}}, actual))
    assert (plan.actions, plan.state) == (actions, end)


def test_recreation_into_stopped_does_not_start_the_new_container():
    fake = FakePodman([inspect_data()])
    driver = PodmanContainerDriver(fake, target='stopped')
    actual = driver.read('web')
    driver.apply_update(actual, driver.plan_update(actual, driver.desired({'command': ['sleep', '9']}, actual)))
    assert 'start' not in [w[0] for w in fake.writes] and driver.read('web')['state'] == 'stopped'


def test_failed_recreation_puts_the_old_container_back():
    fake = FakePodman([inspect_data()], fail_start={'1' * 64})
    driver = PodmanContainerDriver(fake)
    actual = driver.read('web')
    plan = driver.plan_update(actual, driver.desired({'ports': cs.parse_ports(['127.0.0.1:8081:80'])}, actual))
    with pytest.raises(BackendError) as err:
        driver.apply_update(actual, plan)
    assert 'recreating container web failed' in err.value.msg and 'was restored' in err.value.msg
    assert 'Address in use' in err.value.msg
    assert list(fake.containers) == ['web'] and fake.containers['web']['Id'] == 'c' * 64
    assert driver.read('web')['state'] == 'running'


def test_failed_recreation_reports_the_restart_and_removes_the_volume_it_created():
    # found by the fuzzer (container #445, #491, #827): "restored as it was", changed=false, yet the old container
    # had been stopped and started again (a new start time) and podman had created the new named volume
    fake = FakePodman([inspect_data()], fail_start={'1' * 64})
    driver = PodmanContainerDriver(fake)
    volumes = ['/srv/www:/www:ro', 'cache:/cache', 'newvol:/vol']
    with pytest.raises(BackendError) as err:
        _reconcile.ensure(driver, 'web', {'volumes': volumes}, 'present', None, _reconcile.Options())
    assert 'restored with its spec as it was, after a stop and start' in err.value.msg
    assert err.value.outcome.changed and err.value.outcome.actions == [
        'stop (the old container, for the recreation)', 'start (the old container again, the recreation failed)']
    assert fake.volumes == {'cache'} and ('volume rm', 'newvol') in fake.writes
    assert list(fake.containers) == ['web'] and fake.containers['web']['Id'] == 'c' * 64


def test_failed_recreation_of_a_stopped_container_changes_nothing():
    fake = FakePodman([inspect_data(State={'Status': 'exited', 'ExitCode': 0})], fail_start={'1' * 64})
    driver = PodmanContainerDriver(fake, target='running')
    with pytest.raises(BackendError) as err:
        _reconcile.ensure(driver, 'web', {'command': ['sleep', '9']}, 'running', 'running', _reconcile.Options())
    assert 'was restored as it was' in err.value.msg
    assert not err.value.outcome.changed and fake.volumes == {'cache'}
    assert [w[0] for w in fake.writes] == ['create', 'rename', 'rename', 'start', 'rm', 'rename']


@pytest.mark.parametrize('changes', [True, False])
def test_a_failed_start_that_changed_the_container_is_a_change(changes):
    # found by the fuzzer (container #299): the runtime refused to start the container, podman had already
    # added HOME and HOSTNAME to its environment; the run reported changed=false
    fake = FakePodman([inspect_data(State={'Status': 'created', 'ExitCode': 0})])
    fake.start_error['c' * 64] = 'crun: setrlimit `RLIMIT_NOFILE`: Operation not permitted: OCI permission denied'
    if not changes:
        def start_container(ref):
            raise BackendError('starting container %s failed: no' % ref)

        fake.start_container = start_container
    driver = PodmanContainerDriver(fake)
    with pytest.raises(BackendError) as err:
        _reconcile.ensure(driver, 'web', {}, 'running', 'running', _reconcile.Options())
    assert err.value.outcome.changed is changes
    assert err.value.outcome.actions == (['start failed, but podman changed the container (Config.Env)'] if changes
                                         else [])


def test_old_container_left_after_recreation_is_a_failure_with_changed_true():
    # found by the fuzzer (container #328): podman kept restarting the old container, so removing it failed;
    # the run reported changed=false, taking its own half-done recreation for another run's change
    class OldStaysBehind(FakePodman):
        def remove_container(self, ref, force=False):
            if ref == 'c' * 64:
                raise BackendError('removing container %s failed: container state improper' % ref[:12])
            super().remove_container(ref, force)

    fake = OldStaysBehind([inspect_data()])
    driver = PodmanContainerDriver(fake)
    with pytest.raises(BackendError) as err:
        _reconcile.ensure(driver, 'web', {'env': {'GREETING': 'bonjour'}}, 'running', 'running', _reconcile.Options())
    assert 'was recreated with the new spec, but removing the old container' in err.value.msg
    assert 'podman rm -f cccccccccccc' in err.value.msg
    assert err.value.outcome.changed and err.value.outcome.actions == ['updated: env', 'stop', 'start']
    assert not err.value.outcome.warnings  # not mistaken for a concurrent run's change
    assert fake.containers['web']['Id'] == '1' * 64 and any(n.startswith('web-vfold-') for n in fake.containers)


def test_check_mode_predicts_recreation_and_writes_nothing():
    fake = FakePodman([inspect_data()])
    opts = _reconcile.Options(check_mode=True)
    # the recreation stops the old container and starts the new one: reported after the update
    outcome, _before, after = _reconcile.ensure(PodmanContainerDriver(fake), 'web', {'env': {'GREETING': 'bonjour'}},
                                                'running', 'running', opts)
    assert outcome.actions == ['updated: env', 'stop', 'start'] and after['state'] == 'running'
    # into stopped: the old one is stopped and the new one left stopped; no further stop
    driver = PodmanContainerDriver(fake, target='stopped')
    outcome, before, after = _reconcile.ensure(driver, 'web', {'env': {'GREETING': 'bonjour'}}, 'running',
                                               'stopped', opts)
    assert outcome.changed and outcome.actions == ['updated: env', 'stop']
    assert outcome.extra == {'recreated': True, 'recreate_reasons': ['env']}
    assert before['spec']['env'] == {'GREETING': 'hi'} and after['spec']['env'] == {'GREETING': 'bonjour'}
    assert after['state'] == 'stopped' and fake.writes == []
    outcome, before, after = _reconcile.ensure(driver, 'new', {'image': 'localhost/app:1'}, 'running', 'running',
                                               opts)
    assert outcome.actions == ['created', 'start'] and fake.writes == []


def test_the_reconcile_loop_is_idempotent():
    fake = FakePodman([inspect_data()])
    driver = PodmanContainerDriver(fake)
    partial = {'image': 'localhost/app:1', 'env': {'GREETING': 'hi'},
               'ports': ['127.0.0.1::80/tcp', '0.0.0.0:5353:53/udp']}
    outcome, _before, _after = _reconcile.ensure(driver, 'web', partial, 'running', 'running', _reconcile.Options())
    assert not outcome.changed and fake.writes == []


def test_paused_to_stopped_unpauses_first():
    driver = PodmanContainerDriver(FakePodman())
    steps = [(s.action, s.until) for s in driver.steps('paused', 'stopped')]
    assert steps == [('unpause', 'running'), ('stop', 'stopped')]
    with pytest.raises(BackendError, match='cannot bring a container'):
        driver.steps('removing', 'running')


def test_client_error_messages():
    stderr = ('time="2026-01-01T00:00:00Z" level=warning msg="Failed, retrying in 1s ... (1/3)"\n'
              'Error: initializing source docker://localhost/x:1: connection refused\n')
    assert podman_client._message(stderr) == 'initializing source docker://localhost/x:1: connection refused'
    assert podman_client._message('failed to connect to syslog\n') == 'failed to connect to syslog'
    assert podman_client._message('') == 'no message on stderr'
    assert podman_client._version_tuple('4.3.1') == (4, 3, 1)
    assert podman_client._version_tuple('5.1.0-rc1') == (5, 1, 0)


def test_client_translates_failures(tmp_path):
    fake = tmp_path / 'podman'
    fake.write_text('#!/bin/sh\necho "Error: inspecting object: no such container $3" >&2\nexit 125\n')
    fake.chmod(0o755)
    client = podman_client.PodmanClient(str(fake))
    with pytest.raises(NotFound, match='no such container web'):
        client.inspect_container('web')
    fake.write_text('#!/bin/sh\necho "Error: something broke" >&2\nexit 125\n')
    with pytest.raises(BackendError, match='starting container web failed: something broke'):
        client.start_container('web')
    with pytest.raises(BackendError, match='cannot run podman.*podman_path'):
        podman_client.PodmanClient(str(tmp_path / 'missing')).list_containers()

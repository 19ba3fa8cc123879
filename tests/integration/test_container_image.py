"""virtfleet.virt.container_image and container_info (kind: image) against real Podman: a build from a context
(no rebuild while the context is the same, a rebuild when one file changes, check mode, diff), an archive with
its checksum, pulls (missing, always) from a private registry on 127.0.0.1 (tests/env/registry-up.sh, Debian's
docker-registry), the in-use refusal of absent and force, a failing build and an unreachable registry.

Podman's own view is read with ``podman image inspect`` between the runs: an image not rebuilt has the same ID
and creation time.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import ENV, PODMAN_IMAGE, assert_clean_failure, free_port
from test_container import ct, info, play  # noqa: F401 pylint: disable=unused-import

IMAGE_LABEL = 'io.virtfleet.context-sha256'


def img(args, check=False, diff=False):
    return ('container_image', args, check, diff)


def _inspect(podman, ref):
    proc = podman.run('image', 'inspect', ref, check=False)
    return json.loads(proc.stdout)[0] if proc.returncode == 0 else None


def _same(data):
    return (data['Id'], data['Created'], sorted(data['RepoTags']))


class Images:
    """Unique localhost/vft-img-... names and build contexts; the images (by name and ID) removed afterwards."""

    def __init__(self, podman):
        self.podman = podman
        self.names, self.ids = [], []
        self.root = tempfile.mkdtemp(prefix='vft-img-')

    def new(self):
        name = 'localhost/vft-img-%s:1' % uuid.uuid4().hex[:8]
        self.names.append(name)
        return name

    def context(self, greeting='hello', containerfile=None):
        path = tempfile.mkdtemp(dir=self.root)
        with open(os.path.join(path, 'Containerfile'), 'w') as handle:
            handle.write(containerfile or 'FROM %s\nARG WHO=nobody\nCOPY data/ /data/\nRUN echo "$WHO" > /who\n'
                         % PODMAN_IMAGE)
        os.makedirs(os.path.join(path, 'data', 'sub'))
        for rel, text in (('data/greeting.txt', greeting), ('data/sub/other.txt', 'unchanged')):
            with open(os.path.join(path, rel), 'w') as handle:
                handle.write(text + '\n')
        return path

    def remember(self, ref):
        data = _inspect(self.podman, ref)
        if data:
            self.ids.append(data['Id'])
        return data

    def mine(self, ref):
        return ref.startswith('localhost/vft-img-') or ref in self.names

    def cleanup(self):
        """Only this test's names: an image that has no other name (or none at all, and this test saw it) is
        removed with --force; from any other image - the shared test image above all - only this test's names are
        taken off (untag), so that nothing another test or helper uses is touched."""
        keep = _inspect(self.podman, PODMAN_IMAGE)
        listed = json.loads(self.podman.run('images', '--format', 'json').stdout or '[]')
        for entry in listed:
            names = set(entry.get('Names') or [])
            if not (names and any(self.mine(n) for n in names)) and entry['Id'] not in self.ids:
                continue
            if keep and entry['Id'] == keep['Id'] or any(not self.mine(n) for n in names):
                for ref in sorted(n for n in names if self.mine(n)):
                    self.podman.run('untag', entry['Id'], ref, check=False)
            else:
                self.podman.run('rmi', '--force', entry['Id'], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def images(podman):
    pool = Images(podman)
    yield pool
    pool.cleanup()


@pytest.fixture(scope='module')
def registry(podman):
    """A private registry (tests/env/registry-up.sh) holding the test image as <registry>/vft/busybox:latest."""
    out = subprocess.run(['bash', os.path.join(ENV, 'registry-up.sh')], check=True, capture_output=True,
                         text=True, timeout=900).stdout.strip().splitlines()[-1]
    address, pid, storage = out.split()
    try:
        ref = '%s/vft/busybox:latest' % address
        podman.run('tag', PODMAN_IMAGE, ref)
        podman.run('push', '--tls-verify=false', ref)
        podman.run('untag', PODMAN_IMAGE, ref)
        yield address
    finally:
        subprocess.run(['kill', pid], check=False)
        shutil.rmtree(storage, ignore_errors=True)


def test_build_lifecycle(play, podman, images, containers):
    name = images.new()
    context = images.context()
    args = {'name': name, 'build': {'context': context, 'args': {'WHO': 'it'}}, 'tag': ['stable']}

    # build: the name and the extra tag, the context hash as a label
    [built] = play(img(args))
    assert not built.get('failed') and built['changed'], built
    assert 'built' in built['actions'] and 'created' in built['actions'], built
    data = images.remember(name)
    assert data and data['Id'] == built['image']['id'], built
    assert sorted(data['RepoTags']) == sorted([name, name.replace(':1', ':stable')])
    assert data['Labels'][IMAGE_LABEL] == built['image']['spec']['context_sha256']
    assert podman.run('run', '--rm', name, 'cat', '/who', '/data/greeting.txt').stdout == 'it\nhello\n'

    # the same task again (with a diff), a task naming the name only as another tag: nothing written
    again, container = play(img(args, diff=True),
                            ct({'name': containers.new('imguser'), 'image': name, 'command': ['sleep', '3600'],
                                'state': 'started', 'stop_timeout': 0}))
    assert not again['changed'] and again['actions'] == [], again
    assert again['diff']['before'] == again['diff']['after']
    assert not container.get('failed'), container
    assert _same(_inspect(podman, name)) == _same(data)

    # one file of the context changes: check mode predicts the rebuild and changes nothing
    with open(os.path.join(context, 'data', 'sub', 'other.txt'), 'w') as handle:
        handle.write('changed\n')
    [checked] = play(img(args, check=True, diff=True))
    assert checked['changed'] and checked['diff']['before']['spec']['id'] == data['Id'], checked
    assert checked['diff']['after']['spec']['context_sha256'] != data['Labels'][IMAGE_LABEL]
    assert _same(_inspect(podman, name)) == _same(data)

    # the real run rebuilds: a new ID; the container still runs the old image, which is kept and reported
    user = container['container']['name']
    rebuilt, same, recreated = play(img(args, diff=True), img(args),
                                    ct({'name': user, 'image': name, 'command': ['sleep', '3600'],
                                        'state': 'started', 'stop_timeout': 0}))
    new = images.remember(name)
    assert rebuilt['changed'] and 'built' in rebuilt['actions'] and new['Id'] != data['Id'], rebuilt
    assert rebuilt['affected_containers'] == [user], rebuilt
    assert rebuilt['diff']['before']['spec']['id'] == data['Id'] and rebuilt['diff']['after']['spec']['id'] == new['Id']
    assert sorted(new['RepoTags']) == sorted([name, name.replace(':1', ':stable')])
    assert not same['changed'], same
    # virtfleet.virt.container compares the image ID: the container is recreated from the rebuilt image
    assert recreated['changed'] and recreated['recreated'] and 'image_id' in recreated['recreate_reasons'], recreated
    assert podman.inspect(user)['Image'] == new['Id']

    # absent removes the names (the container keeps the image, so force is needed); absent again: nothing to do
    gone, again = play(img({'name': name, 'state': 'absent', 'tag': ['stable'], 'force': True}, diff=True),
                       img({'name': name, 'state': 'absent'}))
    assert gone['changed'] and gone['image'] == {} and gone['affected_containers'] == [user], gone
    assert not again['changed'] and again['actions'] == [], again
    assert _inspect(podman, name) is None and podman.inspect(user) is None


def test_build_labels_are_on_the_image_and_a_change_rebuilds(play, podman, images):
    name = images.new()
    args = {'name': name, 'build': {'context': images.context(), 'labels': {'virtfleet.fleet': 'shop'}}}
    built, again = play(img(args), img(args))
    data = images.remember(name)
    assert built['changed'] and not again['changed'], (built, again)
    assert data['Labels']['virtfleet.fleet'] == 'shop' and data['Labels'][IMAGE_LABEL], data['Labels']
    args['build']['labels'] = {'virtfleet.fleet': 'web'}
    [relabelled] = play(img(args))
    new = images.remember(name)
    assert relabelled['changed'] and 'built' in relabelled['actions'] and new['Id'] != data['Id'], relabelled
    assert new['Labels']['virtfleet.fleet'] == 'web'


def test_failing_build_reports_the_log_tail_and_changes_nothing(play, podman, images):
    name = images.new()
    # the step prints vft-marker-42: only the build's log has it (the command, in podman's error, has $((6*7)))
    context = images.context(containerfile='FROM %s\nRUN echo vft-marker-$((6*7)) && exit 7\n' % PODMAN_IMAGE)
    [failed] = play(img({'name': name, 'build': {'context': context}}))
    assert_clean_failure(failed, 'build', 'vft-marker-42', name)
    assert not failed['changed'] and _inspect(podman, name) is None


def test_load_from_archive_with_checksum(play, podman, images):
    source, name = images.new(), images.new()
    contexts = [images.context(greeting='one'), images.context(greeting='two')]
    archives = []
    for i, context in enumerate(contexts):
        podman.run('build', '--tag', source, context)
        archive = os.path.join(images.root, 'image%d.tar' % i)
        podman.run('save', '--output', archive, source)
        images.remember(source)
        podman.run('rmi', source)
        with open(archive, 'rb') as handle:
            archives.append((archive, 'sha256:' + hashlib.sha256(handle.read()).hexdigest()))
    (first, first_sum), (second, second_sum) = archives

    # a wrong checksum loads nothing
    bad, loaded, again = play(img({'name': name, 'load_from': first, 'checksum': second_sum}),
                              img({'name': name, 'load_from': first, 'checksum': first_sum}),
                              img({'name': name, 'load_from': first, 'checksum': first_sum}, diff=True))
    assert_clean_failure(bad, 'checksum', second_sum.split(':')[1])
    assert loaded['changed'] and loaded['actions'][0] == 'loaded %s' % first, loaded
    data = images.remember(name)
    assert data['Id'] == loaded['image']['id']
    assert not again['changed'] and _same(_inspect(podman, name)) == _same(data), again

    # another archive: loaded, the name moves to its image; check mode first changes nothing
    checked, reloaded, same = play(img({'name': name, 'load_from': second}, check=True),
                                   img({'name': name, 'load_from': second, 'checksum': second_sum}),
                                   img({'name': name, 'load_from': second}))
    assert checked['changed'] and reloaded['changed'] and not same['changed'], (checked, reloaded, same)
    new = images.remember(name)
    assert new['Id'] != data['Id'] and new['Id'] == reloaded['image']['id']
    assert podman.run('run', '--rm', name, 'cat', '/data/greeting.txt').stdout == 'two\n'


def test_pull_missing_and_always_from_a_registry(play, podman, images, registry):
    name = '%s/vft/busybox:latest' % registry
    images.names.append(name)
    pull = {'name': name, 'validate_certs': False}
    refused, pulled, again, always, checked = play(
        img(dict(pull, validate_certs=True)), img(pull), img(pull), img(dict(pull, pull='always')),
        img(dict(pull, pull='always'), check=True))
    # TLS verification is on by default: the plain-HTTP registry is refused, naming it
    assert_clean_failure(refused, registry)
    assert pulled['changed'] and pulled['actions'] == ['pulled', 'created'], pulled
    data = images.remember(name)
    assert data['Id'] == _inspect(podman, PODMAN_IMAGE)['Id']
    assert not again['changed'] and not always['changed'] and not checked['changed'], (again, always, checked)
    assert _same(_inspect(podman, name)) == _same(data)

    # the registry gets a new image under the same name: pull always notices, pull missing does not
    other = images.new()
    podman.run('build', '--tag', other, images.context(greeting='newer'))
    podman.run('tag', other, name)
    podman.run('push', '--tls-verify=false', name)
    podman.run('tag', data['Id'], name)  # the old image under the name again, locally
    missing, newer, same = play(img(pull), img(dict(pull, pull='always'), diff=True),
                                img(dict(pull, pull='always')))
    assert not missing['changed'], missing
    assert newer['changed'] and newer['image']['id'] == _inspect(podman, other)['Id'], newer
    assert newer['diff']['before']['spec']['id'] == data['Id']
    assert not same['changed'], same


def test_unreachable_registry_is_named_and_nothing_removed(play, podman, images):
    registry = '127.0.0.1:%d' % free_port()
    name = '%s/vft/none:1' % registry
    images.names.append(name)
    [missing] = play(img({'name': name, 'validate_certs': False, 'timeout': 120}))
    assert_clean_failure(missing, registry, 'reachable')
    podman.run('tag', PODMAN_IMAGE, name)
    before = _same(_inspect(podman, name))
    [always] = play(img({'name': name, 'pull': 'always', 'validate_certs': False, 'timeout': 120}))
    assert_clean_failure(always, registry)
    assert not always['changed'] and _same(_inspect(podman, name)) == before


def test_absent_refuses_an_image_in_use_unless_force(play, podman, images, containers):
    name = images.new()
    user = containers.new('imguser')
    built, started = play(img({'name': name, 'build': {'context': images.context()}}),
                          ct({'name': user, 'image': name, 'command': ['sleep', '3600'], 'state': 'started',
                              'stop_timeout': 0}))
    assert built['changed'] and not started.get('failed'), (built, started)
    data = images.remember(name)
    refused, refused_check, forced_check = play(img({'name': name, 'state': 'absent'}),
                                                img({'name': name, 'state': 'absent'}, check=True),
                                                img({'name': name, 'state': 'absent', 'force': True}, check=True))
    for result in (refused, refused_check):
        assert_clean_failure(result, 'force', user)
        assert not result['changed']
    assert forced_check['changed'] and forced_check['affected_containers'] == [user], forced_check
    assert _same(_inspect(podman, name)) == _same(data) and podman.inspect(user)['State']['Running']

    [forced] = play(img({'name': name, 'state': 'absent', 'force': True}))
    assert forced['changed'] and forced['affected_containers'] == [user], forced
    assert _inspect(podman, name) is None and podman.inspect(user) is None


def test_info_lists_images_and_bad_input_is_refused(play, images):
    name = images.new()
    context = images.context()
    built, listed, by_label, both, stray, bad_name = play(
        img({'name': name, 'build': {'context': context}}),
        info({'kind': 'image', 'name': name}),
        info({'kind': 'image', 'labels': {IMAGE_LABEL: 'no-such-hash'}}),
        img({'name': name, 'build': {'context': context}, 'load_from': '/nonexistent.tar'}),
        img({'name': name, 'checksum': 'sha256:' + '0' * 64}),
        img({'name': 'Localhost/UPPER case'}))
    assert built['changed'], built
    assert [i['name'] for i in listed['images']] == [name] and listed['images'][0]['id'] == built['image']['id']
    assert listed['images'][0] == built['image']
    assert by_label['images'] == []
    assert_clean_failure(both, 'load_from', 'build')
    assert_clean_failure(stray, 'checksum', 'load_from')
    assert_clean_failure(bad_name, 'name', 'repository')

"""The Podman image spec: names, extra tags, build options, the context hash, checksums and the image ID an
archive holds."""
from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _podman_image_spec as ispec
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

HEX = 'ab' * 32


@pytest.mark.parametrize('given,expected', [
    ('localhost/web', 'localhost/web:latest'),
    ('localhost/web:1.4', 'localhost/web:1.4'),
    ('shop/web', 'shop/web:latest'),
    ('registry.example.com:5000/shop/web:v2', 'registry.example.com:5000/shop/web:v2'),
    ('127.0.0.1:5000/vft/busybox', '127.0.0.1:5000/vft/busybox:latest'),
    ('busybox', 'busybox:latest'),
    ('a__b-c.d/e', 'a__b-c.d/e:latest'),
])
def test_names_get_their_tag(given, expected):
    assert ispec.parse_ref(given) == expected


@pytest.mark.parametrize('bad', ['', 'Localhost/UPPER', 'web:', 'web@sha256:' + HEX, 'a b', '-x', 'web:-1',
                                 'localhost/' + 'x' * 300, None, 5, ['web'], 'web/', 'a//b', 'x:' + 'y' * 129])
def test_bad_names_name_the_option(bad):
    with pytest.raises(SpecError) as err:
        ispec.parse_ref(bad)
    assert err.value.param == 'name' and 'repository' in err.value.msg


def test_registry_of():
    assert ispec.registry_of('localhost/web:1') == 'localhost'
    assert ispec.registry_of('127.0.0.1:5000/a/b:1') == '127.0.0.1:5000'
    assert ispec.registry_of('shop/web:1') is None and ispec.registry_of('web:1') is None


def test_tags_bare_or_full_sorted_without_the_name():
    name = 'localhost/web:1.4'
    assert ispec.parse_tags(['stable', 'localhost/web:1.4', 'localhost/other', '1.4', 'stable'], name) == [
        'localhost/other:latest', 'localhost/web:stable']
    with pytest.raises(SpecError) as err:
        ispec.parse_tags(['ok', 'Bad Tag'], name)
    assert err.value.param == 'tag[1]'
    with pytest.raises(SpecError):
        ispec.parse_tags('stable', name)


def _context(tmp_path, files=None):
    root = tmp_path / 'ctx'
    root.mkdir(exist_ok=True)
    for rel, text in (files or {'Containerfile': 'FROM scratch\n', 'a.txt': 'a', 'sub/b.txt': 'b'}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


def test_build_is_normalized(tmp_path):
    context = _context(tmp_path)
    build = ispec.parse_build({'context': context + '/', 'args': {'A': 1, 'B': None}, 'target': 'final'})
    assert build == {'context': context, 'file': os.path.join(context, 'Containerfile'), 'args': {'A': '1', 'B': ''},
                     'target': 'final', 'labels': {}}
    assert ispec.parse_build({'context': context, 'file': 'a.txt'})['file'] == os.path.join(context, 'a.txt')


@pytest.mark.parametrize('value,param,text', [
    ({'context': 'relative'}, 'build.context', 'absolute'),
    ({'context': '/nonexistent-vft-ctx'}, 'build.context', 'not a directory'),
    ({'context': '{ctx}', 'file': 'missing'}, 'build.file', 'not a file'),
    ({'context': '{ctx}', 'args': {'1x': 'y'}}, 'build.args', 'not a build argument name'),
    ({'context': '{ctx}', 'args': {'A': True}}, 'build.args.A', 'quote'),
    ({'context': '{ctx}', 'args': ['A=1']}, 'build.args', 'dict'),
    ({'context': '{ctx}', 'target': 'a b'}, 'build.target', 'stage'),
    ({'context': '{ctx}', 'bogus': 1}, 'build', 'unknown keys bogus'),
    ('ctx', 'build', 'dict'),
])
def test_bad_build_names_the_option(tmp_path, value, param, text):
    context = _context(tmp_path)
    if isinstance(value, dict):
        value = dict((k, v.format(ctx=context) if isinstance(v, str) else v) for k, v in value.items())
    with pytest.raises(SpecError) as err:
        ispec.parse_build(value)
    assert err.value.param == param and text in err.value.msg


def test_build_labels_count_in_the_hash_and_may_not_take_its_key(tmp_path):
    context = _context(tmp_path)
    build = ispec.parse_build({'context': context})
    labelled = ispec.parse_build({'context': context, 'labels': {'virtfleet.fleet': 'shop', 'n': 1}})
    assert labelled['labels'] == {'virtfleet.fleet': 'shop', 'n': '1'}
    assert ispec.context_hash(labelled) != ispec.context_hash(build)
    assert ispec.context_hash(dict(labelled, labels={'virtfleet.fleet': 'web', 'n': '1'})) != ispec.context_hash(
        labelled)
    for labels, param in (({ispec.LABEL: 'x'}, 'build.labels'), ({'a': True}, 'build.labels.a'),
                          ({'a=b': 'x'}, 'build.labels')):
        with pytest.raises(SpecError) as err:
            ispec.parse_build({'context': context, 'labels': labels})
        assert err.value.param == param, err.value.msg


def test_a_context_without_containerfile_is_refused(tmp_path):
    context = _context(tmp_path, {'a.txt': 'a'})
    with pytest.raises(SpecError) as err:
        ispec.parse_build({'context': context})
    assert err.value.param == 'build.file' and 'no Containerfile' in err.value.msg


def test_context_hash_follows_content_not_times(tmp_path):
    context = _context(tmp_path)
    build = ispec.parse_build({'context': context})
    first = ispec.context_hash(build)
    os.utime(os.path.join(context, 'a.txt'), (1, 1))
    assert ispec.context_hash(build) == first
    changes = [
        lambda: (tmp_path / 'ctx' / 'sub' / 'b.txt').write_text('B'),       # a file's content
        lambda: (tmp_path / 'ctx' / 'sub' / 'c.txt').write_text(''),         # a new empty file
        lambda: os.chmod(os.path.join(context, 'a.txt'), 0o755),             # the executable bit
        (tmp_path / 'ctx' / 'empty').mkdir,                                # a new directory
        lambda: os.symlink('a.txt', os.path.join(context, 'link')),          # a symlink
    ]
    seen = {first}
    for change in changes:
        change()
        digest = ispec.context_hash(build)
        assert digest not in seen
        seen.add(digest)
    assert ispec.context_hash(dict(build, args={'A': '1'})) not in seen
    assert ispec.context_hash(dict(build, target='x')) not in seen
    # a Containerfile outside the context counts too
    outside = tmp_path / 'Containerfile.other'
    outside.write_text('FROM scratch\n')
    other = dict(build, file=str(outside))
    before = ispec.context_hash(other)
    outside.write_text('FROM scratch\nLABEL x=y\n')
    assert ispec.context_hash(other) != before


@pytest.mark.parametrize('given', ['sha256:' + HEX, HEX, 'SHA256:' + HEX.upper(), ' ' + HEX])
def test_checksum_forms(given):
    assert ispec.parse_checksum(given) == HEX


@pytest.mark.parametrize('bad', ['md5:' + '0' * 32, HEX[:-1], 'sha256:', 5, None, 'sha512:' + '0' * 128])
def test_bad_checksum(bad):
    with pytest.raises(SpecError) as err:
        ispec.parse_checksum(bad)
    assert err.value.param == 'checksum'


def _tar(path, members, mode='w'):
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            raw = data if isinstance(data, bytes) else json.dumps(data).encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return str(path)


def test_archive_image_id_docker_and_oci(tmp_path):
    docker = _tar(tmp_path / 'd.tar.gz', {'manifest.json': [{'Config': HEX + '.json', 'RepoTags': ['x:1']}]}, 'w:gz')
    assert ispec.archive_image_id(docker) == HEX
    manifest = 'cd' * 32
    oci = _tar(tmp_path / 'o.tar', {'index.json': {'manifests': [{'digest': 'sha256:' + manifest}]},
                                    'blobs/sha256/' + manifest: {'config': {'digest': 'sha256:' + HEX}}})
    assert ispec.archive_image_id(oci) == HEX


@pytest.mark.parametrize('members,text', [
    ({'other.txt': b'x'}, 'neither manifest.json'),
    ({'manifest.json': b'not json'}, 'cannot read'),
    ({'manifest.json': [{'Config': HEX + '.json'}, {'Config': 'ef' * 32 + '.json'}]}, 'holds 2 images'),
    ({'manifest.json': []}, 'holds 0 images'),
])
def test_bad_archives_name_load_from(tmp_path, members, text):
    with pytest.raises(SpecError) as err:
        ispec.archive_image_id(_tar(tmp_path / 'a.tar', members))
    assert err.value.param == 'load_from' and text in err.value.msg
    (tmp_path / 'plain').write_text('not a tar')
    with pytest.raises(SpecError):
        ispec.archive_image_id(str(tmp_path / 'plain'))


def test_from_inspect_reads_the_label_and_the_other_names():
    data = {'Id': HEX, 'Created': 'now', 'RepoTags': ['localhost/web:1', 'localhost/web:stable'],
            'Labels': {ispec.LABEL: 'h', 'x': 'y'}}
    actual = ispec.from_inspect(data, 'localhost/web:1')
    assert actual['spec'] == {'id': HEX, 'context_sha256': 'h', 'tags': ['localhost/web:stable']}
    assert ispec.changed_fields(actual['spec'], dict(actual['spec'], id=None)) == ['id']

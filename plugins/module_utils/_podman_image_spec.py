# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The spec of a Podman image (``container_image``): names, sources, the build context's hash and the image ID
an archive holds.

An image is managed under one name (``repository:tag``, ``:latest`` when no tag is given) and comes from one
source: a local build (``build``), an archive (``load_from``) or a registry (``pull``).

The normalized spec, the same whether read from ``podman image inspect`` or asked for:
``id`` (the image ID; ``None`` while it is still to be built or pulled), ``context_sha256`` (the label
``io.virtfleet.context-sha256`` that a build records: the hash of the build context's files, the Containerfile,
the build arguments, the target and the labels) and ``tags`` (the other names of the image, sorted).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tarfile

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._podman_objects_spec import text_map

LABEL = 'io.virtfleet.context-sha256'
FIELDS = ('id', 'context_sha256', 'tags')
PULL_POLICIES = ('always', 'missing', 'never')
# the reference grammar of the distribution project (docker/distribution reference.go), no digest
_COMPONENT = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
_HOST = r'(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?)'
_REF_RE = re.compile(r'^(?:(%s)/)?(%s(?:/%s)*)(?::([\w][\w.-]{0,127}))?\Z' % (_HOST, _COMPONENT, _COMPONENT))
_TAG_RE = re.compile(r'^[\w][\w.-]{0,127}\Z')
_HEX = re.compile(r'^[0-9a-f]{64}\Z')


def parse_ref(value, param='name'):
    """``value`` as a full reference ``[registry/]repository:tag`` (``:latest`` added when no tag is given)."""
    text = value if isinstance(value, str) else None
    match = _REF_RE.match(text) if text else None
    if not match or len(text) > 255:
        raise SpecError(param, '%r is not an image name: use [registry/]repository[:tag] with a lowercase repository '
                               'such as localhost/shop-web:1.4 or registry.example.com:5000/shop/web (no digest, '
                               'at most 255 characters)' % (value,))
    host, repo, tag = match.groups()
    if host is not None and not ('.' in host or ':' in host or host == 'localhost'):
        repo, host = '%s/%s' % (host, repo), None  # "shop/web": a path, not a registry
    return '%s%s:%s' % (host + '/' if host else '', repo, tag or 'latest')


def registry_of(ref):
    """The registry host of a full reference (``None`` for a short name that Podman resolves itself)."""
    first = ref.split('/')[0]
    return first if '/' in ref and ('.' in first or ':' in first or first == 'localhost') else None


def _repository(ref):
    return ref.rsplit(':', 1)[0]


def parse_tags(items, name):
    """The extra names: a bare tag (``v1.4``) is a tag of ``name``'s repository, anything else a full name."""
    if not isinstance(items, list):
        raise SpecError('tag', 'must be a list of tags (v1.4) or image names (localhost/shop-web:stable)')
    found = set()
    for i, item in enumerate(items):
        if isinstance(item, str) and _TAG_RE.match(item):
            found.add('%s:%s' % (_repository(name), item))
        else:
            found.add(parse_ref(item, 'tag[%d]' % i))
    found.discard(name)
    return sorted(found)


def _path(value, param, kind):
    if not isinstance(value, str) or not value.startswith('/') or '\0' in value:
        raise SpecError(param, '%r is not an absolute path: give the %s as an absolute path on the managed host'
                        % (value, kind))
    return os.path.normpath(value)


def parse_build(value):
    """``build`` as ``{context, file, args, target, labels}``: absolute paths, the Containerfile found, args and
    labels as strings."""
    if not isinstance(value, dict):
        raise SpecError('build', 'must be a dict {context, file, args, target, labels}')
    unknown = sorted(set(value) - {'context', 'file', 'args', 'target', 'labels'})
    if unknown:
        raise SpecError('build', 'unknown keys %s: use context, file, args, target and labels' % ', '.join(unknown))
    context = _path(value.get('context'), 'build.context', 'build context directory')
    if not os.path.isdir(context):
        raise SpecError('build.context', '%s is not a directory: create it or fix the path' % context)
    if value.get('file') is not None:
        path = value['file']
        path = _path(path if str(path).startswith('/') else os.path.join(context, str(path)), 'build.file',
                     'Containerfile (or a path relative to the context)')
    else:
        found = [os.path.join(context, n) for n in ('Containerfile', 'Dockerfile')
                 if os.path.isfile(os.path.join(context, n))]
        if not found:
            raise SpecError('build.file', 'the context %s has no Containerfile or Dockerfile: add one or set '
                                          'build.file' % context)
        path = found[0]
    if not os.path.isfile(path):
        raise SpecError('build.file', '%s is not a file: fix the path' % path)
    args = value.get('args') or {}
    if not isinstance(args, dict):
        raise SpecError('build.args', 'must be a dict of build arguments (NAME: value)')
    clean = {}
    for key, arg in args.items():
        if not re.match(r'^[A-Za-z_][A-Za-z0-9_]*\Z', str(key)):
            raise SpecError('build.args', '%r is not a build argument name (letters, digits and _)' % (key,))
        if isinstance(arg, (dict, list, bool)) or '\0' in str(arg if arg is not None else ''):
            raise SpecError('build.args.%s' % key, 'must be a string (quote booleans: "true")')
        clean[str(key)] = '' if arg is None else str(arg)
    target = value.get('target')
    if target is not None and (not isinstance(target, str) or not _TAG_RE.match(target)):
        raise SpecError('build.target', '%r is not a build stage name' % (target,))
    labels = text_map(value.get('labels') or {}, 'build.labels')
    if LABEL in labels:
        raise SpecError('build.labels', '%s is the label this module records the build\'s hash in: choose another '
                                        'key' % LABEL)
    return {'context': context, 'file': path, 'args': clean, 'target': target, 'labels': labels}


def context_hash(build):
    """sha256 of the context's files (relative path, type, executable bit, content or link target), the
    Containerfile, the build arguments, the target and the labels. Unreadable files are refused (naming them)."""
    digest = hashlib.sha256()
    root = build['context']
    for base, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names) + [d + '/' for d in dirs if os.path.islink(os.path.join(base, d))]:
            path = os.path.join(base, name.rstrip('/'))
            rel = os.path.relpath(path, root)
            info = os.lstat(path)
            digest.update(b'\0P' + rel.encode('utf-8', 'surrogateescape'))
            if stat.S_ISLNK(info.st_mode):
                digest.update(b'\0L' + os.readlink(path).encode('utf-8', 'surrogateescape'))
            elif stat.S_ISREG(info.st_mode):
                digest.update(b'\0F%d' % bool(info.st_mode & 0o111))
                _file_into(digest, path)
        for name in dirs:
            digest.update(b'\0D' + os.path.relpath(os.path.join(base, name), root).encode('utf-8', 'surrogateescape'))
    digest.update(b'\0C')
    _file_into(digest, build['file'])
    digest.update(b'\0A' + json.dumps(build['args'], sort_keys=True).encode() + b'\0T' + (build['target'] or '').encode())
    if build.get('labels'):
        # only when given: the hash of a build without labels stays what it was before labels existed
        digest.update(b'\0B' + json.dumps(build['labels'], sort_keys=True).encode())
    return digest.hexdigest()


def _file_into(digest, path):
    try:
        with open(path, 'rb') as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b''):
                digest.update(chunk)
    except OSError as exc:
        raise SpecError('build.context', 'cannot read %s (%s): the build context must be readable' % (path, exc.strerror))


def parse_checksum(value):
    text = str(value).strip().lower() if isinstance(value, str) else ''
    hexpart = text[len('sha256:'):] if text.startswith('sha256:') else text
    if not _HEX.match(hexpart):
        raise SpecError('checksum', '%r is not a sha256 checksum: give sha256:<64 hex digits> (sha256sum ARCHIVE)'
                        % (value,))
    return hexpart


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def archive_image_id(path):
    """The image ID (config digest) of the one image in a docker-archive or oci-archive tar (compressed or not)."""
    try:
        with tarfile.open(path, 'r:*') as tar:
            names = set(tar.getnames())
            if 'manifest.json' in names:  # docker-archive (podman save's default)
                entries = json.load(tar.extractfile('manifest.json'))
                configs = [os.path.basename(e['Config']).replace('.json', '') for e in entries]
            elif 'index.json' in names:  # oci-archive
                index = json.load(tar.extractfile('index.json'))
                configs = []
                for entry in index.get('manifests') or []:
                    blob = 'blobs/%s' % entry['digest'].replace(':', '/')
                    configs.append(json.load(tar.extractfile(blob))['config']['digest'].split(':')[-1])
            else:
                raise ValueError('neither manifest.json (docker-archive) nor index.json (oci-archive) in it')
    except (OSError, ValueError, KeyError, TypeError, AttributeError, tarfile.TarError) as exc:
        raise SpecError('load_from', 'cannot read the image ID from %s (%s): give a docker-archive or oci-archive '
                                     'tar (podman save), plain or gzip/bzip2/xz compressed' % (path, exc))
    if len(set(configs)) != 1 or not _HEX.match(configs[0]):
        raise SpecError('load_from', '%s holds %d images: give an archive of one image' % (path, len(set(configs))))
    return configs[0]


def from_inspect(data, name):
    """The normalized view of one ``podman image inspect`` entry, read under ``name``."""
    labels = (data.get('Config') or {}).get('Labels') or data.get('Labels') or {}
    tags = sorted(set(data.get('RepoTags') or []) - {name})
    return {'name': name, 'id': data.get('Id'), 'created': data.get('Created'), 'digest': data.get('Digest'),
            'size': data.get('Size'), 'labels': dict(labels), 'state': 'present',
            'spec': {'id': data.get('Id'), 'context_sha256': labels.get(LABEL), 'tags': tags}}


def changed_fields(before, after):
    return [key for key in FIELDS if (before or {}).get(key) != (after or {}).get(key)]

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Podman image driver (``container_image``): an image under one name, from a build, an archive or a registry.

The image is read from ``podman image inspect`` and normalized by ``_podman_image_spec``. What decides whether
the image is made again:

build
    the hash of the context (files, Containerfile, args, target), recorded by the build as the image label
    ``io.virtfleet.context-sha256``: a different hash rebuilds, the same hash changes nothing;
archive (``load_from``)
    the image ID the archive holds (its config digest, read from the tar without loading it): loaded only when the
    image under the name has another ID; ``checksum``, when given, is checked first (a mismatch loads nothing);
registry (``pull``)
    ``missing`` pulls only when there is no image under the name, ``never`` never pulls, ``always`` pulls on every
    run (outside check mode, in ``rescan``, before the image is read) and reports a change only when the name then
    points to another image ID.

A replaced image's previous ID is removed when nothing else uses it (no other name, no container); containers
still made from it are reported (``affected_containers``): the ``container`` module recreates them on its next
run, as it compares the image ID a container runs with the one its image name points to. ``absent`` removes the
name (and the ``tag`` names of the same image); the image itself goes when no other name is left, which is
refused while containers use it unless ``force`` (``podman rmi --force`` removes them with it).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile

from ansible_collections.virtfleet.virt.plugins.module_utils import _podman_image_spec as ispec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients.podman import entry_names
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import Driver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import InUse, Plan, Result


class PodmanImageDriver(Driver):
    kind = 'image'
    result_fields = {'affected_containers': []}
    in_use_key = 'affected_containers'

    def __init__(self, client, name=None, source=None, tags=(), registry=None, timeout=600):
        """``source``: ``{'build': parsed build}``, ``{'load_from': path, 'checksum': hex or None}`` or
        ``{'pull': policy}``; ``registry``: ``{'validate_certs', 'username', 'password'}``."""
        super().__init__(client)
        self.name = name
        self.source = source or {}
        self.tags = list(tags)
        self.registry = registry or {'validate_certs': True}
        self.timeout = timeout
        self.pulled = None  # rescan's pull: (the image before it, or None)
        self._authdir = None

    # -- reading ----------------------------------------------------------------------
    def read(self, name):
        try:
            data = self.client.inspect_image(name)
        except NotFound:
            return None
        # a name podman resolved to something else (an ID prefix, another registry's image) is not this image
        if not any(t == name or t.endswith('/' + name) for t in data.get('RepoTags') or []):
            return None
        return ispec.from_inspect(data, name)

    def list(self):
        entries = self.client.inspect_images([e['Id'] for e in self.client.list_images() if e.get('Names')])
        return [ispec.from_inspect(d, sorted(d['RepoTags'])[0]) for d in entries if d.get('RepoTags')]

    def describe(self, actual):
        found = dict(actual, spec=dict(actual['spec']))
        found['labels'] = dict(actual['labels'])
        return found

    def users(self, image_id, names=None):
        """The containers made from image ``image_id`` (and, given ``names``, created under one of them)."""
        return entry_names(e for e in self.client.containers_using_image(image_id) if e.get('ImageID') == image_id
                           and (names is None or e.get('Image') in names))

    def read_id(self, image_id):
        """The names of image ``image_id``; None when it is gone."""
        try:
            return self.client.inspect_image(image_id).get('RepoTags') or []
        except NotFound:
            return None

    def rescan(self, name):
        """``pull: always``: pull before the image is read (never in check mode); the image before it is kept."""
        if self.source.get('pull') == 'always':
            before = self.read(name)
            self._pull(name)
            self.pulled = (before,)

    def align(self, partial, actual):
        return self.pulled[0] if self.pulled else actual

    # -- desired spec -------------------------------------------------------------------
    def desired(self, partial, actual):
        have = actual['spec'] if actual else {'id': None, 'context_sha256': None, 'tags': []}
        if 'build' in self.source:
            digest = ispec.context_hash(self.source['build'])
            image_id = have['id'] if have['context_sha256'] == digest else None
        elif 'load_from' in self.source:
            image_id, digest = self._archive_id(), None
        else:
            image_id, digest = self._registry_id(actual), None
        if image_id is not None and image_id == have['id']:
            digest = have['context_sha256']
            tags = sorted(set(have['tags']) | set(self.tags))
        else:
            tags = sorted(self.tags)
        return {'id': image_id, 'context_sha256': digest, 'tags': tags}

    def _archive_id(self):
        path = self.source['load_from']
        if not path.startswith('/'):
            raise SpecError('load_from', '%r is not an absolute path: give the archive\'s absolute path on the managed '
                                         'host' % path)
        if not os.path.isfile(path):
            raise SpecError('load_from', '%s is not a file: give the path of an image archive (podman save) on the '
                                         'managed host' % path)
        if self.source.get('checksum'):
            found = ispec.file_sha256(path)
            if found != self.source['checksum']:
                raise SpecError('checksum', 'the archive %s has sha256 %s, not %s: nothing was loaded; fix the '
                                            'checksum or the archive' % (path, found, self.source['checksum']))
        return ispec.archive_image_id(path)

    def _registry_id(self, actual):
        policy = self.source.get('pull', 'missing')
        if policy == 'never' and actual is None:
            raise SpecError('pull', 'there is no image %s in local storage and pull is never: build or load it first, '
                                    'or set pull: missing' % self.name)
        if self.pulled is not None:
            return self.read(self.name)['id']
        if policy == 'always' and actual is not None:
            self.found.warnings.append('check mode does not contact the registry: whether pull: always finds a '
                                       'newer image for %s is known only in a real run' % self.name)
        return actual['id'] if actual else None

    # -- writing ----------------------------------------------------------------------------
    def create(self, name, spec):
        actions = self._produce(name, spec)
        for ref in spec['tags']:
            self.client.tag_image(name, ref)
        return Result(actions=actions)

    def _produce(self, name, spec):
        if 'build' in self.source:
            build = self.source['build']
            args = ['build', '--file', build['file'], '--label', '%s=%s' % (ispec.LABEL, spec['context_sha256']),
                    '--tag', name] + self._registry_args(name)
            for key, value in sorted(build['args'].items()):
                args += ['--build-arg', '%s=%s' % (key, value)]
            if build['target']:
                args += ['--target', build['target']]
            for key, value in sorted(build['labels'].items()):
                args += ['--label', '%s=%s' % (key, value)]
            try:
                self.client.run_logged(args + [build['context']], 'building image %s' % name, self.timeout)
            except BackendError as exc:
                raise SpecError('build', '%s. Nothing was changed: fix the Containerfile or the context' % exc.msg)
            return ['built']
        if 'load_from' in self.source:
            self.client.run_logged(['load', '--quiet', '--input', self.source['load_from']],
                                   'loading image archive %s' % self.source['load_from'], self.timeout)
            self.client.tag_image(spec['id'], name)
            return ['loaded %s' % self.source['load_from']]
        if self.pulled is None:
            self._pull(name)
        return ['pulled']

    def _pull(self, name):
        registry = ispec.registry_of(name)
        try:
            self.client.run_logged(['pull', '--quiet'] + self._registry_args(name) + [name],
                                   'pulling image %s' % name, self.timeout, tail=3)
        except BackendError as exc:
            raise BackendError('%s. Nothing was changed: check that the registry %s is reachable from this host and '
                               'has %s (and validate_certs, username, password)'
                               % (exc.msg, registry or '(the unqualified-search registries of registries.conf)', name))

    def _registry_args(self, name):
        args = [] if self.registry.get('validate_certs', True) else ['--tls-verify=false']
        if self.registry.get('username'):
            host = ispec.registry_of(name) or 'docker.io'
            if self._authdir is None:
                self._authdir = tempfile.mkdtemp(prefix='vf-auth-')
            path = os.path.join(self._authdir, 'auth.json')
            token = base64.b64encode(('%s:%s' % (self.registry['username'], self.registry.get('password') or ''))
                                     .encode()).decode()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, 'w') as handle:
                json.dump({'auths': {host: {'auth': token}}}, handle)
            args += ['--authfile', path]
        return args

    def close(self):
        if self._authdir:
            shutil.rmtree(self._authdir, ignore_errors=True)

    def plan_update(self, actual, spec):
        changes = ispec.changed_fields(actual['spec'], spec)
        replace = 'id' in changes or 'context_sha256' in changes
        extra = {'affected_containers': self.users(actual['id'], [actual['name']] + spec['tags'])} if replace else {}
        return Plan(changes, details={'spec': spec, 'replace': replace}, extra=extra)

    def apply_update(self, actual, plan):
        spec, name = plan.details['spec'], actual['name']
        actions = self._produce(name, spec) if plan.details['replace'] else []
        new = self.read(name)
        for ref in spec['tags']:
            if ref not in new['spec']['tags']:
                self.client.tag_image(name, ref)
        warnings = []
        if plan.details['replace'] and new['id'] != actual['id']:
            users = plan.extra.get('affected_containers') or []
            if users:
                warnings.append('the containers %s still run the previous image %s of %s: a virtfleet.virt.container '
                                'task naming %s recreates them (recreate_reasons: image_id)'
                                % (', '.join(users), actual['id'][:12], name, name))
            elif self.read_id(actual['id']) == []:  # no name left: nothing but this module made it
                try:
                    self.client.remove_image(actual['id'])
                    actions.append('removed the previous image %s' % actual['id'][:12])
                except (BackendError, NotFound):
                    pass  # a container of another name, or a child image, still holds it
        return Result(actions=actions, warnings=warnings)

    def _names_to_remove(self, actual):
        return sorted({actual['name']} | (set(self.tags) & set(actual['spec']['tags'])))

    def in_use(self, actual):
        """The containers made from the image block its removal (``force`` removes them with it) - only when no
        other name keeps the image, which then merely loses the names this task removes."""
        if set(actual['spec']['tags']) - set(self._names_to_remove(actual)):
            return None
        users = self.users(actual['id'])
        if not users:
            return None
        return InUse(users, blocking=users, refusal='image %s (%s) is used by the containers %s: remove them first, '
                                                    'or set force: true to remove the image and, with it, these '
                                                    'containers (podman rmi --force)'
                     % (actual['name'], actual['id'][:12], ', '.join(users)))

    def delete(self, actual, options):
        names = self._names_to_remove(actual)
        if set(actual['spec']['tags']) - set(names):
            for ref in names:
                self.client.untag_image(actual['id'], ref)
            return Result(actions=['untagged %s' % ref for ref in names])
        users = self.users(actual['id'])  # the reconcile loop allowed it (force): Podman removes them with it
        self.client.remove_image(actual['id'], force=bool(users))
        return Result(actions=['removed container %s' % c for c in users], extra={'affected_containers': users})

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_image
short_description: Manage Podman images built locally, loaded from an archive or pulled from a registry
version_added: 0.3.0
description:
  - Makes sure that an image is in Podman's local storage under O(name), for containers to run
    (O(virtfleet.virt.container#module:image) of virtfleet.virt.container), or that the name is gone.
  - The image comes from one source - a local build (O(build)), an archive (O(load_from)) or a registry
    (O(pull), the default source).
  - A build is made again only when its context changed - the hash of the context's files, the Containerfile,
    O(build.args), O(build.target) and O(build.labels) is recorded as the image label C(io.virtfleet.context-sha256) and compared.
    An archive is loaded only when the image under O(name) has another ID than the one the archive holds.
  - When the image under O(name) is replaced, its previous image is removed if nothing else uses it. Containers
    still made from it are named in RV(affected_containers); virtfleet.virt.container recreates them on its next
    run (it compares the image ID a container runs with the one its image name points to).
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.podman
attributes:
  check_mode:
    support: full
    details: Predicts C(changed) and refuses what the run would refuse; changes nothing. Check mode does not contact
      the registry, so with O(pull=always) it cannot know whether the registry has a newer image (it warns).
  diff_mode:
    support: full
    details: Before and after of the normalized spec (image ID, context hash, other names).
  platform:
    platforms: posix
options:
  name:
    description:
      - The image name, V([registry/]repository[:tag]); V(:latest) when no tag is given. A registry is a first
        component with a dot or a port, or V(localhost); images built or loaded here are best named
        V(localhost/NAME:TAG).
    type: str
    required: true
  state:
    description:
      - V(present) - an image is in local storage under O(name) (and O(tag)).
      - V(absent) - O(name) and the O(tag) names of the same image are removed; the image itself only when no
        other name is left, which is refused while containers use it unless O(force).
    type: str
    choices: [present, absent]
    default: present
  build:
    description:
      - Build the image from a local context (C(podman build)). Rebuilt only when the context's content, the
        Containerfile, O(build.args) or O(build.target) change (file times do not count; a
        C(.containerignore) is not read - every file of the context counts).
    type: dict
    suboptions:
      context:
        description: The build context, an absolute directory path on the managed host.
        type: path
        required: true
      file:
        description: The Containerfile, absolute or relative to O(build.context). Left out, C(Containerfile) or
          C(Dockerfile) of the context.
        type: path
      args:
        description: Build arguments (C(--build-arg NAME=value)); values are strings.
        type: dict
      target:
        description: The stage of a multi-stage Containerfile to build.
        type: str
      labels:
        description:
          - Labels the built image carries (C(--label NAME=value)), beside those of the Containerfile; values are
            strings. A change rebuilds the image (the labels count in the recorded hash).
          - With O(state=absent) they are not read. Images loaded or pulled keep the labels they come with.
        type: dict
  load_from:
    description:
      - Load the image from this archive (C(podman save), docker-archive or oci-archive, plain or compressed with
        gzip, bzip2 or xz) and name it O(name). Loaded only when the image ID the archive holds differs from the
        image under O(name). The archive must hold one image. Names saved in the archive are added by C(podman load).
    type: path
  checksum:
    description:
      - With O(load_from) - the archive's sha256 (V(sha256:HEX) or V(HEX)); checked before anything is loaded, a
        mismatch is refused.
    type: str
  pull:
    description:
      - Get the image from a registry (the default source when neither O(build) nor O(load_from) is given).
      - V(missing) - pull when there is no image under O(name); V(always) - pull on every run, a change only when
        O(name) then points to another image ID; V(never) - the image must be there already.
    type: str
    choices: [always, missing, never]
  tag:
    description:
      - Other names of the image, added (and kept) - a bare tag (V(v1.4)) is a tag of O(name)'s repository,
        anything else a full image name. Names the image has besides these are kept.
    type: list
    elements: str
  force:
    description:
      - With O(state=absent) - remove the image although containers use it; Podman removes them with it
        (RV(affected_containers) names them).
    type: bool
    default: false
  validate_certs:
    description: Verify the registry's TLS certificate (for a pull, and a build's base images). Set V(false) only
      for a registry you trust on a network you trust.
    type: bool
    default: true
  username:
    description: Registry user name (with O(password)); passed to Podman in a private auth file, never on the
      command line.
    type: str
  password:
    description: Registry password or token.
    type: str
  timeout:
    description: Seconds a build, load or pull may take before the run fails.
    type: int
    default: 600
seealso:
  - module: virtfleet.virt.container
  - module: virtfleet.virt.container_info
'''

EXAMPLES = r'''
- name: Build the shop's web image from its context
  virtfleet.virt.container_image:
    name: localhost/shop-web:1.4
    build:
      context: /srv/shop/web
      args:
        VERSION: "1.4"
    tag: [stable]

- name: Load an image from an archive
  virtfleet.virt.container_image:
    name: localhost/shop-db:15
    load_from: /srv/images/shop-db-15.tar
    checksum: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08

- name: Pull from the local registry every run
  virtfleet.virt.container_image:
    name: registry.example.com:5000/shop/proxy:2
    pull: always
    username: deploy
    password: "{{ registry_token }}"

- name: Remove an image, with the containers that use it
  virtfleet.virt.container_image:
    name: localhost/shop-web:1.3
    state: absent
    force: true
'''

RETURN = r'''
image:
  description: The image after the run (in check mode, as predicted). Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: The full name (with its tag).
      type: str
      sample: localhost/shop-web:1.4
    id:
      description: The image ID.
      type: str
      sample: 3bd7f2c1a0e5...
    created:
      description: When the image was made.
      type: str
      sample: '2026-12-05T21:40:02.123456789Z'
    digest:
      description: The manifest digest.
      type: str
    size:
      description: Size in bytes.
      type: int
    labels:
      description: The image's labels.
      type: dict
    state:
      description: V(present).
      type: str
    spec:
      description: The normalized spec - C(id), C(context_sha256) (the build label), C(tags) (the image's other
        names).
      type: dict
      sample: {id: 3bd7f2c1a0e5..., context_sha256: 5e2b..., tags: ['localhost/shop-web:stable']}
affected_containers:
  description: Containers made from the image that was replaced (they still run it), or with O(state=absent) and
    O(force) the containers removed with it.
  returned: always
  type: list
  elements: str
  sample: [web1]
actions:
  description: What the run did (or, in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: [built, created]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _podman_image_spec as ispec, _reconcile
from ansible_collections.virtfleet.virt.plugins.module_utils._clients import podman
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_image import PodmanImageDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def argument_spec():
    spec = podman.argument_spec()
    spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        build=dict(type='dict', options=dict(context=dict(type='path', required=True), file=dict(type='path'),
                                             args=dict(type='dict'), target=dict(type='str'),
                                             labels=dict(type='dict'))),
        load_from=dict(type='path'),
        checksum=dict(type='str'),
        pull=dict(type='str', choices=list(ispec.PULL_POLICIES)),
        tag=dict(type='list', elements='str'),
        force=dict(type='bool', default=False),
        validate_certs=dict(type='bool', default=True),
        username=dict(type='str'),
        password=dict(type='str', no_log=True),
        timeout=dict(type='int', default=600),
    )
    return spec


def source(params):
    given = [key for key in ('build', 'load_from', 'pull') if params[key] is not None]
    if len(given) > 1:
        raise SpecError(given[1], 'cannot be combined with %s: an image has one source (build, load_from or pull)'
                        % given[0])
    if params['checksum'] is not None and params['load_from'] is None:
        raise SpecError('checksum', 'is the checksum of the load_from archive: set load_from, or remove checksum')
    if bool(params['username']) != bool(params['password']):
        raise SpecError('username' if params['password'] else 'password', 'registry credentials take username and '
                        'password together: set both, or neither')
    if params['timeout'] <= 0:
        raise SpecError('timeout', 'must be a positive number of seconds, got %d' % params['timeout'])
    if params['build'] is not None:
        return {'build': ispec.parse_build(params['build'])}
    if params['load_from'] is not None:
        checksum = ispec.parse_checksum(params['checksum']) if params['checksum'] is not None else None
        return {'load_from': params['load_from'], 'checksum': checksum}
    return {'pull': params['pull'] or 'missing'}


def ensure(module, session):
    params = module.params
    name = ispec.parse_ref(params['name'])
    tags = ispec.parse_tags(params['tag'], name) if params['tag'] is not None else []
    present = params['state'] == 'present'
    registry = dict((k, params[k]) for k in ('validate_certs', 'username', 'password'))
    driver = PodmanImageDriver(session.client, name, source(params) if present else None, tags, registry,
                               params['timeout'])
    try:
        outcome, before, after = _reconcile.ensure(driver, name, {}, params['state'], None,
                                                   _module.reconcile_options(module))
    finally:
        driver.close()
    _module.ensure_result(module, 'image', outcome, before, after)


def main():
    _module.run(argument_spec(), ensure, backend='podman')


if __name__ == '__main__':
    main()

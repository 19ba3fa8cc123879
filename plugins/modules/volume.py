#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: volume
short_description: Manage libvirt storage volumes - new, copy-on-write overlays, clones, imports
version_added: 0.2.0
description:
  - Creates, grows, shrinks (only when allowed) and deletes a volume in a libvirt storage pool.
  - A new volume is empty (O(capacity)), a qcow2 copy-on-write overlay on another volume (O(backing_volume),
    the usual way to give each VM its own disk from a base image), a clone of another volume (O(clone_from))
    or an image imported from a file on the host that runs the module or from an http(s) URL (O(import_from)),
    verified against O(checksum) and streamed through the libvirt API, so it works over remote URIs
    (C(qemu+ssh://...)) too.
  - Idempotent - the capacity is compared in bytes after unit conversion (allocation is ignored), and
    O(clone_from)/O(import_from) are only used to create a missing volume. A run with nothing to change
    writes nothing.
  - Check mode predicts RV(ignore:changed) truthfully and changes nothing; C(--diff) shows the spec before and after.
  - Bad input (a missing backing volume, a shrink without O(allow_shrink), a wrong checksum, an unknown unit,
    a URL that does not answer) fails with a message before anything is written.
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.libvirt
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  pool:
    description: The storage pool of the volume. It must exist and be active.
    type: str
    required: true
  name:
    description: Volume name (in V(dir) pools the file name), such as V(web1.qcow2).
    type: str
    required: true
  state:
    description:
      - V(present) - the volume exists with the given capacity.
      - V(absent) - the volume is deleted (after O(wipe) if set). A missing pool counts as absent.
    type: str
    choices: [present, absent]
    default: present
  capacity:
    description:
      - Size the guest sees, in MiB as an integer or as a string with a unit (V(10GiB), V(512MiB), V(20G)).
      - Required for a new empty volume; for an overlay, a clone or an import the default is the size of
        the source, and a smaller value is refused.
      - A larger value than the volume has grows it; a smaller one is refused unless O(allow_shrink=true).
      - qcow2 sizes are rounded up to whole 512-byte sectors (as qemu-img does).
    type: raw
  format:
    description:
      - Image format. Default - V(qcow2) for an overlay, the source's format for a clone, the file's format
        (detected) for an import, else V(raw). An existing volume is never converted.
      - V(qcow2) needs a pool that keeps files (V(dir), V(fs), V(netfs)).
    type: str
    choices: [raw, qcow2]
  backing_volume:
    description:
      - Create the volume as a qcow2 copy-on-write overlay on this volume - C(name) in the same pool or
        C(pool/name). The backing volume must exist and is recorded with its format in the overlay.
    type: str
  clone_from:
    description:
      - Create the volume as a full copy of this volume - C(name) in the same pool or C(pool/name).
    type: str
  import_from:
    description:
      - Create the volume from this image - a file on the host that runs the module (C(~) and C($VARS) are
        expanded, as for a path) or an C(http://) or C(https://) URL - streamed into the pool through libvirt
        (virStorageVolUpload). Requires O(checksum).
      - The image's format (raw or qcow2) is detected; with a qcow2 image the volume is that qcow2 image.
      - Only a missing volume is imported - an existing volume is never downloaded or read again, whatever
        O(import_from) says.
      - A URL is downloaded with C(ansible.module_utils.urls), as C(ansible.builtin.get_url) does - the
        C(http_proxy), C(https_proxy) and C(no_proxy) environment variables apply, certificates are checked
        unless O(validate_certs=false), and credentials may be given in the URL (C(https://user:password@host/...));
        they are hidden in the task's result, messages and log (the password, or the user name when there is
        no password, is replaced by C(********)).
      - A URL is downloaded in full to a temporary file on the host that runs the module (in the directory
        that the C(TMPDIR) environment variable names, default C(/tmp); set it with the task's C(environment)
        keyword when that has no room for the image), hashed on the way, verified against O(checksum) and
        then imported like a file; the file is removed afterwards, also when anything fails. A wrong checksum
        or a URL that does not answer therefore fails before any volume exists. This costs the image's size
        on the module's host for the duration of the task, and buys that the size and format of the volume
        come from the verified image, as for a file, instead of from what the server announces.
      - The module cannot print while it runs, so a download logs a progress line per 10 % of the size the
        server announced (else per 64 MiB) to the module host's log (journal or syslog, as C(ansible-volume)),
        and the result's RV(download) has its size, time and rate.
      - In check mode a URL is not downloaded nor asked anything - check mode predicts V(created) without
        knowing whether the URL answers or the checksum matches, and the predicted spec's C(format) and
        C(capacity) are null unless O(format) and O(capacity) give them.
    type: str
  checksum:
    description:
      - Expected checksum of O(import_from) as C(algorithm:hex), with algorithm V(sha256), V(sha384) or V(sha512).
      - A file is verified before anything is created and again while it is streamed; a URL's image is verified
        when its download has finished, before anything is created. On a mismatch nothing is left behind.
    type: str
  validate_certs:
    description:
      - With an C(https://) O(import_from), check the server's TLS certificate (against the host's CA bundle).
      - V(false) skips the check; use it only on a network you trust, such as for a self-signed certificate.
      - Used only when O(import_from) is a URL.
    type: bool
    default: true
  download_timeout:
    description:
      - Seconds to wait for the server of an O(import_from) URL to accept the connection and for each read of
        the download; not a limit on the whole download. A server that does not answer within it fails the task.
      - Used only when O(import_from) is a URL.
    type: int
    default: 30
  allow_shrink:
    description: Allow a smaller O(capacity) than the volume has. Data beyond the new size is lost.
    type: bool
    default: false
  wipe:
    description: With O(state=absent), overwrite the volume's data with zeros before deleting it.
    type: bool
    default: false
seealso:
  - module: virtfleet.virt.volume_info
  - module: virtfleet.virt.storage_pool
  - module: virtfleet.virt.vm
'''

EXAMPLES = r'''
- name: A base image imported from the controller's download
  virtfleet.virt.volume:
    pool: images
    name: debian-12.qcow2
    import_from: /srv/downloads/debian-12-genericcloud-amd64.qcow2
    checksum: "sha256:0f4c...e9"

- name: A base image downloaded from a URL (only while the volume is missing), with the checksum its publisher lists
  virtfleet.virt.volume:
    pool: images
    name: debian-12-cloud.qcow2
    import_from: https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2
    checksum: "sha512:4c1e...0d2a"   # its line in SHA512SUMS next to the image
    download_timeout: 60
  environment:
    TMPDIR: /var/tmp    # the image is downloaded here first, then removed

- name: Each VM gets a 20 GiB overlay on it
  virtfleet.virt.volume:
    pool: images
    name: web1.qcow2
    backing_volume: debian-12.qcow2
    capacity: 20GiB

- name: A VM that boots from it
  virtfleet.virt.vm:
    name: web1
    state: running
    disks:
      - pool: images
        volume: web1.qcow2

- name: Grow a data disk
  virtfleet.virt.volume:
    pool: images
    name: db1-data.raw
    capacity: 200GiB

- name: Remove it, overwriting its data first
  virtfleet.virt.volume:
    pool: images
    name: db1-data.raw
    state: absent
    wipe: true
'''

RETURN = r'''
volume:
  description: The volume after the run (in check mode, as predicted). Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: Volume name.
      type: str
      sample: web1.qcow2
    pool:
      description: Its storage pool.
      type: str
      sample: images
    path:
      description: Path of the volume on the hypervisor host.
      type: str
      sample: /srv/images/web1.qcow2
    state:
      description: V(present).
      type: str
    spec:
      description:
        - The normalized spec - C(format), C(capacity) (in bytes) and C(backing_volume)
          (C(name), C(pool/name), or a path outside any pool; null when the volume has no backing store).
      type: dict
      sample: {format: qcow2, capacity: 21474836480, backing_volume: debian-12.qcow2}
    allocation:
      description: Bytes the volume uses on its pool (informative, never compared).
      type: int
download:
  description:
    - The download of an O(import_from) URL - the URL (credentials hidden), its size in bytes, the seconds it took
      and the rate in bytes per second.
  returned: when the run downloaded an O(import_from) URL (not in check mode, not when the volume existed)
  type: dict
  sample: {url: 'https://images.example.com/debian-12.qcow2', bytes: 343277568, seconds: 12.48,
           bytes_per_second: 27506215}
actions:
  description: What the run did (or, in check mode, would do).
  returned: always
  type: list
  elements: str
  sample: ['updated: capacity']
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _storage_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients.download import url_secrets
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_volume import LibvirtVolumeDriver


def argument_spec():
    spec = _module.connection_argument_spec()
    spec.update(
        pool=dict(type='str', required=True),
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        capacity=dict(type='raw'),
        format=dict(type='str', choices=list(_storage_spec.VOLUME_FORMATS)),
        backing_volume=dict(type='str'),
        clone_from=dict(type='str'),
        import_from=dict(type='str'),
        checksum=dict(type='str'),
        validate_certs=dict(type='bool', default=True),
        download_timeout=dict(type='int', default=_storage_spec.DOWNLOAD_TIMEOUT),
        allow_shrink=dict(type='bool', default=False),
        wipe=dict(type='bool', default=False),
    )
    return spec


def request(module, _backend):
    params = module.params
    _storage_spec.validate_name(params['pool'], 'pool')
    name = _storage_spec.validate_name(params['name'], 'name', 'volume')
    partial = _storage_spec.volume_partial_from_params(params) if params['state'] != 'absent' else {}
    return name, partial, params['state'], None, _module.reconcile_options(
        module, delete_options={'wipe': params['wipe']})


def drivers(module):
    """backend -> factory(client, params) of the driver (the pool name checked by request); the driver logs
    the progress of a download to the module's log."""
    return {'libvirt': lambda client, params: LibvirtVolumeDriver(client, params['pool'],
                                                                  require_pool=params['state'] != 'absent',
                                                                  log=module.log)}


def operate(module, session):
    _module.ensure('volume', drivers(module), request)(module, session)


def import_secrets(params):
    """Credentials in an import_from URL: hidden wherever Ansible shows the task's values (invocation, msg, log)."""
    return url_secrets(params['import_from'] or '')


def main():
    _module.run(argument_spec(), operate, secrets=import_secrets)


if __name__ == '__main__':
    main()

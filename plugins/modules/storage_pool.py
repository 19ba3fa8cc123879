#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_pool
short_description: Manage libvirt storage pools, or mount NFS datastores on VMware vSphere
version_added: 0.2.0
description:
  - On VMware vSphere (see O(backend)), mounts an NFS export as a datastore (O(type=netfs)) on the ESXi hosts
    that O(host) or O(cluster) choose, or unmounts it (HostDatastoreSystem); see the vSphere notes below.
    The rest of this description is about libvirt pools.
  - Defines, builds, starts, stops, updates and removes a libvirt storage pool.
  - Idempotent - options left out keep the pool's current value; a run with nothing to change writes nothing.
  - Check mode predicts RV(ignore:changed) truthfully and changes nothing; C(--diff) shows the pool's state
    and spec before and after.
  - Formatting is never implicit - O(build) formats only a pool this run defines, and refuses to overwrite
    a device that holds data unless O(force=true). Volumes and data are deleted only with O(delete_data=true).
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.libvirt
  - virtfleet.virt.vsphere
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the pool. 1 to 64 letters, digits and C(_.+-), starting with a letter or digit.
      - On vSphere, the datastore name (any text without C(/), not starting or ending with a space); it is
        also the local path of the NFS mount on ESXi.
    type: str
    required: true
  state:
    description:
      - V(present) - the pool is defined; a new pool is left inactive and an existing one keeps its state.
      - V(active), V(inactive) - the pool is defined and started (mounted, logged in, ...) or stopped.
      - V(absent) - the pool is stopped and undefined. Its volumes and data are kept unless O(delete_data=true).
      - On vSphere, V(present) and V(active) - the NFS datastore is mounted on every chosen host (mounted where
        it is missing); V(absent) - unmounted from every chosen host (its data on the server is kept).
        V(inactive) is refused.
    type: str
    choices: [present, active, inactive, absent]
    default: present
  type:
    description:
      - Pool type. Required to define a new pool; an existing pool's type cannot change.
      - V(dir) - a directory (O(path)). V(fs) - a block device with a filesystem (O(source.devices)),
        mounted on O(path). V(netfs) - a network filesystem (O(source.hosts), O(source.dir)) mounted on O(path).
        V(logical) - an LVM volume group (O(source.name), built on O(source.devices)). V(disk) - a disk with a
        partition table, one volume per partition (O(source.devices)). V(iscsi) - the LUNs of an iSCSI target
        (O(source.hosts), O(source.iqn)). V(rbd) - a Ceph RBD pool (O(source.name), O(source.hosts)).
      - Types the host's libvirt lacks (often V(rbd)) are refused with a message before anything is defined.
      - On vSphere only V(netfs) - an NFS datastore (required to mount a new one). Creating VMFS datastores is not
        supported; other types are refused.
    type: str
    choices: [dir, fs, netfs, logical, disk, iscsi, rbd]
  path:
    description:
      - libvirt only (ESXi mounts a datastore below C(/vmfs/volumes) by its O(name)).
      - Target path - the directory of a V(dir) pool, the mount point of V(fs) and V(netfs) pools.
        Required for those; defaults to C(/dev) for V(disk) and C(/dev/disk/by-path) for V(iscsi).
        V(rbd) pools have none. A V(logical) pool's path is always C(/dev/<volume group>) (libvirt sets it so);
        another path is refused - name the volume group with O(source.name).
    type: path
  source:
    description:
      - Where the pool's storage comes from; which keys apply depends on O(type). Keys left out keep their value.
    type: dict
    suboptions:
      devices:
        description: Block devices - exactly one for V(fs) and V(disk), the physical volumes of a V(logical) pool.
        type: list
        elements: path
      hosts:
        description:
          - Servers as C(name) or C(name:port) (C([v6addr]:port)) - the NFS/CIFS server of V(netfs), the
            iSCSI portal of V(iscsi) (exactly one each), the Ceph monitors of V(rbd).
          - On vSphere, the NFS server without a port - exactly one for NFS 3, one or more addresses of the
            server for NFS 4.1 (O(source.format=nfs41)).
        type: list
        elements: str
        aliases: [host]
      dir:
        description:
          - Exported directory on the server of a V(netfs) pool (on vSphere, of the NFS datastore).
        type: path
      name:
        description: Volume group of a V(logical) pool (default - the pool name), Ceph pool of an V(rbd) pool.
        type: str
      format:
        description:
          - V(fs) - the filesystem (V(auto) to detect it on mount; default V(ext4) with O(build=true), else V(auto)).
          - V(netfs) - V(auto), V(nfs), V(glusterfs) or V(cifs) (default V(auto)). On vSphere V(nfs) (NFS 3, the
            default) or V(nfs41) (NFS 4.1, C(AUTH_SYS)); the version of a mounted datastore cannot change.
          - V(disk) - the partition table (V(dos), V(gpt), ...; default V(dos) with O(build=true)).
          - V(logical) - V(lvm2).
        type: str
      iqn:
        description: IQN of the iSCSI target (V(iscsi)).
        type: str
      initiator:
        description: IQN of the initiator (V(iscsi)); default - the host's.
        type: str
      auth:
        description: CHAP (V(iscsi)) or cephx (V(rbd)) authentication with a libvirt secret.
        type: dict
        suboptions:
          username:
            description: User name.
            type: str
            required: true
          secret_uuid:
            description: UUID of the libvirt secret that holds the password or key.
            type: str
          secret_usage:
            description: Usage name of the libvirt secret (instead of O(source.auth.secret_uuid)).
            type: str
  autostart:
    description: libvirt only. Start the pool when libvirtd starts. Honoured with every O(state) except V(absent).
    type: bool
  build:
    description:
      - libvirt only (refused on vSphere when true).
      - Build the pool when this run defines it - create the directory (V(dir), and the mount point of V(fs)
        and V(netfs)), make the filesystem (V(fs)), write the partition table (V(disk)), create the
        physical volumes and volume group (V(logical)). An existing pool is never built again.
      - A device that already holds another filesystem, partition table or data is refused unless
        O(force=true); one that holds exactly the requested filesystem is kept as it is (with a warning).
        The check runs C(blkid) on the host, before anything is written; over a remote URI the module
        cannot look at the device, so building V(fs), V(disk) and V(logical) pools there needs O(force=true).
        On failure, the pool is not left defined.
    type: bool
    default: false
  force:
    description: libvirt only. With O(build=true), format the device even when it holds data (destroys that data).
    type: bool
    default: false
  refresh:
    description:
      - libvirt only. Rescan an active pool's volumes before reading it (for volumes added or removed outside
        libvirt). Does not count as a change. Not in check mode, which writes nothing (RV(refreshed) is false there).
    type: bool
    default: false
  delete_data:
    description:
      - libvirt only. On vSphere the data on the NFS server is always kept.
      - With O(state=absent), delete the pool's volumes and its data first - the directory of V(dir),
        the mount point of V(fs)/V(netfs), the volume group of V(logical). Without it, everything is kept.
    type: bool
    default: false
  restart_if_required:
    description:
      - libvirt only. When O(path) or O(source) of an active pool change, restart the pool (stop, start) so that
        they take effect. Without it the new definition is saved, the running pool keeps the old one until it
        restarts, and RV(pool.pending_restart) is true.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for libvirt to report the pool started or stopped; on vSphere, for a vSphere task.
    type: int
    default: 60
  host:
    description:
      - vSphere only. The ESXi host that mounts (or unmounts) the NFS datastore, as vCenter names it.
      - Without O(host) and O(cluster), the connection must manage exactly one host (an ESXi host itself).
    type: str
    aliases: [esxi_hostname]
  cluster:
    description: vSphere only. Mount or unmount on every host of this cluster (with O(host), only on that one).
    type: str
  datacenter:
    description: vSphere only. Look for O(cluster) and O(host) in this datacenter only.
    type: str
notes:
  - On vSphere, one PropertyCollector query reads the hosts and datastores, and every option is checked against
    it before the first change - a datastore of that name from another server or export, or of another type than
    NFS, is refused (never remounted); so is an export a chosen host already mounts under another name, and
    unmounting while VMs on a chosen host use the datastore. A mount that fails on one host is undone on the
    hosts this run mounted.
  - On vSphere, RV(pool) describes the datastore as RV(virtfleet.virt.storage_pool_info#module:pools) does -
    C(spec.type) V(nfs) or V(nfs41), C(spec.hosts) the hosts that mount it (also outside O(cluster)), no
    volumes; O(state=absent) unmounts it from the chosen hosts only.
seealso:
  - module: virtfleet.virt.storage_pool_info
  - module: virtfleet.virt.volume
'''

EXAMPLES = r'''
- name: A directory pool, created and started at boot
  virtfleet.virt.storage_pool:
    name: images
    type: dir
    path: /srv/images
    build: true
    state: active
    autostart: true

- name: A filesystem pool on a disk, formatted as ext4 if it is empty
  virtfleet.virt.storage_pool:
    name: fast
    type: fs
    path: /srv/fast
    source:
      devices: [/dev/sdb]
      format: ext4
    build: true
    state: active

- name: An NFS export
  virtfleet.virt.storage_pool:
    name: shared
    type: netfs
    path: /srv/shared
    source:
      host: nfs1.example.com
      dir: /export/vms
      format: nfs
    build: true
    state: active

- name: An NFS datastore on every host of a vSphere cluster
  virtfleet.virt.storage_pool:
    hostname: vcenter.example.com
    username: administrator@vsphere.local
    password: "{{ vcenter_password }}"
    cluster: prod
    name: shared-nfs
    type: netfs
    source:
      hosts: [nfs1.example.com]
      dir: /export/vms
      format: nfs

- name: Unmount it from one host only
  virtfleet.virt.storage_pool:
    hostname: vcenter.example.com
    username: administrator@vsphere.local
    password: "{{ vcenter_password }}"
    esxi_hostname: esx3.example.com
    name: shared-nfs
    state: absent

- name: Remove a pool with its volumes and directory
  virtfleet.virt.storage_pool:
    name: images
    state: absent
    delete_data: true
'''

RETURN = r'''
pool:
  description: The pool after the run (in check mode, as predicted). Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: Pool name.
      type: str
      sample: images
    uuid:
      description: libvirt UUID (on vSphere, the VMFS UUID; null for NFS datastores).
      type: str
    state:
      description: V(active) or V(inactive) (on vSphere, whether the datastore is accessible).
      type: str
      sample: active
    spec:
      description:
        - The normalized persistent spec, in the shape of this module's options.
        - On vSphere C(type) is the datastore type (V(nfs), V(nfs41)), C(path) its URL, C(source) the NFS
          C(hosts), C(dir) and C(format), C(autostart) null, and C(hosts) the ESXi hosts that mount it.
      type: dict
      sample: {type: dir, path: /srv/images, source: {}, autostart: true}
    volumes:
      description: Names of the pool's volumes (active pools only; null on vSphere).
      type: list
      elements: str
    capacity:
      description: Size of the pool in bytes (active pools only, else null).
      type: int
    allocation:
      description: Bytes allocated to volumes (active pools only, else null).
      type: int
    available:
      description: Bytes free (active pools only, else null).
      type: int
    pending_restart:
      description: True when the active pool still runs a previous path or source.
      type: bool
    vsphere:
      description: The datastore's moid, datacenter, hosts that mount it, uncommitted bytes and maintenance_mode.
      type: dict
      returned: on vSphere
actions:
  description: What the run did (or, in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: [created, start]
deleted_volumes:
  description: Paths of the volumes deleted with O(delete_data=true).
  returned: when O(state=absent) with O(delete_data=true) and the pool existed
  type: list
  elements: str
refreshed:
  description: True when the pool was rescanned (O(refresh=true) on an active pool).
  returned: always
  type: bool
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _storage_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_datastore
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_pool import LibvirtPoolDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def argument_spec():
    """The options; the libvirt switches that default to false are refused on vSphere only when true."""
    # the secret options name a libvirt secret; they are not the secret itself
    auth = dict(username=dict(type='str', required=True), secret_uuid=dict(type='str', no_log=False),
                secret_usage=dict(type='str', no_log=False))
    source = dict(
        devices=dict(type='list', elements='path'), hosts=dict(type='list', elements='str', aliases=['host']),
        dir=dict(type='path'), name=dict(type='str'), format=dict(type='str'), iqn=dict(type='str'),
        initiator=dict(type='str'), auth=dict(type='dict', options=auth),
    )
    spec = _module.connection_argument_spec('libvirt', 'vsphere')
    spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'active', 'inactive', 'absent']),
        type=dict(type='str', choices=sorted(_storage_spec.POOL_TYPES)),
        **_module.only('libvirt', path=dict(type='path')),
        source=dict(type='dict', options=source),
        **_module.only('libvirt', autostart=dict(type='bool'), build=dict(type='bool', default=False),
                       force=dict(type='bool', default=False), refresh=dict(type='bool', default=False),
                       delete_data=dict(type='bool', default=False),
                       restart_if_required=dict(type='bool', default=False)),
        wait_timeout=dict(type='int', default=60),
        **_module.only('vsphere', datacenter=dict(type='str'), cluster=dict(type='str'),
                       host=dict(type='str', aliases=['esxi_hostname'])),
    )
    return spec


def _libvirt(module):
    """``(name, partial, state, target, opts)`` of a libvirt storage pool."""
    params = module.params
    name = _storage_spec.validate_name(params['name'])
    partial = dict(_storage_spec.pool_partial_from_params(params), name=name)
    target = None if params['state'] in ('present', 'absent') else params['state']
    opts = _module.reconcile_options(module, restart_if_required=params['restart_if_required'],
                                     delete_options={'delete_data': params['delete_data']})
    return name, partial, params['state'], target, opts


def _vsphere(module):
    """``(name, partial, state, target, opts)`` of an NFS datastore on ESXi hosts."""
    params = module.params
    if params['state'] == 'inactive':
        raise SpecError('state', 'a vSphere datastore is mounted (present or active) or unmounted (absent); '
                                 'inactive applies to libvirt pools only')
    name = vsphere_datastore.validate_name(params['name'])
    partial = dict(vsphere_datastore.validate_partial(params), name=name)
    opts = _module.reconcile_options(module)
    return name, partial if params['state'] != 'absent' else {}, params['state'], None, opts


def request(module, backend):
    return _libvirt(module) if backend == 'libvirt' else _vsphere(module)


# backend -> factory(client, params) of the driver
DRIVERS = {
    'libvirt': lambda client, params: LibvirtPoolDriver(client, build=params['build'], force=params['force'],
                                                        refresh=params['refresh']),
    'vsphere': lambda client, params: vsphere_datastore.VSphereDatastoreDriver(
        client, params, managing=True, unmounting=params['state'] == 'absent', task_timeout=params['wait_timeout']),
}


def main():
    _module.run(argument_spec(), _module.ensure('pool', DRIVERS, request))


if __name__ == '__main__':
    main()

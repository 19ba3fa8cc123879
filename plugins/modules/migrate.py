#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: migrate
short_description: Move a virtual machine to another hypervisor host, live or offline (libvirt/KVM, vSphere)
version_added: 0.2.0
description:
  - On VMware vSphere (see O(backend)) - "VM O(name) is on the ESXi host O(destination) / in O(cluster) / in
    O(resource_pool), with its disks on O(datastore)", by one C(RelocateVM_Task) - vMotion for a host, cluster or resource pool change,
    storage vMotion for a datastore change (every disk and the configuration files), both together in one task.
    Whether the VM is already there is decided from its host, cluster and resource pool and from the datastores
    of its disks (not from the VM's datastore list, which also names datastores of mounted ISO images).
    Pre-checks (also in check mode) - the destination host is connected and not in maintenance mode, the
    datastore is accessible and mounted there, the VM's port groups exist there, and vSphere's own relocation
    checks (C(VmProvisioningChecker.CheckRelocate_Task)) pass where the server offers them. O(timeout) bounds the
    task. The options marked libvirt only are refused there. The rest of this description is about libvirt.
  - Declarative - "VM O(name) runs on the host O(destination)". When it already runs there and not on the
    source O(uri), nothing changes (RV(ignore:changed=false)); otherwise it is migrated.
  - O(mode=live) moves a running (or paused) VM without stopping it; O(mode=offline) moves the definition of a
    defined-but-stopped VM.
  - Before anything moves, pre-checks prove that the migration can succeed, each failing with a clear message
    and nothing changed - the destination is reachable and is not the source host; no VM of that name or UUID
    is on the destination; the guest CPU is compatible with the destination's hypervisor (libvirt
    C(compareHypervisorCPU); for C(host-passthrough) guests the two host CPUs are compared); the networks and
    storage pools the VM uses exist (and are active) on the destination; with O(copy_storage), the destination
    has a storage pool where libvirt can create each copied disk; the destination has enough free memory.
  - Safety - the VM keeps running on the source until the destination has confirmed it runs there. When the job
    fails or is aborted (O(timeout)) before a switch to post-copy, libvirt resumes the VM on the source, and the
    module checks it and says where the VM is in its failure message.
  - Check mode runs the pre-checks and predicts the result; nothing moves.
  - Returns the statistics of the completed job (RV(job)) - total time, downtime, data transferred, memory passes.
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
notes:
  - O(uri) is the source host. The module opens a connection to the destination too (O(destination_connect_uri))
    for the pre-checks and to confirm the result.
  - Disks are expected on storage both hosts share at the same path, unless O(copy_storage) is set. libvirt
    refuses a live migration when it cannot recognise the storage as shared and the disk cache mode is not
    C(none) or C(directsync); see O(unsafe).
  - In libvirt 9.0, O(bandwidth) limits the memory stream; the disk copy of O(copy_storage) is not limited by it.
  - A migration that switched to post-copy cannot be aborted - if the destination fails after the switch, the VM
    is paused on both hosts and needs a post-copy recovery. Leave O(post_copy) off when that risk is not acceptable.
options:
  name:
    description: Name of the VM.
    type: str
    required: true
  destination:
    description:
      - The host the VM must run on, on either backend.
      - On libvirt, the libvirt URI of the destination host, as the source host reaches it, for example
        C(qemu+tls://hv2.example.com/system) or C(qemu+ssh://root@hv2/system). Required there. With
        O(peer_to_peer=true) the source libvirtd connects to it (so it needs credentials or certificates on the
        source host, not on the Ansible host).
      - On vSphere, the name of the ESXi host the VM must run on (vMotion), as vCenter knows it; in O(cluster) when
        both are set. Optional there when O(cluster), O(resource_pool) or O(datastore) says where the VM goes.
      - The alias O(host) is the name this option had on vSphere in 0.2.0; it is deprecated, taken on vSphere only,
        and cannot be given together with O(destination).
    type: str
    aliases: [host]
  destination_connect_uri:
    description:
      - libvirt only. libvirt URI the module itself uses to reach the destination (pre-checks, confirming the result,
        and the migration when O(peer_to_peer=false)).
      - Default - O(destination). Set it when the Ansible host reaches the destination by another address
        than the source host does (for example a management network).
    type: str
  destination_username:
    description: libvirt only. User name for the module's connection to the destination, when its URI needs one.
    type: str
  destination_password:
    description: libvirt only. Password for the module's connection to the destination. Never logged or returned.
    type: str
  mode:
    description:
      - libvirt only. V(live) - migrate a running or paused VM without stopping it (it keeps its power state).
      - V(offline) - move the persistent definition of a defined-but-stopped VM. Disks are not copied.
    type: str
    choices: [live, offline]
    default: live
  migration_uri:
    description:
      - libvirt only. Where the migration data goes, when not to the address the destination offers (its
        C(migration_host)); for example C(tcp://10.0.0.2) to use a dedicated migration network.
    type: str
  listen_address:
    description: libvirt only. Address the destination QEMU listens on for the incoming migration data.
    type: str
  copy_storage:
    description:
      - libvirt only. Copy the disks to the destination during a live migration, for hosts without shared storage.
      - V(all) copies whole disks. The destination needs the image already, or a storage pool whose target is the
        image's directory, where libvirt creates it (checked before anything moves). A disk with backing images
        arrives flattened - one image with no backing file, the whole virtual size copied and allocated; to keep the
        chain, put the backing images on both hosts and use V(incremental).
      - V(incremental) copies only the top image of each disk. libvirt cannot create it - the destination needs it
        already, on top of the same backing images, as a volume of a storage pool (checked before anything moves).
    type: str
    choices: [all, incremental]
  peer_to_peer:
    description:
      - libvirt only. The source libvirtd connects to O(destination) and runs the migration itself, so a failure of the
        Ansible host or of its connections cannot stop it half-way.
      - V(false) - the module drives it through its own connections to both hosts.
    type: bool
    default: true
  tunnelled:
    description:
      - libvirt only. Send the migration data through the libvirt connection between the two daemons (needs
        O(peer_to_peer)); then only the libvirt port has to be open between the hosts.
    type: bool
    default: false
  persistent:
    description: libvirt only. Define the VM persistently on the destination (else it is transient there until defined).
    type: bool
    default: true
  undefine_source:
    description:
      - libvirt only. Remove the VM's definition from the source once it runs on the destination.
      - With V(false) the source keeps a stopped definition; the module reports it in a warning.
    type: bool
    default: true
  unsafe:
    description:
      - libvirt only. Migrate even when libvirt considers it unsafe, typically because it cannot recognise the disks'
        storage as shared (a cluster file system it does not know) while their cache mode is not C(none).
      - Only for storage you know to be shared and coherent between the hosts.
    type: bool
    default: false
  auto_converge:
    description: libvirt only. Throttle the guest's vCPUs when memory is dirtied faster than it is transferred.
    type: bool
    default: false
  post_copy:
    description:
      - libvirt only. Allow switching to post-copy - the VM starts running on the destination and fetches the rest of
        its memory from the source on demand. This makes any migration finish, but a failure after the switch loses the
        VM on both hosts until recovered (see notes).
      - The switch happens after O(post_copy_after) seconds, or when pre-copy does not converge - after
        O(post_copy_after_iterations) passes over the guest memory - whichever comes first.
    type: bool
    default: false
  post_copy_after:
    description: libvirt only. With O(post_copy), switch to post-copy this many seconds after the migration started.
    type: int
  post_copy_after_iterations:
    description:
      - libvirt only. With O(post_copy), switch to post-copy when pre-copy has made this many passes over the guest
        memory without finishing.
      - Default - 3 when O(post_copy=true).
    type: int
  compression:
    description:
      - libvirt only. Compress the migration data with these methods - V(xbzrle) (delta of re-sent pages), V(mt)
        (multi-threaded page compression), V(zlib) and V(zstd) (of the parallel streams; need O(parallel_connections)
        and a libvirt newer than 9.0, which refuses them).
      - libvirt validates the combination with the other options and refuses it before anything moves.
    type: list
    elements: str
    choices: [xbzrle, mt, zlib, zstd]
  parallel_connections:
    description: libvirt only. Migrate memory over this many parallel connections (libvirt parallel/multifd migration).
    type: int
  bandwidth:
    description: libvirt only. Maximum bandwidth of the migration, in MiB/s.
    type: int
  max_downtime:
    description:
      - libvirt only. Maximum time, in milliseconds, the VM may be paused at the end of the live migration. It is set on
        the source VM before the migration starts.
    type: int
  tls:
    description:
      - libvirt only. Encrypt the migration data with TLS (libvirt C(VIR_MIGRATE_TLS)); both hosts need the QEMU
        migration certificates (C(migrate_tls_x509_cert_dir) of C(qemu.conf)).
    type: bool
    default: false
  tls_destination:
    description:
      - libvirt only. With O(tls), the host name expected in the destination's certificate, when not the one in its URI.
    type: str
  timeout:
    description:
      - Overall time, in seconds, the migration may take. When it runs out, the job is aborted (libvirt
        C(domainAbortJob)), the VM keeps running on the source and the module fails saying so.
      - A migration that has switched to post-copy is never aborted; it is left to finish.
    type: int
    default: 1800
  destination_memory_reserve:
    description:
      - libvirt only. Memory that must stay available on the destination on top of the VM's memory, in MiB as an integer
        or as a string with a unit (V(4GiB)). Checked before a live migration.
    type: raw
  cluster:
    description:
      - vSphere only. Cluster the VM must be in. Without O(destination), a VM outside the cluster is moved to its root
        resource pool and vCenter (DRS) picks the host.
    type: str
  resource_pool:
    description: vSphere only. Resource pool the VM must be in, by name or path below the cluster or host.
    type: str
  datastore:
    description: vSphere only. Datastore all the VM's disks (and its configuration files) must be on (storage vMotion).
    type: str
  datacenter:
    description: vSphere only. Datacenter of the VM (needed when vCenter has several).
    type: str
  folder:
    description: vSphere only. VM folder of the VM, to tell apart VMs of the same name. The VM is not moved to it.
    type: str
seealso:
  - module: virtfleet.virt.vm
  - name: libvirt migration
    description: How libvirt migrates guests, and the options this module maps.
    link: https://libvirt.org/migration.html
'''

EXAMPLES = r'''
- name: Move web1 to hv2 without stopping it (shared storage)
  virtfleet.virt.migrate:
    name: web1
    uri: qemu+ssh://root@hv1.example.com/system
    destination: qemu+ssh://root@hv2.example.com/system
  register: moved

- name: Hosts without shared storage - copy the disks, limit the bandwidth, give up after 20 minutes
  virtfleet.virt.migrate:
    name: db1
    uri: qemu+ssh://root@hv1.example.com/system
    destination: qemu+tls://hv3.example.com/system
    destination_connect_uri: qemu+ssh://root@hv3.example.com/system
    copy_storage: all
    bandwidth: 500
    auto_converge: true
    timeout: 1200

- name: A busy VM that must finish moving - switch to post-copy if pre-copy does not converge
  virtfleet.virt.migrate:
    name: cache1
    uri: qemu+ssh://root@hv1.example.com/system
    destination: qemu+ssh://root@hv2.example.com/system
    post_copy: true
    post_copy_after_iterations: 3
    max_downtime: 300

- name: Move a stopped VM's definition
  virtfleet.virt.migrate:
    name: spare1
    uri: qemu+ssh://root@hv1.example.com/system
    destination: qemu+ssh://root@hv2.example.com/system
    mode: offline

- name: vMotion and storage vMotion of a vSphere VM in one task
  virtfleet.virt.migrate:
    hostname: vcenter.example.com
    username: administrator@vsphere.local
    password: "{{ vcenter_password }}"
    name: web1
    destination: esx2.example.com
    datastore: ssd-02

- name: Only check that the migration would succeed
  virtfleet.virt.migrate:
    name: web1
    uri: qemu+ssh://root@hv1.example.com/system
    destination: qemu+ssh://root@hv2.example.com/system
  check_mode: true
'''

RETURN = r'''
vm:
  description: Where the VM is after the run (in check mode, as predicted).
  returned: success
  type: dict
  contains:
    name:
      description: VM name.
      type: str
      sample: web1
    uuid:
      description: libvirt UUID.
      type: str
      sample: 8f1d6e0c-1c70-4c5e-9e1b-2d8e6a3f0c11
    state:
      description: Power state - running, paused, stopped, ...
      type: str
      sample: running
    uri:
      description: The URI of the host it is on (O(uri) or O(destination)).
      type: str
      sample: qemu+ssh://root@hv2.example.com/system
    hostname:
      description: Host name of the hypervisor it is on.
      type: str
      sample: hv2
    persistent:
      description: Whether it is defined persistently there.
      type: bool
    vsphere:
      description: vSphere only - datacenter, cluster, host, resource_pool and the datastores of its disks.
      type: dict
      returned: on vSphere
      sample: {datacenter: DC1, cluster: prod, host: esx2, resource_pool: Resources, datastores: [ssd-02]}
actions:
  description: What the run did (or, in check mode, would do).
  returned: always
  type: list
  elements: str
  sample: ['migrated (live) to qemu+ssh://root@hv2.example.com/system']
prechecks:
  description: What the pre-checks found (CPU verdict, networks, storage pools, memory), when a migration was needed.
  returned: when the VM had to move
  type: dict
  sample: {cpu: superset, networks: [default], storage_pools: [images],
           memory: {vm_mib: 2048, destination_available_mib: 60000, reserve_mib: 0}}
job:
  description:
    - Statistics of the completed migration, from the destination (libvirt job statistics with
      C(VIR_DOMAIN_JOB_STATS_COMPLETED)). Keys are present when libvirt reports them.
  returned: when a migration ran
  type: dict
  contains:
    time_elapsed_ms:
      description: Total time of the migration job, in milliseconds.
      type: int
    downtime_ms:
      description: Time the VM was paused during the switch-over, in milliseconds.
      type: int
    setup_time_ms:
      description: Setup time, in milliseconds.
      type: int
    data_transferred_bytes:
      description: Data transferred (memory and disks).
      type: int
    data_total_bytes:
      description: Total data to transfer.
      type: int
    memory_transferred_bytes:
      description: Memory transferred.
      type: int
    memory_iterations:
      description: Passes over the guest memory.
      type: int
    disk_transferred_bytes:
      description:
        - Disk data transferred (O(copy_storage)), as the source last reported it while the job ran (the destination
          does not report the disk copy); absent when the job ended before the module saw the copy.
      type: int
    postcopy:
      description: Whether the migration switched to post-copy.
      type: bool
    wall_time_ms:
      description: Wall-clock time the module waited for the migration, in milliseconds.
      type: int
    stats:
      description: All statistics libvirt reported, by libvirt's names.
      type: dict
  sample: {time_elapsed_ms: 312, downtime_ms: 17, data_transferred_bytes: 869711, memory_iterations: 2,
           postcopy: false, wall_time_ms: 1650}
'''

from ansible.module_utils import basic

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _reconcile, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_migrate
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_migrate import (
    TARGET_OPTIONS, VSphereMigrateDriver)
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def argument_spec():
    """The options; those of one backend are refused on the other when set (a switch: when not at its default)."""
    spec = _module.connection_argument_spec('libvirt', 'vsphere')
    spec.update(
        name=dict(type='str', required=True),
        # the host the VM moves to on both backends: a libvirt URI, an ESXi host name; host is its 0.2.0 vSphere name
        destination=dict(type='str', aliases=['host'], deprecated_aliases=[
            dict(name='host', version='1.0.0', collection_name='virtfleet.virt')]),
        **_module.only(
            'libvirt',
            destination_connect_uri=dict(type='str'),
            destination_username=dict(type='str'),
            destination_password=dict(type='str', no_log=True),
            mode=dict(type='str', default='live', choices=['live', 'offline']),
            migration_uri=dict(type='str'),
            listen_address=dict(type='str'),
            copy_storage=dict(type='str', choices=['all', 'incremental']),
            peer_to_peer=dict(type='bool', default=True),
            tunnelled=dict(type='bool', default=False),
            persistent=dict(type='bool', default=True),
            undefine_source=dict(type='bool', default=True),
            unsafe=dict(type='bool', default=False),
            auto_converge=dict(type='bool', default=False),
            post_copy=dict(type='bool', default=False),
            post_copy_after=dict(type='int'),
            post_copy_after_iterations=dict(type='int'),
            compression=dict(type='list', elements='str', choices=list(libvirt_migrate.COMPRESSION_METHODS)),
            parallel_connections=dict(type='int'),
            bandwidth=dict(type='int'),
            max_downtime=dict(type='int'),
            tls=dict(type='bool', default=False),
            tls_destination=dict(type='str')),
        timeout=dict(type='int', default=1800),
        **_module.only('libvirt', destination_memory_reserve=dict(type='raw')),
        **_module.only('vsphere', **dict((key, dict(type='str')) for key in TARGET_OPTIONS if key != 'destination')),
    )
    return spec


def _libvirt(module, session, name):
    params = module.params
    options = libvirt_migrate.options_from_params(params)
    destination = _module.CLIENT_FACTORIES['libvirt'](dict(
        uri=params['destination_connect_uri'] or params['destination'],
        username=params['destination_username'], password=params['destination_password']))
    try:
        driver = libvirt_migrate.LibvirtMigrateDriver(session.client, destination, options)
        result = _reconcile.relocate(driver, name, _reconcile.Options(check_mode=module.check_mode))
    finally:
        destination.close()
    return result + (('uri', 'hostname', 'state'),)


def _vsphere(module, session, name):
    driver = VSphereMigrateDriver(session.client, module.params, timeout=module.params['timeout'])
    return _reconcile.relocate(driver, name, _reconcile.Options(check_mode=module.check_mode)) + (
        ('hostname', 'state', 'vsphere'),)


# backend -> runner of the relocation: (outcome, before, after, diff keys)
BACKENDS = {'libvirt': _libvirt, 'vsphere': _vsphere}


def _given_as_typed(key):
    """Whether the task itself set option ``key`` (not None): ansible-core copies an alias's value over its
    option's, so ``module.params`` cannot tell ``destination`` given from ``destination`` filled in by ``host``."""
    # pylint: disable-next=protected-access
    return basic._load_params().get(key) is not None


def check_alias(module, backend):
    """``host``, the deprecated vSphere name of ``destination``: taken on vSphere only, never beside ``destination``."""
    if module.params.get('host') is None:
        return
    if _given_as_typed('destination'):
        raise SpecError('host', 'is the deprecated alias of destination; give destination only, not both')
    if backend != 'vsphere':
        raise SpecError('host', 'applies to the vsphere backend only (as the deprecated alias of destination), and '
                                'this task runs on %s; use destination, the libvirt URI of the destination host'
                        % backend)


def migrate(module, session):
    check_alias(module, session.backend)
    if session.backend == 'libvirt' and not module.params['destination']:
        raise SpecError('destination', 'the libvirt URI of the destination host is required on the libvirt backend')
    name = _vm_spec.validate_name(module.params['name'])
    outcome, before, after, diff_keys = BACKENDS[session.backend](module, session, name)
    _module.ensure_result(module, 'vm', outcome, before, after, diff_keys=diff_keys)


def main():
    _module.run(argument_spec(), migrate)


if __name__ == '__main__':
    main()

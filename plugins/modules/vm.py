#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: vm
short_description: Manage virtual machines declaratively (libvirt/KVM or VMware vSphere)
version_added: 0.1.0
description:
  - Creates, updates, starts, stops, pauses and removes a virtual machine from a structured spec;
    no XML is needed (O(xml) is an escape hatch for what the spec lacks).
  - Idempotent - options left out keep the VM's current value, and values libvirt generates
    (MAC addresses you did not set, PCI addresses, aliases, defaults) are never compared.
    A run with nothing to change writes nothing.
  - Updates are written to the persistent definition. When the VM runs, what can change live is
    applied live too (memory up to O(max_memory), vCPUs up to O(max_vcpus), adding and removing
    disks and interfaces, title, description, tags, autostart); anything else returns
    RV(reboot_required=true) until the guest restarts (see O(restart_if_required)).
  - Check mode predicts RV(ignore:changed) and RV(reboot_required) truthfully and changes nothing;
    C(--diff) shows the VM's state and spec before and after.
  - The same task runs on VMware vSphere when O(hostname) is set (see O(backend)). There, O(disks[].pool) is
    a datastore and O(disks[].volume) a file in it, O(interfaces[].network) is a port group, O(description) is
    the VM's notes and O(tags) are extraConfig entries C(virtfleet.tags.<name>) holding JSON strings.
    Memory and vCPUs grow live only with O(memory_hot_add)/O(cpu_hot_add); any other hardware change to a
    running VM is recorded as pending (RV(vm.pending_restart), RV(reboot_required=true)) and applied when this
    module next starts the VM, stops it, or updates it while stopped. O(state=absent) unregisters the VM and keeps its
    files, or deletes them with O(delete_volumes=true).
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.libvirt
  - virtfleet.virt.libvirt.wait
  - virtfleet.virt.libvirt.vm_wait
  - virtfleet.virt.vsphere
  - virtfleet.virt.vsphere.placement
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
      - Name of the VM. 1 to 64 characters - letters, digits and C(_.+-), starting with a letter or digit.
    type: str
    required: true
  state:
    description:
      - V(present) - the VM is defined; a new VM is left stopped and an existing one keeps its power state.
      - V(running), V(stopped), V(paused) - the VM is defined and in that power state. Starting waits until
        libvirt reports the VM running; stopping asks the guest to shut down (see O(force)).
      - V(absent) - the VM is stopped (as for V(stopped)) and undefined, with its NVRAM, managed-save image
        and snapshot metadata. Its disks are kept unless O(delete_volumes=true).
    type: str
    choices: [present, running, stopped, paused, absent]
    default: present
  domain_type:
    description:
      - libvirt only. Hypervisor type. Default for a new VM - V(kvm) when the host can use KVM, otherwise V(qemu) (TCG
        emulation).
    type: str
    choices: [kvm, qemu]
  arch:
    description: Guest CPU architecture. Default for a new VM - V(x86_64).
    type: str
  machine:
    description:
      - libvirt only. Machine type, such as V(pc) or V(q35). An alias matches the versioned type libvirt expands it to.
      - Default for a new VM - the host's default.
    type: str
  firmware:
    description: Firmware - V(bios) (SeaBIOS) or V(uefi) (OVMF, secure boot off).
    type: str
    choices: [bios, uefi]
  memory:
    description:
      - Memory of the VM, in MiB as an integer or as a string with a unit (V(2GiB), V(512MiB)).
      - Default for a new VM - 1024 MiB.
    type: raw
  max_memory:
    description:
      - libvirt only. Maximum memory (balloon ceiling), same units as O(memory). A running VM can change O(memory) live
        up to it.
      - Default - O(memory). Raising O(memory) past it raises it too.
    type: raw
  vcpus:
    description:
      - Number of virtual CPUs. Default for a new VM - 1.
    type: int
  max_vcpus:
    description:
      - libvirt only. Maximum vCPUs (hot-plug ceiling). Default - O(vcpus). Raising O(vcpus) past it raises it too.
    type: int
  cpu:
    description:
      - libvirt only. Guest CPU. Left out, libvirt's default applies (host-passthrough is not chosen for you).
    type: dict
    suboptions:
      mode:
        description: CPU mode.
        type: str
        choices: [host-model, host-passthrough, maximum, custom]
      model:
        description: CPU model name for mode V(custom), such as V(qemu64) or V(Skylake-Client).
        type: str
  boot:
    description: libvirt only. Boot device order.
    type: list
    elements: str
    choices: [hd, cdrom, network, fd]
  disks:
    description:
      - The VM's disks and CD-ROM drives. When given, the list is complete - disks not listed are detached
        (their images are kept). Left out, disks are not touched.
      - A listed disk is matched to an existing one by O(disks[].target), else by its source.
    type: list
    elements: dict
    suboptions:
      path:
        description: Image file or block device on the hypervisor host. Must exist.
        type: path
      pool:
        description: Storage pool of O(disks[].volume).
        type: str
      volume:
        description: Volume name in O(disks[].pool). Must exist.
        type: str
      device:
        description: V(disk) or V(cdrom). A cdrom may have no source (an empty drive) and is always read-only.
        type: str
        choices: [disk, cdrom]
        default: disk
      bus:
        description: Bus. Default V(virtio) for disks and V(sata) for cdroms.
        type: str
        choices: [virtio, sata, scsi, ide, usb]
      target:
        description: Device name in the guest's configuration, such as V(vda). Assigned when left out.
        type: str
      format:
        description: Image format. Default - the volume's format, else detected from the file (qcow2 or raw).
        type: str
        choices: [raw, qcow2]
      cache:
        description: Host cache mode.
        type: str
        choices: [default, none, writethrough, writeback, directsync, unsafe]
      readonly:
        description: Attach read-only.
        type: bool
      size:
        description:
          - Size of the disk, in MiB as an integer or as a string with a unit (V(10GiB)).
          - A disk with a size and no O(disks[].volume) is a new, empty disk that the backend creates
            (in O(disks[].pool) when given); on later runs it is matched to the disk it created, in order.
            A size larger than an existing disk's grows it; a disk is never shrunk.
          - vSphere only for now; on libvirt create the volume first (M(virtfleet.virt.volume)).
        type: raw
  interfaces:
    description:
      - Network interfaces. When given, the list is complete - interfaces not listed are removed.
        Left out, interfaces are not touched.
      - Each names exactly one of O(interfaces[].network), O(interfaces[].bridge) or O(interfaces[].direct).
      - A MAC address libvirt assigned stays stable - interfaces are matched by O(interfaces[].mac) when given,
        else by their source.
      - The same interfaces listed in another order are no change - each keeps its MAC and its PCI address,
        so the guest sees them as before.
    type: list
    elements: dict
    suboptions:
      network:
        description: libvirt virtual network name, or vSphere port group (standard or distributed). Must exist.
        type: str
      bridge:
        description: Host bridge name.
        type: str
      direct:
        description: Host interface for a macvtap (direct) connection.
        type: str
      mode:
        description: macvtap mode of a direct interface.
        type: str
        choices: [bridge, vepa, private, passthrough]
      model:
        description: Device model. Default V(virtio).
        type: str
        choices: [virtio, e1000, e1000e, rtl8139, vmxnet3]
      mac:
        description: MAC address. Assigned by libvirt (and kept) when left out.
        type: str
  graphics:
    description: libvirt only. Graphical console. V(none) removes it.
    type: dict
    suboptions:
      type:
        description: Protocol.
        type: str
        choices: [vnc, spice, none]
        default: vnc
      listen:
        description: Address to listen on.
        type: str
        default: 127.0.0.1
      port:
        description: TCP port; V(-1) picks a free one.
        type: int
        default: -1
  serial:
    description:
      - libvirt only. Serial ports; the first is also the guest console. When given, the list is complete.
    type: list
    elements: dict
    suboptions:
      type:
        description: V(pty) (a pseudo terminal, C(virsh console)), V(file) (output written to O(serial[].path)),
          V(unix) (a socket at O(serial[].path)) or V(tcp) (raw TCP on O(serial[].host)/O(serial[].port)).
        type: str
        choices: [pty, file, unix, tcp]
        default: pty
      path:
        description: File or socket path for V(file) and V(unix).
        type: path
      host:
        description: Listen address for V(tcp).
        type: str
      port:
        description: Listen port for V(tcp).
        type: int
  kernel:
    description:
      - libvirt only. Direct kernel boot - the path of a Linux kernel on the hypervisor host, which the VM boots
        instead of its disks' boot loader. An empty string removes it (and the VM boots from its disks again).
      - Changing it on a running VM takes effect at its next start (RV(reboot_required=true)).
    type: str
  initrd:
    description: libvirt only. The initial ramdisk that goes with O(kernel). An empty string removes it.
    type: str
  cmdline:
    description:
      - libvirt only. The kernel command line that goes with O(kernel), such as C(root=LABEL=root console=ttyS0).
        An empty string removes it.
    type: str
  guest_agent:
    description:
      - libvirt only. Give the VM the virtio-serial channel of the QEMU guest agent (C(org.qemu.guest_agent.0)),
        added to and removed from a running VM live.
      - When the agent runs in the guest, addresses come from it first, O(shutdown_mode=agent) shuts down
        through it, and vCPUs added to a running VM are onlined inside the guest through it (a hot-plugged
        vCPU otherwise stays offline in a Linux guest; when the agent does not answer, a warning says so).
    type: bool
  cloud_init:
    description:
      - libvirt only. cloud-init data for the guest. The module builds a NoCloud seed (an ISO 9660 image
        labelled C(cidata), as M(virtfleet.virt.cloud_init_seed) does) and keeps it as the raw volume
        C(<name>-cidata.iso) in O(cloud_init.pool), attached as a read-only virtio disk (every cloud kernel
        reads virtio disks; SATA CD-ROMs need an AHCI driver many cloud kernels lack).
      - The seed is rewritten only when its content changes (its content hash is stored in the image). A
        changed seed on a running VM returns RV(reboot_required=true), and a warning says that cloud-init runs
        its per-instance modules again only when the instance-id in O(cloud_init.meta_data) changes.
      - The C(cloud_init) of RV(vm.spec) shows the seed's pool, volume, content hash and file names, never the content.
      - The seed volume is deleted with the VM only with O(delete_volumes=true).
    type: dict
    suboptions:
      user_data:
        description:
          - The C(user-data) file - a string written as it is (a C(#cloud-config) string must be valid YAML,
            checked when PyYAML is on the host that runs the module), or a dictionary written as C(#cloud-config).
            Not logged.
          - Default - an empty C(#cloud-config).
        type: raw
      meta_data:
        description:
          - The C(meta-data) file, a YAML string or a dictionary. The instance-id defaults to the VM's name.
        type: raw
      network_config:
        description: The C(network-config) file (version 1 or 2), a YAML string or a dictionary. Left out, the guest
          uses DHCP.
        type: raw
      pool:
        description: The storage pool that keeps the seed volume. Default - the pool of the VM's first disk
          that is a pool volume.
        type: str
  autostart:
    description: libvirt only. Start the VM when the hypervisor starts.
    type: bool
  title:
    description: libvirt only. Short one-line title. An empty string removes it.
    type: str
  description:
    description: Free-form description. An empty string removes it.
    type: str
  tags:
    description:
      - Free-form key/value tags, stored in the VM's metadata under the collection's own XML namespace
        (C(https://virtfleet.dev/xmlns/virt/vm/1.0)). When given, the tags are complete; V({}) removes all.
      - O(virtfleet.virt.vm_info#module:tags) filters on them.
    type: dict
  xml:
    description:
      - libvirt only. Escape hatch for what the spec lacks - a C(<domain>) element whose children are merged into the
        definition. A top-level element replaces the element of the same name; each child of C(<devices>) is added
        unless an equal device exists. Elements the spec manages (memory, vcpu, os, metadata, ...) are refused.
      - Compared as a subset of the actual definition, so defaults libvirt adds do not cause changes.
    type: str
  template:
    description:
      - Whether the VM is a template - a source for O(clone_from) that is never started.
      - vSphere - the VM is marked as a template (C(MarkAsTemplate)), or back as a VM (C(MarkAsVirtualMachine)) in
        the resource pool of O(resource_pool), O(cluster) or O(host) when set, else of its host's cluster or host.
        A running VM is not made a template (stop it first).
      - libvirt - the VM is marked as a template in the VM's metadata; starting it is refused until
        O(template=false).
      - A template must be stopped; with O(state=running) or O(state=paused) it is refused.
      - Left out, the VM stays as it is; a new VM is not a template.
      - libvirt - removing a VM that is the source of linked clones with O(delete_volumes=true) is refused (their
        disks are overlays on its volumes); without O(delete_volumes) it is removed with a warning.
    type: bool
  clone_from:
    description:
      - Create the VM, when it does not exist, as a clone of this VM or template on the same connection. The
        source's spec is the base; every option the task sets overrides it. A VM that exists is never cloned again.
      - libvirt - each of the source's disks that is a volume of a storage pool becomes a new volume in the same
        pool, named C(<name>-<target>.qcow2) (C(<name>-<target>.img) for a full copy of a raw volume) - a full
        copy, or a qcow2 overlay on the source's volume with O(linked_clone=true); cdroms and read-only disks
        outside any pool are shared. The clone gets a fresh UUID and fresh MAC addresses; the source's cloud-init
        seed is not copied (set O(customization) or O(cloud_init)). The source must be shut off, unless
        O(linked_clone=true) and its disks are read-only. A full copy into a pool without the room for it is
        refused before anything is written; a volume that fails to be made removes the ones made before it.
      - vSphere - C(CloneVM_Task) from a VM or template; placement options as for a new VM. Left out, the clone
        goes where the source is (a template - the root resource pool of its host's cluster or host), on the
        source's datastore, in the source's folder. The source's memory, vCPUs, firmware, description and tags
        are the base; the source is recorded in the clone's extraConfig C(virtfleet.clone_of) and returned as
        RV(vm.cloned_from).
      - The clone records its source; a task naming another O(clone_from) for a VM that exists and was not cloned
        from it fails, so that a name clash is never taken for a clone.
    type: str
  linked_clone:
    description:
      - With O(clone_from), share the source's disks instead of copying them.
      - libvirt - each new volume is a qcow2 overlay whose backing file is the source's volume; the source's volume
        is never written afterwards, so keep the source stopped (a template).
      - vSphere - a linked clone from the source's current snapshot, which must exist (C(diskMoveType)
        C(createNewChildDiskBacking)).
      - Default - a full copy.
    type: bool
  customization:
    description:
      - The guest's identity, applied at its first boot.
      - libvirt - rendered into the VM's cloud-init seed (as O(cloud_init), one seed, so not both), with the
        instance-id C(iid-<UUID>); network-config version 2 when O(customization.networks) or
        O(customization.dns_servers) is set, each item matched to the VM's NIC of its index by MAC address
        (fixed when the VM is created); else cloud-init's DHCP on the first NIC. The spec returns it with
        C(user_data) replaced by C(user_data_sha256), so that neither the result nor a diff shows the user data.
      - vSphere - a Linux guest customization (C(CustomizeVM_Task), C(LinuxPrep)) applied while the VM is powered
        off; it takes effect at its next power-on. A clone is customized after the clone, before it is started.
        A running VM is not customized at once - the customization waits until this collection next stops or
        starts the VM (RV(reboot_required=true), C(customization) in RV(vm.pending_restart);
        O(restart_if_required=true) restarts it). The customization applied is kept in the VM's extraConfig
        C(virtfleet.customization), so it is applied once. Interfaces without an item in
        O(customization.networks) take DHCP; static addresses are IPv4. O(customization.ssh_authorized_keys)
        and O(customization.user_data) are refused - C(LinuxPrep) cannot carry them.
      - Applied once per VM instance. A changed customization of a VM that has booted returns
        RV(reboot_required=true) and a warning that it applies at the next first boot of the instance (libvirt - the
        guest's cloud-init does not re-run its per-instance modules for the same instance-id).
      - V({}) (every key left out) is a customization too - the defaults of each key - vSphere names the guest
        after the VM and gives every interface DHCP; libvirt writes a seed with the instance-id alone (cloud-init's
        DHCP on the first NIC, the image's host name).
      - vSphere refuses a new customization while an earlier one is pending (customized, not powered on since -
        C(CustomizationPending)); the task then fails naming the way out - power the VM on once (a template - set
        O(template=false) first).
    type: dict
    suboptions:
      hostname:
        description: The guest's host name (one DNS label).
        type: str
      domain:
        description: The guest's DNS domain.
        type: str
      dns_servers:
        description: DNS server addresses.
        type: list
        elements: str
      networks:
        description:
          - One item per network interface, in the order of O(interfaces) (of the source's interfaces for a clone).
        type: list
        elements: dict
        suboptions:
          dhcp:
            description: Take the address from DHCP; O(customization.networks[].ip) must be left out.
            type: bool
            default: false
          ip:
            description: A static IPv4 or IPv6 address, alone or as C(address/prefix).
            type: str
          prefix:
            description: The prefix length of the static address (C(24) for a /24); required with a static address.
            type: int
          gateway:
            description: The default gateway; must be in the network of O(customization.networks[].ip).
            type: str
      ssh_authorized_keys:
        description:
          - Public keys for the default user's C(authorized_keys) (libvirt - cloud-config C(ssh_authorized_keys),
            added to those of O(customization.user_data); the image names its default user, C(system_info) in
            O(customization.user_data) can rename it).
        type: list
        elements: str
      user_data:
        description:
          - Extra cloud-config, a dictionary or a YAML string of one, merged with what the other suboptions
            render. Not logged.
        type: raw
  restart_if_required:
    description:
      - When a change cannot be applied to the running guest, restart it (graceful shutdown under
        O(shutdown_timeout) and O(force), then start) instead of returning RV(reboot_required=true).
    type: bool
    default: false
  delete_volumes:
    description:
      - With O(state=absent), also delete the VM's disks that are volumes of a libvirt storage pool
        (not its cdroms). Disks outside any pool are kept and reported in a warning.
    type: bool
    default: false
seealso:
  - module: virtfleet.virt.vm_info
'''

EXAMPLES = r'''
- name: A small VM from an existing image, running
  virtfleet.virt.vm:
    name: web1
    state: running
    memory: 2GiB
    vcpus: 2
    disks:
      - path: /var/lib/libvirt/images/web1.qcow2
    interfaces:
      - network: default
    tags:
      role: web
      fleet: shop

- name: Grow memory live (up to max_memory) and vCPUs
  virtfleet.virt.vm:
    name: web1
    memory: 3GiB
    max_memory: 4GiB
    vcpus: 2
    max_vcpus: 4
  register: web1

- name: Stop it, powering it off if it ignores the shutdown request for 60 s
  virtfleet.virt.vm:
    name: web1
    state: stopped
    shutdown_timeout: 60
    force: true

- name: Remove it with its pool volumes
  virtfleet.virt.vm:
    name: web1
    state: absent
    force: true
    delete_volumes: true

- name: Set the connection once for several tasks
  module_defaults:
    group/virtfleet.virt.all:
      uri: qemu+ssh://root@hv1.example.com/system
  block:
    - name: Ensure db1 runs
      virtfleet.virt.vm:
        name: db1
        state: running
'''

RETURN = r'''
vm:
  description: The VM after the run (in check mode, as predicted). Empty after O(state=absent).
  returned: always
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
      description: Power state - running, paused, stopped, shutting_down, crashed or pmsuspended.
      type: str
      sample: running
    spec:
      description: The normalized persistent spec, in the shape of this module's options.
      type: dict
      sample: {memory: 2048, max_memory: 2048, vcpus: 2, max_vcpus: 2, disks: [], interfaces: []}
    pending_restart:
      description: Spec fields whose new value the running guest has not picked up yet.
      type: list
      elements: str
      sample: [max_memory]
    addresses:
      description:
        - Guest IP addresses from the DHCP leases of libvirt's networks, or else the guest agent (vSphere - VMware
          Tools), when known; C(source) says which.
      type: list
      elements: dict
      sample: [{interface: vnet0, mac: '52:54:00:12:34:56', address: 192.168.122.10, prefix: 24, source: lease}]
    cloned_from:
      description:
        - The VM or template this VM was cloned from by O(clone_from) - its name, its UUID (vSphere - its instance
          UUID) when cloned, and whether the clone is linked; V(null) for a VM that is not such a clone.
        - libvirt - kept in the VM's metadata; vSphere - in its extraConfig C(virtfleet.clone_of).
      type: dict
      returned: always
      sample: {name: tmpl-debian12, uuid: 8f1d6e0c-1c70-4c5e-9e1b-2d8e6a3f0c11, linked: true}
    vsphere:
      description:
        - vSphere only. Where the VM is and its vSphere-only settings; C(guest_hostname) is the host name VMware
          Tools report (after a customization, the new one). A template has no C(resource_pool).
      type: dict
      returned: on vSphere
      sample: {moid: vm-42, instance_uuid: 5012a1b2-0000-4c5e-9e1b-2d8e6a3f0c11, datacenter: DC0, cluster: DC0_C0,
               host: DC0_C0_H0, resource_pool: Resources, folder: /DC0/vm, datastore: LocalDS_0,
               guest_id: otherGuest64, memory_hot_add: false, cpu_hot_add: false, guest_hostname: web1}
address:
  description:
    - With O(wait_for_address=true), the IPv4 address the run waited for, where it came from (C(agent),
      C(lease), C(arp); vSphere C(tools)) and after how many seconds of waiting (C(waited)).
  returned: with O(wait_for_address=true), outside check mode
  type: dict
  sample: {address: 192.168.122.10, interface: vnet0, mac: '52:54:00:12:34:56', prefix: 24, source: lease, waited: 31.5}
reboot_required:
  description: True when the running guest needs a restart to pick up its persistent configuration.
  returned: unless O(state=absent)
  type: bool
  sample: false
actions:
  description: What the run did (or, in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: [created, start]
deleted_volumes:
  description: Paths of the volumes deleted with O(delete_volumes=true).
  returned: when O(state=absent) and the VM existed
  type: list
  elements: str
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vm_backends
from ansible_collections.virtfleet.virt.plugins.module_utils._vm_options import (
    refuse_new_disks, vm_options, vm_request, vm_wait_options, vsphere_options)


def argument_spec():
    spec = _module.connection_argument_spec('libvirt', 'vsphere')
    spec.update(_module.wait_argument_spec())
    spec.update(vm_wait_options())
    spec.update(vm_options())
    spec['disks']['options']['size'] = dict(type='raw')
    spec.update(vsphere_options())
    return spec


def request(module, backend):
    refuse_new_disks(backend, module.params)
    return vm_request(module.params, _module.reconcile_options(module))


def main():
    _module.run(argument_spec(), _module.ensure('vm', vm_backends.DRIVERS, request))


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: host_info
short_description: Facts about a hypervisor host
version_added: 0.1.0
description:
  - Reads the physical server behind a connection - CPU model and topology, memory, NUMA cells,
    huge pages, whether KVM is usable and whether nested virtualization is on, libvirt and
    hypervisor versions, and the domain types the host supports per architecture.
  - On VMware vSphere, the same facts of one ESXi host (chosen with O(host)), read in one
    PropertyCollector query. ESXi is not KVM - C(host.kvm.usable) is V(false) and C(host.kvm.device),
    C(host.kvm.nested) and C(host.versions.libvirt) are null; ESXi reports no huge page pools
    (C(host.hugepages) is empty); C(host.domain_types) names V(vmware) guests for the host's architecture.
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.libvirt
  - virtfleet.virt.vsphere
attributes:
  check_mode:
    support: full
    details: Reads only.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  host:
    description:
      - vSphere only. Name of the ESXi host to describe, as vCenter lists it (the name the
        virtfleet.virt.vm module's O(virtfleet.virt.vm#module:host) option places a VM with).
      - Needed when the connection manages more than one ESXi host (a vCenter); not needed when
        O(hostname) is an ESXi host itself.
    type: str
    aliases: [esxi_hostname]
  datacenter:
    description: vSphere only. Look for O(host) in this datacenter only (needed when two datacenters have a host of that name).
    type: str
  cluster:
    description: vSphere only. Look for O(host) in this cluster only; without O(host), the cluster must have one host.
    type: str
notes:
  - C(host.kvm.device) and C(host.kvm.nested) are read from the machine that runs the module, so they
    are only reported (not null) when O(uri) points at that machine.
seealso:
  - module: virtfleet.virt.vm_info
'''

EXAMPLES = r'''
- name: Read the hypervisor's facts
  virtfleet.virt.host_info:
  register: hv

- name: Read an ESXi host's facts through vCenter
  virtfleet.virt.host_info:
    hostname: vcenter.example.com
    username: administrator@vsphere.local
    password: "{{ vcenter_password }}"
    host: esx1.example.com
  register: esx

- name: Refuse to deploy where KVM is not usable
  ansible.builtin.assert:
    that: hv.host.kvm.usable
    fail_msg: "{{ hv.host.hostname }} cannot run KVM guests"
'''

RETURN = r'''
host:
  description: The host's facts.
  returned: always
  type: dict
  contains:
    backend:
      description: The backend that answered.
      type: str
      sample: libvirt
    hostname:
      description: Host name of the hypervisor.
      type: str
    uuid:
      description: Host UUID as the hypervisor reports it.
      type: str
    cpu:
      description: CPU model, vendor, arch, count (logical CPUs), sockets, cores_per_socket, threads_per_core, mhz.
      type: dict
      sample: {model: Skylake-Client-IBRS, vendor: Intel, arch: x86_64, count: 8, sockets: 1,
               cores_per_socket: 4, threads_per_core: 2, mhz: 2600}
    memory:
      description: total_mib, and free_mib - what new guests can use (free memory plus buffers and page cache).
      type: dict
    numa:
      description: NUMA cells with id, memory_mib and the ids of their cpus.
      type: list
      elements: dict
    hugepages:
      description: Huge page pools (page sizes above 4 KiB) with size_kib, total and free pages.
      type: list
      elements: dict
    kvm:
      description: >-
        usable (the hypervisor can run domain type kvm), device (/dev/kvm exists) and nested
        (the kvm_intel/kvm_amd module allows nested guests; null when unknown).
        On ESXi usable is false and device and nested are null.
      type: dict
      sample: {usable: true, device: true, nested: null}
    versions:
      description: >-
        libvirt and hypervisor versions and the hypervisor type. On vSphere, hypervisor_type is ESXi,
        hypervisor the ESXi version, libvirt null, and hypervisor_build, vcenter and vcenter_build
        (null when connected to the ESXi host itself) are added.
      type: dict
      sample: {libvirt: 9.0.0, hypervisor: 7.2.22, hypervisor_type: QEMU}
    vsphere:
      description: >-
        vSphere only - the host's datacenter, cluster (null for a standalone host), moid,
        connection_state, power_state, maintenance_mode and dns_hostname.
      type: dict
      returned: on vSphere
      sample: {datacenter: DC0, cluster: DC0_C0, moid: host-34, connection_state: connected,
               power_state: poweredOn, maintenance_mode: false, dns_hostname: esx1}
    domain_types:
      description: Domain types the host supports, per guest architecture.
      type: dict
      sample: {x86_64: [kvm, qemu]}
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_host import LibvirtHostDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_host import VSphereHostDriver

# backend -> factory(client, params) of the host driver
DRIVERS = {
    'libvirt': lambda client, params: LibvirtHostDriver(client),
    'vsphere': VSphereHostDriver,
}


def argument_spec():
    spec = _module.connection_argument_spec('libvirt', 'vsphere')
    spec.update(_module.only('vsphere', host=dict(type='str', aliases=['esxi_hostname']),
                             datacenter=dict(type='str'), cluster=dict(type='str')))
    return spec


def describe(module, session):
    module.exit_json(changed=False, host=_module.backend_driver(DRIVERS, session, module.params).describe())


def main():
    _module.run(argument_spec(), describe)


if __name__ == '__main__':
    main()

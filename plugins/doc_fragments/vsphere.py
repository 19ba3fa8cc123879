# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options of the VMware vSphere backend
    # (module_utils/_module.py: connection_argument_spec('libvirt', 'vsphere')).
    DOCUMENTATION = r'''
options:
  backend:
    description:
      - The hypervisor backend this task talks to.
      - V(auto) - VMware vSphere when O(hostname) is set (also through E(VMWARE_HOST)), else libvirt.
      - Options that only one backend understands fail on the other with a message naming them.
    type: str
    choices: [auto, libvirt, vsphere]
    default: auto
  hostname:
    description:
      - vSphere only. Name or address of the vCenter Server (or ESXi host) to manage.
      - Setting it selects the vSphere backend (see O(backend)).
      - O(username) and O(password) are the vSphere user's; on vSphere, when they are not set, the
        environment variables E(VMWARE_USER) and E(VMWARE_PASSWORD) are used.
      - One session is opened per module run and logged out at its end.
      - If not set, the environment variable E(VMWARE_HOST) is used.
    type: str
  port:
    description:
      - vSphere only. TCP port of the vSphere API. Default V(443).
      - If not set, the environment variable E(VMWARE_PORT) is used.
    type: int
  validate_certs:
    description:
      - vSphere only. Verify the TLS certificate of O(hostname). Default V(true).
      - The certificate must be signed by a CA that the managed host trusts, by the CA bundle in
        O(ca_path), or by the bundle that the environment variable E(SSL_CERT_FILE) names.
      - V(false) skips verification; only for tests.
      - If not set, the environment variable E(VMWARE_VALIDATE_CERTS) is used.
    type: bool
  ca_path:
    description:
      - vSphere only. PEM file of the CA certificates to trust for O(hostname), instead of the system's.
      - If not set, the environment variable E(VMWARE_CA_PATH) is used.
    type: path
  proxy_host:
    description:
      - vSphere only. HTTP proxy to reach O(hostname) through (HTTP CONNECT).
      - If not set, the environment variable E(VMWARE_PROXY_HOST) is used.
    type: str
  proxy_port:
    description:
      - vSphere only. Port of O(proxy_host). Default V(80).
      - If not set, the environment variable E(VMWARE_PROXY_PORT) is used.
    type: int
requirements:
  - pyvmomi >= 8.0 on the host that runs the module (vSphere only)
notes:
  - On vSphere, objects are found with one PropertyCollector query per run, not one request per object.
'''

    # Placement and VM settings of the vm module on vSphere.
    PLACEMENT = r'''
options:
  datacenter:
    description:
      - vSphere only. Datacenter of the VM. Needed when vCenter has more than one.
    type: str
  cluster:
    description:
      - vSphere only. Cluster a new VM is placed in (DRS picks the host unless O(host) is set).
      - Needed for a new VM, as O(cluster) or O(host), when the datacenter has more than one cluster or host.
    type: str
  host:
    description:
      - vSphere only. ESXi host a new VM is placed on (in O(cluster) when both are set).
    type: str
  resource_pool:
    description:
      - vSphere only. Resource pool of a new VM, by name (or path below the cluster or host).
        Default - the cluster's or host's root pool.
    type: str
  folder:
    description:
      - vSphere only. VM folder of a new VM - a path below the datacenter's VM folder (V(prod/web)) or an
        absolute inventory path (V(/DC1/vm/prod/web)). It must exist. Default - the datacenter's VM folder.
      - Also tells apart VMs of the same name in different folders.
    type: str
  datastore:
    description:
      - vSphere only. Datastore of a new VM's configuration files, and of its new disks that name no
        O(disks[].pool). Needed when more than one datastore is reachable.
      - O(datacenter), O(cluster), O(host), O(resource_pool), O(folder) and O(datastore) place a new VM;
        an existing VM is not moved (they are still checked to exist).
    type: str
  guest_id:
    description:
      - vSphere only. Guest OS identifier, such as V(otherGuest64) or V(ubuntu64Guest). Default for a new VM -
        V(otherGuest64). Changed only while the VM is stopped (else pending restart).
    type: str
  memory_hot_add:
    description:
      - vSphere only. Let the running VM grow its memory (O(memory) raised live). Default for a new VM - V(false).
        Changed only while the VM is stopped (else pending restart).
    type: bool
  cpu_hot_add:
    description:
      - vSphere only. Let the running VM take more vCPUs live. Default for a new VM - V(false).
        Changed only while the VM is stopped (else pending restart).
    type: bool
'''

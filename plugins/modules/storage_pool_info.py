#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_pool_info
short_description: List libvirt storage pools, or vSphere datastores, in the shape virtfleet.virt.storage_pool returns
version_added: 0.2.0
description:
  - Reads storage pools, optionally filtered by name, type and state.
  - Each pool is returned exactly as RV(virtfleet.virt.storage_pool#module:pool) describes it.
  - On VMware vSphere, datastores as pools, read in one PropertyCollector query - C(state) is V(active) when the
    datastore is accessible, C(spec.type) the datastore type in lower case (V(vmfs), V(nfs), V(nfs41), V(vsan),
    V(vvol), V(pmem), V(other)), C(spec.path) its URL, C(spec.source) the NFS server and export (C(hosts), C(dir),
    C(format)) or the VMFS extents (C(devices)), C(spec.hosts) the ESXi hosts that mount it, C(capacity) and
    C(available) vSphere's capacity and free space in bytes, C(allocation) their difference; C(uuid) is the VMFS
    UUID (else null), C(spec.autostart) and C(volumes) are null (datastores are not browsed). C(vsphere) adds
    moid, datacenter, hosts (the ESXi hosts that mount it), uncommitted bytes and maintenance_mode.
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
  name:
    description: Only the pool of this name (an empty list when there is none).
    type: str
  types:
    description:
      - Only pools of these types. V(dir) to V(rbd) are libvirt pool types, V(vmfs) to V(other) vSphere datastore types.
    type: list
    elements: str
    choices: [dir, fs, netfs, logical, disk, iscsi, rbd, vmfs, nfs, nfs41, vsan, vvol, pmem, other]
  states:
    description: Only pools in one of these states.
    type: list
    elements: str
    choices: [active, inactive]
  datacenter:
    description: vSphere only. Only datastores mounted on hosts of this datacenter.
    type: str
  cluster:
    description: vSphere only. Only datastores mounted on a host of this cluster.
    type: str
  host:
    description: vSphere only. Only datastores mounted on this ESXi host.
    type: str
    aliases: [esxi_hostname]
seealso:
  - module: virtfleet.virt.storage_pool
'''

EXAMPLES = r'''
- name: Active directory pools
  virtfleet.virt.storage_pool_info:
    types: [dir]
    states: [active]
  register: found

- name: Datastores of a vSphere cluster with less than 100 GiB free
  virtfleet.virt.storage_pool_info:
    hostname: vcenter.example.com
    username: administrator@vsphere.local
    password: "{{ vcenter_password }}"
    cluster: prod
  register: stores

- name: Their free space
  ansible.builtin.debug:
    msg: "{{ found.pools | items2dict(key_name='name', value_name='available') }}"
'''

RETURN = r'''
pools:
  description: The matching pools, sorted by name, each as RV(virtfleet.virt.storage_pool#module:pool).
  returned: always
  type: list
  elements: dict
  sample: [{name: images, state: active, spec: {type: dir, path: /srv/images, source: {}, autostart: true},
            volumes: [web1.qcow2], capacity: 107374182400, allocation: 1073741824, available: 106300440576,
            pending_restart: false, uuid: 0b3c3a8e-6a34-4a39-9a2f-7c0f4e1a2b3c}]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _storage_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_pool import LibvirtPoolDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_datastore import (
    DATASTORE_TYPES, VSphereDatastoreDriver)
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

TYPES = {'libvirt': sorted(_storage_spec.POOL_TYPES), 'vsphere': list(DATASTORE_TYPES)}


def argument_spec():
    spec = _module.connection_argument_spec('libvirt', 'vsphere')
    spec.update(
        name=dict(type='str'),
        types=dict(type='list', elements='str', choices=sorted(TYPES['libvirt'] + TYPES['vsphere'])),
        states=dict(type='list', elements='str', choices=list(_storage_spec.POOL_STATES)),
    )
    spec.update(_module.only('vsphere', datacenter=dict(type='str'), cluster=dict(type='str'),
                             host=dict(type='str', aliases=['esxi_hostname'])))
    return spec


def _libvirt(session, params):
    driver = LibvirtPoolDriver(session.client)
    return [driver.describe(actual) for actual in _module.found(driver, params['name'])]


def _vsphere(session, params):
    return VSphereDatastoreDriver(session.client, params).list(params['name'])


# backend -> lister of the pools (describe views) the options select
BACKENDS = {'libvirt': _libvirt, 'vsphere': _vsphere}


def list_pools(module, session):
    params = module.params
    wrong = [t for t in params['types'] or [] if t not in TYPES[session.backend]]
    if wrong:
        raise SpecError('types', '%s %s not a type of %s; types there: %s' % (
            ', '.join(wrong), 'is' if len(wrong) == 1 else 'are',
            'libvirt storage pools' if session.backend == 'libvirt' else 'vSphere datastores',
            ', '.join(TYPES[session.backend])))
    pools = [pool for pool in BACKENDS[session.backend](session, params)
             if (not params['types'] or pool['spec']['type'] in params['types'])
             and (not params['states'] or pool['state'] in params['states'])]
    module.exit_json(changed=False, pools=sorted(pools, key=lambda pool: pool['name']))


def main():
    _module.run(argument_spec(), list_pools)


if __name__ == '__main__':
    main()

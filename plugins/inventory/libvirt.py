# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: libvirt
short_description: Guests of one or more libvirt hypervisors as inventory hosts
version_added: 0.1.0
description:
  - Reads the VMs of every listed libvirt URI and adds each as a host, with its normalized
    description (the shape RV(virtfleet.virt.vm#module:vm) returns) in the host variable C(virtfleet_vm).
  - Groups hosts by power state (C(state_running), C(state_stopped), ...), by tag
    (C(tag_<key>_<value>)) and by hypervisor (C(hypervisor_<hostname>)); C(keyed_groups),
    C(groups) and C(compose) add more.
  - Sets C(ansible_host) to the guest's first IPv4 address (not loopback or link-local) from the DHCP leases of
    libvirt's networks or else the guest agent, when known, and C(virtfleet_address_source) to where it came
    from (C(lease) or C(agent)).
  - The inventory source is a YAML file whose name ends in C(libvirt.yml) or C(libvirt.yaml).
author:
  - virtfleet.virt developers (@virtfleet)
requirements:
  - libvirt-python and lxml on the controller
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin; must be C(virtfleet.virt.libvirt).
    type: str
    required: true
    choices: [virtfleet.virt.libvirt]
  uris:
    description: libvirt URIs to read, in order. A VM name found on two URIs is added once, from the first.
    type: list
    elements: str
    default: [qemu:///system]
  states:
    description: Only VMs in one of these power states.
    type: list
    elements: str
    default: []
  tags:
    description: Only VMs that carry all of these tags with these values.
    type: dict
    default: {}
  tag_groups:
    description: Add the C(tag_<key>_<value>) groups.
    type: bool
    default: true
'''

EXAMPLES = r'''
# inventory/fleet.libvirt.yml
plugin: virtfleet.virt.libvirt
uris:
  - qemu+ssh://root@hv1.example.com/system
  - qemu+ssh://root@hv2.example.com/system
states: [running]
cache: true
cache_timeout: 300
keyed_groups:
  - key: virtfleet_vm.spec.tags.role | default('none')
    prefix: role
'''

import re

from ansible.errors import AnsibleError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.virtfleet.virt.plugins.module_utils._clients.libvirt import HAS_LIBVIRT, LibvirtClient
from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec, _xml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_vm import LibvirtVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import VirtError

_UNSAFE = re.compile(r'[^A-Za-z0-9_]')


def _group_name(*parts):
    return _UNSAFE.sub('_', '_'.join(str(p) for p in parts))


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = 'virtfleet.virt.libvirt'

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(('libvirt.yml', 'libvirt.yaml'))

    def _read_uri(self, uri):
        client = LibvirtClient(uri)
        try:
            driver = LibvirtVMDriver(client)
            hypervisor = client.hostname()
            vms = [driver.describe(actual) for actual in driver.list()]
        except VirtError as exc:
            raise AnsibleError('virtfleet.virt.libvirt inventory: %s' % exc.msg)
        finally:
            client.close()
        return {'uri': uri, 'hypervisor': hypervisor, 'vms': vms}

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        if not HAS_LIBVIRT or not _xml.HAS_LXML:
            raise AnsibleError('virtfleet.virt.libvirt inventory needs libvirt-python and lxml on the controller')
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        sources = None
        if use_cache:
            try:
                sources = self._cache[cache_key]
            except KeyError:
                sources = None
        if sources is None:
            sources = [self._read_uri(uri) for uri in self.get_option('uris')]
            if self.get_option('cache'):
                self._cache[cache_key] = sources
        self._populate(sources)

    def _wanted(self, vm):
        states = self.get_option('states')
        if states and vm['state'] not in states:
            return False
        tags = self.get_option('tags') or {}
        return all(vm['spec'].get('tags', {}).get(k) == str(v) for k, v in tags.items())

    def _populate(self, sources):
        strict = self.get_option('strict')
        seen = set()
        for source in sources:
            for vm in source['vms']:
                if vm['name'] in seen or not self._wanted(vm):
                    continue
                seen.add(vm['name'])
                host = self.inventory.add_host(vm['name'])
                self.inventory.set_variable(host, 'virtfleet_vm', vm)
                self.inventory.set_variable(host, 'virtfleet_uri', source['uri'])
                self.inventory.set_variable(host, 'virtfleet_hypervisor', source['hypervisor'])
                ipv4 = [a for a in vm.get('addresses', []) if _vm_spec.usable_ipv4(a.get('address'))]
                if ipv4:
                    self.inventory.set_variable(host, 'ansible_host', ipv4[0]['address'])
                    self.inventory.set_variable(host, 'virtfleet_address_source', ipv4[0].get('source'))
                for group in [_group_name('state', vm['state']), _group_name('hypervisor', source['hypervisor'])]:
                    self.inventory.add_group(group)
                    self.inventory.add_child(group, host)
                if self.get_option('tag_groups'):
                    for key, value in sorted(vm['spec'].get('tags', {}).items()):
                        group = _group_name('tag', key, value)
                        self.inventory.add_group(group)
                        self.inventory.add_child(group, host)
                hostvars = self.inventory.get_host(host).get_vars()
                self._set_composite_vars(self.get_option('compose'), hostvars, host, strict=strict)
                self._add_host_to_composed_groups(self.get_option('groups'), hostvars, host, strict=strict)
                self._add_host_to_keyed_groups(self.get_option('keyed_groups'), hostvars, host, strict=strict)

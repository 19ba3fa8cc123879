# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: vsphere
short_description: VMs of a vCenter Server or ESXi host as inventory hosts
version_added: 0.3.0
description:
  - Reads every VM of one vCenter Server (or ESXi host) with one PropertyCollector query (one
    C(RetrievePropertiesEx), paged by the server) and adds each as a host, with its normalized description
    (the shape RV(virtfleet.virt.vm#module:vm) returns on vSphere) in the host variable C(virtfleet_vm).
  - Hosts are named by the VM name (see O(host_name) and O(host_name_template) for other names). A second
    VM that gets a name already taken (two VMs of one name in two folders) is skipped with a warning, or
    fails the source with O(strict=true).
  - Groups hosts by power state (C(state_running), C(state_stopped), C(state_paused)), cluster
    (C(cluster_<name>)), ESXi host (C(esxi_<name>)), datacenter (C(datacenter_<name>)), VM folder
    (C(folder_<path>), the inventory path with C(/) as C(_), for example C(folder_DC0_vm_web)), tag
    (C(tag_<key>_<value>), the tags RV(virtfleet.virt.vm#module:vm) keeps in the VM's extraConfig) and, when
    O(include_templates=true), C(templates). Characters other than letters, digits and C(_) become C(_).
    C(keyed_groups), C(groups) and C(compose) add more.
  - Sets C(ansible_host) to the first IPv4 address (not loopback or link-local) VMware Tools report for a
    running VM, when known, and C(virtfleet_address_source) to C(tools).
  - The inventory source is a YAML file whose name ends in C(vsphere.yml) or C(vsphere.yaml).
author:
  - virtfleet.virt developers (@virtfleet)
requirements:
  - pyvmomi on the controller
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin; must be C(virtfleet.virt.vsphere).
    type: str
    required: true
    choices: [virtfleet.virt.vsphere]
  hostname:
    description:
      - Name or address of the vCenter Server (or ESXi host) to read.
    type: str
    env:
      - name: VMWARE_HOST
  port:
    description: HTTPS port of O(hostname).
    type: int
    default: 443
    env:
      - name: VMWARE_PORT
  username:
    description: The vSphere user to log in as.
    type: str
    aliases: [user]
    env:
      - name: VMWARE_USER
  password:
    description:
      - The password of O(username). It never appears in a message of this plugin; keep it in an
        Ansible Vault or in E(VMWARE_PASSWORD) rather than in the source file.
    type: str
    aliases: [pass, pwd]
    env:
      - name: VMWARE_PASSWORD
  validate_certs:
    description:
      - Verify the TLS certificate of O(hostname). It must be signed by a CA that the controller trusts,
        by the CA bundle in O(ca_path), or by the bundle that the environment variable E(SSL_CERT_FILE) names.
      - V(false) skips verification; only for tests.
    type: bool
    default: true
    env:
      - name: VMWARE_VALIDATE_CERTS
  ca_path:
    description: PEM file of the CA certificates to trust for O(hostname), instead of the system's.
    type: path
    env:
      - name: VMWARE_CA_PATH
  proxy_host:
    description: HTTP proxy to reach O(hostname) through (HTTP CONNECT).
    type: str
    env:
      - name: VMWARE_PROXY_HOST
  proxy_port:
    description: Port of O(proxy_host).
    type: int
    default: 80
    env:
      - name: VMWARE_PROXY_PORT
  host_name:
    description:
      - What names a host in the inventory.
      - V(name) - the VM name.
      - V(uuid) - the VM's BIOS UUID (C(config.uuid)).
      - V(instance_uuid) - the vCenter instance UUID (C(config.instanceUuid)), unique in one vCenter.
      - V(moid) - the managed object id (C(vm-42)).
      - V(path) - the inventory path, for example C(/DC0/vm/web/web1), unique in one vCenter.
    type: str
    choices: [name, uuid, instance_uuid, moid, path]
    default: name
  host_name_template:
    description:
      - A Jinja2 expression, as in O(compose), that names a host instead of O(host_name), evaluated on the host
        variables C(virtfleet_vm) and C(virtfleet_vsphere_server), for example
        C(virtfleet_vm.name ~ '.' ~ virtfleet_vm.vsphere.datacenter | lower).
      - A VM for which it yields nothing (or fails) is named by O(host_name) (an error with O(strict=true)).
    type: str
  include_templates:
    description: Add the VM templates too (in the group C(templates)); they are left out by default.
    type: bool
    default: false
  states:
    description: Only VMs in one of these power states (V(running), V(stopped), V(paused)).
    type: list
    elements: str
    default: []
  tags:
    description: Only VMs that carry all of these tags (those of RV(virtfleet.virt.vm#module:vm)) with these values.
    type: dict
    default: {}
  filters:
    description:
      - Jinja2 expressions, as in O(compose), on the host variables; only VMs for which every one is true
        are added, for example C(virtfleet_vm.vsphere.cluster == 'prod').
      - An expression that fails counts as false (an error with O(strict=true)).
    type: list
    elements: str
    default: []
  tag_groups:
    description: Add the C(tag_<key>_<value>) groups.
    type: bool
    default: true
'''

EXAMPLES = r'''
---
# inventory/prod.vsphere.yml; the password comes from VMWARE_PASSWORD
plugin: virtfleet.virt.vsphere
hostname: vcenter.example.com
username: ansible@vsphere.local
states: [running]
tags:
  env: prod
cache: true
cache_timeout: 300
keyed_groups:
  - key: virtfleet_vm.spec.tags.role | default('none')
    prefix: role
compose:
  ansible_user: "'admin'"
filters:
  - virtfleet_vm.vsphere.cluster == 'C0'

---
# inventory/all.vsphere.yml: hosts named by their instance UUID (VM names need not be unique across folders)
plugin: virtfleet.virt.vsphere
hostname: vcenter.example.com
host_name: instance_uuid
include_templates: true
'''

import re

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._clients import vsphere as vsphere_client
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_vm import VSphereVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import VirtError

_UNSAFE = re.compile(r'[^A-Za-z0-9_]')
# what the plugin reads of each VM besides what the vm module reads: the datastores it uses
VM_PROPS = vsphere_client.VM_FULL + ('datastore',)
STATES = ('running', 'stopped', 'paused')
NAME = 'virtfleet.virt.vsphere'


def _group_name(*parts):
    return _UNSAFE.sub('_', '_'.join(str(p) for p in parts))


def _facts(driver, inv, row):
    """The cacheable description of one VM: the vm module's shape plus what the plugin groups by."""
    actual = driver.from_row(row, inv)
    vm = driver.describe(actual)
    vm['vsphere'].update(
        template=bool(row.get('config.template')),
        path=inv.path(row['moid']) if row.get('parent') in inv.by_id else None,
        datastores=sorted((inv.get(moid) or {}).get('name', moid) for moid in row.get('datastore') or []),
        tools_running=row.get('guest.toolsRunningStatus') == 'guestToolsRunning')
    ipv4 = [a for a in vm.get('addresses', []) if _vm_spec.usable_ipv4(a.get('address'))]
    vm['guest_ip'] = ipv4[0]['address'] if ipv4 else None
    return vm


def read_vms(client):
    """Every VM and template of the server, described (one PropertyCollector query)."""
    driver = VSphereVMDriver(client)
    inv = driver.inventory(VM_PROPS)
    return [_facts(driver, inv, row) for row in inv.rows('vms') if row.get('config.hardware.device') is not None]


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = NAME

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(('vsphere.yml', 'vsphere.yaml'))

    # -- configuration ------------------------------------------------------------------------
    def _option(self, name):
        value = self.get_option(name)
        if isinstance(value, str) and self.templar.is_template(value):
            value = self.templar.template(value)
        return value

    def _connection(self):
        """The connection options, checked: AnsibleParserError names the option and the fix."""
        conn = dict((key, self._option(key)) for key in ('hostname', 'port', 'username', 'password', 'validate_certs',
                                                         'ca_path', 'proxy_host', 'proxy_port'))
        for key, env in (('hostname', 'VMWARE_HOST'), ('username', 'VMWARE_USER'), ('password', 'VMWARE_PASSWORD')):
            if conn[key] is None or not to_text(conn[key]).strip():
                raise AnsibleParserError('%s inventory: option %s is not set: set it in the source file or in the '
                                         'environment variable %s' % (NAME, key, env))
        key = vsphere_client.control_character_setting(conn)
        if key:
            raise AnsibleParserError('%s inventory: option %s contains a control character (NUL, newline, ...), which '
                                     'a vSphere connection cannot use: remove it' % (NAME, key))
        for key in ('port', 'proxy_port'):
            if not 0 < int(conn[key]) < 65536:
                raise AnsibleParserError('%s inventory: option %s is %s: it must be a TCP port number (1-65535)'
                                         % (NAME, key, conn[key]))
        return conn

    def _check_filters(self):
        for state in self.get_option('states') or []:
            if state not in STATES:
                raise AnsibleParserError('%s inventory: option states: %r is no power state; use %s'
                                         % (NAME, state, ', '.join(STATES)))

    # -- reading ------------------------------------------------------------------------------
    def _read(self, conn):
        if not vsphere_client.HAS_PYVMOMI:
            raise AnsibleParserError('%s inventory needs pyvmomi on the controller (pip install pyvmomi)' % NAME)
        client = vsphere_client.VSphereClient(conn['hostname'], conn['username'], conn['password'], port=conn['port'],
                                              validate_certs=conn['validate_certs'], ca_path=conn['ca_path'],
                                              proxy_host=conn['proxy_host'], proxy_port=conn['proxy_port'])
        try:
            return {'server': conn['hostname'], 'vms': read_vms(client)}
        except VirtError as exc:
            # VSphereClient scrubs the password from its messages; scrub once more whatever else says
            text = to_text(exc.msg)
            if conn['password']:
                text = text.replace(to_text(conn['password']), '********')
            raise AnsibleParserError('%s inventory: %s' % (NAME, text))
        finally:
            client.close()

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        conn = self._connection()
        self._check_filters()
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        source = None
        if use_cache:
            try:
                source = self._cache[cache_key]
            except KeyError:
                source = None
        if source is None:
            source = self._read(conn)
            if self.get_option('cache'):
                self._cache[cache_key] = source
        self._populate(source)

    # -- the inventory ------------------------------------------------------------------------
    def _wanted(self, vm):
        if vm['vsphere'].get('template') and not self.get_option('include_templates'):
            return False
        states = self.get_option('states')
        if states and vm['state'] not in states:
            return False
        tags = self.get_option('tags') or {}
        return all(vm['spec'].get('tags', {}).get(k) == v or str(vm['spec'].get('tags', {}).get(k)) == str(v)
                   for k, v in tags.items())

    def _true(self, expression, variables):
        try:
            return bool(self._compose(expression, variables))
        except Exception as exc:  # a failing filter is false, unless strict
            if self.get_option('strict'):
                raise AnsibleParserError('%s inventory: option filters: %r failed: %s' % (NAME, expression, exc))
            return False

    def _name(self, vm, variables):
        template = self.get_option('host_name_template')
        if template:
            try:
                name = self._compose(template, variables)
            except Exception as exc:  # an unnamed VM falls back to host_name, unless strict
                if self.get_option('strict'):
                    raise AnsibleParserError('%s inventory: option host_name_template failed for VM %s: %s'
                                             % (NAME, vm['name'], exc))
                name = None
            if name not in (None, '') and to_text(name).strip():
                return to_text(name)
        key = self.get_option('host_name')
        if key == 'instance_uuid':
            return vm['vsphere'].get('instance_uuid') or vm['name']
        if key == 'moid':
            return vm['vsphere']['moid']
        if key == 'path':
            return vm['vsphere'].get('path') or vm['name']
        return vm.get(key) or vm['name']

    def _groups(self, vm):
        info = vm['vsphere']
        groups = [_group_name('state', vm['state'])]
        for prefix, key in (('cluster', 'cluster'), ('esxi', 'host'), ('datacenter', 'datacenter')):
            if info.get(key):
                groups.append(_group_name(prefix, info[key]))
        if info.get('folder'):
            groups.append(_group_name('folder', info['folder'].strip('/')))
        if info.get('template'):
            groups.append('templates')
        if self.get_option('tag_groups'):
            groups += [_group_name('tag', key, value) for key, value in sorted(vm['spec'].get('tags', {}).items())]
        return groups

    def _populate(self, source):
        strict = self.get_option('strict')
        filters = self.get_option('filters') or []
        seen = {}
        for vm in source['vms']:
            if not self._wanted(vm):
                continue
            variables = {'virtfleet_vm': vm, 'virtfleet_vsphere_server': source['server']}
            if vm.get('guest_ip') and vm['state'] == 'running':
                variables.update(ansible_host=vm['guest_ip'], virtfleet_address_source='tools')
            if not all(self._true(expression, variables) for expression in filters):
                continue
            name = self._name(vm, variables)
            if name in seen:
                msg = ('%s inventory: VMs %s and %s are both named %s in the inventory; the second is left out '
                       '(set host_name: instance_uuid or path to tell them apart)'
                       % (NAME, seen[name], vm['vsphere'].get('path') or vm['name'], name))
                if strict:
                    raise AnsibleParserError(msg)
                self.display.warning(msg)
                continue
            seen[name] = vm['vsphere'].get('path') or vm['name']
            host = self.inventory.add_host(name)
            for key, value in variables.items():
                self.inventory.set_variable(host, key, value)
            for group in self._groups(vm):
                self.inventory.add_group(group)
                self.inventory.add_child(group, host)
            hostvars = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option('compose'), hostvars, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option('groups'), hostvars, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), hostvars, host, strict=strict)

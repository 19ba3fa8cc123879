# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which VM driver serves which backend, and which ``vm`` options each backend takes.

One task shape serves both backends; an option that only one backend
understands fails on the other with a message naming it (never silently ignored).
"""

from __future__ import annotations

import os

from ansible_collections.virtfleet.virt.plugins.module_utils._clients.vsphere import ENV
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_vm import LibvirtVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_vm import VSphereVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

# backend -> VM driver class, for the backends whose driver takes the client alone (vSphere's takes
# the placement options too: vm_driver builds it)
VM_DRIVERS = {
    'libvirt': LibvirtVMDriver,
}

# Options of the vm module for vSphere placement and VM settings (doc fragment virtfleet.virt.vsphere.placement).
VSPHERE_VM_OPTIONS = ('datacenter', 'cluster', 'host', 'resource_pool', 'folder', 'datastore',
                      'guest_id', 'memory_hot_add', 'cpu_hot_add')

# option -> backends that take it; options not listed here work everywhere.
ONLY = dict((key, ('vsphere',)) for key in VSPHERE_VM_OPTIONS)
ONLY.update(dict((key, ('libvirt',)) for key in (
    'domain_type', 'machine', 'max_memory', 'max_vcpus', 'cpu', 'boot', 'graphics', 'serial',
    'autostart', 'title', 'xml')))
# vSphere connection options: refused on libvirt by every module that takes both backends.
CONNECTION_ONLY = {'hostname': ('vsphere',), 'port': ('vsphere',), 'validate_certs': ('vsphere',),
                   'ca_path': ('vsphere',), 'proxy_host': ('vsphere',), 'proxy_port': ('vsphere',)}
ONLY.update(CONNECTION_ONLY)

_HINTS = {
    'max_memory': 'vSphere has no separate maximum; set memory_hot_add: true to grow memory of a running VM',
    'max_vcpus': 'vSphere has no separate maximum; set cpu_hot_add: true to add vCPUs to a running VM',
    'title': 'use description (the VM\'s notes) on vSphere',
}


def vsphere_argument_spec():
    return dict(
        datacenter=dict(type='str'), cluster=dict(type='str'), host=dict(type='str'),
        resource_pool=dict(type='str'), folder=dict(type='str'), datastore=dict(type='str'),
        guest_id=dict(type='str'), memory_hot_add=dict(type='bool'), cpu_hot_add=dict(type='bool'),
    )


# Connection options that may come from the environment: a value that only mirrors the
# environment is not refused on libvirt (VMWARE_HOST may be set for other tools).
_ENV = dict((key, ENV[key]) for key in CONNECTION_ONLY)


def _from_env(key, value):
    env = os.environ.get(_ENV.get(key, ''), None)
    return env is not None and str(value).lower() in (env.lower(), str(env in ('1', 'true', 'yes', 'on')).lower())


def check_options(backend, params):
    """Refuse options the chosen backend does not understand, naming them."""
    if backend == 'libvirt':
        for index, disk in enumerate(params.get('disks') or []):
            if disk.get('size') is not None:
                raise SpecError('disks[%d].size' % index, 'the libvirt backend does not create or grow disks yet; '
                                'create the volume first (virtfleet.virt.volume) and name it with pool and volume')
    refuse_options(backend, params, ONLY, _HINTS)


def refuse_options(backend, params, only, hints=None):
    """Refuse the options of ``only`` (option -> backends that take it) that are set but do not
    apply to ``backend``, naming the first one (options not in ``only`` work everywhere)."""
    for key in sorted(only):
        if params.get(key) is None or (key in _ENV and _from_env(key, params[key])):
            continue
        if backend not in only[key]:
            hint = (hints or {}).get(key) if backend == 'vsphere' else None
            raise SpecError(key, 'applies to the %s backend only, and this task runs on %s%s'
                            % (' and '.join(only[key]), backend, '; ' + hint if hint else '; remove it'))


def vm_driver(session, params):
    """The VM driver for the session's backend, after checking the options fit it."""
    check_options(session.backend, params)
    if session.backend == 'vsphere':
        placement = dict((key, params.get(key)) for key in VSPHERE_VM_OPTIONS)
        return VSphereVMDriver(session.client, placement)
    if session.backend not in VM_DRIVERS:
        raise SpecError('backend', 'VMs are not managed on the %s backend' % session.backend)
    return VM_DRIVERS[session.backend](session.client)

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of one VM, shared by the ``vm`` module and each item of ``fleet``, declared with the
backends that take them (see ``_module.argument_spec``)."""

from __future__ import annotations

import copy

from ansible_collections.virtfleet.virt.plugins.module_utils import _customization, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

VM_STATES = ['present', 'running', 'stopped', 'paused', 'absent']
LIBVIRT = ('libvirt',)


def vm_options():
    """Options that describe one VM: identity, state and spec (no connection or wait options).

    Those libvirt alone takes are declared so (``backends``, with a ``hint`` where vSphere has another way).
    """
    disk = dict(
        path=dict(type='path'), pool=dict(type='str'), volume=dict(type='str'),
        device=dict(type='str', choices=list(_vm_spec.DISK_DEVICES), default='disk'),
        bus=dict(type='str', choices=list(_vm_spec.DISK_BUSES)),
        target=dict(type='str'), format=dict(type='str', choices=list(_vm_spec.DISK_FORMATS)),
        cache=dict(type='str', choices=list(_vm_spec.DISK_CACHES)), readonly=dict(type='bool'),
    )
    nic = dict(
        network=dict(type='str'), bridge=dict(type='str'), direct=dict(type='str'),
        mode=dict(type='str', choices=list(_vm_spec.DIRECT_MODES)),
        model=dict(type='str', choices=list(_vm_spec.NIC_MODELS)), mac=dict(type='str'),
    )
    return dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=list(VM_STATES)),
        domain_type=dict(type='str', choices=['kvm', 'qemu'], backends=LIBVIRT),
        arch=dict(type='str'),
        machine=dict(type='str', backends=LIBVIRT),
        firmware=dict(type='str', choices=list(_vm_spec.FIRMWARES)),
        memory=dict(type='raw'),
        max_memory=dict(type='raw', backends=LIBVIRT,
                        hint='vSphere has no separate maximum; set memory_hot_add: true to grow memory of a running VM'),
        vcpus=dict(type='int'),
        max_vcpus=dict(type='int', backends=LIBVIRT,
                       hint='vSphere has no separate maximum; set cpu_hot_add: true to add vCPUs to a running VM'),
        cpu=dict(type='dict', options=dict(mode=dict(type='str', choices=list(_vm_spec.CPU_MODES)),
                                           model=dict(type='str')), backends=LIBVIRT),
        boot=dict(type='list', elements='str', choices=list(_vm_spec.BOOT_DEVICES), backends=LIBVIRT),
        disks=dict(type='list', elements='dict', options=disk),
        interfaces=dict(type='list', elements='dict', options=nic),
        graphics=dict(type='dict', options=dict(
            type=dict(type='str', choices=list(_vm_spec.GRAPHICS_TYPES), default='vnc'),
            listen=dict(type='str', default='127.0.0.1'), port=dict(type='int', default=-1)), backends=LIBVIRT),
        serial=dict(type='list', elements='dict', options=dict(
            type=dict(type='str', choices=list(_vm_spec.SERIAL_TYPES), default='pty'),
            path=dict(type='path'), host=dict(type='str'), port=dict(type='int')), backends=LIBVIRT),
        kernel=dict(type='str', backends=LIBVIRT),
        initrd=dict(type='str', backends=LIBVIRT),
        cmdline=dict(type='str', backends=LIBVIRT),
        guest_agent=dict(type='bool', backends=LIBVIRT, hint='vSphere talks to VMware Tools in the guest'),
        cloud_init=dict(type='dict', backends=LIBVIRT, options=dict(
            user_data=dict(type='raw', no_log=True), meta_data=dict(type='raw'), network_config=dict(type='raw'),
            pool=dict(type='str'))),
        autostart=dict(type='bool', backends=LIBVIRT),
        title=dict(type='str', backends=LIBVIRT, hint='use description (the VM\'s notes) on vSphere'),
        description=dict(type='str'),
        tags=dict(type='dict'),
        xml=dict(type='str', backends=LIBVIRT),
        template=dict(type='bool'),
        clone_from=dict(type='str'),
        linked_clone=dict(type='bool'),
        customization=dict(type='dict', options=_customization.options()),
        restart_if_required=dict(type='bool', default=False),
        delete_volumes=dict(type='bool', default=False),
    )


def vm_wait_options():
    """How a VM is stopped and what a run waits for besides power states (each VM of a fleet may override them)."""
    return dict(
        shutdown_mode=dict(type='str', choices=['acpi', 'agent', 'any'], backends=LIBVIRT),
        wait_for_address=dict(type='bool', default=False),
        wait_for_address_timeout=dict(type='int', default=300),
    )


def vsphere_options():
    """The vm module's options of vSphere placement and VM settings (doc fragment virtfleet.virt.vsphere.placement)."""
    return dict((key, dict(type=kind, backends=('vsphere',))) for key, kind in (
        ('datacenter', 'str'), ('cluster', 'str'), ('host', 'str'), ('resource_pool', 'str'), ('folder', 'str'),
        ('datastore', 'str'), ('guest_id', 'str'), ('memory_hot_add', 'bool'), ('cpu_hot_add', 'bool')))


def refuse_new_disks(backend, params):
    """A disk given by size (a new disk the backend creates) is refused on libvirt, which does not create disks yet."""
    if backend == 'libvirt':
        for index, disk in enumerate(params.get('disks') or []):
            if disk.get('size') is not None:
                raise SpecError('disks[%d].size' % index, 'the libvirt backend does not create or grow disks yet; '
                                'create the volume first (virtfleet.virt.volume) and name it with pool and volume')


def vm_request(params, opts):
    """``(name, partial, state, target, opts)`` for ``_reconcile.ensure`` from one VM's parameters.

    ``opts`` are the run's reconcile options; this VM's own restart/delete choices and
    any wait options it sets (``force``, ``shutdown_timeout``, ``wait_timeout``, ``shutdown_mode``,
    ``wait_for_address``, ``wait_for_address_timeout``) apply on top.
    Raises ``SpecError`` for invalid input, before anything is written.
    """
    name = _vm_spec.validate_name(params['name'])
    state = params['state']
    partial = _vm_spec.partial_from_params(params) if state != 'absent' else {}
    target = None if state in ('present', 'absent') else state
    if partial.get('template') and target in ('running', 'paused'):
        raise SpecError('template', 'a template is never started: state %s with template: true is refused; use '
                                    'state: stopped or present, or template: false to start it as a VM' % state)
    opts = copy.copy(opts)
    opts.restart_if_required = params['restart_if_required']
    opts.delete_options = {'delete_volumes': params['delete_volumes']}
    for key in ('force', 'shutdown_timeout', 'wait_timeout', 'shutdown_mode', 'wait_for_address',
                'wait_for_address_timeout'):
        if params.get(key) is not None:
            setattr(opts, key, params[key])
    if opts.wait_for_address_timeout < 0:
        raise SpecError('wait_for_address_timeout', 'must be 0 or more seconds, got %d' % opts.wait_for_address_timeout)
    return name, partial, state, target, opts

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of a libvirt VM's desired spec against the host: the default domain type, the machine
type as the host names it, and the disks and NIC sources that are new to the VM (their formats
read from the volumes or image files)."""

from __future__ import annotations

import os

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml as domxml
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError


def _qcow2_magic(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read(4) == b'QFI\xfb'
    except OSError:
        return False


class HostChecks:
    """What the host offers and holds, read once per run (domain type and machine types cached)."""

    def __init__(self, client):
        self.client = client
        self._default_type = None
        self._machines = {}

    def default_domain_type(self):
        if self._default_type is None:
            try:
                self.client.domain_capabilities(virttype='kvm')
                self._default_type = 'kvm'
            except BackendError:
                self._default_type = 'qemu'
        return self._default_type

    def _canonical_machine(self, machine, arch, domain_type):
        key = (machine, arch, domain_type)
        if key not in self._machines:
            try:
                caps = domxml.from_string(self.client.domain_capabilities(
                    virttype=domain_type, machine=machine, arch=arch))
            except BackendError as exc:
                raise SpecError('machine', '%r is not a machine type this host offers for %s/%s: %s'
                                % (machine, arch, domain_type, exc.msg))
            self._machines[key] = caps.findtext('machine') or machine
        return self._machines[key]

    def spec(self, partial, spec, old):
        """Check ``spec`` (merged from ``partial`` and the VM's ``old`` spec, ``{}`` for a new VM) and fill in
        what the host decides: the domain type, the machine's name, disk formats."""
        if not spec.get('domain_type'):
            spec['domain_type'] = self.default_domain_type()
        if spec.get('machine') and spec['machine'] != old.get('machine') and \
                self._canonical_machine(spec['machine'], spec['arch'], spec['domain_type']) == old.get('machine'):
            spec['machine'] = old['machine']
        old_disks = [_vm_spec._disk_key(d) for d in old.get('disks') or []]
        for index, disk in enumerate(spec['disks']):
            if _vm_spec._disk_key(disk) not in old_disks:
                self._resolve_disk(disk, index)
            disk.setdefault('format', 'raw')
        old_nics = [(n['type'], n['source']) for n in old.get('interfaces') or []]
        for index, nic in enumerate(spec['interfaces']):
            if (nic['type'], nic['source']) not in old_nics:
                self._check_nic_source(nic, index)
        _vm_spec.check_kernel_boot(spec)
        for key in ('kernel', 'initrd'):
            if spec.get(key) and spec[key] != old.get(key) and self.client.is_local() and \
                    not os.path.isfile(spec[key]):
                raise SpecError(key, '%s is not a file on this host (direct kernel boot reads it when the VM starts)'
                                % spec[key])
        if partial.get('xml'):
            domxml.check_fragment(partial['xml'])

    def _resolve_disk(self, disk, index):
        param = 'disks[%d]' % index
        if disk.get('volume'):
            try:
                vol = self.client.lookup_volume(disk['pool'], disk['volume'])
            except NotFound:
                raise SpecError(param, 'volume %r not found in storage pool %r on %s; create it first '
                                       '(virtfleet.virt.volume) or fix pool/volume'
                                % (disk['volume'], disk['pool'], self.client.uri))
            if 'format' not in disk:
                fmt = domxml.from_string(self.client.volume_xml(vol)).find('target/format')
                if fmt is not None and fmt.get('type') in _vm_spec.DISK_FORMATS:
                    disk['format'] = fmt.get('type')
            return
        path = disk.get('path')
        if not path:
            return
        try:
            self.client.lookup_volume_by_path(path)
            known = True
        except NotFound:
            known = False
        if not known and self.client.is_local() and not os.path.exists(path):
            if disk.get('device') == 'cdrom':
                raise SpecError(param + '.path', 'ISO image %s does not exist' % path)
            raise SpecError(param + '.path', '%s does not exist; create the image first (for example '
                                             'with virtfleet.virt.volume or qemu-img) or fix the path' % path)
        if 'format' not in disk and disk.get('device') != 'cdrom' and self.client.is_local():
            disk['format'] = 'qcow2' if _qcow2_magic(path) else 'raw'

    def _check_nic_source(self, nic, index):
        param = 'interfaces[%d].%s' % (index, nic['type'])
        if nic['type'] == 'network':
            try:
                self.client.lookup_network(nic['source'])
            except NotFound:
                raise SpecError(param, 'network %r does not exist on %s; create it with virtfleet.virt.network '
                                       'or use one of: %s' % (nic['source'], self.client.uri,
                                                              ', '.join(self.client.list_network_names()) or 'none'))
        elif self.client.is_local() and not os.path.exists('/sys/class/net/%s' % nic['source']):
            raise SpecError(param, 'host interface %r does not exist on this host' % nic['source'])

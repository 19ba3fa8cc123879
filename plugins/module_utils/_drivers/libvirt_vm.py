# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt VM driver: reads, plans and applies VM specs on one connection."""

from __future__ import annotations

import os

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml as domxml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import VMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result, Step

_ACTIVE = ('running', 'paused', 'shutting_down', 'crashed', 'pmsuspended')
# Spec fields a running guest can take without a restart (the rest waits for one).
_NOT_LIVE_COMPARED = ('autostart', 'xml', 'cpu')


def _qcow2_magic(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read(4) == b'QFI\xfb'
    except OSError:
        return False


class LibvirtVMDriver(VMDriver):
    def __init__(self, client):
        super().__init__(client)
        self._default_type = None
        self._machines = {}

    # -- reading --------------------------------------------------------------
    def read(self, name):
        return self.read_one(self.client.lookup_domain, self._read_domain, name)

    def _read_domain(self, dom):
        xml = self.client.domain_xml(dom, inactive=True)
        name, uuid, spec = domxml.parse(xml)
        spec['autostart'] = self.client.domain_autostart(dom)
        state = self.client.domain_state(dom)
        live_xml = live_spec = None
        if state in _ACTIVE:
            live_xml = self.client.domain_xml(dom)
            live_spec = domxml.parse(live_xml)[2]
        return {'name': name, 'uuid': uuid, 'state': state, 'spec': spec, 'live_spec': live_spec,
                'dom': dom, 'xml': xml, 'live_xml': live_xml}

    def list(self):
        return self.read_all(self.client.list_domains(), self._read_domain)

    def describe(self, actual):
        # only a running guest with a NIC can have an address: skip the round trip otherwise
        has_nic = actual['state'] == 'running' and actual['spec']['interfaces']
        return {'name': actual['name'], 'uuid': actual['uuid'], 'state': actual['state'],
                'spec': dict(actual['spec']), 'pending_restart': self.pending_restart_fields(actual),
                'addresses': self.addresses(actual) if has_nic else []}

    def addresses(self, actual):
        found = []
        for ifname, info in sorted(self.client.interface_addresses(actual['dom']).items()):
            for addr in info.get('addrs') or []:
                found.append({'interface': ifname, 'mac': info.get('hwaddr'),
                              'address': addr.get('addr'), 'prefix': addr.get('prefix')})
        return found

    def pending_restart_fields(self, actual):
        """Fields whose persistent value the running guest has not picked up yet."""
        live = actual.get('live_spec')
        if not live:
            return []
        return [key for key in _vm_spec.FIELDS
                if key not in _NOT_LIVE_COMPARED and live.get(key) != actual['spec'].get(key)]

    # -- desired spec -----------------------------------------------------------
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

    def desired(self, partial, actual):
        spec = _vm_spec.merge(partial, actual['spec'] if actual else None)
        if not spec.get('domain_type'):
            spec['domain_type'] = self.default_domain_type()
        old = actual['spec'] if actual else {}
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
        if partial.get('xml'):
            domxml.check_fragment(partial['xml'])
        return spec

    def align(self, partial, actual):
        """The raw ``xml`` the user passes is part of the actual spec when the domain already has it."""
        if actual is None or not partial.get('xml'):
            return actual
        satisfied = domxml.fragment_satisfied(partial['xml'], actual['xml'])
        return dict(actual, spec=dict(actual['spec'], xml=partial['xml'] if satisfied else None))

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

    # -- writing ------------------------------------------------------------------
    def create(self, name, spec):
        dom = self.client.define_domain(domxml.render(name, spec))
        if spec.get('autostart'):
            try:
                self.client.set_autostart(dom, True)
            except BackendError:
                self.client.undefine_domain(dom)
                raise

    def _live_plan(self, actual, spec):
        """Live operations that bring a running guest to ``spec``, and the fields that need a restart."""
        live = actual.get('live_spec')
        if not live:
            return [], []
        ops, leftover = [], []
        for key in _vm_spec.FIELDS:
            if key in _NOT_LIVE_COMPARED or live.get(key) == spec.get(key):
                continue
            if key == 'memory' and spec['memory'] <= live['max_memory']:
                ops.append(('memory', spec['memory']))
            elif key == 'vcpus' and spec['vcpus'] <= live['max_vcpus']:
                ops.append(('vcpus', spec['vcpus']))
            elif key in ('title', 'description', 'tags'):
                ops.append((key, spec.get(key)))
            elif key == 'disks':
                leftover.extend(self._device_ops(ops, live['disks'], spec['disks'], 'target', 'disk'))
            elif key == 'interfaces':
                leftover.extend(self._device_ops(ops, live['interfaces'], spec['interfaces'], 'mac', 'interface'))
            else:
                leftover.append(key)
        return ops, sorted(set(leftover))

    @staticmethod
    def _device_ops(ops, live_items, wanted_items, key, kind):
        live_by = dict((item.get(key), item) for item in live_items)
        wanted_keys = set(item.get(key) for item in wanted_items if item.get(key))
        leftover = []
        for item in wanted_items:
            have = live_by.get(item.get(key)) if item.get(key) else None
            if have is None:
                ops.append(('attach_' + kind, item))
            elif have != item:
                leftover.append(kind + 's')
        for item_key, item in live_by.items():
            if item_key not in wanted_keys:
                ops.append(('detach_' + kind, item))
        return leftover

    def plan_update(self, actual, spec):
        changes = _vm_spec.changed_fields(actual['spec'], spec)
        ops, leftover = self._live_plan(actual, spec)
        pending = self.pending_restart_fields(actual)
        return Plan(changes, reboot_required=bool(leftover or pending),
                    details={'live_ops': ops, 'spec': spec})

    def apply_update(self, actual, plan):
        spec = plan.details['spec']
        dom = actual['dom']
        persistent = [c for c in plan.changes if c != 'autostart']
        if persistent:
            self.client.define_domain(domxml.render(actual['name'], spec, base_xml=actual['xml']))
        if 'autostart' in plan.changes:
            self.client.set_autostart(dom, spec['autostart'])
        warnings = []
        if plan.details['live_ops']:
            new_macs = self._new_macs(dom, actual)
            for op, value in plan.details['live_ops']:
                try:
                    self._live_op(dom, op, value, new_macs)
                except BackendError as exc:
                    warnings.append('%s could not be applied to the running guest (%s); it is in the '
                                    'persistent configuration and takes effect at the next start'
                                    % (op.replace('_', ' '), exc.msg))
        after = self._read_domain(dom)
        return Result(warnings=warnings, reboot_required=bool(self.pending_restart_fields(after)))

    def _new_macs(self, dom, actual):
        """MACs libvirt generated for interfaces added by this run, by (type, source), in order."""
        known = set(n.get('mac') for n in actual['spec']['interfaces'])
        defined = domxml.parse(self.client.domain_xml(dom, inactive=True))[2]['interfaces']
        found = {}
        for nic in defined:
            if nic.get('mac') not in known:
                found.setdefault((nic['type'], nic['source']), []).append(nic['mac'])
        return found

    def _live_op(self, dom, op, value, new_macs):
        if op == 'memory':
            self.client.set_memory_live(dom, value * 1024)
        elif op == 'vcpus':
            self.client.set_vcpus_live(dom, value)
        elif op in ('title', 'description'):
            self.client.set_metadata_live(dom, op, value or '')
        elif op == 'tags':
            xml = domxml.to_string(domxml.tags_element(value, namespaced=False)) if value else None
            self.client.set_metadata_live(dom, 'element', xml, domxml.TAGS_PREFIX, domxml.TAGS_NS)
        elif op == 'attach_disk':
            self.client.attach_device_live(dom, domxml.to_string(domxml.disk_element(value)))
        elif op == 'detach_disk':
            self.client.detach_device_live(dom, domxml.to_string(domxml.disk_element(value)))
        elif op == 'attach_interface':
            item = dict(value)
            if not item.get('mac'):
                macs = new_macs.get((item['type'], item['source'])) or [None]
                item['mac'] = macs.pop(0)
            self.client.attach_device_live(dom, domxml.to_string(domxml.interface_element(item)))
        elif op == 'detach_interface':
            self.client.detach_device_live(dom, domxml.to_string(domxml.interface_element(value)))

    def delete(self, actual, options):
        volumes, kept = [], []
        if options.get('delete_volumes'):
            for disk in actual['spec']['disks']:
                if disk.get('device') != 'disk':
                    continue
                try:
                    if disk.get('volume'):
                        volumes.append(self.client.lookup_volume(disk['pool'], disk['volume']))
                    elif disk.get('path'):
                        volumes.append(self.client.lookup_volume_by_path(disk['path']))
                except NotFound:
                    kept.append(disk.get('path') or '%s/%s' % (disk.get('pool'), disk.get('volume')))
        self.client.undefine_domain(actual['dom'])
        deleted = []
        for vol in volumes:
            path = vol.path()
            self.client.delete_volume(vol)
            deleted.append(path)
        warnings = ['not deleted (not a volume of any libvirt storage pool): %s' % ', '.join(kept)] if kept else []
        return Result(warnings=warnings, extra={'deleted_volumes': deleted})

    # -- power --------------------------------------------------------------------
    def state(self, name):
        return self.client.domain_state(self.client.lookup_domain(name))

    def steps(self, current, target):
        return [Step(action, until, graceful=graceful, escalate='destroy' if graceful else None)
                for action, until, graceful in _vm_spec.power_steps(current, target)]

    def perform(self, name, action):
        """Run one power action; returns a warning when the VM had crashed before."""
        if action == 'wait':
            return None
        dom = self.client.lookup_domain(name)
        crashed = action in ('start', 'start_paused', 'destroy') and self.client.domain_crashed(dom)
        if action == 'start':
            self.client.start_domain(dom)
        elif action == 'start_paused':
            self.client.start_domain(dom, paused=True)
        elif action == 'shutdown':
            self.client.shutdown_domain(dom)
        elif action == 'destroy':
            self.client.destroy_domain(dom)
        elif action == 'suspend':
            self.client.suspend_domain(dom)
        elif action == 'resume':
            self.client.resume_domain(dom)
        elif action == 'wakeup':
            self.client.wakeup_domain(dom)
        else:  # pragma: no cover - the step table names only the actions above
            raise BackendError('unknown power action %s' % action)
        if not crashed:
            return None
        if action == 'destroy':
            return Result(warnings=['VM %s was in the crashed state; it was powered off' % name])
        return Result(warnings=['VM %s had crashed (its QEMU process ended without a shutdown; libvirt reports it '
                                'shut off, reason crashed); it was started again' % name])

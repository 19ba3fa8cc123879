# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live changes to a running libvirt guest: which changes it takes now (memory and vCPUs up to their
maximum, title, description, tags, the guest agent's channel, disks and interfaces attached or detached)
and which wait for a restart, and applying them. Added vCPUs are onlined in the guest through its agent."""

from __future__ import annotations

import time

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml as domxml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_vm_guest as guest
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError

# Spec fields not compared with the live definition of a running guest.
NOT_LIVE_COMPARED = ('autostart', 'xml', 'cpu', 'cloud_init')


def plan(live, spec):
    """Live operations that bring a running guest (``live``: its live spec, ``None`` when it is not active) to
    ``spec``, and the fields that need a restart."""
    if not live:
        return [], []
    ops, leftover = [], []
    for key in _vm_spec.FIELDS:
        if key in NOT_LIVE_COMPARED or live.get(key) == spec.get(key):
            continue
        if key == 'memory' and spec['memory'] <= live['max_memory']:
            ops.append(('memory', spec['memory']))
        elif key == 'vcpus' and spec['vcpus'] <= live['max_vcpus']:
            ops.append(('vcpus', spec['vcpus']))
        elif key in ('title', 'description', 'tags', 'guest_agent'):
            ops.append((key, spec.get(key)))
        elif key == 'disks':
            leftover.extend(_device_ops(ops, live['disks'], spec['disks'], 'target', 'disk'))
        elif key == 'interfaces':
            leftover.extend(_device_ops(ops, live['interfaces'], spec['interfaces'], 'mac', 'interface'))
        else:
            leftover.append(key)
    return ops, sorted(set(leftover))


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


class LiveUpdate:
    """Applies live operations to a running domain."""

    def __init__(self, client, dom):
        self.client = client
        self.dom = dom

    def apply(self, actual, ops):
        """Run ``ops``; warnings for those the guest refused (they take effect at the next start)."""
        new_macs = self._new_macs(actual)
        warnings = []
        for op, value in ops:
            try:
                self._live_op(op, value, new_macs)
            except BackendError as exc:
                warnings.append('%s could not be applied to the running guest (%s); it is in the '
                                'persistent configuration and takes effect at the next start'
                                % (op.replace('_', ' '), exc.msg))
                continue
            if op == 'vcpus' and value > actual['live_spec']['vcpus'] and actual['live_spec']['guest_agent']:
                # a hot-plugged vCPU stays offline in the guest until something onlines it
                warning = guest.online_vcpus(self.client, self.dom, value)
                if warning:
                    warnings.append(warning)
        return warnings

    def _balloon_settles(self, mib, timeout=10.0):
        """Give the guest's balloon driver a moment to reach ``mib`` (libvirt's live memory follows what the
        balloon reports); a guest without one never does, and its change stays pending."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = domxml.parse(self.client.domain_xml(self.dom))[2]
            if live['memory'] == mib:
                return
            time.sleep(0.5)

    def _new_macs(self, actual):
        """MACs libvirt generated for interfaces added by this run, by (type, source), in order."""
        known = set(n.get('mac') for n in actual['spec']['interfaces'])
        defined = domxml.parse(self.client.domain_xml(self.dom, inactive=True))[2]['interfaces']
        found = {}
        for nic in defined:
            if nic.get('mac') not in known:
                found.setdefault((nic['type'], nic['source']), []).append(nic['mac'])
        return found

    def _live_op(self, op, value, new_macs):
        if op == 'memory':
            self.client.set_memory_live(self.dom, value * 1024)
            self._balloon_settles(value)
        elif op == 'vcpus':
            self.client.set_vcpus_live(self.dom, value)
        elif op in ('title', 'description'):
            self.client.set_metadata_live(self.dom, op, value or '')
        elif op == 'tags':
            xml = domxml.to_string(domxml.tags_element(value, namespaced=False)) if value else None
            self.client.set_metadata_live(self.dom, 'element', xml, domxml.TAGS_PREFIX, domxml.TAGS_NS)
        elif op == 'guest_agent' and value:
            self.client.attach_device_live(self.dom, domxml.to_string(domxml.agent_channel_element()))
        elif op == 'guest_agent':  # detached as the live definition has it (libvirt matches its socket path)
            for channel in domxml.agent_channels(domxml.from_string(self.client.domain_xml(self.dom))):
                self.client.detach_device_live(self.dom, domxml.to_string(channel))
        elif op == 'attach_disk':
            self.client.attach_device_live(self.dom, domxml.to_string(domxml.disk_element(value)))
        elif op == 'detach_disk':
            self.client.detach_device_live(self.dom, domxml.to_string(domxml.disk_element(value)))
        elif op == 'attach_interface':
            item = dict(value)
            if not item.get('mac'):
                macs = new_macs.get((item['type'], item['source'])) or [None]
                item['mac'] = macs.pop(0)
            self.client.attach_device_live(self.dom, domxml.to_string(domxml.interface_element(item)))
        elif op == 'detach_interface':
            self.client.detach_device_live(self.dom, domxml.to_string(domxml.interface_element(value)))

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading libvirt VMs for ``LibvirtVMDriver``: one VM, every VM, a fleet's VMs at once (``prefetch``), their
public view, their addresses and the fields a running guest has not picked up yet."""

from __future__ import annotations

import threading
import time

from ansible_collections.virtfleet.virt.plugins.module_utils import _cloud_init, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml as domxml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_vm_guest as guest
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_vm_live as live_changes
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import NotFound

# the states of a domain that has a live definition (a QEMU process)
ACTIVE = ('running', 'paused', 'shutting_down', 'crashed', 'pmsuspended')
# How long what ``prefetch`` read stands for a VM's state: a fleet's first reads happen within it; a read later
# in a long run (after slow starts) goes to libvirtd again, as a single VM's read does.
PREFETCH_SECONDS = 5.0
_UNREAD = object()


class VMReads:
    """The reading steps of ``LibvirtVMDriver`` (a mixin: they use the driver's client and seeds)."""

    def __init__(self, client):
        super().__init__(client)
        self._reading = threading.local()  # the name this thread read last: desired() of a new VM needs it
        self._batch, self._batch_until = {}, 0.0  # prefetch(): name -> (dom, state, autostart) or None (absent)

    def last_read(self):
        """The name this thread read last (``None`` before its first read)."""
        return getattr(self._reading, 'name', None)

    def prefetch(self, names):
        """Read which of ``names`` exist, their state and autostart for every VM at once (``domain_states``:
        two calls, instead of three per VM); the next ``read`` of each name within ``PREFETCH_SECONDS`` uses
        it once (its definition is read then, as always), any later read asks libvirtd again."""
        found = self.client.domain_states()
        self._batch = dict((name, found.get(name)) for name in names)
        self._batch_until = time.monotonic() + PREFETCH_SECONDS

    def _prefetched(self, name):
        if not self._batch:
            return _UNREAD
        entry = self._batch.pop(name, _UNREAD)  # atomic: each entry serves one read
        return entry if time.monotonic() < self._batch_until else _UNREAD

    def read(self, name):
        self._reading.name = name
        entry = self._prefetched(name)
        if entry is None:  # absent when the VMs were listed
            return None
        if entry is not _UNREAD:
            try:
                return self._read_domain(*entry)
            except NotFound:  # removed since: read it again, as one VM
                pass
        return self.read_one(self.client.lookup_domain, self._read_domain, name)

    def _read_domain(self, dom, state=None, autostart=None):
        xml = self.client.domain_xml(dom, inactive=True)
        name, vm_uuid, spec = domxml.parse(xml)
        spec['autostart'] = self.client.domain_autostart(dom) if autostart is None else autostart
        spec['cloud_init'] = self.seeds.actual(_cloud_init.vm_seed_volume(name), spec['disks'])
        if state is None:
            state = self.client.domain_state(dom)
        live_xml = live_spec = None
        if state in ACTIVE:
            live_xml = self.client.domain_xml(dom)
            live_spec = domxml.parse(live_xml)[2]
            # our metadata is the definition's: the running guest does not take it
            live_spec.update(template=spec['template'], customization=spec['customization'])
        return {'name': name, 'uuid': vm_uuid, 'state': state, 'spec': spec, 'live_spec': live_spec,
                'dom': dom, 'xml': xml, 'live_xml': live_xml, 'cloned_from': domxml.clone_record(xml)}

    def list(self):
        return self.read_all(self.client.domain_states().values(), lambda entry: self._read_domain(*entry))

    def describe(self, actual):
        # only a running guest with a NIC can have an address: skip the round trip otherwise
        has_nic = actual['state'] == 'running' and actual['spec']['interfaces']
        return {'name': actual['name'], 'uuid': actual['uuid'], 'state': actual['state'],
                'spec': dict(actual['spec']), 'pending_restart': self.pending_restart_fields(actual),
                'addresses': self.addresses(actual) if has_nic else [], 'cloned_from': actual.get('cloned_from')}

    def addresses(self, actual):
        return guest.addresses(self.client, actual['dom'])

    def address(self, name):
        actual = self.read(name)
        if actual is None or actual['state'] != 'running':
            return None
        macs = set(n.get('mac') for n in (actual['live_spec'] or actual['spec'])['interfaces'])
        return guest.first_ipv4(self.client, actual['dom'], macs, actual['spec']['guest_agent'])

    def pending_restart_fields(self, actual):
        """Fields whose persistent value the running guest has not picked up yet."""
        live = actual.get('live_spec')
        if not live:
            return []
        return [key for key in _vm_spec.FIELDS
                if key not in live_changes.NOT_LIVE_COMPARED and live.get(key) != actual['spec'].get(key)]

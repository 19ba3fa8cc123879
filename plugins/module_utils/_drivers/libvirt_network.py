# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt virtual network driver: reads, plans and applies network specs on one connection.

Static DHCP hosts and DNS host entries change through virNetworkUpdate (live
and persistent on an active network, so dnsmasq keeps running); any other
change redefines the network, and an active network picks it up only when it
is restarted (``reboot_required`` of the reconcile loop, which the module
reports as ``restart_required``).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from ansible_collections.virtfleet.virt.plugins.module_utils import _network_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_netxml as netxml
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import ActivatedDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan, Result, Step

_LEASE_TYPES = {0: 'ipv4', 1: 'ipv6'}
_IP_TOOL = shutil.which('ip') or next((p for p in ('/usr/sbin/ip', '/sbin/ip') if os.path.exists(p)), None)
_SECTIONS = {'dhcp_hosts': ('ip_dhcp_host', netxml.dhcp_host_xml),
             'dns_hosts': ('dns_host', netxml.dns_host_xml)}


def _host_ops(have, want, to_xml):
    """virNetworkUpdate commands that turn the ``have`` ``[(item, xml)]`` list into ``want``.

    Deletions come first: libvirt refuses to add a host whose MAC, name or
    address another entry still uses.
    """
    deletes = [('delete', xml) for item, xml in have if item not in want]
    present = [item for item, _xml in have]
    adds = [('add', to_xml(item)) for item in want if item not in present]
    return deletes + adds


def _master(dev):
    """The bridge host device ``dev`` is a port of, or ``None``."""
    try:
        return os.path.basename(os.readlink('/sys/class/net/%s/master' % dev))
    except OSError:
        return None


class LibvirtNetworkDriver(ActivatedDriver):
    kind = 'network'
    reports_reboot = True

    def __init__(self, client, activating=False):
        """``activating``: the run starts the network (its subnet is checked for overlaps even if unchanged)."""
        super().__init__(client)
        self.activating = activating

    # -- reading --------------------------------------------------------------
    def read(self, name):
        return self.read_one(self.client.lookup_network, self._read_network, name)

    def _read_network(self, net):
        xml = self.client.network_xml(net, inactive=True)
        name, uuid, spec, raw = netxml.parse(xml)
        persistent = self.client.network_is_persistent(net)
        spec['autostart'] = self.client.network_autostart(net) if persistent else False
        active = self.client.network_is_active(net)
        live_spec = live_raw = None
        if active:
            live_spec, live_raw = netxml.parse(self.client.network_xml(net))[2:]
            live_spec['autostart'] = spec['autostart']
        return {'name': name, 'uuid': uuid, 'state': 'active' if active else 'inactive', 'spec': spec,
                'raw': raw, 'live_spec': live_spec, 'live_raw': live_raw, 'persistent': persistent,
                'net': net, 'xml': xml}

    def list(self):
        return self.read_all(self.client.list_networks(), self._read_network)

    def describe(self, actual):
        live = actual['live_spec'] or actual['spec']
        return {'name': actual['name'], 'uuid': actual['uuid'], 'state': actual['state'],
                'persistent': actual['persistent'],
                'bridge': live['bridge'], 'spec': dict(actual['spec']),
                'pending_restart': self.pending_restart_fields(actual),
                'dhcp_leases': self.leases(actual) if actual['state'] == 'active' else []}

    def leases(self, actual):
        found = []
        for lease in self.client.network_dhcp_leases(actual['net']):
            item = {'mac': lease.get('mac'), 'ip': lease.get('ipaddr'), 'prefix': lease.get('prefix'),
                    'hostname': lease.get('hostname'), 'client_id': lease.get('clientid'),
                    'expiry_time': lease.get('expirytime'), 'type': _LEASE_TYPES.get(lease.get('type'), 'ipv4'),
                    'interface': lease.get('iface')}
            found.append(item)
        return sorted(found, key=lambda lease: (lease['type'], lease['ip'] or ''))

    @staticmethod
    def pending_restart_fields(actual):
        """Fields whose persistent value the running network has not picked up yet."""
        live = actual.get('live_spec')
        if not live:
            return []
        return [key for key in _network_spec.FIELDS if key != 'autostart' and live.get(key) != actual['spec'].get(key)]

    def _running_vm_taps(self, name):
        """``{vm name: [tap device, ...]}`` of the running VMs with an interface on network ``name``."""
        found = {}
        for dom in self.client.list_domains():
            try:
                if self.client.domain_state(dom) == 'stopped':
                    continue
                taps = netxml.domain_taps(self.client.domain_xml(dom), name)
            except NotFound:  # the VM went away meanwhile
                continue
            if taps:
                found[dom.name()] = taps
        return found

    def attached_vms(self, name):
        """Names of the running VMs with an interface on network ``name``."""
        return sorted(self._running_vm_taps(name))

    def _reconnect(self, name, net):
        """Plug running VMs' taps back into the bridge of a network that just started.

        libvirt reconnects them only when libvirtd itself restarts, so after a
        network restart its VMs would stay cut off. Returns the warnings.
        """
        vms = self._running_vm_taps(name)
        if not vms:
            return []
        if not self.client.is_local() or not _IP_TOOL:
            return ['the running VMs %s were attached to network %s, which restarted; libvirt does not reconnect '
                    'them by itself: restart libvirtd on %s (it reconnects them) or restart the VMs'
                    % (', '.join(sorted(vms)), name, self.client.uri)]
        bridge = netxml.parse(self.client.network_xml(net))[2]['bridge']
        failed = []
        for vm, taps in sorted(vms.items()):
            for tap in taps:
                if not tap or _master(tap) == bridge:
                    continue
                proc = subprocess.run([_IP_TOOL, 'link', 'set', 'dev', tap, 'master', bridge, 'up'],
                                      stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    failed.append('%s (%s: %s)' % (vm, tap, proc.stderr.strip()))
        if failed:
            return ['could not reconnect to bridge %s of network %s: %s; restart those VMs or libvirtd'
                    % (bridge, name, ', '.join(failed))]
        return []

    # -- desired spec -----------------------------------------------------------
    def desired(self, partial, actual):
        old = actual['spec'] if actual else None
        spec = _network_spec.merge(partial, old)
        old = old or {}
        active = actual is not None and actual['state'] == 'active'
        starting = self.activating and not active
        for family in _network_spec.FAMILIES:
            mine = spec[family]
            if not mine:
                continue
            was = old.get(family) or {}
            changed = (was.get('address'), was.get('prefix')) != (mine['address'], mine['prefix'])
            # a subnet matters once it runs: when the network starts, or changes while it runs
            if starting or (active and changed):
                self._check_overlap(actual['name'] if actual else None, family, mine)
        if spec['bridge'] and (starting or spec['bridge'] != old.get('bridge') or spec['mode'] != old.get('mode')):
            self._check_bridge(spec, actual)
        return spec

    def _check_overlap(self, own_name, family, item):
        mine = _network_spec.subnet(item)
        for net in self.client.list_networks():
            other = net.name()
            try:
                if other == own_name or not self.client.network_is_active(net):
                    continue
                subnets = netxml.subnets(self.client.network_xml(net))
            except NotFound:  # removed meanwhile (by another run): it uses no subnet any more
                continue
            for theirs in subnets:
                if theirs.version == mine.version and theirs.overlaps(mine):
                    raise SpecError(family, '%s overlaps %s of the active network %s; choose a subnet no other '
                                            'active network uses, or stop or change %s first'
                                    % (mine, theirs, other, other))

    def _check_bridge(self, spec, actual):
        if not self.client.is_local():
            return  # host interfaces of a remote hypervisor are not visible from here
        path = '/sys/class/net/%s' % spec['bridge']
        if spec['mode'] == 'bridge':
            if not os.path.exists(path):
                raise SpecError('bridge', 'the host bridge %s does not exist on this host; mode bridge attaches '
                                          'to an existing bridge: create it first (for example with '
                                          'ip link add %s type bridge) or fix the name' % (spec['bridge'], spec['bridge']))
            if not os.path.exists(os.path.join(path, 'bridge')):
                raise SpecError('bridge', 'the host interface %s is not a bridge; mode bridge needs a Linux bridge'
                                % spec['bridge'])
        elif os.path.exists(path) and not (actual and actual['state'] == 'active'
                                           and (actual['live_spec'] or {}).get('bridge') == spec['bridge']):
            raise SpecError('bridge', 'the host interface %s already exists; libvirt creates the bridge of a mode %s '
                                      'network itself: choose a free name, or use mode bridge to attach to it'
                            % (spec['bridge'], spec['mode']))

    # -- writing ------------------------------------------------------------------
    def create(self, name, spec):
        net = self.client.define_network(netxml.render(name, spec))
        if spec.get('autostart'):
            try:
                self.client.set_network_autostart(net, True)
            except BackendError:
                self.client.undefine_network(net)
                raise

    def plan_update(self, actual, spec):
        changes = _network_spec.changed_fields(actual['spec'], spec)
        redefine = _network_spec.restart_fields(changes)
        active = actual['state'] == 'active'
        pending = self.pending_restart_fields(actual)
        return Plan(changes, reboot_required=bool(active and (redefine or pending)),
                    details={'spec': spec, 'redefine': redefine, 'live': self._live_ops(actual, spec)})

    @staticmethod
    def _live_ops(actual, spec):
        """``(section, index, ops)`` to apply to the running network, when it can take them now."""
        live = actual['live_spec']
        if not live or live['mode'] != spec['mode'] or spec['mode'] == 'bridge':
            return []
        found = []
        for field in ('dhcp_hosts', 'dns_hosts'):
            if live[field] == spec[field]:
                continue
            if field == 'dhcp_hosts':
                if not live['ipv4'] or not spec['ipv4'] or \
                        _network_spec.subnet(live['ipv4']) != _network_spec.subnet(spec['ipv4']):
                    continue  # the hosts need the new subnet: they come with the restart
                index = actual['live_raw']['ipv4_index']
            else:
                index = -1
            section, to_xml = _SECTIONS[field]
            ops = _host_ops(actual['live_raw'][field], spec[field], to_xml)
            if ops:
                found.append((section, index, ops))
        return found

    def apply_update(self, actual, plan):
        spec = plan.details['spec']
        net = actual['net']
        live_ops = plan.details['live']
        config_ops = []
        if not plan.details['redefine']:
            for field in ('dhcp_hosts', 'dns_hosts'):
                if field in plan.changes:
                    section, to_xml = _SECTIONS[field]
                    index = actual['raw']['ipv4_index'] if field == 'dhcp_hosts' else -1
                    config_ops.append((section, index, _host_ops(actual['raw'][field], spec[field], to_xml)))
        if live_ops and live_ops == config_ops:
            self._update(net, live_ops, live=True, config=True)
        else:
            self._update(net, live_ops, live=True, config=False)
            self._update(net, config_ops, live=False, config=True)
        if plan.details['redefine']:
            self.client.define_network(netxml.render(actual['name'], spec, base_xml=actual['xml']))
        if 'autostart' in plan.changes:
            self.client.set_network_autostart(net, spec['autostart'])
        after = self._read_network(net)
        return Result(reboot_required=bool(self.pending_restart_fields(after)))

    def _update(self, net, sections, live, config):
        for section, index, ops in sections:
            for command, xml in ops:
                self.client.update_network(net, command, section, index, xml, live=live, config=config)

    def delete(self, actual, options):
        try:
            net = self.client.lookup_network(actual['name'])
        except NotFound:  # a transient network is gone once stopped
            return None
        if self.client.network_is_persistent(net):
            self.client.undefine_network(net)
        return None

    # -- run state ----------------------------------------------------------------
    def state(self, name):
        try:
            net = self.client.lookup_network(name)
        except NotFound:
            return 'inactive'
        return 'active' if self.client.network_is_active(net) else 'inactive'

    def steps(self, current, target):
        return [Step(action, until) for action, until in _network_spec.state_steps(current, target)]

    def perform(self, name, action):
        net = self.client.lookup_network(name)
        if action == 'start':
            self.client.start_network(net)
            return Result(warnings=self._reconnect(name, net))
        self.client.destroy_network(net)
        return None

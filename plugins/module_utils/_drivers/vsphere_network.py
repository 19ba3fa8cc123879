# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vSphere network driver: standard vSwitch port groups on ESXi hosts (HostNetworkSystem),
the interface ``_reconcile.ensure`` calls; distributed port groups are read (``list``) only.

A port group of this driver is one name on a set of hosts - the hosts that the placement options
``datacenter``/``cluster``/``host`` choose (``vsphere_host.select_hosts``). It is ``present`` when
it is on every one of them with the desired VLAN; hosts that lack it get it, hosts with another VLAN
are updated (``UpdatePortGroup``), ``absent`` removes it from each of them. When adding it fails on one
host, the hosts this run added it to lose it again, so a failed task leaves the port groups as they were
(or says that it could not, and reports the change). Everything a run needs
(hosts, their vSwitches and port groups, networks, distributed port groups, VM names) comes from
one PropertyCollector query, and every option is checked against it before the first write.

The normalized view (``describe``)::

    {'name': 'web', 'state': 'present', 'backend': 'vsphere', 'type': 'standard', 'datacenter': 'DC0',
     'spec': {'vlan': 10, 'vswitch': 'vSwitch0', 'hosts': ['esx1', 'esx2']},
     'portgroups': [{'host': 'esx1', 'vswitch': 'vSwitch0', 'vlan': 10}, ...]}

A distributed port group is listed as ``type: distributed`` with ``spec`` ``{vlan, switch, ports}``
(``vlan`` an integer, a list of ``{start, end}`` trunk ranges, or null for private VLANs).
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_host import HostScopedDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError, VirtError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan

DEFAULT_VSWITCH = 'vSwitch0'
MAX_VLAN = 4095   # 4095: all VLANs (trunk to the guest, VGT)


def _names(items):
    return ', '.join(sorted(set(items))) or 'none'


def _vlan_of(setting):
    """VLAN of a distributed port group's default port setting."""
    vlan = (setting or {}).get('vlan') or {}
    if isinstance(vlan.get('vlanId'), int):
        return vlan['vlanId']
    if isinstance(vlan.get('vlanId'), list):
        return [{'start': r.get('start'), 'end': r.get('end')} for r in vlan['vlanId']]
    return None


def validate_partial(params):
    """The user's port group spec (vlan, vswitch) as a partial spec, or SpecError."""
    partial = {}
    if params.get('vlan') is not None:
        if not 0 <= params['vlan'] <= MAX_VLAN:
            raise SpecError('vlan', 'must be 0 (no VLAN) to 4094, or 4095 (all VLANs), got %d' % params['vlan'])
        partial['vlan'] = params['vlan']
    if params.get('vswitch') is not None:
        if not params['vswitch'].strip():
            raise SpecError('vswitch', 'must not be empty')
        partial['vswitch'] = params['vswitch']
    return partial


class VSpherePortgroupDriver(HostScopedDriver):
    kind = 'port group'

    def __init__(self, client, placement=None, listing=False):
        super().__init__(client, placement, managing=not listing)

    # -- reading --------------------------------------------------------------------------
    def _query(self):
        return self.client.host_inventory('reading ESXi hosts and their port groups', network_systems=True,
                                          networks=True, vm_names=True)

    def _netsys(self, host):
        return self._inv.get(host.get('configManager.networkSystem')) or {}

    def _portgroups_on(self, host):
        return dict((pg['spec']['name'], pg) for pg in self._netsys(host).get('networkInfo.portgroup') or []
                    if pg.get('spec'))

    def _vswitches_on(self, host):
        return [vs['name'] for vs in self._netsys(host).get('networkInfo.vswitch') or []]

    def _datacenter(self):
        dcs = set((self._inv.datacenter_of(h['moid']) or {}).get('name') for h in self.hosts())
        return dcs.pop() if len(dcs) == 1 else None

    def read(self, name):
        found = {}
        for host in self.hosts():
            pg = self._portgroups_on(host).get(name)
            found[host['name']] = None if pg is None else {
                'vswitch': pg['spec'].get('vswitchName'), 'vlan': pg['spec'].get('vlanId') or 0}
        if not any(found.values()):
            return None
        return {'name': name, 'hosts': found}

    def state(self, name):
        return 'present' if self.read(name) is not None else 'absent'

    def attached_vms(self, name):
        """Names of the VMs on a network of this name in the hosts' datacenter(s)."""
        self.inventory()
        dcs = [(self._inv.datacenter_of(h['moid']) or {}).get('moid') for h in self.hosts()]
        vms = set()
        for net in self._inv.rows('networks'):
            if net['name'] == name and net['type'] == 'Network' and \
                    (self._inv.datacenter_of(net['moid']) or {}).get('moid') in dcs:
                vms.update((self._inv.get(vm) or {}).get('name') for vm in net.get('vm') or [])
        return sorted(vm for vm in vms if vm)

    # -- the normalized view -------------------------------------------------------------------
    def describe(self, actual):
        present = [(host, pg) for host, pg in sorted(actual['hosts'].items()) if pg]
        vlans = set(pg['vlan'] for _host, pg in present)
        vswitches = set(pg['vswitch'] for _host, pg in present)
        return {
            'name': actual['name'],
            'state': 'present',
            'backend': 'vsphere',
            'type': 'standard',
            'datacenter': self._datacenter(),
            'spec': {'vlan': vlans.pop() if len(vlans) == 1 else None,
                     'vswitch': vswitches.pop() if len(vswitches) == 1 else None,
                     'hosts': [host for host, _pg in present]},
            'portgroups': [{'host': host, 'vswitch': pg['vswitch'], 'vlan': pg['vlan']} for host, pg in present],
        }

    def list(self, name=None):
        """Standard port groups of the chosen hosts (one entry per name) and distributed port groups
        of their datacenters, as ``describe`` views."""
        inv = self.inventory()
        hosts = self.hosts()
        by_name = {}
        for host in hosts:
            for pg_name, pg in self._portgroups_on(host).items():
                by_name.setdefault(pg_name, {'name': pg_name, 'hosts': dict((h['name'], None) for h in hosts)})
                by_name[pg_name]['hosts'][host['name']] = {'vswitch': pg['spec'].get('vswitchName'),
                                                           'vlan': pg['spec'].get('vlanId') or 0}
        found = [self.describe(actual) for actual in by_name.values()]
        dcs = set((inv.datacenter_of(h['moid']) or {}).get('moid') for h in hosts)
        for pg in inv.rows('networks'):
            if pg['type'] != 'DistributedVirtualPortgroup' or (inv.datacenter_of(pg['moid']) or {}).get('moid') not in dcs:
                continue
            if pg['name'].endswith('-DVUplinks') or '-DVUplinks-' in pg['name']:
                continue  # a switch's uplink port group carries no VMs (left out as the vm module does)
            switch = inv.get(pg.get('config.distributedVirtualSwitch')) or {}
            found.append({
                'name': pg['name'], 'state': 'present', 'backend': 'vsphere', 'type': 'distributed',
                'datacenter': (inv.datacenter_of(pg['moid']) or {}).get('name'),
                'spec': {'vlan': _vlan_of(pg.get('config.defaultPortConfig')), 'switch': switch.get('name'),
                         'ports': pg.get('config.numPorts')},
                'portgroups': [],
            })
        return sorted((f for f in found if name is None or f['name'] == name),
                      key=lambda f: (f['name'], f['type']))

    # -- desired state -----------------------------------------------------------------------
    def desired(self, partial, actual):
        """The full spec, checked against every host before anything is written."""
        inv = self.inventory()
        hosts = self.hosts()
        name = actual['name'] if actual else partial['name']
        present = dict((h, pg) for h, pg in ((actual or {}).get('hosts') or {}).items() if pg)
        vlans = set(pg['vlan'] for pg in present.values())
        vswitches = set(pg['vswitch'] for pg in present.values())
        vlan = partial.get('vlan', vlans.pop() if len(vlans) == 1 else 0)
        vswitch = partial.get('vswitch') or (vswitches.pop() if len(vswitches) == 1 else DEFAULT_VSWITCH)
        dcs = set((inv.datacenter_of(h['moid']) or {}).get('moid') for h in hosts)
        for net in inv.rows('networks'):
            if net['name'] == name and net['type'] == 'DistributedVirtualPortgroup' and \
                    (inv.datacenter_of(net['moid']) or {}).get('moid') in dcs:
                switch = (inv.get(net.get('config.distributedVirtualSwitch')) or {}).get('name')
                raise SpecError('name', '%r is a distributed port group (of switch %s) in datacenter %s; this module '
                                'manages standard vSwitch port groups only - choose another name'
                                % (name, switch, (inv.datacenter_of(net['moid']) or {}).get('name')))
        for host in hosts:
            existing = present.get(host['name'])
            if existing and partial.get('vswitch') and existing['vswitch'] != partial['vswitch']:
                raise SpecError('vswitch', 'port group %r is on vSwitch %s of host %s; moving it to %s is not '
                                'supported - remove it first (state: absent)'
                                % (name, existing['vswitch'], host['name'], partial['vswitch']))
            if not existing and vswitch not in self._vswitches_on(host):
                raise SpecError('vswitch', 'host %s has no standard vSwitch named %r; vSwitches there: %s'
                                % (host['name'], vswitch, _names(self._vswitches_on(host))))
        return {'vlan': vlan, 'vswitch': vswitch, 'hosts': [h['name'] for h in hosts]}

    # -- writes ------------------------------------------------------------------------------------
    def _refs(self):
        return dict((h['name'], self._netsys(h).get('ref')) for h in self.hosts())

    def create(self, name, spec):
        self._add(name, spec, spec['hosts'])
        return None

    def _add(self, name, spec, hosts):
        """Add the port group to ``hosts``; on failure, remove it again where this run added it."""
        refs = self._refs()
        self._stale = True
        done = []
        for host in hosts:
            try:
                self.client.add_portgroup(refs[host], host, name, spec['vswitch'], spec['vlan'])
            except VirtError as exc:
                if done:
                    undone, report = self._undo(refs, name, done)
                    exc.msg = '%s. %s' % (exc.msg, report)
                    if not undone:
                        exc.details['performed'] = True  # the port group stays on some hosts: a change
                raise
            done.append(host)

    def _undo(self, refs, name, done):
        """Remove the port group from the hosts in ``done``: ``(whether it worked everywhere, what to tell)``."""
        failed = []
        for host in done:
            try:
                self.client.remove_portgroup(refs[host], host, name)
            except VirtError as exc:
                failed.append('%s (%s)' % (host, exc.msg))
        if failed:
            return False, ('Removing it again from the hosts this run had added it to failed on %s; it stays there'
                           % ', '.join(failed))
        return True, 'Removed it again from %s, where this run had added it' % ', '.join(done)

    def plan_update(self, actual, spec):
        add = [h for h in spec['hosts'] if not actual['hosts'].get(h)]
        update = [h for h in spec['hosts'] if actual['hosts'].get(h) and actual['hosts'][h]['vlan'] != spec['vlan']]
        changes = (['hosts'] if add else []) + (['vlan'] if update else [])
        return Plan(changes, details={'add': add, 'update': update, 'spec': spec})

    def apply_update(self, actual, plan):
        spec = plan.details['spec']
        refs = self._refs()
        self._stale = True
        written = False
        try:
            for host in plan.details['update']:
                self.client.update_portgroup(refs[host], host, actual['name'], actual['hosts'][host]['vswitch'],
                                             spec['vlan'])
                written = True
            self._add(actual['name'], spec, plan.details['add'])
        except VirtError as exc:
            if written:
                exc.details['performed'] = True  # VLANs already changed on some hosts
            raise
        return None

    def delete(self, actual, options):
        refs = self._refs()
        self._stale = True
        written = False
        try:
            for host, pg in sorted(actual['hosts'].items()):
                if pg:
                    self.client.remove_portgroup(refs[host], host, actual['name'])
                    written = True
        except VirtError as exc:
            if written:
                exc.details['performed'] = True  # already removed from some hosts
            raise
        return None

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Templates, clones and guest customization of a vSphere VM.

- ``template``: ``config.template`` (MarkAsTemplate / MarkAsVirtualMachine; a template has no resource pool,
  so it becomes a VM again in the pool of the placement options or of its host's cluster). A template is
  changed as a VM and marked a template again; when a step in between fails it is marked a template again at
  once (the error lists both marks as actions), and marked ``performed`` when that fails too.
- ``clone_from``: CloneVM_Task of a VM or template, only for a VM that does not exist. The clone records its
  source in extraConfig ``virtfleet.clone_of`` (JSON ``{name, uuid, linked}``, ``uuid`` the source's instance
  UUID): a task naming another source for an existing VM is refused.
- ``customization``: CustomizeVM_Task (LinuxPrep) of a powered-off VM; vSphere applies it at the next power-on.
  The normalized customization is kept in extraConfig ``virtfleet.customization`` (JSON) and read back as
  ``spec.customization``, so it is applied once. A running VM is not customized at once: the customization
  waits (``virtfleet.customization.pending``) until the VM is next stopped or started by this collection.
  vSphere refuses a customization while an earlier one has not run yet (CustomizationPending: customized, never
  powered on since); the error says to power the VM on once. ``customization: {}`` is a customization (LinuxPrep
  with the VM's name as host name, DHCP on every NIC), not the absence of one: it is applied like any other.
"""

from __future__ import annotations

import ipaddress
import json

from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_config as vmconfig
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError, VirtError

CLONE_KEY = 'virtfleet.clone_of'
CUSTOM_KEY = 'virtfleet.customization'
CUSTOM_PENDING_KEY = 'virtfleet.customization.pending'


def _json(value):
    try:
        return json.loads(value) if value not in (None, '') else None
    except ValueError:
        return None


def read(extra):
    """``(cloned_from, customization, customization_pending)`` from a VM's extraConfig (a dict)."""
    clone = _json(extra.get(CLONE_KEY))
    if not isinstance(clone, dict):
        clone = None
    custom = _json(extra.get(CUSTOM_KEY))
    if not isinstance(custom, dict):
        custom = None
    return clone, custom, extra.get(CUSTOM_PENDING_KEY) not in (None, '', 'false')


def source(inv, placement, name):
    """The row of the VM or template ``name`` to clone (in the datacenter option's datacenter, if set)."""
    found = [v for v in inv.rows('vms') if v.get('name') == name]
    if placement.get('datacenter'):
        found = [v for v in found if (inv.datacenter_of(v['moid']) or {}).get('name') == placement['datacenter']]
    if not found:
        raise SpecError('clone_from', 'no VM or template named %r%s to clone' % (
            name, ' in datacenter %s' % placement['datacenter'] if placement.get('datacenter') else ''))
    if len(found) > 1:
        raise SpecError('clone_from', '%d VMs are named %s (%s); set datacenter to say which one to clone'
                        % (len(found), name, ', '.join(sorted(inv.path(v['moid']) for v in found))))
    return found[0]


def check_existing(actual, clone):
    """A task with ``clone_from`` for a VM that exists: it must be a clone of that source."""
    recorded = actual['cloned_from']
    if recorded is None or recorded.get('name') != clone['source']:
        raise SpecError('clone_from', 'VM %s exists and %s; it is not a clone of %s. Another VM of this name is never '
                        'taken for the clone: choose another name, or leave clone_from out to manage it' % (
                            actual['name'], 'was cloned from %s' % recorded['name'] if recorded else
                            'is not a clone', clone['source']))


def target(inv, placement, src):
    """Where the clone goes: the placement options, else where the source is (its cluster's root pool for a
    template, which has no pool), in the source's datacenter and folder."""
    p = placement
    dc = inv.datacenter(p['datacenter']) if p.get('datacenter') else src['dc']
    if p.get('cluster') or p.get('host'):
        compute, host = inv.compute(dc, p.get('cluster'), p.get('host'))
    elif src['compute'] is not None and src['dc'] is not None and src['dc']['moid'] == dc['moid']:
        compute, host = src['compute'], (src['host'] if src['compute']['type'] != 'ClusterComputeResource' else None)
    else:
        compute, host = inv.compute(dc)
    hosts = [host] if host else inv.hosts_of(compute)
    if not hosts:
        raise SpecError('cluster', '%s has no hosts to run the VM' % compute['name'])
    if p.get('folder') or src['dc'] is None or src['dc']['moid'] != dc['moid']:
        folder = inv.folder(dc, p.get('folder'))
    else:
        folder = inv.get(src['row'].get('parent'))
    if p.get('datastore'):
        store = inv.datastore(dc, p['datastore'], hosts)
    else:
        store = None  # the source's datastore
    return {'dc': dc, 'compute': compute, 'host': host, 'hosts': hosts,
            'pool': inv.resource_pool(compute, p.get('resource_pool')), 'folder': folder, 'datastore': store}


def check_customization(spec):
    """What vSphere's Linux customization cannot carry, refused before anything is written."""
    custom = spec.get('customization')
    if not custom:
        return
    if custom.get('ssh_authorized_keys'):
        raise SpecError('customization.ssh_authorized_keys', 'vSphere guest customization (LinuxPrep) cannot install '
                        'SSH keys; put them in the template, or use the libvirt backend\'s cloud-init seed')
    if custom.get('user_data'):
        raise SpecError('customization.user_data', 'vSphere guest customization (LinuxPrep) cannot carry '
                        'cloud-config user data')
    networks = custom.get('networks') or []
    for index, net in enumerate(networks):
        if not net.get('dhcp') and ipaddress.ip_address(net['ip']).version != 4:
            raise SpecError('customization.networks[%d].ip' % index, 'vSphere customization here takes IPv4 '
                            'addresses; %s is IPv6' % net['ip'])
    if len(networks) > len(spec['interfaces']):
        raise SpecError('customization.networks', 'has %d items but the VM has %d network interfaces; one item per '
                        'interface, in their order' % (len(networks), len(spec['interfaces'])))


def stored(custom):
    """The extraConfig value that records an applied customization."""
    return json.dumps(custom, sort_keys=True) if custom else ''


def record(name, uuid, linked):
    return json.dumps({'name': name, 'uuid': uuid, 'linked': bool(linked)}, sort_keys=True)


class CloneSteps:
    """The steps of ``VSphereVMDriver`` that read a clone's source, clone it and make a template a VM again (a
    mixin: they use the driver's client, inventory, placement and its reading and update steps)."""

    def _source(self, clone):
        """The actual VM or template a new VM is cloned from (``SpecError`` naming clone_from when missing)."""
        row = source(self.inventory(), self.placement, clone['source'])
        rows = self.client.vms([row['ref']])
        if not rows:
            raise SpecError('clone_from', 'no VM or template named %r to clone (it was removed just now)'
                            % clone['source'])
        return self._actual(rows[0], self.inventory())

    def _clone_snapshot(self, src, clone):
        if not clone['linked']:
            return None
        snapshot = self.client.current_snapshot(src['ref'])
        if snapshot is None:
            raise SpecError('linked_clone', '%s has no snapshot: a linked clone shares the disks of the source\'s '
                            'current snapshot; take one first (virtfleet.virt.vm_snapshot), or clone in full '
                            '(linked_clone: false)' % src['name'])
        return snapshot

    def _create_clone(self, name, clone):
        """CloneVM_Task, then the task's other options on top of the source's spec (the simulator copies only
        memory, vCPUs and devices, and leaves a clone on the source's host), then the customization."""
        src, dest = clone['source'], clone['target']
        spec = self._clones_base(src, None)
        tags = spec.get('tags') or {}
        hosts = dest['hosts']
        location = {'pool': dest['pool']['ref'], 'host': (dest['host'] or hosts[0])['ref'],
                    'datastore': dest['datastore']['ref'] if dest['datastore'] else None}
        extra = [(vmconfig.tag_key(k), json.dumps(v)) for k, v in sorted(tags.items())]
        extra += [(CLONE_KEY, record(src['name'], src['vsphere']['instance_uuid'], clone['linked'])),
                  (CUSTOM_KEY, ''), (CUSTOM_PENDING_KEY, ''), (vmconfig.PENDING_KEY, '')]
        ref = self.client.clone_vm(src['ref'], src['name'], dest['folder']['ref'], name, location,
                                   {'extra_config': extra}, clone['snapshot'])
        self._refs[name] = ref
        actual = self.read(name)
        if actual['host'] is None or actual['host']['moid'] not in [h['moid'] for h in hosts]:
            self.client.relocate_vm(ref, name, {'host': location['host'], 'pool': location['pool']})
            actual = self.read(name)
        partial = dict((k, v) for k, v in clone['partial'].items() if k != 'clone')
        wanted = self.desired(partial, dict(actual, spec=self._clones_base(src, actual)))
        plan = self.plan_update(actual, wanted)
        if plan.changes:
            return self.apply_update(actual, plan)
        return None

    @staticmethod
    def _clones_base(src, actual):
        """The spec a clone starts from: the source's, with the clone's own devices (None: before it exists)."""
        spec = dict(src['spec'], template=False, customization=None)
        if actual is not None:
            spec.update(disks=actual['spec']['disks'], interfaces=actual['spec']['interfaces'])
        return spec

    def _undo_mark_as_vm(self, exc, ref, name, wrote):
        """A step after MarkAsVirtualMachine failed: the template is marked a template again, and the error says
        so; when that fails too, or a step before wrote to the VM, the error is marked ``performed``."""
        actions = list(exc.details.get('actions') or [])
        actions.append('marked template %s as a VM to change it' % name)
        try:
            self.client.mark_as_template(ref, name)
        except VirtError as undo:
            exc.msg = '%s; marking it a template again failed too (%s): it is a VM now' % (exc.msg, undo.msg)
            exc.args = (exc.msg,)
            exc.details.update(performed=True, actions=actions)
            return
        actions.append('marked %s as a template again after the failure' % name)
        exc.details['actions'] = actions
        if wrote:
            exc.details['performed'] = True

    def _vm_pool(self, actual):
        """The resource pool and host a template becomes a VM in: the placement options', else its host's."""
        inv = self.inventory()
        p = self.placement
        if p.get('cluster') or p.get('host'):
            compute, host = inv.compute(actual['dc'], p.get('cluster'), p.get('host'))
        else:
            compute, host = actual['compute'], actual['host']
        if compute is None:
            raise SpecError('cluster', 'template %s has no host: name the cluster or host to make it a VM in'
                            % actual['name'])
        return inv.resource_pool(compute, p.get('resource_pool')), host or inv.hosts_of(compute)[0]

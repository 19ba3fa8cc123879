# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Templates, clones and guest customization of a vSphere VM.

- ``template``: ``config.template`` (MarkAsTemplate / MarkAsVirtualMachine; a template has no resource pool,
  so it becomes a VM again in the pool of the placement options or of its host's cluster).
- ``clone_from``: CloneVM_Task of a VM or template, only for a VM that does not exist. The clone records its
  source in extraConfig ``virtfleet.clone_of`` (JSON ``{name, uuid, linked}``, ``uuid`` the source's instance
  UUID): a task naming another source for an existing VM is refused.
- ``customization``: CustomizeVM_Task (LinuxPrep) of a powered-off VM; vSphere applies it at the next power-on.
  The normalized customization is kept in extraConfig ``virtfleet.customization`` (JSON) and read back as
  ``spec.customization``, so it is applied once. A running VM is not customized at once: the customization
  waits (``virtfleet.customization.pending``) until the VM is next stopped or started by this collection.
"""

from __future__ import annotations

import ipaddress
import json

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

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

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the vm_fleet role: expand replicas, place VMs on hypervisors."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._units import size_mib

_ROLE_KEYS = ('replicas', 'name_format', 'anti_affinity')
# options whose strings may say "{name}" for the VM's own name (its own disk, log file, ...)
_PER_VM_KEYS = ('disks', 'serial', 'title', 'description')


def _copy(value):
    """A copy of ``value`` made of plain dicts and lists. Not ``copy.deepcopy``: under ansible-core 2.19 the
    items are lazy templating containers, whose deep copy copies the templar and the variables it holds (every
    host's) - 3.5 s per task for 20 items on 8 hypervisors, where this copy takes milliseconds."""
    if isinstance(value, dict):
        return dict((key, _copy(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_copy(item) for item in value]
    return value


def _substitute(value, name):
    if isinstance(value, str):
        return value.replace('{name}', name)
    if isinstance(value, list):
        return [_substitute(v, name) for v in value]
    if isinstance(value, dict):
        return dict((k, _substitute(v, name)) for k, v in value.items())
    return value


def expand_fleet(items, fleet, default_state='running'):
    expanded, seen = [], set()
    for index, item in enumerate(items or []):
        if not isinstance(item, dict) or not item.get('name'):
            raise AnsibleFilterError('fleet item %d needs a name' % index)
        replicas = item.get('replicas')
        if replicas is None:
            names = [item['name']]
        else:
            if not isinstance(replicas, int) or replicas < 0:
                raise AnsibleFilterError('fleet item %s: replicas must be a whole number, got %r'
                                         % (item['name'], replicas))
            fmt = item.get('name_format', '{name}-{index}')
            try:
                names = [fmt.format(name=item['name'], index=i) for i in range(1, replicas + 1)]
            except (KeyError, IndexError, ValueError) as exc:
                raise AnsibleFilterError('fleet item %s: name_format %r: %s' % (item['name'], fmt, exc))
        for name in names:
            if name in seen:
                raise AnsibleFilterError('fleet VM %s is listed twice' % name)
            seen.add(name)
            vm = dict((k, _copy(v)) for k, v in item.items() if k not in ('replicas', 'name_format'))
            vm['name'] = name
            vm.setdefault('state', default_state)
            vm['tags'] = dict(vm.get('tags') or {}, fleet=fleet)
            for key in _PER_VM_KEYS:
                if key in vm:
                    vm[key] = _substitute(vm[key], name)
            expanded.append(vm)
    return expanded


def place_vms(vms, host_facts, vm_facts, fleet, reserve_mib=256, batch_size=10, prune=False):
    """Assign each VM to a hypervisor and cut each hypervisor's share into batches.

    ``host_facts`` and ``vm_facts`` are the registered results of virtfleet.virt.host_info and
    virtfleet.virt.vm_info looped over the hypervisors with ``loop_var: hypervisor`` (each
    result has ``hypervisor``, a dict with ``name`` and ``uri``, and ``host`` or ``vms``).
    A VM that exists on a hypervisor
    stays there; a new one goes where the most memory is free once ``reserve_mib`` and the VMs
    already placed by this plan are counted, never beside a VM of its ``anti_affinity`` group;
    ties go to the hypervisor with the fewest vCPUs planned per CPU.
    Returns ``{'batches': [{'uri', 'hypervisor', 'vms'}], 'prune': [{'uri', 'hypervisor', 'vms'}],
    'placement': {vm name: hypervisor name}}``.
    """
    vms_by_name = dict((result['hypervisor']['name'], result['vms']) for result in vm_facts)
    hypervisors = [dict(result['hypervisor'], host=result['host'], vms=vms_by_name.get(result['hypervisor']['name'], []))
                   for result in host_facts]
    state = {}
    for hv in hypervisors:
        state[hv['name']] = {
            'uri': hv['uri'],
            'free': hv['host']['memory']['free_mib'] - int(reserve_mib),
            'cpus': max(1, hv['host']['cpu']['count']),
            'vcpus': sum(vm['spec'].get('vcpus') or 1 for vm in hv['vms'] if vm['state'] != 'stopped'),
            'existing': dict((vm['name'], vm) for vm in hv['vms']),
            'groups': set(vm['spec'].get('tags', {}).get('virtfleet_anti_affinity') for vm in hv['vms']),
            'vms': [],
        }
    placement = {}
    for vm in vms:
        where = [name for name, hv in state.items() if vm['name'] in hv['existing']]
        group = vm.get('anti_affinity')
        if group:
            vm['tags'] = dict(vm['tags'], virtfleet_anti_affinity=group)
        item = dict((k, v) for k, v in vm.items() if k not in _ROLE_KEYS)
        if where:
            chosen = where[0]
        else:
            try:
                memory = size_mib(vm.get('memory', 1024), '%s.memory' % vm['name'])
            except SpecError as exc:
                raise AnsibleFilterError(exc.msg)
            candidates = [name for name, hv in state.items() if not group or group not in hv['groups']]
            if not candidates:
                raise AnsibleFilterError('cannot place %s: a VM of its anti_affinity group %r already runs on every '
                                         'hypervisor (%s)' % (vm['name'], group, ', '.join(sorted(state))))
            fits = [name for name in candidates if state[name]['free'] >= memory]
            if not fits:
                raise AnsibleFilterError('cannot place %s: it needs %d MiB and the most any allowed hypervisor has '
                                         'free is %s' % (vm['name'], memory, ', '.join(
                                             '%s %d MiB' % (name, state[name]['free']) for name in sorted(candidates))))
            chosen = max(fits, key=lambda name: (state[name]['free'],
                                                 -state[name]['vcpus'] / float(state[name]['cpus']), name))
            state[chosen]['free'] -= memory
            state[chosen]['vcpus'] += vm.get('vcpus') or 1
        if group:
            state[chosen]['groups'].add(group)
        state[chosen]['vms'].append(item)
        placement[vm['name']] = chosen
    wanted = set(placement)
    batches, pruned = [], []
    size = max(1, int(batch_size))
    for name in sorted(state):
        hv = state[name]
        for start in range(0, len(hv['vms']), size):
            batches.append({'hypervisor': name, 'uri': hv['uri'], 'vms': hv['vms'][start:start + size]})
        stale = [vm_name for vm_name, vm in sorted(hv['existing'].items())
                 if vm['spec'].get('tags', {}).get('fleet') == fleet and vm_name not in wanted]
        if prune and stale:
            pruned.append({'hypervisor': name, 'uri': hv['uri'], 'vms': [{'name': n, 'state': 'absent'} for n in stale]})
    return {'batches': batches, 'prune': pruned, 'placement': placement}


def host_containers(items, fleet, hosts, host):
    """The containers of ``items`` that run on ``host``: replicas go round-robin over ``hosts``.

    Each container gets the label ``virtfleet.fleet=<fleet>`` (which pruning looks for) and its
    name from ``name_format`` (default ``{name}-{index}``) when the item has ``replicas``.
    """
    hosts = sorted(hosts)
    if host not in hosts:
        raise AnsibleFilterError('host %s is not one of the fleet hosts (%s)' % (host, ', '.join(hosts)))
    mine, seen, slot = [], set(), 0
    for index, item in enumerate(items or []):
        if not isinstance(item, dict) or not item.get('name'):
            raise AnsibleFilterError('container item %d needs a name' % index)
        names = [item['name']]
        if item.get('replicas') is not None:
            fmt = item.get('name_format', '{name}-{index}')
            try:
                names = [fmt.format(name=item['name'], index=i) for i in range(1, int(item['replicas']) + 1)]
            except (KeyError, IndexError, ValueError) as exc:
                raise AnsibleFilterError('container item %s: name_format %r: %s' % (item['name'], fmt, exc))
        for name in names:
            if name in seen:
                raise AnsibleFilterError('fleet container %s is listed twice' % name)
            seen.add(name)
            if hosts[slot % len(hosts)] == host:
                container = dict((k, _copy(v)) for k, v in item.items() if k not in ('replicas', 'name_format'))
                container['name'] = name
                container['labels'] = dict(container.get('labels') or {}, **{'virtfleet.fleet': fleet})
                mine.append(container)
            slot += 1
    return mine


class FilterModule:
    def filters(self):
        return {'expand_fleet': expand_fleet, 'place_vms': place_vms, 'host_containers': host_containers}

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the host_maintenance role: plan where the VMs of a host being drained go."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

_LIVE = ('running', 'paused')


def drain_plan(vms, host_facts, reserve_mib=256):
    """Choose a destination for every VM of a host being drained.

    ``vms`` are the VMs of the host (virtfleet.virt.vm_info), ``host_facts`` the registered results of
    virtfleet.virt.host_info looped over the other hypervisors with ``loop_var: hypervisor`` (each with
    ``name``, ``uri`` and optionally ``migration_uri``). A running or paused VM goes live to the hypervisor
    with the most free memory once ``reserve_mib`` and the VMs already planned there are counted; a
    stopped VM moves offline to the hypervisor with the most free memory as well (without counting it:
    it does not run there). Returns ``{'moves': [...], 'unplaced': [...]}``: each move has ``name``,
    ``mode``, ``memory_mib``, ``target``, ``target_uri`` and ``target_migration_uri``; each unplaced VM
    ``name`` and ``reason``.
    """
    if not isinstance(vms, list) or not isinstance(host_facts, list):
        raise AnsibleFilterError('drain_plan expects the list of VMs and the host_info results')
    free = {}
    targets = {}
    for result in host_facts:
        hypervisor = result.get('hypervisor') or {}
        if result.get('failed') or 'host' not in result:
            continue
        targets[hypervisor['name']] = hypervisor
        free[hypervisor['name']] = int(result['host']['memory']['free_mib']) - int(reserve_mib)
    moves, unplaced = [], []
    ordered = sorted(vms, key=lambda vm: (vm['state'] not in _LIVE, -int(vm['spec'].get('memory') or 0), vm['name']))
    for vm in ordered:
        memory = int(vm['spec'].get('memory') or 0)
        if vm['state'] in _LIVE:
            mode = 'live'
        elif vm['state'] == 'stopped':
            mode = 'offline'
        else:
            unplaced.append({'name': vm['name'], 'reason': 'it is %s; only running, paused and stopped VMs move'
                             % vm['state']})
            continue
        if not targets:
            unplaced.append({'name': vm['name'], 'reason': 'no other hypervisor is available (all unreachable '
                                                           'or in maintenance)'})
            continue
        fits = [name for name in targets if mode == 'offline' or free[name] >= memory]
        if not fits:
            unplaced.append({'name': vm['name'], 'reason': 'it needs %d MiB and the most free on another hypervisor '
                                                           'is %d MiB (after reserve_mib %s)'
                             % (memory, max(free.values()), reserve_mib)})
            continue
        chosen = max(fits, key=lambda name: (free[name], name))
        if mode == 'live':
            free[chosen] -= memory
        hypervisor = targets[chosen]
        moves.append({'name': vm['name'], 'mode': mode, 'memory_mib': memory, 'target': chosen,
                      'target_uri': hypervisor['uri'],
                      'target_migration_uri': hypervisor.get('migration_uri') or hypervisor['uri']})
    return {'moves': moves, 'unplaced': unplaced}


class FilterModule:
    def filters(self):
        return {'drain_plan': drain_plan}

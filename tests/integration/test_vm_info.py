"""virtfleet.virt.vm_info against the real libvirtd."""
from __future__ import annotations

import uuid

import libvirt

STATES = {libvirt.VIR_DOMAIN_RUNNING: 'running', libvirt.VIR_DOMAIN_SHUTOFF: 'stopped'}


def test_vm_info_filters_by_name_state_and_tags(ansible, conn, guests):
    created = []
    fleet_a, fleet_b = 'info-a-' + uuid.uuid4().hex[:6], 'info-b-' + uuid.uuid4().hex[:6]
    for index, tags in enumerate(({'fleet': fleet_a, 'role': 'web'}, {'fleet': fleet_a, 'role': 'db'},
                                  {'fleet': fleet_b})):
        name, disk, log = guests.new('info%d' % index)
        state = 'running' if index == 0 else 'present'
        r = ansible.task('vm', guests.spec(name, disk, log, tags=tags, state=state))
        assert r['changed'], r
        created.append((name, r['vm']))

    r = ansible.task('vm_info', {'tags': {'fleet': fleet_a}})
    assert [vm['name'] for vm in r['vms']] == sorted(n for n, vm in created[:2])
    r = ansible.task('vm_info', {'tags': {'fleet': fleet_a}, 'states': ['running']})
    assert [vm['name'] for vm in r['vms']] == [created[0][0]]
    # same shape as the vm module returns, and what the daemon says
    r = ansible.task('vm_info', {'name': created[1][0]})
    assert r['vms'] == [created[1][1]]
    assert not r['changed']
    dom = conn.lookupByName(created[1][0])
    assert r['vms'][0]['uuid'] == dom.UUIDString() and r['vms'][0]['state'] == STATES[dom.state()[0]] == 'stopped'

    # read from the daemon on every run: a change made behind the module's back shows at once
    dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_TITLE, 'set directly', None, None, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    dom.create()
    r = ansible.task('vm_info', {'tags': {'fleet': fleet_a}, 'states': ['running']})
    assert [vm['name'] for vm in r['vms']] == sorted(n for n, vm in created[:2])
    assert [vm['spec']['title'] for vm in r['vms'] if vm['name'] == created[1][0]] == ['set directly']
    r = ansible.task('vm_info', {'name': 'vft-does-not-exist'})
    assert r['vms'] == [] and not r.get('failed')

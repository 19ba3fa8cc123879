"""virtfleet.virt.vm_info against the real libvirtd."""
from __future__ import annotations

import uuid


def test_vm_info_filters_by_name_state_and_tags(ansible, guests):
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
    # same shape as the vm module returns
    r = ansible.task('vm_info', {'name': created[1][0]})
    assert r['vms'] == [created[1][1]]
    assert not r['changed']
    r = ansible.task('vm_info', {'name': 'vft-does-not-exist'})
    assert r['vms'] == [] and not r.get('failed')

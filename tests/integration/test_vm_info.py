"""virtfleet.virt.vm_info against the real libvirtd."""
from __future__ import annotations


def test_vm_info_filters_by_name_state_and_tags(ansible, guests):
    created = []
    for index, tags in enumerate(({'fleet': 'info-a', 'role': 'web'}, {'fleet': 'info-a', 'role': 'db'},
                                  {'fleet': 'info-b'})):
        name, disk, log = guests.new('info%d' % index)
        state = 'running' if index == 0 else 'present'
        r = ansible.task('vm', guests.spec(name, disk, log, tags=tags, state=state))
        assert r['changed'], r
        created.append((name, r['vm']))

    r = ansible.task('vm_info', {'tags': {'fleet': 'info-a'}})
    assert [vm['name'] for vm in r['vms']] == sorted(n for n, vm in created[:2])
    r = ansible.task('vm_info', {'tags': {'fleet': 'info-a'}, 'states': ['running']})
    assert [vm['name'] for vm in r['vms']] == [created[0][0]]
    # same shape as the vm module returns
    r = ansible.task('vm_info', {'name': created[1][0]})
    assert r['vms'] == [created[1][1]]
    assert not r['changed']
    r = ansible.task('vm_info', {'name': 'vft-does-not-exist'})
    assert r['vms'] == [] and not r.get('failed')

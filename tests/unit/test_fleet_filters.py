"""The vm_fleet role's filters: replica expansion and placement."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.virtfleet.virt.plugins.filter.fleet import expand_fleet, host_containers, place_vms


def hv(name, free, cpus=4, vms=()):
    hypervisor = {'name': name, 'uri': 'qemu+ssh://%s/system' % name}
    return ({'hypervisor': hypervisor, 'host': {'memory': {'free_mib': free}, 'cpu': {'count': cpus}}},
            {'hypervisor': hypervisor, 'vms': list(vms)})


def facts(*hvs):
    return [h[0] for h in hvs], [h[1] for h in hvs]


def existing(name, fleet='f', memory=512, group=None, state='running'):
    tags = {'fleet': fleet}
    if group:
        tags['virtfleet_anti_affinity'] = group
    return {'name': name, 'state': state, 'spec': {'memory': memory, 'vcpus': 1, 'tags': tags}}


def test_expand_replicas_names_tags_and_per_vm_disks():
    vms = expand_fleet([{'name': 'web', 'replicas': 2, 'memory': 512, 'tags': {'role': 'web'},
                         'disks': [{'path': '/img/{name}.qcow2'}]},
                        {'name': 'db', 'state': 'stopped'},
                        {'name': 'job', 'replicas': 1, 'name_format': '{name}{index:02d}'}], 'shop')
    assert [vm['name'] for vm in vms] == ['web-1', 'web-2', 'db', 'job01']
    assert vms[1]['disks'] == [{'path': '/img/web-2.qcow2'}]
    assert vms[0]['tags'] == {'role': 'web', 'fleet': 'shop'} and vms[0]['state'] == 'running'
    assert vms[2]['state'] == 'stopped' and 'replicas' not in vms[0]


class Lazy(dict):
    """Stands for ansible-core 2.19's lazy templating containers, whose deep copy copies the templar and every
    host's variables (seconds per task): the filters must copy items without ``copy.deepcopy``."""

    def __deepcopy__(self, memo):
        raise AssertionError('deep copy of a templating container')


def test_expand_and_host_containers_copy_items_without_deepcopy():
    item = Lazy(name='web', replicas=2, tags=Lazy(role='web'), disks=[Lazy(path='/img/{name}.qcow2')],
                graphics=Lazy(type='vnc', ports=[5900]), env=Lazy(TIER='front'))
    vms = expand_fleet([item], 'shop')
    assert vms[1]['disks'] == [{'path': '/img/web-2.qcow2'}] and vms[0]['tags'] == {'role': 'web', 'fleet': 'shop'}
    vms[0]['graphics']['ports'].append(5901)  # copies, not the item's own dict and list
    vms[1]['graphics']['type'] = 'spice'
    containers = host_containers([item], 'shop', ['h1'], 'h1')
    containers[0]['env']['TIER'] = 'back'
    assert item['graphics'] == {'type': 'vnc', 'ports': [5900]} and item['env'] == {'TIER': 'front'}
    assert containers[1]['env'] == {'TIER': 'front'} and containers[1]['labels'] == {'virtfleet.fleet': 'shop'}


@pytest.mark.parametrize('items,fragment', [
    ([{'name': 'a'}, {'name': 'a'}], 'listed twice'),
    ([{'memory': 1}], 'needs a name'),
    ([{'name': 'a', 'replicas': -1}], 'whole number'),
    ([{'name': 'a', 'replicas': 1, 'name_format': '{nope}'}], 'name_format'),
])
def test_expand_refuses_bad_items(items, fragment):
    with pytest.raises(AnsibleFilterError, match=fragment):
        expand_fleet(items, 'f')


def test_new_vms_go_where_memory_is_free_and_existing_ones_stay():
    hosts, vms = facts(hv('a', 4000, vms=[existing('web-1')]), hv('b', 3000))
    plan = place_vms(expand_fleet([{'name': 'web', 'replicas': 3, 'memory': 1024}], 'f'), hosts, vms, 'f',
                     reserve_mib=0)
    # web-1 stays on a; web-2 to a (4000 free); then b (3000) beats a (2976)
    assert plan['placement'] == {'web-1': 'a', 'web-2': 'a', 'web-3': 'b'}


def test_anti_affinity_spreads_and_refuses_when_impossible():
    hosts, vms = facts(hv('a', 8000), hv('b', 1000))
    items = expand_fleet([{'name': 'db', 'replicas': 2, 'memory': 512, 'anti_affinity': 'db'}], 'f')
    plan = place_vms(items, hosts, vms, 'f', reserve_mib=0)
    assert sorted(plan['placement'].values()) == ['a', 'b']
    assert all(vm['tags']['virtfleet_anti_affinity'] == 'db' for b in plan['batches'] for vm in b['vms'])
    assert all('anti_affinity' not in vm for b in plan['batches'] for vm in b['vms'])
    items = expand_fleet([{'name': 'db', 'replicas': 3, 'memory': 512, 'anti_affinity': 'db'}], 'f')
    with pytest.raises(AnsibleFilterError, match='anti_affinity group'):
        place_vms(items, hosts, vms, 'f', reserve_mib=0)
    # an existing member of the group counts too
    hosts, vms = facts(hv('a', 8000, vms=[existing('db-1', group='db')]), hv('b', 8000))
    plan = place_vms(expand_fleet([{'name': 'db', 'replicas': 2, 'memory': 512, 'anti_affinity': 'db'}], 'f'),
                     hosts, vms, 'f')
    assert plan['placement'] == {'db-1': 'a', 'db-2': 'b'}


def test_memory_that_fits_nowhere_is_a_clear_error():
    hosts, vms = facts(hv('a', 1000), hv('b', 900))
    with pytest.raises(AnsibleFilterError, match=r'needs 2048 MiB .* a 744 MiB, b 644 MiB'):
        place_vms(expand_fleet([{'name': 'big', 'memory': '2GiB'}], 'f'), hosts, vms, 'f')


def test_batches_and_prune():
    hosts, vms = facts(hv('a', 64000, vms=[existing('old-1'), existing('other', fleet='g')]))
    items = expand_fleet([{'name': 'w', 'replicas': 5, 'memory': 64}], 'f')
    plan = place_vms(items, hosts, vms, 'f', batch_size=2, prune=True)
    assert [len(b['vms']) for b in plan['batches']] == [2, 2, 1]
    assert plan['prune'] == [{'hypervisor': 'a', 'uri': 'qemu+ssh://a/system',
                              'vms': [{'name': 'old-1', 'state': 'absent'}]}]
    assert place_vms(items, hosts, vms, 'f', batch_size=2, prune=False)['prune'] == []


def test_host_containers_spreads_replicas_round_robin():
    from ansible_collections.virtfleet.virt.plugins.filter.fleet import host_containers
    items = [{'name': 'web', 'replicas': 3, 'image': 'x'}, {'name': 'db', 'image': 'y', 'labels': {'a': 'b'}}]
    a = host_containers(items, 'shop', ['h2', 'h1'], 'h1')
    b = host_containers(items, 'shop', ['h2', 'h1'], 'h2')
    assert [c['name'] for c in a] == ['web-1', 'web-3'] and [c['name'] for c in b] == ['web-2', 'db']
    assert b[1]['labels'] == {'a': 'b', 'virtfleet.fleet': 'shop'} and 'replicas' not in a[0]
    with pytest.raises(AnsibleFilterError, match='not one of the fleet hosts'):
        host_containers(items, 'shop', ['h1'], 'h3')

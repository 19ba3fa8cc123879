"""The drain_plan filter of the host_maintenance role."""
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.virtfleet.virt.plugins.filter.host_maintenance import drain_plan


def _vm(name, state='running', memory=1024):
    return {'name': name, 'state': state, 'spec': {'memory': memory}}


def _host(name, free_mib, failed=False):
    result = {'hypervisor': {'name': name, 'uri': 'qemu+ssh://%s/system' % name}}
    if failed:
        result['failed'] = True
    else:
        result['host'] = {'memory': {'free_mib': free_mib}}
    return result


def test_biggest_first_to_the_most_free_memory():
    plan = drain_plan([_vm('small', memory=512), _vm('big', memory=4096), _vm('mid', memory=2048)],
                      [_host('hv2', 5000), _host('hv3', 6000)], 256)
    assert [(m['name'], m['target']) for m in plan['moves']] == [('big', 'hv3'), ('mid', 'hv2'), ('small', 'hv2')]
    assert plan['unplaced'] == []
    assert plan['moves'][0]['target_migration_uri'] == 'qemu+ssh://hv3/system'


def test_stopped_vms_move_offline_without_counting_memory():
    plan = drain_plan([_vm('spare', 'stopped', 100000), _vm('web', memory=1000)], [_host('hv2', 2000)], 0)
    assert [(m['name'], m['mode']) for m in plan['moves']] == [('web', 'live'), ('spare', 'offline')]


def test_what_cannot_move_is_reported():
    plan = drain_plan([_vm('huge', memory=10000), _vm('bad', 'crashed')], [_host('hv2', 2000), _host('hv3', 0, True)])
    assert plan['moves'] == []
    reasons = dict((u['name'], u['reason']) for u in plan['unplaced'])
    assert 'needs 10000 MiB' in reasons['huge'] and 'crashed' in reasons['bad']
    plan = drain_plan([_vm('web')], [])
    assert 'no other hypervisor is available' in plan['unplaced'][0]['reason']


def test_bad_input():
    with pytest.raises(AnsibleFilterError):
        drain_plan('nope', [])

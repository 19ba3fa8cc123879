"""virtfleet.virt.storage_pool_info on VMware vSphere (datastores as pools): govmomi's vCenter simulator,
checked through pyvmomi."""
from __future__ import annotations

import json

import pytest

from conftest import assert_clean_failure

pytest.importorskip('pyVmomi')

POOL_KEYS = {'name', 'uuid', 'state', 'spec', 'volumes', 'capacity', 'allocation', 'available', 'pending_restart'}


def _datastores(si):
    from pyVmomi import vim
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True)
    try:
        return dict((ds.name, ds) for ds in view.view)
    finally:
        view.Destroy()


def test_datastores_as_pools(ansible, vsphere, vsphere_args):
    r = ansible.task('storage_pool_info', vsphere_args)
    assert not r.get('failed') and r['changed'] is False, r
    pools = dict((p['name'], p) for p in r['pools'])
    real = _datastores(vsphere)
    assert set(pools) == set(real)
    for name, ds in real.items():
        pool = pools[name]
        assert POOL_KEYS <= set(pool), pool
        summary = ds.summary
        assert pool['capacity'] == summary.capacity and pool['available'] == summary.freeSpace
        assert pool['allocation'] == summary.capacity - summary.freeSpace
        assert pool['state'] == ('active' if summary.accessible else 'inactive')
        assert pool['spec']['type'] == summary.type.lower() and pool['spec']['path'] == summary.url
        assert pool['volumes'] is None and pool['pending_restart'] is False
        assert pool['vsphere']['datacenter'] == 'DC0'
        hosts = sorted(h.name for h in _hosts_mounting(vsphere, ds))
        assert pool['vsphere']['hosts'] == hosts


def _hosts_mounting(si, ds):
    from pyVmomi import vim
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        return [h for h in view.view if ds in h.datastore]
    finally:
        view.Destroy()


def test_filters(ansible, vsphere_args):
    r = ansible.task('storage_pool_info', dict(vsphere_args, name='LocalDS_1'))
    assert [p['name'] for p in r['pools']] == ['LocalDS_1'], r
    r = ansible.task('storage_pool_info', dict(vsphere_args, name='vft-no-such-ds'))
    assert r['pools'] == [] and not r.get('failed'), r
    r = ansible.task('storage_pool_info', dict(vsphere_args, host='DC0_H0'))
    assert r['pools'] and all('DC0_H0' in p['vsphere']['hosts'] for p in r['pools']), r
    r = ansible.task('storage_pool_info', dict(vsphere_args, cluster='DC0_C0', states=['active'], types=['other']))
    assert r['pools'] and all(p['state'] == 'active' for p in r['pools']), r
    r = ansible.task('storage_pool_info', dict(vsphere_args, types=['nfs']))
    assert r['pools'] == [], r
    r = ansible.task('storage_pool_info', dict(vsphere_args, states=['inactive']))
    assert r['pools'] == [], r
    r = ansible.task('storage_pool_info', dict(vsphere_args, name='LocalDS_0'), check=True)
    assert [p['name'] for p in r['pools']] == ['LocalDS_0'] and r['changed'] is False


BAD = [
    ({'host': 'vft-no-such-host'}, 'host', 'no ESXi host named'),
    ({'cluster': 'vft-no-such-cluster'}, 'cluster', 'no cluster named'),
    ({'types': ['dir']}, 'types', 'not a type of vSphere datastores'),
]


@pytest.mark.parametrize('extra,param,fragment', BAD)
def test_bad_input_is_a_clear_failure(ansible, vsphere_args, extra, param, fragment):
    assert_clean_failure(ansible.task('storage_pool_info', dict(vsphere_args, **extra)), param, fragment)


def test_wrong_password_is_clear_and_never_shown(ansible, vsphere_args):
    wrong = 'vft-Wr0ng-d5-Pa55'
    r = ansible.task('storage_pool_info', dict(vsphere_args, password=wrong), extra_args=('-vvv',))
    assert_clean_failure(r, 'cannot log in to vSphere', 'user name or password is wrong')
    assert wrong not in json.dumps(r) and wrong not in ansible.last_stdout


def test_vsphere_options_are_refused_on_libvirt(ansible):
    r = ansible.task('storage_pool_info', {'backend': 'libvirt', 'host': 'DC0_H0'})
    assert_clean_failure(r, 'host', 'vsphere backend only')
    r = ansible.task('storage_pool_info', {'backend': 'libvirt', 'types': ['vmfs']})
    assert_clean_failure(r, 'types', 'not a type of libvirt storage pools')

"""The vSphere port group driver with a fake client: a port group that cannot be added on every host is
removed again where the run added it; what cannot be undone is reported as a change."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_network as drv
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError

HOSTS = ('esx1', 'esx2')


class FakeClient:
    """Cluster C0 with esx1 and esx2, each with vSwitch0; records the writes, fails where told."""

    def __init__(self, present=(), fail_add_on=None, fail_remove_on=None, fail_update_on=None):
        self.portgroups = dict((h, dict((name, 0) for host, name in present if host == h)) for h in HOSTS)
        self.fail = {'add': fail_add_on, 'remove': fail_remove_on, 'update': fail_update_on}
        self.calls = []

    def host_inventory(self, what, **_kwargs):
        return {
            'datacenters': [{'moid': 'dc', 'type': 'Datacenter', 'name': 'DC0', 'parent': 'root'}],
            'folders': [{'moid': 'f-host', 'type': 'Folder', 'name': 'host', 'parent': 'dc'}],
            'compute': [{'moid': 'c0', 'type': 'ClusterComputeResource', 'name': 'C0', 'parent': 'f-host',
                         'host': ['h-' + h for h in HOSTS]}],
            'hosts': [{'moid': 'h-' + h, 'type': 'HostSystem', 'name': h, 'parent': 'c0',
                       'configManager.networkSystem': 'ns-' + h} for h in HOSTS],
            'network_systems': [{'moid': 'ns-' + h, 'type': 'NetworkSystem', 'ref': 'ns-' + h,
                                 'networkInfo.vswitch': [{'name': 'vSwitch0'}],
                                 'networkInfo.portgroup': [{'spec': {'name': name, 'vswitchName': 'vSwitch0',
                                                                     'vlanId': vlan}}
                                                           for name, vlan in self.portgroups[h].items()]}
                                for h in HOSTS],
            'networks': [], 'vms': [],
        }

    def _write(self, what, host, name):
        self.calls.append((what, host, name))
        if self.fail[what] == host:
            raise BackendError('%s port group %s on host %s failed: HostBusy' % (what, name, host))

    def add_portgroup(self, netsys, host, name, vswitch, vlan):
        self._write('add', host, name)
        self.portgroups[host][name] = vlan

    def update_portgroup(self, netsys, host, name, vswitch, vlan):
        self._write('update', host, name)
        self.portgroups[host][name] = vlan

    def remove_portgroup(self, netsys, host, name):
        self._write('remove', host, name)
        del self.portgroups[host][name]


def _ensure(client, name, state='present', **params):
    driver = drv.VSpherePortgroupDriver(client, {'cluster': 'C0'})
    partial = dict(drv.validate_partial(params), name=name) if state != 'absent' else {}
    return _reconcile.ensure(driver, name, partial, state, None, _reconcile.Options())


def test_a_failed_add_is_undone_on_the_hosts_before():
    client = FakeClient(fail_add_on='esx2')
    with pytest.raises(BackendError) as err:
        _ensure(client, 'web', vlan=10)
    assert 'Removed it again from esx1, where this run had added it' in err.value.msg
    assert not err.value.outcome.changed and client.portgroups == {'esx1': {}, 'esx2': {}}
    assert client.calls == [('add', 'esx1', 'web'), ('add', 'esx2', 'web'), ('remove', 'esx1', 'web')]


def test_an_add_that_cannot_be_undone_is_a_change():
    client = FakeClient(fail_add_on='esx2', fail_remove_on='esx1')
    with pytest.raises(BackendError) as err:
        _ensure(client, 'web', vlan=10)
    assert 'failed on esx1' in err.value.msg and 'it stays there' in err.value.msg
    assert err.value.outcome.changed and err.value.outcome.actions == ['created in part']
    assert client.portgroups['esx1'] == {'web': 10}


def test_adding_to_the_missing_hosts_undoes_only_those():
    client = FakeClient(present=[('esx2', 'web')], fail_add_on='esx1')
    with pytest.raises(BackendError) as err:
        _ensure(client, 'web', vlan=0)
    assert not err.value.outcome.changed and client.portgroups == {'esx1': {}, 'esx2': {'web': 0}}


def test_an_update_then_a_failed_add_is_a_change():
    client = FakeClient(present=[('esx1', 'web')], fail_add_on='esx2')
    with pytest.raises(BackendError) as err:
        _ensure(client, 'web', vlan=20)
    assert err.value.outcome.changed and client.portgroups['esx1'] == {'web': 20}
    assert client.calls == [('update', 'esx1', 'web'), ('add', 'esx2', 'web')]


def test_a_removal_failing_on_the_second_host_is_a_change():
    client = FakeClient(present=[('esx1', 'web'), ('esx2', 'web')], fail_remove_on='esx2')
    with pytest.raises(BackendError) as err:
        _ensure(client, 'web', state='absent')
    assert err.value.outcome.changed and err.value.outcome.actions == ['deleted in part']
    client = FakeClient(present=[('esx1', 'web'), ('esx2', 'web')], fail_remove_on='esx1')
    with pytest.raises(BackendError) as err:
        _ensure(client, 'web', state='absent')
    assert not err.value.outcome.changed and client.portgroups['esx2'] == {'web': 0}

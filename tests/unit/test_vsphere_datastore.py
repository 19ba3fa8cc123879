"""The vSphere NFS datastore driver's logic with a fake client: option checks, the desired spec, plans,
mounts undone on failure, and unmounts on servers with and without RemoveDatastore."""
from __future__ import annotations

import copy

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_datastore as drv
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError


def _nfs(moid, name, server='nfs1', export='/export/a', kind='NFS', vms=()):
    return {'moid': moid, 'ref': moid, 'type': 'Datastore', 'name': name, 'parent': 'f-ds', 'summary.type': kind,
            'summary.url': 'ds:///vmfs/volumes/%s/' % moid, 'summary.capacity': 100, 'summary.freeSpace': 40,
            'summary.accessible': True, 'vm': list(vms),
            'info': {'nas': {'remoteHost': server, 'remotePath': export, 'type': kind}}}


class FakeClient:
    """A datacenter with cluster C0 (esx1, esx2) and standalone esx3; records the writes."""

    def __init__(self, stores=(), mounted=None, remove_supported=True, fail_mount_on=None, host_vms=None,
                 fail_remove_on=None):
        self.stores = [copy.deepcopy(s) for s in stores]
        self.mounted = dict((h, list((mounted or {}).get(h, []))) for h in ('esx1', 'esx2', 'esx3'))
        self.host_vms = host_vms or {}
        self.remove_supported = remove_supported
        self.fail_mount_on = fail_mount_on
        self.fail_remove_on = fail_remove_on
        self.calls = []

    def host_inventory(self, what, host_props, datastore_props=None, vm_names=False, **_kwargs):
        hosts = [{'moid': 'h-' + name, 'type': 'HostSystem', 'name': name, 'parent': parent,
                  'datastore': list(self.mounted[name]), 'vm': list(self.host_vms.get(name, [])),
                  'configManager.datastoreSystem': 'dss-' + name, 'configManager.datastoreSystem@ref': 'dss-' + name}
                 for name, parent in (('esx1', 'c0'), ('esx2', 'c0'), ('esx3', 'cr3'))]
        return {
            'datacenters': [{'moid': 'dc', 'type': 'Datacenter', 'name': 'DC0', 'parent': 'root'}],
            'folders': [{'moid': 'f-host', 'type': 'Folder', 'name': 'host', 'parent': 'dc'},
                        {'moid': 'f-ds', 'type': 'Folder', 'name': 'datastore', 'parent': 'dc'}],
            'compute': [{'moid': 'c0', 'type': 'ClusterComputeResource', 'name': 'C0', 'parent': 'f-host',
                         'host': ['h-esx1', 'h-esx2']},
                        {'moid': 'cr3', 'type': 'ComputeResource', 'name': 'esx3', 'parent': 'f-host',
                         'host': ['h-esx3']}],
            'hosts': hosts,
            'datastores': [dict(s) for s in self.stores],
            'vms': [{'moid': 'vm-1', 'type': 'VirtualMachine', 'name': 'web1', 'parent': 'f-vm'}],
        }

    def mount_nas_datastore(self, dss, host, name, remote_hosts, remote_path, nfs_type='nfs'):
        self.calls.append(('mount', host, name, tuple(remote_hosts), remote_path, nfs_type))
        if host == self.fail_mount_on:
            raise BackendError('mounting on %s failed: NFS server unreachable' % host)
        found = [s for s in self.stores if s['name'] == name]
        if not found:
            found = [_nfs('ds-' + name, name, remote_hosts[0], remote_path, 'NFS41' if nfs_type == 'nfs41' else 'NFS')]
            self.stores += found
        self.mounted[host].append(found[0]['moid'])
        return found[0]['moid']

    def remove_datastore(self, dss, host, ds, name):
        self.calls.append(('remove', host, name))
        if host == self.fail_remove_on:
            raise BackendError('unmounting datastore %s from host %s failed: HostBusy' % (name, host))
        if not self.remove_supported:
            raise BackendError('unmounting datastore %s from host %s failed: does not implement: RemoveDatastore '
                               '[MethodNotFound]' % (name, host), unsupported=True)
        self.mounted[host].remove(ds)

    def destroy_datastore(self, ds, name, timeout=None):
        self.calls.append(('destroy', name, timeout))
        for host in self.mounted.values():
            if ds in host:
                host.remove(ds)
        self.stores = [s for s in self.stores if s['moid'] != ds]


def _params(**extra):
    params = {'type': 'netfs', 'source': {'hosts': ['nfs1'], 'dir': '/export/a'}}
    params.update(extra)
    return params


def _ensure(client, name, state='present', placement=None, check=False, **params):
    driver = drv.VSphereDatastoreDriver(client, {'cluster': 'C0'} if placement is None else placement, managing=True,
                                        unmounting=state == 'absent', task_timeout=30)
    partial = dict(drv.validate_partial(_params(**params)), name=name) if state != 'absent' else {}
    return _reconcile.ensure(driver, name, partial, state, None, _reconcile.Options(check_mode=check))


# -- input ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('params,param,fragment', [
    ({'type': 'dir'}, 'type', 'vSphere mounts NFS datastores only'),
    ({'type': 'logical'}, 'type', 'VMFS datastores is not supported'),
    ({'source': {'devices': ['/dev/sdb']}}, 'source.devices', 'libvirt pools only'),
    ({'source': {'iqn': 'iqn.x'}}, 'source.iqn', 'libvirt pools only'),
    ({'source': {'hosts': ['nfs1:2049']}}, 'source.hosts', 'without :port'),
    ({'source': {'hosts': ['[fd00::1]:2049']}}, 'source.hosts', 'without :port'),
    ({'source': {'hosts': ['a b']}}, 'source.hosts', 'not a host name'),
    ({'source': {'hosts': []}}, 'source.hosts', 'name the NFS server'),
    ({'source': {'hosts': ['nfs1', 'NFS1']}}, 'source.hosts', 'names a server twice'),
    ({'source': {'dir': 'export'}}, 'source.dir', 'absolute path'),
    ({'source': {'format': 'auto'}}, 'source.format', 'nfs41'),
])
def test_bad_options(params, param, fragment):
    with pytest.raises(SpecError) as err:
        drv.validate_partial(params)
    assert err.value.param == param and fragment in err.value.msg


def test_options_normalized():
    source = {'hosts': ['[fd00::1]', 'fd00::2', 'nfs1.example'], 'dir': '/export//a/', 'format': 'nfs41'}
    partial = drv.validate_partial({'type': None, 'source': source})
    assert partial == {'type': None, 'source': {'hosts': ['fd00::1', 'fd00::2', 'nfs1.example'], 'dir': '/export/a',
                                                'format': 'nfs41'}}
    assert drv.validate_partial({}) == {'type': None, 'source': {}}


@pytest.mark.parametrize('name', ['', ' x', 'x ', 'a/b', 'a\\b', None])
def test_bad_names(name):
    with pytest.raises(SpecError):
        drv.validate_name(name)
    assert drv.validate_name('NFS store (1)') == 'NFS store (1)'


# -- mounting -----------------------------------------------------------------------------------------

def test_new_mount_on_a_cluster_and_idempotence():
    client = FakeClient()
    outcome, before, after = _ensure(client, 'shared', check=True)
    assert outcome.actions == ['created'] and before is None and client.calls == []
    assert after['spec'] == {'type': 'nfs', 'path': None, 'autostart': None, 'hosts': ['esx1', 'esx2'],
                             'source': {'hosts': ['nfs1'], 'dir': '/export/a', 'format': 'nfs'}}
    outcome, before, after = _ensure(client, 'shared')
    assert outcome.actions == ['created']
    assert [c[:2] for c in client.calls] == [('mount', 'esx1'), ('mount', 'esx2')]
    assert after['spec']['hosts'] == ['esx1', 'esx2'] and after['state'] == 'active'
    assert after['allocation'] == 60 and after['volumes'] is None and after['vsphere']['datacenter'] == 'DC0'
    client.calls = []
    outcome, _before, again = _ensure(client, 'shared', type=None, source={'dir': '/export/a/'})
    assert not outcome.changed and client.calls == [] and again == after


def test_mount_on_the_missing_hosts_only():
    client = FakeClient([_nfs('ds-1', 'shared')], mounted={'esx2': ['ds-1'], 'esx3': ['ds-1']})
    outcome, before, after = _ensure(client, 'shared', source={})
    assert outcome.actions == ['updated: hosts'] and client.calls == [
        ('mount', 'esx1', 'shared', ('nfs1',), '/export/a', 'nfs')]
    assert before['spec']['hosts'] == ['esx2', 'esx3'] and after['spec']['hosts'] == ['esx1', 'esx2', 'esx3']


def test_datastore_mounted_elsewhere_keeps_its_export():
    client = FakeClient([_nfs('ds-1', 'shared')], mounted={'esx3': ['ds-1']})
    outcome, before, _after = _ensure(client, 'shared', type=None, source={})
    assert outcome.actions == ['created'] and before is None
    assert [c[:2] for c in client.calls] == [('mount', 'esx1'), ('mount', 'esx2')]


@pytest.mark.parametrize('source,fragment', [
    ({'hosts': ['nfs2'], 'dir': '/export/a'}, 'mounted from server nfs1, not server nfs2'),
    ({'hosts': ['nfs1'], 'dir': '/export/b'}, 'mounted from export /export/a, not export /export/b'),
    ({'format': 'nfs41'}, 'NFS version nfs41'),
])
def test_never_remounted(source, fragment):
    client = FakeClient([_nfs('ds-1', 'shared')], mounted={'esx1': ['ds-1']})
    with pytest.raises(SpecError) as err:
        _ensure(client, 'shared', source=source)
    assert err.value.param == 'source' and fragment in err.value.msg and client.calls == []


def test_refusals_before_any_write():
    local = dict(_nfs('ds-l', 'LocalDS_0', kind='OTHER'), info={})
    client = FakeClient([local, _nfs('ds-1', 'shared')], mounted={'esx1': ['ds-l', 'ds-1']})
    with pytest.raises(SpecError, match='is of type other, not NFS'):
        _ensure(client, 'LocalDS_0')
    with pytest.raises(SpecError, match='unmounts NFS datastores only'):
        _ensure(client, 'LocalDS_0', state='absent', check=True)
    with pytest.raises(SpecError, match='esx1 already mounts nfs1:/export/a as datastore shared'):
        _ensure(client, 'other')
    with pytest.raises(SpecError, match='NFS 3 mounts exactly one server'):
        _ensure(client, 'new', source={'hosts': ['a', 'b'], 'dir': '/x'})
    with pytest.raises(SpecError, match='is required to mount the new datastore'):
        _ensure(client, 'new', type=None)
    with pytest.raises(SpecError) as err:
        _ensure(client, 'new', source={'hosts': ['a']})
    assert err.value.param == 'source.dir'
    with pytest.raises(SpecError) as err:
        _ensure(client, 'new', placement={})
    assert err.value.param == 'host' and 'name one with option host' in err.value.msg
    assert client.calls == []


def test_failed_mount_is_undone():
    client = FakeClient(fail_mount_on='esx2')
    with pytest.raises(BackendError) as err:
        _ensure(client, 'shared')
    assert 'NFS server unreachable' in err.value.msg and 'Unmounted it again from esx1' in err.value.msg
    assert client.calls[-1] == ('remove', 'esx1', 'shared') and client.mounted['esx1'] == []


def test_failed_mount_not_undone_is_a_change():
    client = FakeClient(fail_mount_on='esx2', fail_remove_on='esx1')
    with pytest.raises(BackendError) as err:
        _ensure(client, 'shared')
    assert 'Unmounting it again from esx1 failed too' in err.value.msg and client.mounted['esx1'] == ['ds-shared']
    assert err.value.outcome.changed and err.value.outcome.actions == ['created in part']


def test_unmount_failing_part_way_is_a_change():
    client = FakeClient([_nfs('ds-1', 'shared')], mounted={'esx1': ['ds-1'], 'esx2': ['ds-1']}, fail_remove_on='esx2')
    with pytest.raises(BackendError, match='HostBusy') as err:
        _ensure(client, 'shared', state='absent')
    assert err.value.outcome.changed and err.value.outcome.actions == ['deleted in part']
    assert client.mounted == {'esx1': [], 'esx2': ['ds-1'], 'esx3': []}
    client = FakeClient([_nfs('ds-1', 'shared')], mounted={'esx1': ['ds-1'], 'esx2': ['ds-1']}, fail_remove_on='esx1')
    with pytest.raises(BackendError, match='HostBusy') as err:
        _ensure(client, 'shared', state='absent')
    assert not err.value.outcome.changed and client.mounted['esx2'] == ['ds-1']


# -- unmounting -------------------------------------------------------------------------------------------

def test_unmount_from_the_chosen_hosts():
    client = FakeClient([_nfs('ds-1', 'shared')], mounted={'esx1': ['ds-1'], 'esx2': ['ds-1'], 'esx3': ['ds-1']})
    outcome, before, after = _ensure(client, 'shared', state='absent', check=True)
    assert outcome.actions == ['deleted'] and client.calls == [] and after is None
    outcome, before, after = _ensure(client, 'shared', state='absent')
    assert client.calls == [('remove', 'esx1', 'shared'), ('remove', 'esx2', 'shared')]
    assert client.mounted['esx3'] == ['ds-1'] and before['spec']['hosts'] == ['esx1', 'esx2', 'esx3']
    client.calls = []
    outcome, before, after = _ensure(client, 'shared', state='absent')
    assert not outcome.changed and client.calls == []


def test_without_remove_datastore_the_datastore_goes_as_a_whole():
    client = FakeClient([_nfs('ds-1', 'shared')], mounted={'esx1': ['ds-1'], 'esx3': ['ds-1']},
                        remove_supported=False)
    with pytest.raises(BackendError) as err:
        _ensure(client, 'shared', state='absent')
    assert 'also mounted on esx3' in err.value.msg and 'nothing was changed' in err.value.msg
    assert client.mounted['esx1'] == ['ds-1']
    with pytest.raises(BackendError, match='also mounted on esx3'):
        _ensure(client, 'shared', state='absent', placement={'datacenter': 'DC0', 'host': 'esx1'})
    assert client.mounted['esx1'] == ['ds-1'] and 'destroy' not in [c[0] for c in client.calls]
    client.mounted['esx3'] = []
    outcome, _before, _after = _ensure(client, 'shared', state='absent')
    assert outcome.actions == ['deleted'] and client.calls[-1] == ('destroy', 'shared', 30)
    assert client.stores == []


def test_in_use_by_vms_on_the_chosen_hosts_is_refused():
    store = _nfs('ds-1', 'shared', vms=['vm-1'])
    client = FakeClient([store], mounted={'esx1': ['ds-1'], 'esx3': ['ds-1']}, host_vms={'esx3': ['vm-1']})
    with pytest.raises(SpecError, match=r'in use by VMs on the hosts to unmount it from \(web1\)'):
        _ensure(client, 'shared', state='absent', placement={'host': 'esx3'}, check=True)
    outcome, _before, _after = _ensure(client, 'shared', state='absent')
    assert outcome.actions == ['deleted'] and client.calls == [('remove', 'esx1', 'shared')]

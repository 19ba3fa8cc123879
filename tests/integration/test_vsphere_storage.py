"""virtfleet.virt.storage_pool_info (datastores as pools) and storage_pool (NFS datastores mounted and
unmounted) on VMware vSphere: govmomi's vCenter simulator, checked through pyvmomi.

How the simulator (Debian's golang-github-vmware-govmomi-dev 0.24) mounts NFS, and what the tests do about it:

- ``HostDatastoreSystem.CreateNasDatastore`` names the datastore after the last element of the spec's
  ``localPath`` and needs that path to be an existing directory on the simulator's machine, relative to its
  working directory. The module sends ``localPath`` = the datastore name (what ESXi expects), so the
  ``nfs`` fixture makes a directory of that name in the simulator's working directory first
  (``tests/env/vcsim-up.sh`` starts it in ``<state dir>/nas``; the fixture asks /proc where it runs).
  No NFS server is contacted.
- The datastore's moid is made of server and export, so every test mounts its own export.
- It has no ``HostDatastoreSystem.RemoveDatastore`` (MethodNotFound): the module then removes the datastore as
  a whole (``Destroy_Task``) when it unmounts it from every host that mounts it, and refuses (changing nothing)
  an unmount from only some of them. ``test_cluster_mount`` asserts that refusal word for word;
  ``test_unmount_from_one_host_of_two`` is what a server with RemoveDatastore does, xfail(strict) here.
- A datastore mounted on two hosts stays behind in the datastore folder as a dangling reference after
  ``Destroy_Task``; the helpers here read datastores through the PropertyCollector, which skips it.
- It keeps only the first server address of an NFS 4.1 mount (no ``remoteHostNames``), so NFS 4.1 is
  tested with one address.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from conftest import assert_clean_failure, vsphere_host

pytest.importorskip('pyVmomi')

POOL_KEYS = {'name', 'uuid', 'state', 'spec', 'volumes', 'capacity', 'allocation', 'available', 'pending_restart'}


def _datastores(si):
    """{name: pyvmomi Datastore} of every datastore, read through the PropertyCollector (which skips the
    dangling references the simulator may leave in the datastore folder)."""
    from pyVmomi import vim, vmodl
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True)
    pc = vmodl.query.PropertyCollector
    try:
        spec = pc.FilterSpec(
            objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[
                pc.TraversalSpec(name='view', path='view', skip=False, type=vim.view.ContainerView)])],
            propSet=[pc.PropertySpec(type=vim.Datastore, pathSet=['name'], all=False)])
        return dict((item.propSet[0].val, item.obj) for item in content.propertyCollector.RetrieveContents([spec]))
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


# -- storage_pool: NFS datastores -------------------------------------------------------------------

HOST, HOST2, CLUSTER, STANDALONE = 'DC0_C0_H0', 'DC0_C0_H1', 'DC0_C0', 'DC0_H0'
SERVER = 'nfs.vft.example'


def mounts(si, name):
    """Names of the hosts that mount datastore ``name`` (None when vSphere has no datastore of that name)."""
    ds = _datastores(si).get(name)
    if ds is None:
        return None
    return sorted(h for h in (HOST, HOST2, STANDALONE) if ds in vsphere_host(si, h).datastore)


class NfsExports:
    """Unique vft- datastore names with their own exports; the simulator's directory for each (see the
    module docstring), and the datastores left over, removed afterwards."""

    def __init__(self, si, workdir):
        self.si = si
        self.workdir = workdir
        self.made = []

    def new(self):
        tag = uuid.uuid4().hex[:6]
        name = 'vft-nfs-%s' % tag
        os.makedirs(os.path.join(self.workdir, name))
        self.made.append(name)
        return name, '/export/vft-%s' % tag

    def cleanup(self):
        for name in self.made:
            ds = _datastores(self.si).get(name)
            if ds is not None:
                try:
                    ds.Destroy_Task()
                except Exception:  # best effort: the simulator dies with the session
                    pass
            shutil.rmtree(os.path.join(self.workdir, name), ignore_errors=True)


@pytest.fixture
def nfs(vcsim, vsphere):
    workdir = os.readlink('/proc/%d/cwd' % vcsim['pid'])
    box = NfsExports(vsphere, workdir)
    yield box
    box.cleanup()


def _pool(ansible, conn, args, **kwargs):
    return ansible.task('storage_pool', dict(conn, **args), **kwargs)


def _mount_args(name, export, **extra):
    return dict({'name': name, 'type': 'netfs', 'source': {'hosts': [SERVER], 'dir': export}}, **extra)


def test_nfs_datastore_lifecycle(ansible, vsphere, vsphere_args, nfs):
    name, export = nfs.new()
    args = _mount_args(name, export, host=HOST)

    # check mode predicts the mount and mounts nothing
    r = _pool(ansible, vsphere_args, args, check=True, diff=True)
    assert not r.get('failed') and r['changed'] and r['actions'] == ['created'], r
    assert r['diff']['before'] == {} and r['diff']['after']['spec']['hosts'] == [HOST], r
    assert r['diff']['after']['spec']['source'] == {'hosts': [SERVER], 'dir': export, 'format': 'nfs'}
    assert mounts(vsphere, name) is None

    # mount it on one host
    r = _pool(ansible, vsphere_args, args, diff=True)
    assert not r.get('failed') and r['changed'] and r['actions'] == ['created'], r
    assert r['refreshed'] is False, r  # documented as returned always; a datastore is never rescanned
    pool = r['pool']
    assert POOL_KEYS <= set(pool), pool
    assert pool['name'] == name and pool['state'] == 'active' and pool['volumes'] is None
    assert pool['spec']['type'] == 'nfs' and pool['spec']['hosts'] == [HOST] and pool['spec']['autostart'] is None
    assert pool['spec']['source'] == {'hosts': [SERVER], 'dir': export, 'format': 'nfs'}
    assert pool['vsphere']['hosts'] == [HOST] and pool['vsphere']['datacenter'] == 'DC0'
    assert r['diff']['before'] == {} and r['diff']['after']['spec'] == pool['spec']
    assert mounts(vsphere, name) == [HOST]
    nas = _datastores(vsphere)[name].info.nas
    assert (nas.remoteHost, nas.remotePath, nas.type) == (SERVER, export, 'NFS')
    assert pool['capacity'] == _datastores(vsphere)[name].summary.capacity

    # the same task again (also as state active, with the defaults spelled out): nothing to do
    r = _pool(ansible, vsphere_args, args)
    assert r['changed'] is False and r['actions'] == [] and not r.get('failed'), r
    assert r['pool']['spec'] == pool['spec']
    r = _pool(ansible, vsphere_args, dict(args, state='active', source={'host': SERVER, 'dir': export + '/',
                                                                        'format': 'nfs'}))
    assert r['changed'] is False and not r.get('failed'), r
    # left out, the source keeps its value; type too for a datastore that exists
    r = _pool(ansible, vsphere_args, {'name': name, 'esxi_hostname': HOST})
    assert r['changed'] is False and not r.get('failed'), r

    # storage_pool_info describes it as storage_pool does
    r = ansible.task('storage_pool_info', dict(vsphere_args, name=name))
    sizes = ('capacity', 'allocation', 'available')
    assert [dict((k, v) for k, v in p.items() if k not in sizes) for p in r['pools']] == \
        [dict((k, v) for k, v in pool.items() if k not in sizes)], r
    r = ansible.task('storage_pool_info', dict(vsphere_args, types=['nfs']))
    assert name in [p['name'] for p in r['pools']], r

    # never remounted from another export or server, nor as another NFS version
    for source, fragment in (({'dir': export + '-other'}, 'export %s-other' % export),
                             ({'hosts': ['other.vft.example']}, 'server other.vft.example'),
                             ({'format': 'nfs41'}, 'NFS version nfs41')):
        r = _pool(ansible, vsphere_args, {'name': name, 'host': HOST, 'source': source})
        assert_clean_failure(r, 'source', 'is mounted from', fragment, 'state: absent')
    # the export is mounted once per host
    other, _export = nfs.new()
    r = _pool(ansible, vsphere_args, _mount_args(other, export, host=HOST))
    assert_clean_failure(r, 'name', 'already mounts %s:%s as datastore %s' % (SERVER, export, name))
    assert mounts(vsphere, name) == [HOST] and mounts(vsphere, other) is None

    # absent: check mode changes nothing; then unmounted; again a no-op
    absent = {'name': name, 'host': HOST, 'state': 'absent'}
    r = _pool(ansible, vsphere_args, absent, check=True, diff=True)
    assert r['changed'] and r['actions'] == ['deleted'] and r['diff']['after'] == {}, r
    assert mounts(vsphere, name) == [HOST]
    r = _pool(ansible, vsphere_args, absent, diff=True)
    assert not r.get('failed') and r['changed'] and r['actions'] == ['deleted'], r
    assert r['diff']['before']['spec']['hosts'] == [HOST] and r['diff']['after'] == {} and r['pool'] == {}
    assert mounts(vsphere, name) is None
    r = _pool(ansible, vsphere_args, absent)
    assert r['changed'] is False and not r.get('failed') and r['pool'] == {}, r


def test_cluster_mount(ansible, vsphere, vsphere_args, nfs):
    name, export = nfs.new()
    r = _pool(ansible, vsphere_args, _mount_args(name, export, cluster=CLUSTER), check=True)
    assert r['changed'] and r['pool']['spec']['hosts'] == [HOST, HOST2], r
    assert mounts(vsphere, name) is None

    # mounted on one host first, then on the whole cluster: only the missing host mounts it
    assert _pool(ansible, vsphere_args, _mount_args(name, export, host=HOST2))['changed']
    r = _pool(ansible, vsphere_args, {'name': name, 'cluster': CLUSTER, 'datacenter': 'DC0'}, diff=True)
    assert not r.get('failed') and r['changed'] and r['actions'] == ['updated: hosts'], r
    assert r['diff']['before']['spec']['hosts'] == [HOST2] and r['diff']['after']['spec']['hosts'] == [HOST, HOST2]
    assert r['pool']['spec']['hosts'] == [HOST, HOST2]
    assert mounts(vsphere, name) == [HOST, HOST2]
    r = _pool(ansible, vsphere_args, _mount_args(name, export, cluster=CLUSTER))
    assert r['changed'] is False and not r.get('failed'), r

    # unmounted from one host of the two: the simulator has no RemoveDatastore, and the datastore as a whole
    # stays for the other host, so the run is refused and nothing changes (test_unmount_from_one_host_of_two)
    r = _pool(ansible, vsphere_args, {'name': name, 'host': HOST, 'state': 'absent'})
    assert_clean_failure(r)
    assert r['msg'] == unmount_unsupported(vsphere, name, HOST, [HOST2]) and r['changed'] is False, r
    assert mounts(vsphere, name) == [HOST, HOST2]

    # unmounted from the cluster
    r = _pool(ansible, vsphere_args, {'name': name, 'cluster': CLUSTER, 'state': 'absent'})
    assert not r.get('failed') and r['changed'] and r['actions'] == ['deleted'], r
    assert mounts(vsphere, name) is None
    r = _pool(ansible, vsphere_args, {'name': name, 'cluster': CLUSTER, 'state': 'absent'})
    assert r['changed'] is False and not r.get('failed'), r


NO_REMOVE_DATASTORE = ('govmomi\'s simulator does not implement HostDatastoreSystem.RemoveDatastore '
                       '(MethodNotFound): a datastore cannot be unmounted from some of the hosts that mount it')


class SimulatorLacks(Exception):
    """The step the simulator cannot do failed exactly the known way (the xfail reason says which)."""


def unmount_unsupported(si, name, host, others):
    """The exact message of unmounting ``name`` from ``host`` alone on the simulator (no RemoveDatastore)."""
    dss = vsphere_host(si, host).configManager.datastoreSystem
    return ('unmounting datastore %s from host %s failed: HostDatastoreSystem:%s does not implement: '
            'RemoveDatastore [MethodNotFound]; the datastore is also mounted on %s, so it cannot be removed as a '
            'whole instead - nothing was changed' % (name, host, dss._moId, ', '.join(others)))


@pytest.mark.xfail(raises=SimulatorLacks, strict=True, reason=NO_REMOVE_DATASTORE)
def test_unmount_from_one_host_of_two(ansible, vsphere, vsphere_args, nfs):
    name, export = nfs.new()
    r = _pool(ansible, vsphere_args, _mount_args(name, export, cluster=CLUSTER))
    assert not r.get('failed') and r['changed'], r
    assert mounts(vsphere, name) == [HOST, HOST2]
    r = _pool(ansible, vsphere_args, {'name': name, 'host': HOST, 'state': 'absent'}, diff=True)
    if r.get('msg') == unmount_unsupported(vsphere, name, HOST, [HOST2]):
        raise SimulatorLacks(r['msg'])
    assert not r.get('failed') and r['changed'] and r['actions'] == ['deleted'] and r['pool'] == {}, r
    assert r['diff']['before']['spec']['hosts'] == [HOST], r
    assert mounts(vsphere, name) == [HOST2]
    r = _pool(ansible, vsphere_args, {'name': name, 'host': HOST, 'state': 'absent'})
    assert r['changed'] is False and not r.get('failed'), r
    assert mounts(vsphere, name) == [HOST2]


def test_nfs41_on_a_standalone_host(ansible, vsphere, vsphere_args, nfs):
    name, export = nfs.new()
    args = _mount_args(name, export, host=STANDALONE, source={'hosts': [SERVER], 'dir': export, 'format': 'nfs41'})
    r = _pool(ansible, vsphere_args, args)
    assert not r.get('failed') and r['changed'], r
    assert r['pool']['spec']['type'] == 'nfs41' and r['pool']['spec']['source']['format'] == 'nfs41', r
    assert _datastores(vsphere)[name].info.nas.type == 'NFS41' and mounts(vsphere, name) == [STANDALONE]
    assert _pool(ansible, vsphere_args, args)['changed'] is False
    r = _pool(ansible, vsphere_args, {'name': name, 'host': STANDALONE, 'state': 'absent'})
    assert r['changed'] and mounts(vsphere, name) is None, r


# (options, parameter named in the message, fragment of the message)
BAD_MOUNTS = [
    ({'host': 'vft-no-such-host'}, 'host', 'no ESXi host named'),
    ({'cluster': 'vft-no-such-cluster'}, 'cluster', 'no cluster named'),
    ({'datacenter': 'vft-no-such-dc', 'host': HOST}, 'datacenter', 'no datacenter named'),
    ({}, 'host', 'or a cluster with option cluster'),
    ({'host': HOST, 'type': 'dir'}, 'type', 'vSphere mounts NFS datastores only'),
    ({'host': HOST, 'type': 'fs'}, 'type', 'VMFS datastores is not supported'),
    ({'host': HOST, 'type': None}, 'type', 'is required to mount the new datastore'),
    ({'host': HOST, 'path': '/srv/nfs'}, 'path', 'libvirt backend only'),
    ({'host': HOST, 'build': True}, 'build', 'libvirt backend only'),
    ({'host': HOST, 'autostart': True}, 'autostart', 'libvirt backend only'),
    ({'host': HOST, 'state': 'inactive'}, 'state', 'inactive applies to libvirt pools only'),
    ({'host': HOST, 'source': {'hosts': [SERVER]}}, 'source.dir', 'is required'),
    ({'host': HOST, 'source': {'dir': '/export/x'}}, 'source.hosts', 'is required'),
    ({'host': HOST, 'source': {'hosts': [SERVER + ':2049'], 'dir': '/e'}}, 'source.hosts', 'without :port'),
    ({'host': HOST, 'source': {'hosts': [SERVER, 'b.vft.example'], 'dir': '/e'}}, 'source.hosts', 'nfs41'),
    ({'host': HOST, 'source': {'hosts': [SERVER], 'dir': 'e'}}, 'source.dir', 'absolute path'),
    ({'host': HOST, 'source': {'hosts': [SERVER], 'dir': '/e', 'format': 'cifs'}}, 'source.format', 'nfs41'),
    ({'host': HOST, 'source': {'hosts': [SERVER], 'dir': '/e', 'devices': ['/dev/sdb']}}, 'source.devices',
     'libvirt pools only'),
    ({'host': HOST, 'wait_timeout': -1}, 'wait_timeout', '0 or more'),
]


@pytest.mark.parametrize('extra,param,fragment', BAD_MOUNTS)
def test_bad_mount_is_refused_and_changes_nothing(ansible, vsphere, vsphere_args, nfs, extra, param, fragment):
    name, export = nfs.new()
    args = dict(_mount_args(name, export), **extra)
    r = _pool(ansible, vsphere_args, dict((k, v) for k, v in args.items() if v is not None))
    assert_clean_failure(r, param, fragment)
    assert r['changed'] is False
    assert mounts(vsphere, name) is None


def test_other_datastores_are_never_touched(ansible, vsphere, vsphere_args):
    before = mounts(vsphere, 'LocalDS_0')
    assert before
    r = _pool(ansible, vsphere_args, {'name': 'LocalDS_0', 'host': HOST, 'type': 'netfs',
                                      'source': {'hosts': [SERVER], 'dir': '/export/x'}})
    assert_clean_failure(r, 'name', "datastore 'LocalDS_0' in datacenter DC0 is of type other, not NFS")
    for check in (True, False):
        r = _pool(ansible, vsphere_args, {'name': 'LocalDS_0', 'host': HOST, 'state': 'absent'}, check=check)
        assert_clean_failure(r, 'name', 'unmounts NFS datastores only', 'nothing was changed')
    assert mounts(vsphere, 'LocalDS_0') == before
    r = _pool(ansible, vsphere_args, {'name': 'vft-bad/name', 'host': HOST, 'state': 'absent'})
    assert_clean_failure(r, 'name', 'is not a valid datastore name')


def test_storage_pool_vsphere_options_are_refused_on_libvirt(ansible):
    r = ansible.task('storage_pool', {'name': 'vft-never', 'backend': 'libvirt', 'cluster': CLUSTER})
    assert_clean_failure(r, 'cluster', 'vsphere backend only')

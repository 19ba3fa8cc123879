"""vSphere at scale, scaled down (issue 18; the timings are bench/vsphere_scale.py's): on a simulator of its own with
200 VMs (test_vsphere_inventory's ``big_vcsim``, a separate instance for this module), ``vm_info`` lists every VM
in one PropertyCollector query, and ``vm`` finds one VM without reading the others.

What the driver retrieves is counted in-process, through the collection's own client and driver against the real
simulator (a spy that counts and passes everything on, no fake): the number of RetrievePropertiesEx queries and
of VM objects in their answers. No test asserts a time.
"""
from __future__ import annotations

import ssl
import sys
import uuid

import pytest

from test_vsphere_inventory import DB, TEMPLATE, big_vcsim  # noqa: F401  pylint: disable=unused-import

pytest.importorskip('pyVmomi')

NEW_VM = {'cluster': 'DC0_C0', 'datastore': 'LocalDS_0', 'memory': 64, 'vcpus': 1, 'disks': [{'size': '1GiB'}],
          'interfaces': [{'network': 'VM Network'}], 'tags': {'scale': 'yes'}}


def _conn(vcsim):
    return {'hostname': vcsim['host'], 'port': vcsim['port'], 'username': vcsim['username'],
            'password': vcsim['password'], 'ca_path': vcsim['ca_file']}


class Counted:
    """The collection's VSphereClient and VSphereVMDriver on the simulator; ``queries`` counts the
    RetrievePropertiesEx queries (their pages included) and ``vm_objects`` the VM objects their answers held."""

    def __init__(self, collections_path, vcsim, placement=None):
        if collections_path not in sys.path:
            sys.path.insert(0, collections_path)
        from ansible_collections.virtfleet.virt.plugins.module_utils._clients.vsphere import VSphereClient
        from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_vm import VSphereVMDriver
        self.client = VSphereClient(vcsim['host'], vcsim['username'], vcsim['password'], port=vcsim['port'],
                                    ca_path=vcsim['ca_file'])
        self.driver = VSphereVMDriver(self.client, placement)
        self.queries = 0
        self.vm_objects = 0
        retrieve, to_dicts = self.client._retrieve, self.client._to_dicts

        def counted_retrieve(*args, **kwargs):
            self.queries += 1
            return retrieve(*args, **kwargs)

        def counted_to_dicts(contents):
            rows = to_dicts(contents)
            self.vm_objects += sum(1 for row in rows if row['type'] == 'VirtualMachine')
            return rows
        self.client._retrieve = counted_retrieve
        self.client._to_dicts = counted_to_dicts

    def close(self):
        self.client.close()


@pytest.fixture(scope='module')
def scale_vm(ansible, big_vcsim):  # noqa: F811 - the fixture imported above
    """A VM made by virtfleet.virt.vm among the 200 (the simulator's own VMs carry a CD-ROM on SCSI, which the
    vm module refuses to take as it is)."""
    name = 'vft-scale-' + uuid.uuid4().hex[:6]
    r = ansible.task('vm', dict(_conn(big_vcsim), name=name, state='present', **NEW_VM))
    assert not r.get('failed') and r['changed'], r
    return name


def test_vm_info_lists_every_vm_in_one_query(ansible, collections_path, big_vcsim, scale_vm):  # noqa: F811
    r = ansible.task('vm_info', _conn(big_vcsim))
    assert not r.get('failed'), r
    names = [vm['name'] for vm in r['vms']]
    assert len(names) == 200 and scale_vm in names and TEMPLATE not in names   # 199 + ours; the template aside
    assert names == sorted(names)
    counted = Counted(collections_path, big_vcsim)
    try:
        listed = counted.driver.list()
    finally:
        counted.close()
    assert len(listed) == 201
    # one query (paged by the server: its pages count as one) read every VM with the other objects
    assert counted.queries == 1 and counted.vm_objects == 201


def test_one_vm_is_found_without_reading_the_others(ansible, collections_path, big_vcsim, scale_vm):  # noqa: F811
    # the no-op of the vm module on one VM among 201
    r = ansible.task('vm', dict(_conn(big_vcsim), name=scale_vm, state='present', **NEW_VM))
    assert not r.get('failed') and not r['changed'], r
    # what its read retrieves: the inventory without VMs, then the one VM - never the other 200
    for name, placement in ((scale_vm, None), (DB, None), (DB, {'folder': big_vcsim['folder']}),
                            (TEMPLATE, {'datacenter': 'DC0'})):
        counted = Counted(collections_path, big_vcsim, placement)
        try:
            actual = counted.driver.read(name)
            assert actual is not None and actual['name'] == name, (name, placement)
            assert counted.vm_objects == 1 and counted.queries == 2, (name, placement, counted.__dict__)
            assert counted.driver.read('vft-scale-missing-' + uuid.uuid4().hex[:6]) is None
            assert counted.vm_objects == 1  # a name that is nowhere: no VM read either
        finally:
            counted.close()
    assert DB and big_vcsim['folder']


def test_two_vms_of_one_name_in_two_folders_are_named_in_the_error(ansible, collections_path, big_vcsim, scale_vm):  # noqa: F811,E501
    """Finding by folder keeps candidates()' rule: a name in two folders of the scope is an error naming both."""
    from pyVim.connect import Disconnect, SmartConnect
    from pyVim.task import WaitForTask
    from pyVmomi import vim
    si = SmartConnect(host=big_vcsim['host'], port=big_vcsim['port'], user=big_vcsim['username'],
                      pwd=big_vcsim['password'], sslContext=ssl.create_default_context(cafile=big_vcsim['ca_file']))
    twin = None
    try:
        content = si.RetrieveContent()
        dc = content.rootFolder.childEntity[0]
        folder = [f for f in dc.vmFolder.childEntity if isinstance(f, vim.Folder) and f.name == big_vcsim['folder']][0]
        pool = dc.hostFolder.childEntity[0].resourcePool
        spec = vim.vm.ConfigSpec(name=scale_vm, memoryMB=32, numCPUs=1, guestId='otherGuest64',
                                 files=vim.vm.FileInfo(vmPathName='[LocalDS_0]'))
        WaitForTask(folder.CreateVM_Task(config=spec, pool=pool))
        twin = [v for v in folder.childEntity if isinstance(v, vim.VirtualMachine) and v.name == scale_vm][0]
        r = ansible.task('vm', dict(_conn(big_vcsim), name=scale_vm, state='present', **NEW_VM))
        assert r.get('failed') and not r['changed'], r
        msg = ' '.join(r['msg'].split())
        assert '2 VMs are named %s' % scale_vm in msg and '/DC0/vm/%s' % scale_vm in msg, msg
        assert '/DC0/vm/%s/%s' % (big_vcsim['folder'], scale_vm) in msg, msg
        # the folder option says which one: the twin, read alone
        counted = Counted(collections_path, big_vcsim, {'folder': big_vcsim['folder']})
        try:
            actual = counted.driver.read(scale_vm)
            assert actual['vsphere']['folder'] == '/DC0/vm/' + big_vcsim['folder'] and actual['vsphere']['moid'] == twin._moId
            assert counted.vm_objects == 1
        finally:
            counted.close()
    finally:
        if twin is not None:
            WaitForTask(twin.Destroy_Task())
        Disconnect(si)

"""virtfleet.virt.vm and vm_info on VMware vSphere: govmomi's vCenter simulator, checked through pyvmomi."""
from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import pytest

from conftest import assert_clean_failure, vsphere_snapshot, vsphere_vm

pytest.importorskip('pyVmomi')

CLUSTER, DATASTORE, PORTGROUP, DVPG = 'DC0_C0', 'LocalDS_0', 'VM Network', 'DC0_DVPG0'
TAG_PREFIX, PENDING_KEY = 'virtfleet.tags.', 'virtfleet.pending'  # where the driver keeps them: extraConfig


def _vm(ansible, conn, args, **kwargs):
    return ansible.task('vm', dict(conn, **args), **kwargs)


def _extra(vm):
    found = {}
    for option in vm.config.extraConfig:
        found[option.key] = option.value  # the simulator appends; the last value wins
    return dict((k, v) for k, v in found.items() if v != '')


def _tags(vm):
    """The tags the driver wrote: extraConfig virtfleet.tags.<quoted name> = JSON value (empty: removed)."""
    return dict((key, value) for key, value in _extra(vm).items() if key.startswith(TAG_PREFIX))


def _tag_entry(key, value):
    return TAG_PREFIX + quote(key, safe=''), json.dumps(value)


def _tagged(si, key, value):
    """Names of every VM on the simulator whose tag ``key`` is ``value``, read through the PropertyCollector
    (which skips the dangling references the simulator may leave behind)."""
    from pyVmomi import vim, vmodl
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    pc = vmodl.query.PropertyCollector
    try:
        spec = pc.FilterSpec(
            objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[
                pc.TraversalSpec(name='view', path='view', skip=False, type=vim.view.ContainerView)])],
            propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=['name', 'config.extraConfig'], all=False)])
        found = []
        for item in content.propertyCollector.RetrieveContents([spec]):
            props = dict((p.name, p.val) for p in item.propSet)
            extra = dict((o.key, o.value) for o in props.get('config.extraConfig') or [])
            if extra.get(_tag_entry(key, value)[0]) == _tag_entry(key, value)[1]:
                found.append(props['name'])
        return sorted(found)
    finally:
        view.Destroy()


def _unique(stem):
    """A tag value of this run only: the simulator can be kept between runs (VIRTFLEET_KEEP_ENV)."""
    return 'vft-%s-%s' % (stem, uuid.uuid4().hex[:8])


def _devices(vm, kind):
    from pyVmomi import vim
    return sorted((d for d in vm.config.hardware.device if isinstance(d, kind(vim))), key=lambda d: d.key)


def _nics(vm):
    return _devices(vm, lambda vim: vim.vm.device.VirtualEthernetCard)


def _disks(vm):
    return _devices(vm, lambda vim: vim.vm.device.VirtualDisk)


def _nic_network(vm, nic):
    """The port group name of ``nic`` from its backing (standard: deviceName; distributed: portgroupKey)."""
    port = getattr(nic.backing, 'port', None)
    if port is not None:
        return [n.name for n in vm.network if getattr(n, 'key', None) == port.portgroupKey][0]
    return nic.backing.deviceName


def test_lifecycle(ansible, vsphere, vsphere_args, vsphere_vms):
    name = vsphere_vms.new('life')
    fleet = _unique('life')
    assert _tagged(vsphere, 'fleet', fleet) == []
    args = {'name': name, 'cluster': CLUSTER, 'datastore': DATASTORE, 'memory': 64, 'vcpus': 1,
            'disks': [{'size': '1GiB'}], 'interfaces': [{'network': PORTGROUP}],
            'tags': {'fleet': fleet, 'empty': '', 'ünï': 'a "b"\nc'}, 'description': 'web tier'}

    # create: one VM in the cluster, on the datastore, with a new 1 GiB disk and one NIC
    r = _vm(ansible, vsphere_args, args)
    assert not r.get('failed'), r
    assert r['changed'] and r['actions'] == ['created'], r
    vm = r['vm']
    assert vm['state'] == 'stopped' and vm['pending_restart'] == [] and r['reboot_required'] is False
    assert vm['spec']['memory'] == 64 and vm['spec']['vcpus'] == 1 and vm['spec']['tags'] == args['tags']
    disk = vm['spec']['disks'][0]
    assert (disk['size'], disk['pool'], disk['bus'], disk['target']) == (1024, DATASTORE, 'scsi', 'sda')
    nic = vm['spec']['interfaces'][0]
    assert nic['source'] == PORTGROUP and nic['model'] == 'vmxnet3' and nic['mac']
    assert vm['vsphere']['cluster'] == CLUSTER and vm['vsphere']['datastore'] == DATASTORE
    real = vsphere_vm(vsphere, name)
    assert real.config.hardware.memoryMB == 64 and real.config.annotation == 'web tier'
    assert _tags(real) == dict(_tag_entry(k, v) for k, v in args['tags'].items())
    assert _tagged(vsphere, 'fleet', fleet) == [name]
    assert real.runtime.host.parent.name == CLUSTER
    (real_nic,), (real_disk,) = _nics(real), _disks(real)
    assert (type(real_nic).__name__, _nic_network(real, real_nic)) == ('vim.vm.device.VirtualVmxnet3', PORTGROUP)
    assert real_nic.macAddress.lower() == nic['mac']
    assert real_disk.capacityInKB == 1024 * 1024
    assert real_disk.backing.fileName == '[%s] %s' % (DATASTORE, disk['volume'])

    # the same task again: nothing changes and nothing is written
    before = vsphere_snapshot(vsphere, name)
    r = _vm(ansible, vsphere_args, args)
    assert r['changed'] is False and r['actions'] == [], r
    assert r['vm'] == vm
    assert vsphere_snapshot(vsphere, name) == before

    # check mode predicts the change, vSphere shows nothing changed, --diff shows it
    changed = dict(args, memory=128, vcpus=2)
    r = _vm(ansible, vsphere_args, changed, check=True, diff=True)
    assert r['changed'] is True and r['actions'] == ['updated: memory, max_memory, vcpus, max_vcpus'], r
    assert r['diff']['before']['spec']['memory'] == 64 and r['diff']['after']['spec']['memory'] == 128
    assert r['diff']['before']['spec']['vcpus'] == 1 and r['diff']['after']['spec']['vcpus'] == 2
    assert vsphere_snapshot(vsphere, name) == before

    # reconfigure a stopped VM: applied at once
    r = _vm(ansible, vsphere_args, changed, diff=True)
    assert r['changed'] and r['reboot_required'] is False, r
    real = vsphere_vm(vsphere, name)
    assert (real.config.hardware.memoryMB, real.config.hardware.numCPU) == (128, 2)

    # power on
    r = _vm(ansible, vsphere_args, dict(changed, state='running'))
    assert r['changed'] and r['actions'] == ['start'] and r['vm']['state'] == 'running', r
    assert vsphere_vm(vsphere, name).runtime.powerState == 'poweredOn'

    # a running VM without memory hot-add: the change waits for a restart and says so, every run
    grown = dict(changed, memory=256)
    r = _vm(ansible, vsphere_args, grown)
    assert r['changed'] and r['reboot_required'] is True, r
    assert 'memory' in r['vm']['pending_restart'] and r['vm']['spec']['memory'] == 256
    real = vsphere_vm(vsphere, name)
    assert real.config.hardware.memoryMB == 128 and _extra(real)[PENDING_KEY] == json.dumps({'memory': 256})
    before = vsphere_snapshot(vsphere, name)
    r = _vm(ansible, vsphere_args, grown)
    assert r['changed'] is False and r['reboot_required'] is True, r
    assert vsphere_snapshot(vsphere, name) == before

    # restart_if_required restarts it, and the change is live afterwards
    r = _vm(ansible, vsphere_args, dict(grown, restart_if_required=True))
    assert r['changed'] and r['reboot_required'] is False, r
    # the pending change is written between the shutdown and the start, and reported as such
    assert r['actions'] == ['shutdown', 'applied pending: memory', 'start'], r
    real = vsphere_vm(vsphere, name)
    assert real.config.hardware.memoryMB == 256 and real.runtime.powerState == 'poweredOn'
    assert r['vm']['pending_restart'] == [] and PENDING_KEY not in _extra(real)

    # a second NIC (distributed port group) and a grown disk go to the running VM
    more = dict(grown, disks=[{'size': '2GiB'}], interfaces=[{'network': PORTGROUP}, {'network': DVPG}])
    r = _vm(ansible, vsphere_args, more)
    assert r['changed'] and r['reboot_required'] is False, r
    assert [n['source'] for n in r['vm']['spec']['interfaces']] == [PORTGROUP, DVPG]
    assert r['vm']['spec']['interfaces'][0]['mac'] == nic['mac']
    assert r['vm']['spec']['disks'][0]['size'] == 2048 and r['vm']['spec']['disks'][0]['volume'] == disk['volume']
    real = vsphere_vm(vsphere, name)
    nics, disks = _nics(real), _disks(real)
    assert [_nic_network(real, n) for n in nics] == [PORTGROUP, DVPG]
    assert [type(n).__name__ for n in nics] == ['vim.vm.device.VirtualVmxnet3'] * 2
    # the first NIC keeps its MAC. Not proof that it was not replaced: govmomi's simulator gives a NIC re-created
    # in its slot the same device key and the same generated MAC (checked through pyvmomi)
    assert (nics[0].key, nics[0].macAddress) == (real_nic.key, real_nic.macAddress)
    assert nics[1].macAddress and nics[1].macAddress != real_nic.macAddress
    assert [(d.key, d.backing.fileName, d.capacityInKB) for d in disks] == \
        [(real_disk.key, real_disk.backing.fileName, 2 * 1024 * 1024)]  # the same disk file, grown
    assert real.runtime.powerState == 'poweredOn'
    assert not _vm(ansible, vsphere_args, more)['changed']

    # removing the first NIC leaves the second one as it was (same device, same MAC): NICs are matched by what
    # they are, not by position. A positional match would re-point the first NIC at DVPG and remove the second,
    # leaving the first NIC's device and MAC.
    second = (nics[1].key, nics[1].macAddress)
    fewer = dict(more, interfaces=[{'network': DVPG}])
    r = _vm(ansible, vsphere_args, fewer)
    assert r['changed'] and [n['mac'] for n in r['vm']['spec']['interfaces']] == [second[1].lower()], r
    real = vsphere_vm(vsphere, name)
    assert [(n.key, n.macAddress) for n in _nics(real)] == [second]
    assert _nic_network(real, _nics(real)[0]) == DVPG and real.runtime.powerState == 'poweredOn'
    assert not _vm(ansible, vsphere_args, fewer)['changed']

    # tags: replaced exactly, removed ones are gone
    fleet2 = _unique('life2')
    assert _tagged(vsphere, 'fleet', fleet2) == []
    r = _vm(ansible, vsphere_args, {'name': name, 'tags': {'fleet': fleet2}})
    assert r['changed'] and r['vm']['spec']['tags'] == {'fleet': fleet2}, r
    assert _tags(vsphere_vm(vsphere, name)) == dict([_tag_entry('fleet', fleet2)])
    assert _tagged(vsphere, 'fleet', fleet) == [] and _tagged(vsphere, 'fleet', fleet2) == [name]
    assert not _vm(ansible, vsphere_args, {'name': name, 'tags': {'fleet': fleet2}})['changed']

    # pause (suspend), resume, stop
    r = _vm(ansible, vsphere_args, {'name': name, 'state': 'paused'})
    assert r['changed'] and vsphere_vm(vsphere, name).runtime.powerState == 'suspended', r
    r = _vm(ansible, vsphere_args, {'name': name, 'state': 'running'})
    assert r['changed'] and vsphere_vm(vsphere, name).runtime.powerState == 'poweredOn', r
    r = _vm(ansible, vsphere_args, {'name': name, 'state': 'stopped'})
    assert r['changed'] and r['actions'] == ['shutdown'], r
    assert vsphere_vm(vsphere, name).runtime.powerState == 'poweredOff'

    # absent (files kept: the VM is unregistered), then absent again
    r = _vm(ansible, vsphere_args, {'name': name, 'state': 'absent'}, diff=True)
    assert r['changed'] and r['diff']['after'] == {} and r['diff']['before']['state'] == 'stopped', r
    assert vsphere_vm(vsphere, name) is None and r['deleted_volumes'] == []
    r = _vm(ansible, vsphere_args, {'name': name, 'state': 'absent'})
    assert r['changed'] is False and not r.get('failed'), r


def test_hot_add_applies_live_and_delete_volumes(ansible, vsphere, vsphere_args, vsphere_vms):
    name = vsphere_vms.new('hot')
    args = {'name': name, 'host': 'DC0_H0', 'datastore': 'LocalDS_1', 'memory': 64, 'vcpus': 1,
            'memory_hot_add': True, 'cpu_hot_add': True, 'disks': [{'size': 16}], 'state': 'running'}
    r = _vm(ansible, vsphere_args, args)
    assert r['changed'] and r['actions'] == ['created', 'start'], r
    assert r['vm']['vsphere']['host'] == 'DC0_H0' and r['vm']['vsphere']['memory_hot_add'] is True
    r = _vm(ansible, vsphere_args, dict(args, memory=128, vcpus=2))
    assert r['changed'] and r['reboot_required'] is False and r['vm']['pending_restart'] == [], r
    real = vsphere_vm(vsphere, name)
    assert (real.config.hardware.memoryMB, real.config.hardware.numCPU) == (128, 2)
    assert real.runtime.powerState == 'poweredOn'
    # shrinking memory is never live: pending until the restart
    r = _vm(ansible, vsphere_args, dict(args, memory=96, vcpus=2))
    assert r['reboot_required'] is True and r['vm']['pending_restart'] == ['memory', 'max_memory'], r
    real = vsphere_vm(vsphere, name)
    assert (real.config.hardware.memoryMB, real.config.hardware.numCPU) == (128, 2)
    assert real.runtime.powerState == 'poweredOn' and _extra(real)[PENDING_KEY] == json.dumps({'memory': 96})
    # absent with delete_volumes destroys the VM with its disk files
    volume = r['vm']['spec']['disks'][0]['volume']
    r = _vm(ansible, vsphere_args, {'name': name, 'state': 'absent', 'delete_volumes': True, 'force': True,
                                    'shutdown_timeout': 5})
    assert r['changed'] and r['deleted_volumes'] == ['[LocalDS_1] %s' % volume], r
    assert vsphere_vm(vsphere, name) is None


def test_check_mode_create_creates_nothing(ansible, vsphere, vsphere_args, vsphere_vms):
    name = vsphere_vms.new('check')
    args = {'name': name, 'cluster': CLUSTER, 'datastore': DATASTORE, 'memory': 32, 'state': 'running',
            'disks': [{'size': 8}], 'interfaces': [{'network': DVPG}]}
    r = _vm(ansible, vsphere_args, args, check=True, diff=True)
    assert r['changed'] and r['actions'] == ['created', 'start'], r
    assert r['diff']['before'] == {} and r['diff']['after']['spec']['memory'] == 32
    assert vsphere_vm(vsphere, name) is None


def test_vm_info_same_shape_and_filters(ansible, vsphere, vsphere_args, vsphere_vms):
    fleet_a, fleet_b = _unique('vinfo-a'), _unique('vinfo-b')
    assert _tagged(vsphere, 'fleet', fleet_a) == [] and _tagged(vsphere, 'fleet', fleet_b) == []
    r = ansible.task('vm_info', dict(vsphere_args, tags={'fleet': fleet_a}))
    assert not r.get('failed') and r['vms'] == [], r
    created = {}
    for index, tags in enumerate(({'fleet': fleet_a}, {'fleet': fleet_a, 'role': 'db'}, {'fleet': fleet_b})):
        name = vsphere_vms.new('info%d' % index)
        r = _vm(ansible, vsphere_args, {'name': name, 'cluster': CLUSTER, 'datastore': DATASTORE, 'memory': 32,
                                        'tags': tags, 'state': 'running' if index == 0 else 'present'})
        assert r['changed'], r
        created[name] = r['vm']
    names = sorted(created)
    assert _tagged(vsphere, 'fleet', fleet_a) == names[:2] and _tagged(vsphere, 'fleet', fleet_b) == names[2:]
    r = ansible.task('vm_info', dict(vsphere_args, tags={'fleet': fleet_a}))
    assert [vm['name'] for vm in r['vms']] == names[:2], r
    r = ansible.task('vm_info', dict(vsphere_args, tags={'fleet': fleet_a}, states=['running']))
    assert [vm['name'] for vm in r['vms']] == names[:1]
    r = ansible.task('vm_info', dict(vsphere_args, tags={'fleet': fleet_a, 'role': 'db'}))
    assert [vm['name'] for vm in r['vms']] == names[1:2], r
    r = ansible.task('vm_info', dict(vsphere_args, name=names[1]))
    assert r['vms'] == [created[names[1]]] and not r['changed']
    r = ansible.task('vm_info', dict(vsphere_args, name='vft-does-not-exist'))
    assert r['vms'] == [] and not r.get('failed')
    # the simulator's own VMs are listed too, in the same shape
    r = ansible.task('vm_info', vsphere_args)
    listed = dict((vm['name'], vm) for vm in r['vms'])
    assert set(names) <= set(listed) and 'DC0_C0_RP0_VM0' in listed
    disks = [d for d in listed['DC0_C0_RP0_VM0']['spec']['disks'] if d['device'] == 'disk']
    assert disks[0]['pool'] == DATASTORE and disks[0]['size'] == 1


# (extra options, parameter named in the message, fragment of the message, also tried on an existing VM)
BAD_INPUTS = [
    ({'datastore': 'vft-no-such-ds'}, 'datastore', 'no datastore named', True),
    ({'cluster': 'vft-no-such-cluster'}, 'cluster', 'no cluster named', True),
    ({'interfaces': [{'network': 'vft-no-such-pg'}]}, 'interfaces[0].network', 'no port group named', True),
    ({'disks': [{'size': 8, 'pool': 'vft-no-such-ds'}]}, 'disks[0].pool', 'no datastore named', True),
    ({'host': 'vft-no-such-host'}, 'host', 'no host named', False),
    ({'folder': 'vft/no/such'}, 'folder', 'no VM folder', False),
    ({'disks': [{'path': '/var/lib/x.img'}]}, 'disks[0].path', 'datastore', False),
    ({'interfaces': [{'bridge': 'br0'}]}, 'interfaces[0].bridge', 'port group', False),
    ({'xml': '<domain/>'}, 'xml', 'libvirt backend only', False),
    ({'max_memory': 512}, 'max_memory', 'memory_hot_add', False),
]


@pytest.mark.parametrize('extra,param,fragment,existing', BAD_INPUTS)
def test_bad_input_is_refused_and_changes_nothing(ansible, vsphere, vsphere_args, vsphere_vms, extra, param,
                                                  fragment, existing):
    name = vsphere_vms.new('bad')
    args = {'name': name, 'cluster': CLUSTER, 'datastore': DATASTORE, 'memory': 32}
    r = _vm(ansible, vsphere_args, dict(args, **extra))
    assert_clean_failure(r, param, fragment)
    assert vsphere_vm(vsphere, name) is None
    if not existing:
        return
    # an existing VM with bad input is left exactly as it was
    assert _vm(ansible, vsphere_args, args)['changed']
    before = vsphere_snapshot(vsphere, name)
    r = _vm(ansible, vsphere_args, dict({'name': name}, **extra))
    assert_clean_failure(r, param, fragment)
    assert vsphere_snapshot(vsphere, name) == before


def test_shrinking_a_disk_is_refused(ansible, vsphere, vsphere_args, vsphere_vms):
    name = vsphere_vms.new('shrink')
    args = {'name': name, 'cluster': CLUSTER, 'datastore': DATASTORE, 'memory': 32, 'disks': [{'size': 64}]}
    assert _vm(ansible, vsphere_args, args)['changed']
    before = vsphere_snapshot(vsphere, name)
    r = _vm(ansible, vsphere_args, dict(args, disks=[{'size': 32}]))
    assert_clean_failure(r, 'disks[0].size', 'cannot shrink')
    assert vsphere_snapshot(vsphere, name) == before


def test_stopping_a_vm_writes_its_pending_change_so_the_same_task_again_changes_nothing(ansible, vsphere,
                                                                                        vsphere_args, vsphere_vms):
    """A change that waited for a restart is written by the run that stops the VM (found by the fuzzer: a
    state: stopped task was 'updated: memory' on its second run, which wrote what the first had left pending)."""
    name = vsphere_vms.new('pendstop')
    args = {'name': name, 'cluster': CLUSTER, 'datastore': DATASTORE, 'memory': 64, 'state': 'running',
            'force': True, 'shutdown_timeout': 0}
    assert _vm(ansible, vsphere_args, args)['changed']
    r = _vm(ansible, vsphere_args, dict(args, memory=256))
    assert r['changed'] and r['reboot_required'] is True and 'memory' in r['vm']['pending_restart'], r
    stop = dict((k, v) for k, v in args.items() if k != 'memory')
    stop['state'] = 'stopped'
    r = _vm(ansible, vsphere_args, stop)
    assert r['changed'] and r['actions'] == ['shutdown', 'applied pending: memory'], r
    assert r['vm']['state'] == 'stopped' and r['vm']['pending_restart'] == [] and r['reboot_required'] is False
    real = vsphere_vm(vsphere, name)
    assert real.config.hardware.memoryMB == 256 and real.runtime.powerState == 'poweredOff'
    assert PENDING_KEY not in _extra(real)
    before = vsphere_snapshot(vsphere, name)
    r = _vm(ansible, vsphere_args, stop)
    assert r['changed'] is False and r['actions'] == [], r
    assert vsphere_snapshot(vsphere, name) == before


def test_a_disk_moved_to_another_bus_and_grown_is_done_in_one_run(ansible, vsphere, vsphere_args, vsphere_vms):
    """Two new 1 GiB scsi disks on a VM whose disk is a 64 MiB sata one: its file moves to scsi and grows, and a
    second disk is made, all in one run (found by the fuzzer: the move and the growth took two runs)."""
    name = vsphere_vms.new('movegrow')
    args = {'name': name, 'cluster': CLUSTER, 'datastore': DATASTORE, 'memory': 32}
    r = _vm(ansible, vsphere_args, dict(args, disks=[{'bus': 'sata', 'size': 64}]))
    assert r['changed'] and [d['bus'] for d in r['vm']['spec']['disks']] == ['sata'], r
    volume = r['vm']['spec']['disks'][0]['volume']
    wanted = dict(args, disks=[{'bus': 'scsi', 'size': '1GiB'}, {'bus': 'scsi', 'size': '1GiB'}])
    r = _vm(ansible, vsphere_args, wanted)
    assert r['changed'] and r['actions'] == ['updated: disks'], r
    disks = r['vm']['spec']['disks']
    assert [(d['bus'], d['target'], d['size']) for d in disks] == [('scsi', 'sda', 1024), ('scsi', 'sdb', 1024)], r
    assert disks[0]['volume'] == volume and disks[1]['volume'] != volume
    real = _disks(vsphere_vm(vsphere, name))
    assert [(d.backing.fileName, d.capacityInKB) for d in real] == [
        ('[%s] %s' % (DATASTORE, volume), 1024 * 1024), ('[%s] %s' % (DATASTORE, disks[1]['volume']), 1024 * 1024)]
    before = vsphere_snapshot(vsphere, name)
    r = _vm(ansible, vsphere_args, wanted)
    assert r['changed'] is False and r['actions'] == [], r
    assert vsphere_snapshot(vsphere, name) == before


@pytest.mark.parametrize('extra,param', [
    ({'wait_timeout': 'Infinity'}, 'wait_timeout'),
    ({'wait_timeout': "{{ 'inf' | float }}"}, 'wait_timeout'),
    ({'shutdown_timeout': '-inf'}, 'shutdown_timeout'),
    ({'vcpus': 'nan'}, 'vcpus'),
    ({'vcpus': '1e400'}, 'vcpus'),
    ({'graphics': {'port': "{{ '-inf' | float }}"}}, 'port'),
])
def test_numbers_that_are_not_finite_are_refused_without_a_traceback(ansible, vsphere, vsphere_args, vsphere_vms,
                                                                     extra, param):
    """ansible-core's own int check raised OverflowError (a traceback) for these, before the module ran."""
    name = vsphere_vms.new('inf')
    r = _vm(ansible, vsphere_args, dict({'name': name, 'cluster': CLUSTER, 'datastore': DATASTORE}, **extra))
    assert_clean_failure(r, "argument '%s'" % param, 'unable to convert to int')
    assert 'not a finite number' in r['msg'] or 'out of range' in r['msg'], r
    assert 'OverflowError' not in json.dumps(r) and 'OverflowError' not in ansible.last_stdout
    assert vsphere_vm(vsphere, name) is None


def test_wrong_password_is_clear_and_never_shown(ansible, vsphere_args):
    wrong = 'vft-Wr0ng-Pa55-8c1f'
    r = ansible.task('vm_info', dict(vsphere_args, password=wrong))
    assert_clean_failure(r, 'cannot log in to vSphere', 'user name or password is wrong')
    assert wrong not in json.dumps(r) and wrong not in ansible.last_stdout
    r = ansible.task('vm', dict(vsphere_args, password=wrong, name='vft-never', memory=32), extra_args=('-vvv',))
    assert_clean_failure(r, 'user name or password is wrong')
    assert wrong not in json.dumps(r) and wrong not in ansible.last_stdout


def test_untrusted_certificate_is_a_clear_failure(ansible, vsphere_args):
    untrusted = dict((k, v) for k, v in vsphere_args.items() if k != 'ca_path')
    r = ansible.task('vm_info', untrusted)
    assert_clean_failure(r, 'cannot verify the TLS certificate', 'validate_certs', 'ca_path')
    assert vsphere_args['password'] not in json.dumps(r)


def test_trusted_through_ssl_cert_file_or_not_verified(ansible, vcsim, vsphere_args):
    untrusted = dict((k, v) for k, v in vsphere_args.items() if k != 'ca_path')
    r = ansible.task('vm_info', untrusted, play_extra={'environment': {'SSL_CERT_FILE': vcsim['ca_file']}})
    assert not r.get('failed') and r['vms'], r
    r = ansible.task('vm_info', dict(untrusted, validate_certs=False))
    assert not r.get('failed') and r['vms'], r


def test_environment_variables_select_and_reach_vsphere(ansible, vcsim):
    environment = {'VMWARE_HOST': vcsim['host'], 'VMWARE_PORT': str(vcsim['port']),
                   'VMWARE_USER': vcsim['username'], 'VMWARE_PASSWORD': vcsim['password'],
                   'VMWARE_CA_PATH': vcsim['ca_file']}
    r = ansible.task('vm_info', {'name': 'DC0_H0_VM0'}, play_extra={'environment': environment})
    assert not r.get('failed'), r
    assert [vm['name'] for vm in r['vms']] == ['DC0_H0_VM0'] and r['vms'][0]['vsphere']['host'] == 'DC0_H0'


def test_vsphere_options_are_refused_on_libvirt(ansible):
    r = ansible.task('vm', {'name': 'vft-never', 'backend': 'libvirt', 'cluster': CLUSTER, 'memory': 32})
    assert_clean_failure(r, 'cluster', 'vsphere backend only')
    r = ansible.task('vm', {'name': 'vft-never', 'memory': 32, 'disks': [{'size': 8}]})
    assert_clean_failure(r, 'disks[0].size', 'libvirt backend does not create')


def test_wait_for_address_on_vsphere(ansible, vsphere, vsphere_args, vsphere_vms):
    """The address comes from what VMware Tools reports; the simulator sets it through the extraConfig key
    SET.guest.ipAddress, here a few seconds after the module started waiting."""
    import threading
    import time
    from pyVim.task import WaitForTask
    from pyVmomi import vim
    name = vsphere_vms.new('addr')
    args = {'name': name, 'cluster': CLUSTER, 'datastore': DATASTORE, 'memory': 64, 'state': 'running',
            'interfaces': [{'network': PORTGROUP}], 'wait_for_address': True, 'wait_for_address_timeout': 120}

    # no interface: refused before anything is created
    r = _vm(ansible, vsphere_args, dict(args, interfaces=[]))
    assert_clean_failure(r, 'wait_for_address', 'no network interface')
    assert vsphere_vm(vsphere, name) is None

    def report_address():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            vm = vsphere_vm(vsphere, name)
            if vm is not None and vm.runtime.powerState == 'poweredOn':
                time.sleep(3)
                spec = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key='SET.guest.ipAddress',
                                                                             value='10.77.0.9')])
                WaitForTask(vm.ReconfigVM_Task(spec))
                return
            time.sleep(0.2)

    setter = threading.Thread(target=report_address)
    setter.start()
    r = _vm(ansible, vsphere_args, args)
    setter.join()
    assert not r.get('failed'), r
    assert r['address']['address'] == '10.77.0.9' and r['address']['source'] == 'tools', r
    assert r['address']['waited'] > 0, 'the module waited for the address to be reported'
    assert any(a['address'] == '10.77.0.9' for a in r['vm']['addresses']), r
    assert vsphere_vm(vsphere, name).guest.ipAddress == '10.77.0.9'
    # once known, a re-run waits no longer and changes nothing
    r = _vm(ansible, vsphere_args, args)
    assert r['changed'] is False and r['address']['address'] == '10.77.0.9', r

"""The vSphere VM driver's logic with a fake client: targets, plans, pending changes, backend selection.

The options each backend takes: ``test_module_options.py``."""
from __future__ import annotations

import json

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _reconcile, _vm_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm as drv
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_config as vmconfig
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import vsphere_vm_devices as devices
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError


@pytest.mark.parametrize('bus,bus_number,unit,target', [
    ('scsi', 0, 0, 'sda'), ('scsi', 0, 6, 'sdg'), ('scsi', 0, 8, 'sdh'), ('scsi', 0, 15, 'sdo'),
    ('scsi', 1, 0, 'sdp'), ('ide', 0, 0, 'hda'), ('ide', 1, 1, 'hdd'), ('sata', 0, 29, 'sdad'),
])
def test_targets_and_slots_round_trip(bus, bus_number, unit, target):
    assert devices.target_of(bus, bus_number, unit) == target
    assert devices.slot_of(bus, target) == (bus_number, unit)


def test_scsi_unit_7_is_never_used():
    units = [devices.slot_of('scsi', 'sd' + devices._letters(i))[1] for i in range(15)]
    assert 7 not in units and sorted(units) == [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15]


def test_split_file():
    assert devices.split_file('[LocalDS_0] web/web.vmdk') == ('LocalDS_0', 'web/web.vmdk')
    assert devices.split_file('[ds]') == ('ds', None)
    assert devices.split_file(None) == (None, None)


class FakeClient:
    def __init__(self, rows):
        self.rows = rows
        self.calls = []

    def inventory(self, props):
        kinds = {'datacenters': [dict(moid='dc', type='Datacenter', name='DC0', parent='root', vmFolder='f-vm')],
                 'folders': [dict(moid='f-vm', type='Folder', name='vm', parent='dc', childType=['VirtualMachine'],
                                  ref='f-vm')]}
        if props is not None:  # None: without the VMs (the driver finds one VM with find_vms)
            kinds['vms'] = self.vm_rows(props)
        return kinds

    def vm_rows(self, props=None):
        return [dict(r, moid=r['moid'], name=r['name'], parent='f-vm', ref=r['moid']) for r in self.rows]

    def find_vms(self, parents, name):
        return [{'ref': r['moid'], 'moid': r['moid'], 'parent': 'f-vm'} for r in self.vm_rows()
                if r['name'] == name and 'f-vm' in parents]

    def vms(self, refs, props=None):
        return [r for r in self.rows if r['moid'] in refs]

    def reconfigure_vm(self, ref, name, config):
        self.calls.append(('reconfigure', name, config))

    def shutdown_guest(self, ref, name):
        return False

    def power_on(self, ref, name):
        self.calls.append(('power_on', name))


def _row(**extra):
    row = {'moid': 'vm-1', 'ref': 'vm-1', 'name': 'web', 'parent': 'f-vm', 'config.template': False,
           'config.uuid': 'u', 'config.hardware.memoryMB': 64, 'config.hardware.numCPU': 1,
           'config.hardware.device': [], 'config.extraConfig': [], 'config.firmware': 'bios',
           'config.guestId': 'otherGuest64', 'runtime.powerState': 'poweredOn',
           'config.memoryHotAddEnabled': False, 'config.cpuHotAddEnabled': False}
    row.update(extra)
    return row


def test_tags_read_last_value_wins_and_empty_is_removed():
    row = _row(**{'config.extraConfig': [('virtfleet.tags.a', '"1"'), ('virtfleet.tags.a', '"2"'),
                                         ('virtfleet.tags.gone', '"x"'), ('virtfleet.tags.gone', ''),
                                         ('virtfleet.tags.%C3%BC%20x', '""')]})
    driver = drv.VSphereVMDriver(FakeClient([row]))
    actual = driver.read('web')
    assert actual['spec']['tags'] == {'a': '2', '\u00fc x': ''}


def test_running_vm_without_hot_add_gets_a_pending_restart():
    client = FakeClient([_row()])
    driver = drv.VSphereVMDriver(client)
    actual = driver.read('web')
    spec = driver.desired(_vm_spec.partial_from_params({'memory': 128}), actual)
    plan = driver.plan_update(actual, spec)
    assert plan.changes == ['memory', 'max_memory'] and plan.reboot_required
    assert plan.details['cold'] == {'memory': 128} and plan.details['live'] == {}
    driver.apply_update(actual, plan)
    _op, _name, config = client.calls[-1]
    assert 'memory_mb' not in config and (vmconfig.PENDING_KEY, '{"memory": 128}') in config['extra_config']


def test_hot_add_grows_live_but_never_shrinks_live():
    row = _row(**{'config.memoryHotAddEnabled': True, 'config.cpuHotAddEnabled': True})
    driver = drv.VSphereVMDriver(FakeClient([row]))
    actual = driver.read('web')
    plan = driver.plan_update(actual, driver.desired(_vm_spec.partial_from_params({'memory': 128, 'vcpus': 2}), actual))
    assert plan.details['live'] == {'memory': 128, 'vcpus': 2} and not plan.reboot_required
    plan = driver.plan_update(actual, driver.desired(_vm_spec.partial_from_params({'memory': 32}), actual))
    assert plan.details['cold'] == {'memory': 32} and plan.reboot_required


def test_pending_change_is_shown_and_applied_once_stopped():
    row = _row(**{'config.extraConfig': [(vmconfig.PENDING_KEY, '{"memory": 128}')]})
    driver = drv.VSphereVMDriver(FakeClient([row]))
    actual = driver.read('web')
    assert actual['spec']['memory'] == 128 and driver.pending_restart_fields(actual) == ['memory', 'max_memory']
    spec = driver.desired({}, actual)
    plan = driver.plan_update(actual, spec)
    assert plan.changes == [] and plan.reboot_required   # running: still pending, nothing to write
    stopped = FakeClient([dict(row, **{'runtime.powerState': 'poweredOff'})])
    driver = drv.VSphereVMDriver(stopped)
    actual = driver.read('web')
    plan = driver.plan_update(actual, driver.desired({}, actual))
    assert plan.changes == ['memory'] and plan.details['live'] == {'memory': 128} and not plan.reboot_required
    driver.apply_update(actual, plan)
    config = stopped.calls[-1][2]
    assert config['memory_mb'] == 128 and (vmconfig.PENDING_KEY, '') in config['extra_config']


def test_a_start_applies_the_pending_change_and_says_so():
    row = _row(**{'config.extraConfig': [(vmconfig.PENDING_KEY, '{"memory": 128}')], 'runtime.powerState': 'poweredOff'})
    client = FakeClient([row])
    result = drv.VSphereVMDriver(client).perform('web', 'start')
    assert result.actions == ['applied pending: memory']
    config = client.calls[0][2]
    assert config['memory_mb'] == 128 and (vmconfig.PENDING_KEY, '') in config['extra_config']
    assert client.calls[1][0] == 'power_on'
    # nothing pending: a plain start, no further action
    client = FakeClient([_row(**{'runtime.powerState': 'poweredOff'})])
    assert drv.VSphereVMDriver(client).perform('web', 'start') is None and [c[0] for c in client.calls] == ['power_on']


def test_a_start_that_fails_after_writing_the_pending_change_reports_the_write():
    class Refuses(FakeClient):
        def power_on(self, ref, name):
            raise BackendError('no host can run it')

        def vm_state(self, ref):
            return 'stopped'
    row = _row(**{'config.extraConfig': [(vmconfig.PENDING_KEY, '{"memory": 128}')], 'runtime.powerState': 'poweredOff'})
    driver = drv.VSphereVMDriver(Refuses([row]))
    opts = _reconcile.Options(check_mode=False)
    outcome = _reconcile.Outcome()
    with pytest.raises(BackendError, match='no host can run it') as err:
        _reconcile._run_steps(driver, 'web', driver.steps('stopped', 'running'), opts, outcome)
    assert err.value.details['actions'] == ['applied pending: memory']
    assert outcome.actions == ['applied pending: memory'] and outcome.changed


def test_shutdown_without_tools_needs_force():
    driver = drv.VSphereVMDriver(FakeClient([_row()]))
    with pytest.raises(BackendError, match='VMware Tools') as err:
        driver.perform('web', 'shutdown')
    assert err.value.details['not_graceful']  # force is the reconcile loop's (test_reconcile)


def test_two_vms_of_one_name_need_a_folder():
    client = FakeClient([_row(), _row(moid='vm-2', ref='vm-2')])
    with pytest.raises(BackendError, match='2 VMs are named web'):
        drv.VSphereVMDriver(client).read('web')


@pytest.mark.parametrize('params,backend', [
    ({'backend': 'auto', 'hostname': 'vc1'}, 'vsphere'),
    ({'backend': 'auto', 'hostname': None}, 'libvirt'),
    ({'backend': 'libvirt', 'hostname': 'vc1'}, 'libvirt'),
    ({'backend': 'vsphere', 'hostname': None}, 'vsphere'),
    ({}, 'libvirt'),
])
def test_select_backend(params, backend):
    assert _module.select_backend(params) == backend


def test_connection_spec_adds_vsphere_only_on_request():
    assert 'hostname' not in _module.connection_argument_spec()
    spec = _module.connection_argument_spec('libvirt', 'vsphere')
    assert spec['password']['no_log'] and spec['backend']['default'] == 'auto'
    assert spec['validate_certs']['fallback'][1] == ['VMWARE_VALIDATE_CERTS']


def test_new_disk_by_size_pairs_with_the_disk_it_created():
    actual = [{'device': 'disk', 'bus': 'scsi', 'target': 'sda', 'pool': 'ds', 'volume': 'w/w.vmdk', 'size': 1024,
               'readonly': False}]
    partial = _vm_spec.partial_from_params({'disks': [{'size': '2GiB'}, {'size': 8}]})
    merged = _vm_spec._merge_disks(partial['disks'], actual, dict(_vm_spec.DEVICE_DEFAULTS, disk_bus='scsi'))
    assert merged[0] == dict(actual[0], size=2048)
    assert merged[1] == {'size': 8, 'device': 'disk', 'bus': 'scsi', 'readonly': False, 'target': 'sdb'}


def test_size_of_a_cdrom_is_refused():
    with pytest.raises(SpecError, match=r'disks\[0\].size'):
        _vm_spec.partial_from_params({'disks': [{'device': 'cdrom', 'size': 8}]})


class PowerClient(FakeClient):
    """A fake client whose VM powers off when asked to shut down (VMware Tools running) and applies
    reconfigurations of memory and extraConfig to its row, so a whole ``_reconcile.ensure`` runs on it."""

    def shutdown_guest(self, ref, name):
        self.calls.append(('shutdown', name))
        self.rows[0]['runtime.powerState'] = 'poweredOff'
        return True

    def vm_state(self, ref):
        return drv.STATE_NAMES[self.rows[0]['runtime.powerState']]

    def reconfigure_vm(self, ref, name, config):
        super().reconfigure_vm(ref, name, config)
        row = self.rows[0]
        if config.get('memory_mb'):
            row['config.hardware.memoryMB'] = config['memory_mb']
        row['config.extraConfig'] = list(row['config.extraConfig']) + list(config.get('extra_config') or [])


def test_a_run_that_stops_the_vm_applies_the_pending_change_so_the_next_run_has_nothing_to_do():
    row = _row(**{'config.extraConfig': [(vmconfig.PENDING_KEY, '{"memory": 128}')]})
    client = PowerClient([row])
    opts = _reconcile.Options(check_mode=False, force=True, shutdown_timeout=5, wait_timeout=5, poll_interval=0.01)
    outcome, before, after = _reconcile.ensure(drv.VSphereVMDriver(client), 'web', {}, 'present', 'stopped', opts)
    assert outcome.actions == ['shutdown', 'applied pending: memory'], outcome.actions
    assert before['pending_restart'] == ['memory', 'max_memory'] and after['spec']['memory'] == 128
    assert row['config.hardware.memoryMB'] == 128
    outcome, _before, _after = _reconcile.ensure(drv.VSphereVMDriver(client), 'web', {}, 'present', 'stopped', opts)
    assert not outcome.changed and outcome.actions == []
    # check mode writes nothing after the (predicted) stop
    row2 = _row(**{'config.extraConfig': [(vmconfig.PENDING_KEY, '{"memory": 128}')]})
    client = PowerClient([row2])
    outcome, _b, _a = _reconcile.ensure(drv.VSphereVMDriver(client), 'web', {}, 'present', 'stopped',
                                        _reconcile.Options(check_mode=True, force=True))
    assert outcome.actions == ['shutdown'] and client.calls == []


def _disk_row(bus, size_mb, power='poweredOff'):
    """A VM with one disk on controller ``bus`` 0, unit 0 (its file web/web.vmdk on ds), ``size_mb`` MiB."""
    controller = {'kind': 'controller', 'key': 1000, 'bus': bus, 'bus_number': 0, 'subtype': None,
                  'controller_key': None, 'unit': None, 'device@ref': 'ctrl-ref'}
    disk = {'kind': 'disk', 'key': 2000, 'controller_key': 1000, 'unit': 0, 'file': '[ds] web/web.vmdk',
            'capacity_kb': size_mb * 1024, 'device@ref': 'disk-ref'}
    return _row(**{'config.hardware.device': [controller, disk], 'runtime.powerState': power})


def test_a_disk_moved_to_another_bus_and_grown_is_grown_first_then_moved_in_one_run():
    client = FakeClient([_disk_row('sata', 64)])
    driver = drv.VSphereVMDriver(client)
    actual = driver.read('web')
    assert actual['spec']['disks'][0]['bus'] == 'sata'
    partial = _vm_spec.partial_from_params({'disks': [{'bus': 'scsi', 'size': '1GiB'}]})
    spec = driver.desired(partial, actual)
    assert spec['disks'] == [dict(actual['spec']['disks'][0], bus='scsi', size=1024)]
    assert devices.grows_before_moves(actual, spec) == [
        {'op': 'edit', 'kind': 'disk', 'device@ref': 'disk-ref', 'size_kb': 1024 * 1024}]
    driver.apply_update(actual, driver.plan_update(actual, spec))
    (_op, _n, first), (_op2, _n2, second) = client.calls
    assert first == {'devices': [{'op': 'edit', 'kind': 'disk', 'device@ref': 'disk-ref', 'size_kb': 1024 * 1024}]}
    ops = [(c['op'], c['kind']) for c in second['devices']]
    assert ops == [('remove', 'disk'), ('add', 'controller'), ('add', 'disk')], ops
    added = second['devices'][-1]
    # the file attached anew with the capacity it has now (the simulator takes the size it is given)
    assert added['existing'] == '[ds] web/web.vmdk' and added['size_kb'] == 1024 * 1024


def test_a_disk_moved_without_growing_keeps_its_capacity_and_needs_no_first_step():
    client = FakeClient([_disk_row('sata', 64)])
    driver = drv.VSphereVMDriver(client)
    actual = driver.read('web')
    spec = driver.desired(_vm_spec.partial_from_params({'disks': [{'bus': 'scsi', 'size': 64}]}), actual)
    assert devices.grows_before_moves(actual, spec) == []
    driver.apply_update(actual, driver.plan_update(actual, spec))
    assert len(client.calls) == 1 and client.calls[0][2]['devices'][-1]['size_kb'] == 64 * 1024
    # a disk that stays where it is grows in place, in the one reconfiguration
    client = FakeClient([_disk_row('scsi', 64)])
    driver = drv.VSphereVMDriver(client)
    actual = driver.read('web')
    spec = driver.desired(_vm_spec.partial_from_params({'disks': [{'size': '1GiB'}]}), actual)
    assert devices.grows_before_moves(actual, spec) == []
    driver.apply_update(actual, driver.plan_update(actual, spec))
    assert [c['op'] for c in client.calls[0][2]['devices']] == ['edit'] and len(client.calls) == 1


# -- templates, clones, customization (issue #16) -----------------------------------------------------------
def _custom(**raw):
    return _vm_spec.partial_from_params({'name': 'web', 'customization': raw})


def test_template_is_read_from_config_template_and_false_on_a_vm_is_no_change():
    driver = drv.VSphereVMDriver(FakeClient([_row(**{'runtime.powerState': 'poweredOff'})]))
    actual = driver.read('web')
    assert actual['spec']['template'] is False
    plan = driver.plan_update(actual, driver.desired(_vm_spec.partial_from_params({'template': False}), actual))
    assert plan.changes == []
    plan = driver.plan_update(actual, driver.desired(_vm_spec.partial_from_params({'template': True}), actual))
    assert plan.changes == ['template']
    driver = drv.VSphereVMDriver(FakeClient([_row(**{'config.template': True, 'runtime.powerState': 'poweredOff'})]))
    actual = driver.read('web')
    assert actual['spec']['template'] is True and driver.describe(actual)['spec']['template'] is True


def test_a_running_vm_is_not_made_a_template():
    driver = drv.VSphereVMDriver(FakeClient([_row()]))
    actual = driver.read('web')
    with pytest.raises(SpecError) as info:
        driver.desired(_vm_spec.partial_from_params({'template': True}), actual)
    assert info.value.param == 'template'


def test_clone_from_for_an_existing_vm_must_name_its_recorded_source():
    record = ('virtfleet.clone_of', json.dumps({'name': 'tpl', 'uuid': 'i-1', 'linked': False}))
    plain = drv.VSphereVMDriver(FakeClient([_row()]))
    with pytest.raises(SpecError) as info:
        plain.desired(_vm_spec.partial_from_params({'name': 'web', 'clone_from': 'tpl'}), plain.read('web'))
    assert info.value.param == 'clone_from' and 'not a clone' in info.value.msg
    cloned = drv.VSphereVMDriver(FakeClient([_row(**{'config.extraConfig': [record]})]))
    actual = cloned.read('web')
    assert cloned.describe(actual)['cloned_from'] == {'name': 'tpl', 'uuid': 'i-1', 'linked': False}
    spec = cloned.desired(_vm_spec.partial_from_params({'name': 'web', 'clone_from': 'tpl'}), actual)
    assert cloned.plan_update(actual, spec).changes == []
    with pytest.raises(SpecError) as info:
        cloned.desired(_vm_spec.partial_from_params({'name': 'web', 'clone_from': 'other'}), actual)
    assert info.value.param == 'clone_from' and 'cloned from tpl' in info.value.msg


def test_clone_from_a_missing_source_names_clone_from():
    driver = drv.VSphereVMDriver(FakeClient([_row()]))
    with pytest.raises(SpecError) as info:
        driver.desired(_vm_spec.partial_from_params({'name': 'new', 'clone_from': 'nope'}), None)
    assert info.value.param == 'clone_from' and 'nope' in info.value.msg


@pytest.mark.parametrize('raw, param', [
    ({'ssh_authorized_keys': ['ssh-ed25519 AAAA a@b']}, 'customization.ssh_authorized_keys'),
    ({'user_data': {'packages': ['nginx']}}, 'customization.user_data'),
    ({'networks': [{'ip': '2001:db8::5', 'prefix': 64}]}, 'customization.networks[0].ip'),
    ({'networks': [{'dhcp': True}, {'dhcp': True}]}, 'customization.networks'),
])
def test_what_vsphere_customization_cannot_carry_is_refused(raw, param):
    driver = drv.VSphereVMDriver(FakeClient([_row(**{'runtime.powerState': 'poweredOff'})]))
    with pytest.raises(SpecError) as info:
        driver.desired(_custom(**raw), driver.read('web'))
    assert info.value.param == param


def test_customization_is_read_back_so_it_is_applied_once_and_waits_while_running():
    custom = _custom(hostname='web1')['customization']
    stored = ('virtfleet.customization', json.dumps(custom, sort_keys=True))
    driver = drv.VSphereVMDriver(FakeClient([_row(**{'config.extraConfig': [stored]})]))
    actual = driver.read('web')
    assert actual['spec']['customization'] == custom
    plan = driver.plan_update(actual, driver.desired(_custom(hostname='web1'), actual))
    assert plan.changes == [] and not plan.reboot_required
    # a new identity for the running VM: recorded, pending until the next stop or start
    client = FakeClient([_row(**{'config.extraConfig': [stored]})])
    driver = drv.VSphereVMDriver(client)
    actual = driver.read('web')
    plan = driver.plan_update(actual, driver.desired(_custom(hostname='web2'), actual))
    assert plan.changes == ['customization'] and plan.reboot_required
    result = driver.apply_update(actual, plan)
    assert result.reboot_required and result.unless_restarted
    _op, _name, config = client.calls[-1]
    assert ('virtfleet.customization.pending', 'true') in config['extra_config']


def test_netmask_of_a_prefix():
    from ansible_collections.virtfleet.virt.plugins.module_utils._clients.vsphere import _netmask
    assert [_netmask(p) for p in (24, 32, 1, 20)] == ['255.255.255.0', '255.255.255.255', '128.0.0.0',
                                                      '255.255.240.0']


class TemplateClient(FakeClient):
    """A template that a customization fails on (``fault``), optionally refusing to be marked a template again."""

    def __init__(self, rows, fault, undo_fails=False):
        super().__init__(rows)
        self.fault, self.undo_fails = fault, undo_fails

    def mark_as_vm(self, ref, name, pool, host):
        self.calls.append(('mark_as_vm', name))

    def mark_as_template(self, ref, name):
        self.calls.append(('mark_as_template', name))
        if self.undo_fails:
            raise BackendError('marking VM %s as a template failed: boom' % name)

    def customize_vm(self, ref, name, custom, nics):
        self.calls.append(('customize', name))
        raise BackendError('customizing VM %s failed: %s' % (name, self.fault))


def _template_driver(fault, undo_fails=False):
    client = TemplateClient([_row(**{'config.template': True, 'runtime.powerState': 'poweredOff'})], fault,
                            undo_fails)
    driver = drv.VSphereVMDriver(client)
    driver._vm_pool = lambda actual: ({'ref': 'pool'}, None)
    actual = driver.read('web')
    partial = _custom(hostname='web1')
    partial['template'] = True
    plan = driver.plan_update(actual, driver.desired(partial, actual))
    assert plan.changes == ['customization']
    return client, driver, actual, plan


def test_a_failed_customization_of_a_template_marks_it_a_template_again_and_says_so():
    client, driver, actual, plan = _template_driver('*types.CustomizationPending')
    with pytest.raises(BackendError) as info:
        driver.apply_update(actual, plan)
    assert [c[0] for c in client.calls] == ['mark_as_vm', 'customize', 'mark_as_template']
    assert not info.value.details.get('performed')
    assert len(info.value.details['actions']) == 2 and 'template again' in info.value.details['actions'][1]
    # CustomizationPending: what happened and what to do
    assert 'still pending' in info.value.msg and 'Power the VM on once' in info.value.msg


def test_a_template_left_a_vm_after_a_failed_customization_is_reported_as_performed():
    client, driver, actual, plan = _template_driver('some fault', undo_fails=True)
    with pytest.raises(BackendError) as info:
        driver.apply_update(actual, plan)
    assert info.value.details['performed'] is True
    assert info.value.details['actions'] == ['marked template web as a VM to change it']
    assert 'it is a VM now' in info.value.msg and 'some fault' in info.value.msg
    assert 'still pending' not in info.value.msg


def test_a_failure_after_a_reconfiguration_of_a_template_is_a_change_even_when_marked_again():
    client = TemplateClient([_row(**{'config.template': True, 'runtime.powerState': 'poweredOff'})], 'some fault')
    driver = drv.VSphereVMDriver(client)
    driver._vm_pool = lambda actual: ({'ref': 'pool'}, None)
    actual = driver.read('web')
    partial = _custom(hostname='web1')
    partial.update(template=True, memory=128)
    plan = driver.plan_update(actual, driver.desired(partial, actual))
    assert 'memory' in plan.changes and 'customization' in plan.changes
    with pytest.raises(BackendError) as info:
        driver.apply_update(actual, plan)
    assert [c[0] for c in client.calls] == ['mark_as_vm', 'reconfigure', 'customize', 'mark_as_template']
    assert info.value.details['performed'] is True


def test_a_customization_that_is_not_recorded_is_still_a_change():
    class Unrecorded(TemplateClient):
        def customize_vm(self, ref, name, custom, nics):
            self.calls.append(('customize', name))

        def reconfigure_vm(self, ref, name, config):
            raise BackendError('reconfiguring VM %s failed: boom' % name)
    client = Unrecorded([_row(**{'runtime.powerState': 'poweredOff'})], None)
    driver = drv.VSphereVMDriver(client)
    actual = driver.read('web')
    plan = driver.plan_update(actual, driver.desired(_custom(hostname='web1'), actual))
    with pytest.raises(BackendError) as info:
        driver.apply_update(actual, plan)
    assert client.calls == [('customize', 'web')] and info.value.details['performed'] is True

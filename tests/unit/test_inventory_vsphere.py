"""The vsphere inventory plugin's logic with a fake client: the facts of each VM, names, groups, filters, checks.

Against the simulator (200 VMs, caching, the playbook, secrets): tests/integration/test_vsphere_inventory.py."""
from __future__ import annotations

import pytest

from ansible import constants as C
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import get_docstring
from ansible.template import Templar

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19 trusts every template
    def trust_as_template(value):
        return value

from ansible_collections.virtfleet.virt.plugins.inventory import vsphere as inv


def _vm(moid, name, parent='group-v1', state='poweredOn', host='host-1', template=False, ips=(), tags=None):
    extra = [('virtfleet.tags.%s' % k, v) for k, v in (tags or {}).items()]
    return {'ref': None, 'moid': moid, 'type': 'VirtualMachine', 'name': name, 'parent': parent,
            'config.template': template, 'config.uuid': 'uuid-' + moid, 'config.instanceUuid': 'iuuid-' + moid,
            'runtime.powerState': state, 'runtime.host': host, 'resourcePool': 'resgroup-1',
            'config.hardware.device': [], 'config.extraConfig': extra, 'config.hardware.memoryMB': 64,
            'config.hardware.numCPU': 1, 'config.files.vmPathName': '[ds1] %s/%s.vmx' % (name, name),
            'datastore': ['datastore-1', 'datastore-2'],
            'guest.net': [{'mac': None, 'network': 'VM Network', 'device_key': 4000,
                           'addresses': [{'address': a, 'prefix': 24} for a in ips]}]}


class FakeClient:
    def __init__(self, vms):
        self.vms = vms
        self.props = None

    def inventory(self, vm_props):
        self.props = vm_props
        return {
            'datacenters': [{'moid': 'dc-1', 'type': 'Datacenter', 'name': 'DC0', 'parent': 'group-d1',
                             'vmFolder': 'group-v1'}],
            # a container view of the root folder holds everything below it, not the root folder itself
            'folders': [{'moid': 'group-v1', 'type': 'Folder', 'name': 'vm', 'parent': 'dc-1'},
                        {'moid': 'group-v2', 'type': 'Folder', 'name': 'web tier', 'parent': 'group-v1'}],
            'compute': [{'moid': 'domain-c1', 'type': 'ClusterComputeResource', 'name': 'C0', 'parent': 'group-h1',
                         'host': ['host-1']},
                        {'moid': 'domain-s1', 'type': 'ComputeResource', 'name': 'esx2', 'parent': 'group-h1',
                         'host': ['host-2']}],
            'hosts': [{'moid': 'host-1', 'type': 'HostSystem', 'name': 'esx1.lab', 'parent': 'domain-c1'},
                      {'moid': 'host-2', 'type': 'HostSystem', 'name': 'esx2', 'parent': 'domain-s1'}],
            'pools': [{'moid': 'resgroup-1', 'type': 'ResourcePool', 'name': 'Resources', 'parent': 'domain-c1'}],
            'datastores': [{'moid': 'datastore-1', 'type': 'Datastore', 'name': 'ds1'},
                           {'moid': 'datastore-2', 'type': 'Datastore', 'name': 'ds0'}],
            'vms': self.vms,
        }


VMS = [
    _vm('vm-1', 'web1', parent='group-v2', ips=['169.254.1.1', 'fe80::1', '10.0.0.5'], tags={'role': '"web"', 'n': '3'}),
    _vm('vm-2', 'db1', state='poweredOff', host='host-2', ips=['10.0.0.6'], tags={'role': '"db"'}),
    _vm('vm-3', 'tpl', state='poweredOff', template=True),
    _vm('vm-4', 'web1', state='suspended'),                      # a second VM named web1, in another folder
]


def test_facts_of_each_vm():
    client = FakeClient(VMS)
    facts = dict((vm['vsphere']['moid'], vm) for vm in inv.read_vms(client))
    assert 'datastore' in client.props and 'config.template' in client.props
    web = facts['vm-1']
    assert web['name'] == 'web1' and web['state'] == 'running' and web['uuid'] == 'uuid-vm-1'
    assert web['guest_ip'] == '10.0.0.5'                          # link-local and IPv6 skipped
    assert web['spec']['tags'] == {'role': 'web', 'n': 3}
    assert web['vsphere']['cluster'] == 'C0' and web['vsphere']['host'] == 'esx1.lab'
    assert web['vsphere']['folder'] == '/DC0/vm/web tier' and web['vsphere']['path'] == '/DC0/vm/web tier/web1'
    assert web['vsphere']['datastores'] == ['ds0', 'ds1'] and web['vsphere']['datastore'] == 'ds1'
    assert web['vsphere']['template'] is False and facts['vm-3']['vsphere']['template'] is True
    db = facts['vm-2']
    assert db['guest_ip'] is None and db['addresses'] == []      # a stopped VM has no address
    assert db['vsphere']['cluster'] is None and db['vsphere']['host'] == 'esx2'
    assert 'ref' not in web and 'row' not in web                  # plain data: it goes into the cache


@pytest.fixture(scope='module', autouse=True)
def _definitions():
    """The plugin's options (its DOCUMENTATION with the constructed and inventory_cache fragments), as
    Ansible's plugin loader would register them."""
    doc = get_docstring(inv.__file__, fragment_loader)[0]
    C.config.initialize_plugin_configuration_definitions('inventory', inv.NAME, doc['options'])


def _trusted(value):
    """Expressions as a source file gives them: ansible-core 2.19 evaluates only trusted templates."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [_trusted(item) for item in value]
    return value


def _plugin(**options):
    plugin = inv.InventoryModule()
    plugin._load_name = inv.NAME
    options = dict((key, _trusted(value) if key in ('host_name_template', 'filters') else value)
                   for key, value in options.items())
    plugin.set_options(direct=dict({'plugin': 'virtfleet.virt.vsphere'}, **options))
    plugin.inventory = InventoryData()
    plugin.templar = Templar(loader=DataLoader())
    warnings = []
    plugin.display.warning = warnings.append
    return plugin, warnings


def _populate(**options):
    plugin, warnings = _plugin(**options)
    plugin._populate({'server': 'vc1', 'vms': inv.read_vms(FakeClient(VMS))})
    return plugin.inventory, warnings


def _group(data, name):
    return sorted(h.name for h in data.groups[name].get_hosts()) if name in data.groups else []


def test_groups_names_and_the_duplicate_warning():
    data, warnings = _populate()
    assert sorted(data.hosts) == ['db1', 'web1'] and 'tpl' not in data.hosts
    assert data.hosts['web1'].vars['virtfleet_vm']['vsphere']['moid'] == 'vm-1'   # the first web1 wins
    assert len(warnings) == 1 and 'VMs /DC0/vm/web tier/web1 and /DC0/vm/web1 are both named web1' in warnings[0]
    assert data.hosts['web1'].vars['ansible_host'] == '10.0.0.5'
    assert 'ansible_host' not in data.hosts['db1'].vars
    assert _group(data, 'state_running') == ['web1'] and _group(data, 'state_stopped') == ['db1']
    assert _group(data, 'cluster_C0') == ['web1'] and _group(data, 'esxi_esx1_lab') == ['web1']
    assert _group(data, 'folder_DC0_vm_web_tier') == ['web1'] and _group(data, 'folder_DC0_vm') == ['db1']
    assert _group(data, 'tag_role_web') == ['web1'] and _group(data, 'tag_n_3') == ['web1']
    assert _group(data, 'datacenter_DC0') == ['db1', 'web1']


def test_strict_makes_the_duplicate_an_error():
    with pytest.raises(AnsibleParserError, match='both named web1.*host_name: instance_uuid or path'):
        _populate(strict=True)


@pytest.mark.parametrize('options,hosts', [
    ({'host_name': 'instance_uuid'}, ['iuuid-vm-1', 'iuuid-vm-2', 'iuuid-vm-4']),
    ({'host_name': 'moid', 'include_templates': True}, ['vm-1', 'vm-2', 'vm-3', 'vm-4']),
    ({'host_name': 'path'}, ['/DC0/vm/db1', '/DC0/vm/web tier/web1', '/DC0/vm/web1']),
    ({'host_name': 'uuid', 'states': ['paused']}, ['uuid-vm-4']),
    ({'host_name_template': "virtfleet_vm.vsphere.moid ~ '-' ~ virtfleet_vm.name"}, ['vm-1-web1', 'vm-2-db1', 'vm-4-web1']),
    # no name from the template (an undefined tag): the VM name
    ({'host_name_template': 'virtfleet_vm.spec.tags.role', 'host_name': 'moid'}, ['db', 'vm-4', 'web']),
    ({'tags': {'n': 3}}, ['web1']),
    ({'tags': {'role': 'db'}}, ['db1']),
    ({'filters': ["virtfleet_vm.vsphere.host == 'esx2'"]}, ['db1']),
    ({'filters': ['virtfleet_vm.nothing.here']}, []),               # a failing filter is false
    ({'include_templates': True, 'states': ['stopped'], 'tag_groups': False}, ['db1', 'tpl']),
])
def test_names_and_filters(options, hosts):
    data, _warnings = _populate(**options)
    assert sorted(data.hosts) == hosts


def test_templates_group_and_no_tag_groups():
    data, _warnings = _populate(include_templates=True, tag_groups=False)
    assert _group(data, 'templates') == ['tpl'] and 'tag_role_web' not in data.groups


def test_strict_filter_failure_is_an_error():
    with pytest.raises(AnsibleParserError, match='option filters'):
        _populate(filters=['virtfleet_vm.nothing.here'], strict=True)


@pytest.mark.parametrize('options,message', [
    ({'username': 'u', 'password': 'p'}, 'option hostname is not set.*VMWARE_HOST'),
    ({'hostname': 'vc', 'password': 'p'}, 'option username is not set.*VMWARE_USER'),
    ({'hostname': 'vc', 'username': 'u', 'password': ' '}, 'option password is not set.*VMWARE_PASSWORD'),
    ({'hostname': 'vc', 'username': 'u', 'password': 'p', 'port': 70000}, 'option port is 70000'),
    ({'hostname': 'vc', 'username': 'u', 'password': 'p', 'proxy_port': 0}, 'option proxy_port is 0'),
    # the fuzzer's inventory@vsphere sets #282-288: a NUL in ca_path was a Python ValueError ("embedded null byte")
    ({'hostname': 'vc', 'username': 'u', 'password': 'p', 'ca_path': '/x\x00y'}, 'option ca_path contains a control'),
    ({'hostname': 'vc', 'username': 'u', 'password': 'p\nq'}, 'option password contains a control'),
])
def test_connection_checks(monkeypatch, options, message):
    for env in ('VMWARE_HOST', 'VMWARE_USER', 'VMWARE_PASSWORD', 'VMWARE_PORT'):
        monkeypatch.delenv(env, raising=False)
    plugin, _warnings = _plugin(**options)
    with pytest.raises(AnsibleParserError, match=message):
        plugin._connection()


def test_defaults_verify_certificates_and_use_the_environment(monkeypatch):
    monkeypatch.setenv('VMWARE_HOST', 'vc.example.com')
    monkeypatch.setenv('VMWARE_USER', 'admin')
    monkeypatch.setenv('VMWARE_PASSWORD', 's3cret')
    monkeypatch.setenv('VMWARE_PORT', '8443')
    monkeypatch.delenv('VMWARE_VALIDATE_CERTS', raising=False)
    plugin, _warnings = _plugin()
    conn = plugin._connection()
    assert conn['validate_certs'] is True
    assert (conn['hostname'], conn['username'], conn['password'], conn['port']) == ('vc.example.com', 'admin', 's3cret', 8443)

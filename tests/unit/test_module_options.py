"""Options declared with the backends that take them: the argument spec ansible-core sees, the refusal of an
option set for another backend (its message, defaults, the environment-mirror rule) and the runner."""
from __future__ import annotations

import importlib
import json
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.virtfleet.virt.plugins.module_utils import _module, _vm_options
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, SpecError

MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(os.path.dirname(__file__), '..', '..', 'plugins',
                                                               'modules')) if name.endswith('.py'))


def declared(module):
    return importlib.import_module('ansible_collections.virtfleet.virt.plugins.modules.' + module).argument_spec()


def refuse(module, backend, params):
    """What the module's runner checks after the connection opened, in its order (the vm module's disk rule last)."""
    _module.refuse_options(backend, params, declared(module))
    if module == 'vm':
        _vm_options.refuse_new_disks(backend, params)


@pytest.fixture(autouse=True)
def no_vmware_env(monkeypatch):
    for name in ('VMWARE_HOST', 'VMWARE_PORT', 'VMWARE_VALIDATE_CERTS', 'VMWARE_CA_PATH', 'VMWARE_PROXY_HOST',
                 'VMWARE_PROXY_PORT'):
        monkeypatch.delenv(name, raising=False)


def test_argument_spec_strips_the_declaration_and_keeps_the_rest():
    options = dict(
        uri=dict(type='str', default='qemu:///system', fallback=(basic.env_fallback, ['LIBVIRT_DEFAULT_URI'])),
        host=dict(type='str', aliases=['esxi_hostname'], backends=('vsphere',)),
        secret=dict(type='str', no_log=True, backends=('libvirt',), hint='use the other one'),
    )
    assert _module.argument_spec(options) == dict(
        uri=dict(type='str', default='qemu:///system', fallback=(basic.env_fallback, ['LIBVIRT_DEFAULT_URI'])),
        host=dict(type='str', aliases=['esxi_hostname']),
        secret=dict(type='str', no_log=True),
    )
    assert options['host']['backends'] == ('vsphere',)  # the declaration itself is left as it was
    assert _module.backends_of(options) == {'host': ('vsphere',), 'secret': ('libvirt',)}


@pytest.mark.parametrize('module', MODULES)
def test_no_declaration_key_reaches_ansible_core(module):
    spec = _module.argument_spec(declared(module))

    def keys(options):
        for option in options.values():
            yield from option
            yield from keys(option.get('options') or {})
    assert not set(keys(spec)) & set(_module.DECLARATION_KEYS)


@pytest.mark.parametrize('module,backend,params,message', [
    ('vm', 'libvirt', {'cluster': 'C0'},
     'cluster: applies to the vsphere backend only, and this task runs on libvirt; remove it'),
    ('vm', 'vsphere', {'xml': '<domain/>'},
     'xml: applies to the libvirt backend only, and this task runs on vsphere; remove it'),
    ('vm', 'vsphere', {'max_memory': 512},
     'max_memory: applies to the libvirt backend only, and this task runs on vsphere; vSphere has no separate '
     'maximum; set memory_hot_add: true to grow memory of a running VM'),
    ('vm', 'vsphere', {'max_vcpus': 4},
     'max_vcpus: applies to the libvirt backend only, and this task runs on vsphere; vSphere has no separate '
     'maximum; set cpu_hot_add: true to add vCPUs to a running VM'),
    ('vm', 'vsphere', {'title': 'web'},
     "title: applies to the libvirt backend only, and this task runs on vsphere; use description (the VM's notes) "
     "on vSphere"),
    ('vm', 'libvirt', {'disks': [{'path': '/x.img'}, {'size': 8}]},
     'disks[1].size: the libvirt backend does not create or grow disks yet; create the volume first '
     '(virtfleet.virt.volume) and name it with pool and volume'),
    ('vm_info', 'libvirt', {'hostname': 'vc1'},
     'hostname: applies to the vsphere backend only, and this task runs on libvirt; remove it'),
    ('host_info', 'libvirt', {'host': 'esx1'},
     'host: applies to the vsphere backend only, and this task runs on libvirt; remove it'),
    ('network', 'vsphere', {'mode': 'nat', 'vlan': 5},
     'mode: applies to the libvirt backend only, and this task runs on vsphere; remove it'),
    ('network_info', 'vsphere', {'states': ['active']},
     'states: applies to the libvirt backend only, and this task runs on vsphere; remove it'),
    ('storage_pool', 'vsphere', {'build': True},
     'build: applies to the libvirt backend only, and this task runs on vsphere; remove it'),
    ('storage_pool_info', 'libvirt', {'datacenter': 'DC0'},
     'datacenter: applies to the vsphere backend only, and this task runs on libvirt; remove it'),
    ('migrate', 'vsphere', {'peer_to_peer': False, 'destination': 'esx1'},
     'peer_to_peer: applies to the libvirt backend only, and this task runs on vsphere; remove it'),
    ('migrate', 'libvirt', {'destination': 'qemu+ssh://hv2/system', 'datastore': 'ds1'},
     'datastore: applies to the vsphere backend only, and this task runs on libvirt; remove it'),
    # two misplaced options: the first by name is named
    ('vm', 'libvirt', {'host': 'esx1', 'cluster': 'C0'},
     'cluster: applies to the vsphere backend only, and this task runs on libvirt; remove it'),
])
def test_an_option_of_the_other_backend_is_refused_naming_it(module, backend, params, message):
    with pytest.raises(SpecError) as err:
        refuse(module, backend, params)
    assert err.value.msg == message


@pytest.mark.parametrize('module,backend,params', [
    ('vm', 'vsphere', {'cluster': 'C0', 'memory': 512, 'disks': [{'size': 8}]}),
    ('vm', 'libvirt', {'xml': '<domain/>', 'max_memory': 512, 'disks': [{'path': '/x.img'}]}),
    # a switch at its default is not set: the libvirt switches of storage_pool and migrate pass on vSphere
    ('storage_pool', 'vsphere', {'build': False, 'force': False, 'refresh': False, 'delete_data': False,
                                 'restart_if_required': False, 'wait_timeout': 60}),
    ('migrate', 'vsphere', {'mode': 'live', 'peer_to_peer': True, 'tunnelled': False, 'persistent': True,
                            'undefine_source': True, 'timeout': 1800, 'destination': 'esx1'}),
    # destination names the host the VM moves to on both backends
    ('migrate', 'libvirt', {'destination': 'qemu+ssh://hv2/system'}),
    # options every backend takes, and uri at its default
    ('vm', 'vsphere', {'uri': 'qemu:///system', 'username': 'u', 'password': 'p', 'backend': 'vsphere'}),
])
def test_options_that_apply_pass(module, backend, params):
    refuse(module, backend, params)


def test_migrate_destination_is_one_option_for_both_backends():
    """The host a VM moves to is destination on libvirt and vSphere; host, its vSphere name in 0.2.0, is a
    deprecated alias (migrate.check_alias takes it on vSphere only, never beside destination)."""
    options = declared('migrate')
    assert 'host' not in options and 'backends' not in options['destination']
    assert options['destination']['aliases'] == ['host']
    assert options['destination']['deprecated_aliases'] == [
        {'name': 'host', 'version': '1.0.0', 'collection_name': 'virtfleet.virt'}]


def test_a_libvirt_uri_on_vsphere_is_refused_unless_it_mirrors_the_environment(monkeypatch):
    with pytest.raises(SpecError, match='^uri: applies to the libvirt backend only, and this task runs on vsphere; '
                                        'vSphere is reached by hostname'):
        refuse('vm', 'vsphere', {'uri': 'qemu+ssh://hv2/system'})
    monkeypatch.setenv('LIBVIRT_DEFAULT_URI', 'qemu+ssh://hv2/system')
    refuse('vm', 'vsphere', {'uri': 'qemu+ssh://hv2/system'})


def test_a_switch_set_off_its_default_is_refused():
    with pytest.raises(SpecError, match='^restart_if_required: applies to the libvirt backend only'):
        refuse('storage_pool', 'vsphere', {'restart_if_required': True})
    with pytest.raises(SpecError, match='^mode: applies to the libvirt backend only'):
        refuse('migrate', 'vsphere', {'mode': 'offline'})
    # autostart has no default: false is a choice, refused too
    with pytest.raises(SpecError, match='^autostart: applies to the libvirt backend only'):
        refuse('storage_pool', 'vsphere', {'autostart': False})


@pytest.mark.parametrize('env,value', [
    (('VMWARE_HOST', 'vc1.example.com'), ('hostname', 'vc1.example.com')),
    (('VMWARE_HOST', 'VC1.example.com'), ('hostname', 'vc1.example.com')),
    (('VMWARE_PORT', '8443'), ('port', 8443)),
    (('VMWARE_VALIDATE_CERTS', 'yes'), ('validate_certs', True)),
    (('VMWARE_VALIDATE_CERTS', 'no'), ('validate_certs', False)),
    (('VMWARE_CA_PATH', '/etc/ca.pem'), ('ca_path', '/etc/ca.pem')),
])
def test_a_connection_option_that_only_mirrors_its_environment_variable_is_not_refused(monkeypatch, env, value):
    """VMWARE_HOST may be set for other tools; a libvirt task is not refused for it."""
    monkeypatch.setenv(*env)
    for module in ('vm', 'vm_info', 'network', 'storage_pool', 'migrate', 'host_info'):
        refuse(module, 'libvirt', dict([value], destination='qemu+ssh://hv2/system'))


def test_a_connection_option_set_otherwise_than_its_environment_variable_is_refused(monkeypatch):
    monkeypatch.setenv('VMWARE_HOST', 'vc1')
    with pytest.raises(SpecError, match='^hostname: applies to the vsphere backend only, and this task runs on '
                                        'libvirt; remove it$'):
        refuse('vm', 'libvirt', {'hostname': 'vc2'})
    monkeypatch.setenv('VMWARE_VALIDATE_CERTS', 'yes')
    with pytest.raises(SpecError, match='^validate_certs: applies to the vsphere backend only'):
        refuse('vm', 'libvirt', {'validate_certs': False})
    # the rule is the connection options' own: an option without that fallback is refused whatever the environment
    monkeypatch.setenv('VMWARE_CLUSTER', 'C0')
    with pytest.raises(SpecError, match='^cluster: applies'):
        refuse('vm', 'libvirt', {'cluster': 'C0'})


class FakeClient:
    closed = False

    def close(self):
        FakeClient.closed = True


def _run(monkeypatch, capsys, options, params, operate, client=FakeClient, **kwargs):
    """``_module.run`` with ``params`` as the task's arguments and a fake client; its JSON result."""
    monkeypatch.setitem(_module.CLIENT_FACTORIES, 'libvirt', lambda _params: client())
    monkeypatch.setitem(_module.CLIENT_FACTORIES, 'vsphere', lambda _params: client())
    FakeClient.closed = False
    with patch_module_args(params), pytest.raises(SystemExit):
        _module.run(options, operate, **kwargs)
    return json.loads(capsys.readouterr().out)


def test_secrets_inside_values_are_hidden_even_when_the_connection_fails(monkeypatch, capsys):
    def unreachable():
        raise BackendError('cannot connect to qemu:///nowhere (asked for http://u:Pa55w0rd@host/x)')

    options = dict(_module.connection_argument_spec('libvirt'), url=dict(type='str'))
    result = _run(monkeypatch, capsys, options, {'url': 'http://u:Pa55w0rd@host/x'}, lambda *_a: None,
                  client=unreachable, secrets=lambda params: ['Pa55w0rd'])
    assert result['failed'] and 'Pa55w0rd' not in json.dumps(result) and '********' in result['msg'], result


def test_the_runner_refuses_before_the_operation_and_closes_the_connection(monkeypatch, capsys):
    called = []
    options = dict(_module.connection_argument_spec('libvirt', 'vsphere'), name=dict(type='str'),
                   **_module.only('vsphere', cluster=dict(type='str')))
    result = _run(monkeypatch, capsys, options, {'name': 'web1', 'cluster': 'C0'},
                  lambda module, session: called.append(session.backend))
    assert result['failed'] and result['changed'] is False and not called
    assert result['msg'] == 'cluster: applies to the vsphere backend only, and this task runs on libvirt; remove it'
    assert FakeClient.closed


def test_the_runner_hands_the_session_to_the_operation(monkeypatch, capsys):
    options = dict(_module.connection_argument_spec('libvirt', 'vsphere'), name=dict(type='str'),
                   **_module.only('vsphere', cluster=dict(type='str')))
    result = _run(monkeypatch, capsys, options, {'name': 'web1', 'cluster': 'C0', 'hostname': 'vc1'},
                  lambda module, session: module.exit_json(changed=False, backend=session.backend,
                                                           name=module.params['name']))
    assert result['backend'] == 'vsphere' and result['name'] == 'web1' and not result.get('failed')


class ListingDriver:
    def read(self, name):
        return {'name': name} if name == 'web1' else None

    def list(self):
        return [{'name': 'web1'}, {'name': 'web2'}]


@pytest.mark.parametrize('name,listed', [(None, ['web1', 'web2']), ('web1', ['web1']), ('nope', [])])
def test_an_info_module_finds_the_named_resource_or_all(name, listed):
    assert [actual['name'] for actual in _module.found(ListingDriver(), name)] == listed


def test_reconcile_options_keep_a_zero_address_timeout():
    class Module:
        check_mode = False
        params = {'wait_for_address': True, 'wait_for_address_timeout': 0}
    opts = _module.reconcile_options(Module)
    assert opts.wait_for_address is True and opts.wait_for_address_timeout == 0
    Module.params = {}
    assert _module.reconcile_options(Module).wait_for_address_timeout == 300

"""The virtfleet.virt.vsphere inventory plugin against a simulator of its own with 200 VMs.

The shared simulator of the vSphere fixtures holds a few VMs; this module starts a second one
(tests/env/vcsim-up.sh with its own state directory and 100 VMs per compute resource: 200 VMs in a cluster
of two hosts and on one standalone host) and stops it, by its pid, at the end. Before the tests it shapes a
few VMs with pyvmomi: tags as virtfleet.virt.vm stores them (extraConfig virtfleet.tags.<name>, JSON values),
two powered on with a guest IP (the simulator's SET.guest.ipAddress), one moved into a folder, one made a template.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import uuid

import pytest

ENV = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'env')
WEB = ['DC0_C0_RP0_VM0', 'DC0_C0_RP0_VM1']       # running, tags role=web, a guest IP each
DB = 'DC0_H0_VM0'                                 # stopped, tags role=db, in folder vft-inv-<id>
TEMPLATE = 'DC0_H0_VM1'                           # a template
IPS = {'DC0_C0_RP0_VM0': '10.20.0.11', 'DC0_C0_RP0_VM1': '10.20.0.12'}


def _plain(value):
    """ansible-inventory --list marks host variables as unsafe ({"__ansible_unsafe": x}); unwrap them."""
    if isinstance(value, dict):
        if list(value) == ['__ansible_unsafe']:
            return value['__ansible_unsafe']
        return dict((k, _plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@pytest.fixture(scope='module')
def big_vcsim():
    """Connection facts of a simulator with 200 VMs, shaped as the module docstring says."""
    from pyVim.connect import Disconnect, SmartConnect
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    state_dir = tempfile.mkdtemp(prefix='vft-inv-vcsim-')
    env = dict(os.environ, VIRTFLEET_VCSIM_DIR=state_dir, VIRTFLEET_VCSIM_MACHINES='100')
    subprocess.run(['bash', os.path.join(ENV, 'vcsim-up.sh')], env=env, check=True, capture_output=True, text=True)
    with open(os.path.join(state_dir, 'env.json')) as handle:
        facts = json.load(handle)
    with open(os.path.join(state_dir, 'password')) as handle:
        facts['password'] = handle.read().strip()
    facts['port'] = int(facts['port'])
    facts['folder'] = 'vft-inv-' + uuid.uuid4().hex[:6]
    try:
        si = SmartConnect(host=facts['host'], port=facts['port'], user=facts['username'], pwd=facts['password'],
                          sslContext=ssl.create_default_context(cafile=facts['ca_file']))
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        vms = dict((vm.name, vm) for vm in view.view)
        view.Destroy()
        assert len(vms) == 200

        def tag(vm, **tags):
            extra = [vim.option.OptionValue(key='virtfleet.tags.' + k, value=json.dumps(v)) for k, v in tags.items()]
            WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=extra)))

        for name in WEB:
            tag(vms[name], role='web', fleet='inv')
            WaitForTask(vms[name].PowerOnVM_Task())
            WaitForTask(vms[name].ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[
                vim.option.OptionValue(key='SET.guest.ipAddress', value=IPS[name])])))
        tag(vms[DB], role='db', fleet='inv')
        datacenter = content.rootFolder.childEntity[0]
        folder = datacenter.vmFolder.CreateFolder(facts['folder'])
        WaitForTask(folder.MoveIntoFolder_Task([vms[DB]]))
        vms[TEMPLATE].MarkAsTemplate()
        Disconnect(si)
        yield facts
    finally:
        _stop(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)


def _stop(state_dir):
    """Stop the simulator this module started (its pid, checked to be a vcsim build)."""
    try:
        with open(os.path.join(state_dir, 'vcsim.pid')) as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return
    if '/vcsim-' not in os.path.realpath('/proc/%d/exe' % pid):
        return
    try:
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:  # it ended since its exe was read
        return
    for _attempt in range(50):
        if not os.path.exists('/proc/%d' % pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _config(vcsim, **extra):
    config = {'plugin': 'virtfleet.virt.vsphere', 'hostname': vcsim['host'], 'port': vcsim['port'],
              'username': vcsim['username'], 'ca_path': vcsim['ca_file']}
    config.update(extra)
    return config


def _write(workdir, config, suffix='vsphere.yml'):
    path = os.path.join(workdir, 'inv-%s.%s' % (uuid.uuid4().hex[:6], suffix))
    with open(path, 'w') as handle:
        json.dump(config, handle)
    return path


def _run(ansible, vcsim, path, *extra, password=None, timeout=120):
    env = dict(ansible.env, ANSIBLE_INVENTORY_UNPARSED_FAILED='True',
               VMWARE_PASSWORD=vcsim['password'] if password is None else password)
    return subprocess.run([os.path.join(ansible.venv_bin, 'ansible-inventory'), '-i', path, '--list'] + list(extra),
                          env=env, capture_output=True, text=True, check=False, timeout=timeout)


def _inventory(ansible, workdir, vcsim, **extra):
    proc = _run(ansible, vcsim, _write(workdir, _config(vcsim, **extra)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert vcsim['password'] not in proc.stdout + proc.stderr
    return _plain(json.loads(proc.stdout))


def _hosts(data, group):
    return sorted((data.get(group) or {}).get('hosts', []))


def test_vsphere_inventory_200_vms_groups_and_hostvars(ansible, workdir, big_vcsim):
    data = _inventory(ansible, workdir, big_vcsim, compose={'role': "virtfleet_vm.spec.tags.role | default('none')"},
                      keyed_groups=[{'key': 'virtfleet_vm.spec.tags.role', 'prefix': 'role'}],
                      groups={'in_cluster': "virtfleet_vm.vsphere.cluster == 'DC0_C0'"})
    hostvars = data['_meta']['hostvars']
    assert len(hostvars) == 199 and TEMPLATE not in hostvars          # the template is left out by default
    assert _hosts(data, 'state_running') == sorted(WEB)
    assert len(_hosts(data, 'state_stopped')) == 197
    assert len(_hosts(data, 'cluster_DC0_C0')) == 100 and _hosts(data, 'cluster_DC0_C0') == _hosts(data, 'in_cluster')
    assert len(_hosts(data, 'esxi_DC0_H0')) == 99                     # the standalone host, its template aside
    assert len(_hosts(data, 'esxi_DC0_C0_H0')) + len(_hosts(data, 'esxi_DC0_C0_H1')) == 100
    assert len(_hosts(data, 'datacenter_DC0')) == 199
    assert _hosts(data, 'folder_DC0_vm_' + big_vcsim['folder'].replace('-', '_')) == [DB]
    assert _hosts(data, 'tag_role_web') == sorted(WEB) == _hosts(data, 'role_web')
    assert _hosts(data, 'tag_role_db') == [DB] == _hosts(data, 'role_db')
    assert _hosts(data, 'tag_fleet_inv') == sorted(WEB + [DB])
    web = hostvars[WEB[0]]
    vm = web['virtfleet_vm']
    assert web['ansible_host'] == IPS[WEB[0]] == vm['guest_ip'] and web['virtfleet_address_source'] == 'tools'
    assert web['role'] == 'web' and hostvars['DC0_C0_RP0_VM2']['role'] == 'none'
    assert vm['name'] == WEB[0] and vm['state'] == 'running' and vm['spec']['tags'] == {'role': 'web', 'fleet': 'inv'}
    assert len(vm['uuid']) == 36 and len(vm['vsphere']['instance_uuid']) == 36
    info = vm['vsphere']
    assert info['cluster'] == 'DC0_C0' and info['host'] in ('DC0_C0_H0', 'DC0_C0_H1') and info['datacenter'] == 'DC0'
    assert info['folder'] == '/DC0/vm' and info['path'] == '/DC0/vm/' + WEB[0] and info['template'] is False
    assert info['datastores'] and info['datastore'] in info['datastores']
    db = hostvars[DB]
    assert 'ansible_host' not in db and db['virtfleet_vm']['state'] == 'stopped'
    assert db['virtfleet_vm']['vsphere']['folder'] == '/DC0/vm/' + big_vcsim['folder']
    assert db['virtfleet_vm']['vsphere']['cluster'] is None and db['virtfleet_vm']['vsphere']['host'] == 'DC0_H0'


def test_vsphere_inventory_templates_names_and_filters(ansible, workdir, big_vcsim):
    data = _inventory(ansible, workdir, big_vcsim, include_templates=True, host_name='instance_uuid')
    assert len(data['_meta']['hostvars']) == 200
    templates = _hosts(data, 'templates')
    assert len(templates) == 1 and data['_meta']['hostvars'][templates[0]]['virtfleet_vm']['name'] == TEMPLATE
    assert data['_meta']['hostvars'][templates[0]]['virtfleet_vm']['vsphere']['instance_uuid'] == templates[0]

    data = _inventory(ansible, workdir, big_vcsim, host_name_template="virtfleet_vm.name | lower ~ '.lab'",
                      states=['running'])
    assert sorted(data['_meta']['hostvars']) == sorted(name.lower() + '.lab' for name in WEB)

    data = _inventory(ansible, workdir, big_vcsim, tags={'fleet': 'inv'},
                      filters=["virtfleet_vm.vsphere.host == 'DC0_H0'"])
    assert list(data['_meta']['hostvars']) == [DB]


def test_vsphere_inventory_playbook(ansible, workdir, big_vcsim):
    path = _write(workdir, _config(big_vcsim, tags={'fleet': 'inv'},
                                   compose={'app_port': "8080 if virtfleet_vm.spec.tags.role == 'web' else 5432"}))
    play = [{'hosts': 'tag_role_web:tag_role_db', 'gather_facts': False, 'tasks': [
        {'name': 'facts of each VM', 'ansible.builtin.assert': {'that': [
            "virtfleet_vm.name == inventory_hostname",
            "virtfleet_vm.spec.tags.role in group_names | map('regex_replace', '^tag_role_', '') | list",
            "(app_port | int) == (8080 if 'tag_role_web' in group_names else 5432)",
            # ansible_host defaults to the host name in a play: the guest IP only for the running VMs
            "ansible_host == (virtfleet_vm.guest_ip if 'state_running' in group_names else inventory_hostname)",
            "'state_running' not in group_names or ansible_host is match('10[.]20[.]0[.]')",
        ]}},
        {'name': 'record', 'ansible.builtin.lineinfile': {
            'path': os.path.join(workdir, 'played-%s.txt' % os.path.basename(path)), 'create': True,
            'line': '{{ inventory_hostname }} {{ app_port }}'}, 'delegate_to': 'localhost'},
    ]}]
    play_path = os.path.join(workdir, 'play-%s.yml' % uuid.uuid4().hex[:6])
    with open(play_path, 'w') as handle:
        json.dump(play, handle)
    proc = subprocess.run([os.path.join(ansible.venv_bin, 'ansible-playbook'), '-i', path, play_path,
                           '-e', 'ansible_python_interpreter=%s' % os.path.join(ansible.venv_bin, 'python')],
                          env=dict(ansible.env, VMWARE_PASSWORD=big_vcsim['password']),
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(os.path.join(workdir, 'played-%s.txt' % os.path.basename(path))) as handle:
        played = sorted(line.split() for line in handle.read().splitlines())
    assert played == sorted([[WEB[0], '8080'], [WEB[1], '8080'], [DB, '5432']])


def test_vsphere_inventory_cache_serves_the_second_read(ansible, workdir, big_vcsim):
    """The second read comes from the cache: it succeeds while the simulator is frozen (SIGSTOP), where a
    read from vSphere would hang until the subprocess timeout."""
    cache_dir = os.path.join(workdir, 'vsphere-cache-' + uuid.uuid4().hex[:6])
    path = _write(workdir, _config(big_vcsim, cache=True, cache_plugin='ansible.builtin.jsonfile',
                                   cache_connection=cache_dir, cache_timeout=600, states=['running']))
    first = _run(ansible, big_vcsim, path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(json.loads(first.stdout)['_meta']['hostvars']) == sorted(WEB)
    assert os.listdir(cache_dir)
    assert not any(big_vcsim['password'] in open(os.path.join(cache_dir, name)).read() for name in os.listdir(cache_dir))
    os.kill(big_vcsim['pid'], signal.SIGSTOP)
    try:
        second = _run(ansible, big_vcsim, path, timeout=60)
    finally:
        os.kill(big_vcsim['pid'], signal.SIGCONT)
    assert second.returncode == 0, second.stdout + second.stderr
    assert json.loads(second.stdout) == json.loads(first.stdout)


def _fails(ansible, vcsim, workdir, config, password=None, secret=None):
    """The source fails; neither the password given nor ``secret`` appears in the output (-vvv)."""
    secret = secret or password or vcsim['password']
    proc = _run(ansible, vcsim, _write(workdir, config), '-vvv', password=password)
    assert proc.returncode != 0, proc.stdout
    assert secret not in proc.stdout + proc.stderr
    return ' '.join((proc.stdout + proc.stderr).split())


def test_vsphere_inventory_bad_config_is_a_clear_error_without_the_password(ansible, workdir, big_vcsim):
    wrong = 'Wr0ng-' + uuid.uuid4().hex
    out = _fails(ansible, big_vcsim, workdir, _config(big_vcsim), password=wrong)
    assert 'the user name or password is wrong' in out
    # the password in the source file itself, wrong: still never printed
    out = _fails(ansible, big_vcsim, workdir, _config(big_vcsim, password=wrong), secret=wrong)
    assert 'the user name or password is wrong' in out
    out = _fails(ansible, big_vcsim, workdir, dict((k, v) for k, v in _config(big_vcsim).items() if k != 'hostname'))
    assert 'hostname' in out and 'VMWARE_HOST' in out
    out = _fails(ansible, big_vcsim, workdir, _config(big_vcsim, port=0))
    assert 'option port is 0' in out
    out = _fails(ansible, big_vcsim, workdir, _config(big_vcsim, states=['on']))
    assert "option states: 'on' is no power state" in out
    # TLS verification is on by default: without the simulator's CA the certificate is refused
    config = _config(big_vcsim)
    del config['ca_path']
    out = _fails(ansible, big_vcsim, workdir, config)
    assert 'cannot verify the TLS certificate' in out and 'validate_certs' in out

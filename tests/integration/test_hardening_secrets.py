"""Secrets and injection (issue 8).

Secrets: the vSphere password (option and VMWARE_PASSWORD), the libvirt password (option and
VIRTFLEET_PASSWORD), cloud-init passwords and keys in cloud_init_seed's user_data and the migration
destination's password never appear in module results, ``--diff`` or ``-vvv`` output, or error
messages: every run below is captured whole (``ansible-playbook -vvv --diff``, stdout and stderr,
plus the registered results) and searched for each secret and its distinctive core. (No module
takes a TLS key passphrase; the kvm_host role copies key files by path and shows no diff of them.)

Injection: names, titles, descriptions, tags, environment values and labels with XML metacharacters,
quotes, shell metacharacters, unicode and over-long values are either refused with a clear message or
stored exactly as given: read back from the daemons byte for byte, never interpreted as XML (no
injected element), never passed through a shell: a marker file the payloads would create stays absent on the
host and in the container, which the test starts (a control container that runs the payload through a shell
on purpose shows the marker where the test looks).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import yaml
from lxml import etree

from conftest import PREFIX, REPO, domain_snapshot

libvirt = pytest.importorskip('libvirt')
sys.path.insert(0, os.path.join(REPO, 'tests', 'hardening'))

from fuzz import ansible_yaml  # noqa: E402  pylint: disable=wrong-import-position,import-error

MARKER = '/tmp/vft-hd-pwned-%s' % uuid.uuid4().hex[:6]
SHELL = '$(touch %s) `touch %s` ; touch %s | cat && touch %s' % ((MARKER,) * 4)
PAYLOADS = [
    '<b>&amp;</b> "double" \'single\'',
    '</title><on_crash>preserve</on_crash><title>',
    ']]><!-- comment --><?pi x?>',
    SHELL,
    '{{ 7 * 7 }} {%% raw %%} %s %n %(x)s',
    'ünïcödé ✓ 日本語 🚀 \u202eright-to-left\u202c',
    '&xxe; &#x41; &lt;',
]


def _secret(tag):
    return '%s-Vf%s"\'<&> é' % (tag, uuid.uuid4().hex[:12])


def _core(secret):
    """The distinctive part (Vf + 12 hex digits), or the whole secret when it has none (the vcsim one)."""
    return secret.split('-', 1)[1][:14] if '-Vf' in secret else secret


def _task(module, args, register, **extra):
    task = {'name': register, module: args, 'register': register, 'ignore_errors': True}
    task.update(extra)
    return task


def _play_yaml(tasks, out):
    """A playbook whose strings reach the modules exactly as given (the controller templates none of them)."""
    lines = ['- hosts: localhost', '  gather_facts: false', '  tasks:']
    for task in tasks:
        # one key a line, the name first and the module's arguments second: ansible-core 2.19 shows the source
        # lines up to a failing task's first one (its "Origin"), which must not be a line with a secret in it
        options = ('register', 'ignore_errors', 'check_mode', 'diff', 'environment', 'no_log')
        keys = sorted(task, key=lambda k: (k != 'name', k in options))
        for index, key in enumerate(keys):
            lines.append(('    - ' if index == 0 else '      ') + '%s: %s' % (json.dumps(key), ansible_yaml(task[key])))
    registered = ', '.join(t['register'] for t in tasks)
    lines.append('    - ' + json.dumps({'name': 'save', 'ansible.builtin.copy': {
        'content': '{{ [%s] | to_json }}' % registered, 'dest': out}, 'check_mode': False, 'diff': False}))
    return '\n'.join(lines) + '\n'


def _run(ansible, workdir, tasks, *extra, env=None):
    """Run the tasks in one play; return (whole output, registered results by name)."""
    stem = uuid.uuid4().hex[:6]
    out = os.path.join(workdir, 'secrets-%s.json' % stem)
    path = os.path.join(workdir, 'secrets-%s.yml' % stem)
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(_play_yaml(tasks, out))
    proc = subprocess.run([os.path.join(ansible.venv_bin, 'ansible-playbook'), '-i', ansible.inventory, path]
                          + list(extra), env=dict(ansible.env, **(env or {})), capture_output=True, text=True,
                          timeout=600, check=False)
    output = proc.stdout + proc.stderr
    assert os.path.exists(out), output
    with open(out) as handle:
        results = json.load(handle)
    return output, dict((t['register'], r) for t, r in zip(tasks, results))


def _leaks(secrets, *texts):
    blob = '\n'.join(texts)
    return [s for s in secrets if s in blob or _core(s) in blob]


def test_no_secret_in_results_diff_verbose_output_or_errors(ansible, workdir, vsphere_args, vsphere_vms, storage):
    vs_name = vsphere_vms.new('sec')
    pool, _path = storage.dir_pool('sec')
    wrong_vs, lv_pw, lv_env_pw, vs_env_pw, dest_pw = (_secret(t) for t in ('vs', 'lv', 'lvenv', 'vsenv', 'dst'))
    ud_pw, ud_key, ud_dict_pw = (_secret(t) for t in ('udpw', 'udkey', 'uddict'))
    user_data = '#cloud-config\npassword: %s\nssh_authorized_keys:\n  - ssh-ed25519 AAAA%s\n' % (ud_pw, ud_key)
    user_dict = {'users': [{'name': 'vft', 'passwd': ud_dict_pw, 'ssh_authorized_keys': ['ssh-ed25519 AAAA' + ud_key]}]}
    vs_vm = {'name': vs_name, 'cluster': 'DC0_C0', 'datastore': 'LocalDS_0', 'memory': 64, 'vcpus': 1,
             'state': 'running', 'description': 'secret test'}
    tasks = [
        # vSphere: a create and an update with the right password, then a wrong one
        _task('virtfleet.virt.vm', dict(vsphere_args, **vs_vm), 'vs_create'),
        _task('virtfleet.virt.vm', dict(vsphere_args, **dict(vs_vm, memory=128)), 'vs_update'),
        _task('virtfleet.virt.vm', dict(vsphere_args, password=wrong_vs, **vs_vm), 'vs_wrong'),
        # VMWARE_PASSWORD is read from the environment, never a module option: scrubbed by the client
        _task('virtfleet.virt.vm_info', {'hostname': vsphere_args['hostname'], 'port': vsphere_args['port'],
                                         'username': vsphere_args['username'], 'ca_path': vsphere_args['ca_path']},
              'vs_env'),
        # libvirt: the password option against the local daemon, a daemon that is not there, and the env fallback
        _task('virtfleet.virt.vm_info', {'username': 'vft', 'password': lv_pw}, 'lv_ok'),
        _task('virtfleet.virt.vm_info', {'uri': 'qemu+tcp://127.0.0.1:1/system', 'username': 'vft',
                                         'password': lv_pw}, 'lv_down'),
        _task('virtfleet.virt.vm_info', {'uri': 'qemu+tcp://127.0.0.1:1/system', 'username': 'vft'}, 'lv_env'),
        # cloud-init: passwords and keys in user_data, as a string and as a dict; then a change (a diff)
        _task('virtfleet.virt.cloud_init_seed', {'pool': pool, 'name': 'seed.iso', 'user_data': user_data},
              'seed_create'),
        _task('virtfleet.virt.cloud_init_seed', {'pool': pool, 'name': 'seed.iso', 'user_data': user_dict},
              'seed_update'),
        _task('virtfleet.virt.cloud_init_seed', {'pool': pool, 'name': 'seed.iso', 'user_data': 5 * [ud_pw]},
              'seed_bad'),
        # the migration destination's password, on a connection that fails
        _task('virtfleet.virt.migrate', {'name': '%shd-nomig' % PREFIX, 'destination': 'qemu+tcp://127.0.0.1:1/system',
                                         'destination_username': 'vft', 'destination_password': dest_pw}, 'migrate'),
    ]
    secrets = [vsphere_args['password'], wrong_vs, lv_pw, lv_env_pw, vs_env_pw, dest_pw, ud_pw, ud_key, ud_dict_pw]
    # the environment of the controller (a local connection's modules inherit it); a task's `environment:`
    # keyword would not do: ansible-playbook -vvv prints it in its EXEC lines, whatever the module does
    output, results = _run(ansible, workdir, tasks, '-vvv', '--diff',
                           env={'VMWARE_PASSWORD': vs_env_pw, 'VIRTFLEET_PASSWORD': lv_env_pw})

    # the runs did what they should (so the secrets really went through the modules)
    assert not results['vs_create'].get('failed') and not results['vs_update'].get('failed'), results
    assert results['vs_wrong']['failed'] and 'password is wrong' in results['vs_wrong']['msg'], results['vs_wrong']
    assert results['vs_env']['failed'], results['vs_env']
    assert not results['lv_ok'].get('failed') and results['lv_down']['failed'] and results['lv_env']['failed']
    assert results['seed_create']['changed'] and results['seed_update']['changed'], results
    assert results['seed_update'].get('diff'), results['seed_update']
    assert results['seed_bad']['failed'] and results['migrate']['failed'], results
    leaks = _leaks(secrets, output, json.dumps(results))
    assert not leaks, [(s, output[max(0, output.find(_core(s)) - 300):output.find(_core(s)) + 100]) for s in leaks]
    record = os.environ.get('VIRTFLEET_HARDENING_OUT')
    if record:
        os.makedirs(record, exist_ok=True)
        with open(os.path.join(record, 'secrets.json'), 'w') as handle:
            json.dump({'secrets': len(secrets), 'tasks': len(tasks), 'output_bytes': len(output),
                       'failed_tasks': sorted(k for k, r in results.items() if r.get('failed')), 'leaks': 0,
                       'flags': '-vvv --diff'}, handle, indent=1)


def test_the_kvm_host_role_shows_no_diff_of_the_tls_private_key():
    """``ansible.builtin.copy`` prints a text file's content with --diff: the server key must not show."""
    with open(os.path.join(REPO, 'roles', 'kvm_host', 'tasks', 'tls.yml')) as handle:
        tasks = yaml.safe_load(handle)
    copies = [t for t in tasks if 'ansible.builtin.copy' in t and 'serverkey.pem' in json.dumps(t)]
    assert copies and all(t.get('diff') is False for t in copies), copies


# -- injection ----------------------------------------------------------------------------------------------------

def _tags_of(xml):
    root = etree.fromstring(xml.encode('utf-8'))
    ns = 'https://virtfleet.dev/xmlns/virt/vm/1.0'
    return dict((t.get('name'), t.text or '') for t in root.iterfind('metadata/{%s}tags/{%s}tag' % (ns, ns)))


def _in_container(podman, name, path, workdir):
    """Whether ``path`` exists in the file system of container ``name`` (which may have exited)."""
    copy = os.path.join(workdir, 'from-%s' % uuid.uuid4().hex[:6])
    proc = podman.run('cp', '%s:%s' % (name, path), copy, check=False)
    if proc.returncode == 0:
        os.unlink(copy)
        return True
    assert 'could not be found' in proc.stderr or 'no such file' in proc.stderr.lower(), proc.stderr
    return False


def test_metacharacters_are_stored_exactly_or_refused(ansible, conn, guests, workdir, podman, podman_path,
                                                      containers):
    name, disk, log = guests.new('inj')
    title = ' | '.join(p for p in PAYLOADS if '\n' not in p)
    description = '\n'.join(PAYLOADS)
    # (keys without Jinja: the controller templates dict keys, which is Ansible's business, not the module's)
    tags = dict(('k%d %s' % (i, p[:20].replace('{', '(').replace('%', 'pct')), p) for i, p in enumerate(PAYLOADS))
    ct = containers.new('inj')
    env = dict(('V%d' % i, p) for i, p in enumerate(PAYLOADS))
    labels = dict(('org.vft.l%d' % i, p) for i, p in enumerate(PAYLOADS))
    refused = {
        'name_xml': ('virtfleet.virt.vm', {'name': 'vft-<a>&"'}),
        'name_shell': ('virtfleet.virt.vm', {'name': 'vft-$(id)'}),
        'name_long': ('virtfleet.virt.vm', {'name': 'vft-' + 'x' * 300}),
        'title_long': ('virtfleet.virt.vm', guests.spec(name, disk, log, title='x' * 5000)),
        'title_newline': ('virtfleet.virt.vm', guests.spec(name, disk, log, title='a\nb')),
        'description_control': ('virtfleet.virt.vm', guests.spec(name, disk, log, description='bell\x07')),
        'net_name': ('virtfleet.virt.network', {'name': 'vft-hd-</name>', 'mode': 'isolated'}),
        'net_domain': ('virtfleet.virt.network', {'name': '%shd-dom' % PREFIX, 'mode': 'isolated',
                                                  'domain': 'a;touch %s' % MARKER}),
        'net_host': ('virtfleet.virt.network', {'name': '%shd-dom' % PREFIX, 'mode': 'isolated', 'ipv4': {
            'address': '10.253.9.1'}, 'dns_hosts': [{'ip': '10.253.9.5', 'hostnames': ['x</host><host>']}]}),
        'ct_name': ('virtfleet.virt.container', {'name': 'vft-$(id)', 'image': 'localhost/vft-busybox:latest',
                                                 'podman_path': podman_path}),
        'ct_image': ('virtfleet.virt.container', {'name': ct + 'x', 'image': '--privileged',
                                                  'podman_path': podman_path}),
    }
    tasks = [_task('virtfleet.virt.vm', guests.spec(name, disk, log, title=title, description=description,
                                                    tags=tags), 'vm'),
             _task('virtfleet.virt.vm', guests.spec(name, disk, log, title=title, description=description,
                                                    tags=tags), 'vm_again'),
             _task('virtfleet.virt.container', {'name': ct, 'image': 'localhost/vft-busybox:latest', 'env': env,
                                                'labels': labels, 'command': 'echo ' + SHELL,
                                                'podman_path': podman_path, 'state': 'present'}, 'ct')]
    tasks += [_task(module, args, key) for key, (module, args) in sorted(refused.items())]
    _output, results = _run(ansible, workdir, tasks)

    # stored exactly, read back from libvirt's own XML (no element was injected)
    assert results['vm']['changed'] and not results['vm'].get('failed'), results['vm']
    assert not results['vm_again']['changed'], results['vm_again']
    xml = domain_snapshot(conn, name)[0]
    root = etree.fromstring(xml.encode('utf-8'))
    assert root.findtext('title') == title and root.findtext('description') == description
    assert root.findtext('on_crash') != 'preserve'  # libvirt's default, not the payload's element
    assert len(root.findall('title')) == 1 and _tags_of(xml) == tags
    assert results['vm']['vm']['spec']['tags'] == tags and results['vm']['vm']['spec']['title'] == title

    # podman: the exact strings in the container's config
    assert not results['ct'].get('failed'), results['ct']
    data = podman.inspect(ct)
    stored_env = dict(e.split('=', 1) for e in data['Config']['Env'])
    assert all(stored_env[k] == v for k, v in env.items())
    assert all(data['Config']['Labels'][k] == v for k, v in labels.items())
    assert data['Config']['Cmd'] == ['echo'] + SHELL.split()
    # no shell on the host: the module's podman calls (create with the payloads in env, labels, command) made no
    # marker here
    assert not os.path.exists(MARKER)
    # no shell in the container: started, it runs echo with the payload as its arguments, which prints them
    # as they are (through a shell, $(...) and `...` would run touch and print nothing in their place) and
    # leaves no marker in the container's file system
    started = podman.run('start', '--attach', ct, check=False)
    assert started.returncode == 0 and started.stdout == SHELL + '\n', started
    assert podman.inspect(ct)['State']['ExitCode'] == 0
    assert not _in_container(podman, ct, MARKER, workdir)
    assert not os.path.exists(MARKER)
    # the control: the same payload through a shell in the same image does leave the marker where the checks
    # above look (so they would see a shell the module used)
    control = containers.new('injctl')
    podman.run('create', '--name', control, 'localhost/vft-busybox:latest', 'sh', '-c', 'echo ' + SHELL)
    ran = podman.run('start', '--attach', control, check=False)
    assert ran.stdout != SHELL + '\n' and _in_container(podman, control, MARKER, workdir), ran

    # refused, each with a clear message naming the option; nothing made
    for key in refused:
        result = results[key]
        assert result.get('failed') and result.get('msg') and 'Traceback' not in result['msg'], (key, result)
        assert 'MODULE FAILURE' not in result['msg'], (key, result)
    assert domain_snapshot(conn, 'vft-' + 'x' * 300) is None
    assert [n for n in conn.listAllNetworks(0) if n.name().startswith('%shd-dom' % PREFIX) or '<' in n.name()] == []
    assert podman.inspect(ct + 'x') is None

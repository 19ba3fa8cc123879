"""The virtfleet.virt.libvirt inventory plugin against the real libvirtd."""
from __future__ import annotations

import json
import os
import subprocess
import uuid


def _plain(value):
    """ansible-inventory --list marks host variables as unsafe ({"__ansible_unsafe": x}); unwrap them."""
    if isinstance(value, dict):
        if list(value) == ['__ansible_unsafe']:
            return value['__ansible_unsafe']
        return dict((k, _plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _inventory(ansible, workdir, config):
    path = os.path.join(workdir, 'inv-%s.libvirt.yml' % uuid.uuid4().hex[:6])
    with open(path, 'w') as handle:
        json.dump(config, handle)
    proc = subprocess.run([os.path.join(ansible.venv_bin, 'ansible-inventory'), '-i', path, '--list'],
                          env=ansible.env, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return _plain(json.loads(proc.stdout)), proc.stderr


def test_inventory_groups_by_state_tag_and_hypervisor(ansible, conn, guests, workdir):
    fleet = 'inv' + uuid.uuid4().hex[:6]
    running, disk, log = guests.new('invrun')
    assert ansible.task('vm', guests.spec(running, disk, log, state='running', tags={'fleet': fleet, 'role': 'web'}))['changed']
    stopped, disk2, log2 = guests.new('invstop')
    assert ansible.task('vm', guests.spec(stopped, disk2, log2, tags={'fleet': fleet, 'role': 'db'}))['changed']

    # the same URI twice: each VM appears once
    data, _err = _inventory(ansible, workdir, {'plugin': 'virtfleet.virt.libvirt', 'uris': ['qemu:///system'] * 2,
                                               'tags': {'fleet': fleet},
                                               'keyed_groups': [{'key': 'virtfleet_vm.spec.tags.role', 'prefix': 'role'}]})
    hostvars = data['_meta']['hostvars']
    assert sorted(hostvars) == sorted([running, stopped])
    assert data['state_running']['hosts'] == [running] and data['state_stopped']['hosts'] == [stopped]
    assert sorted(data['tag_fleet_' + fleet]['hosts']) == sorted([running, stopped])
    assert data['role_web']['hosts'] == [running] and data['role_db']['hosts'] == [stopped]
    hypervisor_group = 'hypervisor_' + conn.getHostname().replace('-', '_').replace('.', '_')
    assert sorted(data[hypervisor_group]['hosts']) == sorted([running, stopped])
    vm = hostvars[running]['virtfleet_vm']
    assert vm['uuid'] == conn.lookupByName(running).UUIDString() and vm['spec']['memory'] == 32
    assert hostvars[running]['virtfleet_uri'] == 'qemu:///system'

    data, _err = _inventory(ansible, workdir, {'plugin': 'virtfleet.virt.libvirt', 'states': ['running'],
                                               'tags': {'fleet': fleet}})
    assert list(data['_meta']['hostvars']) == [running]


def test_inventory_cache_serves_the_second_read(ansible, guests, workdir):
    fleet = 'cache' + uuid.uuid4().hex[:6]
    name, disk, log = guests.new('invcache')
    assert ansible.task('vm', guests.spec(name, disk, log, tags={'fleet': fleet}))['changed']
    cache_dir = os.path.join(workdir, 'inv-cache-' + fleet)
    config = {'plugin': 'virtfleet.virt.libvirt', 'tags': {'fleet': fleet}, 'cache': True,
              'cache_plugin': 'ansible.builtin.jsonfile', 'cache_connection': cache_dir, 'cache_timeout': 600}
    path = os.path.join(workdir, 'cached-%s.libvirt.yml' % fleet)
    with open(path, 'w') as handle:
        json.dump(config, handle)
    run = [os.path.join(ansible.venv_bin, 'ansible-inventory'), '-i', path, '--list']
    first = json.loads(subprocess.run(run, env=ansible.env, capture_output=True, text=True, check=True).stdout)
    assert list(first['_meta']['hostvars']) == [name]
    # the cached answer still lists the VM after it is gone from libvirt
    assert ansible.task('vm', {'name': name, 'state': 'absent'})['changed']
    second = json.loads(subprocess.run(run, env=ansible.env, capture_output=True, text=True, check=True).stdout)
    assert list(second['_meta']['hostvars']) == [name]
    assert os.listdir(cache_dir)


def test_inventory_unreachable_uri_is_a_clear_error(ansible, workdir):
    path = os.path.join(workdir, 'bad.libvirt.yml')
    with open(path, 'w') as handle:
        json.dump({'plugin': 'virtfleet.virt.libvirt', 'uris': ['qemu+unix:///system?socket=/nonexistent/x']}, handle)
    proc = subprocess.run([os.path.join(ansible.venv_bin, 'ansible-inventory'), '-i', path, '--list'],
                          env=dict(ansible.env, ANSIBLE_INVENTORY_UNPARSED_FAILED='True'),
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode != 0
    assert 'cannot connect to libvirt at qemu+unix:///system?socket=/nonexistent/x' in proc.stderr

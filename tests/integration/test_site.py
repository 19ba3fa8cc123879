"""playbooks/site.yml end to end on this machine: hypervisor ready, network created, fleets deployed."""
from __future__ import annotations

import json
import os
import shutil
import uuid

from conftest import REPO, wait_ticks


def test_site_playbook_on_this_machine(ansible, conn, guest_image, workdir, podman_path, podman):
    suffix = uuid.uuid4().hex[:6]
    images = os.path.join(workdir, 'site-' + suffix)
    os.makedirs(images)
    names = ['vft-site-%s-%d' % (suffix, i) for i in (1, 2)]
    for name in names:
        shutil.copyfile(guest_image, os.path.join(images, name + '.img'))
    inventory = os.path.join(workdir, 'site-%s.ini' % suffix)
    python = os.path.join(ansible.venv_bin, 'python')
    with open(inventory, 'w') as handle:
        handle.write('[hypervisors]\nhv1 ansible_connection=local ansible_python_interpreter=%s '
                     'virtfleet_uri=qemu:///system\n' % python)
        handle.write('[container_hosts]\nct1 ansible_connection=local ansible_python_interpreter=%s\n' % python)
        handle.write('[all:vars]\nansible_become=false\n')
    network = 'vft-site-' + suffix
    extra = {
        'kvm_host_require_kvm': os.path.exists('/dev/kvm'),
        'kvm_host_networks': [{'name': network, 'mode': 'isolated', 'bridge': 'vftsite' + suffix[:5],
                               'state': 'active'}],
        'site_vm_fleets': [{'name': 'vft-site-' + suffix, 'vms': [
            {'name': 'vft-site-' + suffix, 'replicas': 2, 'memory': 32,
             'disks': [{'path': images + '/{name}.img'}],
             'interfaces': [{'network': network}],
             'serial': [{'type': 'file', 'path': images + '/{name}.log'}]}]}],
        'site_container_fleets': [{'name': 'vft-site-' + suffix, 'containers': [
            {'name': 'vft-site-ctr-' + suffix, 'image': 'localhost/vft-busybox:latest', 'command': ['sleep', '3600'],
             'podman_path': podman_path}]}],
    }
    env_extra = ['-i', inventory, '-e', json.dumps(extra)]
    try:
        proc = ansible.playbook(os.path.join(REPO, 'playbooks', 'site.yml'), *env_extra)
        assert 'failed=0' in proc.stdout
        assert conn.networkLookupByName(network).isActive()
        for name in names:
            assert conn.lookupByName(name).isActive()
            wait_ticks(os.path.join(images, name + '.log'))
        assert podman.run('inspect', 'vft-site-ctr-' + suffix).returncode == 0
        again = ansible.playbook(os.path.join(REPO, 'playbooks', 'site.yml'), *env_extra)
        assert all('changed=0' in line for line in again.stdout.splitlines() if 'unreachable=0' in line), again.stdout
    finally:
        for name in names:
            ansible.task('vm', {'name': name, 'state': 'absent', 'force': True, 'shutdown_timeout': 0})
        ansible.task('network', {'name': network, 'state': 'absent'})
        podman.run('rm', '-f', 'vft-site-ctr-' + suffix, check=False)

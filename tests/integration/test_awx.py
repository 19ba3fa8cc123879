"""AWX / Automation Platform: the execution environment definition, and a job run through
ansible-runner (the engine AWX jobs use), judged by its events."""
from __future__ import annotations

import json
import os
import subprocess
import uuid

from conftest import REPO


def test_execution_environment_definition_is_valid(venv_bin, workdir):
    # ansible-builder names the file after the container runtime it finds on the PATH (Dockerfile
    # with docker, Containerfile with podman): name it, so the result does not depend on the machine.
    context = os.path.join(workdir, 'ee-context')
    proc = subprocess.run([os.path.join(venv_bin, 'ansible-builder'), 'create', '-f',
                           os.path.join(REPO, 'execution-environment.yml'), '--context', context,
                           '--output-filename', 'Containerfile'],
                          cwd=REPO, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(os.path.join(context, 'Containerfile')) as handle:
        containerfile = handle.read()
    assert 'requirements.txt' in containerfile and 'bindep.txt' in containerfile
    with open(os.path.join(context, '_build', 'requirements.txt')) as handle:
        assert 'libvirt-python' in handle.read()


def test_demo_job_through_ansible_runner(ansible, conn, guest_image, workdir):
    import ansible_runner

    suffix = uuid.uuid4().hex[:6]
    fleet = [{'name': 'vft-awx-' + suffix, 'replicas': 2, 'memory': 32, 'tags': {'role': 'web'}}]
    names = ['vft-awx-%s-%d' % (suffix, i) for i in (1, 2)]
    images = os.path.join(workdir, 'awx-images-' + suffix)
    os.makedirs(images)
    extravars = {'demo_fleet': fleet, 'demo_base_image': guest_image, 'demo_image_dir': images,
                 'demo_log_dir': images, 'demo_tag': 'vft-awx-' + suffix}
    private = os.path.join(workdir, 'runner-' + suffix)
    os.makedirs(private)
    try:
        result = ansible_runner.run(
            private_data_dir=private, playbook=os.path.join(REPO, 'playbooks', 'demo.yml'),
            inventory=open(ansible.inventory).read(), extravars=extravars, envvars=ansible.env,
            quiet=True, timeout=600)
        events = list(result.events)
        assert result.status == 'successful' and result.rc == 0, [e.get('stdout') for e in events]
        stats = [e for e in events if e['event'] == 'playbook_on_stats'][-1]['event_data']
        assert stats['failures'] == {} and stats['dark'] == {}
        ok_tasks = set(e['event_data'].get('task_action') for e in events if e['event'] == 'runner_on_ok')
        assert {'virtfleet.virt.fleet', 'virtfleet.virt.vm_info'} <= ok_tasks
        assert all(conn.lookupByName(name).isActive() for name in names)
    finally:
        ansible.playbook(os.path.join(REPO, 'playbooks', 'demo_remove.yml'), '-e', json.dumps(extravars))

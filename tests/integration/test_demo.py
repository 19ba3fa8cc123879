"""The README's quick-start playbook: deploys three VMs, re-runs with changed=0, removes them."""
from __future__ import annotations

import json
import os
import re
import uuid

from conftest import REPO, wait_ticks


def _recap_changed(output):
    match = re.search(r'localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0', output)
    assert match, output
    return int(match.group(1))


def test_demo_playbook_deploys_a_fleet_idempotently(ansible, conn, guest_image, workdir):
    suffix = uuid.uuid4().hex[:6]
    fleet = [{'name': 'vft-demo%d-%s' % (i, suffix), 'memory': 32, 'vcpus': 1, 'role': 'web'} for i in range(3)]
    images = os.path.join(workdir, 'demo-images')
    os.makedirs(images, exist_ok=True)
    extra = ['-e', json.dumps({'demo_fleet': fleet, 'demo_base_image': guest_image, 'demo_image_dir': images,
                               'demo_log_dir': images, 'demo_tag': 'vft-demo-' + suffix})]
    try:
        out = ansible.playbook(os.path.join(REPO, 'playbooks', 'demo.yml'), *extra).stdout
        assert _recap_changed(out) == 2
        for vm in fleet:
            assert conn.lookupByName(vm['name']).isActive()
            wait_ticks(os.path.join(images, vm['name'] + '-serial.log'))
            assert vm['name'] + ': running, 32 MiB, 1 vCPU' in out
        out = ansible.playbook(os.path.join(REPO, 'playbooks', 'demo.yml'), *extra).stdout
        assert _recap_changed(out) == 0
    finally:
        ansible.playbook(os.path.join(REPO, 'playbooks', 'demo_remove.yml'), *extra)
    names = [d.name() for d in conn.listAllDomains(0)]
    assert not [vm for vm in fleet if vm['name'] in names]

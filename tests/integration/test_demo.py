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
    fleet = [{'name': 'vft-demoweb-' + suffix, 'replicas': 2, 'memory': 32, 'tags': {'role': 'web'}},
             {'name': 'vft-demodb-' + suffix, 'memory': 48, 'vcpus': 2, 'tags': {'role': 'db'}}]
    names = ['vft-demoweb-%s-1' % suffix, 'vft-demoweb-%s-2' % suffix, 'vft-demodb-' + suffix]
    images = os.path.join(workdir, 'demo-images')
    os.makedirs(images, exist_ok=True)
    extra = ['-e', json.dumps({'demo_fleet': fleet, 'demo_base_image': guest_image, 'demo_image_dir': images,
                               'demo_log_dir': images, 'demo_tag': 'vft-demo-' + suffix})]
    try:
        out = ansible.playbook(os.path.join(REPO, 'playbooks', 'demo.yml'), *extra).stdout
        assert _recap_changed(out) == 2  # the disk copies, and the fleet
        for name in names:
            assert conn.lookupByName(name).isActive()
            wait_ticks(os.path.join(images, name + '-serial.log'))
        assert names[0] + ': running, 32 MiB, 1 vCPU' in out and names[2] + ': running, 48 MiB, 2 vCPU' in out
        out = ansible.playbook(os.path.join(REPO, 'playbooks', 'demo.yml'), *extra).stdout
        assert _recap_changed(out) == 0
    finally:
        ansible.playbook(os.path.join(REPO, 'playbooks', 'demo_remove.yml'), *extra)
    assert not set(names) & set(d.name() for d in conn.listAllDomains(0))

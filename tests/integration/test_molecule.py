"""Each role's Molecule scenario (converge, idempotence, verify) against the local daemons."""
from __future__ import annotations

import glob
import os
import subprocess

import pytest

from conftest import REPO

SCENARIOS = sorted(glob.glob(os.path.join(REPO, 'roles', '*', 'molecule', '*', 'molecule.yml')))


def test_every_role_has_a_molecule_scenario():
    roles = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, 'roles', '*')) if os.path.isdir(p))
    with_scenario = sorted(set(p.split(os.sep)[-4] for p in SCENARIOS))
    assert roles and roles == with_scenario


@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda p: '%s/%s' % (p.split(os.sep)[-4], p.split(os.sep)[-2]))
def test_molecule_scenario(scenario, venv_bin, collections_path, guest_image, request):
    role_dir = os.path.dirname(os.path.dirname(os.path.dirname(scenario)))
    name = os.path.basename(os.path.dirname(scenario))
    extra = {}
    if os.path.basename(role_dir).startswith('container'):
        extra['VIRTFLEET_PODMAN_PATH'] = request.getfixturevalue('podman_path')
    env = dict(os.environ, VIRTFLEET_PYTHON=os.path.join(venv_bin, 'python'),
               VIRTFLEET_COLLECTIONS_PATH=collections_path, VIRTFLEET_GUEST_IMAGE=guest_image,
               PATH=venv_bin + os.pathsep + os.environ.get('PATH', ''), NO_COLOR='1', ANSIBLE_NOCOLOR='1', **extra)
    proc = subprocess.run([os.path.join(venv_bin, 'molecule'), 'test', '-s', name], cwd=role_dir, env=env,
                          capture_output=True, text=True, check=False, timeout=1800)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert 'idempotence: Executed: Successful' in output

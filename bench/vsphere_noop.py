"""No-op benchmark on 500 simulated VMs: virtfleet.virt.vm_info versus community.vmware.vmware_vm_info.

Starts its own vCenter simulator (tests/env/vcsim-up.sh with its own state directory and
250 VMs per compute resource: 500 VMs), then runs ONE ansible-playbook with both modules
listing every VM, each task repeated ``--rounds`` times, and prints a Markdown table of the
wall time of each module task (timestamps taken by a task right before it and one right after).

community.vmware comes from the ``ansible`` PyPI package installed *outside* the test venv:

    pip install --no-deps --target /tmp/vft-bench/ansible-pkg 'ansible>=10,<12'
    pip install --target /tmp/vft-bench/pylib requests     # community.vmware needs it; our modules do not
    python3 bench/vsphere_noop.py --venv /tmp/vf --ansible-pkg /tmp/vft-bench/ansible-pkg --pylib /tmp/vft-bench/pylib

Run as root (the simulator's setup installs Debian packages when missing).  Traffic stays on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def sh(*args, env=None):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, env=env).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--venv', default=os.environ.get('VIRTFLEET_VENV_DIR', '/tmp/vf'))
    parser.add_argument('--ansible-pkg', default='/tmp/vft-bench/ansible-pkg',
                        help='pip --target directory of the ansible package (holds ansible_collections/community/vmware)')
    parser.add_argument('--pylib', default='/tmp/vft-bench/pylib',
                        help='pip --target directory with the extra libraries community.vmware needs (requests)')
    parser.add_argument('--vms', type=int, default=500, help='VMs in the simulator (split over its 2 compute resources)')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--keep', action='store_true', help='leave the benchmark simulator running')
    args = parser.parse_args()

    state = os.path.join(tempfile.gettempdir(), 'virtfleet-bench-vcsim')
    env = dict(os.environ, VIRTFLEET_VCSIM_DIR=state, VIRTFLEET_VCSIM_MACHINES=str(args.vms // 2))
    state = sh('bash', os.path.join(REPO, 'tests', 'env', 'vcsim-up.sh'), env=env).strip().splitlines()[-1]
    try:
        with open(os.path.join(state, 'env.json')) as handle:
            facts = json.load(handle)
        with open(os.path.join(state, 'password')) as handle:
            password = handle.read().strip()
        collections = sh('bash', os.path.join(REPO, 'tests', 'env', 'collection.sh')).strip().splitlines()[-1]
        results = run(args, facts, password, collections)
    finally:
        if not args.keep:
            subprocess.run(['bash', os.path.join(REPO, 'tests', 'env', 'vcsim-down.sh')], env=env, check=False)
    print(table(results, args))


def run(args, facts, password, collections):
    conn = {'hostname': facts['host'], 'port': int(facts['port']), 'username': facts['username'],
            'password': password}
    ours = dict(conn, ca_path=facts['ca_file'])
    # vmware_vm_info has no CA option: it trusts the CA through SSL_CERT_FILE
    theirs = dict(conn, validate_certs=True)
    theirs_env = {'SSL_CERT_FILE': facts['ca_file'], 'PYTHONPATH': args.pylib}
    tasks = []
    for index in range(args.rounds):
        for label, module, module_args, environment in (
                ('virtfleet.virt.vm_info', 'virtfleet.virt.vm_info', ours, {}),
                ('community.vmware.vmware_vm_info', 'community.vmware.vmware_vm_info', theirs, theirs_env)):
            tasks.append({'name': 'clock %s %d' % (label, index),
                          'ansible.builtin.command': 'date +%s.%N', 'register': 'before', 'changed_when': False})
            tasks.append({'name': '%s %d' % (label, index), module: module_args, 'register': 'listed',
                          'environment': environment})
            tasks.append({'name': 'record %s %d' % (label, index), 'ansible.builtin.shell':
                          'echo "{{ label }} $(date +%s.%N) {{ before.stdout }} {{ (listed.vms | default('
                          'listed.virtual_machines)) | length }}" >> {{ out }}',
                          'vars': {'label': label}, 'changed_when': False})
    workdir = tempfile.mkdtemp(prefix='vft-bench-')
    out = os.path.join(workdir, 'times.txt')
    play = [{'hosts': 'localhost', 'gather_facts': False, 'vars': {'out': out}, 'tasks': tasks}]
    path = os.path.join(workdir, 'bench.yml')
    with open(path, 'w') as handle:
        json.dump(play, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([collections, args.ansible_pkg]),
               ANSIBLE_NOCOLOR='1', ANSIBLE_DEPRECATION_WARNINGS='False')
    proc = subprocess.run([os.path.join(args.venv, 'bin', 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                           '-e', 'ansible_python_interpreter=%s' % os.path.join(args.venv, 'bin', 'python'), path],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit('the benchmark playbook failed:\n%s' % (proc.stdout + proc.stderr)[-4000:])
    results = {}
    with open(out) as handle:
        for line in handle:
            label, end, start, count = line.split()
            results.setdefault(label, []).append((float(end) - float(start), int(count)))
    os.unlink(out)
    return results


def table(results, args):
    lines = ['| module (no-op listing of %d VMs) | VMs returned | runs | median s | min s | max s |' % args.vms,
             '| --- | ---: | ---: | ---: | ---: | ---: |']
    for label, runs in results.items():
        times = [seconds for seconds, _count in runs]
        row = (label, runs[0][1], len(runs), statistics.median(times), min(times), max(times))
        lines.append('| %s | %d | %d | %.2f | %.2f | %.2f |' % row)
    lines.append('')
    lines.append('Each time spans the module task only (from a timestamp taken just before it to one just after), '
                 'both modules in the same ansible-playbook run, on the same simulator.')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()

"""Inventory benchmark: 200 simulated VMs as inventory hosts, virtfleet.virt.vsphere versus vmware.vmware.vms.

Starts its own vCenter simulator (tests/env/vcsim-up.sh with its own state directory and 100 VMs per
compute resource: 200 VMs in cluster DC0_C0 and on host DC0_H0) and times, as whole processes
(Python and Ansible start-up included), ``--reps`` repetitions of each contender, interleaved (the order
rotates every repetition):

  virtfleet           ``ansible-inventory --list`` on a virtfleet.virt.vsphere source, cache off
  virtfleet_cached    the same source with the jsonfile cache, warmed before the timing: a cache hit
  vmware_vms          ``ansible-inventory --list`` on a vmware.vmware.vms source at its defaults (the anchor)
  vmware_vms_compute  the same with ``gather_compute_objects: true`` (cluster and ESXi host of each VM, which
                      virtfleet.virt.vsphere always reads)
  raw                 a pyvmomi script: log in, one RetrievePropertiesEx (+ continue) over a container view of
                      every VM, with the VM properties virtfleet.virt.vsphere reads, log out (the floor)
  startup             ``ansible-inventory --list`` on the inline source ``localhost,``: what any inventory plugin
                      pays for Ansible's start-up on this machine (a reference, no contender)

Every contender must return 200 VMs, or the bench stops. vmware.vmware comes from the ``ansible`` package of
the bench venv (bench/run.sh makes it: ~/.cache/virtfleet/bench-venv); everything runs with ``--venv``'s
Python (the test venv: ansible-core and pyvmomi), the bench venv's collections added to the collections path,
and for vmware.vmware the ``requests`` library from ``--pylib`` (a pip --target directory):

    pip install --target /tmp/vft-bench-inv-pylib requests
    python3 bench/inventory.py --venv ~/.cache/virtfleet/venv-* --reps 3     # as root

Results: bench/results/inventory-<date>.json (``--out``) and a Markdown table on stdout
(``--table FILE`` prints the table of a results file again).
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
METHODS = ('virtfleet', 'virtfleet_cached', 'vmware_vms', 'vmware_vms_compute', 'raw', 'startup')

RAW = r'''
import json, ssl, sys
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl
facts, password, props = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
si = SmartConnect(host=facts['host'], port=int(facts['port']), user=facts['username'], pwd=password,
                  sslContext=ssl.create_default_context(cafile=facts['ca_file']))
content = si.RetrieveContent()
view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
pc = vmodl.query.PropertyCollector
spec = pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[
    pc.TraversalSpec(name='view', path='view', skip=False, type=vim.view.ContainerView)])],
    propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=props, all=False)])
result = content.propertyCollector.RetrievePropertiesEx([spec], pc.RetrieveOptions(maxObjects=1000))
count = 0
while result is not None:
    count += len(result.objects)
    if not result.token:
        break
    result = content.propertyCollector.ContinueRetrievePropertiesEx(result.token)
view.Destroy()
Disconnect(si)
print(count)
'''


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(*args, env=None):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, env=env).stdout


def anchor_collections():
    """The site-packages of the bench venv, which holds ansible_collections/vmware/vmware."""
    found = glob.glob(os.path.expanduser('~/.cache/virtfleet/bench-venv/lib/python3*/site-packages'))
    plugins = os.path.join('ansible_collections', 'vmware', 'vmware', 'plugins', 'inventory')
    return next((path for path in found if os.path.isdir(os.path.join(path, plugins))), None)


def version_of(root, namespace, name):
    try:
        with open(os.path.join(root, 'ansible_collections', namespace, name, 'MANIFEST.json')) as handle:
            return json.load(handle)['collection_info']['version']
    except (OSError, ValueError, KeyError):
        return None


class Bench:
    def __init__(self, args, facts, password, collections):
        self.args = args
        self.facts = facts
        self.password = password
        self.workdir = tempfile.mkdtemp(prefix='vft-bench-inv-')
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([collections, args.anchor]),
                        ANSIBLE_NOCOLOR='1', ANSIBLE_DEPRECATION_WARNINGS='False', ANSIBLE_INVENTORY_UNPARSED_FAILED='1',
                        VMWARE_PASSWORD=password, SSL_CERT_FILE=facts['ca_file'])
        # the VM properties virtfleet.virt.vsphere reads, for the raw script
        self.props = json.loads(sh(os.path.join(args.venv, 'bin', 'python'), '-c',
                                   'import json; from ansible_collections.virtfleet.virt.plugins.inventory.vsphere '
                                   'import VM_PROPS; print(json.dumps(list(VM_PROPS)))',
                                   env=dict(os.environ, PYTHONPATH=collections)))
        conn = {'hostname': facts['host'], 'port': int(facts['port']), 'username': facts['username']}
        self.sources = {
            'virtfleet': self.source('plain.vsphere.yml', dict(conn, plugin='virtfleet.virt.vsphere',
                                                               ca_path=facts['ca_file'])),
            'virtfleet_cached': self.source('cached.vsphere.yml', dict(
                conn, plugin='virtfleet.virt.vsphere', ca_path=facts['ca_file'], cache=True,
                cache_plugin='ansible.builtin.jsonfile', cache_connection=os.path.join(self.workdir, 'cache'),
                cache_timeout=3600)),
            # vmware.vmware trusts the simulator's CA through SSL_CERT_FILE (it has no CA option)
            'vmware_vms': self.source('plain.vmware_vms.yml', dict(conn, plugin='vmware.vmware.vms',
                                                                   validate_certs=True)),
            'vmware_vms_compute': self.source('compute.vmware_vms.yml', dict(
                conn, plugin='vmware.vmware.vms', validate_certs=True, gather_compute_objects=True)),
        }

    def source(self, name, config):
        path = os.path.join(self.workdir, name)
        with open(path, 'w') as handle:
            json.dump(config, handle)
        return path

    def run(self, method):
        python = os.path.join(self.args.venv, 'bin', 'python')
        if method == 'raw':
            cmd = [python, '-c', RAW, json.dumps(self.facts), self.password, json.dumps(self.props)]
        else:
            source = 'localhost,' if method == 'startup' else self.sources[method]
            cmd = [os.path.join(self.args.venv, 'bin', 'ansible-inventory'), '-i', source, '--list']
        start = time.monotonic()
        env = self.env
        if method.startswith('vmware_vms') and self.args.pylib:
            env = dict(env, PYTHONPATH=self.args.pylib)   # requests, which vmware.vmware imports
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=900)
        seconds = time.monotonic() - start
        if proc.returncode != 0:
            sys.exit('%s failed:\n%s' % (method, (proc.stdout + proc.stderr)[-4000:]))
        if method == 'raw':
            count = int(proc.stdout.strip())
        else:
            listed = json.loads(proc.stdout)
            count = len(listed['_meta']['hostvars']) if method != 'startup' else len(listed['ungrouped']['hosts'])
        if count != (1 if method == 'startup' else self.args.vms):
            sys.exit('%s returned %d VMs, not %d' % (method, count, self.args.vms))
        return seconds, count

    def main(self):
        self.run('virtfleet_cached')  # warm the cache (not timed)
        runs = dict((method, []) for method in METHODS)
        for rep in range(self.args.reps):
            order = METHODS[rep % len(METHODS):] + METHODS[:rep % len(METHODS)]
            for method in order:
                seconds, count = self.run(method)
                runs[method].append({'seconds': round(seconds, 3), 'vms': count})
                log('rep %d %-20s %6.2f s (%d VMs)' % (rep + 1, method, seconds, count))
        shutil.rmtree(self.workdir, ignore_errors=True)
        return runs


def load(path):
    with open(path) as handle:
        return json.load(handle)


def table(data):
    runs = data['runs']
    floor = statistics.median(r['seconds'] for r in runs['raw'])
    anchor = statistics.median(r['seconds'] for r in runs['vmware_vms'])
    lines = ['| contender (%d VMs) | runs | median s | min s | max s | / raw | / vmware_vms |' % data['vms'],
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: |']
    for method in METHODS:
        times = [r['seconds'] for r in runs[method]]
        median = statistics.median(times)
        lines.append('| %s | %d | %.2f | %.2f | %.2f | %.1f× | %.2f |'
                     % (method, len(times), median, min(times), max(times), median / floor, median / anchor))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--venv', default=os.environ.get('VIRTFLEET_VENV_DIR'),
                        help='virtualenv with ansible-core and pyvmomi (the test venv)')
    parser.add_argument('--anchor', default=anchor_collections(),
                        help='collections root holding ansible_collections/vmware/vmware (default: the bench venv)')
    parser.add_argument('--pylib', default='/tmp/vft-bench-inv-pylib',
                        help='pip --target directory with requests, which vmware.vmware needs and the test venv lacks')
    parser.add_argument('--vms', type=int, default=200, help='VMs in the simulator (split over its 2 compute resources)')
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'inventory-%s.json'
                                                      % datetime.datetime.now().strftime('%Y%m%d-%H%M')))
    parser.add_argument('--load', default='', help='what else ran on the machine meanwhile (recorded in the results)')
    parser.add_argument('--table', help='print the table of a results file and exit')
    args = parser.parse_args()
    if args.table:
        print(table(load(args.table)))
        return
    if not args.venv:
        sys.exit('--venv: the virtualenv with ansible-core and pyvmomi (or set VIRTFLEET_VENV_DIR)')
    if not args.anchor:
        sys.exit('--anchor: no collections root with vmware.vmware found (make the bench venv with bench/run.sh)')
    state = tempfile.mkdtemp(prefix='vft-bench-inv-vcsim-')
    env = dict(os.environ, VIRTFLEET_VCSIM_DIR=state, VIRTFLEET_VCSIM_MACHINES=str(args.vms // 2))
    sh('bash', os.path.join(REPO, 'tests', 'env', 'vcsim-up.sh'), env=env)
    try:
        with open(os.path.join(state, 'env.json')) as handle:
            facts = json.load(handle)
        with open(os.path.join(state, 'password')) as handle:
            password = handle.read().strip()
        collections = sh('bash', os.path.join(REPO, 'tests', 'env', 'collection.sh')).strip().splitlines()[-1]
        runs = Bench(args, facts, password, collections).main()
    finally:
        stop(state)
        shutil.rmtree(state, ignore_errors=True)
    versions = sh(os.path.join(args.venv, 'bin', 'python'), '-c',
                  'import ansible.release, importlib.metadata as m; print(ansible.release.__version__, m.version("pyvmomi"))').split()
    data = {'vms': args.vms, 'reps': args.reps, 'date': datetime.datetime.now().isoformat(timespec='seconds'),
            'machine': {'cpus': os.cpu_count(), 'python': platform.python_version(), 'ansible_core': versions[0],
                        'pyvmomi': versions[1], 'vmware.vmware': version_of(args.anchor, 'vmware', 'vmware'),
                        'load': args.load},
            'runs': runs}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as handle:
        json.dump(data, handle, indent=1)
    print(table(data))
    print('\nresults: %s' % args.out)


def stop(state):
    """Stop the simulator this bench started (its pid, checked to be a vcsim build)."""
    try:
        with open(os.path.join(state, 'vcsim.pid')) as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return
    if '/vcsim-' not in os.path.realpath('/proc/%d/exe' % pid):
        return
    os.kill(pid, signal.SIGTERM)
    for _attempt in range(50):
        if not os.path.exists('/proc/%d' % pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


if __name__ == '__main__':
    main()

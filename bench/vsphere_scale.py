"""vSphere at scale: listing 2000 simulated VMs, and a no-op on one VM among them.

Starts its own vCenter simulator (tests/env/vcsim-up.sh with its own state directory and ``--vms / 2`` VMs per
compute resource: 2000 VMs in cluster DC0_C0 and on host DC0_H0 by default; the shared simulator of the tests is
never touched) and, in each of ``--reps`` repetitions, times:

  vm_info          the task ``virtfleet.virt.vm_info`` listing every VM (the module task alone: timestamps
                   taken by a task right before it and one right after, in one ansible-playbook run)
  vmware_vm_info   the task ``community.vmware.vmware_vm_info`` listing every VM (the anchor), in the same
                   ansible-playbook run
  vm_noop          the task ``virtfleet.virt.vm`` with ``state: present`` and the spec it was made with, on one
                   VM among all the others (``vft-bench-noop``, made by virtfleet.virt.vm before the timing:
                   the simulator's own VMs carry a CD-ROM on a SCSI controller, which virtfleet.virt.vm refuses),
                   nothing to change: ``changed`` must be false (the module time of a one-VM no-op)
  raw              a pyvmomi script (bench/inventory.py's RAW): log in, one RetrievePropertiesEx (+ continue)
                   over a container view of every VM with the VM properties vm_info reads
                   (``VSphereClient`` VM_FULL), log out - the floor; a whole process, run right after
                   the playbook of the same repetition (the order of the tasks rotates every repetition)

Each row records the 1-minute load average before it, the simulator's CPU time (from /proc) spent during it and the
module's own process: its wall time (``module_seconds``: the module process alone, without Ansible's work on the
controller) and CPU time (user + system), taken by a wrapper named as the task's Python interpreter (bash's
``time``); the raw row the same of the script's process. Every listing must return ``--vms`` + 1 VMs (the no-op's VM
is one more) or the bench stops.

community.vmware comes from the ``ansible`` package of the bench venv (bench/run.sh makes it:
~/.cache/virtfleet/bench-venv); everything runs with ``--venv``'s Python (the test venv: ansible-core and
pyvmomi) and, for community.vmware, ``requests`` from ``--pylib`` (a pip --target directory):

    pip install --target /tmp/vft-bench-inv-pylib requests
    python3 bench/vsphere_scale.py --venv ~/.cache/virtfleet/venv-* --reps 3 --load "what else runs"   # as root

Results: bench/results/vsphere-scale-<date>.json (``--out``) and a Markdown table on stdout
(``--table FILE`` prints the table of a results file again).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
# the simulator's start and stop, the raw pyvmomi floor and the bench venv's collections: shared with
# the inventory bench
from inventory import RAW, anchor_collections, sh, stop, version_of  # noqa: E402  pylint: disable=wrong-import-position

NOOP_VM = {'name': 'vft-bench-noop', 'cluster': 'DC0_C0', 'datastore': 'LocalDS_0', 'memory': 64, 'vcpus': 1,
           'disks': [{'size': '1GiB'}], 'interfaces': [{'network': 'VM Network'}], 'tags': {'bench': 'noop'}}
METHODS = ('vm_info', 'vmware_vm_info', 'vm_noop', 'raw')
TASKS = ('vm_info', 'vmware_vm_info', 'vm_noop')


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load1():
    with open('/proc/loadavg') as handle:
        return float(handle.read().split()[0])


def cpu_of(pid):
    """User + system CPU seconds of a process so far (from /proc)."""
    with open('/proc/%d/stat' % pid) as handle:
        fields = handle.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class Bench:
    def __init__(self, args, facts, password, collections):
        self.args = args
        self.facts = facts
        self.password = password
        self.collections = collections
        self.workdir = tempfile.mkdtemp(prefix='vft-bench-vsscale-')
        self.python = os.path.join(args.venv, 'bin', 'python')
        self.props = json.loads(sh(self.python, '-c', 'import json; from ansible_collections.virtfleet.virt.plugins.'
                                   'module_utils._clients.vsphere import VM_FULL; print(json.dumps(list(VM_FULL)))',
                                   env=dict(os.environ, PYTHONPATH=collections)))
        self.timed = os.path.join(self.workdir, 'python-timed')
        with open(self.timed, 'w') as handle:
            handle.write('#!/bin/bash\nTIMEFORMAT="$VFT_BENCH_LABEL %%R %%U %%S"\n'
                         '{ time %s "$@" 2>&3 ; } 3>&2 2>>%s\n' % (self.python, os.path.join(self.workdir, 'module.txt')))
        os.chmod(self.timed, 0o755)
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([collections, args.anchor]),
                        ANSIBLE_NOCOLOR='1', ANSIBLE_DEPRECATION_WARNINGS='False')

    def clock(self, name):
        """A task that records the time, the load and the simulator's CPU time."""
        return {'name': name, 'ansible.builtin.shell': 'echo "$(date +%%s.%%N) $(cut -d" " -f1 /proc/loadavg) '
                '$(cut -d" " -f14,15 /proc/%d/stat)"' % self.facts['pid'], 'register': 'clock', 'changed_when': False}

    def tasks(self, method):
        conn = {'hostname': self.facts['host'], 'port': int(self.facts['port']), 'username': self.facts['username'],
                'password': self.password}
        if method == 'vm_info':
            task = {'virtfleet.virt.vm_info': dict(conn, ca_path=self.facts['ca_file'])}
        elif method == 'vm_noop':
            task = {'virtfleet.virt.vm': dict(conn, ca_path=self.facts['ca_file'], state='present', **NOOP_VM)}
        else:  # vmware_vm_info has no CA option: it trusts the CA through SSL_CERT_FILE
            task = {'community.vmware.vmware_vm_info': dict(conn, validate_certs=True),
                    'environment': {'SSL_CERT_FILE': self.facts['ca_file'], 'PYTHONPATH': self.args.pylib}}
        task.update(name=method, register='result', no_log=True, vars={'ansible_python_interpreter': self.timed})
        task.setdefault('environment', {})['VFT_BENCH_LABEL'] = method
        out = os.path.join(self.workdir, 'times.txt')
        count = "{{ (result.vms | default(result.virtual_machines) | default([1])) | length }}"
        return [self.clock('clock ' + method), task,
                {'name': 'record ' + method, 'ansible.builtin.shell':
                 'echo "%s {{ clock.stdout }} $(date +%%s.%%N) $(cut -d" " -f14,15 /proc/%d/stat) %s '
                 '{{ result.changed | default(false) }}" >> %s' % (method, self.facts['pid'], count, out),
                 'changed_when': False}]

    def setup(self):
        """Make the no-op's VM (not timed)."""
        conn = {'hostname': self.facts['host'], 'port': int(self.facts['port']), 'username': self.facts['username'],
                'password': self.password, 'ca_path': self.facts['ca_file']}
        self.playbook([], [{'name': 'the no-op VM', 'virtfleet.virt.vm': dict(conn, state='present', **NOOP_VM),
                            'no_log': True}])

    def playbook(self, order, tasks=None):
        tasks = list(tasks or [])
        for method in order:
            tasks += self.tasks(method)
        path = os.path.join(self.workdir, 'bench.yml')
        with open(path, 'w') as handle:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks,
                        'vars': {'ansible_python_interpreter': self.python}}], handle)
        out = os.path.join(self.workdir, 'times.txt')
        module = os.path.join(self.workdir, 'module.txt')
        for old in (out, module):
            if os.path.exists(old):
                os.unlink(old)
        proc = subprocess.run([os.path.join(self.args.venv, 'bin', 'ansible-playbook'), '-i', 'localhost,', '-c',
                               'local', path],
                              env=self.env, capture_output=True, text=True, check=False, timeout=7200)
        if proc.returncode != 0:
            sys.exit('the benchmark playbook failed:\n%s' % (proc.stdout + proc.stderr)[-4000:])
        rows = {}
        if not order:
            return rows
        tick = os.sysconf('SC_CLK_TCK')
        with open(out) as handle:
            for line in handle:
                method, start, load, cpu_u0, cpu_s0, end, cpu_u1, cpu_s1, count, changed = line.split()
                rows[method] = {'seconds': round(float(end) - float(start), 3), 'load_before': float(load),
                                'vcsim_cpu': round((int(cpu_u1) + int(cpu_s1) - int(cpu_u0) - int(cpu_s0)) / tick, 2),
                                'vms': int(count), 'changed': changed == 'True'}
        with open(module) as handle:
            for line in handle:
                method, real, user, system = line.split()
                rows[method].update(module_seconds=float(real), cpu=round(float(user) + float(system), 2))
        return rows

    def raw(self):
        before_load, before_vcsim = load1(), cpu_of(self.facts['pid'])
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        proc = subprocess.run([self.python, '-c', RAW, json.dumps(self.facts), self.password, json.dumps(self.props)],
                              capture_output=True, text=True, check=False, timeout=3600)
        seconds = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            sys.exit('raw failed:\n%s' % (proc.stdout + proc.stderr)[-4000:])
        return {'seconds': round(seconds, 3), 'module_seconds': round(seconds, 3), 'load_before': before_load,
                'vcsim_cpu': round(cpu_of(self.facts['pid']) - before_vcsim, 2),
                'cpu': round(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime, 2),
                'vms': int(proc.stdout.strip()), 'changed': False}

    def main(self):
        runs = dict((method, []) for method in METHODS)
        self.setup()
        methods = [m for m in METHODS if m in self.args.methods]
        for rep in range(self.args.reps):
            order = methods[rep % len(methods):] + methods[:rep % len(methods)]
            tasks = [m for m in order if m in TASKS]
            rows = self.playbook(tasks) if tasks else {}
            if 'raw' in order:
                rows['raw'] = self.raw()
            for method in order:
                row = rows[method]
                runs[method].append(row)
                log('rep %d %-15s %7.2f s, process %.2f s (%d VMs, load %.1f, simulator CPU %.2f s, own CPU %.2f s)'
                    % (rep + 1, method, row['seconds'], row['module_seconds'], row['vms'], row['load_before'],
                       row['vcsim_cpu'], row['cpu']))
                if method == 'vm_noop':
                    if row['changed']:
                        sys.exit('vm_noop reported changed: the no-op is no no-op')
                elif row['vms'] != self.args.vms + 1:
                    sys.exit('%s returned %d VMs, not %d' % (method, row['vms'], self.args.vms + 1))
            with open(self.args.out + '.partial', 'w') as handle:  # what is done so far, should a later rep die
                json.dump({'vms': self.args.vms, 'reps_done': rep + 1, 'runs': runs}, handle, indent=1)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return runs


def table(data):
    runs = data['runs']

    def median(method):
        times = [r['seconds'] for r in runs.get(method) or []]
        return statistics.median(times) if times else None
    floor, anchor = median('raw'), median('vmware_vm_info')
    lines = ['| contender (%d VMs + 1) | runs | task s (median) | min s | max s | / raw | vmware_vm_info / it | '
             'process s (median) | own CPU s (median) | simulator CPU s (median) | 1-min load before |' % data['vms'],
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |']
    for method in METHODS:
        rows = runs.get(method) or []
        if not rows:
            continue
        times = [r['seconds'] for r in rows]
        loads = [r['load_before'] for r in rows]
        value = median(method)
        lines.append('| %s | %d | %.2f | %.2f | %.2f | %s | %s | %.2f | %.2f | %.2f | %.1f-%.1f |' % (
            method, len(times), value, min(times), max(times),
            '%.2f' % (value / floor) if floor and method != 'vm_noop' else '-',
            '%.1f×' % (anchor / value) if anchor and method != 'vm_noop' else '-',
            statistics.median(r['module_seconds'] for r in rows), statistics.median(r['cpu'] for r in rows),
            statistics.median(r['vcsim_cpu'] for r in rows), min(loads), max(loads)))
    return '\n'.join(lines)


def start(state, env):
    """tests/env/vcsim-up.sh with its own state directory; on a loaded machine a simulator of thousands of VMs
    takes longer to come up than that script waits (30 s): then wait for it here, up to 10 minutes."""
    try:
        sh('bash', os.path.join(REPO, 'tests', 'env', 'vcsim-up.sh'), env=env)
        return
    except subprocess.CalledProcessError:
        pass
    with open(os.path.join(state, 'vcsim.pid')) as handle:
        pid = int(handle.read().strip())
    for _attempt in range(600):
        if not os.path.exists('/proc/%d' % pid):
            break
        try:
            with open(os.path.join(state, 'env.json')) as handle:
                if json.load(handle)['pid'] == pid:
                    return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(1)
    sys.exit('the simulator did not come up; its log:\n' + open(os.path.join(state, 'vcsim.log')).read()[-2000:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--venv', default=os.environ.get('VIRTFLEET_VENV_DIR'),
                        help='virtualenv with ansible-core and pyvmomi (the test venv)')
    parser.add_argument('--anchor', default=anchor_collections(),
                        help='collections root holding ansible_collections/community/vmware (default: the bench venv)')
    parser.add_argument('--pylib', default='/tmp/vft-bench-inv-pylib',
                        help='pip --target directory with requests, which community.vmware needs and the test venv lacks')
    parser.add_argument('--collections', help='collections path holding virtfleet.virt (default: tests/env/collection.sh)')
    parser.add_argument('--vms', type=int, default=2000, help='VMs in the simulator (split over its 2 compute resources)')
    parser.add_argument('--methods', default=','.join(METHODS), help='the contenders to run (comma-separated)')
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'vsphere-scale-%s.json'
                                                      % datetime.datetime.now().strftime('%Y%m%d-%H%M')))
    parser.add_argument('--load', default='', help='what else ran on the machine meanwhile (recorded in the results)')
    parser.add_argument('--table', help='print the table of a results file and exit')
    args = parser.parse_args()
    if args.table:
        with open(args.table) as handle:
            print(table(json.load(handle)))
        return
    args.methods = args.methods.split(',')
    if not args.venv:
        sys.exit('--venv: the virtualenv with ansible-core and pyvmomi (or set VIRTFLEET_VENV_DIR)')
    if not args.anchor:
        sys.exit('--anchor: no collections root with community.vmware found (make the bench venv with bench/run.sh)')
    state = tempfile.mkdtemp(prefix='vft-bench-vsscale-vcsim-')
    env = dict(os.environ, VIRTFLEET_VCSIM_DIR=state, VIRTFLEET_VCSIM_MACHINES=str(args.vms // 2))
    try:
        start(state, env)
        with open(os.path.join(state, 'env.json')) as handle:
            facts = json.load(handle)
        with open(os.path.join(state, 'password')) as handle:
            password = handle.read().strip()
        collections = args.collections or \
            sh('bash', os.path.join(REPO, 'tests', 'env', 'collection.sh')).strip().splitlines()[-1]
        runs = Bench(args, facts, password, collections).main()
    finally:
        stop(state)
        shutil.rmtree(state, ignore_errors=True)
    versions = sh(os.path.join(args.venv, 'bin', 'python'), '-c', 'import ansible.release, importlib.metadata as m; '
                  'print(ansible.release.__version__, m.version("pyvmomi"))').split()
    data = {'vms': args.vms, 'reps': args.reps, 'noop_vm': NOOP_VM,
            'date': datetime.datetime.now().isoformat(timespec='seconds'),
            'machine': {'cpus': os.cpu_count(), 'python': platform.python_version(), 'ansible_core': versions[0],
                        'pyvmomi': versions[1], 'community.vmware': version_of(args.anchor, 'community', 'vmware'),
                        'load': args.load},
            'runs': runs}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as handle:
        json.dump(data, handle, indent=1)
    if os.path.exists(args.out + '.partial'):  # the whole run is in args.out now
        os.unlink(args.out + '.partial')
    print(table(data))
    print('\nresults: %s' % args.out)


if __name__ == '__main__':
    main()

"""Many hypervisors at once: converge and no-op of a fleet of 8 simulated hypervisors x 20 VMs (2 running per host).

Methods, side by side in one invocation (each timed as a whole process, so Ansible's own start-up is included):
  concurrent  the vm_fleet role in its per-host form: one play host per hypervisor (vm_fleet_uri from the inventory),
              forks = the number of hypervisors, so every task runs on all hypervisors at once
  sequential  the same playbook and inventory with forks = 1: one hypervisor after another (the anchor)
  raw         a libvirt-python script, one thread and one connection per hypervisor (the floor): defineXML of
              the role's own rendered XML and create() for the running ones; the no-op looks every VM up and
              reads its definition and state

The hypervisors are tests/env/nhost-up.sh's (network + mount + UTS namespaces, one libvirtd each, reached from
here by their unix-socket URIs); the guests bench/fleet.py's halting boot sector (32 MiB, 1 vCPU). The fleet is
20 anti-affinity groups of one VM per hypervisor, so every method puts exactly 20 VMs on each host; groups 1 and 2
run, the others are defined and stopped. Run through bench/run.sh (see bench/README.md).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import libvirt

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PREFIX = 'vfh-'
FLEET = 'vfh-bench'
DISK_DIR = '/var/lib/virtfleet-bench-hv'
SCENARIOS = ('converge', 'noop')
IDLE_BOOT_SECTOR = b'\xfa\xf4\xeb\xfd'.ljust(510, b'\0') + b'\x55\xaa'

RAW = r'''
import json, sys, threading, libvirt
action, plan_file = sys.argv[1], sys.argv[2]
plan = json.load(open(plan_file))   # {uri: [[name, xml, running], ...]}
changed, errors = [], []

def one(uri, vms):
    try:
        conn = libvirt.open(uri)
        for name, xml, running in vms:
            if action == 'converge':
                dom = conn.defineXML(xml)
                if running:
                    dom.create()
                changed.append(name)
            else:
                dom = conn.lookupByName(name)
                dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
                if (dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING) != running:
                    changed.append(name)
        conn.close()
    except libvirt.libvirtError as exc:
        errors.append('%s: %s' % (uri, exc))

threads = [threading.Thread(target=one, args=item) for item in plan.items()]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
if errors:
    sys.exit('; '.join(errors))
print('changed=%d' % len(changed))
'''


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix='virtfleet-bench-hv-')
        out = subprocess.run(['bash', os.path.join(REPO, 'tests', 'env', 'nhost-up.sh'), str(args.hosts)],
                             check=True, capture_output=True, text=True).stdout
        self.hosts = [line.split()[:2] for line in out.strip().splitlines()]  # [[name, uri], ...]
        self.conns = dict((name, libvirt.open(uri)) for name, uri in self.hosts)
        venv_bin = os.path.dirname(sys.executable)
        self.ansible_playbook = os.path.join(venv_bin, 'ansible-playbook')
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=args.collections, ANSIBLE_NOCOLOR='1',
                        ANSIBLE_DEPRECATION_WARNINGS='False', PATH=venv_bin + os.pathsep + os.environ['PATH'])
        self.inventory = os.path.join(self.work, 'hypervisors.json')
        with open(self.inventory, 'w') as handle:
            json.dump({'hypervisors': {'hosts': dict(
                (name, {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                        'vm_fleet_uri': uri}) for name, uri in self.hosts)}}, handle)
        sys.path.insert(0, args.collections)
        from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
        from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml
        self._vm_spec = _vm_spec
        self._domxml = libvirt_domxml
        first = self.conns[self.hosts[0][0]]
        try:
            first.getDomainCapabilities(None, None, None, 'kvm', 0)
            self.domain_type = 'kvm'
        except libvirt.libvirtError:
            self.domain_type = 'qemu'

    # -- the fleet ------------------------------------------------------------
    def groups(self):
        return ['%sg%02d' % (PREFIX, g) for g in range(1, self.args.per_host + 1)]

    def items(self):
        """vm_fleet_vms: one item per group, a replica per hypervisor, anti-affinity: 20 VMs on every host."""
        os.makedirs(DISK_DIR, exist_ok=True)
        items = []
        for index, group in enumerate(self.groups()):
            for k in range(1, len(self.hosts) + 1):
                with open(os.path.join(DISK_DIR, '%s-%d.img' % (group, k)), 'wb') as handle:
                    handle.write(IDLE_BOOT_SECTOR)
            items.append({'name': group, 'replicas': len(self.hosts), 'anti_affinity': group,
                          'state': 'running' if index < self.args.running_per_host else 'stopped',
                          'memory': 32, 'vcpus': 1, 'disks': [{'path': DISK_DIR + '/{name}.img', 'format': 'raw'}]})
        return items

    def raw_plan(self):
        """{uri: [[name, xml, running]]}: the same VMs, replica k on host k, XML from the collection's renderer
        (with the tags the role gives them)."""
        plan = {}
        for k, (_name, uri) in enumerate(self.hosts, 1):
            plan[uri] = []
            for index, group in enumerate(self.groups()):
                name = '%s-%d' % (group, k)
                partial = {'memory': 32, 'vcpus': 1, 'domain_type': self.domain_type,
                           'disks': [{'path': os.path.join(DISK_DIR, name + '.img'), 'format': 'raw'}],
                           'tags': {'fleet': FLEET, 'virtfleet_anti_affinity': group}}
                spec = self._vm_spec.merge(partial, None)
                plan[uri].append([name, self._domxml.render(name, spec), index < self.args.running_per_host])
        path = os.path.join(self.work, 'raw-plan.json')
        with open(path, 'w') as handle:
            json.dump(plan, handle)
        return path

    def playbook(self):
        play = [{'name': 'The fleet across the hypervisors', 'hosts': 'hypervisors', 'gather_facts': False,
                 'roles': [{'role': 'virtfleet.virt.vm_fleet', 'vars': {
                     'vm_fleet_name': FLEET, 'vm_fleet_vms': self.items(), 'vm_fleet_batch_size': self.args.per_host,
                     'vm_fleet_workers': self.args.workers}}]}]
        path = os.path.join(self.work, 'fleet.yml')
        with open(path, 'w') as handle:
            json.dump(play, handle)
        return path

    def clean(self):
        """Every vfh- VM off every hypervisor, one thread per host (not timed)."""
        def one(conn):
            for dom in conn.listAllDomains(0):
                if dom.name().startswith(PREFIX):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
        threads = [threading.Thread(target=one, args=(conn,)) for conn in self.conns.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def census(self):
        """{host: (defined, running)} of the vfh- VMs."""
        found = {}
        for name, conn in self.conns.items():
            doms = [d for d in conn.listAllDomains(0) if d.name().startswith(PREFIX)]
            found[name] = (len(doms), sum(1 for d in doms if d.isActive()))
        return found

    # -- runs -------------------------------------------------------------------
    def run_once(self, method, scenario, playbook, raw_plan):
        if method == 'raw':
            command = [sys.executable, '-c', RAW, scenario, raw_plan]
        else:
            forks = len(self.hosts) if method == 'concurrent' else 1
            command = [self.ansible_playbook, '-i', self.inventory, '-f', str(forks), playbook]
        start = time.monotonic()
        proc = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
        if proc.returncode != 0:
            raise RuntimeError('%s %s failed:\n%s%s' % (method, scenario, proc.stdout[-4000:], proc.stderr[-3000:]))
        if method == 'raw':
            changed = int(re.search(r'changed=(\d+)', proc.stdout).group(1))
        else:
            changed = sum(int(c) for c in re.findall(r'^\S+\s*:\s*ok=\d+\s+changed=(\d+)', proc.stdout, re.M))
        return elapsed, changed

    def run(self):
        playbook, raw_plan = self.playbook(), self.raw_plan()
        want = dict((name, (self.args.per_host, self.args.running_per_host)) for name, _uri in self.hosts)
        for rep in range(self.args.reps):
            for method in self.args.methods:
                self.clean()
                row = {'method': method, 'rep': rep, 'hosts': len(self.hosts), 'vms_per_host': self.args.per_host,
                       'load_before': os.getloadavg()[0]}
                for scenario in SCENARIOS:
                    elapsed, changed = self.run_once(method, scenario, playbook, raw_plan)
                    row[scenario] = round(elapsed, 3)
                    row[scenario + '_changed'] = changed
                    census = self.census()
                    assert census == want, '%s %s: %s, want %s' % (method, scenario, census, want)
                    if scenario == 'converge':
                        time.sleep(self.args.settle)  # the 16 guests boot their sector and halt
                assert row['noop_changed'] == 0, row
                log('rep=%d %s: converge=%.2fs (changed %d) noop=%.2fs (load %.1f before)'
                    % (rep, method, row['converge'], row['converge_changed'], row['noop'], row['load_before']))
                yield row
        self.clean()


def machine(conn):
    info = conn.getInfo()
    lib = conn.getLibVersion()
    hv = conn.getVersion()
    return {'cpus': os.cpu_count(), 'host_memory_mib': info[1],
            'libvirt': '%d.%d.%d' % (lib // 1000000, lib // 1000 % 1000, lib % 1000),
            'qemu': '%d.%d.%d' % (hv // 1000000, hv // 1000 % 1000, hv % 1000),
            'python': platform.python_version(), 'kernel': platform.release()}


def table(results, methods):
    lines = ['| scenario | ' + ' | '.join(methods) + ' | sequential / concurrent | concurrent / raw |',
             '|---|' + '---|' * len(methods) + '---|---|']
    for scenario in SCENARIOS:
        med = {}
        for method in methods:
            values = [r[scenario] for r in results if r['method'] == method]
            med[method] = statistics.median(values) if values else None
        cells = ['%.2f s' % med[m] if med[m] is not None else '-' for m in methods]
        speedup = ('%.1f×' % (med['sequential'] / med['concurrent'])) if med.get('sequential') and med.get('concurrent') else '-'
        floor = ('%.1f' % (med['concurrent'] / med['raw'])) if med.get('concurrent') and med.get('raw') else '-'
        lines.append('| %s | %s | %s | %s |' % (scenario, ' | '.join(cells), speedup, floor))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--hosts', default=8, type=int, help='simulated hypervisors (tests/env/nhost-up.sh N)')
    parser.add_argument('--per-host', default=20, type=int, help='VMs per hypervisor')
    parser.add_argument('--running-per-host', default=2, type=int)
    parser.add_argument('--reps', default=3, type=int)
    parser.add_argument('--workers', default=4, type=int, help='vm_fleet_workers')
    parser.add_argument('--settle', default=5.0, type=float, help='seconds to wait after converge before the no-op')
    parser.add_argument('--methods', default='concurrent,sequential,raw', type=lambda s: s.split(','))
    parser.add_argument('--collections', help='collections path holding virtfleet.virt')
    parser.add_argument('--out', help='JSON results file')
    parser.add_argument('--table', nargs='+', metavar='RESULTS', help='only print the table of these results files')
    args = parser.parse_args()
    if args.table:
        results = []
        for path in args.table:
            with open(path) as handle:
                results += json.load(handle)['results']
        print(table(results, args.methods))
        return
    if not args.out or not args.collections:
        parser.error('--out and --collections are needed for a run')
    bench = Bench(args)
    results = []
    report = {}
    for row in bench.run():
        results.append(row)
        report = {'machine': machine(bench.conns[bench.hosts[0][0]]),
                  'args': {'hosts': args.hosts, 'per_host': args.per_host, 'running_per_host': args.running_per_host,
                           'reps': args.reps, 'workers': args.workers, 'settle': args.settle},
                  'results': results, 'table': table(results, args.methods)}
        with open(args.out, 'w') as handle:  # after every row: an interrupted run keeps what it measured
            json.dump(report, handle, indent=2)
    print(report['table'])


if __name__ == '__main__':
    main()

"""Fleet benchmark: converge, no-op re-run, check mode and teardown of N small KVM guests.

Methods, side by side in one invocation:
  fleet      virtfleet.virt.fleet, one task for the whole list
  vm_loop    virtfleet.virt.vm in a loop (one module process per VM)
  community  community.libvirt.virt in a loop (define, then state=running), from the ansible package
  raw        a plain libvirt-python script: one connection, sequential (the lower bound)

Each scenario is timed as a whole process (ansible-playbook or python), so Ansible's own start-up
is included. Run through bench/run.sh, which prepares the environment; see bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import libvirt

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
URI = 'qemu:///system'
PREFIX = 'vfb-'
DISK_DIR = '/var/lib/virtfleet-bench'
SCENARIOS = ('converge', 'noop', 'check', 'teardown')
# The guest: a boot sector that halts its only vCPU with interrupts off (cli; hlt; jmp back). An idle
# QEMU process costs no CPU, so 100 guests fit on 2 cores; the tests' counting guest polls the BIOS
# timer and would keep about 15 % of a core busy per guest, measuring the guests instead of the tools.
IDLE_BOOT_SECTOR = b'\xfa\xf4\xeb\xfd'.ljust(510, b'\0') + b'\x55\xaa'

RAW = r'''
import sys, libvirt
action, count, xml_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conn = libvirt.open('qemu:///system')
names = ['%s%03d' % (sys.argv[4], i) for i in range(count)]
changed = 0
for name in names:
    xml = open('%s/%s.xml' % (xml_dir, name)).read()
    if action == 'converge':
        dom = conn.defineXML(xml)
        dom.create()
        changed += 1
    elif action in ('noop', 'check'):
        # the lower bound of an honest check: look the VM up and read its definition and state
        dom = conn.lookupByName(name)
        dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        if dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
            changed += 1
    elif action == 'teardown':
        dom = conn.lookupByName(name)
        dom.destroy()
        dom.undefine()
        changed += 1
print('changed=%d' % changed)
'''


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Bench:
    prefix = PREFIX  # every domain this bench makes starts with it (bench/scale.py has its own)

    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix='virtfleet-bench-')
        self.conn = libvirt.open(URI)
        self.inventory = os.path.join(self.work, 'inventory.ini')
        with open(self.inventory, 'w') as handle:
            handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
        venv_bin = os.path.dirname(sys.executable)
        self.ansible_playbook = os.path.join(venv_bin, 'ansible-playbook')
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=args.collections, ANSIBLE_NOCOLOR='1',
                        ANSIBLE_DEPRECATION_WARNINGS='False', PATH=venv_bin + os.pathsep + os.environ['PATH'])
        sys.path.insert(0, args.collections)
        from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
        from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml
        self._vm_spec = _vm_spec
        self._domxml = libvirt_domxml
        self.domain_type = 'kvm'
        try:
            self.conn.getDomainCapabilities(None, None, None, 'kvm', 0)
        except libvirt.libvirtError:
            self.domain_type = 'qemu'

    # -- fixtures -----------------------------------------------------------
    def names(self, count):
        return ['%s%03d' % (self.prefix, i) for i in range(count)]

    def specs(self, count):
        os.makedirs(DISK_DIR, exist_ok=True)
        vms = []
        for name in self.names(count):
            disk = os.path.join(DISK_DIR, name + '.img')
            if self.args.image:
                shutil.copyfile(self.args.image, disk)
            else:
                with open(disk, 'wb') as handle:
                    handle.write(IDLE_BOOT_SECTOR)
            vms.append({'name': name, 'state': 'running', 'memory': 32, 'vcpus': 1,
                        'disks': [{'path': disk}], 'tags': {'fleet': 'bench'}})
        return vms

    def write_xml(self, vms):
        xml_dir = os.path.join(self.work, 'xml')
        os.makedirs(xml_dir, exist_ok=True)
        for vm in vms:
            partial = {'memory': 32, 'vcpus': 1, 'domain_type': self.domain_type,
                       'disks': [{'path': vm['disks'][0]['path'], 'format': 'raw'}], 'tags': vm['tags']}
            spec = self._vm_spec.merge(partial, None)
            with open(os.path.join(xml_dir, vm['name'] + '.xml'), 'w') as handle:
                handle.write(self._domxml.render(vm['name'], spec))
        return xml_dir

    def clean(self):
        for dom in self.conn.listAllDomains(0):
            if dom.name().startswith(self.prefix):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()

    def settle(self, timeout=600):
        """Wait until the guests have booted and the host's load is steady (two 3-second windows of
        host CPU use within 5 points of each other, below 90 %), so the next scenario measures the
        tool, not guests still running their BIOS on the same 2 cores. Returns the steady host CPU
        use in percent: halted guests still cost some (about 1 % of a CPU each under nested KVM).
        """
        def busy():
            values = [int(v) for v in open('/proc/stat').readline().split()[1:]]
            return sum(values) - values[3] - values[4], sum(values)

        deadline = time.monotonic() + timeout
        last, previous = busy(), None
        while time.monotonic() < deadline:
            time.sleep(3)
            now = busy()
            percent = 100.0 * (now[0] - last[0]) / max(1, now[1] - last[1])
            if previous is not None and abs(percent - previous) < 5 and percent < 90:
                return round(percent)
            last, previous = now, percent
        raise RuntimeError('the host did not settle within %d s after starting the guests' % timeout)

    def definition_mtimes(self, count):
        return dict((name, os.stat('/etc/libvirt/qemu/%s.xml' % name).st_mtime_ns) for name in self.names(count))

    # -- playbooks ----------------------------------------------------------
    def playbook(self, method, scenario, vms, xml_dir):
        tasks = []
        loop = {'loop': '{{ bench_vms }}', 'loop_control': {'label': '{{ item.name }}'}}
        if method == 'fleet':
            if scenario == 'teardown':
                tasks.append({'virtfleet.virt.fleet': {'vms': '{{ bench_gone }}', 'force': True, 'shutdown_timeout': 0,
                                                       'workers': self.args.workers}})
            else:
                tasks.append({'virtfleet.virt.fleet': {'vms': '{{ bench_vms }}', 'workers': self.args.workers}})
        elif method == 'vm_loop':
            if scenario == 'teardown':
                tasks.append(dict({'virtfleet.virt.vm': {'name': '{{ item.name }}', 'state': 'absent', 'force': True,
                                                         'shutdown_timeout': 0}}, **loop))
            else:
                tasks.append(dict({'virtfleet.virt.vm': {
                    'name': '{{ item.name }}', 'state': 'running', 'memory': 32, 'vcpus': 1,
                    'disks': '{{ item.disks }}', 'tags': '{{ item.tags }}'}}, **loop))
        elif method == 'community':
            if scenario == 'teardown':
                tasks.append(dict({'community.libvirt.virt': {'name': '{{ item.name }}', 'state': 'destroyed'}}, **loop))
                tasks.append(dict({'community.libvirt.virt': {'name': '{{ item.name }}', 'command': 'undefine'}}, **loop))
            else:
                tasks.append(dict({'community.libvirt.virt': {
                    'command': 'define', 'xml': "{{ lookup('file', '%s/' ~ item.name ~ '.xml') }}" % xml_dir}}, **loop))
                tasks.append(dict({'community.libvirt.virt': {'name': '{{ item.name }}', 'state': 'running'}}, **loop))
        play = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]
        path = os.path.join(self.work, '%s-%s.yml' % (method, scenario))
        with open(path, 'w') as handle:
            json.dump(play, handle)
        return path

    def run_once(self, method, scenario, vms, xml_dir):
        if method == 'raw':
            command = [sys.executable, '-c', RAW, scenario, str(len(vms)), xml_dir, self.prefix]
        else:
            extra = os.path.join(self.work, 'vars.json')
            with open(extra, 'w') as handle:
                json.dump({'bench_vms': vms, 'bench_gone': [{'name': vm['name'], 'state': 'absent'} for vm in vms]},
                          handle)
            command = [self.ansible_playbook, '-i', self.inventory, '-e', '@' + extra,
                       self.playbook(method, scenario, vms, xml_dir)]
            if scenario == 'check':
                command.append('--check')
        start = time.monotonic()
        proc = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
        if proc.returncode != 0:
            raise RuntimeError('%s %s failed:\n%s%s' % (method, scenario, proc.stdout[-3000:], proc.stderr[-3000:]))
        changed = re.findall(r'changed=(\d+)', proc.stdout)
        return elapsed, int(changed[-1]) if changed else None

    # -- the run ------------------------------------------------------------
    def run(self):
        """Yield one row per (repetition, size, method); repetitions outermost, so a run cut short
        still covers every size and method."""
        for rep in range(self.args.reps):
            for count in self.args.sizes:
                vms = self.specs(count)
                xml_dir = self.write_xml(vms)
                for method in self.args.methods:
                    self.clean()
                    row = {'n': count, 'method': method, 'rep': rep}
                    for scenario in SCENARIOS:
                        if scenario == 'check':
                            before = self.definition_mtimes(count)
                        elapsed, changed = self.run_once(method, scenario, vms, xml_dir)
                        row[scenario] = round(elapsed, 3)
                        row[scenario + '_changed'] = changed
                        if scenario == 'converge':
                            running = sum(1 for name in self.names(count) if self.conn.lookupByName(name).isActive())
                            assert running == count, '%s: only %d of %d running' % (method, running, count)
                            start = time.monotonic()
                            row['idle_host_cpu_percent'] = self.settle()
                            row['settle'] = round(time.monotonic() - start, 1)
                        if scenario == 'check':
                            row['check_rewrote_definitions'] = before != self.definition_mtimes(count)
                    left = [d.name() for d in self.conn.listAllDomains(0) if d.name().startswith(self.prefix)]
                    assert not left, '%s teardown left %s' % (method, left)
                    timings = ' '.join('%s=%.2fs' % (s, row[s]) for s in SCENARIOS)
                    log('n=%d rep=%d %s: %s (settled in %.0f s, host CPU %d %% with the guests idle)'
                        % (count, rep, method, timings, row['settle'], row['idle_host_cpu_percent']))
                    yield row
        self.clean()


def machine():
    conn = libvirt.open(URI)
    info = conn.getInfo()
    lib = conn.getLibVersion()
    hv = conn.getVersion()
    try:
        conn.getDomainCapabilities(None, None, None, 'kvm', 0)
        accel = 'KVM'
    except libvirt.libvirtError:
        accel = 'TCG (no KVM)'
    return {'cpus': os.cpu_count(), 'cpu_model': platform.processor() or info[0], 'host_memory_mib': info[1],
            'libvirt': '%d.%d.%d' % (lib // 1000000, lib // 1000 % 1000, lib % 1000),
            'qemu': '%d.%d.%d' % (hv // 1000000, hv // 1000 % 1000, hv % 1000), 'accelerator': accel,
            'python': platform.python_version(), 'kernel': platform.release()}


def table(results, methods):
    lines = ['| N | scenario | ' + ' | '.join(methods) + ' | community / fleet | fleet / raw |',
             '|---|---|' + '---|' * len(methods) + '---|---|']
    for count in sorted(set(r['n'] for r in results)):
        for scenario in SCENARIOS:
            med = {}
            for method in methods:
                values = [r[scenario] for r in results if r['n'] == count and r['method'] == method]
                med[method] = statistics.median(values) if values else None
            cells = ['%.2f s' % med[m] if med[m] is not None else '-' for m in methods]
            ratio_c = ('%.1f×' % (med['community'] / med['fleet'])) if med.get('community') and med.get('fleet') else '-'
            ratio_r = ('%.2f' % (med['fleet'] / med['raw'])) if med.get('fleet') and med.get('raw') else '-'
            lines.append('| %d | %s | %s | %s | %s |' % (count, scenario, ' | '.join(cells), ratio_c, ratio_r))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', default='20,50,100', type=lambda s: [int(x) for x in s.split(',')])
    parser.add_argument('--reps', default=3, type=int)
    parser.add_argument('--methods', default='fleet,vm_loop,community,raw', type=lambda s: s.split(','))
    parser.add_argument('--workers', default=8, type=int)
    parser.add_argument('--image', help='guest disk image to copy for every VM (default: a boot sector that halts)')
    parser.add_argument('--collections', help='collections path holding virtfleet.virt')
    parser.add_argument('--out', help='JSON results file')
    parser.add_argument('--table', nargs='+', metavar='RESULTS',
                        help='only print the table of these results files together (runs nothing)')
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
    for row in bench.run():
        results.append(row)
        report = {'machine': machine(), 'args': {'sizes': args.sizes, 'reps': args.reps, 'workers': args.workers},
                  'results': results, 'table': table(results, args.methods)}
        with open(args.out, 'w') as handle:  # after every row: an interrupted run keeps what it measured
            json.dump(report, handle, indent=2)
    print(report['table'])
    checks = [(r['method'], r['n'], r['check_changed'], r['check_rewrote_definitions']) for r in results]
    print('\ncheck mode on a converged fleet (method, N, changed, rewrote definitions): %s'
          % sorted(set(checks)))


if __name__ == '__main__':
    main()

"""Snapshots benchmark: snapshot every VM of a fleet of N stopped guests, then delete every snapshot, three ways.

Contenders, interleaved in every repetition (the order rotates), each phase timed as a whole process
(ansible-playbook or python start-up included):
  fleet             virtfleet.virt.fleet with its `snapshot` option, the VMs listed by name only (nothing
                    else of them converged): one task per phase
  vm_snapshot_loop  one virtfleet.virt.vm_snapshot task with `loop:` over the VMs (the per-VM loop a
                    community.vmware vmware_guest_snapshot user writes): one module process per VM
  raw               a libvirt-python script, one connection, sequential snapshotCreateXML / snapshot.delete
                    (the floor)
Phases of one trial, in order: create (snapshot every VM), noop (the same create again: nothing to do),
delete (delete every snapshot). Internal snapshots in the VMs' qcow2 disks, without memory (the VMs are
stopped: the fastest snapshots, libvirt runs `qemu-img snapshot` per disk).

Set up once, outside the timed part: N (the largest size) stopped VMs named vfbsnap-NNN, 32 MiB, 1 vCPU, one
qcow2 disk holding a boot sector that halts (never started). Before every trial the bench checks that each VM
is defined as set up, shut off, with no libvirt snapshot and no internal snapshot in its qcow2 file; after each
phase it checks the phase's result (every VM has the snapshot, in libvirt and in the qcow2 file; the no-op
re-took none: same creation times; the delete left none); after each trial it removes whatever the trial left
(not timed). Run through bench/run.sh (`bench/run.sh snapshots --sizes 50 --reps 3`); see bench/README.md.
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
URI = 'qemu:///system'
PREFIX = 'vfbsnap-'  # not 'vfb-': bench/fleet.py removes every domain named vfb-*
DISK_DIR = '/var/lib/virtfleet-bench/snapshots'
SNAPSHOT = 'vfbsnap-pre'
METHODS = ('fleet', 'vm_snapshot_loop', 'raw')
PHASES = ('create', 'noop', 'delete')
# The same idle guest as bench/fleet.py (cli; hlt; jmp back), converted to qcow2: the VMs are never started
IDLE_BOOT_SECTOR = b'\xfa\xf4\xeb\xfd'.ljust(510, b'\0') + b'\x55\xaa'

# The floor: one connection, sequential. create and noop are the same idempotent script (look the snapshot up,
# take it when missing) with the XML and flags virtfleet.virt.vm_snapshot uses for a stopped VM.
RAW = r'''
import sys, libvirt
phase, names, snap = sys.argv[1], sys.argv[2].split(','), sys.argv[3]
conn = libvirt.open('qemu:///system')
xml = "<domainsnapshot><name>%s</name><memory snapshot='no'/></domainsnapshot>" % snap
changed = 0
for name in names:
    dom = conn.lookupByName(name)
    try:
        found = dom.snapshotLookupByName(snap, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
            raise
        found = None
    if phase in ('create', 'noop') and found is None:
        dom.snapshotCreateXML(xml, libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC)
        changed += 1
    elif phase == 'delete' and found is not None:
        found.delete(0)
        changed += 1
print('changed=%d' % changed)
'''


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix='virtfleet-bench-snap-')
        self.conn = libvirt.open(URI)
        self.inventory = os.path.join(self.work, 'inventory.ini')
        with open(self.inventory, 'w') as handle:
            handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
        venv_bin = os.path.dirname(sys.executable)
        self.ansible_playbook = os.path.join(venv_bin, 'ansible-playbook')
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=args.collections, ANSIBLE_NOCOLOR='1',
                        ANSIBLE_DEPRECATION_WARNINGS='False', PATH=venv_bin + os.pathsep + os.environ['PATH'])
        self.names = ['%s%03d' % (PREFIX, i) for i in range(max(args.sizes))]
        self.definitions = {}

    # -- set-up, outside the timed part ------------------------------------
    def setup(self):
        """Define the VMs once (stopped, qcow2 disks), their XML rendered by this collection's renderer."""
        sys.path.insert(0, self.args.collections)
        # pylint: disable-next=import-outside-toplevel
        from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
        # pylint: disable-next=import-outside-toplevel
        from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml
        self.remove_vms()  # an interrupted earlier run's
        domain_type = 'kvm'
        try:
            self.conn.getDomainCapabilities(None, None, None, 'kvm', 0)
        except libvirt.libvirtError:
            domain_type = 'qemu'
        os.makedirs(DISK_DIR, exist_ok=True)
        sector = os.path.join(self.work, 'sector.img')
        with open(sector, 'wb') as handle:
            handle.write(IDLE_BOOT_SECTOR)
        for name in self.names:
            disk = self.disk(name)
            subprocess.run(['qemu-img', 'convert', '-q', '-f', 'raw', '-O', 'qcow2', sector, disk], check=True)
            partial = {'memory': 32, 'vcpus': 1, 'domain_type': domain_type,
                       'disks': [{'path': disk, 'format': 'qcow2'}], 'tags': {'fleet': 'bench-snapshots'}}
            self.conn.defineXML(libvirt_domxml.render(name, _vm_spec.merge(partial, None)))
            self.definitions[name] = self.conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)

    @staticmethod
    def disk(name):
        return os.path.join(DISK_DIR, name + '.qcow2')

    def remove_vms(self):
        for dom in self.conn.listAllDomains(0):
            if dom.name().startswith(PREFIX):
                if dom.isActive():
                    dom.destroy()
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        if os.path.isdir(DISK_DIR):
            for entry in os.listdir(DISK_DIR):
                if entry.startswith(PREFIX):
                    os.unlink(os.path.join(DISK_DIR, entry))

    def cleanup(self):
        try:
            self.remove_vms()
            left = [d.name() for d in self.conn.listAllDomains(0) if d.name().startswith(PREFIX)]
            if left:
                log('left behind: %s' % left)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- what the daemon and the disks hold ---------------------------------
    def snapshots(self, names):
        """Per VM: {snapshot name: creation time} as libvirt lists them, and the internal snapshots of its qcow2
        file as qemu-img lists them (-U: read while nothing else has it open, the VMs are stopped)."""
        found = {}
        for name in names:
            dom = self.conn.lookupByName(name)
            listed = dict((s.getName(), re.search(r'<creationTime>(\d+)</creationTime>', s.getXMLDesc(0)).group(1))
                          for s in dom.listAllSnapshots(0))
            info = json.loads(subprocess.run(['qemu-img', 'info', '-U', '--output=json', self.disk(name)], check=True,
                                             capture_output=True, text=True).stdout)
            found[name] = (listed, sorted(s['name'] for s in info.get('snapshots', [])))
        return found

    def check_pristine(self, names):
        """Every VM as set up: the same definition, shut off, no snapshot in libvirt nor in its qcow2 file."""
        wrong = []
        for name, (listed, internal) in self.snapshots(names).items():
            dom = self.conn.lookupByName(name)
            if listed or internal:
                wrong.append('%s has snapshots %s / %s' % (name, sorted(listed), internal))
            if dom.isActive():
                wrong.append('%s is running' % name)
            if dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) != self.definitions[name]:
                wrong.append('%s has a changed definition' % name)
        if wrong:
            raise RuntimeError('a trial did not start from the set-up state: ' + '; '.join(wrong[:10]))

    def remove_snapshots(self, names):
        """Remove whatever snapshots a trial left (after a failed phase; normally none): libvirt's, then any
        internal snapshot still in a VM's qcow2 file without libvirt's metadata."""
        for name in names:
            for snap in self.conn.lookupByName(name).listAllSnapshots(0):
                snap.delete(0)
        for name, (_listed, internal) in self.snapshots(names).items():
            for snap in internal:
                subprocess.run(['qemu-img', 'snapshot', '-d', snap, self.disk(name)], check=True)

    # -- the contenders -----------------------------------------------------
    def command(self, method, phase, names):
        if method == 'raw':
            return [sys.executable, '-c', RAW, phase, ','.join(names), SNAPSHOT]
        state = 'absent' if phase == 'delete' else 'present'
        if method == 'fleet':
            task = {'virtfleet.virt.fleet': {'vms': '{{ bench_items }}', 'workers': self.args.workers,
                                             'snapshot': {'name': SNAPSHOT, 'state': state}}}
        else:
            task = {'virtfleet.virt.vm_snapshot': {'vm': '{{ item }}', 'name': SNAPSHOT, 'state': state},
                    'loop': '{{ bench_names }}'}
        play = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': [task]}]
        path = os.path.join(self.work, '%s-%s-%d.yml' % (method, phase, len(names)))
        with open(path, 'w') as handle:
            json.dump(play, handle)
        extra = os.path.join(self.work, 'vars-%d.json' % len(names))
        with open(extra, 'w') as handle:
            json.dump({'bench_names': names, 'bench_items': [{'name': name} for name in names]}, handle)
        return [self.ansible_playbook, '-i', self.inventory, '-e', '@' + extra, path]

    def timed(self, command):
        load_start = os.getloadavg()[0]
        start = time.monotonic()
        proc = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
        load = [round(load_start, 2), round(os.getloadavg()[0], 2)]
        changed = re.findall(r'changed=(\d+)', proc.stdout)
        return proc, round(elapsed, 3), int(changed[-1]) if changed else None, load

    def verify(self, phase, names, before):
        """What the phase must have left; returns the snapshots now (the no-op compares creation times)."""
        now = self.snapshots(names)
        for name in names:
            listed, internal = now[name]
            if phase == 'delete':
                ok = not listed and not internal
            else:
                ok = sorted(listed) == [SNAPSHOT] and internal == [SNAPSHOT]
            if phase == 'noop':
                ok = ok and listed == before[name][0]
            if not ok:
                raise RuntimeError('after %s, VM %s has snapshots %s in libvirt and %s in its qcow2 file%s'
                                   % (phase, name, listed, internal, ' (before: %s)' % (before[name][0],) if before else ''))
        return now

    def trial(self, method, count, rep):
        names = self.names[:count]
        self.check_pristine(names)
        row = {'n': count, 'method': method, 'rep': rep, 'rc': 0,
               'started_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
        before, current = None, None
        try:
            for phase in PHASES:
                current = phase
                proc, elapsed, changed, load = self.timed(self.command(method, phase, names))
                row[phase], row[phase + '_changed'], row[phase + '_load'] = elapsed, changed, load
                if proc.returncode != 0:
                    row['rc'] = proc.returncode
                    row['failed_phase'] = phase
                    row['output_tail'] = (proc.stdout + proc.stderr)[-4000:]
                    break
                before = self.verify(phase, names, before)
        except RuntimeError as exc:
            row['rc'] = -1
            row['failed_phase'] = current
            row['output_tail'] = str(exc)[-4000:]
        finally:
            self.remove_snapshots(names)  # not timed
        try:
            self.check_pristine(names)
        except RuntimeError as exc:
            row['left_behind'] = str(exc)
        return row

    def ansible_startup(self):
        """An ansible-playbook run with one no-op task, for scale: the start-up every playbook contender pays."""
        path = os.path.join(self.work, 'startup.yml')
        with open(path, 'w') as handle:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': [{'ansible.builtin.meta': 'noop'}]}], handle)
        proc, elapsed, _changed, _load = self.timed([self.ansible_playbook, '-i', self.inventory, path])
        return elapsed if proc.returncode == 0 else None

    def run(self):
        """One row per (repetition, size, method); repetitions outermost, the contenders' order rotating."""
        for rep in range(self.args.first_rep, self.args.first_rep + self.args.reps):
            shift = rep % len(self.args.methods)
            order = self.args.methods[shift:] + self.args.methods[:shift]
            startup = self.ansible_startup()
            for count in self.args.sizes:
                for method in order:
                    row = self.trial(method, count, rep)
                    row['ansible_startup'] = startup
                    log('n=%d rep=%d %s: %s rc=%d (load %s -> %s)%s' % (
                        count, rep, method, ' '.join('%s=%.2fs' % (p, row[p]) for p in PHASES if p in row), row['rc'],
                        row.get('create_load', ['-'])[0], row.get('delete_load', ['-', '-'])[1],
                        '' if row['rc'] == 0 else '\n' + row.get('output_tail', '')))
                    yield row
                    if row.get('left_behind'):
                        raise RuntimeError('removing what the trial left failed: %s' % row['left_behind'])


def machine():
    conn = libvirt.open(URI)
    info = conn.getInfo()
    lib = conn.getLibVersion()
    hv = conn.getVersion()
    qemu_img = subprocess.run(['qemu-img', '--version'], capture_output=True, text=True, check=False).stdout
    ansible = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '--version'],
                             capture_output=True, text=True, check=False).stdout
    return {'cpus': os.cpu_count(), 'cpu_model': platform.processor() or info[0], 'host_memory_mib': info[1],
            'libvirt': '%d.%d.%d' % (lib // 1000000, lib // 1000 % 1000, lib % 1000),
            'qemu': '%d.%d.%d' % (hv // 1000000, hv // 1000 % 1000, hv % 1000),
            'qemu_img': qemu_img.splitlines()[0] if qemu_img else None,
            'ansible': ansible.splitlines()[0] if ansible else None,
            'python': platform.python_version(), 'kernel': platform.release()}


def table(results, methods=METHODS):
    """Medians per size and phase, each contender against the floor (raw), and every trial."""
    ok = [r for r in results if r['rc'] == 0]
    lines = ['| N | phase | ' + ' | '.join(methods) + ' | vm_snapshot_loop / fleet | fleet / raw | trials (per contender) | 1-min load |',
             '|---:|---|' + '---:|' * len(methods) + '---:|---:|---|---|']
    for count in sorted(set(r['n'] for r in results)):
        for phase in PHASES:
            med, trials = {}, []
            for method in methods:
                values = [r[phase] for r in ok if r['n'] == count and r['method'] == method]
                med[method] = statistics.median(values) if values else None
                failed = sum(1 for r in results if r['n'] == count and r['method'] == method and r['rc'] != 0)
                trials.append('%d%s' % (len(values), '+%d failed' % failed if failed else ''))
            loads = [x for r in ok if r['n'] == count for x in r[phase + '_load']]
            cells = ['%.2f s' % med[m] if med[m] is not None else '-' for m in methods]
            loop = ('%.1f×' % (med['vm_snapshot_loop'] / med['fleet'])) if med.get('vm_snapshot_loop') and med.get('fleet') else '-'
            floor = ('%.2f' % (med['fleet'] / med['raw'])) if med.get('fleet') and med.get('raw') else '-'
            lines.append('| %d | %s | %s | %s | %s | %s | %s |' % (
                count, phase, ' | '.join(cells), loop, floor, '/'.join(trials),
                '%.1f-%.1f' % (min(loads), max(loads)) if loads else '-'))
    startups = sorted(set((r['rep'], r['ansible_startup']) for r in results if r.get('ansible_startup')))
    if startups:
        lines += ['', 'ansible-playbook start-up with one no-op task (median of %d): %.2f s'
                  % (len(startups), statistics.median(s for _rep, s in startups))]
    lines += ['', trial_table(results)]
    return '\n'.join(lines)


def trial_table(results):
    lines = ['| rep | N | contender | create | noop | delete | changed (create/noop/delete) | 1-min load start -> end |',
             '|---:|---:|---|---:|---:|---:|---|---|']
    for row in sorted(results, key=lambda r: (r['rep'], r['n'], r['started_at'])):
        lines.append('| %d | %d | %s%s | %s | %s | %s -> %s |' % (
            row['rep'], row['n'], row['method'], '' if row['rc'] == 0 else ' (failed: %s)' % row.get('failed_phase'),
            ' | '.join('%.2f' % row[p] if p in row else '-' for p in PHASES),
            '/'.join('-' if row.get(p + '_changed') is None else str(row[p + '_changed']) for p in PHASES),
            row.get('create_load', ['-'])[0], (row.get('delete_load') or row.get('noop_load') or row.get('create_load') or ['-', '-'])[1]))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', default='50', type=lambda s: [int(x) for x in s.split(',')])
    parser.add_argument('--reps', default=3, type=int)
    parser.add_argument('--first-rep', default=0, type=int,
                        help='number of the first repetition (continues the order rotation of an earlier run)')
    parser.add_argument('--methods', default=','.join(METHODS), type=lambda s: s.split(','))
    parser.add_argument('--workers', default=4, type=int, help="the fleet module's workers (default: its own, 4)")
    parser.add_argument('--collections', help='collections path holding virtfleet.virt')
    parser.add_argument('--out', help='JSON results file')
    parser.add_argument('--table', nargs='+', metavar='RESULTS',
                        help='only print the table of these results files together (runs nothing)')
    args = parser.parse_args()
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        parser.error('unknown methods %s (known: %s)' % (sorted(unknown), ', '.join(METHODS)))
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
    results, report = [], None
    try:
        bench.setup()
        host = machine()
        for row in bench.run():
            results.append(row)
            report = {'machine': host, 'snapshot': SNAPSHOT,
                      'args': {'sizes': args.sizes, 'reps': args.reps, 'first_rep': args.first_rep,
                               'methods': args.methods, 'workers': args.workers},
                      'results': results, 'table': table(results, args.methods)}
            with open(args.out, 'w') as handle:  # after every trial: an interrupted run keeps what it measured
                json.dump(report, handle, indent=2)
    finally:
        bench.cleanup()
    if report:
        print(report['table'])


if __name__ == '__main__':
    main()

"""Scale benchmark: one hypervisor holding 1000 small VMs (issue #18, items 1 and 4).

The guests are bench/fleet.py's (its ``Bench`` makes the disks and the XML: a boot sector that halts, 32 MiB,
1 vCPU); every tenth VM runs, the others are defined and stopped. Figures, each the median of ``--reps``
repetitions, each timed as a whole process (ansible-playbook or python start-up included), each with the
1-minute load average taken just before it (the machine is shared: every figure is one under load):

  floor       ansible-playbook of a play whose one task is ``meta: noop`` (the empty-play floor)
  noop        virtfleet.virt.fleet on the N VMs, all converged (900 ``state: present``, 100 ``state: running``)
  check       the same with --check
  info        virtfleet.virt.vm_info of every VM of the host
  define      virtfleet.virt.fleet defining the N VMs from nothing (``state: present``)
  module      the fleet module alone (no ansible-playbook) on the no-op: wall time and its peak RSS (wait4)
  raw_*       the libvirt-python floors in the same run: no-op (lookup, XMLDesc, state per VM), info
              (listAllDomains, then XMLDesc and state per VM) and define (a sequential defineXML loop)
  community   the community.libvirt.virt loop on the no-op (``command: define`` of each VM's XML, then
              ``state: running`` of the running ones), at the curve's sizes up to ``--community-max``

The cost curve (``--sizes 10,100,1000``): for each size N, the host holds N VMs of this bench (N/10 running)
and the no-op is timed for fleet, community (up to --community-max; extrapolated linearly beyond, and
the plot says so) and raw. The plot is written next to the JSON (``--plot``).
Run through bench/run.sh (``bench/run.sh scale``); see bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet  # noqa: E402  (the guests and the XML: bench/fleet.py's Bench)

PREFIX = 'vfs-'  # not under fleet.py's 'vfb-', so neither bench removes the other's VMs

RAW = r'''
import sys, libvirt
action, names_file, xml_dir = sys.argv[1], sys.argv[2], sys.argv[3]
names = open(names_file).read().split()
conn = libvirt.open('qemu:///system')
count = 0
if action == 'define':        # the sequential define loop
    for name in names:
        conn.defineXML(open('%s/%s.xml' % (xml_dir, name)).read())
        count += 1
elif action == 'noop':        # the lower bound of an honest check, per VM
    for name in names:
        dom = conn.lookupByName(name)
        dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        dom.state()
        count += 1
elif action == 'info':        # every VM of the host: its definition and state
    for dom in conn.listAllDomains(0):
        dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        dom.state()
        count += 1
print('count=%d' % count)
'''

MODULE_ALONE = r'''
import json, resource, subprocess, sys, time
start = time.monotonic()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
out, err = proc.communicate()
elapsed = time.monotonic() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
rss = usage.ru_maxrss  # KiB: the largest child, the module
try:
    changed = json.loads(out)['changed']
except ValueError:
    changed = None
sys.stdout.write('%s %.3f %d %d %.3f\n' % (json.dumps(changed), elapsed, rss, proc.returncode,
                                          usage.ru_utime + usage.ru_stime))
sys.stderr.write(err.decode()[-3000:] + out.decode()[-3000:])
'''


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load():
    return round(os.getloadavg()[0], 2)


def _children_cpu():
    """User + system CPU seconds of the finished children (ansible-playbook, its workers, the module, or the
    raw script): a figure the shared machine's load changes far less than the wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Scale(fleet.Bench):
    prefix = PREFIX

    def __init__(self, args):
        args.image = None
        self.prefix = args.prefix
        super().__init__(args)
        self.xml_dir = None
        self.all_vms = []

    # -- the host's VMs (raw libvirt-python, not timed) ---------------------------------------------------------
    def prepare(self, count):
        """Make the disks and XML of ``count`` VMs (once for the largest size)."""
        self.all_vms = self.specs(count)
        for index, vm in enumerate(self.all_vms):
            vm['state'] = 'running' if index % 10 == 0 else 'present'
        self.xml_dir = self.write_xml(self.all_vms)

    def populate(self, count):
        """The host holds exactly the first ``count`` VMs of this bench, every tenth running."""
        have = dict((dom.name(), dom) for dom in self.conn.listAllDomains(0) if dom.name().startswith(self.prefix))
        wanted = self.all_vms[:count]
        for name, dom in have.items():
            if name not in set(vm['name'] for vm in wanted):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
        for vm in wanted:
            dom = have.get(vm['name'])
            path = os.path.join(self.xml_dir, vm['name'] + '.xml')
            if dom is None:
                with open(path) as handle:
                    dom = self.conn.defineXML(handle.read())
            else:  # defined by an earlier run: its XML file (the community loop's input) takes the VM's UUID
                with open(path) as handle:
                    xml = handle.read()
                with open(path, 'w') as handle:
                    handle.write(re.sub(r'<uuid>[^<]*</uuid>', '<uuid>%s</uuid>' % dom.UUIDString(), xml, count=1))
            if vm['state'] == 'running' and not dom.isActive():
                dom.create()

    def undefine_all(self):
        self.clean()

    # -- runs ---------------------------------------------------------------------------------------------------
    def names_file(self, count):
        path = os.path.join(self.work, 'names-%d.txt' % count)
        with open(path, 'w') as handle:
            handle.write('\n'.join(vm['name'] for vm in self.all_vms[:count]))
        return path

    def play(self, name, tasks):
        path = os.path.join(self.work, name + '.yml')
        with open(path, 'w') as handle:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], handle)
        return path

    def vars_file(self, count, define=False):
        vms = [dict(vm, state='present') if define else vm for vm in self.all_vms[:count]]
        path = os.path.join(self.work, 'vars-%d.json' % count)
        with open(path, 'w') as handle:
            json.dump({'bench_vms': vms, 'bench_running': [vm for vm in vms if vm['state'] == 'running']}, handle)
        return path

    def playbook_command(self, what, count, check=False):
        loop = {'loop': '{{ bench_vms }}', 'loop_control': {'label': '{{ item.name }}'}}
        if what == 'floor':
            tasks = [{'ansible.builtin.meta': 'noop'}]
        elif what == 'info':
            tasks = [{'virtfleet.virt.vm_info': {}, 'register': 'found'},
                     {'ansible.builtin.assert': {'that': ['found.vms | length >= %d' % count]}}]
        elif what == 'community':
            tasks = [dict({'community.libvirt.virt': {
                'command': 'define', 'xml': "{{ lookup('file', '%s/' ~ item.name ~ '.xml') }}" % self.xml_dir}}, **loop),
                dict({'community.libvirt.virt': {'name': '{{ item.name }}', 'state': 'running'}},
                     loop='{{ bench_running }}', loop_control={'label': '{{ item.name }}'})]
        else:  # noop, check, define
            tasks = [{'virtfleet.virt.fleet': {'vms': '{{ bench_vms }}', 'workers': self.args.workers}}]
        command = [self.ansible_playbook, '-i', self.inventory, '-e', '@' + self.vars_file(count, what == 'define'),
                   self.play('%s-%d' % (what, count), tasks)]
        return command + (['--check'] if check else [])

    def timed(self, command):
        before, cpu = load(), _children_cpu()
        start = time.monotonic()
        proc = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
        if proc.returncode != 0:
            raise RuntimeError('%s failed:\n%s%s' % (command[-1], proc.stdout[-3000:], proc.stderr[-3000:]))
        changed = re.findall(r'changed=(\d+)', proc.stdout)
        return {'seconds': round(elapsed, 3), 'load': before, 'changed': int(changed[-1]) if changed else None,
                'cpu_seconds': round(_children_cpu() - cpu, 3)}

    def ansible(self, what, count):
        return self.timed(self.playbook_command(what, count, check=what == 'check'))

    def raw(self, action, count):
        return self.timed([sys.executable, '-c', RAW, action, self.names_file(count), self.xml_dir])

    def module_alone(self, count):
        """The fleet module run directly on the no-op (no ansible-playbook): its wall time and peak RSS."""
        args = os.path.join(self.work, 'module-args-%d.json' % count)
        with open(args, 'w') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': {'vms': self.all_vms[:count], 'workers': self.args.workers}}, handle)
        module = os.path.join(self.args.collections, 'ansible_collections/virtfleet/virt/plugins/modules/fleet.py')
        env = dict(self.env, PYTHONPATH=self.args.collections)
        before = load()
        proc = subprocess.run([sys.executable, '-c', MODULE_ALONE, sys.executable, module, args], env=env,
                              capture_output=True, text=True, check=False)
        changed, elapsed, rss, code, cpu = proc.stdout.split()
        if code != '0' or changed != 'false':
            raise RuntimeError('the module alone failed or changed something:\n%s%s' % (proc.stdout, proc.stderr))
        return {'seconds': float(elapsed), 'load': before, 'peak_rss_mib': round(int(rss) / 1024.0, 1),
                'cpu_seconds': float(cpu)}

    # -- the run ------------------------------------------------------------------------------------------------
    def run(self):
        """Yield one row per figure: first the no-op figures with the host holding each size in turn (largest
        first: shrinking the host is cheap), every figure repeated ``--reps`` times in a row; then define from
        nothing, the raw loop and the fleet module interleaved, ``--define-reps`` times."""
        sizes = sorted(self.args.sizes, reverse=True)
        top = sizes[0]
        self.prepare(top)
        for count in sizes:
            self.populate(count)
            try:
                self.settle(timeout=90)  # the started guests have booted (their BIOS is done)
            except RuntimeError:
                log('the host did not settle within 90 s (shared machine): measuring anyway')
            figures = ['noop', 'floor', 'raw_noop']
            if count == top:
                figures = ['module'] + figures + ['check', 'info', 'raw_info']
            for rep in range(self.args.reps):
                community = count <= self.args.community_max and rep < self.args.community_reps
                for figure in figures + (['community'] if community else []):
                    if figure.startswith('raw_'):
                        row = self.raw(figure[4:], count)
                    elif figure == 'module':
                        row = self.module_alone(count)
                    else:
                        row = self.ansible(figure, count)
                    if figure in ('noop', 'check', 'community'):
                        assert row['changed'] == 0, (figure, count, row)
                    log('n=%d rep=%d %s: %s' % (count, rep, figure, row))
                    yield dict(row, n=count, rep=rep, figure=figure)
        for rep in range(self.args.define_reps):
            self.undefine_all()
            row = dict(self.raw('define', top), n=top, rep=rep, figure='raw_define')
            log('n=%d rep=%d raw_define: %s' % (top, rep, row))
            yield row
            self.undefine_all()
            row = self.ansible('define', top)
            assert row['changed'] == 1, row
            log('n=%d rep=%d define: %s' % (top, rep, row))
            yield dict(row, n=top, rep=rep, figure='define')
        if not self.args.keep:
            self.undefine_all()


def medians(results):
    """{(figure, n): {'seconds': median, 'load': [min, max], ...}}"""
    out = {}
    for key in sorted(set((r['figure'], r['n']) for r in results)):
        rows = [r for r in results if (r['figure'], r['n']) == key]
        entry = {'seconds': statistics.median(r['seconds'] for r in rows), 'reps': len(rows),
                 'load': [min(r['load'] for r in rows), max(r['load'] for r in rows)]}
        cpu = [r['cpu_seconds'] for r in rows if 'cpu_seconds' in r]
        if cpu:
            entry['cpu_seconds'] = statistics.median(cpu)
        if 'peak_rss_mib' in rows[0]:
            entry['peak_rss_mib'] = max(r['peak_rss_mib'] for r in rows)
        out[key] = entry
    return out


def community_at(med, count):
    """The community loop's no-op at ``count``: measured, or extrapolated linearly from its two largest sizes."""
    measured = sorted(n for figure, n in med if figure == 'community')
    if count in measured:
        return med[('community', count)]['seconds'], False
    if len(measured) < 2:
        return None, True
    (n1, n2) = measured[-2:]
    t1, t2 = med[('community', n1)]['seconds'], med[('community', n2)]['seconds']
    return t2 + (t2 - t1) / (n2 - n1) * (count - n2), True


def table(results):
    med = medians(results)
    top = max(r['n'] for r in results)

    def get(figure, n=top):
        return med.get((figure, n))
    lines = ['| figure (N=%d, every 10th running) | reps | median wall | median CPU | 1-min load | target | met |' % top,
             '|---|---:|---:|---:|---:|---|---|']

    def cpu(entry):
        return '%.2f s' % entry['cpu_seconds'] if 'cpu_seconds' in entry else '-'

    def row(label, figure, target=None, limit=None, extra=''):
        entry = get(figure)
        if entry is None:
            return
        met = '-' if limit is None else ('yes' if entry['seconds'] < limit else 'no')
        lines.append('| %s | %d | %.2f s%s | %s | %.1f-%.1f | %s | %s |' % (
            label, entry['reps'], entry['seconds'], extra, cpu(entry), entry['load'][0], entry['load'][1], target or '-', met))
    row('empty play (floor)', 'floor')
    row('fleet no-op', 'noop', '< 3 s', 3)
    row('fleet no-op --check', 'check', '< 3 s', 3)
    row('vm_info, every VM', 'info', '< 2 s', 2)
    row('raw no-op (lookup, XMLDesc, state per VM)', 'raw_noop')
    row('raw info (listAllDomains, XMLDesc, state)', 'raw_info')
    defined = max([r['n'] for r in results if r['figure'] == 'define'] or [top])
    if get('define', defined) and get('raw_define', defined):
        fleet_define, raw_define = get('define', defined), get('raw_define', defined)
        for label, entry, target, met in (
                ('fleet define from nothing, N=%d' % defined, fleet_define, '<= raw define loop',
                 'yes' if fleet_define['seconds'] <= raw_define['seconds'] else 'no'),
                ('raw sequential define loop, N=%d' % defined, raw_define, '-', '-')):
            lines.append('| %s | %d | %.2f s | %s | %.1f-%.1f | %s | %s |' % (
                label, entry['reps'], entry['seconds'], cpu(entry), entry['load'][0], entry['load'][1], target, met))
    module = get('module')
    if module:
        lines.append('| fleet module alone, no-op (peak RSS %.0f MiB) | %d | %.2f s | %s | %.1f-%.1f | RSS < 200 MiB | %s |'
                     % (module['peak_rss_mib'], module['reps'], module['seconds'], cpu(module), module['load'][0],
                        module['load'][1], 'yes' if module['peak_rss_mib'] < 200 else 'no'))
    if get('noop') and get('floor'):
        per_vm = (get('noop')['seconds'] - get('floor')['seconds']) / top * 1000
        noop, floor = get('noop'), get('floor')
        per_cpu = ('%.2f ms' % ((noop['cpu_seconds'] - floor['cpu_seconds']) / top * 1000)
                   if 'cpu_seconds' in noop and 'cpu_seconds' in floor else '-')
        lines.append('| no-op per VM above the floor | | %.2f ms | %s | | <= 1.5 ms | %s |' % (
            per_vm, per_cpu, 'yes' if per_vm <= 1.5 else 'no'))
    lines += ['', '| N | fleet no-op | fleet no-op CPU | community loop no-op | raw no-op | empty play | empty play CPU | '
              '1-min load (fleet) |', '|---:|---:|---:|---:|---:|---:|---:|---:|']
    for count in sorted(set(r['n'] for r in results if r['figure'] == 'noop')):
        community, guessed = community_at(med, count)
        lines.append('| %d | %.2f s | %s | %s | %.2f s | %.2f s | %s | %.1f-%.1f |' % (
            count, get('noop', count)['seconds'], cpu(get('noop', count)),
            '-' if community is None else '%.1f s%s' % (community, ' (extrapolated)' if guessed else ''),
            get('raw_noop', count)['seconds'], get('floor', count)['seconds'], cpu(get('floor', count)), get('noop', count)['load'][0],
            get('noop', count)['load'][1]))
    return '\n'.join(lines)


def plot(results, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    med = medians(results)
    sizes = sorted(set(r['n'] for r in results if r['figure'] == 'noop'))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(sizes, [med[('noop', n)]['seconds'] for n in sizes], 'o-', label='virtfleet.virt.fleet no-op')
    ax.plot(sizes, [med[('floor', n)]['seconds'] for n in sizes], 's:', label='empty play (ansible-playbook floor)')
    ax.plot(sizes, [med[('raw_noop', n)]['seconds'] for n in sizes], '^-', label='raw libvirt-python no-op')
    measured = [n for n in sizes if ('community', n) in med]
    if measured:
        ax.plot(measured, [med[('community', n)]['seconds'] for n in measured], 'x-', label='community.libvirt loop no-op')
        rest = [n for n in sizes if n >= measured[-1]]
        guesses = [community_at(med, n)[0] for n in rest]
        if len(rest) > 1 and None not in guesses:
            ax.plot(rest, guesses, 'x--', color=ax.lines[-1].get_color(), label='community.libvirt loop (extrapolated)')
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('VMs on the hypervisor (every 10th running)')
    ax.set_ylabel('seconds, whole process (median)')
    loads = [r['load'] for r in results]
    ax.set_title('No-op cost curve, one hypervisor (1-min load %.1f-%.1f)' % (min(loads), max(loads)),
                 fontsize=9)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', default='10,100,1000', type=lambda s: [int(x) for x in s.split(',')])
    parser.add_argument('--reps', default=3, type=int)
    parser.add_argument('--define-reps', default=3, type=int, help='repetitions of define from nothing')
    parser.add_argument('--community-reps', default=3, type=int, help='repetitions of the (slow) community loop')
    parser.add_argument('--community-max', default=100, type=int)
    parser.add_argument('--workers', default=4, type=int)
    parser.add_argument('--prefix', default=PREFIX, help='of the VMs this bench makes (default %(default)s)')
    parser.add_argument('--keep', action='store_true', help='leave the VMs defined at the end (to profile them)')
    parser.add_argument('--collections', help='collections path holding virtfleet.virt')
    parser.add_argument('--out', help='JSON results file')
    parser.add_argument('--plot', help='PNG of the cost curve (default: next to --out)')
    parser.add_argument('--populate', type=int, metavar='N', help='only make the host hold N VMs of this bench (to profile)')
    parser.add_argument('--table', nargs='+', metavar='RESULTS', help='only print the table (and --plot) of these files')
    args = parser.parse_args()
    if args.table:
        results = []
        for path in args.table:
            with open(path) as handle:
                results += json.load(handle)['results']
        print(table(results))
        if args.plot:
            plot(results, args.plot)
        return
    if not args.out or not args.collections:
        parser.error('--out and --collections are needed for a run')
    bench = Scale(args)
    if args.populate is not None:
        bench.prepare(max(args.populate, 1))
        bench.populate(args.populate)
        with open(args.out, 'w') as handle:
            json.dump({'vms': bench.all_vms, 'work': bench.work}, handle)
        return
    results = []
    for row in bench.run():
        results.append(row)
        with open(args.out, 'w') as handle:  # after every row: an interrupted run keeps what it measured
            json.dump({'machine': fleet.machine(), 'args': {'sizes': args.sizes, 'reps': args.reps,
                                                            'workers': args.workers}, 'results': results}, handle, indent=2)
    print(table(results))
    plot(results, args.plot or re.sub(r'\.json$', '', args.out) + '.png')


if __name__ == '__main__':
    main()

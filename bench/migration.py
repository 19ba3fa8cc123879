"""Migration benchmark: drain N small KVM guests from one simulated host to the other, sequentially
(one migration at a time) and in parallel (all at once), with playbooks/drain_host.yml.

The two hosts are tests/env/twohost-up.sh's (two network namespaces, each with its own libvirtd, joined
by a veth link; storage shared). Each guest is the counting boot sector of tests/guest (32 MiB).
Measured per drain: the wall time of the ansible-playbook run, and per guest the migration job's total
time and downtime as libvirt reports them (virtfleet.virt.migrate's ``job``). Guests go hv1 -> hv2 and
back, alternating sequential and parallel, ``--runs`` times each. Prints a Markdown table.

    /tmp/vf/bin/python bench/migration.py --guests 4 --runs 3      # or: bench/run.sh migration
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import libvirt

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ENV = os.path.join(REPO, 'tests', 'env')
SHARED = '/var/lib/virtfleet-test/shared'
GUEST_XML = '''<domain type='kvm'><name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='{disk}'/>
<target dev='vda' bus='virtio'/></disk><interface type='network'><source network='vft-net'/></interface>
<serial type='file'><source path='{log}' append='on'/><target port='0'/></serial>
<video><model type='none'/></video><memballoon model='none'/></devices></domain>'''


def sh(*argv, **kw):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, **kw).stdout


def hosts():
    found = {}
    for line in sh('bash', os.path.join(ENV, 'twohost-up.sh')).strip().splitlines():
        name, uri, tcp_uri = line.split()
        found[name] = {'name': name, 'uri': uri, 'migration_uri': tcp_uri,
                       'marker': '/var/lib/virtfleet-test/twohost/%s/lib/virtfleet-maintenance' % name}
    return found


def drain(args, workdir, hypervisors, host, parallel):
    inventory = os.path.join(workdir, 'inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s/bin/python\n' % args.venv)
        for name in hypervisors:
            handle.write('%s ansible_connection=local ansible_python_interpreter=%s/bin/python\n' % (name, args.venv))
    extra = os.path.join(workdir, 'vars.json')
    with open(extra, 'w') as handle:
        json.dump({'host_maintenance_hypervisors': list(hypervisors.values()),
                   'host_maintenance_migrate_options': {'unsafe': True},
                   'host_maintenance_parallel': parallel}, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=args.collections, ANSIBLE_NOCOLOR='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.default')
    playbook = [os.path.join(args.venv, 'bin', 'ansible-playbook'), '-i', inventory, '-e', '@' + extra,
                os.path.join(REPO, 'playbooks', 'drain_host.yml')]
    # the host that receives must not be in maintenance
    other = [name for name in hypervisors if name != host][0]
    subprocess.run(playbook + ['-e', 'host_maintenance_host=%s host_maintenance_action=undrain' % other],
                   env=env, check=True, capture_output=True)
    started = time.monotonic()
    report_file = os.path.join(workdir, 'report.json')
    proc = subprocess.run(playbook + ['-e', 'host_maintenance_host=%s host_maintenance_report_file=%s'
                                      % (host, report_file)], env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit('drain of %s failed:\n%s' % (host, proc.stdout[-4000:]))
    with open(report_file) as handle:
        report = json.load(handle)
    jobs = [item.get('job') or {} for item in report['moved']]
    return wall, jobs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--venv', default=sys.prefix, help='virtualenv with ansible-playbook (default: this one)')
    parser.add_argument('--guests', type=int, default=4)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--image', help='the guest image (default: tests/env/guest-image.sh builds it)')
    parser.add_argument('--collections', help='collections path (default: tests/env/collection.sh)')
    parser.add_argument('--out', help='also write the measurements to this JSON file')
    parser.add_argument('--keep-env', action='store_true', help='leave the two simulated hosts up')
    args = parser.parse_args()
    args.collections = args.collections or sh('bash', os.path.join(ENV, 'collection.sh')).strip().splitlines()[-1]
    image = args.image or sh('bash', os.path.join(ENV, 'guest-image.sh')).strip().splitlines()[-1]
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    hypervisors = hosts()
    conn = libvirt.open(hypervisors['hv1']['uri'])
    workdir = tempfile.mkdtemp(prefix='vfb-migration-')
    names = ['vfb-mig-%s-%02d' % (uuid.uuid4().hex[:4], i) for i in range(args.guests)]
    rows = {'sequential': [], 'parallel': []}
    try:
        for name in names:
            disk = os.path.join(SHARED, name + '.img')
            shutil.copyfile(image, disk)
            conn.defineXML(GUEST_XML.format(name=name, disk=disk, log=os.path.join(SHARED, name + '.log'))).create()
        time.sleep(10)  # the guests boot (about 7 s here) before the first move
        source = 'hv1'
        for _run in range(args.runs):
            for mode, parallel in (('sequential', 1), ('parallel', args.guests)):
                wall, jobs = drain(args, workdir, hypervisors, source, parallel)
                rows[mode].append((wall, jobs))
                source = 'hv2' if source == 'hv1' else 'hv1'
    finally:
        for host in hypervisors.values():
            try:
                hconn = libvirt.open(host['uri'])
            except libvirt.libvirtError:
                continue
            for name in names:
                try:
                    dom = hconn.lookupByName(name)
                except libvirt.libvirtError:
                    continue
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            hconn.close()
            if os.path.exists(host['marker']):
                os.unlink(host['marker'])
        for name in names:
            for suffix in ('.img', '.log'):
                if os.path.exists(os.path.join(SHARED, name + suffix)):
                    os.unlink(os.path.join(SHARED, name + suffix))
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep_env:
            subprocess.run(['bash', os.path.join(ENV, 'twohost-down.sh')], check=False, capture_output=True)

    if args.out:
        with open(args.out, 'w') as handle:
            measured = dict((mode, [{'wall_s': wall, 'jobs': jobs} for wall, jobs in runs]) for mode, runs in rows.items())
            json.dump({'guests': args.guests, 'runs': measured}, handle, indent=1)
    print('| drain of %d guests (32 MiB each) | runs | wall s (median) | wall s (min-max) | migration ms '
          '(median per guest) | downtime ms (median) | downtime ms (max) |' % args.guests)
    print('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for mode, runs in rows.items():
        walls = [wall for wall, _jobs in runs]
        jobs = [job for _wall, batch in runs for job in batch]
        elapsed = [job['time_elapsed_ms'] for job in jobs if 'time_elapsed_ms' in job]
        downtime = [job['downtime_ms'] for job in jobs if 'downtime_ms' in job]
        print('| %s | %d | %.1f | %.1f-%.1f | %s | %s | %s |' % (
            mode if mode == 'sequential' else 'parallel (%d at once)' % args.guests, len(runs),
            statistics.median(walls), min(walls), max(walls),
            statistics.median(elapsed) if elapsed else '-', statistics.median(downtime) if downtime else '-',
            max(downtime) if downtime else '-'))


if __name__ == '__main__':
    main()

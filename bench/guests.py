"""Guests benchmark: from nothing to 3 real Linux guests that accept an SSH login, three ways.

Contenders, interleaved in every repetition (the order rotates), each timed as a whole process
(ansible-playbook start-up included) from nothing (no overlay, no seed, no domain) until all 3 guests
ran `true` over SSH with the bench's key:
  fleet      one ansible-playbook: virtfleet.virt.volume overlays (loop), one virtfleet.virt.fleet task
             with cloud_init and wait_for_address, then the SSH readiness check
  community  one ansible-playbook: qemu-img overlays and xorriso seed ISOs (command), community.libvirt.virt
             define (XML file per guest) then state=running (loops), the addresses from the network's DHCP
             leases (community.libvirt.virt_net command=facts, retried), then the SSH readiness check
  raw        a libvirt-python script, one connection, sequential: overlay volumes (libvirt storage API),
             xorriso seeds, define + start, poll the leases, then the SSH readiness check (the floor)
The SSH readiness check is the same everywhere: wait until port 22 answers with an OpenSSH banner
(ansible.builtin.wait_for, a socket loop in raw), then `ssh fleet@<address> true` retried each second
until it succeeds, guest after guest.

Set up once, outside the timed part: an isolated libvirt network with DHCP (no forward mode) on a free
/24, a dir storage pool holding a copy of the real guest image of tests/env/linux-guest.sh, an SSH key
pair, the domain XML of the community and raw guests (rendered by this collection's renderer: the same
hardware as the fleet's guests). Between trials everything a contender made is removed (not timed).
Guests: 512 MiB, 1 vCPU, TCG (`domain_type: qemu`; this host's KVM cannot run 64-bit guests).
Run through bench/run.sh (`bench/run.sh guests --reps 3`); see bench/README.md.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import random
import re
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
URI = 'qemu:///system'
PREFIX = 'vfb-g-'
DISK_ROOT = '/var/lib/virtfleet-bench'
IMAGE_GLOB = '/var/cache/virtfleet/linux-guest-*/disk.qcow2'
METHODS = ('fleet', 'community', 'raw')
USER = 'fleet'
COUNT = 3
MEMORY = 512
CAPACITY_GIB = 4
TIMEOUT = 900
SSH_OPTS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
            '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR']

# The floor: one connection, everything in sequence, then the same readiness check as the playbooks.
RAW = r'''
import json, os, socket, subprocess, sys, time, libvirt
cfg = json.load(open(sys.argv[1]))
marks = {}
start = time.monotonic()
conn = libvirt.open(cfg['uri'])
pool = conn.storagePoolLookupByName(cfg['pool'])
net = conn.networkLookupByName(cfg['network'])
for g in cfg['guests']:
    pool.createXML(
        "<volume><name>%s.qcow2</name><capacity unit='GiB'>%d</capacity><target><format type='qcow2'/></target>"
        "<backingStore><path>%s</path><format type='qcow2'/></backingStore></volume>"
        % (g['name'], cfg['capacity_gib'], cfg['base']), 0)
    seed = os.path.join(cfg['seed_dir'], g['name'])
    os.makedirs(seed)
    for fname in ('user-data', 'meta-data'):
        with open(os.path.join(seed, fname), 'w') as handle:
            handle.write(g[fname])
    subprocess.run(['xorriso', '-as', 'mkisofs', '-quiet', '-output', g['seed'], '-volid', 'cidata', '-joliet',
                    '-rock', os.path.join(seed, 'user-data'), os.path.join(seed, 'meta-data')], check=True)
    dom = conn.defineXML(open(g['xml']).read())
    dom.create()
marks['started'] = time.monotonic() - start
addresses = {}
while len(addresses) < len(cfg['guests']):
    macs = dict((g['mac'], g['name']) for g in cfg['guests'])
    for lease in net.DHCPLeases():
        if lease['mac'] in macs:
            addresses[macs[lease['mac']]] = lease['ipaddr']
    if len(addresses) < len(cfg['guests']):
        if time.monotonic() - start > cfg['timeout']:
            sys.exit('no lease for %s' % sorted(set(macs.values()) - set(addresses)))
        time.sleep(1)
marks['leases'] = time.monotonic() - start
for g in cfg['guests']:
    address = addresses[g['name']]
    while True:  # ansible.builtin.wait_for port=22 search_regex=OpenSSH
        try:
            with socket.create_connection((address, 22), timeout=5) as sock:
                sock.settimeout(5)
                if b'OpenSSH' in sock.recv(256):
                    break
        except OSError:
            pass
        if time.monotonic() - start > cfg['timeout']:
            sys.exit('port 22 of %s never answered' % g['name'])
        time.sleep(1)
marks['port22'] = time.monotonic() - start
for g in cfg['guests']:
    while subprocess.run(['ssh', '-i', cfg['key']] + cfg['ssh_opts'] + ['%s@%s' % (cfg['user'], addresses[g['name']]),
                                                                        'true'], check=False).returncode != 0:
        if time.monotonic() - start > cfg['timeout']:
            sys.exit('no ssh login to %s' % g['name'])
        time.sleep(1)
marks['ssh'] = time.monotonic() - start
print('VFB_MARKS ' + json.dumps(dict((k, round(v, 2)) for k, v in marks.items())))
print('VFB_ADDRESSES ' + json.dumps(addresses))
'''


def log(msg):
    print('[guests %s] %s' % (time.strftime('%H:%M:%S'), msg), file=sys.stderr, flush=True)


def free_subnet(conn):
    """A 10.x.y prefix whose /24 no route of this host and no libvirt network uses (as the tests pick one)."""
    routes = subprocess.run(['ip', '-4', 'route'], capture_output=True, text=True, check=True).stdout
    used = set(re.findall(r'\b(10\.\d+\.\d+)\.', routes))
    for net in conn.listAllNetworks(0):
        used.update(re.findall(r"address='(10\.\d+\.\d+)\.", net.XMLDesc(0)))
    for _attempt in range(200):
        prefix = '10.%d.%d' % (random.randint(200, 250), random.randint(0, 255))
        if prefix not in used:
            return prefix
    raise RuntimeError('no free 10.x.y.0/24 for the bench network')


def random_mac():
    return '52:54:00:%02x:%02x:%02x' % (random.randint(0, 255), random.randint(0, 255), random.randint(0, 255))


def task_times(stdout):
    """ansible.posix.profile_tasks' summary: [(task, seconds)] in the order printed (slowest first)."""
    summary = stdout.split('=' * 20)[-1] if '=' * 20 in stdout else stdout
    return [(name.strip(), float(sec)) for name, sec in re.findall(r'^(.+?) -+ (\d+\.\d+)s$', summary, re.M)]


class Bench:
    def __init__(self, args):
        self.args = args
        self.conn = libvirt.open(URI)
        self.id = uuid.uuid4().hex[:6]
        self.name = PREFIX + self.id
        self.work = tempfile.mkdtemp(prefix='virtfleet-bench-guests-')
        self.pool_path = os.path.join(DISK_ROOT, self.name)
        self.base = os.path.join(self.pool_path, 'base.qcow2')
        self.names = ['%s-%d' % (self.name, i) for i in range(1, COUNT + 1)]
        self.key = os.path.join(self.work, 'id_ed25519')
        self.inventory = os.path.join(self.work, 'inventory.ini')
        with open(self.inventory, 'w') as handle:
            handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
        venv_bin = os.path.dirname(sys.executable)
        self.ansible_playbook = os.path.join(venv_bin, 'ansible-playbook')
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=args.collections, ANSIBLE_NOCOLOR='1',
                        ANSIBLE_DEPRECATION_WARNINGS='False', ANSIBLE_CALLBACKS_ENABLED='ansible.posix.profile_tasks',
                        ANSIBLE_HOST_KEY_CHECKING='False', PATH=venv_bin + os.pathsep + os.environ['PATH'])
        sys.path.insert(0, args.collections)
        from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec
        from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml
        self._vm_spec = _vm_spec
        self._domxml = libvirt_domxml
        self.network = self.pool = None

    # -- common setup, not timed --------------------------------------------
    def setup(self):
        image = self.args.image or sorted(glob.glob(IMAGE_GLOB))[-1:]
        if not image:
            raise RuntimeError('no guest image: run tests/env/linux-guest.sh first (or pass --image)')
        image = image if isinstance(image, str) else image[0]
        self.image = image
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', self.name, '-f', self.key], check=True)
        with open(self.key + '.pub') as handle:
            self.pubkey = handle.read().strip()
        self.subnet = free_subnet(self.conn)
        self.network = self.conn.networkDefineXML(
            "<network><name>%s</name><ip address='%s.1' netmask='255.255.255.0'><dhcp>"
            "<range start='%s.100' end='%s.199'/></dhcp></ip></network>" % (self.name, self.subnet, self.subnet, self.subnet))
        self.network.create()
        os.makedirs(self.pool_path)
        shutil.copyfile(image, self.base)
        self.pool = self.conn.storagePoolDefineXML(
            "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>" % (self.name, self.pool_path), 0)
        self.pool.create(0)
        log('set up network %s (%s.0/24, isolated), pool %s with a copy of %s' % (self.name, self.subnet, self.pool_path, image))

    def user_data(self, name):
        # the user-data the bench's fleet playbook gives too (to_nice_yaml of the same dictionary, by hand)
        return ('#cloud-config\nhostname: %s\nusers:\n-   name: %s\n    shell: /bin/bash\n    ssh_authorized_keys:\n'
                '    - %s\n' % (name, USER, self.pubkey))

    def meta_data(self, name):
        return 'instance-id: %s\nlocal-hostname: %s\n' % (name, name)

    def fleet_vms(self):
        return [{'name': name, 'state': 'running', 'domain_type': 'qemu', 'machine': 'pc', 'memory': MEMORY,
                 'vcpus': 1, 'guest_agent': True, 'disks': [{'pool': self.name, 'volume': name + '.qcow2'}],
                 'interfaces': [{'network': self.name}], 'serial': [{'type': 'pty'}], 'tags': {'fleet': self.name},
                 'cloud_init': {'meta_data': {'instance-id': name, 'local-hostname': name},
                                'user_data': self.user_data(name)}}
                for name in self.names]

    def plain_guests(self, trial_dir):
        """The community and raw guests: fresh MACs each trial, XML from this collection's renderer with the
        fleet guests' hardware (overlay, then the seed as a read-only raw virtio disk, as the vm module attaches it)."""
        guests = []
        for name in self.names:
            overlay = os.path.join(self.pool_path, name + '.qcow2')
            seed = os.path.join(self.pool_path, name + '-cidata.iso')
            mac = random_mac()
            partial = {'domain_type': 'qemu', 'machine': 'pc', 'memory': MEMORY, 'vcpus': 1, 'guest_agent': True,
                       'disks': [{'path': overlay, 'format': 'qcow2'},
                                 {'path': seed, 'format': 'raw', 'readonly': True, 'bus': 'virtio'}],
                       'interfaces': [{'network': self.name, 'mac': mac}], 'serial': [{'type': 'pty'}],
                       'tags': {'fleet': self.name}}
            spec = self._vm_spec.merge(self._vm_spec.partial_from_params(dict(partial, name=name)), None)
            xml = os.path.join(trial_dir, name + '.xml')
            with open(xml, 'w') as handle:
                handle.write(self._domxml.render(name, spec))
            guests.append({'name': name, 'mac': mac, 'overlay': overlay, 'seed': seed, 'xml': xml,
                           'user-data': self.user_data(name), 'meta-data': self.meta_data(name)})
        return guests

    # -- the contenders ------------------------------------------------------
    def readiness_tasks(self, addresses):
        """The same check in both playbooks: port 22 answers with an OpenSSH banner, then `ssh ... true`."""
        ssh = ['ssh', '-i', self.key] + SSH_OPTS
        return [
            {'name': 'Wait for SSH on port 22', 'ansible.builtin.wait_for': {
                'host': '{{ item }}', 'port': 22, 'search_regex': 'OpenSSH', 'timeout': TIMEOUT},
             'loop': addresses},
            {'name': 'Log in with the key and run true', 'ansible.builtin.command': {
                'argv': ssh + ['%s@{{ item }}' % USER, 'true']},
             'register': 'login', 'until': 'login.rc == 0', 'retries': TIMEOUT, 'delay': 1, 'changed_when': False,
             'loop': addresses},
        ]

    def fleet_playbook(self, trial_dir):
        tasks = [
            {'name': 'An overlay volume per VM on the base image', 'virtfleet.virt.volume': {
                'pool': self.name, 'name': '{{ item.name }}.qcow2', 'backing_volume': 'base.qcow2',
                'capacity': '%dGiB' % CAPACITY_GIB},
             'loop': '{{ bench_vms }}', 'loop_control': {'label': '{{ item.name }}'}},
            {'name': 'The guests, configured by cloud-init, waited for until each has an address',
             'virtfleet.virt.fleet': {'vms': '{{ bench_vms }}', 'wait_for_address': True,
                                      'wait_for_address_timeout': TIMEOUT},
             'register': 'deployed'},
        ] + self.readiness_tasks("{{ deployed.results | map(attribute='address') | map(attribute='address') | list }}")
        return self.write_play(trial_dir, 'fleet', tasks, {'bench_vms': self.fleet_vms()})

    def community_playbook(self, trial_dir, guests):
        leases = "lease_facts.ansible_facts.ansible_libvirt_networks[bench_network].dhcp_leases"
        tasks = [
            {'name': 'An overlay per VM on the base image', 'ansible.builtin.command': {
                'argv': ['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', self.base, '-F', 'qcow2', '{{ item.overlay }}',
                         '%dG' % CAPACITY_GIB], 'creates': '{{ item.overlay }}'},
             'loop': '{{ bench_guests }}', 'loop_control': {'label': '{{ item.name }}'}},
            {'name': 'A directory per seed', 'ansible.builtin.file': {'path': '%s/{{ item.name }}' % trial_dir,
                                                                      'state': 'directory', 'mode': '0700'},
             'loop': '{{ bench_guests }}', 'loop_control': {'label': '{{ item.name }}'}},
            {'name': 'The seed files', 'ansible.builtin.copy': {
                'dest': '%s/{{ item.0.name }}/{{ item.1 }}' % trial_dir, 'content': '{{ item.0[item.1] }}', 'mode': '0600'},
             'loop': "{{ bench_guests | product(['user-data', 'meta-data']) | list }}",
             'loop_control': {'label': '{{ item.0.name }} {{ item.1 }}'}},
            {'name': 'The seed ISOs', 'ansible.builtin.command': {
                'argv': ['xorriso', '-as', 'mkisofs', '-quiet', '-output', '{{ item.seed }}', '-volid', 'cidata', '-joliet',
                         '-rock', '%s/{{ item.name }}/user-data' % trial_dir, '%s/{{ item.name }}/meta-data' % trial_dir],
                'creates': '{{ item.seed }}'},
             'loop': '{{ bench_guests }}', 'loop_control': {'label': '{{ item.name }}'}},
            {'name': 'Define the guests', 'community.libvirt.virt': {
                'command': 'define', 'xml': "{{ lookup('file', item.xml) }}"},
             'loop': '{{ bench_guests }}', 'loop_control': {'label': '{{ item.name }}'}},
            {'name': 'Start the guests', 'community.libvirt.virt': {'name': '{{ item.name }}', 'state': 'running'},
             'loop': '{{ bench_guests }}', 'loop_control': {'label': '{{ item.name }}'}},
            {'name': 'Wait for a DHCP lease of every guest', 'community.libvirt.virt_net': {
                'command': 'facts', 'name': '{{ bench_network }}'},
             'register': 'lease_facts', 'retries': TIMEOUT, 'delay': 1,
             'until': "(%s | map(attribute='mac') | select('in', bench_guests | map(attribute='mac') | list)"
                      " | list | length) == bench_guests | length" % leases},
            {'name': 'The addresses', 'ansible.builtin.set_fact': {
                'bench_addresses': "{{ %s | selectattr('mac', 'in', bench_guests | map(attribute='mac') | list)"
                                   " | map(attribute='ipaddr') | list }}" % leases}},
        ] + self.readiness_tasks('{{ bench_addresses }}')
        return self.write_play(trial_dir, 'community', tasks, {'bench_guests': guests, 'bench_network': self.name})

    def write_play(self, trial_dir, method, tasks, extra_vars):
        play = [{'name': 'Three guests reachable over SSH (%s)' % method, 'hosts': 'localhost', 'gather_facts': False,
                 'module_defaults': {'group/virtfleet.virt.all': {'uri': URI}}, 'tasks': tasks}]
        path = os.path.join(trial_dir, method + '.yml')
        with open(path, 'w') as handle:
            json.dump(play, handle, indent=1)
        extra = os.path.join(trial_dir, method + '-vars.json')
        with open(extra, 'w') as handle:
            json.dump(extra_vars, handle)
        return [self.ansible_playbook, '-i', self.inventory, '-e', '@' + extra, path]

    def raw_command(self, trial_dir, guests):
        cfg = {'uri': URI, 'pool': self.name, 'network': self.name, 'base': self.base, 'capacity_gib': CAPACITY_GIB,
               'seed_dir': trial_dir, 'guests': guests, 'key': self.key, 'ssh_opts': SSH_OPTS, 'user': USER,
               'timeout': TIMEOUT}
        path = os.path.join(trial_dir, 'raw.json')
        with open(path, 'w') as handle:
            json.dump(cfg, handle)
        return [sys.executable, '-c', RAW, path]

    # -- trials -------------------------------------------------------------
    def teardown(self):
        """Remove every guest, overlay and seed of the bench (the network, pool and base image stay)."""
        for dom in self.conn.listAllDomains(0):
            if dom.name().startswith(self.name + '-'):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
        for path in glob.glob(os.path.join(self.pool_path, self.name + '-*')):
            os.unlink(path)
        self.pool.refresh(0)

    def check_gone(self):
        left = [d.name() for d in self.conn.listAllDomains(0) if d.name().startswith(self.name + '-')]
        left += [os.path.basename(p) for p in glob.glob(os.path.join(self.pool_path, self.name + '-*'))]
        if left:
            raise RuntimeError('a trial did not start from nothing: %s exist' % left)

    def trial(self, method, rep):
        self.check_gone()
        trial_dir = tempfile.mkdtemp(prefix='%s-%d-' % (method, rep), dir=self.work)
        if method == 'fleet':
            command = self.fleet_playbook(trial_dir)
        else:
            guests = self.plain_guests(trial_dir)
            command = (self.community_playbook(trial_dir, guests) if method == 'community'
                       else self.raw_command(trial_dir, guests))
        load_start = os.getloadavg()
        start = time.monotonic()
        proc = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
        load_end = os.getloadavg()
        row = {'method': method, 'rep': rep, 'seconds': round(elapsed, 2), 'rc': proc.returncode,
               'started_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() - elapsed)),
               'loadavg_start': [round(x, 2) for x in load_start], 'loadavg_end': [round(x, 2) for x in load_end]}
        if method == 'raw':
            marks = re.search(r'^VFB_MARKS (.*)$', proc.stdout, re.M)
            row['phases'] = json.loads(marks.group(1)) if marks else None
        else:
            row['tasks'] = task_times(proc.stdout)
            row['recap_and_profile'] = proc.stdout[proc.stdout.rfind('PLAY RECAP'):][-3000:]
        running = [n for n in self.names if self._active(n)]
        row['running'] = len(running)
        if proc.returncode != 0:
            row['output_tail'] = (proc.stdout + proc.stderr)[-4000:]
        return row

    def _active(self, name):
        try:
            return self.conn.lookupByName(name).isActive() == 1
        except libvirt.libvirtError:
            return False

    def run(self):
        """One row per trial; repetitions outermost, the contenders' order rotating each repetition."""
        for rep in range(self.args.first_rep, self.args.first_rep + self.args.reps):
            shift = rep % len(self.args.methods)
            order = self.args.methods[shift:] + self.args.methods[:shift]
            for method in order:
                try:
                    row = self.trial(method, rep)
                finally:
                    self.teardown()
                log('rep %d %s: %.1f s rc=%d (load %s -> %s)%s' % (
                    rep, method, row['seconds'], row['rc'], row['loadavg_start'][0], row['loadavg_end'][0],
                    '' if row['rc'] == 0 else '\n' + row.get('output_tail', '')))
                yield row

    def cleanup(self):
        try:
            self.teardown()
        finally:
            if self.pool is not None:
                self.pool.destroy()
                self.pool.undefine()
            if self.network is not None:
                self.network.destroy()
                self.network.undefine()
            shutil.rmtree(self.pool_path, ignore_errors=True)
            shutil.rmtree(self.work, ignore_errors=True)


def machine():
    conn = libvirt.open(URI)
    info = conn.getInfo()
    lib = conn.getLibVersion()
    hv = conn.getVersion()
    return {'cpus': os.cpu_count(), 'cpu_model': platform.processor() or info[0], 'host_memory_mib': info[1],
            'libvirt': '%d.%d.%d' % (lib // 1000000, lib // 1000 % 1000, lib % 1000),
            'qemu': '%d.%d.%d' % (hv // 1000000, hv // 1000 % 1000, hv % 1000), 'accelerator': 'TCG (domain_type qemu)',
            'python': platform.python_version(), 'kernel': platform.release()}


def table(results, methods=METHODS):
    ok = [r for r in results if r['rc'] == 0]
    med, cells = {}, []
    for method in methods:
        values = sorted(r['seconds'] for r in ok if r['method'] == method)
        failed = sum(1 for r in results if r['method'] == method and r['rc'] != 0)
        med[method] = statistics.median(values) if values else None
        loads = [r['loadavg_start'][0] for r in ok if r['method'] == method] + \
                [r['loadavg_end'][0] for r in ok if r['method'] == method]
        cells.append('| %s | %d%s | %s | %s | %s |' % (
            method, len(values), ' (+%d failed)' % failed if failed else '',
            '%.1f s' % med[method] if values else '-',
            '%.1f-%.1f s' % (values[0], values[-1]) if values else '-',
            '%.1f-%.1f' % (min(loads), max(loads)) if loads else '-'))
    lines = ['| contender | trials | median | min-max | 1-min load (start/end of trials) |', '|---|---:|---:|---:|---:|']
    lines += cells
    if med.get('community') and med.get('fleet'):
        lines.append('')
        lines.append('community / fleet = **%.2f**' % (med['community'] / med['fleet']))
    if med.get('fleet') and med.get('raw'):
        lines.append('fleet / raw = **%.2f** (goal: at most 1.2)' % (med['fleet'] / med['raw']))
    per_rep = []
    for rep in sorted(set(r['rep'] for r in ok)):
        got = dict((r['method'], r['seconds']) for r in ok if r['rep'] == rep)
        ratios = []
        if got.get('community') and got.get('fleet'):
            ratios.append('community / fleet %.2f' % (got['community'] / got['fleet']))
        if got.get('fleet') and got.get('raw'):
            ratios.append('fleet / raw %.2f' % (got['fleet'] / got['raw']))
        if ratios:
            per_rep.append('rep %d: %s' % (rep, ', '.join(ratios)))
    if per_rep:
        lines.append('within each repetition: ' + '; '.join(per_rep))
    lines += ['', trials(results)]
    return '\n'.join(lines)


def readiness(row):
    """Seconds from "every guest has an address" to "every guest ran true over SSH" (port 22, then the login)."""
    if row.get('phases'):
        return row['phases']['ssh'] - row['phases']['leases']
    tasks = dict(row.get('tasks') or [])
    if 'Wait for SSH on port 22' in tasks and 'Log in with the key and run true' in tasks:
        return tasks['Wait for SSH on port 22'] + tasks['Log in with the key and run true']
    return None


def trials(results):
    lines = ['| rep | contender | seconds | until every address | then until SSH login | 1-min load start -> end |',
             '|---:|---|---:|---:|---:|---|']
    for row in sorted(results, key=lambda r: (r['rep'], r['started_at'])):
        ready = readiness(row)
        lines.append('| %d | %s | %.1f%s | %s | %s | %.1f -> %.1f |' % (
            row['rep'], row['method'], row['seconds'], '' if row['rc'] == 0 else ' (failed)',
            '%.1f' % (row['seconds'] - ready) if ready is not None else '-', '%.1f' % ready if ready is not None else '-',
            row['loadavg_start'][0], row['loadavg_end'][0]))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--reps', default=3, type=int)
    parser.add_argument('--first-rep', default=0, type=int,
                        help='number of the first repetition (continues the order rotation of an earlier run)')
    parser.add_argument('--methods', default=','.join(METHODS), type=lambda s: s.split(','))
    parser.add_argument('--image', help='base qcow2 image (default: the newest %s)' % IMAGE_GLOB)
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
    if not shutil.which('xorriso'):
        parser.error('xorriso is needed (apt-get install xorriso; bench/run.sh does it)')
    bench = Bench(args)
    results = []
    report = None
    try:
        bench.setup()
        for row in bench.run():
            results.append(row)
            report = {'machine': machine(), 'image': bench.image, 'count': COUNT, 'memory_mib': MEMORY,
                      'args': {'reps': args.reps, 'first_rep': args.first_rep, 'methods': args.methods}, 'results': results,
                      'table': table(results, args.methods)}
            with open(args.out, 'w') as handle:  # after every trial: an interrupted run keeps what it measured
                json.dump(report, handle, indent=2)
    finally:
        bench.cleanup()
    if report:
        print(report['table'])


if __name__ == '__main__':
    main()

"""Real Linux guests end to end, through Ansible against the real libvirtd: playbooks/cloud_fleet.yml makes a
template VM of the Debian test image (tests/env/linux-guest.sh), clones three guests from it (two linked clones,
one full copy) whose customization cloud-init applies, waits for their addresses, then configures them over SSH;
the tests then look inside the guests over SSH.

The three guests are booted once for this file (TCG: about a minute each on these machines) and shared: guest
1 takes the live changes, guest 2 the ACPI shutdown, guest 3 the agent shutdown and a memory snapshot reverted
through vm_snapshot (file and running process back as they were), so each test sets up what it needs whatever
the order the tests run in. They live on an isolated network the playbook creates (no forward
mode): no packet leaves the machine. Timings are printed (pytest -s), never asserted.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import libvirt
import pytest
from lxml import etree

from conftest import PREFIX, REPO, free_subnet, sha256_file

pytestmark = pytest.mark.linux_guest

PLAYBOOK = os.path.join(REPO, 'playbooks', 'cloud_fleet.yml')
REMOVE = os.path.join(REPO, 'playbooks', 'cloud_fleet_remove.yml')
USER = 'fleet'


def _recap(stdout):
    """host -> {ok, changed, failed, ...} from ansible-playbook's PLAY RECAP."""
    found = {}
    for host, counts in re.findall(r'^(\S+)\s+:\s+(ok=.*)$', stdout, re.M):
        found[host] = dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', counts))
    return found


class CloudFleet:
    """The three guests of one playbooks/cloud_fleet.yml run, and what the test needs to reach them."""

    def __init__(self, conn, ansible, image):
        self.conn = conn
        self.ansible = ansible
        self.tmp = tempfile.mkdtemp(prefix='vft-cf-')
        self.name = '%scf-%s' % (PREFIX, uuid.uuid4().hex[:6])
        self.names = ['%s-%d' % (self.name, i) for i in (1, 2, 3)]
        self.key = os.path.join(self.tmp, 'id_ed25519')
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', self.name, '-f', self.key], check=True)
        self.pool_path = os.path.join('/var/lib/virtfleet-test', self.name)
        self.vars = {
            'cloud_name': self.name, 'cloud_pool_path': self.pool_path, 'cloud_domain_type': 'qemu',
            'cloud_subnet': free_subnet(conn), 'cloud_ssh_key': self.key, 'cloud_console_dir': self.tmp,
            'cloud_base_image': image['disk'], 'cloud_base_checksum': 'sha256:' + sha256_file(image['disk'])}
        self.vars_file = os.path.join(self.tmp, 'vars.json')
        with open(self.vars_file, 'w') as handle:
            json.dump(self.vars, handle)
        self.runs = []
        self.seed_stats = []  # stat_seeds() after the first run and after the re-run
        self.addresses = {}

    def deploy(self):
        start = time.monotonic()
        proc = self.ansible.playbook(PLAYBOOK, '-e', '@' + self.vars_file, check=False)
        self.runs.append({'rc': proc.returncode, 'stdout': proc.stdout + proc.stderr,
                          'recap': _recap(proc.stdout), 'seconds': round(time.monotonic() - start, 1)})
        print('cloud_fleet.yml run %d: rc %d in %.0f s' % (len(self.runs), proc.returncode, self.runs[-1]['seconds']))
        return self.runs[-1]

    def stat_seeds(self):
        """(inode, mtime) of each guest's seed volume file."""
        paths = [os.path.join(self.pool_path, name + '-cidata.iso') for name in self.names]
        return [(os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in paths]

    def address(self, name):
        if name not in self.addresses:
            for lease in self.conn.networkLookupByName(self.name).DHCPLeases():
                if lease['hostname'] == name or lease['mac'] in self.macs(name):
                    self.addresses[name] = lease['ipaddr']
        return self.addresses[name]

    def macs(self, name):
        root = etree.fromstring(self.conn.lookupByName(name).XMLDesc(0))
        return [m.get('address') for m in root.findall('devices/interface/mac')]

    def ssh(self, name, command, timeout=60, check=True):
        proc = subprocess.run(['ssh', '-i', self.key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                               '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR',
                               '%s@%s' % (USER, self.address(name)), command],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError('ssh %s %r failed (%d): %s' % (name, command, proc.returncode, proc.stderr))
        return proc.stdout

    def wait_for(self, name, command, predicate, timeout=180):
        """Run ``command`` in guest ``name`` until ``predicate(output)`` holds; the last output."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.ssh(name, command, check=False)
            if predicate(out) or time.monotonic() > deadline:
                return out
            time.sleep(2)

    def console(self, name):
        with open(os.path.join(self.tmp, name + '.console.log'), errors='replace') as handle:
            return handle.read()

    def vm(self, name, **args):
        return self.ansible.task('vm', dict({'name': name, 'domain_type': 'qemu'}, **args))

    def remove(self):
        proc = self.ansible.playbook(REMOVE, '-e', '@' + self.vars_file, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.pool_path, ignore_errors=True)
        return proc


@pytest.fixture(scope='module')
def cloud_fleet(conn, ansible, linux_guest):
    fleet = CloudFleet(conn, ansible, linux_guest)
    try:
        fleet.deploy()
        if fleet.runs[0]['rc'] == 0:
            fleet.seed_stats.append(fleet.stat_seeds())
            fleet.deploy()  # the re-run, judged by test_cloud_fleet_playbook and test_seed_is_not_rewritten_by_a_rerun
            fleet.seed_stats.append(fleet.stat_seeds())
        yield fleet
    finally:
        proc = fleet.remove()
        left = [d.name() for d in conn.listAllDomains(0) if d.name().startswith(fleet.name)]
        assert proc.returncode == 0 and not left, 'cloud_fleet_remove.yml left %s:\n%s' % (left, proc.stdout[-3000:])


def test_cloud_fleet_playbook(cloud_fleet, conn):
    first = cloud_fleet.runs[0]
    assert first['rc'] == 0, first['stdout'][-6000:]
    assert first['recap']['localhost']['changed'] > 0
    for name in cloud_fleet.names:
        assert first['recap'][name]['failed'] == 0 and first['recap'][name]['changed'] == 1, first['recap']
    # the re-run: changed=0 in both plays
    second = cloud_fleet.runs[1]
    assert second['rc'] == 0, second['stdout'][-6000:]
    assert all(counts['changed'] == 0 for counts in second['recap'].values()), second['recap']
    assert set(second['recap']) == set(['localhost'] + cloud_fleet.names)

    # inside each guest: the identity and the file cloud-init gave it, the file the second play wrote
    for name in cloud_fleet.names:
        assert cloud_fleet.ssh(name, 'hostname').strip() == name
        assert cloud_fleet.ssh(name, 'cat /etc/virtfleet-fleet') == cloud_fleet.name + '\n'
        assert cloud_fleet.ssh(name, 'cat ~/virtfleet-proof') == '%s %s\n' % (name, cloud_fleet.address(name))
        assert cloud_fleet.ssh(name, 'cloud-init status').split() == ['status:', 'done']
        # booted from its own disk like a cloud image: syslinux passed BOOT_IMAGE (no direct kernel boot)
        assert cloud_fleet.ssh(name, 'cat /proc/cmdline').startswith('BOOT_IMAGE=/vmlinuz ')

    # clones of the template: their own UUID (the instance-id cloud-init used) and MAC, the template's volume
    # (the image, imported) as it was imported after every boot of its linked clones
    template = conn.lookupByName(cloud_fleet.name + '-template')
    seen = set([template.UUIDString()] + cloud_fleet.macs(template.name()))
    for index, name in enumerate(cloud_fleet.names):
        dom = conn.lookupByName(name)
        assert cloud_fleet.ssh(name, 'cat /var/lib/cloud/data/instance-id').strip() == 'iid-' + dom.UUIDString()
        assert not seen & set([dom.UUIDString()] + cloud_fleet.macs(name))
        seen.update([dom.UUIDString()] + cloud_fleet.macs(name))
        r = cloud_fleet.ansible.task('vm_info', {'name': name})
        assert r['vms'][0]['cloned_from'] == {'name': template.name(), 'uuid': template.UUIDString(),
                                              'linked': index < 2}, r['vms'][0]
    base = os.path.join(cloud_fleet.pool_path, cloud_fleet.name + '-base.qcow2')
    assert 'sha256:' + sha256_file(base) == cloud_fleet.vars['cloud_base_checksum']


def test_seed_is_not_rewritten_by_a_rerun(cloud_fleet):
    """The fixture's re-run of the playbook (the same vars) left every seed volume file as the first run wrote
    it: not replaced, not rewritten."""
    assert len(cloud_fleet.runs) == 2 and cloud_fleet.runs[1]['rc'] == 0, cloud_fleet.runs[-1]['stdout'][-4000:]
    first, rerun = cloud_fleet.seed_stats
    assert rerun == first


def test_inventory_plugin_finds_the_guests(cloud_fleet, ansible):
    inventory = os.path.join(cloud_fleet.tmp, 'fleet.libvirt.yml')
    with open(inventory, 'w') as handle:
        json.dump({'plugin': 'virtfleet.virt.libvirt', 'states': ['running'], 'tags': {'fleet': cloud_fleet.name},
                   'compose': {'ansible_user': "'%s'" % USER}}, handle)
    proc = subprocess.run([os.path.join(ansible.venv_bin, 'ansible-inventory'), '-i', inventory, '--list'],
                          env=ansible.env, capture_output=True, text=True, check=True)
    hostvars = json.loads(proc.stdout)['_meta']['hostvars']
    # ansible-core 2.19 marks values from an inventory source as untrusted: {"__ansible_unsafe": value}
    hostvars = dict((host, dict((k, v.get('__ansible_unsafe', v) if isinstance(v, dict) else v)
                                for k, v in hvars.items())) for host, hvars in hostvars.items())
    running = [n for n in cloud_fleet.names if conn_active(cloud_fleet.conn, n)]
    assert running and set(running) <= set(hostvars)
    for name in running:
        assert hostvars[name]['ansible_host'] == cloud_fleet.address(name)
        assert hostvars[name]['virtfleet_address_source'] in ('lease', 'agent')
    # and Ansible reaches them through it
    proc = subprocess.run([os.path.join(ansible.venv_bin, 'ansible'), '-i', inventory, ':'.join(running),
                           '-m', 'ansible.builtin.command', '-a', 'hostname', '--private-key', cloud_fleet.key,
                           '-e', 'ansible_python_interpreter=/usr/bin/python3',
                           '--ssh-common-args=-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'],
                          env=ansible.env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in running:
        assert re.search(r'^%s \| CHANGED \| rc=0 >>\n%s$' % (re.escape(name), re.escape(name)), proc.stdout, re.M)


def conn_active(conn, name):
    try:
        return conn.lookupByName(name).isActive() == 1
    except libvirt.libvirtError:
        return False


def _mem_total_mib(out):
    return int(re.search(r'MemTotal:\s+(\d+) kB', out).group(1)) // 1024


def test_live_changes_seen_in_the_guest(cloud_fleet, conn):
    name = cloud_fleet.names[0]
    dom = conn.lookupByName(name)
    # room to change live: max_memory and max_vcpus take a restart (graceful, through ACPI), made by the module
    r = cloud_fleet.vm(name, state='running', max_memory=768, max_vcpus=2, restart_if_required=True,
                       shutdown_timeout=240, wait_for_address=True)
    assert not r.get('failed') and r['reboot_required'] is False, r
    uptime = float(cloud_fleet.wait_for(name, 'cut -d" " -f1 /proc/uptime', lambda out: out.strip() != '',
                                        timeout=240))
    full = _mem_total_mib(cloud_fleet.ssh(name, 'cat /proc/meminfo'))

    # memory down and up inside max_memory, through the balloon: the guest's MemTotal follows
    r = cloud_fleet.vm(name, memory=384)
    assert r['changed'] and r['reboot_required'] is False and r['vm']['pending_restart'] == [], r
    low = _mem_total_mib(cloud_fleet.wait_for(name, 'cat /proc/meminfo',
                                              lambda out: _mem_total_mib(out) < full - 96))
    assert low < full - 96, (full, low)
    r = cloud_fleet.vm(name, memory=768)
    assert r['changed'] and r['reboot_required'] is False, r
    high = _mem_total_mib(cloud_fleet.wait_for(name, 'cat /proc/meminfo', lambda out: _mem_total_mib(out) > low + 256))
    assert high > low + 256, (low, high)
    print('%s MemTotal: %d MiB at 512 max 768, %d MiB at 384, %d MiB at 768' % (name, full, low, high))

    # a vCPU hot-plugged up to max_vcpus is onlined in the guest through its agent: nproc says 2
    assert cloud_fleet.ssh(name, 'nproc').strip() == '1'
    r = cloud_fleet.vm(name, vcpus=2)
    assert r['changed'] and not r.get('warnings'), r
    assert cloud_fleet.wait_for(name, 'nproc', lambda out: out.strip() == '2').strip() == '2'

    # a NIC and a disk hot-added are seen in the guest, and hot-removed again
    volume = name + '-data.raw'
    r = cloud_fleet.ansible.task('volume', {'pool': cloud_fleet.name, 'name': volume, 'capacity': '64MiB'})
    assert r['changed'], r
    nics = cloud_fleet.ssh(name, 'ls /sys/class/net').split()
    disks = [{'pool': cloud_fleet.name, 'volume': name + '-vda.qcow2'}]  # the clone's disk (libvirt_vm_clone)
    interfaces = [{'network': cloud_fleet.name}]
    r = cloud_fleet.vm(name, disks=disks + [{'pool': cloud_fleet.name, 'volume': volume}],
                       interfaces=interfaces + [{'network': cloud_fleet.name, 'model': 'virtio'}])
    assert r['changed'] and r['reboot_required'] is False, r
    added = cloud_fleet.wait_for(name, 'ls /sys/class/net', lambda out: len(out.split()) == len(nics) + 1).split()
    assert len(added) == len(nics) + 1, (nics, added)
    target = [d['target'] for d in r['vm']['spec']['disks'] if d.get('volume') == volume][0]
    size = cloud_fleet.wait_for(name, 'lsblk -bdno SIZE /dev/%s' % target, lambda out: out.strip() != '')
    assert int(size) == 64 * 1024 * 1024
    r = cloud_fleet.vm(name, disks=disks, interfaces=interfaces)
    assert r['changed'] and r['reboot_required'] is False, r
    assert cloud_fleet.wait_for(name, 'ls /sys/class/net', lambda out: len(out.split()) == len(nics)).split() == nics
    assert cloud_fleet.wait_for(name, 'test -e /dev/%s && echo present || echo gone' % target,
                                lambda out: out.strip() == 'gone').strip() == 'gone'
    # the persistent definition agrees with the live one (and the seed stayed attached)
    for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
        root = etree.fromstring(dom.XMLDesc(flags))
        assert len(root.findall('devices/interface')) == 1
        assert sorted(s.get('volume') for s in root.findall('devices/disk/source')) == \
            [name + '-cidata.iso', name + '-vda.qcow2']
    # all of it live: the guest never restarted
    now = float(cloud_fleet.ssh(name, 'cut -d" " -f1 /proc/uptime'))
    assert now > uptime, 'the guest restarted during the live changes'
    r = cloud_fleet.ansible.task('volume', {'pool': cloud_fleet.name, 'name': volume, 'state': 'absent'})
    assert r['changed'], r


@pytest.mark.parametrize('index, mode', [(1, 'acpi'), (2, 'agent')])
def test_graceful_stop(cloud_fleet, conn, index, mode):
    name = cloud_fleet.names[index]
    r = cloud_fleet.vm(name, state='running', wait_for_address=True)
    assert not r.get('failed'), r
    cloud_fleet.wait_for(name, 'systemctl is-system-running', lambda out: out.strip() in ('running', 'degraded'),
                         timeout=300)
    start = time.monotonic()
    r = cloud_fleet.vm(name, state='stopped', force=False, shutdown_mode=mode, shutdown_timeout=300)
    assert r['changed'] and r['actions'] == ['shutdown'] and r['vm']['state'] == 'stopped', r
    print('%s stopped through %s in %.0f s' % (name, mode, time.monotonic() - start))
    assert not conn.lookupByName(name).isActive()
    console = cloud_fleet.console(name)
    assert 'reboot: Power down' in console, console[-3000:]
    assert re.search(r'Reached target .*(Power-Off|System Power Off)', console), console[-3000:]


# the counter the snapshot test starts in the guest: its own PID and a number it increments every second, in a
# tmpfs (/dev/shm: gone on any reboot, so only a memory revert can bring it back)
COUNTER = '/dev/shm/vft-counter'
COUNTER_LOOP = "i=0; while :; do i=$((i+1)); echo \"$$ $i\" > %s.new && mv %s.new %s; sleep 1; done" % ((COUNTER,) * 3)


def _parse_counter(out):
    """(pid, value) from the counter file's content, (None, -1) when it is not readable."""
    fields = out.split()
    return (int(fields[0]), int(fields[1])) if len(fields) == 2 and all(f.isdigit() for f in fields) else (None, -1)


def _counter(fleet, name, until=None):
    """(pid, value) the guest's counter shows now, or once ``until(value)`` holds (three minutes at most)."""
    if until is None:
        return _parse_counter(fleet.ssh(name, 'cat ' + COUNTER))
    return _parse_counter(fleet.wait_for(name, 'cat ' + COUNTER, lambda out: until(_parse_counter(out)[1])))


def test_memory_snapshot_revert_restores_file_and_process(cloud_fleet, conn):
    """Through virtfleet.virt.vm_snapshot on guest 3 (running again if the agent stop ran first): a file written
    before a memory snapshot and changed after it has its old content after the revert, and a process started
    before the snapshot runs again after it (the same PID) with its counter continuing from the snapshot's value."""
    name = cloud_fleet.names[2]
    snap = 'vft-proof-' + uuid.uuid4().hex[:6]
    args = {'vm': name, 'name': snap}
    r = cloud_fleet.vm(name, state='running', wait_for_address=True)
    assert not r.get('failed'), r
    cloud_fleet.wait_for(name, 'systemctl is-system-running', lambda out: out.strip() in ('running', 'degraded'),
                         timeout=300)
    token = uuid.uuid4().hex
    pid = None
    try:
        cloud_fleet.ssh(name, 'echo "before %s" > ~/vft-snapshot-proof && sync' % token)
        pid = int(cloud_fleet.ssh(name, "setsid sh -c '%s' </dev/null >/dev/null 2>&1 & echo $!" % COUNTER_LOOP))
        _counter(cloud_fleet, name, until=lambda value: value >= 3)

        before = _counter(cloud_fleet, name)
        start = time.monotonic()
        r = cloud_fleet.ansible.task('vm_snapshot', dict(args, memory=True))
        took = time.monotonic() - start
        after = _counter(cloud_fleet, name)
        assert r['changed'] and r['snapshot']['memory'] is True and r['snapshot']['vm_state'] == 'running', r
        assert before[0] == after[0] == pid, (pid, before, after)
        print('%s: memory snapshot taken in %.1f s (task), counter %d before it, %d after'
              % (name, took, before[1], after[1]))
        r = cloud_fleet.ansible.task('vm_snapshot', dict(args, memory=True))
        assert not r['changed'] and not r.get('failed'), r

        # after the snapshot: the file changes and the counter runs on, well past the snapshot's value
        cloud_fleet.ssh(name, 'echo "after %s" > ~/vft-snapshot-proof && sync' % token)
        later = _counter(cloud_fleet, name, until=lambda value: value >= after[1] + 15)
        assert later[0] == pid and later[1] >= after[1] + 15, (after, later)

        start = time.monotonic()
        r = cloud_fleet.ansible.task('vm_snapshot', dict(args, state='reverted'))
        took = time.monotonic() - start
        assert r['changed'] and r['vm']['state'] == 'running' and r['vm']['spec']['current'] == snap, r
        back = _counter(cloud_fleet, name)
        content = cloud_fleet.ssh(name, 'cat ~/vft-snapshot-proof')
        print('%s: reverted in %.1f s (task); counter %d at the revert, read %d after it; file %r'
              % (name, took, later[1], back[1], content))
        # the file as it was at the snapshot; the process is the same one, its counter back near the snapshot's
        # value (it ran on for the seconds between the revert and the read), not the later one
        assert content == 'before %s\n' % token
        assert back[0] == pid, (pid, back)
        assert before[1] <= back[1] < later[1], (before, after, later, back)
        grown = _counter(cloud_fleet, name, until=lambda value: value > back[1])
        assert grown[0] == pid and grown[1] > back[1], (back, grown)

        r = cloud_fleet.ansible.task('vm_snapshot', dict(args, state='absent'))
        assert r['changed'] and r['vm']['spec']['snapshots'] == [], r
        r = cloud_fleet.ansible.task('vm_snapshot', dict(args, state='absent'))
        assert not r['changed'] and not r.get('failed'), r
        assert conn.lookupByName(name).snapshotNum(0) == 0
    finally:
        if pid:
            cloud_fleet.ssh(name, 'kill %d; rm -f %s ~/vft-snapshot-proof' % (pid, COUNTER), check=False)
        dom = conn.lookupByName(name)
        if snap in dom.snapshotListNames(0):
            dom.snapshotLookupByName(snap).delete(0)

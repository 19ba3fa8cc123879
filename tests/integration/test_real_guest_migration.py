"""Live migration of the real Linux test guest (tests/env/linux-guest.sh) between the two simulated hosts of
tests/env/twohost-up.sh, while the guest writes a file in a loop.

The guest's disk is a qcow2 overlay in hv1's PRIVATE image directory (/var/lib/libvirt/images is a private bind
mount in each host), on top of the cached Debian image, which lives outside the private directories and so is
the same file at the same path on both hosts. A live migration therefore needs virtfleet.virt.migrate's
copy_storage. libvirt cannot create the top image of a backing chain on the destination (copy_storage=incremental)
and would flatten the chain into a new image with copy_storage=all; the module's pre-check says so and asks for
the top image on the destination first, so the test creates the overlay on hv2 over the same backing file (as
test_migrate.py's incremental case does) and migrates with copy_storage=incremental: only the top is copied.
The guest's cloud-init seed (the vm module's cloud_init) is a read-only volume of the shared pool: not copied, and
hv2's libvirt knows it only after a refresh of that pool there (the migrate pre-check says so first).

In the guest, a systemd service (written by cloud-init from the vm module's cloud_init user_data) appends the
lines 00000001, 00000002, ... to a file and fsyncs after each, five times a second. The test talks to the guest
through its QEMU guest agent (guest-exec on the host's libvirt connection): the boot_id, uptime and the writer's
PID before and after the migration prove the guest kept running (no reboot, same process), and after the
migration the writer is stopped, the page cache dropped, and the sha256 the guest reads from the migrated disk
must be that of the lines 1..N it must have written. TCG (domain_type qemu): /dev/kvm here runs no 64-bit guest.
Timings (boot to agent, migration, downtime) are printed (pytest -s), never asserted.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
import uuid

import pytest

from conftest import PREFIX, libvirt

libvirt_qemu = pytest.importorskip('libvirt_qemu')

pytestmark = pytest.mark.linux_guest

BOOT_TIMEOUT = 900  # TCG on a loaded 2-core machine: the agent answers after ~60-90 s when the machine is idle
DATA = '/var/lib/vft-writer/data'
SERVICE = 'vft-writer.service'
# The private bind mounts of each simulated host (tests/env/twohost-up.sh): nothing shared may live under them.
PRIVATE = ('/etc/libvirt', '/var/lib/libvirt', '/var/log/libvirt', '/var/cache/libvirt', '/run')

WRITER = '''#!/usr/bin/python3
# Appends the lines 00000001, 00000002, ... to DATA, fsyncing after each; a restart would start again at 1.
import os, sys, time
path = sys.argv[1]
os.makedirs(os.path.dirname(path), exist_ok=True)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
n = 0
while True:
    n += 1
    os.write(fd, b'%08d\\n' % n)
    os.fsync(fd)
    time.sleep(0.2)
'''

UNIT = '''[Unit]
Description=virtfleet test writer
[Service]
ExecStart=/usr/bin/python3 /usr/local/bin/vft-writer %s
Restart=no
[Install]
WantedBy=multi-user.target
''' % DATA


def expected_content(count):
    return ''.join('%08d\n' % n for n in range(1, count + 1))


class Agent:
    """Commands in the guest through the QEMU guest agent, on one host's libvirt connection."""

    def __init__(self, host, name):
        self.host = host
        self.name = name

    def _call(self, command, arguments=None, timeout=30):
        payload = {'execute': command}
        if arguments is not None:
            payload['arguments'] = arguments
        dom = self.host.conn.lookupByName(self.name)
        return json.loads(libvirt_qemu.qemuAgentCommand(dom, json.dumps(payload), timeout, 0))['return']

    def ping(self):
        try:
            self._call('guest-ping', timeout=5)
            return True
        except libvirt.libvirtError:
            return False

    def run(self, script, timeout=120):
        """Run ``script`` with /bin/sh in the guest; return (exit code, stdout, stderr)."""
        pid = self._call('guest-exec', {'path': '/bin/sh', 'arg': ['-c', script], 'capture-output': True})['pid']
        deadline = time.monotonic() + timeout
        while True:
            status = self._call('guest-exec-status', {'pid': pid})
            if status.get('exited'):
                out = base64.b64decode(status.get('out-data', '')).decode()
                err = base64.b64decode(status.get('err-data', '')).decode()
                return status.get('exitcode'), out, err
            if time.monotonic() > deadline:
                raise AssertionError('%r did not finish in the guest within %d s' % (script, timeout))
            time.sleep(0.2)

    def out(self, script, timeout=120):
        code, out, err = self.run(script, timeout)
        assert code == 0, '%r failed in the guest (%s): %s%s' % (script, code, out, err)
        return out.strip()

    def facts(self):
        """boot_id, uptime (s), the writer's main PID (0 when it does not run), its file's line count."""
        out = self.out('cat /proc/sys/kernel/random/boot_id; cut -d" " -f1 /proc/uptime; '
                       'systemctl show -p MainPID --value %s; cat %s 2>/dev/null | wc -l' % (SERVICE, DATA))
        boot_id, uptime, pid, lines = out.split()
        return {'boot_id': boot_id, 'uptime': float(uptime), 'pid': int(pid), 'lines': int(lines)}

    def wait(self, predicate, what, timeout=BOOT_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.facts()
            except (libvirt.libvirtError, AssertionError, ValueError) as exc:
                last = exc
            else:
                if predicate(last):
                    return last
            time.sleep(1)
        raise AssertionError('timed out after %d s waiting for %s in the guest (last: %s)' % (timeout, what, last))


def _in_host(host, *command):
    """Run ``command`` in the host's mount namespace (the one its libvirtd and QEMU see)."""
    with open(os.path.join(host.base, 'holder.pid')) as handle:
        holder = handle.read().strip()
    return subprocess.run(['nsenter', '--target', holder, '--mount', '--'] + list(command),
                          capture_output=True, text=True, check=True).stdout.strip()


def _file_id(path):
    st = os.stat(path)
    return '%d:%d' % (st.st_dev, st.st_ino)


def _disk_chain(dom):
    """(source file, backing file) of the VM's vda in its live XML."""
    from xml.etree import ElementTree
    root = ElementTree.fromstring(dom.XMLDesc(0))
    for disk in root.findall('devices/disk'):
        if disk.find('target').get('dev') == 'vda':
            backing = disk.find('backingStore/source')
            return disk.find('source').get('file'), None if backing is None else backing.get('file')
    return None, None


class MigrationRun:
    def __init__(self, ansible, twohost, image):
        self.ansible = ansible
        self.twohost = twohost
        self.image = image
        self.name = '%srgm-%s' % (PREFIX, uuid.uuid4().hex[:6])
        self.disk = '/var/lib/libvirt/images/%s.qcow2' % self.name  # the path inside the hosts
        self.disk_paths = dict((h, os.path.join(twohost[h].images, self.name + '.qcow2')) for h in ('hv1', 'hv2'))
        self.seed = os.path.join(twohost.shared, self.name + '-cidata.iso')
        self.times = {}

    def overlay(self, host):
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', self.image['disk'], '-F', 'qcow2',
                        self.disk_paths[host]], check=True)

    def refresh_pools(self, host):
        """Rescan the host's pools (through storage_pool): files written outside its libvirt become volumes."""
        for pool in ('vft-images', 'vft-shared'):
            r = self.ansible.task('storage_pool', {'uri': self.twohost[host].uri, 'name': pool, 'state': 'active',
                                                   'refresh': True})
            assert not r.get('failed') and r['refreshed'], r

    def vm_args(self, host, **extra):
        args = {'name': self.name, 'uri': self.twohost[host].uri}
        args.update(extra)
        return args

    def user_data(self):
        return '#cloud-config\n' + json.dumps({
            'write_files': [
                {'path': '/usr/local/bin/vft-writer', 'content': WRITER, 'permissions': '0755'},
                {'path': '/etc/systemd/system/' + SERVICE, 'content': UNIT, 'permissions': '0644'}],
            'runcmd': [['systemctl', 'daemon-reload'], ['systemctl', 'start', SERVICE]],
        })

    def cleanup(self):
        for host in self.twohost.hosts.values():
            try:
                dom = host.domain(self.name)
                if dom is not None:
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
            except libvirt.libvirtError:
                pass
        for path in list(self.disk_paths.values()) + [self.seed]:
            try:
                os.unlink(path)
            except OSError:
                pass
        for host in self.twohost.hosts.values():
            for pool in ('vft-images', 'vft-shared'):
                try:
                    host.conn.storagePoolLookupByName(pool).refresh(0)
                except libvirt.libvirtError:
                    pass


@pytest.fixture
def migration_run(ansible, twohost, linux_guest):
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # the agent polls fail until it runs: no noise
    run = MigrationRun(ansible, twohost, linux_guest)
    yield run
    run.cleanup()


def test_live_migration_of_a_writing_guest(migration_run):
    run = migration_run
    hv1, hv2 = run.twohost['hv1'], run.twohost['hv2']
    backing = run.image['disk']

    # the backing file is outside the private directories, and both hosts see the same file at the same path
    assert not any(backing == p or backing.startswith(p + '/') for p in PRIVATE), backing
    for host in (hv1, hv2):
        assert _in_host(host, 'stat', '-L', '-c', '%d:%i', backing) == \
            '%d:%d' % (os.stat(backing).st_dev, os.stat(backing).st_ino), 'another file on %s' % host.name
    # ... while the image directory is private: hv2 does not see hv1's overlay
    run.overlay('hv1')
    run.refresh_pools('hv1')  # the vm module finds a disk's file through the host's pools
    assert _in_host(hv1, 'stat', '-c', '%d:%i', run.disk) == _file_id(run.disk_paths['hv1'])
    assert not os.path.exists(run.disk_paths['hv2'])

    # 1. the guest on hv1, through the vm module; its cloud-init seed in the shared pool (read-only: not copied)
    start = time.monotonic()
    r = run.ansible.task('vm', run.vm_args(
        'hv1', state='running', domain_type='qemu', machine='pc', memory=512, vcpus=1, guest_agent=True,
        disks=[{'path': run.disk, 'format': 'qcow2', 'bus': 'virtio'}], graphics={'type': 'none'},
        cloud_init={'pool': 'vft-shared', 'user_data': run.user_data(),
                    'meta_data': {'instance-id': run.name, 'local-hostname': run.name}}))
    assert r['changed'] and not r.get('failed') and r['vm']['state'] == 'running', r
    agent = Agent(hv1, run.name)
    writing = agent.wait(lambda f: f['pid'] > 0 and f['lines'] > 0, 'the writer to run')
    run.times['boot to writer (agent)'] = time.monotonic() - start
    source_file, source_backing = _disk_chain(hv1.domain(run.name))
    assert (source_file, source_backing) == (run.disk, backing)

    # 2. before: the guest's identity, and the writer is writing
    before = agent.wait(lambda f: f['lines'] >= writing['lines'] + 5, 'the line count to grow', timeout=120)
    assert before['pid'] == writing['pid'] and before['boot_id'] == writing['boot_id']
    print('[migration] before: %s' % before)

    # 3. the live migration hv1 -> hv2 with copy_storage
    args = {'name': run.name, 'uri': hv1.uri, 'destination': hv2.tcp_uri, 'destination_connect_uri': hv2.uri,
            'timeout': 600}
    # libvirt cannot create the top image of a chain, and hv2's libvirt does not know the seed hv1 wrote to the
    # shared pool yet: the pre-checks refuse before anything moves ...
    r = run.ansible.task('migrate', dict(args, copy_storage='incremental'))
    assert r.get('failed') and 'nothing was changed' in r['msg'], r
    assert 'copy_storage=incremental: libvirt cannot create %s' % run.disk in r['msg'], r['msg']
    assert 'volume %s-cidata.iso of storage pool vft-shared (disk vdb) does not exist on the destination' \
        % run.name in r['msg'], r['msg']
    assert hv2.domain(run.name) is None and hv1.domain(run.name).isActive()
    # ... so the top image is created on hv2 over the same backing file, hv2's pools rescanned, and only the
    # top image is copied
    run.overlay('hv2')
    run.refresh_pools('hv2')
    start = time.monotonic()
    r = run.ansible.task('migrate', dict(args, copy_storage='incremental'))
    run.times['migration (task)'] = time.monotonic() - start
    assert not r.get('failed'), r.get('msg', r)
    assert r['changed'] and r['actions'] == ['migrated (live, copy storage: incremental) to %s' % hv2.tcp_uri], r
    assert r['prechecks']['copied_disks'] == [run.disk], r['prechecks']
    job = r['job']
    print('[migration] job statistics: %s' % json.dumps(job, sort_keys=True))
    assert 'downtime_ms' in job and job['downtime_ms'] >= 0, job
    assert job['disk_transferred_bytes'] > 0, job
    run.times['migration (job)'] = job['time_elapsed_ms'] / 1000.0
    run.times['downtime'] = job['downtime_ms'] / 1000.0
    assert r['vm']['hostname'] == 'vft-hv2' and r['vm']['state'] == 'running', r
    assert hv1.domain(run.name) is None and hv1.qemu_pid(run.name) is None, 'the VM left hv1'
    dom = hv2.domain(run.name)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING and hv2.qemu_pid(run.name)
    assert _disk_chain(dom) == (run.disk, backing), 'hv2 runs the overlay over the same backing file'

    # 4. after: the same boot, the same writer process, still writing
    agent = Agent(hv2, run.name)
    after = agent.wait(lambda f: f['lines'] > before['lines'], 'the guest to answer on hv2', timeout=300)
    assert after['boot_id'] == before['boot_id'], 'the guest rebooted: %s -> %s' % (before, after)
    assert after['uptime'] > before['uptime'], 'the uptime went back: %s -> %s' % (before, after)
    assert after['pid'] == before['pid'], 'the writer is another process: %s -> %s' % (before, after)
    later = agent.wait(lambda f: f['lines'] >= after['lines'] + 5, 'the line count to grow on hv2', timeout=120)
    assert later['pid'] == before['pid'] and later['boot_id'] == before['boot_id']
    print('[migration] after: %s, then %s' % (after, later))

    # the file read back from the migrated disk: the writer stopped, the page cache dropped
    agent.out('systemctl stop %s; sync; echo 3 > /proc/sys/vm/drop_caches' % SERVICE)
    assert agent.facts()['pid'] == 0, 'the writer still runs'
    digest = agent.out('sha256sum %s' % DATA).split()[0]
    content = agent.out('cat %s' % DATA) + '\n'
    lines = content.splitlines()
    count = len(lines)
    assert count >= later['lines'], (count, later)
    numbers = [int(line) for line in lines]
    missing = sorted(set(range(1, count + 1)) - set(numbers))
    duplicated = sorted(n for n in set(numbers) if numbers.count(n) > 1)
    assert not missing and not duplicated, 'missing %s, duplicated %s' % (missing[:10], duplicated[:10])
    assert digest == hashlib.sha256(expected_content(count).encode()).hexdigest(), \
        'the file in the guest is not the lines 1..%d the writer wrote' % count
    print('[migration] %d lines written (%d before the migration, %d after), sha256 %s'
          % (count, before['lines'], after['lines'], digest))

    # 5. removed through the vm module on hv2 with its volumes (the overlay there and the seed)
    r = run.ansible.task('vm', run.vm_args('hv2', state='absent', delete_volumes=True))
    assert r['changed'] and not r.get('failed'), r
    assert hv2.domain(run.name) is None and not os.path.exists(run.disk_paths['hv2'])
    assert not os.path.exists(run.seed), r
    # the migration leaves the source's copy of the top image behind: removed through the volume module
    r = run.ansible.task('volume', {'uri': hv1.uri, 'pool': 'vft-images', 'name': run.name + '.qcow2',
                                    'state': 'absent'})
    assert r['changed'] and not r.get('failed') and not os.path.exists(run.disk_paths['hv1']), r
    print('[migration] timings: %s' % ', '.join('%s %.1f s' % item for item in run.times.items()))

"""Injected faults (issue 8): a dying daemon, a killed guest, a full pool, a vCenter that goes away.

- libvirtd is killed (SIGKILL) in the middle of a ``fleet`` converge: the run fails with a clear
  message; once libvirtd is back (the same command line started again), a re-run converges: exactly our
  VMs exist, the ones from before the fault with their UUIDs and definitions, no VM is lost, duplicated
  or left half-defined.
- The QEMU process of a running VM is killed: ``state: running`` starts it again and says so.
- The filesystem of a pool fills up while a volume is created: a clear error, no partial volume.
- The vCenter simulator dies in the middle of a task: a clear error.
- libvirtd is killed (SIGKILL) while it takes a memory snapshot of a running guest: the task fails clearly;
  once libvirtd is back, vm_snapshot_info lists no half snapshot and a re-run takes the snapshot (once), reporting
  the state libvirt left the VM in.
- The filesystem under a VM's qcow2 disk is full during a memory snapshot: a clear error, the VM keeps running,
  the older snapshot is still listed and reverts.
- The vSphere vm task is killed (client side) once the VM exists but before it is powered on: the re-run
  takes up that half-made VM (no second VM, the same instance UUID) and powers it on.

Destination lost during a migration: tests/integration/test_migrate.py.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

from conftest import (ENV, PREFIX, REPO, URI, assert_clean_failure, domain_snapshot, serial_ticks, sha256_file,
                      volume_names, vsphere_vm, wait_ticks)

libvirt = pytest.importorskip('libvirt')
sys.path.insert(0, os.path.join(REPO, 'tests', 'hardening'))

import snapshots  # noqa: E402  pylint: disable=wrong-import-position,import-error

LIBVIRTD_PID = '/run/libvirtd.pid'


def _record(name, outcome):
    """Add a fault's outcome to $VIRTFLEET_HARDENING_OUT/faults.json (read by tests/hardening/report.py)."""
    out = os.environ.get('VIRTFLEET_HARDENING_OUT')
    if not out:
        return
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, 'faults.json')
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        data = {}
    data[name] = dict(outcome, recorded=time.strftime('%Y-%m-%d %H:%M:%S'))
    with open(path, 'w') as handle:
        json.dump(data, handle, indent=1, sort_keys=True)


class Background(threading.Thread):
    """Runs ``func()`` in a thread; ``result()`` returns its value or raises its exception."""

    def __init__(self, func):
        super().__init__(daemon=True)
        self.func = func
        self.value = self.error = None

    def run(self):
        try:
            self.value = self.func()
        except BaseException as exc:  # pylint: disable=broad-except
            self.error = exc

    def result(self, timeout=600):
        self.join(timeout)
        assert not self.is_alive(), 'the task did not end within %s s' % timeout
        if self.error is not None:
            raise self.error
        return self.value


# -- libvirtd killed during a fleet converge -----------------------------------------------------------------------

LIBVIRT_SOCK = '/run/libvirt/libvirt-sock'


def _answers():
    try:
        libvirt.open(URI).close()
        return True
    except libvirt.libvirtError:
        return False


def _read_pid(path):
    """The pid in ``path`` when it names a live libvirtd process, else None."""
    try:
        with open(path) as handle:
            pid = int(handle.read().strip())
        with open('/proc/%d/stat' % pid) as handle:
            stat = handle.read()
    except (OSError, ValueError):
        return None
    comm, state = stat[stat.index('(') + 1:stat.rindex(')')], stat.rsplit(')', 1)[1].split()[0]
    return pid if comm == 'libvirtd' and state != 'Z' else None


def _socket_inodes(path):
    with open('/proc/net/unix') as handle:
        return set(line.split()[6] for line in handle.read().splitlines()[1:]
                   if len(line.split()) >= 8 and line.split()[7] == path)


def _holds_socket(pid, path):
    """Whether process ``pid`` has the unix socket ``path`` open (the daemon that answers on it does)."""
    inodes = _socket_inodes(path)
    try:
        links = set(os.readlink('/proc/%d/fd/%s' % (pid, fd)) for fd in os.listdir('/proc/%d/fd' % pid))
    except OSError:
        return False
    return any('socket:[%s]' % inode in links for inode in inodes)


class OwnLibvirtd:
    """The root libvirtd that tests/env/libvirt-up.sh started, found by its pid file (/run/libvirtd.pid).

    Other libvirtd processes may run on the machine with the very same command line: the simulated hosts of
    tests/env/twohost-up.sh (each in its own mount namespace, where its pid file is /run/libvirtd.pid too; seen
    from here /var/lib/virtfleet-test/twohost/<host>/run/libvirtd.pid). So neither pgrep nor libvirt-up.sh can
    tell ours apart (libvirt-up.sh starts none while any libvirtd runs): this kills exactly the process of the
    pid file, after checking that it is in this mount namespace and holds the socket of qemu:///system, and
    starts exactly its command line again.
    """

    def __init__(self):
        if not os.path.exists(LIBVIRTD_PID):
            pytest.fail('%s is missing: the libvirtd this test kills is the one tests/env/libvirt-up.sh starts with '
                        'that pid file (run tests/env/libvirt-up.sh)' % LIBVIRTD_PID)
        pid = _read_pid(LIBVIRTD_PID)
        if pid is None:
            pytest.fail('%s is stale: it names no running libvirtd (run tests/env/libvirt-up.sh)' % LIBVIRTD_PID)
        if os.readlink('/proc/%d/ns/mnt' % pid) != os.readlink('/proc/self/ns/mnt'):
            pytest.fail('%s names libvirtd %d of another mount namespace, not the root one' % (LIBVIRTD_PID, pid))
        if not _answers() or not _holds_socket(pid, LIBVIRT_SOCK):
            pytest.fail('libvirtd %d (%s) does not serve %s on %s' % (pid, LIBVIRTD_PID, URI, LIBVIRT_SOCK))
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            self.argv = [a.decode() for a in handle.read().split(b'\0')]
        while self.argv and not self.argv[-1]:
            self.argv.pop()
        self.pid = pid

    def kill(self):
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _read_pid(LIBVIRTD_PID) == self.pid and time.monotonic() < deadline:
            time.sleep(0.05)  # gone once it is reaped (its parent is init)
        assert _read_pid(LIBVIRTD_PID) != self.pid, 'libvirtd %d did not die' % self.pid

    def kill_during(self, task, watch):
        """Kill libvirtd while ``task`` (a future) runs; its result and when libvirtd died. ``watch``, the
        connection the test watched through, is closed (its daemon is gone)."""
        self.kill()
        killed_at = time.monotonic()
        result = task.result()
        try:
            watch.close()
        except libvirt.libvirtError:
            pass
        return result, killed_at

    def restart(self, timeout=60):
        """Start the daemon again with its own command line (it daemonizes and writes the pid file again)."""
        if _read_pid(LIBVIRTD_PID) is None:
            # its output to a file, not a pipe: the daemonized child keeps what it inherits open
            with tempfile.TemporaryFile() as output:
                proc = subprocess.run(self.argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                      timeout=60, cwd='/', check=False)
                output.seek(0)
                assert proc.returncode == 0, '%s exited %d: %s' % (' '.join(self.argv), proc.returncode,
                                                                   output.read().decode(errors='replace'))
        deadline = time.monotonic() + timeout
        while True:
            pid = _read_pid(LIBVIRTD_PID)
            if pid is not None and _answers() and _holds_socket(pid, LIBVIRT_SOCK):
                self.pid = pid
                return pid
            if time.monotonic() > deadline:
                raise AssertionError('libvirtd (%s) did not come back within %d s' % (' '.join(self.argv), timeout))
            time.sleep(0.2)


@pytest.fixture
def killable_libvirtd():
    """Our root libvirtd (OwnLibvirtd); afterwards, whatever happened, it runs and answers again.

    It fails, never skips, when the pid file is missing or stale: under tests/run.sh libvirt-up.sh has written it.
    """
    daemon = OwnLibvirtd()
    yield daemon
    daemon.restart()


def _reconnect(timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return libvirt.open(URI)
        except libvirt.libvirtError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _qemu_pid(name):
    try:
        with open('/run/libvirt/qemu/%s.pid' % name) as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return pid if os.path.exists('/proc/%d' % pid) else None


def _ours(conn, names, paths):
    """``{name: (UUID, persistent definition)}`` of every defined domain that is one of ``names``, has a name
    that starts with one of them (a temporary copy) or uses one of ``paths`` (a disk or serial log of ours, so a
    second definition of one of our VMs under another name): what the fleet could have made of our VMs."""
    found = {}
    for dom in conn.listAllDomains(0):
        try:
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            name = dom.name()
            if name.startswith(tuple(names)) or any("'%s'" % p in xml for p in paths):
                found[name] = (dom.UUIDString(), xml)
        except libvirt.libvirtError:  # another test's domain that went away meanwhile
            continue
    return found


def test_libvirtd_killed_during_fleet_converge(ansible, guests, killable_libvirtd):
    vms = [guests.new('lvd') for index in range(6)]
    items = [guests.spec(name, disk, log, state='running') for name, disk, log in vms]
    names = [name for name, _disk, _log in vms]
    paths = [p for _name, disk, log in vms for p in (disk, log)]

    # two VMs exist and run before the fault: they must survive it untouched
    r = ansible.task('fleet', {'vms': items[:2], 'workers': 2})
    assert not r.get('failed') and r['summary']['changed'] == 2, r
    conn = libvirt.open(URI)
    before = _ours(conn, names, paths)
    conn.close()
    assert sorted(before) == sorted(names[:2]), before
    kept = dict((n, _qemu_pid(n)) for n in names[:2])
    daemon = snapshots.daemon_id(LIBVIRTD_PID)
    assert daemon is not None and daemon[0] == killable_libvirtd.pid, (daemon, killable_libvirtd.pid)

    # the whole fleet, one VM at a time; libvirtd dies as soon as the first new VM is defined
    task = Background(lambda: ansible.task('fleet', {'vms': items, 'workers': 1}))
    watch = libvirt.open(URI)
    task.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if names[2] in [d.name() for d in watch.listAllDomains(0)]:
            break
        time.sleep(0.02)
    else:
        raise AssertionError('the fleet run defined no new VM within 120 s')
    r, killed_at = killable_libvirtd.kill_during(task, watch)

    # a clear failure, per item, and no traceback
    assert_clean_failure(r)
    assert r['summary']['failed'] >= 1, r
    failed = [i for i in r['results'] if i['failed']]
    assert all(i['msg'] and 'Traceback' not in i['msg'] for i in failed), failed

    # libvirtd back (the same command line, started again by the fixture): another daemon, as the fuzz
    # harness's restart detection (snapshots.daemon_id) must see it
    killable_libvirtd.restart()
    restarted_in = time.monotonic() - killed_at
    assert snapshots.daemon_id(LIBVIRTD_PID) not in (None, daemon)
    conn = _reconnect()
    try:
        # nothing lost, nothing duplicated, nothing half-defined: of ours, only our own names, the two from
        # before with the UUID, definition and QEMU process they had
        during = _ours(conn, names, paths)
        assert set(during) <= set(names), sorted(during)
        for name, qemu in kept.items():
            assert during[name] == before[name], name
            assert conn.lookupByName(name).state()[0] == libvirt.VIR_DOMAIN_RUNNING, name
            assert _qemu_pid(name) == qemu, '%s was restarted' % name
        for name, (_uuid, xml) in during.items():
            disk = dict((n, d) for n, d, _l in vms)[name]
            assert "<memory unit='KiB'>32768</memory>" in xml and disk in xml, (name, xml)
        defined_during_fault = sorted(n for n in during if n not in kept)
    finally:
        conn.close()

    # the same task again converges the fleet; the two VMs from before are left alone, the ones defined before
    # the kill are taken up (the same UUIDs), not made again
    r = ansible.task('fleet', {'vms': items, 'workers': 2})
    assert not r.get('failed'), r
    by_name = dict((i['name'], i) for i in r['results'])
    assert all(by_name[n]['vm']['state'] == 'running' for n in names), r
    assert not by_name[names[0]]['changed'] and not by_name[names[1]]['changed'], r
    assert not [n for n in defined_during_fault if 'created' in by_name[n]['actions']], r
    conn = libvirt.open(URI)
    try:
        after = _ours(conn, names, paths)
    finally:
        conn.close()
    assert sorted(after) == sorted(names), sorted(after)
    assert all(after[n] == before[n] for n in kept), 'a VM from before the fault was redefined'
    assert all(after[n][0] == during[n][0] for n in defined_during_fault), 'a VM defined before the kill was made again'
    assert all(_qemu_pid(n) == qemu for n, qemu in kept.items())
    r = ansible.task('fleet', {'vms': items, 'workers': 2})
    assert not r.get('failed') and r['summary']['changed'] == 0, r
    wait_ticks(vms[-1][2])
    _record('libvirtd killed during a fleet converge', {
        'fault': 'SIGKILL to libvirtd (the process of /run/libvirtd.pid) once the first of 4 new VMs was defined '
                 '(6-VM fleet, workers 1)',
        'outcome': 'run failed clearly (%d of 6 items failed); libvirtd started again with its own command line, '
                   'answering in %.1f s; the 2 running VMs kept UUID, definition and QEMU process; VMs defined before '
                   'the kill: %s, all complete; a re-run converged all 6 (no other domain of ours, the VMs defined '
                   'before the kill with their UUIDs), the next one changed nothing'
                   % (len(failed), restarted_in, ', '.join(defined_during_fault) or 'none')})


# -- the QEMU process of a running VM killed --------------------------------------------------------------------------

def test_qemu_killed_state_running_starts_it_again_and_says_so(ansible, conn, guests):
    name, disk, log = guests.new('qkill')
    r = ansible.task('vm', guests.spec(name, disk, log, state='running'))
    assert r['changed'] and r['vm']['state'] == 'running', r
    wait_ticks(log)
    pid = _qemu_pid(name)
    assert pid, 'no QEMU process for %s' % name

    os.kill(pid, signal.SIGKILL)
    dom = conn.lookupByName(name)
    deadline = time.monotonic() + 30
    while dom.state()[0] != libvirt.VIR_DOMAIN_SHUTOFF and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dom.state() == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED], dom.state()
    before = domain_snapshot(conn, name)

    # check mode predicts the start and changes nothing
    r = ansible.task('vm', guests.spec(name, disk, log, state='running'), check=True)
    assert r['changed'] and r['actions'] == ['start'], r
    assert domain_snapshot(conn, name) == before

    r = ansible.task('vm', guests.spec(name, disk, log, state='running'))
    assert r['changed'] and r['actions'] == ['start'] and r['vm']['state'] == 'running', r
    warning = next((w for w in r.get('warnings', []) if 'had crashed' in w and 'started again' in w), None)
    assert warning, r
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING and _qemu_pid(name) not in (None, pid)
    deadline = time.monotonic() + 30
    while not serial_ticks(log) and time.monotonic() < deadline:  # the log starts over with the new process
        time.sleep(0.2)
    wait_ticks(log)
    r = ansible.task('vm', guests.spec(name, disk, log, state='running'))
    assert not r['changed'] and not r.get('warnings'), r
    _record('QEMU process of a running VM killed', {
        'fault': 'SIGKILL to the QEMU process of a running VM (libvirt: shut off, reason crashed)',
        'outcome': 'state: running started it again: changed, actions [start], warning "%s"; the guest ran again '
                   '(serial output); the next run changed nothing' % warning})


# -- libvirtd killed during a snapshot create -------------------------------------------------------------------------

def _qcow2_guest(guests, stem):
    """A counter guest whose disk is qcow2 (converted in place: guests.cleanup removes it)."""
    name, disk, log = guests.new(stem)
    subprocess.run(['qemu-img', 'convert', '-O', 'qcow2', disk, disk + '.tmp'], check=True)
    os.replace(disk + '.tmp', disk)
    return name, disk, log


def _qcow2_snapshots(disk):
    """The internal snapshots inside a qcow2 file, as QEMU sees them (``-U``: the VM may hold the file)."""
    out = subprocess.run(['qemu-img', 'snapshot', '-U', '-l', disk], capture_output=True, text=True, check=True).stdout
    return [line.split()[1] for line in out.splitlines()[2:] if len(line.split()) > 1]


def _snapshot_names(conn, name):
    return sorted(s.getName() for s in conn.lookupByName(name).listAllSnapshots(0))


def test_libvirtd_killed_during_snapshot_create(ansible, guests, killable_libvirtd):
    name, disk, log = _qcow2_guest(guests, 'snapkill')
    r = ansible.task('vm', guests.spec(name, disk, log, state='running', memory=256,
                                       disks=[{'path': disk, 'format': 'qcow2'}]))
    assert not r.get('failed'), r
    wait_ticks(log, 3)
    qemu = _qemu_pid(name)

    # a memory snapshot: libvirt pauses the guest, QEMU writes its RAM into the qcow2 file, libvirt writes the
    # snapshot's metadata and resumes the guest; libvirtd dies as soon as the guest is paused for it
    task = Background(lambda: ansible.task('vm_snapshot', {'vm': name, 'name': 'during', 'memory': True}))
    watch = libvirt.open(URI)
    dom = watch.lookupByName(name)
    task.start()
    deadline = time.monotonic() + 120
    seen = None
    while time.monotonic() < deadline:
        seen = dom.state()
        if seen[0] == libvirt.VIR_DOMAIN_PAUSED:
            break
        assert task.is_alive(), 'the snapshot task ended before the guest was paused for it: %s' % task.result()
        time.sleep(0.001)
    else:
        raise AssertionError('the guest was never paused for the snapshot within 120 s (state %s)' % seen)
    r, killed_at = killable_libvirtd.kill_during(task, watch)
    assert_clean_failure(r, 'taking a snapshot of VM %s failed' % name)
    failed_msg = r['msg']

    # libvirtd back: what it left behind
    killable_libvirtd.restart()
    restarted_in = time.monotonic() - killed_at
    conn = _reconnect()
    try:
        left_state = conn.lookupByName(name).state()
        left_listed = _snapshot_names(conn, name)
    finally:
        conn.close()
    left_in_qcow2 = _qcow2_snapshots(disk)
    assert _qemu_pid(name) == qemu, 'the QEMU process of %s was restarted' % name
    assert left_state[0] in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED), left_state
    info = ansible.task('vm_snapshot_info', {'vm': name})
    assert not info.get('failed'), info
    # no half snapshot listed: libvirt lists a snapshot only once QEMU is done and libvirt has written its metadata
    assert [s['name'] for s in info['vms'][0]['snapshots']] == left_listed == [], (info, left_listed)
    assert left_in_qcow2 in ([], ['during']), left_in_qcow2

    # the re-run converges: the snapshot exists once (in libvirt and in the qcow2 file), and the result reports the
    # state the VM is in (libvirt leaves it paused when it died while the guest was paused for the snapshot)
    r = ansible.task('vm_snapshot', {'vm': name, 'name': 'during', 'memory': True})
    assert not r.get('failed') and r['changed'], r
    conn = _reconnect()
    try:
        dom = conn.lookupByName(name)
        state = {libvirt.VIR_DOMAIN_RUNNING: 'running', libvirt.VIR_DOMAIN_PAUSED: 'paused'}.get(dom.state()[0])
        assert _snapshot_names(conn, name) == ['during']
    finally:
        conn.close()
    assert r['vm']['state'] == state == r['snapshot']['vm_state'] == {
        libvirt.VIR_DOMAIN_RUNNING: 'running', libvirt.VIR_DOMAIN_PAUSED: 'paused'}[left_state[0]], (r, state)
    assert r['snapshot']['name'] == 'during' and r['vm']['spec']['current'] == 'during', r
    assert _qcow2_snapshots(disk) == ['during'], _qcow2_snapshots(disk)
    # a guest left paused by the interrupted snapshot is said so (libvirt does not resume it)
    paused_by_job = left_state[0] == libvirt.VIR_DOMAIN_PAUSED and left_state[1] in (
        libvirt.VIR_DOMAIN_PAUSED_SAVE, libvirt.VIR_DOMAIN_PAUSED_SNAPSHOT)
    warned = [w for w in r.get('warnings', []) if 'was paused by an interrupted' in w]
    assert bool(warned) == paused_by_job, (left_state, r.get('warnings'))
    _record('libvirtd killed during a snapshot create', {
        'fault': 'SIGKILL to libvirtd while it took a memory snapshot of a running qcow2 guest (256 MiB), as soon as '
                 'the guest was paused for it',
        'outcome': 'the task failed clearly: "%s"; libvirtd back in %.1f s left the guest %s (the same QEMU process), '
                   'listed no snapshot (vm_snapshot_info: none, no half snapshot), the qcow2 file held %s; a re-run '
                   'took the snapshot (changed, reporting the VM %s; it exists once, in libvirt and in the qcow2 '
                   'file)'
                   % (failed_msg.strip()[:200], restarted_in,
                      'running' if left_state[0] == libvirt.VIR_DOMAIN_RUNNING else
                      'paused (libvirt state reason %d%s: it does not resume a guest paused for an interrupted snapshot)'
                      % (left_state[1], ', "save"' if left_state[1] == libvirt.VIR_DOMAIN_PAUSED_SAVE else ''),
                      'internal snapshots %s' % left_in_qcow2 if left_in_qcow2 else 'no internal snapshot', state)})


# -- the filesystem of a VM's qcow2 disk full during a snapshot create ---------------------------------------------

def _fill(directory):
    """Fill the filesystem of ``directory`` to its last byte (root may use the reserved blocks too)."""
    fd = os.open(os.path.join(directory, 'filler'), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 4096, 512):
            try:
                while True:
                    os.write(fd, b'\1' * chunk)
            except OSError:
                pass
        os.fsync(fd)
    finally:
        os.close(fd)


@pytest.fixture
def small_fs():
    """A 24 MiB ext4 filesystem, loop-mounted on a directory of its own; unmounted and removed afterwards, and
    before that every domain whose disk is on it is destroyed and undefined (QEMU holds its files open)."""
    base = tempfile.mkdtemp(prefix=PREFIX + 'smallfs-', dir='/var/lib/virtfleet-test')
    image, mount = os.path.join(base, 'fs.img'), os.path.join(base, 'mnt')
    os.mkdir(mount)
    with open(image, 'wb') as handle:
        handle.truncate(24 * 1024 * 1024)
    subprocess.run(['mkfs.ext4', '-q', '-F', image], check=True, capture_output=True)
    subprocess.run(['mount', '-o', 'loop', image, mount], check=True, capture_output=True)
    try:
        yield mount
    finally:
        conn = _reconnect()
        try:
            for dom in conn.listAllDomains(0):
                try:
                    if "'%s/" % mount in dom.XMLDesc(0):
                        if dom.isActive():
                            dom.destroy()
                        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
                except libvirt.libvirtError:
                    continue
        finally:
            conn.close()
        if subprocess.run(['umount', mount], check=False, capture_output=True).returncode != 0:
            subprocess.run(['umount', '-l', mount], check=False, capture_output=True)
        subprocess.run(['rm', '-rf', base], check=False)


def test_disk_full_during_snapshot_create(ansible, conn, guests, small_fs):
    name, image, log = guests.new('snapfull')
    disk = os.path.join(small_fs, name + '.qcow2')
    subprocess.run(['qemu-img', 'convert', '-O', 'qcow2', image, disk], check=True)
    r = ansible.task('vm', guests.spec(name, disk, log, state='running', disks=[{'path': disk, 'format': 'qcow2'}]))
    assert not r.get('failed'), r
    wait_ticks(log, 3)
    r = ansible.task('vm_snapshot', {'vm': name, 'name': 'older', 'memory': True})
    assert r['changed'] and not r.get('failed'), r
    older_tick = serial_ticks(log)[-1]
    qemu = _qemu_pid(name)

    # the filesystem full: QEMU cannot write the guest's memory into the qcow2 file
    _fill(small_fs)
    r = ansible.task('vm_snapshot', {'vm': name, 'name': 'full', 'memory': True})
    assert_clean_failure(r)
    failed_msg = r['msg']
    # QEMU says "Input/output error" for the ENOSPC; the driver names the likely cause
    assert 'Error while writing VM state' in failed_msg and 'full filesystem under that disk' in failed_msg, failed_msg
    assert disk in failed_msg, failed_msg
    dom = conn.lookupByName(name)
    left_state = dom.state()
    assert left_state[0] == libvirt.VIR_DOMAIN_RUNNING and _qemu_pid(name) == qemu, left_state
    wait_ticks(log, serial_ticks(log)[-1])  # it still counts
    assert _snapshot_names(conn, name) == ['older']
    in_qcow2 = _qcow2_snapshots(disk)
    assert in_qcow2 == ['older'], in_qcow2
    info = ansible.task('vm_snapshot_info', {'vm': name})
    assert [(s['name'], s['memory']) for s in info['vms'][0]['snapshots']] == [('older', True)], info

    # with room again, the older snapshot still reverts: the counter goes back to its value
    os.unlink(os.path.join(small_fs, 'filler'))
    assert serial_ticks(log)[-1] > older_tick + 3, (older_tick, serial_ticks(log)[-1])
    r = ansible.task('vm_snapshot', {'vm': name, 'name': 'older', 'state': 'reverted'})
    assert not r.get('failed') and r['changed'] and r['vm']['state'] == 'running', r
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ticks = serial_ticks(log)
        if ticks and ticks[-1] < older_tick + 3:
            break
        time.sleep(0.2)
    else:
        raise AssertionError('the counter did not go back to %d after the revert' % older_tick)
    _record('filesystem full during a snapshot create', {
        'fault': 'a memory snapshot of a running guest whose qcow2 disk is on a 24 MiB ext4 filesystem filled to '
                 'the last byte (an older memory snapshot taken before)',
        'outcome': 'the task failed clearly: "%s"; the guest kept running (the same QEMU process, still counting), '
                   'libvirt and the qcow2 file list only the older snapshot %s, which still reverts (the counter '
                   'back at its value) once there is room again' % (failed_msg[:200], in_qcow2)})


# -- a pool's filesystem full during a volume create ---------------------------------------------------------------

def _files(path):
    return sorted(f for f in os.listdir(path) if f != 'lost+found')


def _unclaimed_loop(conn, storage, size_mib):
    """A loop device no defined pool names as its source (libvirt refuses a second pool on a device, and a
    pool another test left defined may still name a loop device number that is free again)."""
    claimed = ' '.join(p.XMLDesc(0) for p in conn.listAllStoragePools(0))
    for _attempt in range(8):
        device = storage.loop(size_mib)
        if "'%s'" % device not in claimed:
            return device
    raise AssertionError('every loop device found is the source of a defined pool')


def test_pool_filesystem_full_during_volume_create(ansible, conn, storage, workdir):
    device = _unclaimed_loop(conn, storage, 16)
    pool = storage.name('full')
    path = storage.path(pool)
    r = ansible.task('storage_pool', {'name': pool, 'type': 'fs', 'path': path, 'build': True, 'state': 'active',
                                      'source': {'devices': [device], 'format': 'ext4'}})
    assert not r.get('failed') and os.path.ismount(path), r
    outcomes = []

    # an import larger than the filesystem
    big = os.path.join(workdir, 'big-%s.raw' % uuid.uuid4().hex[:6])
    with open(big, 'wb') as handle:
        handle.write(os.urandom(24 * 1024 * 1024))
    before = (volume_names(conn, pool), _files(path))
    r = ansible.task('volume', {'pool': pool, 'name': 'big.raw', 'import_from': big,
                                'checksum': 'sha256:' + sha256_file(big)})
    assert_clean_failure(r)
    assert 'space' in r['msg'].lower(), r['msg']
    conn.storagePoolLookupByName(pool).refresh(0)
    assert (volume_names(conn, pool), _files(path)) == before
    outcomes.append('import of 24 MiB: %s' % r['msg'][:160])

    # a clone that does not fit: the source fits once, not twice
    half = os.path.join(workdir, 'half-%s.raw' % uuid.uuid4().hex[:6])
    with open(half, 'wb') as handle:
        handle.write(os.urandom(9 * 1024 * 1024))
    r = ansible.task('volume', {'pool': pool, 'name': 'half.raw', 'import_from': half,
                                'checksum': 'sha256:' + sha256_file(half)})
    assert not r.get('failed'), r
    before = (volume_names(conn, pool), _files(path))
    r = ansible.task('volume', {'pool': pool, 'name': 'copy.raw', 'clone_from': 'half.raw'})
    assert_clean_failure(r)
    assert 'space' in r['msg'].lower(), r['msg']
    conn.storagePoolLookupByName(pool).refresh(0)
    assert (volume_names(conn, pool), _files(path)) == before
    outcomes.append('clone of 9 MiB into ~4 MiB free: %s' % r['msg'][:160])

    # a full filesystem: even a new qcow2 image (a few KiB of metadata) does not fit
    _fill(path)
    conn.storagePoolLookupByName(pool).refresh(0)
    before = (volume_names(conn, pool), _files(path))
    r = ansible.task('volume', {'pool': pool, 'name': 'new.qcow2', 'format': 'qcow2', 'capacity': '1GiB'})
    assert_clean_failure(r)
    conn.storagePoolLookupByName(pool).refresh(0)
    assert (volume_names(conn, pool), _files(path)) == before
    outcomes.append('new qcow2 on a full filesystem: %s' % r['msg'][:160])
    _record('pool filesystem full during a volume create', {
        'fault': 'a 16 MiB ext4 fs pool on a loop device: import 24 MiB, clone 9 MiB with ~4 MiB free, new qcow2 '
                 'on a full filesystem',
        'outcome': 'clear errors, no volume and no file left behind: ' + ' | '.join(outcomes)})


# -- the vCenter simulator dies during a task ------------------------------------------------------------------------

class Proxy(threading.Thread):
    """A TCP proxy to the simulator; ``outbound(sent)`` decides, before each piece of data the client sends is
    forwarded (``sent``: bytes so far, that piece included), whether it is (True) or dropped (False)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.target = ('127.0.0.1', port)
        self.sent = 0
        self.server = socket.socket()
        self.server.bind(('127.0.0.1', 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.lock = threading.Lock()

    def outbound(self, sent):  # pylint: disable=unused-argument
        return True

    def run(self):
        while True:
            try:
                client, _addr = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:  # the simulator is gone: so is this connection
                client.close()
                continue
            threading.Thread(target=self.pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self.pipe, args=(upstream, client, False), daemon=True).start()

    def pipe(self, src, dst, outbound):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if outbound:
                    with self.lock:
                        self.sent += len(data)
                        forward = self.outbound(self.sent)
                    if not forward:
                        continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.server.close()


class KillingProxy(Proxy):
    """Past ``kill_after`` bytes sent by the client, kills the simulator (SIGKILL) before it forwards more."""

    def __init__(self, port, pid):
        super().__init__(port)
        self.pid = pid
        self.kill_after = None
        self.killed_at = None

    def outbound(self, sent):
        if self.kill_after is not None and sent > self.kill_after and self.killed_at is None:
            os.kill(self.pid, signal.SIGKILL)
            self.killed_at = sent
        return True


class GateProxy(Proxy):
    """Before it forwards anything the client sends, asks ``closed()`` (which reads the simulator directly, not
    through the proxy); once that is true, it forwards nothing more and sets ``held``. The client's requests
    from then on never reach the simulator: it waits for answers until it is killed."""

    def __init__(self, port, closed):
        super().__init__(port)
        self.closed = closed
        self.held = threading.Event()

    def outbound(self, sent):
        if not self.held.is_set() and self.closed():
            self.held.set()
        return not self.held.is_set()


def _vcsim_up(state_dir):
    env = dict(os.environ, VIRTFLEET_VCSIM_DIR=state_dir, VIRTFLEET_VCSIM_MACHINES='1')
    subprocess.run(['bash', os.path.join(ENV, 'vcsim-up.sh')], env=env, check=True, capture_output=True, timeout=900)
    with open(os.path.join(state_dir, 'env.json')) as handle:
        facts = json.load(handle)
    with open(os.path.join(state_dir, 'password')) as handle:
        facts['password'] = handle.read().strip()
    return facts


@pytest.fixture
def own_vcsim():
    """A simulator of this test's own (the session's one stays untouched); stopped afterwards."""
    pytest.importorskip('pyVmomi')
    state_dir = '/run/virtfleet-test/vcsim-hd-%s' % uuid.uuid4().hex[:6]
    yield state_dir
    env = dict(os.environ, VIRTFLEET_VCSIM_DIR=state_dir)
    subprocess.run(['bash', os.path.join(ENV, 'vcsim-down.sh')], env=env, check=False, capture_output=True)
    subprocess.run(['rm', '-rf', state_dir], check=False)


def _vcsim_args(facts, port, name):
    return {'hostname': '127.0.0.1', 'port': port, 'username': facts['username'], 'password': facts['password'],
            'ca_path': facts['ca_file'], 'name': name, 'cluster': 'DC0_C0', 'datastore': 'LocalDS_0',
            'memory': 64, 'vcpus': 1, 'disks': [{'size': '1GiB'}], 'interfaces': [{'network': 'VM Network'}],
            'state': 'running', 'tags': {'fleet': 'hardening'}}


def test_vcsim_stopped_during_a_task(ansible, own_vcsim):
    """The simulator dies while the task talks to it: a clear failure, no traceback, no password. (govmomi's
    simulator keeps no state: a simulator started again is empty, so a re-run there would be a plain create,
    no recovery. Recovery from a half-made VM: test_vsphere_task_killed_after_the_vm_exists_rerun_takes_it_up.)"""
    facts = _vcsim_up(own_vcsim)
    name = '%shd-vs-%s' % (PREFIX, uuid.uuid4().hex[:6])
    proxy = KillingProxy(int(facts['port']), facts['pid'])
    proxy.start()
    try:
        # calibration: the bytes the same task sends through the proxy (another VM name)
        r = ansible.task('vm', _vcsim_args(facts, proxy.port, name + 'c'))
        assert r['changed'] and r['vm']['state'] == 'running', r
        total = proxy.sent
        # the simulator dies once the task has sent half of that: after login and the inventory read
        proxy.sent, proxy.kill_after = 0, total // 2
        r = ansible.task('vm', _vcsim_args(facts, proxy.port, name))
    finally:
        proxy.close()
    assert proxy.killed_at, 'the simulator was not killed (the task sent %d bytes)' % proxy.sent
    assert_clean_failure(r, 'vSphere')
    assert facts['password'] not in json.dumps(r)
    _record('vCenter simulator stopped during a task', {
        'fault': 'SIGKILL to the simulator after the vm task (create with disk and NIC, power on) had sent half of '
                 'its %d request bytes' % total,
        'outcome': 'clear failure: "%s" (the simulator keeps no state: recovery is the next fault)' % r['msg'][:200]})


def _vm_facts(vm):
    """What the vm task asked for, read from the simulator: memory, vCPUs, disk sizes, NIC networks, tags."""
    from pyVmomi import vim  # pylint: disable=import-outside-toplevel
    devices = vm.config.hardware.device
    return (vm.config.hardware.memoryMB, vm.config.hardware.numCPU,
            sorted(d.capacityInKB for d in devices if isinstance(d, vim.vm.device.VirtualDisk)),
            sorted(d.deviceInfo.summary for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)),
            sorted(str(o.value) for o in vm.config.extraConfig if str(o.value) == '"hardening"'))


def _vms_named(si, name):
    from pyVmomi import vim  # pylint: disable=import-outside-toplevel
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return [vm for vm in view.view if vm.name == name]
    finally:
        view.Destroy()


def test_vsphere_task_killed_after_the_vm_exists_rerun_takes_it_up(ansible, own_vcsim):
    """A half-made VM: the vm driver makes a new VM in two vSphere tasks, CreateVM_Task (with its disk, NIC and
    tags) and PowerOnVM_Task. The run is killed between the two, client side: a proxy between the module and
    the simulator checks the simulator (directly) before it forwards each piece of data the module sends, and
    from the moment the VM exists forwards nothing more, so the power-on request never arrives, whenever the
    module sends it; then ansible-playbook and the module are killed (SIGKILL to their process group). The
    simulator keeps running with the half-made VM: created, powered off. (Killing the simulator instead loses
    the VM with all its state: govmomi's simulator keeps none.) The re-run must take that VM up, not make a
    second one: the same instance UUID, powered on, the only VM of that name; the run after changes nothing."""
    import ssl  # pylint: disable=import-outside-toplevel
    from pyVim.connect import Disconnect, SmartConnect  # pylint: disable=import-outside-toplevel
    facts = _vcsim_up(own_vcsim)
    si = SmartConnect(host='127.0.0.1', port=int(facts['port']), user=facts['username'], pwd=facts['password'],
                      sslContext=ssl.create_default_context(cafile=facts['ca_file']))
    name = '%shd-vk-%s' % (PREFIX, uuid.uuid4().hex[:6])
    try:
        proxy = GateProxy(int(facts['port']), lambda: vsphere_vm(si, name) is not None)
        proxy.start()
        play = os.path.join(ansible.workdir, 'play-%s.yml' % uuid.uuid4().hex[:8])
        with open(play, 'w') as handle:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': [
                {'name': 'task under test', 'virtfleet.virt.vm': _vcsim_args(facts, proxy.port, name)}]}], handle)
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [os.path.join(ansible.venv_bin, 'ansible-playbook'), '-i', ansible.inventory, play], env=ansible.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while not proxy.held.wait(0.2) and proc.poll() is None and time.monotonic() < deadline:
                pass
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # ansible-playbook, its worker and the module
            except ProcessLookupError:  # the run ended (and so did all of its processes)
                pass
            output = proc.communicate()[0].decode(errors='replace')
            proxy.close()
        assert proxy.held.is_set(), 'the VM never appeared; the run ended with %s:\n%s' % (proc.returncode, output)

        # the half-made VM: created with what the task asked for, never powered on
        found = _vms_named(si, name)
        assert len(found) == 1, found
        half = found[0]
        assert half.runtime.powerState == 'poweredOff', half.runtime.powerState
        wanted = (64, 1, [1024 * 1024], ['VM Network'], ['"hardening"'])
        assert _vm_facts(half) == wanted, _vm_facts(half)
        identity = (half._moId, half.config.instanceUuid, half.config.uuid)  # pylint: disable=protected-access

        # the re-run (straight to the simulator) takes it up: powers it on, makes nothing
        r = ansible.task('vm', _vcsim_args(facts, int(facts['port']), name))
        assert not r.get('failed') and r['changed'] and r['actions'] == ['start'], r
        assert r['vm']['state'] == 'running', r
        found = _vms_named(si, name)
        assert len(found) == 1, found
        vm = found[0]
        assert (vm._moId, vm.config.instanceUuid, vm.config.uuid) == identity  # pylint: disable=protected-access
        assert vm.runtime.powerState == 'poweredOn' and _vm_facts(vm) == wanted
        r = ansible.task('vm', _vcsim_args(facts, int(facts['port']), name))
        assert not r.get('failed') and not r['changed'], r
        assert len(_vms_named(si, name)) == 1
    finally:
        Disconnect(si)
    _record('vSphere vm task killed after the VM was created', {
        'fault': 'the vm task (create with disk and NIC, power on) killed client side (SIGKILL to ansible-playbook '
                 'and the module) once the VM existed, its power-on request held back',
        'outcome': 'a half-made VM (created, powered off); the re-run took it up: actions [start], the same '
                   'instance UUID, no second VM; the next run changed nothing'})

"""Injected faults (issue 8): a dying daemon, a killed guest, a full pool, a vCenter that goes away.

- libvirtd is killed (SIGKILL) in the middle of a ``fleet`` converge: the run fails with a clear
  message; after ``tests/env/libvirt-up.sh`` brings libvirtd back, a re-run converges; no VM is lost,
  duplicated or left half-defined.
- The QEMU process of a running VM is killed: ``state: running`` starts it again and says so.
- The filesystem of a pool fills up while a volume is created: a clear error, no partial volume.
- The vCenter simulator dies in the middle of a task: a clear error; the re-run converges.

Destination lost during a migration: tests/integration/test_migrate.py.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from conftest import (ENV, PREFIX, URI, assert_clean_failure, domain_snapshot, serial_ticks, sha256_file,
                      volume_names, wait_ticks)

libvirt = pytest.importorskip('libvirt')

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

def _libvirtd_pid():
    try:
        with open(LIBVIRTD_PID) as handle:
            pid = int(handle.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _answers():
    try:
        libvirt.open(URI).close()
        return True
    except libvirt.libvirtError:
        return False


def _libvirt_up():
    subprocess.run(['bash', os.path.join(ENV, 'libvirt-up.sh')], check=True, capture_output=True, timeout=300)


@pytest.fixture
def killable_libvirtd():
    """The root libvirtd's pid; afterwards, whatever happened, libvirtd answers again (libvirt-up.sh).

    libvirt-up.sh starts libvirtd only when no process named libvirtd runs at all, so another one
    (the simulated hosts of tests/env/twohost-up.sh run their own) would keep it from restarting
    ours: the test is skipped then.
    """
    pid = _libvirtd_pid()
    if pid is None or not _answers():
        pytest.skip('no libvirtd started by tests/env/libvirt-up.sh (pid file %s) answers' % LIBVIRTD_PID)
    others = [p for p in subprocess.run(['pgrep', '-x', 'libvirtd'], capture_output=True, text=True,
                                        check=False).stdout.split() if int(p) != pid]
    if others:
        pytest.skip('other libvirtd processes run (pids %s, e.g. tests/env/twohost-up.sh): libvirt-up.sh would '
                    'take them for ours and not restart the one this test kills' % ', '.join(others))
    yield pid
    if not _answers():
        _libvirt_up()
    assert _answers(), 'libvirtd did not come back'


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


def test_libvirtd_killed_during_fleet_converge(ansible, guests, killable_libvirtd):
    vms = [guests.new('lvd') for index in range(6)]
    items = [guests.spec(name, disk, log, state='running') for name, disk, log in vms]
    names = [name for name, _disk, _log in vms]

    # two VMs exist and run before the fault: they must survive it untouched
    r = ansible.task('fleet', {'vms': items[:2], 'workers': 2})
    assert not r.get('failed') and r['summary']['changed'] == 2, r
    conn = libvirt.open(URI)
    kept = dict((n, (conn.lookupByName(n).UUIDString(), _qemu_pid(n))) for n in names[:2])
    conn.close()

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
    os.kill(killable_libvirtd, signal.SIGKILL)
    killed_at = time.monotonic()
    r = task.result()
    try:
        watch.close()
    except libvirt.libvirtError:
        pass

    # a clear failure, per item, and no traceback
    assert_clean_failure(r)
    assert r['summary']['failed'] >= 1, r
    failed = [i for i in r['results'] if i['failed']]
    assert all(i['msg'] and 'Traceback' not in i['msg'] for i in failed), failed

    # libvirtd back: nothing lost, nothing duplicated, nothing half-defined
    _libvirt_up()
    conn = _reconnect()
    try:
        domains = [d for d in conn.listAllDomains(0) if d.name() in names]
        assert sorted(d.name() for d in domains) == sorted(set(d.name() for d in domains))
        assert len(set(d.UUIDString() for d in domains)) == len(domains)
        for name, (old_uuid, old_pid) in kept.items():
            dom = conn.lookupByName(name)
            assert dom.UUIDString() == old_uuid and dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING, name
            assert _qemu_pid(name) == old_pid, '%s was restarted' % name
        for dom in domains:
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            disk = dict((n, d) for n, d, _l in vms)[dom.name()]
            assert "<memory unit='KiB'>32768</memory>" in xml and disk in xml, (dom.name(), xml)
        defined_during_fault = sorted(d.name() for d in domains if d.name() not in kept)
    finally:
        conn.close()

    # the same task again converges the fleet; the two VMs from before are left alone
    r = ansible.task('fleet', {'vms': items, 'workers': 2})
    assert not r.get('failed'), r
    by_name = dict((i['name'], i) for i in r['results'])
    assert all(by_name[n]['vm']['state'] == 'running' for n in names), r
    assert not by_name[names[0]]['changed'] and not by_name[names[1]]['changed'], r
    r = ansible.task('fleet', {'vms': items, 'workers': 2})
    assert not r.get('failed') and r['summary']['changed'] == 0, r
    wait_ticks(vms[-1][2])
    _record('libvirtd killed during a fleet converge', {
        'fault': 'SIGKILL to libvirtd once the first of 4 new VMs was defined (6-VM fleet, workers 1)',
        'outcome': 'run failed clearly (%d of 6 items failed); libvirt-up.sh restarted libvirtd in %.1f s; the 2 '
                   'running VMs kept UUID and QEMU process; VMs defined before the kill: %s, all complete; a re-run '
                   'converged all 6, the next one changed nothing'
                   % (len(failed), time.monotonic() - killed_at, ', '.join(defined_during_fault) or 'none')})


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
    fd = os.open(os.path.join(path, 'filler'), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 4096, 512):  # root may use the reserved blocks too: fill to the last byte
            try:
                while True:
                    os.write(fd, b'\1' * chunk)
            except OSError:
                pass
        os.fsync(fd)
    finally:
        os.close(fd)
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

class KillingProxy(threading.Thread):
    """A TCP proxy to the simulator that counts the bytes the client sends and, past
    ``kill_after`` bytes, kills the simulator (SIGKILL) before it forwards more."""

    def __init__(self, port, pid):
        super().__init__(daemon=True)
        self.target = ('127.0.0.1', port)
        self.pid = pid
        self.kill_after = None
        self.sent = 0
        self.killed_at = None
        self.server = socket.socket()
        self.server.bind(('127.0.0.1', 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.lock = threading.Lock()

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
                        if self.kill_after is not None and self.sent > self.kill_after and self.killed_at is None:
                            os.kill(self.pid, signal.SIGKILL)
                            self.killed_at = self.sent
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


def test_vcsim_stopped_during_a_task(ansible, own_vcsim):
    facts = _vcsim_up(own_vcsim)
    name = '%shd-vs-%s' % (PREFIX, uuid.uuid4().hex[:6])

    def args(port, vm_name=name):
        return {'hostname': '127.0.0.1', 'port': port, 'username': facts['username'], 'password': facts['password'],
                'ca_path': facts['ca_file'], 'name': vm_name, 'cluster': 'DC0_C0', 'datastore': 'LocalDS_0',
                'memory': 64, 'vcpus': 1, 'disks': [{'size': '1GiB'}], 'interfaces': [{'network': 'VM Network'}],
                'state': 'running', 'tags': {'fleet': 'hardening'}}

    proxy = KillingProxy(int(facts['port']), facts['pid'])
    proxy.start()
    try:
        # calibration: the bytes the same task sends through the proxy (another VM name)
        r = ansible.task('vm', args(proxy.port, name + 'c'))
        assert r['changed'] and r['vm']['state'] == 'running', r
        total = proxy.sent
        # the simulator dies once the task has sent half of that: after login and the inventory read
        proxy.sent, proxy.kill_after = 0, total // 2
        r = ansible.task('vm', args(proxy.port))
    finally:
        proxy.close()
    assert proxy.killed_at, 'the simulator was not killed (the task sent %d bytes)' % proxy.sent
    assert_clean_failure(r, 'vSphere')
    assert facts['password'] not in json.dumps(r)
    message = r['msg']

    # the simulator back (a new port, an empty inventory: it keeps no state), the same task converges
    facts = _vcsim_up(own_vcsim)
    r = ansible.task('vm', args(int(facts['port'])))
    assert not r.get('failed') and r['changed'] and r['vm']['state'] == 'running', r
    r = ansible.task('vm', args(int(facts['port'])))
    assert not r.get('failed') and not r['changed'], r
    _record('vCenter simulator stopped during a task', {
        'fault': 'SIGKILL to the simulator after the vm task (create with disk and NIC, power on) had sent half of '
                 'its %d request bytes' % total,
        'outcome': 'clear failure: "%s"; after vcsim-up.sh the same task converged, the next run changed nothing'
                   % message[:200]})

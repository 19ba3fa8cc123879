# Integration tests: real Ansible runs against the real libvirtd started by
# tests/env/libvirt-up.sh.  Nothing here mocks a hypervisor: each test runs
# ansible-playbook, then reads the hypervisor's state back with libvirt-python.
from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

libvirt = pytest.importorskip('libvirt')

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = os.path.join(REPO, 'tests', 'env')
URI = os.environ.get('VIRTFLEET_TEST_URI', 'qemu:///system')
PREFIX = 'vft-'


def _sh(script, *args):
    return subprocess.run(['bash', os.path.join(ENV, script)] + list(args), check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]


@pytest.fixture(scope='session')
def collections_path():
    return os.environ.get('VIRTFLEET_COLLECTIONS_PATH') or _sh('collection.sh')


@pytest.fixture(scope='session')
def venv_bin():
    venv = os.environ.get('VIRTFLEET_VENV_DIR') or _sh('venv.sh')
    return os.path.join(venv, 'bin')


@pytest.fixture(scope='session')
def workdir():
    path = tempfile.mkdtemp(prefix='virtfleet-it-')
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='session')
def inventory(workdir, venv_bin):
    path = os.path.join(workdir, 'inventory.ini')
    with open(path, 'w') as handle:
        # Interpreter discovery finds a broken pyenv shim on these machines: name the venv's python.
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n'
                     % os.path.join(venv_bin, 'python'))
    return path


class AnsibleRunner:
    """Runs playbooks with ansible-playbook and returns registered results."""

    def __init__(self, venv_bin, collections_path, inventory, workdir):
        self.venv_bin = venv_bin
        self.inventory = inventory
        self.workdir = workdir
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path,
                        ANSIBLE_HOST_KEY_CHECKING='False', ANSIBLE_NOCOLOR='1',
                        ANSIBLE_DEPRECATION_WARNINGS='False', ANSIBLE_RETRY_FILES_ENABLED='False',
                        ANSIBLE_CALLBACK_PLUGINS=os.path.join(os.path.dirname(__file__), 'callback_plugins'),
                        ANSIBLE_CALLBACKS_ENABLED='vft_result',
                        PATH=venv_bin + os.pathsep + os.environ.get('PATH', ''))
        self.last_stdout = ''

    def playbook(self, path, *extra, check=True, env=None):
        proc = subprocess.run([os.path.join(self.venv_bin, 'ansible-playbook'), '-i', self.inventory, path]
                              + list(extra), env=dict(self.env, **(env or {})), capture_output=True, text=True,
                              timeout=900, check=False)
        self.last_stdout = proc.stdout + proc.stderr
        if check and proc.returncode != 0:
            raise AssertionError('ansible-playbook %s failed (%d):\n%s' % (path, proc.returncode, self.last_stdout))
        return proc

    def adhoc(self, module, args, *extra):
        """Run ``ansible localhost -m module -a args`` (as users do ad hoc); return (rc, result dict)."""
        if '.' not in module:
            module = 'virtfleet.virt.' + module
        proc = subprocess.run([os.path.join(self.venv_bin, 'ansible'), '-i', self.inventory, 'localhost',
                               '-m', module, '-a', args if isinstance(args, str) else json.dumps(args)]
                              + list(extra), env=self.env, capture_output=True, text=True, timeout=300,
                              check=False)
        self.last_stdout = proc.stdout + proc.stderr
        # the minimal callback prints "localhost | STATUS => {json}"
        _head, _sep, body = proc.stdout.partition('=> ')
        return proc.returncode, json.loads(body) if body.strip() else {}

    def task(self, module, args, check=False, diff=False, extra_args=(), play_extra=None):
        """Run one task of ``module`` with ``args``; return its result as ``register`` holds it (written by the
        vft_result callback of callback_plugins/)."""
        run_id = uuid.uuid4().hex[:8]
        out = os.path.join(self.workdir, 'result-%s.json' % run_id)
        if '.' not in module:
            module = 'virtfleet.virt.' + module
        play = {'hosts': 'localhost', 'gather_facts': False, 'tasks': [
            {'name': 'task under test', module: args, 'ignore_errors': True, 'check_mode': check, 'diff': diff},
        ]}
        play.update(play_extra or {})
        path = os.path.join(self.workdir, 'play-%s.yml' % run_id)
        with open(path, 'w') as handle:
            json.dump([play], handle)
        self.playbook(path, *extra_args, env={'VIRTFLEET_RESULT_FILE': out})
        if not os.path.exists(out):
            raise AssertionError('the task under test returned no result:\n' + self.last_stdout)
        with open(out) as handle:
            return json.load(handle)


@pytest.fixture(scope='session')
def ansible(venv_bin, collections_path, inventory, workdir):
    return AnsibleRunner(venv_bin, collections_path, inventory, workdir)


class ReconnectingConnection:
    """A libvirt connection for the whole session that reopens itself when libvirtd restarts.

    Some tests restart libvirtd on purpose (the kvm_host role's restart handler, fault injection);
    every later test must still see the daemon, not a closed socket.
    """

    def __init__(self, uri):
        self.uri = uri
        self._conn = libvirt.open(uri)

    def _live(self):
        # isAlive() only reports what the client already noticed: without an event loop a daemon
        # restart shows up as "Broken pipe" on the next call. A cheap round trip notices it now.
        try:
            self._conn.getLibVersion()
            return self._conn
        except libvirt.libvirtError:
            pass
        try:
            self._conn.close()
        except libvirt.libvirtError:
            pass
        deadline = time.monotonic() + 30
        while True:
            try:
                self._conn = libvirt.open(self.uri)
                return self._conn
            except libvirt.libvirtError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def __getattr__(self, name):
        return getattr(self._live(), name)

    def close(self):
        self._conn.close()


@pytest.fixture(scope='session')
def conn():
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    connection = ReconnectingConnection(URI)
    yield connection
    connection.close()


@pytest.fixture(scope='session')
def domain_type(conn):
    try:
        conn.getDomainCapabilities(None, None, None, 'kvm', 0)
        return 'kvm'
    except libvirt.libvirtError:
        return 'qemu'


def pytest_report_header(config):
    try:
        connection = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        return 'libvirt at %s: NOT reachable (%s)' % (URI, exc)
    try:
        connection.getDomainCapabilities(None, None, None, 'kvm', 0)
        kind = "KVM usable: test guests run as <domain type='kvm'>"
    except libvirt.libvirtError:
        kind = "KVM NOT usable: test guests fall back to <domain type='qemu'> (TCG emulation)"
    finally:
        connection.close()
    return 'libvirt at %s, %s' % (URI, kind)


@pytest.fixture(scope='session')
def guest_image():
    """The counting boot-sector image; tests copy it so each VM has its own disk."""
    path = os.environ.get('VIRTFLEET_GUEST_IMAGE') or _sh('guest-image.sh')
    assert os.path.getsize(path) == 1024 * 1024
    return path


def pytest_configure(config):
    config.addinivalue_line('markers', 'linux_guest: boots the real Debian guest of tests/env/linux-guest.sh '
                                       '(TCG, minutes); run them alone with -m linux_guest')


@pytest.fixture(scope='session')
def linux_guest():
    """The real Debian 12 test guest (tests/env/linux-guest.sh, built once and cached by content hash), or the
    directory $VIRTFLEET_LINUX_GUEST: a dict of the paths ``dir``, ``disk`` (qcow2, boots from its own disk:
    use it as a backing file, never write to it), ``kernel``, ``initrd`` and the ``cmdline`` string that a
    direct kernel boot of it needs."""
    path = os.environ.get('VIRTFLEET_LINUX_GUEST')
    if not path:
        proc = subprocess.run(['bash', os.path.join(ENV, 'linux-guest.sh')], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            raise AssertionError('tests/env/linux-guest.sh failed (%d):\n%s\n%s'
                                 % (proc.returncode, proc.stdout, proc.stderr[-4000:]))
        print(proc.stdout.strip().splitlines()[0])
        path = proc.stdout.strip().splitlines()[-1]
    guest = dict(dir=path, disk=os.path.join(path, 'disk.qcow2'), kernel=os.path.join(path, 'vmlinuz'),
                 initrd=os.path.join(path, 'initrd.img'))
    for key in ('disk', 'kernel', 'initrd'):
        assert os.path.isfile(guest[key]), 'the Linux guest has no %s: %s' % (key, guest[key])
    with open(os.path.join(path, 'cmdline')) as handle:
        guest['cmdline'] = handle.read().strip()
    return guest


def free_subnet(conn):
    """A 10.x.y prefix whose /24 no route of this host and no libvirt network uses (for an isolated network
    with DHCP that a test creates)."""
    routes = subprocess.run(['ip', '-4', 'route'], capture_output=True, text=True, check=True).stdout
    used = set(re.findall(r'\b(10\.\d+\.\d+)\.', routes))
    for net in conn.listAllNetworks(0):
        used.update(re.findall(r"address='(10\.\d+\.\d+)\.", net.XMLDesc(0)))
    for _attempt in range(200):
        prefix = '10.%d.%d' % (random.randint(200, 250), random.randint(0, 255))
        if prefix not in used:
            return prefix
    raise AssertionError('no free 10.x.y.0/24 for a test network')


def _remove_domain(conn, name):
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError:
        pass
    flags = (libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
             | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError:
        pass


class Guests:
    """Hands out unique VM names with their own disk copy and serial log; cleans up afterwards."""

    def __init__(self, conn, image, workdir):
        self.conn = conn
        self.image = image
        self.dir = os.path.join('/var/lib/virtfleet-test', 'guests')
        os.makedirs(self.dir, exist_ok=True)
        self.names = []

    def new(self, stem='vm'):
        name = '%s%s-%s' % (PREFIX, stem, uuid.uuid4().hex[:6])
        self.names.append(name)
        disk = os.path.join(self.dir, name + '.img')
        shutil.copyfile(self.image, disk)
        return name, disk, os.path.join(self.dir, name + '.serial.log')

    def spec(self, name, disk, log, **extra):
        args = {'name': name, 'memory': 32, 'disks': [{'path': disk}],
                'serial': [{'type': 'file', 'path': log}]}
        args.update(extra)
        return args

    def cleanup(self):
        for name in self.names:
            _remove_domain(self.conn, name)
            for suffix in ('.img', '.serial.log'):
                try:
                    os.unlink(os.path.join(self.dir, name + suffix))
                except OSError:
                    pass


@pytest.fixture
def guests(conn, guest_image, workdir):
    pool = Guests(conn, guest_image, workdir)
    yield pool
    pool.cleanup()


_TICK = re.compile(r'virtfleet-guest tick ([0-9a-f]{8})')


def serial_ticks(path):
    """Counter values the test guest printed, in order."""
    try:
        with open(path, errors='replace') as handle:
            return [int(m, 16) for m in _TICK.findall(handle.read())]
    except OSError:
        return []


def wait_ticks(path, more_than=0, timeout=120):
    """Wait until the guest has printed a counter above ``more_than``; return the last value.

    The bound is generous: SeaBIOS runs its 32-bit code slowly here (/dev/kvm runs only real-mode code), so
    a first boot on a loaded machine (load average 17 on 2 cores, measured) takes longer than 30 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ticks = serial_ticks(path)
        if ticks and ticks[-1] > more_than:
            return ticks[-1]
        time.sleep(0.2)
    raise AssertionError('guest serial log %s shows no counter above %d after %d s' % (path, more_than, timeout))


def wait_new_ticks(path, count=5, above=0, timeout=120):
    """Wait until the guest has printed ``count`` ticks more than the log holds now, the last above ``above``;
    return all ticks. Use it to prove a guest counts *now*: the last line of the log may predate a restart
    whose new output has not come yet (a reboot through SeaBIOS is slow here)."""
    already = len(serial_ticks(path))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ticks = serial_ticks(path)
        if len(ticks) >= already + count and ticks[-1] > above:
            return ticks
        time.sleep(0.2)
    raise AssertionError('guest serial log %s shows no %d new ticks (last above %d) after %d s'
                         % (path, count, above, timeout))


def assert_clean_failure(result, *fragments):
    """A failed task with a clear message: no traceback, no MODULE FAILURE, mentions ``fragments``."""
    assert result.get('failed'), result
    text = json.dumps(result)
    assert 'Traceback' not in text and 'MODULE FAILURE' not in text, result
    msg = result.get('msg', '')
    for fragment in fragments:
        assert fragment in msg, 'expected %r in %r' % (fragment, msg)


# Parts of a running domain's live XML that move without anyone changing the domain, stripped before
# comparing. Measured on the test guest (libvirt 9.0, QEMU 7.2): two XMLDesc(0) calls 15 s apart on an idle
# running (and on a paused) guest, and around no-op vm and vm_info runs, give byte-identical XML, including
# <seclabel>, the domain id, the VNC port, aliases and addresses -- so nothing is stripped. A guest with a
# balloon driver would move <currentMemory>; add such paths here with the measurement that shows them.
_LIVE_VOLATILE = ()


def live_xml(dom):
    """The live XML of running (or paused) domain ``dom`` minus _LIVE_VOLATILE; None when it is not active."""
    if not dom.isActive():
        return None
    xml = dom.XMLDesc(0)
    if not _LIVE_VOLATILE:
        return xml
    from lxml import etree
    root = etree.fromstring(xml)
    for path in _LIVE_VOLATILE:
        for elem in root.findall(path):
            elem.getparent().remove(elem)
    return etree.tostring(root, encoding='unicode')


def domain_snapshot(conn, name):
    """What a run could change on VM ``name`` (None when undefined), for before/after checks: the persistent
    definition, the run state, autostart, and the live XML of a running guest (None when it is not active),
    so that a check-mode or failed run that touched only the running guest is caught too.
    Index 0 stays the persistent definition."""
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return None
    return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), dom.state()[0], dom.autostart(), live_xml(dom)


@pytest.fixture(scope='session')
def test_network(conn):
    """An isolated libvirt network (no DHCP, no forward) that VMs in these tests attach to."""
    suffix = uuid.uuid4().hex[:6]
    name = PREFIX + 'net-' + suffix
    xml = ("<network><name>%s</name><bridge name='vftbr%s' stp='off'/></network>" % (name, suffix))
    try:
        net = conn.networkLookupByName(name)
    except libvirt.libvirtError:
        net = conn.networkDefineXML(xml)
    if not net.isActive():
        net.create()
    yield name
    net = conn.networkLookupByName(name)  # a libvirtd restart during the session closed the first handle
    try:
        net.destroy()
    except libvirt.libvirtError:
        pass
    net.undefine()


# -- Podman -------------------------------------------------------------------------
# tests/env/podman-up.sh installs Podman, imports the test image and prepares the host quirks
# (docs/host-quirks.md); tests reach podman through the wrapper it prints, passed as podman_path.

PODMAN_IMAGE = 'localhost/vft-busybox:latest'


@pytest.fixture(scope='session')
def podman_path():
    """The podman command of the tests (once per session; podman-up.sh is idempotent)."""
    return os.environ.get('VIRTFLEET_PODMAN_PATH') or _sh('podman-up.sh')


class Podman:
    """Direct podman calls, to check what the modules did (never to do their work)."""

    def __init__(self, path):
        self.path = path

    def run(self, *args, check=True):
        proc = subprocess.run([self.path] + [str(a) for a in args], capture_output=True, text=True,
                              timeout=300, check=False)
        if check and proc.returncode != 0:
            raise AssertionError('podman %s failed (%d): %s' % (' '.join(map(str, args)), proc.returncode,
                                                                proc.stderr))
        return proc

    def inspect(self, name):
        """``podman container inspect`` of ``name``, or None when there is no such container."""
        proc = self.run('container', 'inspect', name, check=False)
        return json.loads(proc.stdout)[0] if proc.returncode == 0 else None

    def snapshot(self, name):
        """What a run must not change: ID, status, start time and the managed configuration."""
        data = self.inspect(name)
        if data is None:
            return None
        host = data['HostConfig']
        return (data['Id'], data['State']['Status'], data['State'].get('StartedAt'), data['Config'].get('Env'),
                data['Config'].get('Labels'), data['Config'].get('Cmd'), host.get('PortBindings'),
                json.dumps(data.get('Mounts'), sort_keys=True), host.get('RestartPolicy'), host.get('Memory'),
                host.get('NanoCpus'), sorted(data['NetworkSettings'].get('Networks') or {}))


@pytest.fixture(scope='session')
def podman(podman_path):
    return Podman(podman_path)


class Containers:
    """Hands out unique vft- container, network and volume names; removes them afterwards."""

    def __init__(self, podman):
        self.podman = podman
        self.names, self.networks, self.volumes = [], [], []

    def new(self, stem='ct'):
        name = '%s%s-%s' % (PREFIX, stem, uuid.uuid4().hex[:6])
        self.names.append(name)
        return name

    def network(self):
        name = '%snet-%s' % (PREFIX, uuid.uuid4().hex[:6])
        self.podman.run('network', 'create', name)
        self.networks.append(name)
        return name

    def volume_name(self):
        name = '%svol-%s' % (PREFIX, uuid.uuid4().hex[:6])
        self.volumes.append(name)
        return name

    def cleanup(self):
        listed = self.podman.run('ps', '--all', '--format', '{{.Names}}', check=False).stdout.split()
        for name in listed:
            # the containers of this test, and temporary ones a recreation may have left behind
            if any(name == n or name.startswith(n + '-vf') for n in self.names):
                self.podman.run('rm', '--force', '--volumes', '--time', '0', name, check=False)
        for name in self.networks:
            self.podman.run('network', 'rm', '--force', name, check=False)
        for name in self.volumes:
            self.podman.run('volume', 'rm', '--force', name, check=False)


@pytest.fixture
def containers(podman):
    pool = Containers(podman)
    yield pool
    pool.cleanup()


def free_port():
    """A TCP port nothing listens on right now, on 127.0.0.1."""
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def http_get(port, path='/', timeout=15):
    """The body served on 127.0.0.1:``port``, retried until ``timeout`` s (the server may be starting)."""
    import urllib.request
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d%s' % (port, path), timeout=3) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.3)


# -- storage (storage_pool, volume, cloud_init_seed) ---------------------------------

STORAGE_DIR = '/var/lib/virtfleet-test/storage'


def _sh_out(*argv):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True).stdout.strip()


def _remove_pool(conn, name):
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        return
    try:
        if pool.isActive():
            for vol in pool.listAllVolumes(0):
                try:
                    vol.delete(0)
                except libvirt.libvirtError:
                    pass
            pool.destroy()
    except libvirt.libvirtError:
        pass
    try:
        pool.undefine()
    except libvirt.libvirtError:
        pass


class Storage:
    """Unique pool names, directories under STORAGE_DIR and loop devices; removes them all afterwards."""

    def __init__(self, conn):
        self.conn = conn
        self.pools = []
        self.paths = []
        self.loops = []
        os.makedirs(STORAGE_DIR, exist_ok=True)

    def name(self, stem='pool'):
        name = '%s%s-%s' % (PREFIX, stem, uuid.uuid4().hex[:6])
        self.pools.append(name)
        return name

    def path(self, name):
        path = os.path.join(STORAGE_DIR, name)
        self.paths.append(path)
        return path

    def dir_pool(self, stem='pool'):
        """An active dir pool made with libvirt-python (for tests of other modules): ``(name, path)``."""
        name = self.name(stem)
        path = self.path(name)
        pool = self.conn.storagePoolDefineXML(
            "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>" % (name, path), 0)
        pool.build(0)
        pool.create(0)
        return name, path

    def loop(self, size_mib=64):
        """A loop device backed by a sparse file of ``size_mib`` MiB."""
        backing = self.path('%sloop-%s.img' % (PREFIX, uuid.uuid4().hex[:6]))
        with open(backing, 'wb') as handle:
            handle.truncate(size_mib * 1024 * 1024)
        device = _sh_out('losetup', '--find', '--show', backing)
        self.loops.append(device)
        return device

    def volume_path(self, pool, volume):
        return self.conn.storagePoolLookupByName(pool).storageVolLookupByName(volume).path()

    def cleanup(self):
        for name in self.pools:
            _remove_pool(self.conn, name)
        for path in self.paths:
            if os.path.ismount(path):
                subprocess.run(['umount', path], check=False, capture_output=True)
        for device in self.loops:
            if shutil.which('pvs') and os.path.exists('/dev/mapper/control'):
                found = subprocess.run(['pvs', '--noheadings', '-o', 'vg_name', device], check=False,
                                       capture_output=True, text=True).stdout.split()
                for vg in found:
                    subprocess.run(['vgremove', '-f', vg], check=False, capture_output=True)
            subprocess.run(['losetup', '-d', device], check=False, capture_output=True)
        for path in self.paths:
            if os.path.isdir(path) and not os.path.ismount(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.isfile(path):
                os.unlink(path)


@pytest.fixture
def storage(conn):
    box = Storage(conn)
    yield box
    box.cleanup()


def pool_snapshot(conn, name):
    """The persistent definition, activity and autostart of pool ``name`` (None when undefined)."""
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        return None
    return pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE), pool.isActive(), pool.autostart()


def volume_names(conn, pool):
    return sorted(v.name() for v in conn.storagePoolLookupByName(pool).listAllVolumes(0))


def sha256_file(path):
    import hashlib
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


# -- vSphere: govmomi's vCenter simulator started by tests/env/vcsim-up.sh ------------------------

@pytest.fixture(scope='session')
def vcsim():
    """Connection facts of the running simulator: url, host, port, username, password, ca_file.

    Started (built first when needed) by tests/env/vcsim-up.sh; stopped at the end of the session
    when this session started it, unless VIRTFLEET_KEEP_ENV is set.
    """
    state_dir = os.environ.get('VIRTFLEET_VCSIM_DIR', '/run/virtfleet-test/vcsim')
    was_running = os.path.exists(os.path.join(state_dir, 'env.json'))
    state = _sh('vcsim-up.sh')
    with open(os.path.join(state, 'env.json')) as handle:
        facts = json.load(handle)
    with open(os.path.join(state, 'password')) as handle:
        facts['password'] = handle.read().strip()
    facts['port'] = int(facts['port'])
    yield facts
    if not was_running and not os.environ.get('VIRTFLEET_KEEP_ENV'):
        subprocess.run(['bash', os.path.join(ENV, 'vcsim-down.sh')], check=False, capture_output=True)


@pytest.fixture(scope='session')
def vsphere_args(vcsim):
    """Connection options of the vm/vm_info modules for the simulator, its CA trusted through ca_path."""
    return {'hostname': vcsim['host'], 'port': vcsim['port'], 'username': vcsim['username'],
            'password': vcsim['password'], 'ca_path': vcsim['ca_file']}


@pytest.fixture(scope='session')
def vsphere(vcsim):
    """A pyvmomi session to the simulator, to check what the modules did."""
    import ssl
    from pyVim.connect import Disconnect, SmartConnect
    si = SmartConnect(host=vcsim['host'], port=vcsim['port'], user=vcsim['username'], pwd=vcsim['password'],
                      sslContext=ssl.create_default_context(cafile=vcsim['ca_file']))
    yield si
    Disconnect(si)


def _vsphere_find(si, kind, name):
    from pyVmomi import vim
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [getattr(vim, kind)], True)
    try:
        for obj in view.view:
            if obj.name == name:
                return obj
    finally:
        view.Destroy()
    return None


def vsphere_vm(si, name):
    """The pyvmomi VirtualMachine named ``name`` (None when there is none)."""
    return _vsphere_find(si, 'VirtualMachine', name)


def vsphere_host(si, name):
    """The pyvmomi HostSystem named ``name`` (None when there is none)."""
    return _vsphere_find(si, 'HostSystem', name)


def vsphere_snapshot(si, name):
    """What a run could change on VM ``name`` (None when it does not exist), for before/after checks.

    ``config.modified`` moves on every reconfigure, so an unchanged snapshot means nothing was written.
    """
    vm = vsphere_vm(si, name)
    if vm is None:
        return None
    config = vm.config
    return (str(config.modified), config.hardware.memoryMB, config.hardware.numCPU, vm.runtime.powerState,
            config.annotation, sorted((o.key, o.value) for o in config.extraConfig),
            sorted(d.key for d in config.hardware.device))


class VSphereVMs:
    """Unique ``vft-`` VM names on the simulator; removes the VMs afterwards."""

    def __init__(self, si):
        self.si = si
        self.names = []

    def new(self, stem='vm'):
        name = '%s%s-%s' % (PREFIX, stem, uuid.uuid4().hex[:6])
        self.names.append(name)
        return name

    def cleanup(self):
        from pyVim.task import WaitForTask
        for name in self.names:
            vm = vsphere_vm(self.si, name)
            if vm is None:
                continue
            if vm.runtime.powerState != 'poweredOff':
                WaitForTask(vm.PowerOffVM_Task())
            WaitForTask(vm.Destroy_Task())


@pytest.fixture
def vsphere_vms(vsphere):
    box = VSphereVMs(vsphere)
    yield box
    box.cleanup()


# -- two simulated hypervisor hosts (tests/env/twohost-up.sh), for virtfleet.virt.migrate ----------
TWOHOST_BASE = os.environ.get('VIRTFLEET_TWOHOST_DIR', '/var/lib/virtfleet-test/twohost')
TWOHOST_SHARED = os.environ.get('VIRTFLEET_TWOHOST_SHARED', '/var/lib/virtfleet-test/shared')


class SimHost:
    """One simulated hypervisor: its unix-socket URI (from the root namespace), its TCP URI (from the
    other host), its private directories as seen from the root namespace, and a libvirt connection."""

    def __init__(self, name, uri, tcp_uri):
        self.name = name
        self.uri = uri
        self.tcp_uri = tcp_uri
        self.base = os.path.join(TWOHOST_BASE, name)
        self.images = os.path.join(self.base, 'lib', 'images')  # /var/lib/libvirt/images in the host
        self.netns = 'vft-' + name
        self.veth = 'vft-veth' + name[2:]
        self._conn = None

    @property
    def conn(self):
        if self._conn is None:  # opened on first use; reopens itself after the host's libvirtd restarts
            self._conn = ReconnectingConnection(self.uri)
        return self._conn

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except libvirt.libvirtError:
                pass
            self._conn = None

    def domain(self, name):
        try:
            return self.conn.lookupByName(name)
        except libvirt.libvirtError:
            return None

    def pid(self, what):
        with open(os.path.join(self.base, 'run', what + '.pid')) as handle:
            return int(handle.read().strip())

    def kill_libvirtd(self):
        """SIGKILL this host's libvirtd (started by twohost-up.sh, found by its pid file)."""
        os.kill(self.pid('libvirtd'), 9)
        self.close()

    def qemu_pid(self, name):
        """The pid of the QEMU running VM ``name`` on this host, or None."""
        try:
            with open(os.path.join(self.base, 'run', 'libvirt', 'qemu', name + '.pid')) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return None
        return pid if os.path.exists('/proc/%d' % pid) else None

    def limit_rate(self, rate='8mbit'):
        """Slow this host's outgoing traffic on the link (so a migration lasts long enough to interfere)."""
        self.unlimit_rate()
        subprocess.run(['ip', 'netns', 'exec', self.netns, 'tc', 'qdisc', 'add', 'dev', self.veth, 'root',
                        'tbf', 'rate', rate, 'burst', '32kbit', 'latency', '400ms'], check=True)

    def unlimit_rate(self):
        subprocess.run(['ip', 'netns', 'exec', self.netns, 'tc', 'qdisc', 'del', 'dev', self.veth, 'root'],
                       check=False, capture_output=True)


class TwoHost:
    """tests/env/twohost-up.sh: hv1 and hv2, each with its own libvirtd; see that script."""

    def __init__(self):
        self.shared = TWOHOST_SHARED
        self.hosts = {}
        self.up()

    def up(self):
        """Start what is not running (idempotent); a host whose libvirtd was killed gets a new one."""
        out = subprocess.run(['bash', os.path.join(ENV, 'twohost-up.sh')], check=True, capture_output=True,
                             text=True).stdout
        for line in out.strip().splitlines():
            name, uri, tcp_uri = line.split()
            if name in self.hosts:
                self.hosts[name].close()
            self.hosts[name] = SimHost(name, uri, tcp_uri)
        return self

    @staticmethod
    def _daemon_pid(host, what):
        """The pid of the host's ``what`` daemon when its pid file names a live process of that name, else None."""
        try:
            pid = host.pid(what)
            with open('/proc/%d/comm' % pid) as handle:
                comm = handle.read().strip()
            with open('/proc/%d/stat' % pid) as handle:
                zombie = handle.read().rsplit(')', 1)[1].split()[0] == 'Z'
        except (OSError, ValueError, IndexError):
            return None
        return pid if comm == what and not zombie else None

    @staticmethod
    def _answers(host, timeout=10):
        """A bounded round trip to the host's libvirtd: a stopped or hung daemon accepts the connection but
        never answers (a libvirt-python call would block for good, so virsh runs under a timeout)."""
        try:
            proc = subprocess.run(['virsh', '-q', '-c', host.uri, 'version'], capture_output=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            return False
        return proc.returncode == 0

    def ensure_up(self):
        """Bring back a daemon that died (killed by a test, the kvm_host Molecule scenario's restart handler,
        fault injection) or that runs but does not answer (it is killed first); cheap when all is well."""
        broken = []
        for host in self.hosts.values():
            pids = dict((what, self._daemon_pid(host, what)) for what in ('virtlogd', 'libvirtd'))
            if not all(pids.values()):
                broken.append('%s (dead: %s)' % (host.name, ', '.join(w for w, p in sorted(pids.items()) if not p)))
                continue
            if not self._answers(host):
                broken.append('%s (libvirtd %d alive but not answering: killed)' % (host.name, pids['libvirtd']))
                os.kill(pids['libvirtd'], signal.SIGKILL)
                host.close()
                deadline = time.monotonic() + 10
                while self._daemon_pid(host, 'libvirtd') and time.monotonic() < deadline:
                    time.sleep(0.05)
        if broken:
            self.restored = getattr(self, 'restored', []) + broken
            return self.up()
        return self

    def __getitem__(self, name):
        return self.hosts[name]

    def down(self):
        for host in self.hosts.values():
            host.unlimit_rate()
            host.close()
        subprocess.run(['bash', os.path.join(ENV, 'twohost-down.sh')], check=False, capture_output=True)


@pytest.fixture(scope='session')
def twohost_session():
    """The two simulated hosts, brought up once per session and torn down at its end
    (VIRTFLEET_KEEP_TWOHOST=1 keeps them for a quicker next run). Tests use ``twohost``."""
    hosts = TwoHost()
    yield hosts
    if os.environ.get('VIRTFLEET_KEEP_TWOHOST'):
        for host in hosts.hosts.values():
            host.unlimit_rate()
            host.close()
    else:
        hosts.down()


@pytest.fixture
def twohost(twohost_session):
    """The two simulated hosts, checked before every test that uses them: a daemon an earlier test (or the
    kvm_host Molecule scenario, or fault injection) killed or left hung is brought back first."""
    return twohost_session.ensure_up()


_SIM_GUEST_XML = '''<domain type='{domain_type}'>
  <name>{name}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
  {cpu}
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    {interface}
    <serial type='file'>
      <source path='{log}' append='on'/>
      <target port='0'/>
    </serial>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>'''


class SimGuest:
    def __init__(self, name, disk, disk_paths, log):
        self.name = name
        self.disk = disk  # the path inside the hosts
        self.disk_paths = disk_paths  # host name -> the same image as seen from the root namespace
        self.log = log  # in the shared directory: the same file on both hosts


class SimGuests:
    """Test guests on the simulated hosts: the counting boot sector, its serial log (appended, in the
    shared directory, so both hosts write the same file), its disk in the shared directory or in a
    host's private /var/lib/libvirt/images. Removes them from both hosts afterwards."""

    def __init__(self, twohost, image):
        self.twohost = twohost
        self.image = image
        self.guests = []
        os.makedirs(twohost.shared, exist_ok=True)

    def new(self, host='hv1', storage='shared', extra_mib=0, network='vft-net', start=True, stem='mig', cpu='',
            disk_dir=None, backing=None):
        """A guest defined (and started) on ``host``; ``backing``: its disk is a qcow2 overlay of that image."""
        name = '%s%s-%s' % (PREFIX, stem, uuid.uuid4().hex[:6])
        if disk_dir or storage == 'shared':
            disk = os.path.join(disk_dir or self.twohost.shared, name + '.img')
            paths = dict((h, disk) for h in self.twohost.hosts)
        else:
            disk = '/var/lib/libvirt/images/%s.img' % name
            paths = dict((h, os.path.join(self.twohost[h].images, name + '.img')) for h in self.twohost.hosts)
        guest = SimGuest(name, disk, paths, os.path.join(self.twohost.shared, name + '.serial.log'))
        self.guests.append(guest)
        if backing:
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'raw', paths[host]],
                           check=True)
        else:
            shutil.copyfile(self.image, paths[host])
        if extra_mib:
            with open(paths[host], 'ab') as handle:
                handle.write(os.urandom(extra_mib * 1024 * 1024))
        interface = ("<interface type='network'><source network='%s'/><model type='virtio'/></interface>" % network
                     if network else '')
        conn = self.twohost[host].conn
        try:
            conn.getDomainCapabilities(None, None, None, 'kvm', 0)
            domain_type = 'kvm'
        except libvirt.libvirtError:
            domain_type = 'qemu'
        xml = _SIM_GUEST_XML.format(domain_type=domain_type, name=name, cpu=cpu, disk=disk, interface=interface,
                                    log=guest.log)
        if backing:
            xml = xml.replace("type='raw' cache='none'", "type='qcow2' cache='none'")
        dom = conn.defineXML(xml)
        if start:
            dom.create()
        return guest

    def cleanup(self):
        for guest in self.guests:
            for host in self.twohost.hosts.values():
                try:
                    _remove_domain(host.conn, guest.name)
                except libvirt.libvirtError:
                    pass
            for path in set(guest.disk_paths.values()) | {guest.log}:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        for host in self.twohost.hosts.values():
            try:
                host.conn.storagePoolLookupByName('vft-images').refresh(0)
            except libvirt.libvirtError:
                pass


@pytest.fixture
def sim_guests(twohost, guest_image):
    guests = SimGuests(twohost, guest_image)
    yield guests
    for host in twohost.hosts.values():
        host.unlimit_rate()
    twohost.ensure_up()  # a test that killed a daemon leaves it dead: the next test gets it back
    guests.cleanup()

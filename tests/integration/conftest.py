# Integration tests: real Ansible runs against the real libvirtd started by
# tests/env/libvirt-up.sh.  Nothing here mocks a hypervisor: each test runs
# ansible-playbook, then reads the hypervisor's state back with libvirt-python.
from __future__ import annotations

import json
import os
import re
import shutil
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
                        PATH=venv_bin + os.pathsep + os.environ.get('PATH', ''))
        self.last_stdout = ''

    def playbook(self, path, *extra, check=True):
        proc = subprocess.run([os.path.join(self.venv_bin, 'ansible-playbook'), '-i', self.inventory, path]
                              + list(extra), env=self.env, capture_output=True, text=True, timeout=900,
                              check=False)
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
        """Run one task of ``module`` with ``args``; return its registered result."""
        run_id = uuid.uuid4().hex[:8]
        out = os.path.join(self.workdir, 'result-%s.json' % run_id)
        if '.' not in module:
            module = 'virtfleet.virt.' + module
        play = {'hosts': 'localhost', 'gather_facts': False, 'tasks': [
            {'name': 'task under test', module: args, 'register': 'result', 'ignore_errors': True,
             'check_mode': check, 'diff': diff},
            {'name': 'save the result', 'ansible.builtin.copy': {'content': '{{ result | to_json }}', 'dest': out},
             'check_mode': False, 'diff': False},
        ]}
        play.update(play_extra or {})
        path = os.path.join(self.workdir, 'play-%s.yml' % run_id)
        with open(path, 'w') as handle:
            json.dump([play], handle)
        self.playbook(path, *extra_args)
        with open(out) as handle:
            return json.load(handle)


@pytest.fixture(scope='session')
def ansible(venv_bin, collections_path, inventory, workdir):
    return AnsibleRunner(venv_bin, collections_path, inventory, workdir)


@pytest.fixture(scope='session')
def conn():
    connection = libvirt.open(URI)
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
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


def wait_ticks(path, more_than=0, timeout=30):
    """Wait until the guest has printed a counter above ``more_than``; return the last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ticks = serial_ticks(path)
        if ticks and ticks[-1] > more_than:
            return ticks[-1]
        time.sleep(0.2)
    raise AssertionError('guest serial log %s shows no counter above %d after %d s' % (path, more_than, timeout))


def assert_clean_failure(result, *fragments):
    """A failed task with a clear message: no traceback, no MODULE FAILURE, mentions ``fragments``."""
    assert result.get('failed'), result
    text = json.dumps(result)
    assert 'Traceback' not in text and 'MODULE FAILURE' not in text, result
    msg = result.get('msg', '')
    for fragment in fragments:
        assert fragment in msg, 'expected %r in %r' % (fragment, msg)


def domain_snapshot(conn, name):
    """The persistent definition and run state of ``name`` (None when undefined), for before/after checks."""
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return None
    return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), dom.state()[0], dom.autostart()


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
    try:
        net.destroy()
    except libvirt.libvirtError:
        pass
    net.undefine()

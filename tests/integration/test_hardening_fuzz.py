"""Fuzzed arguments (issue 8), the quick slice: tests/hardening/fuzz.py with a few seeded sets per module.

Each module gets ``VIRTFLEET_FUZZ_PER_MODULE`` (default 12) argument sets generated from its own
argument spec, run through the real module against the real daemons (libvirt, Podman, a vCenter
simulator of the run's own); the first set of each module goes through ansible-playbook. For every
set: JSON with a msg on failure and no traceback, nothing changed by a call that says it changed
nothing (or by check mode), a bounded duration, no secret in the output. The full run (1000 per
module) and the report: ``tests/hardening/fuzz.py`` and ``tests/hardening/report.py``.

Below it, the bugs the fuzzer found, each as a regression test through the real module.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from conftest import REPO, assert_clean_failure, domain_snapshot

pytest.importorskip('hypothesis')

HARDENING = os.path.join(REPO, 'tests', 'hardening')
sys.path.insert(0, HARDENING)

import harness  # noqa: E402  pylint: disable=wrong-import-position,import-error
import fuzz  # noqa: E402  pylint: disable=wrong-import-position,import-error
import snapshots  # noqa: E402  pylint: disable=wrong-import-position,import-error

PER_MODULE = int(os.environ.get('VIRTFLEET_FUZZ_PER_MODULE', '12'))
SEED = int(os.environ.get('VIRTFLEET_FUZZ_SEED', '8'))


class FuzzRun:
    """tests/hardening/fuzz.py with ``PER_MODULE`` sets of every target, three targets at a time, as a background
    process: started before this module's first test, so that it runs while the regression tests below run
    (they touch only vft-hd- objects, it only vft-fz-<stem>-<run id>- ones), and waited for by ``fuzz_slice``."""

    def __init__(self, venv_bin, collections_path, workdir):
        self.run_id = uuid.uuid4().hex[:4]
        self.out = os.path.join(workdir, 'fuzz-slice-%s.json' % self.run_id)
        self.output = os.path.join(workdir, 'fuzz-slice-%s.output' % self.run_id)
        env = dict(os.environ, VIRTFLEET_VENV_DIR=os.path.dirname(venv_bin),
                   VIRTFLEET_COLLECTIONS_PATH=collections_path)
        self.started = time.monotonic()
        with open(self.output, 'w') as handle:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [os.path.join(venv_bin, 'python'), os.path.join(HARDENING, 'fuzz.py'), '--per-module', str(PER_MODULE),
                 '--seed', str(SEED), '--jobs', '3', '--playbook-every', str(PER_MODULE), '--out', self.out,
                 '--run-id', self.run_id], env=env, stdout=handle, stderr=subprocess.STDOUT, text=True)

    def mine(self, name):
        """Whether ``name`` is an object of this fuzz run."""
        return name.startswith('vft-fz-') and ('-%s-' % self.run_id) in name

    def result(self, timeout=1800):
        """``{target: result}`` (and ``run_id``) once the run has ended."""
        try:
            self.proc.wait(timeout=max(1, timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.stop()
        with open(self.output, errors='replace') as handle:
            output = handle.read()
        if not os.path.exists(self.out):
            raise AssertionError('fuzz.py wrote no results (rc %s):\n%s' % (self.proc.returncode, output[-6000:]))
        with open(self.out) as handle:
            data = json.load(handle)
        targets = dict((t['target'], t) for t in data['targets'])
        targets['run_id'] = data['run_id']
        return targets

    def stop(self):
        """SIGTERM: the workers skip their remaining sets, clean up and save what they did."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope='module', autouse=True)
def fuzz_run(request):
    """The background fuzz run, started when this module starts if any of its selected tests needs ``fuzz_slice``
    (None otherwise); stopped at the end of the module if it is still running (a test failed before waiting)."""
    wanted = [item for item in request.session.items
              if item.module is request.module and 'fuzz_slice' in getattr(item, 'fixturenames', ())]
    if not wanted:
        yield None
        return
    run = FuzzRun(request.getfixturevalue('venv_bin'), request.getfixturevalue('collections_path'),
                  request.getfixturevalue('workdir'))
    try:
        yield run
    finally:
        run.stop()


@pytest.fixture(scope='module')
def fuzz_slice(fuzz_run):
    """One seeded run of every target, three at a time; ``{target: result}``.

    Each target sets up what it needs itself: fuzz.py runs tests/env/podman-up.sh (or takes
    $VIRTFLEET_PODMAN_PATH) for the Podman targets only, and each vSphere target starts a simulator of its
    own; what cannot be set up fails that target (its ``error``), not the others.
    """
    return fuzz_run.result()


def _show(record):
    return json.dumps(dict((k, record.get(k)) for k in ('index', 'via', 'mode', 'outcome', 'problems', 'msg', 'args',
                                                        'state_diff')), default=str)[:2000]


# -- regressions: what the fuzzer found, through the real modules ------------------------------------------------

@pytest.fixture(scope='module')
def runner(workdir, collections_path, venv_bin):
    return harness.ModuleRunner(os.path.join(workdir, 'regressions'), os.path.join(venv_bin, 'python'),
                                collections_path)


def _variants(name):
    """``name`` and what a module that cleaned it up instead of refusing it could have made of it."""
    if not isinstance(name, str):
        return set()
    return {name, name.strip(), name.split('\x00')[0], ''.join(c for c in name if c.isprintable()).strip()} - {''}


def _made(conn, module, args):
    """The objects named by the set ``args`` of ``module`` that exist now: ``[(kind, name)]``.

    The names come from the set itself (the VM of vm, each VM of fleet, the network of network, the pool of
    storage_pool, volume and storage_pool_info), with the variants a module could have normalised them into."""
    wanted = {'domain': set(), 'network': set(), 'pool': set()}
    if module == 'vm':
        wanted['domain'] |= _variants(args.get('name'))
    elif module == 'fleet':
        for item in args.get('vms') or []:
            wanted['domain'] |= _variants(item.get('name') if isinstance(item, dict) else None)
    elif module == 'network':
        wanted['network'] |= _variants(args.get('name'))
    elif module in ('storage_pool', 'storage_pool_info'):
        wanted['pool'] |= _variants(args.get('name'))
    elif module == 'volume':
        wanted['pool'] |= _variants(args.get('pool'))
    existing = {'domain': [d.name() for d in conn.listAllDomains(0)],
                'network': [n.name() for n in conn.listAllNetworks(0)],
                'pool': [p.name() for p in conn.listAllStoragePools(0)]}
    return sorted((kind, name) for kind, names in existing.items() for name in names if name in wanted[kind])


def _run(runner, module, args):
    rc, stdout, stderr, _seconds, timed_out = runner.run(module, args, timeout=120)
    assert not timed_out
    assert 'Traceback' not in stdout + stderr, stdout + stderr
    result = harness.parse_result(stdout)
    assert result is not None, stdout + stderr
    assert bool(result.get('failed')) == (rc != 0)
    return result


@pytest.mark.parametrize('module, args, fragment', [
    # ansible-core's own validation raised TypeError for a number given to an option with sub-options
    ('vm', {'name': 'vft-hd-scalar', 'cpu': 2}, "argument 'cpu' is of type int"),
    ('vm', {'name': 'vft-hd-scalar', 'graphics': True}, "argument 'graphics' is of type bool"),
    ('vm', {'name': 'vft-hd-scalar', 'cpu': [1]}, "argument 'cpu' is of type list"),
    ('network', {'name': 'vft-hd-scalar', 'ipv4': 1.5}, "argument 'ipv4' is of type float"),
    ('network', {'name': 'vft-hd-scalar', 'ipv4': {'address': '10.251.0.1', 'dhcp_range': 5}},
     "argument 'dhcp_range' is of type int found in 'ipv4'"),
    ('fleet', {'vms': [{'name': 'vft-hd-scalar', 'cpu': 2}]}, 'vms[0]: cpu must be a dict'),
    ('storage_pool', {'name': 'vft-hd-scalar', 'source': 1.5}, "argument 'source' is of type float"),
    ('storage_pool', {'name': 'vft-hd-scalar', 'type': 'iscsi', 'source': {'hosts': ['h'], 'iqn': 'i', 'auth': 1}},
     "argument 'auth' is of type int found in 'source'"),
    # a NUL character reached libvirt-python, which raised ValueError
    ('vm_info', {'uri': 'qemu:///system\x00'}, 'is not a libvirt URI'),
    ('storage_pool_info', {'name': 'vft-hd-nul\x00'}, 'libvirt cannot take the value given'),
    # ssl raised ValueError (embedded null byte) for a NUL in the vSphere CA file's path
    ('vm_info', {'hostname': '127.0.0.1', 'username': 'u', 'password': 'vft-hd-pw', 'ca_path': '/nonexistent/ca\x00.pem'},
     'ca_path: contains a control character'),
    ('network', {'name': 'vft-hd-nul', 'hostname': '127.0.0.1\n', 'username': 'u', 'password': 'vft-hd-pw', 'host': 'h'},
     'hostname: contains a control character'),
    # lxml raised ValueError for a control character in a value no check covered
    ('vm', {'name': 'vft-hd-nul', 'arch': 'x86_64\x00'}, 'arch: contains the control character U+0000'),
    ('vm', {'name': 'vft-hd-nul', 'cpu': {'model': 'qemu64\x01'}}, 'cpu.model: contains the control character'),
    # "..", "/" passed the check that a host interface exists (/sys/class/net/<name>)
    ('vm', {'name': 'vft-hd-br', 'interfaces': [{'bridge': '../../../tmp'}]}, 'interfaces[0].bridge'),
    # a trailing newline passed the name and MAC regular expressions ("$" matches before it)
    ('vm', {'name': 'vft-hd-nl\n'}, 'is not a valid name'),
    ('network', {'name': 'vft-hd-nl\n'}, 'is not a valid name'),
    ('vm', {'name': 'vft-hd-nl', 'interfaces': [{'network': 'x', 'mac': '52:54:00:00:00:01\n'}]},
     'interfaces[0].mac'),
    # libvirt adds <boot dev='hd'/> to a VM without a boot order: boot: [] rewrote the VM on every run
    ('vm', {'name': 'vft-hd-nl', 'boot': []}, 'boot: needs at least one device'),
    ('storage_pool', {'name': 'vft-hd-nl\n', 'type': 'dir', 'path': '/nonexistent/vft'}, 'is not a valid pool name'),
    ('volume', {'pool': 'vft-hd-nl\n', 'name': 'x.img', 'capacity': 1}, 'is not a valid pool name'),
    ('volume', {'pool': 'vft-hd-nl', 'name': 'x.img\n', 'capacity': 1}, 'is not a valid volume name'),
])
def test_found_by_fuzzing_clear_failures(runner, conn, module, args, fragment):
    assert _made(conn, module, args) == [], 'left over from an earlier run: remove it first'
    result = _run(runner, module, args)
    assert result['failed'] and fragment in result['msg'], result
    assert _made(conn, module, args) == []


def test_a_logical_pool_path_other_than_dev_vg_is_refused_not_rewritten_forever(runner, conn):
    """Found by the 1000-set run: libvirt sets a logical pool's path to /dev/<vg>, so `path: /var/lib/x` reported
    "updated: path" on every run. Defined only (no build): no volume group is needed."""
    name = 'vft-hd-lvm-%d' % os.getpid()
    base = {'name': name, 'type': 'logical', 'source': {'name': 'vft-hd-vg'}}
    try:
        r = _run(runner, 'storage_pool', dict(base, path='/var/lib/virtfleet-test/vft-hd-lvm'))
        assert r['failed'] and r['msg'].startswith('path: the target path of a logical pool is /dev/<volume group>, '
                                                   'here /dev/vft-hd-vg'), r
        assert name not in [p.name() for p in conn.listAllStoragePools(0)]
        for args in (base, dict(base, path='/dev/vft-hd-vg'), dict(base, path='/dev/vft-hd-vg')):
            r = _run(runner, 'storage_pool', args)
            assert not r.get('failed') and r['pool']['spec']['path'] == '/dev/vft-hd-vg', r
            assert r['changed'] == (args is base), r
    finally:
        for pool in conn.listAllStoragePools(0):
            if pool.name() == name:
                pool.undefine()


def test_a_set_that_fails_validation_never_reaches_libvirt(runner, conn, fuzz_run):
    """vm #700 of the 1000-set run looked like a failing call that changed a pool. It fails in argument validation
    before any connection (here the socket does not even exist), so nothing can change; what changed the pool was a
    libvirtd restart by another test run, which the harness now notices (snapshots.daemon_id)."""
    args = {'name': 'vft-hd-700', 'uri': 'qemu+unix:///system?socket=/nonexistent/vft-hd.sock', 'memory': '64M',
            'disks': [{'pool': 'vft-hd-nopool', 'volume': 'v2.img', 'target': 'sda', 'bus': 'usb'},
                      {'pool': 'vft-hd-pool', 'volume': 'v2.img', 'target': 'xvda', 'format': 'qcow2'},
                      {'path': '/nonexistent/a.img', 'device': 'cdrom', 'target': 'sda', 'bus': 'virtio'}]}
    pools = sorted(p.name() for p in conn.listAllStoragePools(0))
    daemon = snapshots.daemon_id()
    assert daemon is not None, 'no libvirtd found by its pid file /run/libvirtd.pid'
    r = _run(runner, 'vm', args)
    assert snapshots.daemon_id() == daemon, 'libvirtd was restarted during the call: the checks below prove nothing'
    assert r['failed'] and not r['changed'] and r['msg'] == 'disks: two disks have the same target: sda, sda, xvda', r
    assert _made(conn, 'vm', args) == []
    # no pool appeared (the background fuzz run's own vft-fz-<stem>-<run id>- pools come and go meanwhile)
    assert [p for p in sorted(p.name() for p in conn.listAllStoragePools(0)) if (p not in pools or p in (
        'vft-hd-nopool', 'vft-hd-pool')) and not (fuzz_run and fuzz_run.mine(p))] == []


def test_daemon_id_tells_a_restarted_daemon_from_the_same_one(tmp_path):
    """What the harness uses to notice a libvirtd restart during a call (fuzz.call: captured before, compared
    after): the same daemon read twice is the same identity; a daemon stopped and started again under the
    same pid file is another one, even if it got the same pid (the start time differs). A small stand-in daemon
    (sleep) with a pid file of its own: the system libvirtd is not restarted here (the fault test
    test_hardening_faults.py::test_libvirtd_killed_during_fleet_converge does, and checks the same)."""
    pidfile = str(tmp_path / 'daemon.pid')
    assert snapshots.daemon_id(pidfile) is None
    identities = []
    for _restart in range(2):
        proc = subprocess.Popen(['sleep', '600'])  # pylint: disable=consider-using-with
        try:
            with open(pidfile, 'w') as handle:
                handle.write('%d\n' % proc.pid)
            first = snapshots.daemon_id(pidfile)
            time.sleep(0.05)
            assert first is not None and first[0] == proc.pid and snapshots.daemon_id(pidfile) == first
            identities.append(first)
        finally:
            proc.kill()
            proc.wait()
        assert snapshots.daemon_id(pidfile) is None  # stale pid file: no daemon
        time.sleep(0.05)  # start times are counted in clock ticks (1/100 s)
    # a restart is told apart even when the new daemon gets the old pid: the start times differ
    assert identities[0][1] != identities[1][1], identities


def test_a_number_for_a_dict_option_is_a_message_not_module_failure(ansible):
    """Through ansible-playbook the TypeError showed as MODULE FAILURE with a traceback."""
    r = ansible.task('vm', {'name': 'vft-hd-scalar', 'cpu': 2})
    assert_clean_failure(r, "argument 'cpu' is of type int")
    assert 'exception' not in r or r['exception'] == '(traceback unavailable)', r


@pytest.mark.parametrize('module, extra, fragment', [
    ('storage_pool', {'source': 'ü<&>'}, "argument 'source' is of type str"),
    ('storage_pool', {'type': 'iscsi', 'source': {'hosts': ['h'], 'iqn': 'i', 'auth': 'not key value'}},
     "argument 'auth' is of type str found in 'source'"),
    ('vm', {'cpu': 'x y'}, "argument 'cpu' is of type str"),
    ('vm', {'disks': [{'path': '/nonexistent/vft-hd.img'}, ['/b']]}, "Elements value for option 'disks'"),
    ('network', {'ipv4': 'dhcp_range=x'}, "argument 'dhcp_range' is of type str found in 'ipv4'"),
])
def test_a_value_no_dict_for_a_dict_option_never_shows_the_password(runner, conn, module, extra, fragment):
    """Found by the vSphere storage_pool fuzz target: ansible-core's no_log bookkeeping failed on a string that is
    neither JSON nor key=value (or a list item that is no dict) for an option with sub-options, lost every no_log
    value, and its failure result showed the password in `invocation`."""
    secret = 'vft-hd-Vf0123456789ab-pw'
    args = dict({'name': 'vft-hd-nodict', 'password': secret}, **extra)
    rc, stdout, stderr, _seconds, _timed_out = runner.run(module, args, timeout=120)
    assert secret not in stdout + stderr, stdout + stderr
    result = harness.parse_result(stdout)
    assert rc != 0 and result['failed'] and fragment in result['msg'], result
    assert result['invocation']['module_args']['password'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER', result
    assert _made(conn, module, args) == []


@pytest.mark.parametrize('extra, fragment', [
    # an image reference podman would read as an option
    ({'image': '--privileged'}, 'not an image reference'),
    # subprocess raised ValueError for a NUL character in an argument
    ({'image': 'localhost/x\x00'}, 'NUL character'),
    ({'image': 'localhost/vft-busybox:latest', 'command': ['sleep', '1\x00']}, 'NUL character'),
])
def test_container_arguments_podman_cannot_take_are_refused(runner, podman, podman_path, extra, fragment):
    result = _run(runner, 'container', dict({'name': 'vft-hd-opt', 'podman_path': podman_path}, **extra))
    assert result['failed'] and fragment in result['msg'], result
    assert podman.inspect('vft-hd-opt') is None


def test_moving_a_disk_to_the_virtio_bus_keeps_no_usb_address(runner, conn, guests):
    """Found by fuzzing: usb -> virtio kept <address type='usb'>, and libvirt refused the definition."""
    name, disk, _log = guests.new('bus')
    r = _run(runner, 'vm', {'name': name, 'memory': 32, 'disks': [{'path': disk, 'target': 'vdz', 'bus': 'usb'}]})
    assert r['changed'] and not r.get('failed'), r
    r = _run(runner, 'vm', {'name': name, 'memory': 32, 'disks': [{'path': disk, 'target': 'vdz', 'bus': 'virtio'}]})
    assert not r.get('failed') and r['vm']['spec']['disks'][0]['bus'] == 'virtio', r
    assert "bus='virtio'" in domain_snapshot(conn, name)[0]


@pytest.mark.parametrize('mode', ['host', 'none'])
def test_ports_on_a_host_network_container_are_refused_not_recreated_forever(runner, podman, podman_path,
                                                                             containers, mode):
    """Found by fuzzing: podman drops the port mappings of a container on network host or none, so every run
    given ports recreated it ("updated: ports" on every run; the 1000-set run: networks left out, ports given,
    the container put on network none by an earlier set)."""
    name = containers.new('%sports' % mode)
    base = {'name': name, 'image': 'localhost/vft-busybox:latest', 'podman_path': podman_path}
    r = _run(runner, 'container', dict(base, networks=[mode]))
    assert r['changed'] and not r.get('failed'), r
    before = podman.snapshot(name)
    r = _run(runner, 'container', dict(base, image='localhost/vft-busybox', ports=['42631:80']))
    assert r['failed'] and r['msg'].startswith('ports: a container on network %s publishes no ports' % mode), r
    assert podman.snapshot(name) == before
    r = _run(runner, 'container', dict(base, ports=['42631:80'], networks=['podman']))
    assert r['changed'] and r['container']['spec']['ports'] == ['0.0.0.0:42631:80/tcp'], r
    r = _run(runner, 'container', dict(base, ports=['42631:80'], networks=['podman']))
    assert not r['changed'], r


def test_a_volume_label_podman_would_alter_is_refused_not_recreated_forever(runner, podman, podman_path,
                                                                            containers):
    """Found by fuzzing (container_volume #470): `podman volume create --label` drops a trailing carriage return, so
    a label ending in one made every run report `updated: labels` and recreate the volume. The other labels of that
    set (an escape character, a non-ASCII key) Podman keeps as given: they converge."""
    name = containers.volume_name()
    kept = {'fleet': 'hLehSV\x1b[31mCBcxrL', u'\u00fc': u'\u00e9..;'}
    base = {'name': name, 'podman_path': podman_path}
    r = _run(runner, 'container_volume', dict(base, labels=dict(kept, **{'org.x/y': u'/\u65e5\u672c${HOME}..\r'})))
    assert r['failed'] and r['msg'].startswith('labels.org.x/y: ends in a carriage return'), r
    assert podman.run('volume', 'exists', name, check=False).returncode == 1
    r = _run(runner, 'container_volume', dict(base, labels=kept))
    assert r['changed'] and not r.get('failed'), r
    created = podman.run('volume', 'inspect', name).stdout
    assert json.loads(created)[0]['Labels'] == kept
    r = _run(runner, 'container_volume', dict(base, labels=kept))
    assert not r['changed'] and not r.get('failed'), r
    assert podman.run('volume', 'inspect', name).stdout == created


# -- the harness itself ---------------------------------------------------------------------------------------

# Values the playbook writer once turned into a different value or into YAML Ansible refused: "!unsafe" scalars
# are resolved as if plain by ansible-core 2.19 ("off" became False, "0x10" 16, "=" and "<<" failed to load); a
# key past 1024 characters broke the implicit-key form (fleet #700 of the 1000-set run: "yml:5:27", no result).
TRICKY_VALUES = ['off', 'yes', 'null', '~', '0x10', '1e3', '=', '<<', '2026-11-26', '{{ 7 * 7 }}', '{% raw %}',
                 '{# x #}', '{', '}: x', '"\'', '- x', '? x', '!unsafe x', '&a *a', '#x', '', ' ', '\x00\x7f\x85',
                 '\u2028\ufeff é 🚀', 'x' * 4097, 1e300, -1e-05, 1.5, 2 ** 70, -3, True, None, [], {}]


def test_the_playbook_writer_gives_ansible_exactly_the_values_generated():
    from ansible.parsing.dataloader import DataLoader  # pylint: disable=import-outside-toplevel
    args = {'vms': [{'name': 'vft-fz-x', 'tags': dict(('k%d' % i, v) for i, v in enumerate(TRICKY_VALUES))}],
            'values': TRICKY_VALUES}
    args.update(('key-%d-' % i + str(v)[:5000], i) for i, v in enumerate(TRICKY_VALUES) if isinstance(v, str) and v)
    keys = ', '.join(fuzz.yaml_key(k) + fuzz.ansible_yaml(v) for k, v in args.items())
    loaded = DataLoader().load('- hosts: localhost\n  tasks:\n    - virtfleet.virt.fleet: {%s}\n' % keys)
    got = loaded[0]['tasks'][0]['virtfleet.virt.fleet']
    # JSON tells apart what YAML could confuse: "off" and false, "0x10" and 16, "1e+300" and 1e+300
    assert json.dumps(got, sort_keys=True) == json.dumps(args, sort_keys=True)


def test_a_fuzzed_set_through_ansible_playbook_reaches_the_module_untemplated(workdir, collections_path, venv_bin):
    """The playbook path gives the module the very strings of the set (check mode: nothing is defined)."""
    runner = fuzz.PlaybookRunner(os.path.join(workdir, 'playbook-writer'), os.path.join(venv_bin, 'python'),
                                 collections_path)
    tags = {'eq': '=', 'merge': '<<', 'off': 'off', 'hex': '0x10', 'jinja': '{{ 7 * 7 }}', 'x' * 1100: 'long key'}
    result, output, _seconds, timed_out, rc = runner.run('vm', {'name': 'vft-fz-writer', 'tags': tags},
                                                         check_mode=True)
    assert not timed_out and result is not None, output[-2000:]
    assert result['changed'] and not result.get('failed') and result['vm']['spec']['tags'] == tags, result
    assert rc == 0, output[-2000:]


def test_the_playbook_path_judges_the_exit_status_of_ansible_playbook(workdir, collections_path, venv_bin):
    """rc on the playbook path is ansible-playbook's own exit status, held against the task's failed flag: 2 for
    a failed task, 0 for one that succeeded; a status that does not match the flag is a problem."""
    runner = fuzz.PlaybookRunner(os.path.join(workdir, 'playbook-rc'), os.path.join(venv_bin, 'python'),
                                 collections_path)
    failed, output, _seconds, timed_out, rc = runner.run('vm', {'name': 'vft-fz-rc', 'cpu': 2}, check_mode=True)
    assert not timed_out and failed['failed'] and rc == 2, (rc, output[-2000:])
    ok, output, _seconds, timed_out, rc_ok = runner.run('vm', {'name': 'vft-fz-rc'}, check_mode=True)
    assert not timed_out and not ok.get('failed') and rc_ok == 0, (rc_ok, output[-2000:])
    empty = {'libvirt': {}}
    assert fuzz.judge_playbook(failed, '', False, empty, empty, True, False, [], rc) == ('failed', [])
    assert fuzz.judge_playbook(ok, '', False, empty, empty, True, False, [], rc_ok) == ('ok', [])
    for result, wrong in ((failed, 0), (failed, 1), (ok, 2)):
        _outcome, problems = fuzz.judge_playbook(result, '', False, empty, empty, True, False, [], wrong)
        assert [p for p in problems if p.startswith('rc:')], (wrong, problems)


# -- the quick slice, judged last: fuzz_run started it in the background before the tests above ---------------

@pytest.mark.parametrize('target', harness.TARGETS)
def test_fuzzed_argument_sets_break_no_invariant(fuzz_slice, target):
    result = fuzz_slice.get(target)
    assert result is not None and not result.get('error'), result
    records = result['records']
    assert len(records) == PER_MODULE, 'hypothesis ran %d of %d sets' % (len(records), PER_MODULE)
    # the way Ansible runs it: a module's first set through ansible-playbook, an inventory source through
    # ansible-inventory (every set)
    via = 'inventory' if target.startswith('inventory@') else 'playbook'
    assert any(r['via'] == via for r in records), 'no set went through ansible-%s' % via
    bad = [r for r in records if r['problems']]
    assert not bad, '\n'.join(_show(r) for r in bad)


def test_the_fuzz_run_left_nothing_behind_in_libvirt(fuzz_slice, conn):
    """Every target removed everything with its prefix (vft-fz-<stem>-<run id>-)."""
    mine = '-%s-' % fuzz_slice['run_id']
    leftovers = [d.name() for d in conn.listAllDomains(0)] + [n.name() for n in conn.listAllNetworks(0)]
    leftovers += [p.name() for p in conn.listAllStoragePools(0)]
    assert not [n for n in leftovers if n.startswith('vft-fz-') and mine in n]


def test_the_fuzz_run_left_nothing_behind_in_podman(fuzz_slice, podman_path):
    mine = '-%s-' % fuzz_slice['run_id']
    leftovers = []
    for what in (['ps', '--all', '--format', '{{.Names}}'], ['volume', 'ls', '--format', '{{.Name}}'],
                 ['network', 'ls', '--format', '{{.Name}}']):
        proc = subprocess.run([podman_path] + what, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        leftovers += proc.stdout.split()
    assert not [n for n in leftovers if n.startswith('vft-fz-') and mine in n]

"""The vm_fleet role across several simulated hypervisors at once (tests/env/nhost-up.sh): the per-host form (one
play host per hypervisor, ``vm_fleet_uri`` from the inventory) converges every hypervisor in the same task, in
parallel through Ansible's forks; a re-run changes nothing; the list form (``vm_fleet_hypervisors`` on one play host)
sees the same fleet as converged; under ``serial`` a new VM is made once, on a hypervisor of the batch that runs.

Concurrency is observed, never timed: a test-only callback records when each host's run of a task starts and ends
(as the strategy reports them), and every host's run must start before any host's run ends."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid

import libvirt
import pytest

from conftest import ENV, PREFIX, _remove_domain

HOSTS = 3
SHARED = os.environ.get('VIRTFLEET_NHOST_SHARED', '/var/lib/virtfleet-test/nhost-shared')
# cli; hlt; jmp back: a guest that halts its vCPU (bench/fleet.py's idle guest; costs no CPU once booted)
IDLE_BOOT_SECTOR = b'\xfa\xf4\xeb\xfd'.ljust(510, b'\0') + b'\x55\xaa'
CONVERGE = 'Converge the fleet, one batch at a time'

TIMING_CALLBACK = '''
from __future__ import annotations
import json, os, time
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    """Appends {host, task, event, t} per host start/end of every task to $VFT_TIMING_FILE."""
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'vft_timing'
    CALLBACK_NEEDS_ENABLED = True

    def _log(self, host, task, event):
        with open(os.environ['VFT_TIMING_FILE'], 'a') as handle:
            handle.write(json.dumps({'host': host, 'task': task, 'event': event, 't': time.time()}) + '\\n')

    def v2_runner_on_start(self, host, task):
        self._log(host.get_name(), task.get_name(), 'start')

    def _end(self, result, *_args, **_kwargs):
        self._log(result._host.get_name(), result._task.get_name(), 'end')

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = v2_runner_on_unreachable = _end
'''


@pytest.fixture(scope='module')
def nhost():
    """The simulated hypervisors nh1..nhHOSTS: {name: unix-socket URI}. Stopped at the end when this module started
    them (unless VIRTFLEET_KEEP_ENV or VIRTFLEET_KEEP_NHOST is set)."""
    base = os.environ.get('VIRTFLEET_NHOST_DIR', '/var/lib/virtfleet-test/nhost')
    was_up = os.path.exists(os.path.join(base, 'nh%d' % HOSTS, 'holder.pid'))
    out = subprocess.run(['bash', os.path.join(ENV, 'nhost-up.sh'), str(HOSTS)], check=True, capture_output=True,
                         text=True).stdout
    hosts = dict(line.split()[:2] for line in out.strip().splitlines())
    yield hosts
    if not was_up and not (os.environ.get('VIRTFLEET_KEEP_ENV') or os.environ.get('VIRTFLEET_KEEP_NHOST')):
        subprocess.run(['bash', os.path.join(ENV, 'nhost-down.sh')], check=False, capture_output=True)


class Fleet:
    """A fleet on the simulated hypervisors: its VMs' disks, the inventory, the play, runs, reading back."""

    def __init__(self, hosts, workdir, venv_bin):
        self.hosts = hosts
        self.suffix = uuid.uuid4().hex[:6]
        self.name = PREFIX + 'nhv-' + self.suffix
        self.dir = os.path.join(SHARED, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.conns = dict((host, libvirt.open(uri)) for host, uri in hosts.items())
        self.work = os.path.join(workdir, self.name)
        os.makedirs(self.work)
        self.inventory = os.path.join(self.work, 'hypervisors.yml')
        self.python = python = os.path.join(venv_bin, 'python')
        with open(self.inventory, 'w') as handle:
            json.dump({'hypervisors': {'hosts': dict(
                (host, {'ansible_connection': 'local', 'ansible_python_interpreter': python, 'vm_fleet_uri': uri})
                for host, uri in hosts.items())}}, handle)
        with open(os.path.join(self.work, 'vft_timing.py'), 'w') as handle:
            handle.write(TIMING_CALLBACK)
        self.timing = os.path.join(self.work, 'timing.jsonl')

    def vm(self, stem, state, **extra):
        name = '%s-%s' % (self.name, stem)
        with open(os.path.join(self.dir, name + '.img'), 'wb') as handle:
            handle.write(IDLE_BOOT_SECTOR)
        return dict({'name': name, 'state': state, 'memory': 32, 'disks': [{'path': os.path.join(self.dir, name + '.img'),
                                                                            'format': 'raw'}]}, **extra)

    def play(self, items, hosts='hypervisors', forks=10, serial=None, list_form=False):
        """Run the role; returns ({host: changed count} of the recap, output). The timing file is reset."""
        play = {'name': 'The fleet', 'hosts': hosts, 'gather_facts': False,
                'tasks': [{'name': 'Run vm_fleet', 'ansible.builtin.include_role': {'name': 'virtfleet.virt.vm_fleet'}}],
                'vars': {'vm_fleet_name': self.name, 'vm_fleet_vms': items, 'vm_fleet_batch_size': 20}}
        if serial:
            play['serial'] = serial
        if list_form:
            play['vars']['vm_fleet_hypervisors'] = [{'name': h, 'uri': u} for h, u in sorted(self.hosts.items())]
        path = os.path.join(self.work, 'play-%s.yml' % uuid.uuid4().hex[:6])
        with open(path, 'w') as handle:
            json.dump([play], handle)
        if os.path.exists(self.timing):
            os.unlink(self.timing)
        return path

    def run(self, ansible, path, forks=10, inventory=None):
        proc = ansible.playbook(path, '-i', inventory or self.inventory, '-f', str(forks), env={
            'VFT_TIMING_FILE': self.timing,
            'ANSIBLE_CALLBACK_PLUGINS': ansible.env['ANSIBLE_CALLBACK_PLUGINS'] + os.pathsep + self.work,
            'ANSIBLE_CALLBACKS_ENABLED': 'vft_result,vft_timing'})
        recap = dict((host, int(changed)) for host, changed in re.findall(
            r'^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0', proc.stdout, re.M))
        assert recap, proc.stdout
        return recap, proc.stdout

    def spans(self, task):
        """{host: (start, end)} of each host's run of ``task`` (the last one when it ran more than once)."""
        spans = {}
        with open(self.timing) as handle:
            for line in handle:
                event = json.loads(line)
                if event['task'].endswith(task):
                    start, end = spans.get(event['host'], (None, None))
                    spans[event['host']] = (event['t'], None) if event['event'] == 'start' else (start, event['t'])
        return spans

    def where(self):
        """{VM name: (host, state)} of the fleet's VMs on every hypervisor (a VM on two of them is listed twice)."""
        found = []
        for host, conn in sorted(self.conns.items()):
            for dom in conn.listAllDomains(0):
                if dom.name().startswith(self.name):
                    found.append((dom.name(), host, dom.state()[0]))
        return sorted(found)

    def cleanup(self):
        for conn in self.conns.values():
            for dom in conn.listAllDomains(0):
                if dom.name().startswith(self.name):
                    _remove_domain(conn, dom.name())
            conn.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def fleet(nhost, workdir, venv_bin):
    box = Fleet(nhost, workdir, venv_bin)
    yield box
    box.cleanup()


def assert_concurrent(spans, hosts):
    """Every host ran the task, and every host's run started before any host's run ended."""
    assert sorted(spans) == sorted(hosts) and all(end is not None for _start, end in spans.values()), spans
    last_start = max(start for start, _end in spans.values())
    first_end = min(end for _start, end in spans.values())
    assert last_start < first_end, 'the hosts ran one after another: %s' % dict(
        (host, '%.3f-%.3f' % span) for host, span in sorted(spans.items()))


def test_fleet_across_hypervisors_converges_them_at_once(ansible, fleet):
    # one running VM per hypervisor (anti-affinity), three stopped ones placed by free memory
    items = [fleet.vm('web%d' % i, 'running', anti_affinity='web') for i in range(1, HOSTS + 1)]
    items += [fleet.vm('spare%d' % i, 'stopped') for i in range(1, HOSTS + 1)]
    play = fleet.play(items)
    recap, out = fleet.run(ansible, play)
    assert recap == dict((host, 1) for host in fleet.hosts), out  # each hypervisor's converge task changed
    assert_concurrent(fleet.spans(CONVERGE), fleet.hosts)
    found = fleet.where()
    assert sorted(name for name, _host, _state in found) == sorted(item['name'] for item in items)  # each VM once
    running = [(name, host) for name, host, state in found if state == libvirt.VIR_DOMAIN_RUNNING]
    assert sorted(host for _name, host in running) == sorted(fleet.hosts), found  # one web VM per hypervisor
    assert sorted(name for name, _host in running) == sorted(item['name'] for item in items[:HOSTS])

    # the re-run: nothing changes, every hypervisor is still read and converged at once, hosts not read again
    recap, out = fleet.run(ansible, play)
    assert recap == dict((host, 0) for host in fleet.hosts), out
    assert fleet.where() == found
    assert_concurrent(fleet.spans(CONVERGE), fleet.hosts)
    assert_concurrent(fleet.spans('Read the VMs already on each hypervisor'), fleet.hosts)
    assert not [s for s in fleet.spans("Read each hypervisor's free memory").values() if s[1] - s[0] > 1], out
    assert 'skipping: [nh1]' in out or 'skipping: [nh1] =>' in out, out  # host_info skipped: nothing to place

    # the list form on one play host sees the same fleet, converged: nothing changes either
    local = os.path.join(fleet.work, 'local.yml')
    with open(local, 'w') as handle:
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % fleet.python)
    recap, out = fleet.run(ansible, fleet.play(items, hosts='localhost', list_form=True), inventory=local)
    assert recap == {'localhost': 0}, out
    assert out.count('(item=nh') >= HOSTS, out  # every hypervisor a loop item
    assert fleet.where() == found


def test_serial_batches_place_new_vms_once(ansible, fleet):
    items = [fleet.vm('web%d' % i, 'stopped', anti_affinity='web') for i in range(1, HOSTS + 1)]
    play = fleet.play(items)
    fleet.run(ansible, play)
    found = fleet.where()
    # one hypervisor at a time: a VM added now is made once, on the first batch's hypervisor (nh1); the others
    # still see every VM (read from outside their batch), so none is placed twice
    items.append(fleet.vm('extra', 'stopped'))
    recap, out = fleet.run(ansible, fleet.play(items, serial=1))
    assert recap == {'nh1': 1, 'nh2': 0, 'nh3': 0}, out
    after = fleet.where()
    assert sorted(after) == sorted(found + [(items[-1]['name'], 'nh1', libvirt.VIR_DOMAIN_SHUTOFF)]), after
    recap, out = fleet.run(ansible, fleet.play(items, serial=1))
    assert recap == {'nh1': 0, 'nh2': 0, 'nh3': 0}, out

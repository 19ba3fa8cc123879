"""Concurrent runs (issue 8): two ansible-playbook runs converge overlapping VMs, a network and volumes
at the same moment.

Both must finish without a failed task, and the hypervisor must be consistent afterwards: each VM,
the network and each volume exist once, with the spec both runs asked for, and a later run has
nothing left to change. Races ("already exists", "already running", an update another run has just
made) are reconcile outcomes, reported as warnings, not crashes (``_reconcile.ensure``; the VM and
network drivers define new objects with a UUID of their own so that a racing definition fails
"already exists" instead of being merged into the other run's).
"""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
import uuid

import pytest

from conftest import PREFIX, URI

libvirt = pytest.importorskip('libvirt')


@pytest.fixture
def network_name(conn):
    name = '%shd-net-%s' % (PREFIX, uuid.uuid4().hex[:6])
    yield name
    try:
        net = conn.networkLookupByName(name)
    except libvirt.libvirtError:
        return
    for step in (net.destroy, net.undefine):
        try:
            step()
        except libvirt.libvirtError:
            pass


def _play(name, tasks, registered, out, ready, gate):
    """The tasks, after a barrier: the play says it is ready, then waits until the test opens the gate (so
    that two plays reach their first task together, whatever their start-up took)."""
    content = '{{ %s | to_json }}' % ('[' + ', '.join(registered) + ']')
    barrier = [{'name': 'ready', 'ansible.builtin.file': {'path': ready, 'state': 'touch'}, 'changed_when': False},
               {'name': 'wait for the gate', 'ansible.builtin.shell': 'while [ ! -e %s ]; do sleep 0.02; done' % gate,
                'changed_when': False, 'timeout': 300}]
    tasks = barrier + tasks + [{'name': 'save the results', 'ansible.builtin.copy': {'content': content, 'dest': out},
                                'check_mode': False, 'diff': False, 'changed_when': False}]
    return [{'hosts': 'localhost', 'gather_facts': False, 'name': name, 'tasks': tasks}]


def _write(workdir, stem, play):
    path = os.path.join(workdir, '%s-%s.yml' % (stem, uuid.uuid4().hex[:6]))
    with open(path, 'w') as handle:
        json.dump(play, handle)
    return path


def _run_together(ansible, plays, ready, gate):
    """Start the playbooks, open the gate once all are at their barrier; return ``[(rc, output)]``."""
    procs = [subprocess.Popen([os.path.join(ansible.venv_bin, 'ansible-playbook'), '-i', ansible.inventory, path],
                              env=ansible.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for path in plays]
    deadline = time.monotonic() + 300
    while not all(os.path.exists(path) for path in ready):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), 'a run never reached the barrier'
        time.sleep(0.02)
    with open(gate, 'w'):
        pass
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    return [(proc.returncode, output) for proc, output in zip(procs, outputs)]


def _results(path):
    """Every module result a play registered (loops give one per item)."""
    with open(path) as handle:
        registered = json.load(handle)
    found = []
    for result in registered:
        found.extend(result['results'] if 'results' in result and 'summary' not in result else [result])
    return found


def test_two_runs_converge_overlapping_objects_at_once(ansible, conn, guests, storage, network_name, workdir):
    octet = random.randint(1, 250)
    pool, pool_path = storage.dir_pool('conc')
    vms = [guests.new('conc') for index in range(4)]

    def vm(index, memory=32):
        name, disk, log = vms[index]
        return guests.spec(name, disk, log, state='running', memory=memory, interfaces=[{'network': network_name}])

    def network(hosts=()):
        return {'name': network_name, 'mode': 'isolated', 'state': 'active',
                'ipv4': {'address': '10.252.%d.1' % octet, 'prefix': 24,
                         'dhcp_range': {'start': '10.252.%d.100' % octet, 'end': '10.252.%d.150' % octet}},
                'dhcp_hosts': [{'mac': '52:54:00:fc:00:%02x' % i, 'ip': '10.252.%d.%d' % (octet, 10 + i)}
                               for i in hosts]}

    def volumes(names, capacity):
        return {'virtfleet.virt.volume': {'pool': pool, 'name': '{{ item }}', 'format': 'qcow2',
                                          'capacity': capacity}, 'loop': list(names), 'register': 'vols'}

    def plays(memory, hosts, capacity, gate):
        ready = [gate + '.ready-a', gate + '.ready-b']
        first = _play('fleet run', [
            {'virtfleet.virt.network': network(hosts), 'register': 'net'},
            volumes(['shared-a.qcow2', 'shared-b.qcow2', 'a-only.qcow2'], capacity),
            {'virtfleet.virt.fleet': {'vms': [vm(0, memory), vm(1, memory), vm(2, memory)], 'workers': 3},
             'register': 'fleet'},
        ], ['net', 'vols', 'fleet'], os.path.join(workdir, 'conc-a.json'), ready[0], gate)
        second = _play('vm task run', [
            {'virtfleet.virt.network': network(hosts), 'register': 'net'},
            volumes(['shared-b.qcow2', 'shared-a.qcow2', 'b-only.qcow2'], capacity),
            {'virtfleet.virt.vm': vm(2, memory), 'register': 'vm2'},
            {'virtfleet.virt.vm': vm(1, memory), 'register': 'vm1'},
            {'virtfleet.virt.vm': vm(3, memory), 'register': 'vm3'},
        ], ['net', 'vols', 'vm2', 'vm1', 'vm3'], os.path.join(workdir, 'conc-b.json'), ready[1], gate)
        return (_write(workdir, 'conc-a', first), _write(workdir, 'conc-b', second)), ready

    def gate_path():
        return os.path.join(workdir, 'gate-%s' % uuid.uuid4().hex[:6])

    warnings = []
    for memory, hosts, capacity in ((32, (1, 2), '16MiB'), (48, (1, 2, 3, 4), '32MiB')):
        gate = gate_path()
        paths, ready = plays(memory, hosts, capacity, gate)
        outputs = _run_together(ansible, paths, ready, gate)
        for rc, output in outputs:
            assert rc == 0, output
            assert 'Traceback' not in output and 'MODULE FAILURE' not in output, output
        for path in ('conc-a.json', 'conc-b.json'):
            for result in _results(os.path.join(workdir, path)):
                assert not result.get('failed'), result
                warnings.extend(w for w in result.get('warnings', []) if 'someone else' in w)

        # one of each, with the spec both runs asked for
        names = [name for name, _disk, _log in vms]
        domains = [d for d in conn.listAllDomains(0) if d.name() in names]
        assert sorted(d.name() for d in domains) == sorted(names)
        assert len(set(d.UUIDString() for d in domains)) == 4
        for dom in domains:
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            assert "<currentMemory unit='KiB'>%d</currentMemory>" % (memory * 1024) in xml, xml
            assert xml.count('<interface ') == 1 and xml.count('<disk ') == 1, xml
            assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        nets = [n for n in conn.listAllNetworks(0) if n.name() == network_name]
        assert len(nets) == 1 and nets[0].isActive()
        net_xml = nets[0].XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)
        for i in hosts:
            assert net_xml.count("mac='52:54:00:fc:00:%02x'" % i) == 1, net_xml
        vols = dict((v.name(), v.info()[1]) for v in conn.storagePoolLookupByName(pool).listAllVolumes(0))
        size = int(capacity[:-3]) * 1024 * 1024
        expected = ('shared-a.qcow2', 'shared-b.qcow2', 'a-only.qcow2', 'b-only.qcow2')
        assert vols == dict((n, size) for n in expected), vols
        assert sorted(os.listdir(pool_path)) == sorted(vols)

    # converged: the same play again changes nothing
    gate = gate_path()
    with open(gate, 'w'):
        pass
    (first, _second), _ready = plays(48, (1, 2, 3, 4), '32MiB', gate)
    proc = ansible.playbook(first)
    assert 'changed=0' in proc.stdout and 'failed=0' in proc.stdout, proc.stdout
    record = os.environ.get('VIRTFLEET_HARDENING_OUT')
    if record:
        os.makedirs(record, exist_ok=True)
        path = os.path.join(record, 'concurrency.json')
        examples = sorted(set(re.sub(r'^\S+: ', '', re.sub(r'vft-[\w.-]+', '<name>', w)) for w in warnings))
        with open(path, 'w') as handle:
            json.dump({'rounds': 2, 'race_warnings': len(warnings), 'examples': examples[:6], 'uri': URI}, handle,
                      indent=1)

"""The host_maintenance role through playbooks/drain_host.yml, on the two simulated hosts of
tests/env/twohost-up.sh (no Molecule): drain hv1 to hv2, fail safe, idempotent, undrain."""
from __future__ import annotations

import json
import os
import re
import uuid

import libvirt

from conftest import PREFIX, REPO, _remove_domain, serial_ticks, wait_new_ticks, wait_ticks

PLAYBOOK = os.path.join(REPO, 'playbooks', 'drain_host.yml')


def _recap(stdout):
    """changed/failed counts of localhost from the PLAY RECAP."""
    match = re.search(r'localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', stdout)
    assert match, stdout
    return {'ok': int(match.group(1)), 'changed': int(match.group(2)), 'failed': int(match.group(4))}


class Drain:
    def __init__(self, ansible, twohost, workdir, venv_bin):
        self.ansible = ansible
        self.markers = dict((name, os.path.join(host.base, 'lib', 'virtfleet-maintenance'))
                            for name, host in twohost.hosts.items())
        self.clear()
        self.inventory = os.path.join(workdir, 'drain-inventory.ini')
        with open(self.inventory, 'w') as handle:
            for name in twohost.hosts:
                # the maintenance mark is a file "on" each hypervisor: here, in its private directory
                handle.write('%s ansible_connection=local ansible_python_interpreter=%s\n'
                             % (name, os.path.join(venv_bin, 'python')))
        self.vars = os.path.join(workdir, 'drain-vars.json')
        with open(self.vars, 'w') as handle:
            json.dump({'host_maintenance_hypervisors': [
                {'name': name, 'uri': host.uri, 'migration_uri': host.tcp_uri, 'marker': self.markers[name]}
                for name, host in sorted(twohost.hosts.items())],
                # the shared directory is a local file system libvirt cannot see as shared
                'host_maintenance_migrate_options': {'unsafe': True},
                'host_maintenance_parallel': 2, 'host_maintenance_timeout': 300}, handle)

    def clear(self):
        for marker in self.markers.values():
            if os.path.exists(marker):
                os.unlink(marker)

    def run(self, host, action='drain'):
        proc = self.ansible.playbook(PLAYBOOK, '-i', self.inventory, '-e', '@' + self.vars,
                                     '-e', 'host_maintenance_host=%s host_maintenance_action=%s' % (host, action),
                                     check=False)
        return proc.returncode, self.ansible.last_stdout


def _names(host):
    return sorted(d.name() for d in host.conn.listAllDomains(0))


def _start_from_empty_hosts(twohost):
    """A drain moves every VM of the host, so this test needs both hosts without VMs: an earlier test that
    failed before its cleanup (or a killed run) may have left some. Its own precondition, checked here."""
    for host in twohost.hosts.values():
        for name in _names(host):
            if name.startswith(PREFIX):
                print('removing leftover VM %s from %s' % (name, host.name))
                _remove_domain(host.conn, name)
    for host in twohost.hosts.values():
        assert _names(host) == [], 'VMs on %s that this test did not create and cannot remove: %s' % (
            host.name, _names(host))


def test_drain_and_undrain(ansible, twohost, sim_guests, workdir, venv_bin):
    hv1, hv2 = twohost['hv1'], twohost['hv2']
    _start_from_empty_hosts(twohost)
    drain = Drain(ansible, twohost, workdir, venv_bin)
    try:
        _drain_and_undrain(drain, hv1, hv2, sim_guests)
    finally:
        drain.clear()


def _drain_and_undrain(drain, hv1, hv2, sim_guests):
    running = [sim_guests.new('hv1', storage='shared', stem='drain') for _index in range(2)]
    stopped = sim_guests.new('hv1', storage='shared', start=False, stem='drain')
    ours = sorted(g.name for g in running + [stopped])
    # this one cannot move: its network exists on hv1 only
    suffix = uuid.uuid4().hex[:6]
    net_name = 'vft-drainnet-' + suffix
    net = hv1.conn.networkDefineXML("<network><name>%s</name><bridge name='vftdr%s' stp='off'/></network>"
                                    % (net_name, suffix))
    net.create()
    try:
        stuck = sim_guests.new('hv1', storage='shared', network=net_name, stem='drain')
        assert _names(hv1) == sorted(ours + [stuck.name]) and _names(hv2) == []
        before = dict((g.name, wait_ticks(g.log)) for g in running + [stuck])

        # 1. drain: the movable VMs leave, the stuck one stays running and is reported, the play fails
        rc, out = drain.run('hv1')
        assert rc != 0, out
        assert 'hv1 is marked in maintenance but not drained' in out and stuck.name in out
        assert ('%s: pre-checks failed for migrating VM %s' % (stuck.name, stuck.name)) in out, 'the failure names it'
        assert 'network %s, which the VM uses, does not exist on the destination' % net_name in out
        assert os.path.exists(drain.markers['hv1']) and not os.path.exists(drain.markers['hv2'])
        for guest in running:
            assert hv2.domain(guest.name).state()[0] == libvirt.VIR_DOMAIN_RUNNING
            assert hv1.domain(guest.name) is None
            wait_new_ticks(guest.log, 3, before[guest.name])
        assert hv2.domain(stopped.name).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF and hv1.domain(stopped.name) is None
        assert hv1.domain(stuck.name).state()[0] == libvirt.VIR_DOMAIN_RUNNING
        wait_new_ticks(stuck.log, 3, before[stuck.name])
        for guest in running + [stuck]:
            ticks = serial_ticks(guest.log)
            assert all(b > a for a, b in zip(ticks, ticks[1:])), 'no guest restarted'
    finally:
        dom = hv1.domain(stuck.name) if 'stuck' in locals() else None
        if dom is not None:
            dom.destroy()
            dom.undefine()
        net = hv1.conn.networkLookupByName(net_name)  # the connection may have been reopened meanwhile
        net.destroy()
        net.undefine()

    # 2. with the stuck VM gone, the drain completes; then it is idempotent
    rc, out = drain.run('hv1')
    assert rc == 0, out
    assert _recap(out)['changed'] == 0, out
    assert _names(hv1) == [] and _names(hv2) == ours

    # 3. hv2 cannot be drained to a hypervisor in maintenance: nothing moves, all is reported
    rc, out = drain.run('hv2')
    assert rc != 0 and 'no other hypervisor is available' in out, out
    assert _names(hv1) == [] and _names(hv2) == ours

    # 4. undrain both: the marks go, the VMs stay where they are; again: nothing changes
    for host in ('hv1', 'hv2'):
        rc, out = drain.run(host, 'undrain')
        assert rc == 0 and _recap(out)['changed'] == 1, out
        assert not os.path.exists(drain.markers[host])
    rc, out = drain.run('hv1', 'undrain')
    assert rc == 0 and _recap(out)['changed'] == 0, out
    assert _names(hv1) == [] and _names(hv2) == ours
    assert [hv2.domain(g.name).state()[0] for g in running] == [libvirt.VIR_DOMAIN_RUNNING] * len(running)

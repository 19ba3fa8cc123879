"""The real Linux test guest (tests/env/linux-guest.sh) booted through the collection against the real libvirtd.

Proves that the image's kernel and initrd boot it directly (the vm module's kernel, initrd and cmdline) and that
a guest takes its identity from a NoCloud seed made by virtfleet.virt.cloud_init_seed on an IDE cdrom: it gets a
DHCP lease on an isolated network the test creates (no forward: no packet leaves the machine), lets us in over
SSH with the key cloud-init installed, and shuts down cleanly (ACPI) when vm asks it to. Booting from its own
disk (syslinux), the guest agent and the vm module's own cloud_init are proven in test_real_guests.py.
TCG (domain_type qemu): /dev/kvm here runs no 64-bit guest. Timings are printed (pytest -s), never asserted.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from xml.etree import ElementTree

import pytest

from conftest import PREFIX, _remove_domain, free_subnet, libvirt

pytestmark = pytest.mark.linux_guest

BOOT_TIMEOUT = 300  # TCG on a loaded 2-core machine: lease ~30 s and SSH ~50 s when idle


class LinuxGuestRun:
    """One real guest: its key pair, isolated network with DHCP, overlay disk, seed, serial log; all removed by
    cleanup() (also when the test failed)."""

    def __init__(self, conn, ansible, storage, image):
        self.conn = conn
        self.ansible = ansible
        self.image = image
        self.tmp = tempfile.mkdtemp(prefix='vft-lg-')
        suffix = uuid.uuid4().hex[:6]
        self.name = '%slg-%s' % (PREFIX, suffix)
        self.hostname = 'vft-lg-%s' % suffix
        self.token = 'virtfleet-%s' % uuid.uuid4().hex
        self.pool, self.pool_dir = storage.dir_pool('lg')
        self.disk = os.path.join(self.pool_dir, self.name + '.qcow2')
        self.log = os.path.join(self.pool_dir, self.name + '.serial.log')
        self.network = None
        self.times = {}

        self.key = os.path.join(self.tmp, 'id_ed25519')
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', self.name, '-f', self.key], check=True)
        with open(self.key + '.pub') as handle:
            self.public_key = handle.read().strip()

    def create_network(self):
        """An isolated network (no <forward>) with its own /24 and DHCP."""
        prefix = free_subnet(self.conn)
        suffix = self.name.rsplit('-', 1)[1]
        self.network = PREFIX + 'lgnet-' + suffix
        xml = ("<network><name>%s</name><bridge name='vftlg%s' stp='off'/>"
               "<ip address='%s.1' netmask='255.255.255.0'><dhcp><range start='%s.10' end='%s.100'/></dhcp></ip>"
               "</network>" % (self.network, suffix, prefix, prefix, prefix))
        net = self.conn.networkDefineXML(xml)
        net.create()
        return self.network

    def create_overlay(self):
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', self.image['disk'], '-F', 'qcow2',
                        self.disk], check=True)

    def create_seed(self):
        user_data = '#cloud-config\n' + json.dumps({
            'users': [{'name': 'vft', 'shell': '/bin/bash', 'sudo': 'ALL=(ALL) NOPASSWD:ALL',
                       'ssh_authorized_keys': [self.public_key]}],
            'write_files': [{'path': '/etc/virtfleet-test', 'content': self.token + '\n', 'permissions': '0644'}],
        })
        r = self.ansible.task('cloud_init_seed', {
            'pool': self.pool, 'name': self.name + '-seed.iso', 'user_data': user_data,
            'meta_data': {'instance-id': self.name, 'local-hostname': self.hostname}})
        assert r['changed'] and not r.get('failed'), r
        return self.name + '-seed.iso'

    def vm_args(self, **extra):
        args = {'name': self.name, 'domain_type': 'qemu', 'machine': 'pc', 'memory': 512, 'vcpus': 1,
                'disks': [{'path': self.disk, 'format': 'qcow2', 'bus': 'virtio'},
                          {'pool': self.pool, 'volume': self.name + '-seed.iso', 'device': 'cdrom', 'bus': 'ide'}],
                'interfaces': [{'network': self.network, 'model': 'virtio'}],
                'serial': [{'type': 'file', 'path': self.log}],
                'graphics': {'type': 'none'}}
        args.update(extra)
        return args

    def prepare(self):
        self.create_network()
        self.create_overlay()
        self.create_seed()

    def mac(self):
        root = ElementTree.fromstring(self.conn.lookupByName(self.name).XMLDesc(0))
        return root.find("devices/interface/mac").get('address')

    def wait_lease(self, start):
        mac = self.mac()
        net = self.conn.networkLookupByName(self.network)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            for lease in net.DHCPLeases(None, 0) or []:
                if lease['mac'].lower() == mac.lower() and lease.get('iptype', 0) == libvirt.VIR_IP_ADDR_TYPE_IPV4:
                    self.times['lease'] = time.monotonic() - start
                    return lease['ipaddr']
            time.sleep(1)
        raise AssertionError('no DHCP lease for %s (%s) on %s within %d s; serial log tail:\n%s'
                             % (self.name, mac, self.network, BOOT_TIMEOUT, self.serial_tail()))

    def ssh(self, address, command, timeout=60):
        return subprocess.run(['ssh', '-i', self.key, '-o', 'StrictHostKeyChecking=no', '-o',
                               'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10',
                               '-o', 'LogLevel=ERROR', 'vft@' + address, command],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def wait_ssh(self, address, start):
        deadline = time.monotonic() + BOOT_TIMEOUT
        proc = None
        while time.monotonic() < deadline:
            proc = self.ssh(address, 'true', timeout=30)
            if proc.returncode == 0:
                self.times['ssh'] = time.monotonic() - start
                return
            time.sleep(2)
        raise AssertionError('no SSH to vft@%s within %d s (last: %s); serial log tail:\n%s'
                             % (address, BOOT_TIMEOUT, proc and proc.stderr.strip(), self.serial_tail()))

    def guest_facts(self, address):
        """hostname, the written file, uname -r and /proc/cmdline, read over SSH once cloud-init has finished
        without an error and systemd has finished booting with no failed unit."""
        proc = self.ssh(address, 'cloud-init status --wait --long; systemctl is-system-running --wait; '
                                 'systemctl --failed --no-legend --plain', timeout=BOOT_TIMEOUT)
        print('[linux-guest] cloud-init and systemd: %s' % ' | '.join(proc.stdout.splitlines()))
        assert 'status: done' in proc.stdout and '\nrunning\n' in proc.stdout, proc.stdout + proc.stderr
        proc = self.ssh(address, 'hostname; cat /etc/virtfleet-test; uname -r; cat /proc/cmdline; '
                                 'df -m / | tail -1')
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        print('[linux-guest] in the guest: %s' % ' | '.join(lines))
        return {'hostname': lines[0], 'file': lines[1], 'kernel': lines[2], 'cmdline': lines[3]}

    def serial_tail(self, size=3000):
        try:
            with open(self.log, 'rb') as handle:
                data = handle.read()
        except OSError:
            return '(no serial log)'
        return data[-size:].decode(errors='replace')

    def serial_text(self):
        try:
            with open(self.log, 'rb') as handle:
                return handle.read().decode(errors='replace')
        except OSError:
            return ''

    def stop(self):
        """Graceful stop through vm (force false): it must reach shut off and the console shows the power-down."""
        start = time.monotonic()
        r = self.ansible.task('vm', {'name': self.name, 'state': 'stopped', 'force': False, 'shutdown_timeout': 120})
        self.times['shutdown'] = time.monotonic() - start
        assert not r.get('failed') and r['vm']['state'] == 'stopped', r
        assert 'destroy' not in r['actions'], r
        assert self.conn.lookupByName(self.name).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
        text = self.serial_text()
        assert 'reboot: Power down' in text, 'no clean power-down on the console:\n' + self.serial_tail()
        return r

    def report(self, what):
        print('[linux-guest] %s: %s' % (what, ', '.join('%s %.0f s' % item for item in self.times.items())))

    def cleanup(self):
        _remove_domain(self.conn, self.name)
        if self.network:
            try:
                net = self.conn.networkLookupByName(self.network)
                if net.isActive():
                    net.destroy()
                net.undefine()
            except libvirt.libvirtError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        for path in (self.disk, self.log):
            try:
                os.unlink(path)
            except OSError:
                pass


@pytest.fixture
def linux_run(conn, ansible, storage, linux_guest):
    run = LinuxGuestRun(conn, ansible, storage, linux_guest)
    yield run
    run.cleanup()


def test_direct_kernel_boot(linux_run, conn):
    """The same kernel and initrd booted by libvirt from the cache directory, through the vm module's kernel,
    initrd and cmdline options (libvirt's <os><kernel/><initrd/><cmdline/>)."""
    run = linux_run
    run.prepare()
    marker = 'virtfleet.boot=direct'
    kernel_boot = {'kernel': run.image['kernel'], 'initrd': run.image['initrd'],
                   'cmdline': run.image['cmdline'] + ' ' + marker}
    r = run.ansible.task('vm', run.vm_args(state='present', **kernel_boot))
    assert r['changed'] and not r.get('failed'), r
    os_elem = ElementTree.fromstring(conn.lookupByName(run.name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).find('os')
    assert dict((tag, os_elem.findtext(tag)) for tag in kernel_boot) == kernel_boot

    start = time.monotonic()
    r = run.ansible.task('vm', {'name': run.name, 'state': 'running'})
    assert r['changed'] and r['vm']['state'] == 'running', r
    address = run.wait_lease(start)
    run.wait_ssh(address, start)
    facts = run.guest_facts(address)
    assert facts['hostname'] == run.hostname
    assert facts['file'] == run.token
    assert facts['kernel'].endswith('-cloud-amd64'), facts
    assert facts['cmdline'] == run.image['cmdline'] + ' ' + marker, facts  # no BOOT_IMAGE: not syslinux

    # no agent channel here: the graceful stop goes through ACPI (logind handles the power button)
    run.stop()
    run.report('direct kernel boot (lease, ssh after start; graceful ACPI stop)')

"""The fuzz targets: one per module (and backend), with the objects it may touch and its value hints.

Every name a target generates is either one of the run's own names (``vft-fz-<stem>-<run>-N``) or
invalid; paths stay in the target's own directory; URIs, pool names, bridges and the podman path
come from short curated lists. So a fuzz run only ever creates, changes or removes its own objects,
even when a module has a bug. Each target sets up the base objects its module needs (a dir pool
with volumes, an isolated network, disk images that boot to a halted CPU, a Podman network, a
vCenter simulator of its own) and removes everything with its prefix at the end.
"""
from __future__ import annotations

import hashlib
import importlib
import ipaddress
import json
import os
import shutil
import string
import subprocess
import time

from hypothesis import strategies as st
from lxml import etree

import snapshots
from harness import env_script, sh
from strategies import (Builder, MODULE_PACKAGE, OUT_OF_RANGE, bad_choice, capture_spec, junk_text, long_text,
                        metachar_text, no_log_paths, text_small, weighted, wrong_scalars)

# A boot sector that halts the CPU (cli; hlt; jmp back): guests that run but cost no CPU time.
HALT_SECTOR = bytes([0xFA, 0xF4, 0xEB, 0xFD]) + bytes(506) + b'\x55\xaa'

VALID_SIZES = st.one_of(st.integers(16, 256),
                        st.sampled_from(['32MiB', '64M', '128 MiB', '0.0625GiB', '65536KiB', '48mib', 96.0]))
BAD_SIZES = st.one_of(st.sampled_from([0, -1, '0', '-5MiB', 'abc', '1.5MiB', '10 PiB', '1e3', '', ' ', True, [], {},
                                       2 ** 40, '9999999999TiB', 1.5, float('nan'), float('inf'), '12 MiB extra',
                                       '0x10', '1,5GiB', '64MiB\n', '\u0664\u0662MiB', 2 ** 64]), junk_text)
BAD_INTS = st.sampled_from([-1, -100, 'x', '', 1.5, [], {}, -2 ** 63, 'ten'])
BAD_URIS = st.sampled_from(['', 'nonsense', 'qemu:///nonexistent', 'qemu+unix:///system?socket=/nonexistent/sock',
                            'qemu+tcp://127.0.0.1:1/system', 'test:///default', 'qemu:///system\x00', 'xen:///',
                            'qemu:///system?socket=/tmp/vft-fz-none', '://', 'qemu:///system ', None, 5, []])
SAFE_WORD = string.ascii_lowercase + string.digits
XML_FRAGMENTS = [
    "<domain><features><acpi/><apic/></features></domain>",
    "<domain><on_crash>destroy</on_crash></domain>",
    "<domain><clock offset='utc'/></domain>",
    "<domain><devices><watchdog model='i6300esb' action='none'/></devices></domain>",
    "<domain><devices><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng></devices></domain>",
]
BAD_XML = st.one_of(st.sampled_from([
    '<domain>', 'not xml', '<domain><name>other</name></domain>', '<vm/>', '<domain><memory>1</memory></domain>',
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>'
    '<domain><on_crash>&xxe;</on_crash></domain>',
    '<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    '<domain><on_crash>&d;</on_crash></domain>',
    '<domain><on_poweroff>' + 'x' * 5000 + '</on_poweroff></domain>', '<domain xmlns="urn:x"><clock/></domain>',
    '<domain><devices><interface type="network"><source network="vft-fz-none"/></interface></devices></domain>',
    '', ' ', '<domain/><domain/>']), junk_text)


def macs():
    return st.lists(st.integers(0, 255), min_size=3, max_size=3).map(lambda b: '52:54:00:%02x:%02x:%02x' % tuple(b))


BAD_MACS = st.one_of(st.sampled_from(['01:00:5e:00:00:01', 'zz:zz:zz:zz:zz:zz', '52:54:00:00:00', '52-54-00-00-00-01',
                                      '52:54:00:00:00:01:02', '', 'FF:FF:FF:FF:FF:FF']), junk_text)


def secrets(tag):
    """A secret with a distinctive core (``Vf`` + 12 hex digits) and a tail that needs escaping."""
    return st.tuples(st.text('0123456789abcdef', min_size=12, max_size=12),
                     st.sampled_from(['', '"', "'\n", ' é', '\\x', '<&>', '%s', '{{x}}', ' \u202e'])).map(
        lambda pair: '%s-Vf%s%s' % (tag, pair[0], pair[1]))


def bad_names(prefix):
    """Invalid names that can never name anything outside the run: junk after the prefix, or no string at all."""
    suffixes = st.one_of(metachar_text.filter(lambda s: any(c not in SAFE_WORD + '-_.+' for c in s)),
                         st.sampled_from(['\n', ' ', '/x', '/../x', 'ü', '\x00', '<', '&', ';id', '*', '$(id)']))
    return st.one_of(st.builds(lambda s: prefix + '0' + s, suffixes),
                     st.builds(lambda s: s + prefix + '0', st.sampled_from(['-', '.', '_', ' ', '\n', '/', '+'])),
                     st.just(prefix + 'x' * 300), st.just(''), st.none(), st.just([prefix + '0']),
                     st.just({'name': prefix + '0'}))


def confined_paths(root):
    """Invalid or odd paths, all inside ``root`` (or relative, which the modules refuse)."""
    return st.one_of(
        st.builds(lambda s: os.path.join(root, 'junk', s.replace('/', '_').replace('\x00', '_') or '_'), junk_text),
        st.sampled_from([os.path.join(root, 'missing', 'x.img'), os.path.join(root, 'junk', 'a b;c'), root + '/',
                         os.path.join(root, 'junk', '..', 'junk', 'x'), 'relative.img', './x', '../x', '',
                         os.path.join(root, 'junk', 'x\x00y'), os.path.join(root, 'junk', 'x' * 300)]),
        st.none(), st.just(5), st.just([]))


class Env:
    """One fuzz run: its id, its directory and the daemons' state readers."""

    def __init__(self, run_id, base, podman_path=None):
        self.run_id = run_id
        self.base = base
        self.data = os.path.join(base, 'data')
        self.work = os.path.join(base, 'work')
        os.makedirs(self.data, exist_ok=True)
        os.makedirs(self.work, exist_ok=True)
        self.libvirt = snapshots.Libvirt()
        self.podman_path = podman_path
        self.podman = snapshots.Podman(podman_path) if podman_path else None

    def prefix(self, stem):
        return 'vft-fz-%s-%s-' % (stem, self.run_id)


def write_disk(path, fmt='raw', size_mib=1):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    raw = path if fmt == 'raw' else path + '.raw.tmp'
    with open(raw, 'wb') as handle:
        handle.write(HALT_SECTOR)
        handle.truncate(size_mib * 1024 * 1024)
    if fmt == 'qcow2':
        sh('qemu-img', 'convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, path)
        os.unlink(raw)


def define_dir_pool(conn, name, path):
    os.makedirs(path, exist_ok=True)
    pool = conn.storagePoolDefineXML("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>"
                                     % (name, path), 0)
    pool.create(0)
    return pool


def declared_backends(module):
    """The module's options that some backends only take: option -> backends (its declaration,
    ``_module.backends_of``)."""
    _module = importlib.import_module(MODULE_PACKAGE.replace('.modules.', '.module_utils.') + '_module')
    return _module.backends_of(importlib.import_module(MODULE_PACKAGE + module).argument_spec())


class Target:
    """A module under fuzz. Subclasses set the class attributes and ``hints``; ``coherent`` makes a valid set one
    that should succeed (its options agreeing with each other and with the objects the target made)."""

    key = 'vm'            # name in the report
    module = 'vm'         # module run
    stem = 'vm'           # object name stem
    backend = 'libvirt'   # the backend its valid sets run on (the other backend's options are invalid there)
    info = False          # an info module: must never report a change
    kinds = ('libvirt',)  # what its snapshot covers
    always = ()
    exclude = ()
    rare = ()             # options that appear in about one set in 25
    max_optional = 5
    count = 4             # names of its own objects
    timeout = 120

    def __init__(self, env):
        self.env = env
        self.prefix = env.prefix(self.stem)
        self.dir = os.path.join(env.data, self.stem)
        self.spec, self.kwargs = capture_spec(self.module)
        self.secret_paths = no_log_paths(self.spec)
        self.extra_secrets = []

    def names(self):
        return [self.prefix + str(i) for i in range(self.count)]

    def setup(self):
        os.makedirs(self.dir, exist_ok=True)

    def before_call(self):
        """Restore base objects a previous set may have removed (outside the snapshot window)."""

    def rerun_changes_by_design(self, args):
        """Why the module documents that the same valid set, run again, changes again (None: it must not)."""
        del args

    def hints(self):
        return {}, {}

    def coherent(self, args):
        """A strategy of the valid set ``args`` made coherent (by default: as it is)."""
        return st.just(args)

    def invalid_only(self):
        """The options the module refuses on this target's backend (declared with other backends)."""
        only = declared_backends(self.module)
        return set(k for k, backends in only.items() if k in self.spec and self.backend not in backends)

    def bounded(self, args):
        """``coherent(args)`` of a valid set whose waits fit in the call's bound: ``wait_for_address`` waits
        ``wait_for_address_timeout`` (300 s by default) for an address that a simulator's or a boot sector's VM never
        gets, so a set that asks for it waits 30 s at most (vm@vsphere sets #525-527 of the session-10 run were
        killed at the 120 s bound, mid-wait)."""
        if args.get('wait_for_address') not in (None, False) and not (
                isinstance(args.get('wait_for_address_timeout'), int) and args['wait_for_address_timeout'] <= 30):
            args = dict(args, wait_for_address_timeout=30)
        return self.coherent(args)

    def builder(self):
        hints, bad_hints = self.hints()
        return Builder(self.spec, hints, bad_hints, always=self.always, max_optional=self.max_optional,
                       exclude=self.exclude, rare=self.rare, invalid_only=self.invalid_only(),
                       coherent=self.bounded)

    def daemon(self):
        """Identity of the daemon the snapshot reads (libvirtd), to notice a restart during a call."""
        return snapshots.daemon_id() if 'libvirt' in self.kinds else None

    def snapshot(self):
        state = {}
        if 'libvirt' in self.kinds:
            state['libvirt'] = self.env.libvirt.snapshot([self.prefix])
            state['files'] = snapshots.files(self.dir)
        if 'podman' in self.kinds:
            state['podman'] = self.env.podman.snapshot([self.prefix])
        return state

    def teardown(self):
        if 'libvirt' in self.kinds:
            self.env.libvirt.remove_all([self.prefix])
            logs = '/var/log/libvirt/qemu'
            for name in (os.listdir(logs) if os.path.isdir(logs) else []):
                if name.startswith(self.prefix):
                    os.unlink(os.path.join(logs, name))
        shutil.rmtree(self.dir, ignore_errors=True)

    def conn_hints(self):
        return ({('uri',): st.just('qemu:///system'), ('username',): st.sampled_from(['root', 'vft-fz-user']),
                 ('password',): secrets('pw'), ('backend',): st.sampled_from(['auto', 'libvirt'])},
                {('uri',): BAD_URIS})


# -- libvirt VMs --------------------------------------------------------------------------------------

VSPHERE_ONLY = ('datacenter', 'cluster', 'host', 'resource_pool', 'folder', 'datastore', 'guest_id', 'memory_hot_add',
                'cpu_hot_add', 'port', 'validate_certs', 'ca_path', 'proxy_port')
LIBVIRT_ONLY = ('domain_type', 'machine', 'max_memory', 'max_vcpus', 'cpu', 'boot', 'graphics', 'serial', 'autostart',
                'title', 'xml', 'uri')


# customization (issue #16): valid ones on both backends, those only libvirt takes (vSphere's LinuxPrep cannot carry
# SSH keys, user data or IPv6), and invalid ones
CUSTOMIZATIONS = [{}, {'hostname': 'web1'}, {'hostname': 'web1', 'domain': 'example.test', 'dns_servers': ['192.0.2.53']},
                  {'networks': [{'dhcp': True}]},
                  {'networks': [{'ip': '192.0.2.10', 'prefix': 24, 'gateway': '192.0.2.1'}]}]
CUSTOMIZATIONS_CLOUD_INIT = [{'ssh_authorized_keys': ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake x@y']},
                             {'user_data': {'packages': []}},
                             {'networks': [{'ip': 'fd00:db8::10', 'prefix': 64}]}]
BAD_CUSTOMIZATIONS = [{'hostname': '-bad'}, {'hostname': 'a' * 64}, {'domain': 'ex..ample'},
                      {'dns_servers': ['300.1.1.1']}, {'networks': [{'ip': '192.0.2.10'}]},
                      {'networks': [{'ip': '192.0.2.10/24', 'prefix': 24}]},
                      {'networks': [{'dhcp': True, 'ip': '192.0.2.1'}]}, {'networks': [{'ip': '192.0.2.0/24'}]},
                      {'networks': [{'ip': '192.0.2.10/24', 'gateway': '198.51.100.1'}]}, {'user_data': '[1,2'},
                      {'networks': 'notalist'}, {'hostname': 'a b'}, {'networks': [5]}, 'hostname=web1']


# UEFI guests under KVM. On some hosts (this project's test machines: /dev/kvm runs only real-mode code) OVMF stops
# with a QEMU internal error at once, and libvirt shows the guest paused after every start: each re-run of a set
# with state running then honestly starts it again (changed=true), which is the host's doing, not the module's.
# ``uefi_kvm_pauses`` finds out by starting a tiny UEFI guest under KVM once per run; where it pauses, valid sets
# give every UEFI VM domain_type qemu (TCG, which runs OVMF fine) and a VM they put on kvm the BIOS firmware
# (``VmTarget.kvm_uefi_safe``); both firmwares and both domain types keep coming, only not UEFI on kvm.
UEFI_PROBE = ("<domain type='kvm'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
              "<os firmware='efi'><type arch='x86_64'>hvm</type>"
              "<firmware><feature enabled='no' name='secure-boot'/></firmware></os>"
              "<features><acpi/></features><devices/></domain>")
_UEFI_KVM_PAUSES = {}


def uefi_kvm_pauses(conn, name, watch=5.0):
    """Whether a UEFI guest under KVM leaves the running state (paused by a QEMU internal error) within ``watch``
    seconds of its start on this host; False where KVM is not usable or the guest cannot start. Cached per process.
    The probe guest ``name`` is removed (with its NVRAM) before this returns."""
    import libvirt  # pylint: disable=import-outside-toplevel
    if 'found' in _UEFI_KVM_PAUSES:
        return _UEFI_KVM_PAUSES['found']
    found = False
    try:
        conn.getDomainCapabilities(None, None, None, 'kvm', 0)
        dom = conn.defineXML(UEFI_PROBE % name)
    except libvirt.libvirtError:
        dom = None  # no KVM here (or no UEFI firmware): nothing to avoid
    if dom is not None:
        try:
            dom.create()
            deadline = time.monotonic() + watch
            while time.monotonic() < deadline:
                if dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
                    found = True
                    break
                time.sleep(0.2)
        except libvirt.libvirtError:
            pass
        finally:
            try:
                dom.destroy()
            except libvirt.libvirtError:
                pass
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    _UEFI_KVM_PAUSES['found'] = found
    return found


class VmTarget(Target):
    key = module = 'vm'
    stem = 'vm'
    always = ('shutdown_timeout', 'wait_timeout')
    exclude = (('hostname',), ('proxy_host',))
    rare = VSPHERE_ONLY + ('username', 'password', 'backend')
    max_optional = 6

    def setup(self):
        super().setup()
        conn = self.env.libvirt.conn
        self.disks = [os.path.join(self.dir, 'disks', n) for n in ('a.img', 'b.img', 'c.qcow2')]
        self.pool = self.prefix + 'pool'
        self.pool_dir = os.path.join(self.dir, 'pool')
        self.volumes = ['v0.img', 'v1.qcow2', 'v2.img']
        self.restore_files()
        define_dir_pool(conn, self.pool, self.pool_dir)
        self.network = self.prefix + 'net'
        self.bridge = 'vfz%s%s' % (self.stem[:2], self.env.run_id)
        net = conn.networkDefineXML("<network><name>%s</name><bridge name='%s' stp='off'/></network>"
                                    % (self.network, self.bridge))
        net.create()
        os.makedirs(os.path.join(self.dir, 'logs'), exist_ok=True)
        self.avoid_uefi_kvm = uefi_kvm_pauses(conn, self.prefix + 'uefiprobe')

    def kvm_uefi_safe(self, item):
        """``item`` (a VM's options) never UEFI under KVM where such guests pause here (see ``uefi_kvm_pauses``): a
        UEFI VM gets domain_type qemu; one put on kvm (explicitly) without a firmware gets bios, since the VM may
        be UEFI from an earlier set. Without a domain_type the VM keeps its own (new ones: kvm, with bios unless
        the item asks for UEFI, which then gets qemu)."""
        if not getattr(self, 'avoid_uefi_kvm', False) or not isinstance(item, dict):
            return item
        if item.get('firmware') == 'uefi' and item.get('domain_type') in (None, 'kvm'):
            return dict(item, domain_type='qemu')
        if item.get('domain_type') == 'kvm' and 'firmware' not in item:
            return dict(item, firmware='bios')
        return item

    def coherent(self, args):
        return self._coherent(args)

    @st.composite
    def _coherent(draw, self, args):  # pylint: disable=no-self-argument
        """Not UEFI under KVM where it pauses; a clone of another VM than itself; a customization (one seed: no
        cloud_init with it) with a disk in the target's pool, where the seed goes."""
        args = dict(self.kvm_uefi_safe(args))
        if 'clone_from' in args and args['clone_from'] == args.get('name'):
            args['clone_from'] = draw(st.sampled_from([n for n in self.names() if n != args.get('name')]))
        if 'clone_from' not in args:
            args.pop('linked_clone', None)  # (refused without clone_from)
        if isinstance(args.get('customization'), dict):
            args.pop('cloud_init', None)
            disks = args.get('disks') if isinstance(args.get('disks'), list) else []
            if not any(isinstance(d, dict) and d.get('pool') for d in disks):
                args['disks'] = disks + [{'pool': self.pool, 'volume': draw(st.sampled_from(self.volumes))}]
            # libvirt matches customization.networks to the VM's NICs by index: as many NICs as items
            wanted = len(args['customization'].get('networks') or [])
            nics = args.get('interfaces') if isinstance(args.get('interfaces'), list) else []
            if wanted and len(nics) != wanted:
                args['interfaces'] = (nics + [{'network': self.network}] * wanted)[:wanted]
        return args

    def restore_files(self):
        missing = False
        for path in self.disks + [os.path.join(self.pool_dir, v) for v in self.volumes]:
            if not os.path.exists(path):
                write_disk(path, 'qcow2' if path.endswith('.qcow2') else 'raw')
                missing = True
        return missing

    def before_call(self):
        if self.restore_files():
            try:
                self.env.libvirt.conn.storagePoolLookupByName(self.pool).refresh(0)
            except Exception:  # pylint: disable=broad-except
                pass

    def vm_hints(self, prefix=()):
        root = self.dir
        size_hint = VALID_SIZES
        hints = {
            ('name',): st.sampled_from(self.names()),
            ('state',): st.sampled_from(['present'] * 3 + ['running'] * 3 + ['stopped'] * 2 + ['paused', 'absent', 'absent']),
            ('shutdown_timeout',): st.integers(0, 2),
            ('wait_timeout',): st.sampled_from([0, 10, 20, 30]),
            ('arch',): st.sampled_from(['x86_64', 'i686']),
            ('machine',): st.sampled_from(['pc', 'q35', 'pc-i440fx-7.2', 'pc-q35-7.2']),
            ('memory',): size_hint, ('max_memory',): size_hint,
            ('vcpus',): st.integers(1, 4), ('max_vcpus',): st.integers(1, 4),
            ('cpu', 'model'): st.sampled_from(['qemu64', 'kvm64', 'Skylake-Client']),
            ('disks', 'path'): st.sampled_from(self.disks + [os.path.join(root, 'missing.img')]),
            ('disks', 'pool'): st.sampled_from([self.pool, self.prefix + 'nopool']),
            ('disks', 'volume'): st.sampled_from(self.volumes + ['missing.img']),
            ('disks', 'size'): st.one_of(VALID_SIZES, BAD_SIZES),
            ('disks', 'target'): st.sampled_from(['vda', 'vdb', 'sda', 'sdb', 'hdc', 'vdz', 'xvda']),
            ('interfaces', 'network'): st.sampled_from([self.network, self.prefix + 'nonet']),
            ('interfaces', 'bridge'): st.sampled_from([self.bridge, 'vfznobr0']),
            ('interfaces', 'direct'): st.sampled_from(['lo', 'vfznodev0']),
            ('interfaces', 'mac'): macs(),
            ('graphics', 'listen'): st.sampled_from(['127.0.0.1', '::1']),
            ('graphics', 'port'): st.sampled_from([-1, -1, 5987]),
            ('serial', 'path'): st.sampled_from([os.path.join(root, 'logs', '%d.log' % i) for i in range(3)]),
            ('serial', 'host'): st.sampled_from(['127.0.0.1', '::1']),
            ('serial', 'port'): st.integers(43100, 43199),
            ('title',): st.one_of(text_small, junk_text), ('description',): st.one_of(text_small, junk_text),
            ('tags',): st.dictionaries(st.one_of(st.text(string.ascii_letters, min_size=1, max_size=8), junk_text),
                                       st.one_of(text_small, junk_text, st.integers(), st.none(), st.booleans()),
                                       max_size=3),
            ('xml',): st.sampled_from(XML_FRAGMENTS),
            ('backend',): st.sampled_from(['auto', 'libvirt']),
            # boot: [] is refused (libvirt would boot from hd anyway, so it would never converge)
            ('boot',): st.lists(st.sampled_from(['hd', 'cdrom', 'network', 'fd']), min_size=1, max_size=3,
                                unique=True),
            # issue #16: clones of the run's other VMs (a missing source fails cleanly), templates now and then
            ('clone_from',): st.sampled_from(self.names() + [self.prefix + 'nosrc']),
            ('linked_clone',): st.booleans(),
            ('template',): st.sampled_from([False] * 4 + [True]),
            ('customization',): st.sampled_from(CUSTOMIZATIONS + CUSTOMIZATIONS_CLOUD_INIT),
        }
        opt = st.sampled_from
        disk_extra = {'bus': opt(['virtio', 'sata', 'scsi', 'ide', 'usb']), 'cache': opt(['none', 'writeback']),
                      'readonly': st.booleans(), 'target': hints[('disks', 'target')],
                      'format': opt(['raw', 'qcow2'])}
        hints[('disks',)] = st.lists(st.one_of(
            st.fixed_dictionaries({'path': hints[('disks', 'path')]}, optional=disk_extra),
            st.fixed_dictionaries({'pool': hints[('disks', 'pool')], 'volume': hints[('disks', 'volume')]},
                                  optional=disk_extra),
            st.fixed_dictionaries({'device': st.just('cdrom')},
                                  optional=dict(disk_extra, path=opt(self.disks[:1])))), max_size=3)
        nic_extra = {'model': opt(['virtio', 'e1000', 'rtl8139']), 'mac': macs()}
        hints[('interfaces',)] = st.lists(st.one_of(
            st.fixed_dictionaries({'network': hints[('interfaces', 'network')]}, optional=nic_extra),
            st.fixed_dictionaries({'bridge': hints[('interfaces', 'bridge')]}, optional=nic_extra),
            st.fixed_dictionaries({'direct': hints[('interfaces', 'direct')]},
                                  optional=dict(nic_extra, mode=opt(['bridge', 'vepa', 'private'])))), max_size=2)
        hints[('serial',)] = st.lists(st.one_of(
            st.just({'type': 'pty'}), st.just({}),
            st.fixed_dictionaries({'type': opt(['file', 'unix']), 'path': hints[('serial', 'path')]}),
            st.fixed_dictionaries({'type': st.just('tcp'), 'port': hints[('serial', 'port')]},
                                  optional={'host': hints[('serial', 'host')]})), max_size=2)
        hints[('cpu',)] = st.one_of(st.fixed_dictionaries({'mode': opt(['host-model', 'maximum'])}),
                                    st.fixed_dictionaries({'model': hints[('cpu', 'model')]},
                                                          optional={'mode': st.just('custom')}))
        bad = {
            ('name',): bad_names(self.prefix),
            ('shutdown_timeout',): BAD_INTS, ('wait_timeout',): BAD_INTS,
            ('memory',): BAD_SIZES, ('max_memory',): BAD_SIZES,
            ('vcpus',): st.one_of(st.sampled_from([0, -1, 4096, 2 ** 31, 2 ** 63, 'x', 1.5]), wrong_scalars),
            ('max_vcpus',): st.one_of(st.sampled_from([0, -1, 4096, 2 ** 31, 2 ** 63, 'x', 1.5]), wrong_scalars),
            ('disks', 'path'): confined_paths(root),
            ('disks', 'pool'): bad_names(self.prefix),
            ('interfaces', 'network'): bad_names(self.prefix),
            ('interfaces', 'bridge'): st.one_of(st.sampled_from(['..', '../../../tmp', 'a/b', 'x' * 20, '', 'br 0']),
                                                metachar_text),
            ('interfaces', 'direct'): st.one_of(st.sampled_from(['..', '../../../tmp', '', 'eth0/x']), metachar_text),
            ('interfaces', 'mac'): BAD_MACS,
            ('graphics', 'listen'): st.one_of(st.sampled_from(['256.1.1.1', 'localhost\n', '', '::g']), metachar_text),
            ('serial', 'path'): confined_paths(root),
            ('serial', 'host'): st.one_of(st.sampled_from(['256.1.1.1', '', 'x y']), metachar_text),
            ('serial', 'port'): st.sampled_from(OUT_OF_RANGE + ['x']),
            ('xml',): BAD_XML,
            ('backend',): st.one_of(st.just('vsphere'), junk_text),
            ('customization',): st.sampled_from(BAD_CUSTOMIZATIONS),
            ('clone_from',): st.sampled_from(['', 'a/b', self.prefix + '0']),  # (prefix 0: its own name, mostly)
        }
        return (dict((prefix + k, v) for k, v in hints.items()), dict((prefix + k, v) for k, v in bad.items()))

    def hints(self):
        hints, bad = self.conn_hints()
        vm_hints, vm_bad = self.vm_hints()
        hints.update(vm_hints)
        bad.update(vm_bad)
        return hints, bad


def snapshot_trees(conn, prefix):
    """The snapshots of the domains named ``prefix...``: ``{domain: [(name, xml, current), ...]}``."""
    trees = {}
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(prefix):
            trees[dom.name()] = sorted((s.getName(), s.getXMLDesc(0), bool(s.isCurrent()))
                                       for s in dom.listAllSnapshots(0))
    return trees


class FleetTarget(VmTarget):
    """fleet, with its ``snapshot`` step: a valid set takes or deletes one (a revert of a VM that runs on after it
    is never a no-change, so reverts are only asked for snapshots that do not exist)."""
    key = module = 'fleet'
    stem = 'fl'
    max_optional = 3
    timeout = 180

    def hints(self):
        hints, bad = self.conn_hints()
        item_hints, item_bad = self.vm_hints()
        from ansible_collections.virtfleet.virt.plugins.modules import fleet  # pylint: disable=import-outside-toplevel
        foreign = set(k for k, backends in declared_backends('vm').items() if 'libvirt' not in backends)
        items = Builder(fleet.item_spec(), item_hints, item_bad, max_optional=5, invalid_only=foreign)
        good = items.options((), items.spec, 'valid').flatmap(self._coherent)
        # a valid set: valid items, each for a VM of its own (two items for one VM are refused)
        valid_items = st.lists(good, max_size=4, unique_by=lambda item: item.get('name'))
        # a partial failure (the other items converge): a one-bad set
        partial = st.tuples(st.lists(good, max_size=3, unique_by=lambda item: item.get('name')),
                            weighted((3, items.options((), items.spec, 'one_bad')), (1, wrong_scalars)),
                            st.integers(0, 3)).map(lambda t: t[0][:t[2]] + [t[1]] + t[0][t[2]:])
        snapshot = st.fixed_dictionaries({'name': st.sampled_from(['fz-pre', "fz <&>'"]),
                                          'state': st.sampled_from(['present', 'absent'])},
                                         optional={'memory': st.booleans(), 'description': text_small})
        hints.update({('vms',): valid_items, ('workers',): st.integers(1, 8), ('snapshot',): snapshot,
                      ('shutdown_timeout',): st.integers(0, 2), ('wait_timeout',): st.sampled_from([10, 20, 30])})
        bad.update({('vms',): st.one_of(st.sampled_from(['a,b', '', 5, {'name': self.prefix + '0'}, [None], ['x']]),
                                        partial, partial,
                                        st.lists(items.options((), items.spec, 'chaos'), min_size=1, max_size=3)),
                    ('workers',): st.sampled_from([0, -1, -2 ** 31, 'x', 1.5, 2 ** 40]),
                    ('snapshot',): st.sampled_from(['x', 5, {}, {'name': ''}, {'name': 'a\nb'}, {'name': 'a/b'},
                                                    {'name': 'a"b'}, {'name': 'x', 'state': 'absent', 'memory': True},
                                                    {'name': 'x', 'vm_state': 'running'},
                                                    {'name': 'nosuch', 'state': 'reverted'}]),
                    ('shutdown_timeout',): BAD_INTS, ('wait_timeout',): BAD_INTS})
        return hints, bad

    def snapshot(self):
        state = super().snapshot()
        state['snapshots'] = snapshot_trees(self.env.libvirt.conn, self.prefix)
        return state

    always = ('shutdown_timeout', 'wait_timeout')


# -- networks --------------------------------------------------------------------------------------------

BAD_IPV4 = [
    {'address': '10.251.0.0', 'prefix': 24}, {'address': '10.251.1.1', 'prefix': 33}, {'address': 'fd00::1'},
    {'prefix': 24}, {'address': '1.2.3.4.5'}, {'address': '127.0.0.1', 'prefix': 8},
    {'address': '10.251.2.1', 'dhcp_range': {'start': '10.251.2.200', 'end': '10.251.2.100'}},
]


def used_subnets(conn):
    """The IP networks in use on this host: those of every libvirt network (active or not) and every address and
    route of the root network namespace."""
    used = []
    for net in conn.listAllNetworks(0):
        try:
            root = etree.fromstring(net.XMLDesc(0).encode('utf-8'))
        except Exception:  # pylint: disable=broad-except
            continue  # removed meanwhile
        for ip in root.findall('ip'):
            address = ip.get('address')
            prefix = ip.get('prefix') or ip.get('netmask')
            if address:
                try:
                    used.append(ipaddress.ip_network('%s/%s' % (address, prefix or 24), strict=False))
                except ValueError:
                    pass
    for what in (['addr'], ['route'], ['-6', 'route']):
        try:
            entries = json.loads(sh('ip', '-j', *what, check=False).stdout or '[]')
        except ValueError:
            entries = []
        for entry in entries:
            found = [(a.get('local'), a.get('prefixlen')) for a in entry.get('addr_info', [])]
            if entry.get('dst') and entry['dst'] != 'default':
                found.append((entry['dst'], None))
            for address, prefix in found:
                try:
                    used.append(ipaddress.ip_network(address if prefix is None else '%s/%s' % (address, prefix),
                                                     strict=False))
                except (TypeError, ValueError):
                    pass
    return used


def free_subnets(used, candidates, count):
    """``count`` of ``candidates`` (networks) that overlap none of ``used``."""
    found = []
    for net in candidates:
        if not any(net.version == other.version and net.overlaps(other) for other in used + found):
            found.append(net)
            if len(found) == count:
                return found
    raise RuntimeError('no %d free subnets among %s...' % (count, candidates[:3]))


class NetworkTarget(Target):
    """Four networks of the run's own: two routed (nat, route or open), one isolated, one attached to a host
    bridge the target made (mode bridge). A valid set keeps each name's kind and gives it its own bridge name and
    subnets (free on this host when the target started), DHCP and DNS hosts inside them."""
    key = module = 'network'
    stem = 'net'
    max_optional = 5

    def setup(self):
        super().setup()
        seed = int(hashlib.sha256(self.env.run_id.encode()).hexdigest(), 16)
        used = used_subnets(self.env.libvirt.conn)
        v4 = [ipaddress.ip_network('10.%d.%d.0/24' % (251 - (i // 256) % 8, i % 256))
              for i in ((seed + 7 * n) % 2048 for n in range(2048))]
        v6 = [ipaddress.ip_network('fd0f:fa:%x::/64' % ((seed + 13 * n) % 65536)) for n in range(256)]
        self.subnets = free_subnets(used, v4, self.count)
        self.subnets6 = free_subnets(used, v6, self.count)
        self.bridges = ['vfz%s%d' % (self.env.run_id, i) for i in range(self.count)]
        # the host bridge of the mode bridge network
        self.host_bridge = 'vfzhb%s' % self.env.run_id
        sh('ip', 'link', 'add', self.host_bridge, 'type', 'bridge', check=False)
        sh('ip', 'link', 'set', self.host_bridge, 'up', check=False)

    def teardown(self):
        try:
            super().teardown()
        finally:
            sh('ip', 'link', 'del', self.host_bridge, check=False)

    def _host(self, index, number):
        return str(self.subnets[index].network_address + number)

    def coherent(self, args):
        return self._coherent(args)

    @st.composite
    def _coherent(draw, self, args):  # pylint: disable=no-self-argument
        args = dict(args)
        names = self.names()
        if args.get('name') not in names:
            return args
        index = names.index(args['name'])
        net, net6 = self.subnets[index], self.subnets6[index]
        kind = ('routed', 'routed', 'isolated', 'bridge')[index]
        if kind == 'bridge':
            args.update(mode='bridge', bridge=self.host_bridge, ipv4={}, ipv6={}, mtu=0, domain='', dhcp_hosts=[],
                        dns_hosts=[])
            return args
        args['bridge'] = self.bridges[index]
        args['mode'] = draw(st.sampled_from(['nat', 'nat', 'route', 'open'])) if kind == 'routed' else 'isolated'
        if 'dhcp_hosts' in args:
            numbers = draw(st.lists(st.integers(20, 29), max_size=3, unique=True))
            args['dhcp_hosts'] = [dict({'mac': draw(macs()), 'ip': str(net.network_address + n)},
                                       **({'name': 'h%d' % n} if draw(st.booleans()) else {})) for n in numbers]
            if len(set(h['mac'] for h in args['dhcp_hosts'])) != len(args['dhcp_hosts']):
                args['dhcp_hosts'] = args['dhcp_hosts'][:1]
        prefix = draw(st.sampled_from([24, 24, 25]))
        ipv4 = {'address': str(net.network_address + 1), 'prefix': prefix}
        if draw(st.booleans()):
            ipv4['dhcp_range'] = {'start': str(net.network_address + 100), 'end': str(net.network_address + 120)}
        # (an isolated network without ipv4 keeps the one it has; DHCP hosts need one)
        if kind == 'routed' or 'ipv4' in args or args.get('dhcp_hosts'):
            args['ipv4'] = ipv4
        if 'ipv6' in args:
            ipv6 = {'address': str(net6.network_address + 1), 'prefix': 64}
            if draw(st.booleans()):
                ipv6['dhcp_range'] = {'start': str(net6.network_address + 0x100),
                                      'end': str(net6.network_address + 0x1ff)}
            args['ipv6'] = ipv6
        if 'dns_hosts' in args:
            numbers = draw(st.lists(st.integers(30, 39), min_size=1, max_size=2, unique=True))
            args['dns_hosts'] = [{'ip': str(net.network_address + n),
                                  'hostnames': draw(st.lists(st.sampled_from(['a', 'b.fz.test', 'c-1']), min_size=1,
                                                             max_size=2, unique=True))} for n in numbers]
        return args

    def hints(self):
        hints, bad = self.conn_hints()
        hints.update({
            ('name',): st.sampled_from(self.names()),
            ('state',): st.sampled_from(['present', 'active', 'active', 'started', 'inactive', 'absent', 'absent']),
            ('mode',): st.sampled_from(['nat', 'nat', 'route', 'isolated', 'isolated', 'open', 'bridge']),
            ('bridge',): st.sampled_from(self.bridges),
            ('mtu',): st.sampled_from([0, 1280, 1500, 9000]),
            ('domain',): st.sampled_from(['fz.test', 'example', 'a-b.c_d']),
            ('wait_timeout',): st.sampled_from([10, 30]),
        })
        # for one-bad and chaos sets (a valid set gets these from coherent, for the subnets of its name)
        indexes = st.integers(0, self.count - 1)

        def ipv4(index):
            net = self.subnets[index].network_address
            return st.fixed_dictionaries({'address': st.sampled_from([str(net + 1), str(net + 254)])},
                                         optional={'prefix': st.sampled_from([24, 25, 28]),
                                                   'dhcp_range': st.just({'start': str(net + 100),
                                                                          'end': str(net + 150)})})

        def ipv6(index):
            net = self.subnets6[index].network_address
            return st.fixed_dictionaries({'address': st.just(str(net + 1))},
                                         optional={'prefix': st.just(64),
                                                   'dhcp_range': st.just({'start': str(net + 0x100),
                                                                          'end': str(net + 0x1ff)})})
        hosts = indexes.map(lambda i: self._host(i, 20 + i))
        hints.update({
            ('ipv4',): indexes.flatmap(ipv4), ('ipv6',): indexes.flatmap(ipv6),
            ('dhcp_hosts', 'mac'): macs(), ('dhcp_hosts', 'ip'): hosts,
            ('dhcp_hosts', 'name'): st.sampled_from(['web1', 'db-2', 'x_y']),
            ('dns_hosts', 'ip'): st.one_of(hosts, st.just('fd0f:fa::5')),
            ('dns_hosts', 'hostnames'): st.lists(st.sampled_from(['a', 'b.fz.test', 'c-1']), min_size=1, max_size=2),
        })
        bad.update({
            ('name',): bad_names(self.prefix),
            ('bridge',): st.one_of(st.sampled_from(['lo', 'eth0', 'x' * 16, '', 'br 0', 'br/0', '..', 'virbr0\n']),
                                   metachar_text),
            ('mtu',): st.sampled_from([1, 67, 65536, -1, 2 ** 31, 'x']),
            ('ipv4',): st.one_of(st.sampled_from(BAD_IPV4), wrong_scalars),
            ('dhcp_hosts', 'mac'): BAD_MACS, ('dhcp_hosts', 'ip'): st.one_of(st.sampled_from(['10.252.0.5', 'fd00::5']),
                                                                             junk_text),
            ('wait_timeout',): BAD_INTS,
        })
        return hints, bad


# -- containers --------------------------------------------------------------------------------------------

class ContainerTarget(Target):
    key = module = 'container'
    stem = 'ct'
    kinds = ('podman',)
    max_optional = 5
    always = ('podman_path', 'stop_timeout', 'image')
    image = 'localhost/vft-busybox:latest'

    def setup(self):
        super().setup()
        self.host_dir = os.path.join(self.dir, 'host')
        os.makedirs(self.host_dir, exist_ok=True)
        self.network = self.prefix + 'net'
        self.env.podman.run('network', 'create', self.network, check=True)
        self.env.podman.run('pod', 'create', '--name', self.prefix + 'pod', check=True)

    def teardown(self):
        self.env.podman.remove_all([self.prefix])
        shutil.rmtree(self.dir, ignore_errors=True)

    def hints(self):
        podman = self.env.podman_path
        commands = [['sleep', '3600'], 'sleep 3600', ['true'], 'echo hi', ['sh', '-c', 'exit 3'], 'vft-no-such-cmd',
                    '"unterminated', ['sleep', '3600', '; rm -rf /data'], 'sh -c "echo $HOME > /data/x"']
        hints = {
            ('podman_path',): st.just(podman),
            ('name',): st.sampled_from(self.names()),
            ('state',): st.sampled_from(['present', 'started', 'running', 'running', 'stopped', 'absent']),
            ('image',): st.sampled_from([self.image, self.image, 'localhost/vft-busybox']),
            ('pull',): st.booleans(),
            ('command',): st.sampled_from(commands),
            ('env',): st.dictionaries(st.sampled_from(['A', 'B_1', 'PATH', 'É', 'x y']),
                                      st.one_of(text_small, junk_text, st.integers()), max_size=3),
            ('labels',): st.dictionaries(st.sampled_from(['fleet', 'org.x/y', 'ü']), st.one_of(text_small, junk_text),
                                         max_size=3),
            ('ports',): st.lists(st.sampled_from(['42%03d:80' % i for i in range(0, 999, 37)]
                                                 + ['127.0.0.1::8080', '[::1]:42998:53/udp', '80']), max_size=2,
                                 unique=True),
            ('volumes',): st.lists(st.sampled_from(['%s:/data' % self.host_dir, '%s:/ro:ro' % self.host_dir,
                                                    '%s0vol:/vol' % self.prefix]), max_size=2),
            ('networks',): st.lists(st.sampled_from(['podman', self.network, 'host', 'none']), min_size=1, max_size=2),
            ('restart_policy',): st.sampled_from(['no', 'always', 'on-failure:3', 'unless-stopped']),
            ('memory',): st.sampled_from([0, '64MiB', 128, '1g']),
            ('cpus',): st.sampled_from([0, 0.5, 1.0, 1.25]),
            ('pod',): st.sampled_from(['', self.prefix + 'pod']),
            ('stop_timeout',): st.integers(0, 1),
            ('wait_timeout',): st.sampled_from([10, 30]),
            # small values, so that wait_healthy waits seconds (a failing test turns unhealthy after 1-2 s)
            ('healthcheck', 'test'): st.sampled_from(['true', ['true'], ['CMD', 'true'], 'exit 1', 'echo bad; exit 2',
                                                      'NONE', 'test -e /tmp']),
            ('healthcheck', 'interval'): st.sampled_from([1, '1s', '500ms', 0, '2s']),
            ('healthcheck', 'timeout'): st.sampled_from([1, '2s', '1m']),
            ('healthcheck', 'retries'): st.sampled_from([1, 2]),
            ('healthcheck', 'start_period'): st.sampled_from([0, '1s', '0s']),
            ('healthcheck', 'disable'): st.booleans(),
            ('wait_healthy',): st.booleans(),
        }
        bad = {
            ('podman_path',): st.sampled_from(['/nonexistent/podman', '/bin/false', os.path.join(self.dir, 'x;id'), '']),
            ('name',): bad_names(self.prefix),
            ('image',): st.one_of(st.sampled_from(['--privileged', '-v/:/host', 'a b', '', ' ', 'localhost/x\n',
                                                   'localhost/UPPER:1', 'localhost/' + 'x' * 300,
                                                   'localhost/vft-fz-none:1']), wrong_scalars),
            ('command',): st.one_of(st.sampled_from(['', [], '   ', [None], ['sleep', None]]),
                                    st.lists(junk_text, max_size=3)),
            ('volumes',): st.one_of(st.sampled_from(['x', '/nonexistent-vft:/x', 'relative:/x:rw',
                                                     '%s:data' % self.host_dir, '%s:/x:zz' % self.host_dir,
                                                     '%s/missing:/x' % self.host_dir, self.prefix + 'v:/a:/b:ro',
                                                     '%s:/a' % os.path.join(self.host_dir, 'x;id')]).map(lambda v: [v]),
                                    st.lists(st.builds(lambda s: '%s:/x' % os.path.join(self.host_dir, s.replace(
                                        '/', '_').replace(':', '_') or '_'), junk_text), min_size=1, max_size=2)),
            ('networks',): st.one_of(st.sampled_from([[], ['bridge'], ['host', 'podman'], [self.prefix + 'nonet'],
                                                      ['a b'], ['-x']]), wrong_scalars),
            ('ports',): st.one_of(st.sampled_from([['0:80'], ['70000:80'], ['80-79:80'], ['1.2.3.4.5:80:80'],
                                                   ['80/xyz'], [':::80'], ['42000:80', '42000:81']]),
                                  st.lists(junk_text, min_size=1, max_size=2)),
            ('memory',): BAD_SIZES, ('cpus',): st.sampled_from([-1, float('nan'), float('inf'), 1e300, 'x', -0.5]),
            ('pod',): st.sampled_from([self.prefix + 'nopod', '-x', 'a b', 'x' * 200]),
            ('stop_timeout',): BAD_INTS, ('wait_timeout',): BAD_INTS,
            ('restart_policy',): st.one_of(st.sampled_from(['on-failure:x', 'always:3', 'sometimes', '']), junk_text),
            ('healthcheck', 'test'): st.one_of(st.sampled_from(['', [], ['CMD'], ['CMD-SHELL'], ['NONE', 'x'],
                                                                [None]]), junk_text),
            ('healthcheck', 'interval'): st.one_of(st.sampled_from(['soon', '-1s', '1x', '', -1, True, '1h1']),
                                                   junk_text),
            ('healthcheck', 'timeout'): st.sampled_from([0, '0s', 'x', -2]),
            ('healthcheck', 'retries'): st.sampled_from([0, -1, 'x', 1.5]),
            ('healthcheck', 'start_period'): st.sampled_from(['-1s', 'later', []]),
        }
        return hints, bad


def ensure_podman(env):
    """The run's Podman state reader, set up here when the fuzzer started this worker without ``--podman-path``
    (its PODMAN_TARGETS list names the Podman targets it gives one)."""
    if env.podman is None:
        env.podman_path = env_script('podman-up.sh')
        env.podman = snapshots.Podman(env.podman_path)
    return env.podman


def podman_labels():
    return st.dictionaries(st.sampled_from(['fleet', 'org.x/y', 'ü']), st.one_of(text_small, junk_text), max_size=3)


BAD_PODMAN_LABELS = st.sampled_from([{'fleet': True}, {'a': False}, {'': 'x'}, {'a=b': 'c'}, {'a': ['x']},
                                     {'a': 'x\ny'}, 'a=b', ['a']])
RESERVED_PODMAN_NAMES = st.sampled_from(['podman', 'host', 'none', '-x', 'a b', 'x' * 200])


class PodmanObjectTarget(Target):
    """A container_network or container_volume target: objects of the run's own names (``<prefix>0``...), a
    sleeping container ``<prefix><user>`` that uses object 0, so that the in-use refusal and the ``force`` paths
    (a network's containers disconnected and connected again, a volume's removed) are reached."""
    kinds = ('podman',)
    always = ('podman_path',)
    max_optional = 5
    image = ContainerTarget.image
    user = 'user'

    def setup(self):
        super().setup()
        ensure_podman(self.env)

    def user_args(self):
        raise NotImplementedError

    def start_user(self):
        """(Re)create the container that uses object 0 when it is gone (a forced removal of a volume removes it)."""
        podman = self.env.podman
        name = self.prefix + self.user
        if podman.run('container', 'exists', name).returncode == 0:
            return False
        podman.run('run', '--detach', '--name', name, *self.user_args(), self.image, 'sleep', '100000', check=True)
        return True

    def object_exists(self):
        raise NotImplementedError

    def before_call(self):
        """The user container back on object 0 when a set made object 0 again. Never object 0 itself: a removal of
        it, run again, must find nothing to do."""
        if not self.object_exists():
            return
        try:
            self.start_user()
        except RuntimeError:
            pass  # object 0 as a set left it cannot be used by a container: the sets see it as it is

    def teardown(self):
        self.env.podman.remove_all([self.prefix])
        shutil.rmtree(self.dir, ignore_errors=True)


class ContainerNetworkTarget(PodmanObjectTarget):
    """Podman networks. Each name has an IPv4 /24 and an IPv6 /64 block of its own (free on the host, away from
    Podman's own 10.88/16 and the 10.89.x it assigns), so valid sets never overlap each other; network 0 exists
    from the start with a container on it."""
    key = module = 'container_network'
    stem = 'ctn'
    user = 'nuser'

    def setup(self):
        super().setup()
        seed = int(hashlib.sha256(self.env.run_id.encode()).hexdigest(), 16)
        used = used_subnets(self.env.libvirt.conn) + [ipaddress.ip_network('10.88.0.0/15')]
        for data in self.env.podman._json('network', 'inspect', *[  # pylint: disable=protected-access
                n.get('name') for n in self.env.podman._json('network', 'ls', '--format', 'json')]):
            for item in data.get('subnets') or []:
                try:
                    used.append(ipaddress.ip_network(item['subnet'], strict=False))
                except (KeyError, ValueError):
                    pass
        v4 = [ipaddress.ip_network('10.%d.%d.0/24' % (232 + (i // 256) % 8, i % 256))
              for i in ((seed + 11 * n) % 2048 for n in range(2048))]
        v6 = [ipaddress.ip_network('fd00:23:%x::/64' % ((seed + 17 * n) % 65536)) for n in range(256)]
        self.subnets = free_subnets(used, v4, self.count)
        self.subnets6 = free_subnets(used, v6, self.count)
        self.env.podman.run('network', 'create', '--subnet', str(self.subnets[0]), self.names()[0], check=True)
        self.start_user()

    def user_args(self):
        return ['--network', self.names()[0]]

    def object_exists(self):
        return self.env.podman.run('network', 'exists', self.names()[0]).returncode == 0

    def before_call(self):
        """Also back on network 0 when a forced removal took it off (the container is kept) and a set made the
        network again."""
        super().before_call()
        podman, name = self.env.podman, self.prefix + self.user
        if self.object_exists() and podman.run('container', 'exists', name).returncode == 0:
            inspect = podman._json('container', 'inspect', name)  # pylint: disable=protected-access
            networks = ((inspect[0] if inspect else {}).get('NetworkSettings') or {}).get('Networks') or {}
            if self.names()[0] not in networks:
                podman.run('network', 'connect', self.names()[0], name)

    def subnet_list(self, index):
        net, net6 = self.subnets[index], self.subnets6[index]
        base = net.network_address
        return st.tuples(
            st.sampled_from([None, str(base + 1), str(base + 254)]),
            st.sampled_from([None, '%s/25' % (base + 128), '%s/26' % base]),
            st.booleans(), st.booleans()).map(lambda t: [
                dict({'subnet': str(net)}, **dict((k, v) for k, v in (('gateway', t[0]), ('ip_range', t[1])) if v))]
            + ([dict({'subnet': str(net6)}, **({'gateway': str(net6.network_address + 1)} if t[3] else {}))]
               if t[2] else []))

    def coherent(self, args):
        return self._coherent(args)

    @st.composite
    def _coherent(draw, self, args):  # pylint: disable=no-self-argument
        """Subnets from the name's own block; a macvlan network with subnets, not internal, on lo."""
        args = dict(args)
        names = self.names()
        if args.get('name') not in names:
            return args
        index = names.index(args['name'])
        if 'subnets' in args or args.get('driver') == 'macvlan':
            args['subnets'] = draw(self.subnet_list(index))
        if args.get('driver') == 'macvlan':
            args['internal'] = False
            options = dict(args.get('options') or {})
            options.pop('isolate', None)
            options.pop('vlan', None)
            options['parent'] = 'lo'
            args['options'] = options
        return args

    def hints(self):
        hints, bad = {}, {}
        podman = self.env.podman_path
        indexes = st.integers(0, self.count - 1)
        hints.update({
            ('podman_path',): st.just(podman),
            ('name',): st.sampled_from(self.names()),
            ('state',): st.sampled_from(['present'] * 3 + ['absent']),
            ('driver',): st.sampled_from(['bridge'] * 3 + ['macvlan']),
            ('subnets',): indexes.flatmap(self.subnet_list),
            ('internal',): st.booleans(), ('dns_enabled',): st.booleans(), ('force',): st.booleans(),
            ('labels',): podman_labels(),
            ('options',): st.sampled_from([{}, {'mtu': '1400'}, {'mtu': '1500'}, {'isolate': 'true'}, {'vlan': '5'}]),
        })
        other = self.subnets[1]
        bad.update({
            ('podman_path',): st.sampled_from(['/nonexistent/podman', '/bin/false', os.path.join(self.dir, 'x;id'), '']),
            ('name',): st.one_of(bad_names(self.prefix), RESERVED_PODMAN_NAMES),
            ('driver',): st.one_of(st.just('ipvlan'), bad_choice),
            ('subnets',): st.one_of(st.sampled_from([
                [{'subnet': '10.0.0.1/24'}], [{'subnet': 'x'}], [{'subnet': '10.0.0.0/31'}], [], ['10.0.0.0/24'],
                [{'subnet': str(self.subnets[0]), 'gateway': str(other.network_address + 1)}],
                [{'subnet': str(self.subnets[0]), 'gateway': str(self.subnets6[0].network_address + 1)}],
                [{'subnet': str(self.subnets[0]), 'ip_range': '%s/25' % other.network_address}],
                [{'subnet': str(self.subnets[0])}, {'subnet': '%s/25' % self.subnets[0].network_address}],
                [{'subnet': '10.88.7.0/24'}],  # inside the default podman network's 10.88/16
                [{'subnet': str(self.subnets[0]), 'bogus': 1}], [{'gateway': '10.0.0.1'}], [5], 'x']),
                indexes.map(lambda i: [{'subnet': str(self.subnets[i])}, {'subnet': str(self.subnets[(i + 1) % self.count])}]),
                # another name's block: refused once that network exists (network 0 always does)
                st.just([{'subnet': str(self.subnets[0])}])),
            ('options',): st.sampled_from([{'foo': 'bar'}, {'mtu': 'abc'}, {'vlan': '5000'}, {'mtu': '-1'},
                                           {'a=b': 'c'}, {'mtu': True}, 'mtu=1400']),
            ('labels',): BAD_PODMAN_LABELS,
        })
        return hints, bad


class ContainerVolumeTarget(PodmanObjectTarget):
    """Podman volumes (local driver: plain, tmpfs or a bind of the target's own directory); volume 0 is mounted by
    a sleeping container from the start."""
    key = module = 'container_volume'
    stem = 'ctv'
    user = 'vuser'

    def setup(self):
        super().setup()
        self.bind = os.path.join(self.dir, 'bind')
        os.makedirs(self.bind, exist_ok=True)
        self.start_user()

    def user_args(self):
        return ['--volume', '%s:/data' % self.names()[0]]

    def object_exists(self):
        return self.env.podman.run('volume', 'exists', self.names()[0]).returncode == 0

    def hints(self):
        podman = self.env.podman_path
        hints = {
            ('podman_path',): st.just(podman),
            ('name',): st.sampled_from(self.names()),
            ('state',): st.sampled_from(['present'] * 3 + ['absent']),
            ('driver',): st.just('local'),
            ('options',): st.sampled_from([{}, {'type': 'tmpfs', 'device': 'tmpfs'},
                                           {'type': 'tmpfs', 'device': 'tmpfs', 'o': 'mode=0770,uid=1000'},
                                           {'type': 'none', 'device': self.bind, 'o': 'bind'}]),
            ('labels',): podman_labels(),
            ('force',): st.booleans(),
        }
        bad = {
            ('podman_path',): st.sampled_from(['/nonexistent/podman', '/bin/false', os.path.join(self.dir, 'x;id'), '']),
            ('name',): st.one_of(bad_names(self.prefix), RESERVED_PODMAN_NAMES.filter(lambda n: n not in ('podman', 'host', 'none'))),
            ('driver',): st.one_of(st.just('nfs'), bad_choice),
            ('options',): st.sampled_from([{'size': '1m'}, {'type': 'tmpfs'}, {'type': 'none', 'device': 'rel', 'o': 'bind'},
                                           {'type': 'tmpfs', 'device': 'tmpfs', 'o': 'size=8m'},
                                           {'type': 'none', 'device': os.path.join(self.dir, 'missing'), 'o': 'bind'},
                                           {'type': 'tmpfs', 'device': 'tmpfs', 'o': True}, 'type=tmpfs']),
            ('labels',): BAD_PODMAN_LABELS,
        }
        return hints, bad


class ContainerPodTarget(PodmanObjectTarget):
    """Podman pods; pod 0 holds a sleeping container from the start (the in-use refusal, and ``force``
    recreating it in the new pod or removing it with the pod). Ports from a range of the target's own."""
    key = module = 'container_pod'
    stem = 'ctp'
    user = 'puser'

    def setup(self):
        super().setup()
        self.network = self.prefix + 'net'
        self.env.podman.run('network', 'create', self.network, check=True)
        self.env.podman.run('pod', 'create', '--name', self.names()[0], check=True)
        self.start_user()

    def user_args(self):
        return ['--pod', self.names()[0]]

    def object_exists(self):
        return self.env.podman.run('pod', 'exists', self.names()[0]).returncode == 0

    def coherent(self, args):
        """What the infra container holds only with one; ports and networks only with the net namespace shared
        and on a network that publishes ports."""
        args = dict(args)
        if args.get('infra') is False:
            for key in ('share', 'ports', 'networks', 'hostname'):
                args.pop(key, None)
        elif 'share' in args and 'net' not in args['share']:
            args.pop('ports', None)
            args.pop('networks', None)
        if set(args.get('networks') or []) & {'host', 'none'}:
            args.pop('ports', None)
        return st.just(args)

    def hints(self):
        podman = self.env.podman_path
        ports = ['43%03d:80' % i for i in range(0, 999, 41)] + ['127.0.0.1::8080', '[::1]:43998:53/udp', '80']
        hints = {
            ('podman_path',): st.just(podman),
            ('name',): st.sampled_from(self.names()),
            ('state',): st.sampled_from(['present'] * 3 + ['absent']),
            ('infra',): st.sampled_from([True, True, False]),
            ('share',): st.lists(st.sampled_from(['ipc', 'net', 'uts', 'pid', 'cgroup']), min_size=1, max_size=3),
            ('ports',): st.lists(st.sampled_from(ports), max_size=2, unique=True),
            ('networks',): st.lists(st.sampled_from(['podman', self.network, 'host', 'none']), min_size=1, max_size=2),
            ('labels',): podman_labels(),
            ('hostname',): st.sampled_from(['', 'web1', 'a.example', 'x-1']),
            ('force',): st.booleans(),
        }
        bad = {
            ('podman_path',): st.sampled_from(['/nonexistent/podman', '/bin/false', os.path.join(self.dir, 'x;id'), '']),
            ('name',): st.one_of(bad_names(self.prefix), RESERVED_PODMAN_NAMES.filter(lambda n: n not in ('podman', 'host', 'none'))),
            ('share',): st.sampled_from([[], ['mnt'], ['user'], 'net', [None], ['net', '']]),
            ('ports',): st.one_of(st.sampled_from([['0:80'], ['70000:80'], ['80/xyz'], [':::80'], ['43000:80', '43000:81']]),
                                  st.lists(junk_text, min_size=1, max_size=2)),
            ('networks',): st.sampled_from([[], ['bridge'], ['host', 'podman'], [self.prefix + 'nonet'], ['a b']]),
            ('hostname',): st.one_of(st.sampled_from(['a b', '-x', 'x' * 70, 'a..b', 'a_b']), metachar_text),
            ('labels',): BAD_PODMAN_LABELS,
        }
        return hints, bad


# -- storage (pool, volume, cloud-init seed) --------------------------------------------------------------------

BAD_NFS_SOURCE = {
    ('source', 'dir'): st.one_of(st.sampled_from(['relative', '', '/a b']), metachar_text),
    ('source', 'hosts'): st.lists(st.one_of(st.sampled_from(['', 'a b', '[::1', 'h:99999', 'h:x']), metachar_text),
                                  min_size=1, max_size=2),
}


class ContainerImageTarget(PodmanObjectTarget):
    """Podman images named ``localhost/<prefix>N:1``, built from two small contexts of the target's own directory
    or loaded from an archive of an image of its own (no registry: pulls only with ``never`` or ``missing`` of an image
    that is there). Image 0 is built at setup and a sleeping container runs it, so that the in-use refusal, ``force``
    and a rebuild under a running container are reached. The snapshot adds the run's images (ID, names, labels)."""
    key = module = 'container_image'
    stem = 'ctimg'
    user = 'iuser'
    timeout = 300

    def refs(self):
        return ['localhost/%s:1' % n for n in self.names()]

    def setup(self):
        super().setup()
        self.contexts = []
        for i, text in enumerate(('one', 'two')):
            path = os.path.join(self.dir, 'ctx%d' % i)
            os.makedirs(os.path.join(path, 'sub'), exist_ok=True)
            with open(os.path.join(path, 'Containerfile'), 'w') as handle:
                handle.write('FROM %s\nARG WHO=nobody\nCOPY sub/ /sub/\nLABEL vft.who=$WHO\n' % self.image)
            with open(os.path.join(path, 'sub', 'file.txt'), 'w') as handle:
                handle.write(text + '\n')
            self.contexts.append(path)
        # an archive of an image of the run's own (podman load names it again, and never the shared test image)
        self.archive = os.path.join(self.dir, 'image.tar')
        saved = 'localhost/%sarchive:1' % self.prefix
        self.env.podman.run('build', '--tag', saved, '--build-arg', 'WHO=archive', self.contexts[1], check=True)
        self.env.podman.run('save', '--output', self.archive, saved, check=True)
        self.env.podman.run('rmi', saved, check=True)
        with open(self.archive, 'rb') as handle:
            self.checksum = 'sha256:' + hashlib.sha256(handle.read()).hexdigest()
        self.before_call()

    def object_exists(self):
        return self.env.podman.run('image', 'exists', self.refs()[0]).returncode == 0

    def before_call(self):
        """Image 0 (a plain build of context 0) and its container, when a set removed them."""
        if not self.object_exists():
            self.env.podman.run('build', '--tag', self.refs()[0], self.contexts[0], check=True)
        super().before_call()

    def start_user(self):
        podman, name = self.env.podman, self.prefix + self.user
        if podman.run('container', 'exists', name).returncode == 0:
            return False
        podman.run('run', '--detach', '--name', name, self.refs()[0], 'sleep', '100000', check=True)
        return True

    def snapshot(self):
        state = super().snapshot()
        found = {}
        for entry in self.env.podman._json('images', '--format', 'json'):  # pylint: disable=protected-access
            names = sorted(n for n in entry.get('Names') or [] if n.startswith('localhost/' + self.prefix))
            if names:
                found[entry.get('Id')] = (names, json.dumps(entry.get('Labels'), sort_keys=True), entry.get('Created'))
        state['images'] = found
        return state

    def teardown(self):
        self.env.podman.remove_all([self.prefix])
        # an image with only the run's names goes (with --force: the run's containers made from it); from an
        # image that has other names too (the test image, loaded from its archive under a run's name) only the
        # run's names are taken off
        for entry in self.env.podman._json('images', '--format', 'json'):  # pylint: disable=protected-access
            names = set(entry.get('Names') or [])
            mine = sorted(n for n in names if n.startswith('localhost/' + self.prefix))
            if mine and len(mine) == len(names):
                self.env.podman.run('rmi', '--force', entry.get('Id'))
            for ref in mine if len(mine) != len(names) else ():
                self.env.podman.run('untag', entry.get('Id'), ref)
        shutil.rmtree(self.dir, ignore_errors=True)

    def coherent(self, args):
        """One source: a build of one of the contexts or the archive (with its own checksum); pull only never or
        missing of image 0, which is there."""
        args = dict(args)
        if 'build' in args and 'load_from' in args:
            args.pop('load_from')
        if 'load_from' not in args:
            args.pop('checksum', None)
        if 'build' in args or 'load_from' in args:
            args.pop('pull', None)
        elif args.get('name') != self.refs()[0] and args.get('state') != 'absent':
            args.pop('pull', None)
            args['build'] = {'context': self.contexts[1]}
        if 'checksum' in args:
            args['checksum'] = self.checksum
        if args.get('pull') == 'always':
            args['pull'] = 'missing'
        if 'username' not in args or 'password' not in args:  # credentials go together
            args.pop('username', None)
            args.pop('password', None)
        return st.just(args)

    def hints(self):
        podman = self.env.podman_path
        refs = self.refs()
        builds = st.fixed_dictionaries({'context': st.sampled_from(self.contexts)}, optional={
            'args': st.sampled_from([{}, {'WHO': 'fz'}, {'WHO': 'other'}]), 'file': st.just('Containerfile')})
        hints = {
            ('podman_path',): st.just(podman),
            ('name',): st.sampled_from(refs + [r.replace(':1', '') for r in refs[1:2]]),
            ('state',): st.sampled_from(['present'] * 3 + ['absent']),
            ('build',): builds,
            ('load_from',): st.just(self.archive),
            ('checksum',): st.just(self.checksum),
            ('pull',): st.sampled_from(['never', 'missing']),
            ('tag',): st.lists(st.sampled_from(['stable', 'v2', 'localhost/%sextra:1' % self.prefix]), max_size=2),
            ('force',): st.booleans(),
            ('validate_certs',): st.booleans(),
            ('timeout',): st.sampled_from([120, 300]),
            ('username',): st.just('vft-fz-user'), ('password',): secrets('img'),
        }
        bad = {
            ('podman_path',): st.sampled_from(['/nonexistent/podman', '/bin/false', os.path.join(self.dir, 'x;id'), '']),
            ('name',): st.one_of(bad_names('localhost/' + self.prefix),
                                 st.sampled_from(['localhost/UPPER:1', 'localhost/x@sha256:' + '0' * 64, 'a b', ''])),
            ('build',): st.sampled_from([{'context': 'relative'}, {'context': os.path.join(self.dir, 'missing')},
                                         {'context': self.contexts[0], 'file': 'nope'},
                                         {'context': self.contexts[0], 'args': {'1x': 'y'}},
                                         {'context': self.contexts[0], 'target': 'no such stage'},
                                         {'context': self.dir}, 'ctx0']),
            ('load_from',): st.sampled_from([os.path.join(self.dir, 'missing.tar'), self.contexts[0], 'relative.tar',
                                             os.path.join(self.contexts[0], 'Containerfile')]),
            ('checksum',): st.sampled_from(['sha256:' + '0' * 64, 'md5:00', 'x', '']),
            ('tag',): st.sampled_from([['Bad Tag'], ['-x'], ['localhost/UPPER:1'], 'stable']),
            ('timeout',): st.sampled_from([0, -5]),
        }
        return hints, bad


# -- storage (pool, volume, cloud-init seed) --------------------------------------------------------------------

BAD_NFS_SOURCE = {
    ('source', 'dir'): st.one_of(st.sampled_from(['relative', '', '/a b']), metachar_text),
    ('source', 'hosts'): st.lists(st.one_of(st.sampled_from(['', 'a b', '[::1', 'h:99999', 'h:x']), metachar_text),
                                  min_size=1, max_size=2),
}


class PoolTarget(Target):
    """Pools of the run's own. A valid set keeps each name's kind: dir pools in directories the target made (the
    set may remove them, with delete_data: they are made again before the next), and an fs pool on an image file
    holding an ext4 file system."""
    key = module = 'storage_pool'
    stem = 'sp'
    max_optional = 5

    def setup(self):
        super().setup()
        self.devices = [os.path.join(self.dir, 'dev%d.img' % i) for i in range(2)]
        for path in self.devices:
            with open(path, 'wb') as handle:
                handle.truncate(64 * 1024 * 1024)
        sh('mkfs.ext4', '-q', '-F', self.devices[0])
        root = self.dir
        # name -> (type, path, source) of a valid set
        self.profiles = dict(zip(self.names(), [
            ('dir', os.path.join(root, 'p0'), None),
            ('dir', os.path.join(root, 'p1'), None),
            ('fs', os.path.join(root, 'p2'), {'devices': [self.devices[0]], 'format': 'ext4'}),
            ('dir', os.path.join(root, 'deep', 'a', 'b'), None)]))
        self.before_call()

    def before_call(self):
        # the directories a set with delete_data removed
        for _kind, path, _source in self.profiles.values():
            if not os.path.isdir(path):
                os.makedirs(path, exist_ok=True)

    def coherent(self, args):
        args = dict(args)
        if args.get('name') in self.profiles:
            kind, path, source = self.profiles[args['name']]
            args.update(type=kind, path=path)
            if source:
                args['source'] = dict(source)
            else:
                args.pop('source', None)
        return st.just(args)

    def teardown(self):
        super().teardown()
        for line in sh('losetup', '-a', check=False).stdout.splitlines():
            if self.dir in line:  # loop devices a fs pool's mount left behind
                sh('losetup', '-d', line.split(':', maxsplit=1)[0], check=False)

    def hints(self):
        hints, bad = self.conn_hints()
        root = self.dir
        hints.update({
            ('name',): st.sampled_from(self.names()),
            ('state',): st.sampled_from(['present', 'active', 'active', 'inactive', 'absent', 'absent']),
            ('type',): st.sampled_from(['dir'] * 6 + ['fs', 'fs', 'netfs', 'logical', 'disk', 'iscsi', 'rbd']),
            ('path',): st.sampled_from([os.path.join(root, 'p%d' % i) for i in range(4)]
                                       + [os.path.join(root, 'deep', 'a', 'b')]),
            ('source', 'devices'): st.lists(st.sampled_from(self.devices + ['/dev/vft-fz-nodev']), min_size=1,
                                            max_size=2),
            ('source', 'hosts'): st.lists(st.sampled_from(['127.0.0.1', '127.0.0.1:2049', '[::1]:3260']), min_size=1,
                                          max_size=2),
            ('source', 'dir'): st.sampled_from(['/export', '/vft-fz']),
            ('source', 'name'): st.sampled_from([self.prefix + 'vg', self.prefix + 'rbd/img']),
            ('source', 'format'): st.sampled_from(['auto', 'ext4', 'nfs', 'lvm2', 'gpt', 'dos', 'vfat', 'xfs']),
            ('source', 'iqn'): st.sampled_from(['iqn.2026-01.dev.virtfleet:fz']),
            ('source', 'initiator'): st.sampled_from(['iqn.2026-01.dev.virtfleet:init']),
            ('source', 'auth', 'username'): st.sampled_from(['vft']),
            ('source', 'auth', 'secret_uuid'): st.sampled_from(['8f1d6e0c-1c70-4c5e-9e1b-2d8e6a3f0c11']),
            ('source', 'auth', 'secret_usage'): st.sampled_from(['vft-fz-secret']),
            ('wait_timeout',): st.sampled_from([10, 30]),
        })
        bad.update({
            ('name',): bad_names(self.prefix),
            ('path',): confined_paths(root),
            ('source', 'devices'): st.lists(confined_paths(root), min_size=1, max_size=2),
            **BAD_NFS_SOURCE,
            ('source', 'name'): bad_names(self.prefix),
            ('wait_timeout',): BAD_INTS,
        })
        return hints, bad


class VolumeTarget(Target):
    key = module = 'volume'
    stem = 'vol'

    def setup(self):
        super().setup()
        conn = self.env.libvirt.conn
        self.pools = [self.prefix + 'pool', self.prefix + 'pool2']
        self.files = os.path.join(self.dir, 'files')
        write_disk(os.path.join(self.files, 'raw.img'))
        write_disk(os.path.join(self.files, 'disk.qcow2'), 'qcow2')
        with open(os.path.join(self.files, 'text.txt'), 'w') as handle:
            handle.write('not an image\n')
        with open(os.path.join(self.files, 'raw.img'), 'rb') as handle:
            self.raw_digest = hashlib.sha256(handle.read()).hexdigest()
        with open(os.path.join(self.files, 'disk.qcow2'), 'rb') as handle:
            self.qcow2_digest = hashlib.sha256(handle.read()).hexdigest()
        for index, pool in enumerate(self.pools):
            define_dir_pool(conn, pool, os.path.join(self.dir, 'pool%d' % index))
        self.base = ['base.img', 'base.qcow2']
        self.before_call()  # the base volumes, which the pools see once refreshed

    def restore(self):
        changed = False
        for index, pool in enumerate(self.pools):
            for name in self.base:
                path = os.path.join(self.dir, 'pool%d' % index, name)
                if not os.path.exists(path):
                    write_disk(path, 'qcow2' if name.endswith('qcow2') else 'raw')
                    changed = True
        return changed

    def before_call(self):
        if self.restore():
            for pool in self.pools:
                try:
                    self.env.libvirt.conn.storagePoolLookupByName(pool).refresh(0)
                except Exception:  # pylint: disable=broad-except
                    pass

    def coherent(self, args):
        """Each name is one kind of volume: new raw, new qcow2, an overlay of base.qcow2, a clone of base.img, an
        import of disk.qcow2 or of raw.img (with its checksum); a capacity no smaller than its source, and
        allow_shrink with it (the capacity a set gives may be smaller than the one an earlier set gave)."""
        args = dict(args)
        names = self.names()
        kinds = dict(zip(names + [n + '.qcow2' for n in names[:2]],
                         ['raw', 'qcow2', 'overlay', 'clone', 'import_qcow2', 'import_raw']))
        kind = kinds.get(args.get('name'))
        if kind is None:
            return st.just(args)
        if args.get('pool') not in self.pools:
            args['pool'] = self.pools[0]
        for key in ('backing_volume', 'clone_from', 'import_from', 'checksum', 'format'):
            args.pop(key, None)
        sizes = st.sampled_from(['2MiB', '4MiB', 8, '3 MiB', '1048576B'])
        if kind in ('raw', 'qcow2'):
            return st.tuples(sizes, st.booleans()).map(lambda pair: dict(
                args, capacity=pair[0], allow_shrink=True, **({'format': kind} if pair[1] or kind == 'qcow2' else {})))
        source = {'overlay': {'backing_volume': 'base.qcow2'}, 'clone': {'clone_from': 'base.img'},
                  'import_qcow2': {'import_from': os.path.join(self.files, 'disk.qcow2'),
                                   'checksum': 'sha256:' + self.qcow2_digest},
                  'import_raw': {'import_from': os.path.join(self.files, 'raw.img'),
                                 'checksum': 'sha256:' + self.raw_digest}}[kind]
        fmt = {'overlay': 'qcow2', 'clone': 'raw', 'import_qcow2': 'qcow2', 'import_raw': 'raw'}[kind]
        args.update(source)
        if 'capacity' in args:
            args['allow_shrink'] = True
        capacity = st.sampled_from(['1MiB', '2MiB', 4]) if 'capacity' in args else st.none()
        return st.tuples(capacity, st.booleans()).map(lambda pair: dict(
            args, **dict(([('capacity', pair[0])] if pair[0] is not None else [])
                         + ([('format', fmt)] if pair[1] else []))))

    def hints(self):
        hints, bad = self.conn_hints()
        vols = self.base + self.names()
        hints.update({
            ('pool',): st.sampled_from(self.pools + [self.prefix + 'nopool']),
            ('name',): st.sampled_from(self.names() + [n + '.qcow2' for n in self.names()[:2]]),
            ('state',): st.sampled_from(['present'] * 3 + ['absent']),
            ('capacity',): st.one_of(st.sampled_from(['1MiB', '4MiB', 8, 16, '2 MiB', '1048576B', '3GiB']),
                                     st.integers(1, 64)),
            ('backing_volume',): st.sampled_from(vols + ['missing']),
            ('clone_from',): st.sampled_from(vols + ['missing']),
            ('import_from',): st.sampled_from([os.path.join(self.files, n)
                                               for n in ('raw.img', 'disk.qcow2', 'text.txt', 'missing')]
                                              + [self.files]),
            ('checksum',): st.sampled_from(['sha256:' + self.raw_digest, 'sha256:' + '0' * 64,
                                            'sha512:' + '0' * 128]),
        })
        bad.update({
            ('pool',): bad_names(self.prefix),
            ('name',): bad_names(self.prefix),
            ('capacity',): BAD_SIZES,
            ('import_from',): confined_paths(self.dir),
            ('checksum',): st.one_of(st.sampled_from(['md5:abc', 'sha256:xyz', 'sha256', ':', 'sha256:' + '0' * 63]),
                                     junk_text),
        })
        return hints, bad


class SeedTarget(Target):
    key = module = 'cloud_init_seed'
    stem = 'ci'

    def setup(self):
        super().setup()
        self.pool = self.prefix + 'pool'
        define_dir_pool(self.env.libvirt.conn, self.pool, os.path.join(self.dir, 'pool'))

    def hints(self):
        hints, bad = self.conn_hints()
        secret = secrets('ud')
        user_data = st.one_of(
            secret.map(lambda s: '#cloud-config\npassword: %s\nchpasswd: {expire: false}\n' % s),
            secret.map(lambda s: {'users': [{'name': 'vft', 'passwd': s, 'ssh_authorized_keys': ['ssh-ed25519 AAAA' + s]}]}),
            secret.map(lambda s: '#!/bin/sh\necho %s > /root/token\n' % s),
            st.just({'packages': ['curl'], 'runcmd': [['echo', '<&>"\'']]}))
        hints.update({
            ('pool',): st.just(self.pool),
            ('name',): st.sampled_from([n + '.iso' for n in self.names()]),
            ('state',): st.sampled_from(['present'] * 3 + ['absent']),
            ('user_data',): user_data,
            ('meta_data',): st.one_of(st.fixed_dictionaries({'instance-id': st.sampled_from(['i-1', 'i-2'])},
                                                            optional={'local-hostname': st.one_of(text_small,
                                                                                                  junk_text)}),
                                      st.just('instance-id: i-3\n')),
            ('network_config',): st.sampled_from([{'version': 2, 'ethernets': {'eth0': {'dhcp4': True}}},
                                                  'version: 1\nconfig: []\n']),
        })
        bad.update({
            ('pool',): st.one_of(bad_names(self.prefix), st.just(self.prefix + 'nopool')),
            ('name',): bad_names(self.prefix),
            ('user_data',): st.one_of(wrong_scalars, secret.map(lambda s: s + '\x00'),
                                      st.just('#cloud-config\n: [unbalanced\n'), long_text),
            ('meta_data',): st.one_of(wrong_scalars, st.just('a: [b\n')),
            ('network_config',): st.one_of(wrong_scalars, st.just('{{{')),
        })
        self.extra_secrets = []
        return hints, bad


# -- migration -----------------------------------------------------------------------------------------------------

TWOHOST_BASE = os.environ.get('VIRTFLEET_TWOHOST_DIR', '/var/lib/virtfleet-test/twohost')
TWOHOST_ADDRESSES = {'hv1': '10.254.77.1', 'hv2': '10.254.77.2'}  # tests/env/twohost-up.sh
MIGRATE_GUEST = '''<domain type='%(domain_type)s'><name>%(name)s</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type><boot dev='hd'/></os><devices><disk type='file' device='disk'>
<driver name='qemu' type='raw' cache='none'/><source file='%(disk)s'/><target dev='vda' bus='virtio'/></disk>
<video><model type='none'/></video><memballoon model='none'/></devices></domain>'''


class MigrateTarget(Target):
    """Migrations between the two simulated hypervisors of tests/env/twohost-up.sh (hv1 and hv2: network
    namespaces with a libvirtd each, joined by a private link). The module reaches each through its unix socket;
    the hosts reach each other over TCP. VM 0 runs (live migration), VM 1 is defined and stopped (offline); their
    disks are in the target's directory, which both hosts see at the same path. A valid set moves a VM from one
    host to the other (or finds it there already) with options that fit its mode; the snapshot covers both hosts."""
    key = module = 'migrate'
    stem = 'mg'
    kinds = ('twohost',)
    max_optional = 6
    always = ('timeout',)
    count = 2
    timeout = 180

    def setup(self):
        super().setup()
        self.uris, self.tcp_uris = {}, {}
        out = sh('bash', os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'env',
                                      'twohost-up.sh')).stdout
        for line in out.strip().splitlines():
            name, uri, tcp_uri = line.split()
            self.uris[name], self.tcp_uris[name] = uri, tcp_uri
        self.hosts = sorted(self.uris)
        self.libvirts = dict((h, snapshots.Libvirt(self.uris[h])) for h in self.hosts)
        try:
            self.libvirts['hv1'].conn.getDomainCapabilities(None, None, None, 'kvm', 0)
            self.domain_type = 'kvm'
        except Exception:  # pylint: disable=broad-except
            self.domain_type = 'qemu'
        self.before_call()

    def where(self, name):
        """``{host: (active, persistent)}`` of the VM ``name``."""
        found = {}
        for host in self.hosts:
            try:
                dom = self.libvirts[host].conn.lookupByName(name)
                found[host] = (bool(dom.isActive()), bool(dom.isPersistent()))
            except Exception:  # pylint: disable=broad-except
                pass
        return found

    def before_call(self):
        """Bring back a VM no host has any more (VM 0 running, VM 1 stopped), and start VM 0 if it stopped."""
        for index, name in enumerate(self.names()):
            found = self.where(name)
            disk = os.path.join(self.dir, '%s.img' % name)
            if not os.path.exists(disk):
                write_disk(disk)
            if not found:
                conn = self.libvirts['hv1'].conn
                dom = conn.defineXML(MIGRATE_GUEST % dict(domain_type=self.domain_type, name=name, disk=disk))
                if index == 0:
                    dom.create()
            elif index == 0 and not any(active for active, _persistent in found.values()):
                try:
                    self.libvirts[sorted(found)[0]].conn.lookupByName(name).create()
                except Exception:  # pylint: disable=broad-except
                    pass

    def daemon(self):
        return tuple(snapshots.daemon_id(os.path.join(TWOHOST_BASE, h, 'run', 'libvirtd.pid')) for h in self.hosts)

    def snapshot(self):
        state = dict(('libvirt-' + h, self.libvirts[h].snapshot([self.prefix])) for h in self.hosts)
        state['files'] = snapshots.files(self.dir)
        return state

    def teardown(self):
        for libvirt_state in self.libvirts.values():
            try:
                libvirt_state.remove_all([self.prefix])
            finally:
                libvirt_state.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def coherent(self, args):
        return self._coherent(args)

    @st.composite
    def _coherent(draw, self, args):  # pylint: disable=no-self-argument
        args = dict(args)
        names = self.names()
        if args.get('name') not in names:
            return args
        args.update(unsafe=True, undefine_source=True)
        for key in ('destination_username', 'destination_password', 'copy_storage', 'tls', 'tls_destination',
                    'post_copy', 'post_copy_after', 'post_copy_after_iterations'):
            args.pop(key, None)
        # the direction from the rest of the set: hypothesis draws runs of similar sets, and a run of one direction
        # would find the VM at its destination after the first set of the run
        digest = hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode('utf-8')).digest()
        source, dest = ('hv1', 'hv2') if digest[0] % 2 else ('hv2', 'hv1')
        if args['name'] == names[1]:  # defined and stopped: offline
            args['mode'] = 'offline'
            args['persistent'] = True
            for key in ('auto_converge', 'compression', 'parallel_connections', 'bandwidth', 'max_downtime',
                        'destination_memory_reserve'):
                args.pop(key, None)
        else:
            args['mode'] = 'live'
            if 'compression' in args:
                args['compression'] = draw(st.lists(st.sampled_from(['xbzrle', 'mt']), max_size=2, unique=True))
            if 'migration_uri' in args:
                args['migration_uri'] = 'tcp://%s' % TWOHOST_ADDRESSES[dest]
            if 'listen_address' in args:
                args['listen_address'] = draw(st.sampled_from([TWOHOST_ADDRESSES[dest], '0.0.0.0']))
            if 'bandwidth' in args:
                args['bandwidth'] = draw(st.integers(64, 1000))
            if 'max_downtime' in args:
                args['max_downtime'] = draw(st.integers(100, 1000))
            if 'destination_memory_reserve' in args:
                args['destination_memory_reserve'] = draw(st.sampled_from(['16MiB', 8, '1 MiB']))
            if 'parallel_connections' in args:
                args['parallel_connections'] = draw(st.integers(1, 4))
            if args.get('tunnelled') in (True, 'yes', 'true', 'on', 1):
                args['peer_to_peer'] = True
                for key in ('migration_uri', 'listen_address', 'parallel_connections'):
                    args.pop(key, None)
        args['timeout'] = draw(st.integers(30, 120))
        args.update(uri=self.uris[source], destination=self.tcp_uris[dest], destination_connect_uri=self.uris[dest])
        return args

    def hints(self):
        hints, bad = self.conn_hints()
        # (the TCP URIs only where coherent sets destination_connect_uri too: this host has no route to them)
        hosts = st.sampled_from([self.uris[h] for h in self.hosts])
        uris = st.one_of(hosts, st.sampled_from(['test:///default', 'qemu+tcp://127.0.0.1:1/system',
                                                 'qemu+unix:///system?socket=/nonexistent/sock']))
        hints.update({
            ('uri',): hosts,
            ('name',): st.sampled_from(self.names()),
            ('destination',): uris, ('destination_connect_uri',): uris,
            ('destination_username',): st.just('root'), ('destination_password',): secrets('dpw'),
            ('migration_uri',): st.sampled_from(['tcp://127.0.0.1:1', 'tcp://[::1]:1', 'tcp://127.0.0.1']),
            ('listen_address',): st.sampled_from(['127.0.0.1', '::1']),
            ('tls_destination',): st.sampled_from(['localhost', 'vft-fz.invalid']),
            ('timeout',): st.integers(1, 10),
            ('post_copy_after',): st.integers(0, 5), ('post_copy_after_iterations',): st.integers(1, 5),
            ('parallel_connections',): st.integers(1, 8), ('bandwidth',): st.integers(0, 1000),
            ('max_downtime',): st.integers(0, 1000), ('destination_memory_reserve',): VALID_SIZES,
        })
        bad.update({
            ('name',): st.one_of(bad_names(self.prefix), st.just(self.prefix + '9')),
            ('destination',): st.one_of(BAD_URIS, junk_text.filter(lambda s: ':' not in s and '+' not in s)),
            ('destination_connect_uri',): BAD_URIS,
            ('timeout',): BAD_INTS,
            ('destination_memory_reserve',): BAD_SIZES,
            ('migration_uri',): st.one_of(st.sampled_from(['', 'tcp://', 'rdma://x', 'tcp://256.0.0.1:1']),
                                          metachar_text),
        })
        return hints, bad


# -- info modules ----------------------------------------------------------------------------------------------

class InfoTarget(Target):
    info = True
    kinds = ()
    max_optional = 3

    def __init__(self, env, module, stem):
        self.key = self.module = module
        self.stem = stem
        super().__init__(env)

    def snapshot(self):
        return {}

    def hints(self):
        hints, bad = self.conn_hints()
        hints.update({('name',): st.one_of(st.sampled_from(self.names()), st.text(SAFE_WORD, min_size=1, max_size=12)),
                      ('pool',): st.one_of(st.just(self.prefix + 'pool'), st.text(SAFE_WORD, min_size=1, max_size=12))})
        if 'podman_path' in self.spec:
            hints[('podman_path',)] = st.just(self.env.podman_path)
            bad[('podman_path',)] = st.sampled_from(['/nonexistent/podman', '/bin/false', ''])
        return hints, bad


class ContainerInfoTarget(InfoTarget):
    """container_info over the three kinds; ``states`` only with kind container (it filters containers)."""
    always = ('podman_path',)

    def __init__(self, env):
        super().__init__(env, 'container_info', 'cti')

    def setup(self):
        super().setup()
        ensure_podman(self.env)

    def coherent(self, args):
        if args.get('kind', 'container') != 'container':
            args = dict(args)
            args.pop('states', None)
        return st.just(args)

    def hints(self):
        hints, bad = super().hints()
        hints[('kind',)] = st.sampled_from(['container', 'container', 'image', 'network', 'pod', 'volume'])
        # a kind other than container is refused with states (a bad set when states is in it, else a valid one)
        bad[('kind',)] = st.one_of(st.sampled_from(['image', 'network', 'pod', 'volume']), bad_choice)
        bad[('states',)] = st.one_of(st.sampled_from([['running'], ['stopped', 'paused']]).map(lambda v: v),
                                     st.sampled_from([['sleeping'], 'running', [''], [None]]))
        return hints, bad


# -- vSphere (a simulator of each target's own) ------------------------------------------------------------------

# the inventory govmomi's simulator makes (tests/env/vcsim/main.go)
VS_DC, VS_CLUSTER, VS_HOSTS, VS_DATASTORE = 'DC0', 'DC0_C0', ('DC0_C0_H0', 'DC0_C0_H1', 'DC0_H0'), 'LocalDS_0'
VS_CONN = ('hostname', 'port', 'username', 'password', 'ca_path')
VS_RARE = ('uri', 'proxy_host', 'proxy_port', 'backend', 'validate_certs')
# where a task acts: one host mostly, a host outside the cluster now and then, none (the cluster, or an error)
VS_PLACEMENT = st.sampled_from(['DC0_C0_H0', 'DC0_C0_H1', 'DC0_C0_H0', 'DC0_H0', None])


class VSphereTarget(Target):
    """A module against a vCenter simulator started for this target alone (its own state directory), whose
    snapshot covers the simulator's VMs, port groups and datastores named with the target's prefix."""

    kinds = ('vsphere',)
    backend = 'vsphere'
    always = VS_CONN
    rare = VS_RARE
    machines = 1  # VMs the simulator makes per cluster and standalone host

    def setup(self):
        super().setup()
        self.state_dir = os.path.join('/run/virtfleet-test', 'vcsim-fz-%s-%s' % (self.env.run_id, self.stem))
        env = dict(os.environ, VIRTFLEET_VCSIM_DIR=self.state_dir, VIRTFLEET_VCSIM_MACHINES=str(self.machines))
        env_script('vcsim-up.sh', env=env)
        self.facts = load_vcsim(self.state_dir)
        self.vsphere = snapshots.VSphere(self.facts)
        self.extra_secrets = [self.facts['password']]

    def watched(self):
        return [self.prefix]

    def snapshot(self):
        return {'vsphere': self.vsphere.snapshot(self.watched())}

    def teardown(self):
        try:
            self.vsphere.remove_all([self.prefix])
            self.vsphere.close()
        finally:
            env = dict(os.environ, VIRTFLEET_VCSIM_DIR=self.state_dir)
            subprocess.run(['bash', os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'env',
                                                 'vcsim-down.sh')], env=env, check=False, capture_output=True)
            shutil.rmtree(self.state_dir, ignore_errors=True)
            shutil.rmtree(self.dir, ignore_errors=True)

    def conn_hints(self):
        facts = self.facts
        return ({('hostname',): st.sampled_from([facts['host'], facts['host'], 'localhost']),
                 ('port',): st.just(int(facts['port'])),
                 ('username',): st.just(facts['username']),
                 ('password',): st.just(facts['password']),
                 ('ca_path',): st.just(facts['ca_file']),
                 ('validate_certs',): st.booleans(),
                 ('backend',): st.sampled_from(['auto', 'vsphere']),
                 ('datacenter',): st.just(VS_DC), ('cluster',): st.just(VS_CLUSTER),
                 ('host',): st.sampled_from(VS_HOSTS)},
                {('hostname',): st.sampled_from(['127.0.0.2', '', '256.0.0.1', 'vft-fz-none.invalid', 'x y']),
                 ('port',): st.sampled_from([1, 0, -1, 70000, 'x']),
                 ('username',): st.sampled_from(['', 'nobody', 'root']),
                 ('password',): secrets('vpw'),
                 ('ca_path',): confined_paths(self.dir),
                 ('host',): st.one_of(st.sampled_from(['DC0_C0_H9', '', 'dc0_c0_h0']), metachar_text),
                 ('cluster',): st.one_of(st.sampled_from(['DC0_C9', '']), metachar_text)})


class VSphereVmTarget(VSphereTarget):
    key = 'vm@vsphere'
    module = 'vm'
    stem = 'vs'
    always = VS_CONN + ('shutdown_timeout', 'force', 'cluster', 'datastore')
    rare = LIBVIRT_ONLY + VS_RARE
    max_optional = 5

    def coherent(self, args):
        """x86_64 only; the cluster left out for the standalone host; port groups that exist."""
        args = dict(args)
        if 'arch' in args:
            args['arch'] = 'x86_64'
        if args.get('host') == 'DC0_H0':
            args.pop('cluster', None)
        if isinstance(args.get('interfaces'), list):
            args['interfaces'] = [dict(nic, network='VM Network') if nic.get('network') == 'vft-fz-nopg' else nic
                                  for nic in args['interfaces']]
        if isinstance(args.get('disks'), list):  # ide is for cdroms on vSphere
            args['disks'] = [dict(disk, bus='scsi') if disk.get('bus') == 'ide' else disk for disk in args['disks']]
        if 'clone_from' in args and args['clone_from'] == args.get('name'):
            args['clone_from'] = self.prefix + 'nosrc'
        if 'clone_from' not in args:
            args.pop('linked_clone', None)  # (refused without clone_from)
        if args.get('description') == '':
            # govmomi's simulator ignores an empty annotation in ReconfigVM_Task (VirtualMachine.apply copies only
            # non-empty strings), so description: '' cannot clear a VM's description there and every run reports
            # 'updated: description' again; real vSphere clears it. Not a module problem: left out of valid sets.
            del args['description']
        return st.just(args)

    def hints(self):
        hints, bad = self.conn_hints()
        hints.update({
            ('name',): st.sampled_from(self.names()),
            ('state',): st.sampled_from(['present'] * 3 + ['running'] * 3 + ['stopped'] * 2 + ['paused', 'absent']),
            ('shutdown_timeout',): st.integers(0, 1),
            ('force',): st.just(True),
            ('memory',): st.sampled_from([32, 64, '128MiB', 256]),
            ('vcpus',): st.integers(1, 4),
            ('host',): st.sampled_from(['DC0_H0', 'DC0_C0_H0']), ('datastore',): st.sampled_from([VS_DATASTORE]),
            ('resource_pool',): st.sampled_from(['Resources']), ('folder',): st.sampled_from(['vm', '/DC0/vm']),
            # not debian11_64Guest: govmomi's simulator here refuses it now and then (InvalidArgument configSpec.guestId,
            # seen on VMs that had been powered on; why was not pinned down) and its ReconfigVM_Task applies the spec
            # before it checks the guest ID, so a refused change is half made and the next set sees the rest
            ('guest_id',): st.sampled_from(['otherGuest64', 'debian10_64Guest']),
            ('disks', 'size'): st.sampled_from(['16MiB', 64, '1GiB']),
            ('disks', 'pool'): st.sampled_from([VS_DATASTORE]),
            ('disks', 'volume'): st.sampled_from(['x/x.vmdk']),
            ('disks', 'path'): st.sampled_from(['/vmfs/none.vmdk']),
            ('disks', 'bus'): st.sampled_from(['scsi', 'sata', 'ide']),
            ('disks', 'target'): st.sampled_from(['sda', 'sdb', 'hda']),
            ('interfaces', 'network'): st.sampled_from(['VM Network', 'DC0_DVPG0', 'vft-fz-nopg']),
            ('interfaces', 'model'): st.sampled_from(['vmxnet3', 'e1000e', 'e1000']),
            ('interfaces', 'mac'): st.sampled_from(['00:50:56:00:00:01', '00:50:56:00:00:02']),
            ('description',): st.one_of(text_small, junk_text),
            ('tags',): st.dictionaries(st.one_of(st.text(string.ascii_letters, min_size=1, max_size=8), junk_text),
                                       st.one_of(text_small, junk_text), max_size=3),
            # issue #16 (a customization of a running VM waits for its next power cycle: reboot_required, no change)
            ('template',): st.sampled_from([True, False, False, None]),
            ('clone_from',): st.sampled_from(self.names() + [self.prefix + 'nosrc']),
            ('linked_clone',): st.booleans(),
            ('customization',): st.sampled_from(CUSTOMIZATIONS + [
                {'hostname': 'web2', 'networks': [{'dhcp': True}, {'ip': '192.0.2.11', 'prefix': 24}, {'dhcp': True}]}]),
        })
        hints[('disks',)] = st.lists(st.fixed_dictionaries(
            {'size': hints[('disks', 'size')]}, optional={'pool': hints[('disks', 'pool')],
                                                          'bus': hints[('disks', 'bus')]}), max_size=2)
        hints[('interfaces',)] = st.lists(st.fixed_dictionaries(
            {'network': hints[('interfaces', 'network')]}, optional={'model': hints[('interfaces', 'model')]}),
            max_size=2)
        bad.update({
            ('name',): bad_names(self.prefix),
            ('shutdown_timeout',): BAD_INTS,
            ('memory',): BAD_SIZES,
            ('vcpus',): st.sampled_from([0, -1, 4096, 2 ** 31, 'x']),
            ('disks', 'size'): BAD_SIZES,
            ('interfaces', 'mac'): BAD_MACS,
            ('customization',): st.sampled_from(BAD_CUSTOMIZATIONS + CUSTOMIZATIONS_CLOUD_INIT),
            ('clone_from',): st.sampled_from(['', 'a/b', self.prefix + '0']),
        })
        return hints, bad


class VSphereNetworkTarget(VSphereTarget):
    """Standard vSwitch port groups on one host or every host of the cluster."""
    key = 'network@vsphere'
    module = 'network'
    stem = 'vsn'
    always = VS_CONN + ('host',)
    rare = VS_RARE + ('autostart', 'mode', 'bridge', 'mtu', 'domain', 'ipv4', 'ipv6', 'dhcp_hosts', 'dns_hosts',
                      'restart')
    max_optional = 4
    # the host of each name's port group: govmomi's simulator refuses a port group name another host already has
    # (DuplicateName), so a valid set keeps each name on one host, and a cluster-wide one would fail on the second
    PLACES = ('DC0_C0_H0', 'DC0_C0_H1', 'DC0_H0', 'DC0_C0_H0')

    def coherent(self, args):
        args = dict(args)
        if args.get('name') in self.names():
            index = self.names().index(args['name'])
            args['host'] = self.PLACES[index]
            args.pop('cluster', None)
            if 'vswitch' in args:
                args['vswitch'] = 'vSwitch0'
            if 'vlan' in args:  # one VLAN a name: the simulator cannot change a port group (UpdatePortGroup)
                args['vlan'] = (0, 10, 20, 4095)[index]
        # a port group is present or absent, and changes at once (restart is libvirt's)
        if args.get('state') in ('active', 'inactive'):
            args['state'] = 'present'
        args.pop('restart', None)
        return st.just(args)

    def hints(self):
        hints, bad = self.conn_hints()
        hints.update({
            ('name',): st.sampled_from(self.names()),
            ('host',): VS_PLACEMENT,
            ('state',): st.sampled_from(['present'] * 4 + ['active', 'inactive', 'absent', 'absent']),
            ('vlan',): st.one_of(st.integers(0, 4095), st.sampled_from([0, 10, 20, 4095])),
            ('vswitch',): st.sampled_from(['vSwitch0'] * 3 + ['vSwitch9']),
        })
        bad.update({
            ('name',): bad_names(self.prefix),
            ('vlan',): st.sampled_from([-1, 4096, 2 ** 31, 'x', 1.5, 'ten']),
            ('vswitch',): st.one_of(st.sampled_from(['', 'vSwitch0 ', 'x' * 40]), metachar_text),
        })
        return hints, bad


class VSphereStoragePoolTarget(VSphereTarget):
    """NFS datastores mounted on chosen hosts. govmomi's simulator makes a NAS datastore from a directory of
    its working directory named like the datastore (tests/env/vcsim-up.sh): one for each name of the target."""
    key = 'storage_pool@vsphere'
    module = 'storage_pool'
    stem = 'vsp'
    always = VS_CONN + ('source', 'type', 'host')
    rare = VS_RARE + ('path', 'autostart', 'build', 'refresh', 'delete_data', 'restart_if_required')
    max_optional = 4

    def setup(self):
        super().setup()
        workdir = os.readlink('/proc/%d/cwd' % int(self.facts['pid']))
        for name in self.names():
            os.makedirs(os.path.join(workdir, name), exist_ok=True)

    def coherent(self, args):
        """Each name is one export of one server (a datastore is never remounted from another), on a host."""
        args = dict(args)
        if args.get('name') in self.names():
            index = self.names().index(args['name'])
            source = {'hosts': [('nfs.vft.example', '127.0.0.1', 'nfs2.vft.example', 'nfs.vft.example')[index]],
                      'dir': '/export/vft-fz-%d' % index}
            if isinstance(args.get('source'), dict) and 'format' in args['source']:
                source['format'] = 'nfs'
            args.update(source=source, type='netfs')
            if args.get('host') is None:
                args['host'] = 'DC0_C0_H0'
            if args['host'] == 'DC0_H0':  # the standalone host is in no cluster
                args.pop('cluster', None)
        if args.get('state') == 'inactive':  # a datastore is mounted or not
            args['state'] = 'present'
        return st.just(args)

    def hints(self):
        hints, bad = self.conn_hints()
        servers = ['nfs.vft.example', '127.0.0.1', 'nfs2.vft.example']
        hints.update({
            ('name',): st.sampled_from(self.names()),
            ('state',): st.sampled_from(['present'] * 3 + ['active', 'inactive', 'absent', 'absent']),
            ('host',): VS_PLACEMENT,
            ('type',): st.sampled_from(['netfs'] * 6 + ['dir', None]),
            ('source', 'hosts'): st.lists(st.sampled_from(servers), min_size=1, max_size=2),
            ('source', 'dir'): st.sampled_from(['/export/vft-fz-a', '/export/vft-fz-b', '/']),
            ('source', 'format'): st.sampled_from(['nfs', 'nfs', 'nfs', 'nfs41', 'nfs41', 'auto']),
            ('source', 'name'): st.sampled_from(['x']),
            ('force',): st.booleans(),
        })
        hints[('source',)] = st.fixed_dictionaries(
            {'hosts': hints[('source', 'hosts')], 'dir': hints[('source', 'dir')]},
            optional={'format': hints[('source', 'format')]})
        bad.update({
            ('name',): bad_names(self.prefix),
            **BAD_NFS_SOURCE,
        })
        return hints, bad


class VSphereMigrateTarget(VSphereTarget):
    """vMotion and storage vMotion of the VMs the simulator made at start (one per cluster and standalone host).
    ``destination`` names the ESXi host; one valid set in five gives it by its deprecated alias ``host``."""
    key = 'migrate@vsphere'
    module = 'migrate'
    stem = 'vsm'
    always = VS_CONN + ('destination',)
    rare = VS_RARE + ('destination_connect_uri', 'destination_username', 'destination_password',
                      'mode', 'migration_uri', 'listen_address', 'copy_storage', 'peer_to_peer', 'tunnelled',
                      'persistent', 'undefine_source', 'unsafe', 'auto_converge', 'post_copy', 'post_copy_after',
                      'post_copy_after_iterations', 'compression', 'parallel_connections', 'bandwidth',
                      'max_downtime', 'tls', 'tls_destination', 'destination_memory_reserve')
    max_optional = 4
    VMS = ('DC0_C0_RP0_VM0', 'DC0_H0_VM0')

    def watched(self):
        return [self.prefix] + list(self.VMS)

    def coherent(self, args):
        """A VM that exists, moved to a host (in the cluster, or the standalone one), a pool and datastore there;
        the host given as destination, or now and then by its deprecated alias host."""
        args = dict(args)
        if args.get('destination') is None:
            args['destination'] = 'DC0_C0_H1'
        if args['destination'] == 'DC0_H0':
            args.pop('cluster', None)
        if 'resource_pool' in args:
            args['resource_pool'] = 'Resources'
        if 'datastore' in args:
            args['datastore'] = VS_DATASTORE

        def named(alias):
            if not alias:
                return args
            renamed = dict(args, host=args['destination'])
            del renamed['destination']
            return renamed
        return st.sampled_from([False, False, False, False, True]).map(named)

    def hints(self):
        hints, bad = self.conn_hints()
        hints.update({
            ('name',): st.sampled_from(list(self.VMS)),
            ('destination',): VS_PLACEMENT,
            ('resource_pool',): st.sampled_from(['Resources', 'Resources', 'vft-fz-nopool']),
            ('datastore',): st.sampled_from([VS_DATASTORE, 'LocalDS_1', 'vft-fz-nods']),
            ('folder',): st.sampled_from(['vm', '/DC0/vm']),
            ('timeout',): st.integers(1, 60),
        })
        bad.update({
            ('name',): st.one_of(bad_names(self.prefix), st.just(self.prefix + '9')),
            ('destination',): st.one_of(bad[('host',)], st.just('qemu+ssh://vft-fz-hv2/system')),
            ('timeout',): BAD_INTS,
        })
        return hints, bad


class VSphereInfoTarget(VSphereTarget):
    info = True
    always = VS_CONN + ('host',)
    max_optional = 3

    def __init__(self, env, module, stem):
        self.module = module
        self.key = module + '@vsphere'
        self.stem = stem
        super().__init__(env)

    def snapshot(self):
        return {}

    def hints(self):
        hints, bad = self.conn_hints()
        hints[('host',)] = VS_PLACEMENT
        names = list(VSphereMigrateTarget.VMS) + ['VM Network', VS_DATASTORE, 'DC0_DVPG0']
        hints[('name',)] = st.one_of(st.sampled_from(names), st.text(SAFE_WORD, min_size=1, max_size=12))
        return hints, bad

    def coherent(self, args):
        """host_info describes one host: a valid set names it."""
        if self.module == 'host_info' and args.get('host') is None:
            args = dict(args, host='DC0_C0_H0')
        return st.just(args)


def load_vcsim(state_dir):
    import json  # pylint: disable=import-outside-toplevel
    with open(os.path.join(state_dir, 'env.json')) as handle:
        facts = json.load(handle)
    with open(os.path.join(state_dir, 'password')) as handle:
        facts['password'] = handle.read().strip()
    return facts


INFO = {'vm_info': 'vmi', 'network_info': 'neti', 'host_info': 'hosti', 'storage_pool_info': 'spi',
        'volume_info': 'voli'}
VSPHERE_INFO = {'vm_info@vsphere': 'vsvi', 'host_info@vsphere': 'vshi', 'network_info@vsphere': 'vsni',
                'storage_pool_info@vsphere': 'vssi'}
CLASSES = {'vm': VmTarget, 'fleet': FleetTarget, 'network': NetworkTarget, 'container': ContainerTarget,
           'container_network': ContainerNetworkTarget, 'container_volume': ContainerVolumeTarget,
           'container_pod': ContainerPodTarget, 'container_image': ContainerImageTarget,
           'container_info': ContainerInfoTarget,
           'storage_pool': PoolTarget, 'volume': VolumeTarget, 'cloud_init_seed': SeedTarget,
           'migrate': MigrateTarget, 'vm@vsphere': VSphereVmTarget, 'network@vsphere': VSphereNetworkTarget,
           'storage_pool@vsphere': VSphereStoragePoolTarget, 'migrate@vsphere': VSphereMigrateTarget}


def make(key, env):
    if key in INFO:
        return InfoTarget(env, key, INFO[key])
    if key in VSPHERE_INFO:
        return VSphereInfoTarget(env, key.split('@')[0], VSPHERE_INFO[key])
    return CLASSES[key](env)


# -- VM snapshots (libvirt) -----------------------------------------------------------------------------

SNAPSHOT_GUEST = '''<domain type='kvm'><name>%(name)s</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='%(disk)s'/><target dev='vda' bus='virtio'/></disk></devices></domain>'''


class SnapshotTarget(Target):
    """vm_snapshot on two halted guests of its own with qcow2 disks: VM 0 stays shut off, VM 1 runs (later paused).

    A valid set keeps to what re-runs as no change (the fuzzer repeats each change): VM 0 is put in the state
    "shut off from snapshot" at setup and is never started, so its reverts stay provable; a revert of VM 1 leaves it
    paused (its snapshots hold memory), which is provable too. Reverting a VM to running is never a no-change (it
    has run since), so valid sets do not ask for it."""

    key = module = 'vm_snapshot'
    stem = 'vsn'
    count = 2
    rare = ('username', 'password', 'backend')
    max_optional = 5

    def setup(self):
        super().setup()
        conn = self.env.libvirt.conn
        self.snap_names = ['s0', 's1', 's2', "pre<up>&'", 'a b']
        for index, name in enumerate(self.names()):
            disk = os.path.join(self.dir, 'disks', '%d.qcow2' % index)
            write_disk(disk, 'qcow2')
            dom = conn.defineXML(SNAPSHOT_GUEST % {'name': name, 'disk': disk})
            if index == 0:  # shut off "from snapshot": a revert that stops an active VM leaves that reason
                base = dom.snapshotCreateXML("<domainsnapshot><name>base</name><memory snapshot='no'/></domainsnapshot>", 0)
                dom.createWithFlags(1)  # VIR_DOMAIN_START_PAUSED
                dom.revertToSnapshot(base, 0)
            else:
                dom.create()

    def coherent(self, args):
        args = dict(args)
        names = self.names()
        if args.get('vm') not in names:
            return st.just(args)
        state = args.get('state') or 'present'
        keep = {'present': ('description', 'location'), 'absent': ('children',), 'reverted': ()}[state]
        for key in ('children', 'vm_state', 'memory', 'quiesce', 'description', 'location'):
            if key not in keep:
                args.pop(key, None)
        if state == 'reverted':
            args['vm_state'] = 'stopped' if args['vm'] == names[0] else 'paused'
        elif state == 'present' and args['vm'] == names[1]:
            args.update(memory=True, location='internal')
        return st.just(args)

    def snapshot(self):
        state = super().snapshot()
        state['snapshots'] = snapshot_trees(self.env.libvirt.conn, self.prefix)
        return state

    def rerun_changes_by_design(self, args):
        """A revert is not repeated only when libvirt's reason for the VM's state is still "from snapshot"
        (vm_snapshot's documented rule). A revert to a memory snapshot left stopped is powered off after it
        (reason "destroyed"), and a revert of a VM that was shut off for another reason keeps that reason: the
        next run cannot prove the VM is still at the snapshot and reverts again. A valid set meets this when an
        invalid one started VM 0, or took a memory snapshot of it while it ran."""
        import libvirt  # pylint: disable=import-outside-toplevel
        if args.get('state') != 'reverted':
            return None
        # no such VM (libvirt's error, or a name libvirt-python cannot take): nothing is by design
        try:
            state, reason = self.env.libvirt.conn.lookupByName(args['vm']).state()[:2]
        except Exception:  # pylint: disable=broad-except
            return None
        if (state, reason) in ((libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT),
                               (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_FROM_SNAPSHOT)):
            return None
        return 'the VM is in libvirt state %d, reason %d, not "from snapshot": a revert is not provably still in ' \
               'effect' % (state, reason)

    def hints(self):
        hints, bad = self.conn_hints()
        hints.update({
            ('vm',): st.sampled_from(self.names()),
            ('name',): st.sampled_from(self.snap_names),
            ('state',): st.sampled_from(['present'] * 3 + ['reverted'] * 2 + ['absent'] * 2),
            ('vm_state',): st.sampled_from(['running', 'paused', 'stopped']),
            ('location',): st.sampled_from(['internal', 'internal', 'external']),
            ('description',): st.one_of(text_small, metachar_text),
        })
        bad.update({
            ('vm',): bad_names(self.prefix),
            ('name',): st.one_of(junk_text, st.sampled_from(['a/b', 'q"', 'b\\s', ' s0', '', 'missing'])),
            ('description',): junk_text,
        })
        return hints, bad


CLASSES['vm_snapshot'] = SnapshotTarget
INFO['vm_snapshot_info'] = 'snapi'


# -- VM snapshots (vSphere) -----------------------------------------------------------------------------

def _vsphere_trees(vm):
    """The snapshot tree of a pyvmomi VM as plain tuples (name, parent, recorded state, quiesced, current), read
    through the PropertyCollector (the simulator panics on a Fetch of the unset ``snapshot`` property)."""
    from pyVmomi import vim, vmodl  # pylint: disable=import-outside-toplevel
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=vm, skip=False)],
                         propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=['snapshot'], all=False)])
    collector = vim.ServiceInstance('ServiceInstance', vm._stub).RetrieveContent().propertyCollector
    info = next((prop.val for item in collector.RetrieveContents([spec]) for prop in item.propSet or []), None)
    if info is None:
        return []
    current = info.currentSnapshot._moId if info.currentSnapshot is not None else None
    found = []

    def walk(trees, parent):
        for tree in trees or []:
            found.append((tree.name, parent, tree.state, bool(tree.quiesced), tree.description,
                          tree.snapshot._moId == current))
            walk(tree.childSnapshotList, tree.name)
    walk(info.rootSnapshotList, None)
    return found


class VSphereSnapshotTarget(VSphereTarget):
    """vm_snapshot on two VMs of its own on the target's simulator: VM 0 stopped, VM 1 running.

    A valid set keeps to what re-runs as no change (the fuzzer repeats each change): vSphere cannot show that a VM is
    still at a snapshot, so a revert is never a no-change there and valid sets do not ask for one; a snapshot of the
    running VM is taken with memory (as the simulator records it), of the stopped VM without memory or quiesce."""

    key = 'vm_snapshot@vsphere'
    module = 'vm_snapshot'
    stem = 'vssn'
    count = 2
    max_optional = 5

    def setup(self):
        from pyVim.task import WaitForTask  # pylint: disable=import-outside-toplevel
        from pyVmomi import vim  # pylint: disable=import-outside-toplevel
        super().setup()
        self.snap_names = ['s0', 's1', 's2', "pre<up>&'", 'a b']
        dc = next(d for d in self.vsphere.si.RetrieveContent().rootFolder.childEntity if d.name == VS_DC)
        cluster = next(c for c in dc.hostFolder.childEntity if c.name == VS_CLUSTER)
        for index, name in enumerate(self.names()):
            config = vim.vm.ConfigSpec(name=name, memoryMB=32, numCPUs=1, guestId='otherGuest64',
                                       files=vim.vm.FileInfo(vmPathName='[%s]' % VS_DATASTORE))
            task = dc.vmFolder.CreateVM_Task(config=config, pool=cluster.resourcePool)
            WaitForTask(task)
            if index == 1:
                WaitForTask(task.info.result.PowerOnVM_Task())

    def coherent(self, args):
        args = dict(args)
        names = self.names()
        if args.get('vm') not in names:
            return st.just(args)
        if (args.get('state') or 'present') == 'reverted':
            args['state'] = 'present'
        state = args.get('state') or 'present'
        keep = {'present': ('description',), 'absent': ('children',)}[state]
        for key in ('children', 'vm_state', 'memory', 'quiesce', 'description', 'location'):
            if key not in keep:
                args.pop(key, None)
        if state == 'present' and args['vm'] == names[1]:
            args['memory'] = True
        return st.just(args)

    def snapshot(self):
        state = super().snapshot()
        state['snapshots'] = dict((vm.name, _vsphere_trees(vm))
                                  for vm in self.vsphere.objects('VirtualMachine', [self.prefix]))
        return state

    def hints(self):
        hints, bad = self.conn_hints()
        hints.update({
            ('vm',): st.sampled_from(self.names()),
            ('name',): st.sampled_from(self.snap_names),
            ('state',): st.sampled_from(['present'] * 3 + ['reverted'] + ['absent'] * 2),
            ('vm_state',): st.sampled_from(['running', 'paused', 'stopped']),
            ('folder',): st.sampled_from(['vm', '/DC0/vm']),
            ('description',): st.one_of(text_small, metachar_text),
        })
        bad.update({
            ('vm',): bad_names(self.prefix),
            ('name',): st.one_of(junk_text, st.sampled_from([' s0', '', 'missing', 'a\nb'])),
            ('folder',): st.sampled_from(['vft-fz-nofolder', '']),
            ('description',): junk_text,
        })
        return hints, bad


class VSphereSnapshotInfoTarget(VSphereInfoTarget):
    """vm_snapshot_info on the simulator's own VMs: its VM option is ``vm``, hinted as ``name`` is for the others."""

    def __init__(self, env):
        super().__init__(env, 'vm_snapshot_info', 'vssni')

    def hints(self):
        hints, bad = super().hints()
        hints[('vm',)] = hints.pop(('name',))
        return hints, bad


CLASSES['vm_snapshot@vsphere'] = VSphereSnapshotTarget
CLASSES['vm_snapshot_info@vsphere'] = VSphereSnapshotInfoTarget


# -- the vsphere inventory plugin's configuration ---------------------------------------------------------

INVENTORY_PLUGIN = 'ansible_collections.virtfleet.virt.plugins.inventory.vsphere'
# the options of the constructed and inventory_cache fragments that a set may carry (not cache_plugin,
# cache_connection and the like: a fuzzed one could write files anywhere)
INVENTORY_FRAGMENT_OPTIONS = {
    'compose': {'type': 'dict'}, 'groups': {'type': 'dict'},
    'keyed_groups': {'type': 'list', 'elements': 'dict',
                     'options': {'key': {'type': 'str', 'required': True}, 'prefix': {'type': 'str'},
                                 'separator': {'type': 'str'}, 'default_value': {'type': 'str'}}},
    'strict': {'type': 'bool'}, 'cache': {'type': 'bool'}, 'leading_separator': {'type': 'bool'},
}
INVENTORY_EXPRESSIONS = ["virtfleet_vm.name", "virtfleet_vm.name | upper", "virtfleet_vm.state == 'running'",
                         "virtfleet_vm.vsphere.cluster == 'DC0_C0'", "virtfleet_vm.vsphere.host", "true",
                         "virtfleet_vm.vsphere.moid ~ '-' ~ virtfleet_vm.vsphere.datacenter",
                         "virtfleet_vm.spec.tags.role | default('none')", "virtfleet_vm.nothing.here"]
BAD_EXPRESSIONS = st.one_of(st.sampled_from(['{{', 'virtfleet_vm.', '1 +', '[1, 2', "'a' ~", 'undefined_var',
                                             'virtfleet_vm.name()', '1 / 0', "range(10) | list | first", '',
                                             ' ', "virtfleet_vm['name'", 'None', 'virtfleet_vm.spec.memory + "x"']),
                            metachar_text, st.none(), st.integers(-5, 5), st.lists(st.integers(0, 3), max_size=2))


def inventory_spec():
    """The plugin's own options (its DOCUMENTATION) and a few of its fragments', as an argument spec:
    type, elements, choices, required, no_log for the password."""
    import yaml  # pylint: disable=import-outside-toplevel
    doc = yaml.safe_load(importlib.import_module(INVENTORY_PLUGIN).DOCUMENTATION)
    spec = {}
    for key, opt in doc['options'].items():
        spec[key] = dict((k, opt[k]) for k in ('type', 'elements', 'choices', 'required') if k in opt)
        if key == 'password':
            spec[key]['no_log'] = True
    spec.update(INVENTORY_FRAGMENT_OPTIONS)
    return spec


class VSphereInventoryTarget(VSphereTarget):
    """The virtfleet.virt.vsphere inventory plugin: a set is a source file, read by ``ansible-inventory --list``
    (fuzz.py ``call_inventory``) from a simulator of the target's own (4 VMs). Nothing may change; a set ends in
    a valid inventory or a clear error (one of Ansible's errors, never a Python one), never shows the password."""

    key = 'inventory@vsphere'
    module = 'vsphere'
    stem = 'inv'
    inventory = True
    info = True
    always = ('plugin',) + VS_CONN
    rare = ('proxy_host', 'proxy_port', 'validate_certs')
    max_optional = 5
    machines = 2

    def __init__(self, env):  # pylint: disable=super-init-not-called
        self.env = env
        self.prefix = env.prefix(self.stem)
        self.dir = os.path.join(env.data, self.stem)
        self.spec, self.kwargs = inventory_spec(), {}
        self.secret_paths = no_log_paths(self.spec)
        self.extra_secrets = []

    def invalid_only(self):
        return set()

    def setup(self):
        """The simulator, one VM of it running with a guest IP and tags as virtfleet.virt.vm stores them."""
        super().setup()
        from pyVim.task import WaitForTask  # pylint: disable=import-outside-toplevel
        from pyVmomi import vim  # pylint: disable=import-outside-toplevel
        vm = next(v for v in self.vsphere.objects('VirtualMachine') if v.name == 'DC0_C0_RP0_VM0')
        WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[
            vim.option.OptionValue(key='virtfleet.tags.role', value='"web"'),
            vim.option.OptionValue(key='virtfleet.tags.n', value='3')])))
        WaitForTask(vm.PowerOnVM_Task())
        WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[
            vim.option.OptionValue(key='SET.guest.ipAddress', value='10.20.0.11')])))

    def snapshot(self):
        """The whole simulator's VMs, port groups and datastores: an inventory changes nothing at all."""
        return {'vsphere': self.vsphere.snapshot([''])}

    def hints(self):
        hints, bad = self.conn_hints()
        expressions = st.sampled_from(INVENTORY_EXPRESSIONS)
        names = st.text(string.ascii_letters + '_', min_size=1, max_size=8)
        hints.update({
            ('host_name_template',): expressions,
            ('states',): st.lists(st.sampled_from(['running', 'stopped', 'paused']), max_size=3),
            ('tags',): st.dictionaries(names, st.one_of(st.text(SAFE_WORD, max_size=6), st.integers(0, 3)), max_size=2),
            ('filters',): st.lists(expressions, max_size=2),
            ('compose',): st.dictionaries(names, expressions, max_size=2),
            ('groups',): st.dictionaries(names, expressions, max_size=2),
            # a key must give a string, a list or a dict (Ansible refuses a boolean one with strict: true)
            ('keyed_groups', 'key'): st.sampled_from([e for e in INVENTORY_EXPRESSIONS if '==' not in e and e != 'true']),
            ('keyed_groups', 'prefix'): st.text(SAFE_WORD, max_size=6),
            ('proxy_host',): st.just('127.0.0.1'),
            ('proxy_port',): st.just(9),
        })
        bad.update({
            ('host_name_template',): BAD_EXPRESSIONS,
            ('filters',): st.one_of(st.lists(BAD_EXPRESSIONS, min_size=1, max_size=2), BAD_EXPRESSIONS),
            ('compose',): st.one_of(st.dictionaries(names, BAD_EXPRESSIONS, min_size=1, max_size=2), BAD_EXPRESSIONS),
            ('groups',): st.one_of(st.dictionaries(names, BAD_EXPRESSIONS, min_size=1, max_size=2), BAD_EXPRESSIONS),
            ('keyed_groups', 'key'): BAD_EXPRESSIONS,
            ('proxy_host',): st.sampled_from(['', 'x y', '256.0.0.1', 'vft-fz-none.invalid']),
        })
        return hints, bad


CLASSES['inventory@vsphere'] = VSphereInventoryTarget

"""The migrate logic against fake libvirt clients: placement, pre-checks, the job watch, failures."""
from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile as rc
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_migrate as lm
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import (
    BackendError,
    NotFound,
    SpecError,
    VirtError,
)
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan

SRC_URI = 'qemu+ssh://hv1/system'
DST_URI = 'qemu+tls://hv2/system'

DOMAIN_XML = '''<domain type='kvm'>
  <name>{name}</name><uuid>{uuid}</uuid>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
  {cpu}
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><source file='/srv/shared/{name}.img'/><target dev='vda'/></disk>
    <disk type='volume' device='disk'><source pool='data' volume='{name}-data'/><target dev='vdb'/></disk>
    <disk type='file' device='cdrom'><source file='/srv/iso/install.iso'/><target dev='sda'/><readonly/></disk>
    <interface type='network'><source network='prod'/></interface>
    <interface type='bridge'><source bridge='br0'/></interface>
  </devices>
</domain>'''
LIVE_CPU = ("<cpu mode='custom' match='exact' check='full'><model fallback='forbid'>qemu64</model>"
            "<feature policy='require' name='x2apic'/></cpu>")


class FakeDom:
    def __init__(self, name, uuid, state='running', persistent=True, cpu=LIVE_CPU, memory_kib=2 * 1024 * 1024):
        self._name, self._uuid = name, uuid
        self.state, self.persistent, self.cpu, self.memory_kib = state, persistent, cpu, memory_kib

    def name(self):
        return self._name

    def UUIDString(self):
        return self._uuid


class FakePool:
    def __init__(self, name, target, active=True):
        self._name, self.target, self.active = name, target, active

    def name(self):
        return self._name


class FakeClient:
    def __init__(self, uri, host_uuid, hostname, domains=(), networks=None, pools=(), free_kib=64 * 1024 * 1024,
                 cpu_verdict=('superset', ''), reachable=True):
        self.uri = uri
        self.host_uuid, self._hostname = host_uuid, hostname
        self.domains = dict((d.name(), d) for d in domains)
        self.networks = networks if networks is not None else {'prod': True}
        self.pools = dict((p.name(), p) for p in pools)
        self.free_kib = free_kib
        self.cpu_verdict = cpu_verdict
        self.reachable = reachable
        self.volumes = {('data', 'web1-data')}
        self.writes = []
        self.compared = []

    # reads
    def hostname(self):
        if not self.reachable:
            raise BackendError('cannot connect to libvirt at %s: Connection refused' % self.uri)
        return self._hostname

    def capabilities(self):
        return ("<capabilities><host><uuid>%s</uuid><cpu><arch>x86_64</arch><model>EPYC</model></cpu></host>"
                "</capabilities>" % self.host_uuid)

    def lookup_domain(self, name):
        if name not in self.domains:
            raise NotFound('no VM %s' % name)
        return self.domains[name]

    def lookup_domain_by_uuid(self, uuid):
        for dom in self.domains.values():
            if dom.UUIDString() == uuid:
                return dom
        raise NotFound('no VM with UUID %s' % uuid)

    def domain_state(self, dom):
        return dom.state

    def domain_is_persistent(self, dom):
        return dom.persistent

    def domain_xml(self, dom, inactive=False):
        return DOMAIN_XML.format(name=dom.name(), uuid=dom.UUIDString(), cpu='' if inactive else dom.cpu)

    def domain_info(self, dom):
        return [1, dom.memory_kib, dom.memory_kib, 1, 0]

    def lookup_network(self, name):
        if name not in self.networks:
            raise NotFound('no network %s' % name)
        return name

    def network_is_active(self, net):
        return self.networks[net]

    def lookup_pool(self, name):
        if name not in self.pools:
            raise NotFound('no pool %s' % name)
        return self.pools[name]

    def pool_is_active(self, pool):
        return pool.active

    def lookup_pool_by_target_path(self, path):
        for pool in self.pools.values():
            if pool.target == path:
                return pool
        raise NotFound('no pool at %s' % path)

    def lookup_volume_by_path(self, path):
        raise NotFound('no volume at %s' % path)

    def lookup_volume(self, pool_name, vol_name):
        self.lookup_pool(pool_name)
        if (pool_name, vol_name) not in self.volumes:
            raise NotFound('looking up volume %s in pool %s: no storage vol with matching name' % (vol_name, pool_name))
        return vol_name

    def compare_hypervisor_cpu(self, cpu_xml, emulator=None, arch=None, machine=None, virttype=None):
        self.compared.append(('hypervisor', cpu_xml, emulator, arch, machine, virttype))
        return self.cpu_verdict

    def compare_host_cpu(self, cpu_xml):
        self.compared.append(('host', cpu_xml))
        return self.cpu_verdict

    def memory_stats(self):
        return {'total': 128 * 1024 * 1024, 'free': self.free_kib, 'buffers': 0, 'cached': 0}

    def migration_supports(self, flag):
        return True

    def domain_job_stats(self, dom, completed=False):
        return {}

    # writes
    def set_migration_max_downtime(self, dom, ms):
        self.writes.append(('max_downtime', dom.name(), ms))

    def resume_domain(self, dom):
        self.writes.append(('resume', dom.name()))
        dom.state = 'running'


class World:
    """A source and a destination; ``migrate_domain`` on the source moves the VM like libvirt does."""

    def __init__(self, src_domains=(), dst_domains=(), **dst_kw):
        self.src = FakeClient(SRC_URI, 'uuid-hv1', 'hv1', src_domains, pools=[FakePool('shared', '/srv/shared')])
        dst_kw.setdefault('pools', [FakePool('shared', '/srv/shared'), FakePool('data', '/srv/data')])
        self.dst = FakeClient(DST_URI, 'uuid-hv2', 'hv2', dst_domains, **dst_kw)
        self.src.migrate_domain = self.migrate_domain
        self.src.abort_domain_job = self.abort
        self.src.start_postcopy = self.start_postcopy
        self.src.domain_job_stats = self.source_stats
        self.dst.domain_job_stats = self.dest_stats
        self.behaviour = 'succeed'
        self.calls = []
        self.aborted = threading.Event()
        self.iteration = 0

    def migrate_domain(self, dom, uri, flags, params, destination=None):
        self.calls.append((dom.name(), uri, list(flags), dict(params), destination))
        if self.behaviour == 'refuse':
            raise BackendError('migrating VM %s to %s failed: operation failed: Lost connection to destination host'
                               % (dom.name(), uri))
        if self.behaviour == 'pause-and-fail':
            dom.state = 'paused'
            raise BackendError('migrating VM %s failed: internal error: client socket is closed' % dom.name())
        if self.behaviour == 'slow':
            time.sleep(0.1)
        if self.behaviour in ('hang', 'converge-slowly'):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                self.iteration += 1
                if self.aborted.wait(0.05):
                    raise BackendError('migrating VM %s failed: operation aborted: migration out: canceled by client'
                                       % dom.name())
                if self.behaviour == 'converge-slowly' and ('postcopy', dom.name()) in self.src.writes:
                    break
            else:
                raise AssertionError('never aborted')
        del self.src.domains[dom.name()]
        moved = FakeDom(dom.name(), dom.UUIDString(), state=dom.state if 'LIVE' in flags else 'stopped')
        self.dst.domains[dom.name()] = moved
        return moved

    def abort(self, dom):
        self.src.writes.append(('abort', dom.name()))
        self.aborted.set()

    def start_postcopy(self, dom):
        self.src.writes.append(('postcopy', dom.name()))

    def source_stats(self, dom, completed=False):
        return {'type': 2, 'memory_iteration': self.iteration // 4, 'disk_total': 100, 'disk_processed': 100}

    def dest_stats(self, dom, completed=False):
        assert completed
        return {'type': 3, 'time_elapsed': 300, 'downtime': 17, 'data_total': 1000, 'data_processed': 900,
                'memory_iteration': 2, 'memory_processed': 900, 'disk_total': 0}


def _opts(**params):
    base = dict(uri=SRC_URI, destination=DST_URI, mode='live', peer_to_peer=True, tunnelled=False, persistent=True,
                undefine_source=True, unsafe=False, auto_converge=False, post_copy=False, tls=False, timeout=60)
    base.update(params)
    return lm.options_from_params(base)


def _driver(world, **params):
    return lm.LibvirtMigrateDriver(world.src, world.dst, _opts(**params), poll_interval=0.01, confirm_timeout=1)


def _relocate(world, name='web1', check=False, **params):
    return rc.relocate(_driver(world, **params), name, rc.Options(check_mode=check))


def _vm(state='running', **kw):
    return FakeDom('web1', 'u-web1', state=state, **kw)


# -- relocate -------------------------------------------------------------------------------------

def test_live_migration_moves_the_vm_and_reports_the_job():
    world = World([_vm()])
    world.behaviour = 'slow'
    outcome, before, after = _relocate(world)
    assert outcome.changed and outcome.actions == ['migrated (live) to %s' % DST_URI]
    assert before['hostname'] == 'hv1' and after['hostname'] == 'hv2' and after['uri'] == DST_URI
    name, uri, flags, params, destination = world.calls[0]
    assert uri == DST_URI and destination is None
    assert set(flags) >= {'LIVE', 'PEER2PEER', 'PERSIST_DEST', 'UNDEFINE_SOURCE', 'ABORT_ON_ERROR'}
    job = outcome.extra['job']
    assert job['time_elapsed_ms'] == 300 and job['downtime_ms'] == 17 and job['memory_iterations'] == 2
    # the destination leaves the disk copy out: it comes from the source's last statistics
    assert job['disk_transferred_bytes'] == 100 and job['data_transferred_bytes'] == 1000
    assert outcome.extra['prechecks']['cpu'] == 'superset'


def test_already_on_the_destination_changes_nothing():
    world = World([], [_vm()])
    outcome, before, after = _relocate(world)
    assert not outcome.changed and outcome.actions == [] and before == after and after['hostname'] == 'hv2'
    assert world.calls == []


def test_a_stopped_copy_left_on_the_source_is_reported():
    world = World([_vm('stopped')], [_vm()])
    outcome = _relocate(world, undefine_source=False)[0]
    assert not outcome.changed and 'remains on the source' in outcome.warnings[0]


def test_check_mode_runs_the_prechecks_and_moves_nothing():
    world = World([_vm()])
    outcome, before, after = _relocate(world, check=True)
    assert outcome.changed and after['hostname'] == 'hv2' and after['state'] == 'running'
    assert world.calls == [] and world.src.writes == [] and world.dst.writes == []
    assert 'web1' in world.src.domains


def test_check_mode_failing_precheck():
    world = World([_vm()], networks={})
    with pytest.raises(lm.PrecheckFailed) as err:
        _relocate(world, check=True)
    assert 'network prod, which the VM uses, does not exist on the destination' in err.value.msg
    assert not err.value.outcome.changed


@pytest.mark.parametrize('src, dst, mode, fragment, error', [
    ([_vm()], [_vm()], 'live', 'is active on both the source', BackendError),
    ([_vm('stopped')], [], 'live', 'a live migration needs a running VM', SpecError),
    ([_vm()], [], 'offline', 'mode=offline moves stopped VMs only', SpecError),
    ([_vm('crashed')], [], 'live', 'only a running or paused VM can be live-migrated', BackendError),
    ([], [], 'live', 'exists neither on the source', NotFound),
])
def test_placements_that_cannot_move(src, dst, mode, fragment, error):
    world = World(src, dst)
    with pytest.raises(error) as err:
        _relocate(world, mode=mode)
    assert fragment in err.value.msg
    assert world.calls == []


def test_destination_not_reachable():
    world = World([_vm()], reachable=False)
    with pytest.raises(lm.PrecheckFailed) as err:
        _relocate(world)
    assert 'the destination %s is not reachable' % DST_URI in err.value.msg and 'nothing was changed' in err.value.msg


def test_same_host_refused():
    world = World([_vm()])
    world.dst.host_uuid = 'uuid-hv1'
    with pytest.raises(lm.PrecheckFailed, match='is the same host as the source'):
        _relocate(world)


# -- pre-checks ------------------------------------------------------------------------------------

def test_every_failed_precheck_is_named_and_nothing_is_written():
    twin = FakeDom('web1-old', 'u-web1', state='stopped')
    other = FakeDom('web1', 'u-other', state='stopped')
    world = World([_vm()], [twin, other], networks={}, pools=[FakePool('data', '/srv/data', active=False)],
                  free_kib=1024 * 1024, cpu_verdict=('incompatible', 'Host CPU does not provide required features: avx512f'))
    with pytest.raises(lm.PrecheckFailed) as err:
        _relocate(world, destination_memory_reserve='1GiB')
    msg = err.value.msg
    for fragment in ('nothing was changed',
                     'a VM named web1 already exists on the destination (UUID u-other, stopped)',
                     'a VM with the same UUID u-web1 already exists on the destination as web1-old',
                     'the guest CPU is not compatible with the destination (Host CPU does not provide required '
                     'features: avx512f)',
                     'network prod, which the VM uses, does not exist on the destination',
                     'storage pool data (disk vdb) is not active on the destination',
                     'storage pool shared (disk vda) does not exist on the destination',
                     'not enough free memory on the destination: it has 1024 MiB available',
                     'destination_memory_reserve keeps 1024 MiB'):
        assert fragment in msg
    assert world.calls == [] and world.src.writes == [] and world.dst.writes == []


def test_cpu_is_compared_with_the_destination_hypervisor():
    world = World([_vm()])
    _relocate(world, check=True)
    kind, cpu_xml, emulator, arch, machine, virttype = world.dst.compared[0]
    assert kind == 'hypervisor' and 'qemu64' in cpu_xml and 'name="x2apic"' in cpu_xml
    assert (emulator, arch, machine, virttype) == ('/usr/bin/qemu-system-x86_64', 'x86_64', 'pc-i440fx-7.2', 'kvm')


def test_host_passthrough_compares_the_host_cpus():
    world = World([_vm(cpu="<cpu mode='host-passthrough'/>")], cpu_verdict=('incompatible', 'lacks avx2'))
    with pytest.raises(lm.PrecheckFailed, match='destination host CPU is not a superset of the source host CPU'):
        _relocate(world, check=True)
    assert world.dst.compared[0][0] == 'host' and '<model>EPYC</model>' in world.dst.compared[0][1]


def test_a_cpu_libvirt_does_not_check_is_not_checked():
    world = World([_vm(cpu="<cpu mode='custom' check='none'><model>qemu64</model></cpu>")],
                  cpu_verdict=('incompatible', 'x'))
    outcome = _relocate(world, check=True)[0]
    assert outcome.extra['prechecks']['cpu'].startswith('not checked') and world.dst.compared == []


def test_a_network_must_be_active_for_a_live_migration_only():
    world = World([_vm()], networks={'prod': False})
    with pytest.raises(lm.PrecheckFailed, match='network prod is not active on the destination'):
        _relocate(world, check=True)
    world = World([_vm('stopped')], networks={'prod': False})
    outcome = _relocate(world, mode='offline', check=True)[0]
    assert outcome.changed and outcome.extra['prechecks']['memory'].startswith('not checked')


def test_copy_storage_needs_a_pool_where_libvirt_creates_the_copy():
    world = World([_vm()], pools=[FakePool('data', '/srv/data')])
    with pytest.raises(lm.PrecheckFailed) as err:
        _relocate(world, copy_storage='all', check=True)
    assert 'copy_storage: the destination has no storage pool with target /srv/shared' in err.value.msg
    world = World([_vm()], pools=[FakePool('elsewhere', '/srv/shared'), FakePool('data', '/srv/data')])
    outcome = _relocate(world, copy_storage='all', check=True)[0]
    assert outcome.extra['prechecks']['copied_disks'] == ['/srv/shared/web1.img']  # not the read-only cdrom


def test_incremental_copy_needs_the_top_image_on_the_destination():
    world = World([_vm()])
    with pytest.raises(lm.PrecheckFailed, match='copy_storage=incremental: libvirt cannot create /srv/shared/web1.img'):
        _relocate(world, copy_storage='incremental', check=True)
    world = World([_vm()])
    world.dst.lookup_volume_by_path = lambda path: path
    outcome = _relocate(world, copy_storage='incremental')[0]
    assert outcome.changed and 'NON_SHARED_INC' in world.calls[0][2]


def test_a_volume_disk_needs_its_volume_in_the_pool_on_the_destination():
    # found by the real-guest migration: a cloud-init seed (a read-only volume disk) on a pool the hosts share,
    # which hv2 had not refreshed since hv1 wrote it, passed the pre-checks and then failed in libvirt
    world = World([_vm()])
    world.dst.volumes = set()
    with pytest.raises(lm.PrecheckFailed) as err:
        _relocate(world, check=True)
    assert 'volume web1-data of storage pool data (disk vdb) does not exist on the destination' in err.value.msg
    assert 'refresh the pool there' in err.value.msg
    with pytest.raises(lm.PrecheckFailed, match='volume web1-data of storage pool data'):
        _relocate(world, copy_storage='incremental', check=True)
    assert world.calls == [] and world.dst.writes == []
    # copy_storage=all copies the writable disk: libvirt creates the volume on the destination
    world.dst.lookup_volume_by_path = lambda path: path
    outcome = _relocate(world, copy_storage='all', check=True)[0]
    assert outcome.changed
    world.dst.volumes = {('data', 'web1-data')}
    outcome = _relocate(world, check=True)[0]
    assert outcome.extra['prechecks']['storage_pools'] == ['shared', 'data']


def test_a_pool_with_the_same_target_under_another_name_will_do():
    world = World([_vm()], pools=[FakePool('images', '/srv/shared'), FakePool('data', '/srv/data')])
    outcome = _relocate(world, check=True)[0]
    assert outcome.extra['prechecks']['storage_pools'] == ['shared', 'data']


# -- the job ------------------------------------------------------------------------------------

def test_flags_and_parameters():
    world = World([_vm()])
    _relocate(world, copy_storage='all', tunnelled=True, auto_converge=True, post_copy=True,
              compression=['xbzrle', 'mt'], bandwidth=100, unsafe=True, undefine_source=False, max_downtime=300)
    flags, params = world.calls[0][2:4]
    assert set(flags) == {'LIVE', 'ABORT_ON_ERROR', 'CHANGE_PROTECTION', 'PEER2PEER', 'TUNNELLED', 'PERSIST_DEST',
                          'UNSAFE', 'AUTO_CONVERGE', 'POSTCOPY', 'NON_SHARED_DISK', 'COMPRESSED'}
    assert params == {'COMPRESSION': ['xbzrle', 'mt'], 'BANDWIDTH': 100}
    assert world.src.writes[0] == ('max_downtime', 'web1', 300)

    world = World([_vm()])
    _relocate(world, peer_to_peer=False, parallel_connections=4, migration_uri='tcp://10.0.0.2', tls=True,
              tls_destination='hv2.example.com', listen_address='10.0.0.2')
    flags, params, destination = world.calls[0][2:5]
    assert 'PEER2PEER' not in flags and {'PARALLEL', 'TLS'} <= set(flags) and destination is world.dst
    assert params == {'PARALLEL_CONNECTIONS': 4, 'URI': 'tcp://10.0.0.2', 'TLS_DESTINATION': 'hv2.example.com',
                      'LISTEN_ADDRESS': '10.0.0.2'}

    world = World([_vm('stopped')])
    outcome, _before, after = _relocate(world, mode='offline')
    assert world.calls[0][2] == ['OFFLINE', 'PEER2PEER', 'PERSIST_DEST', 'UNDEFINE_SOURCE']
    assert after['state'] == 'stopped' and 'wall_time_ms' in outcome.extra['job']


def test_a_failed_job_says_the_vm_stayed_on_the_source():
    world = World([_vm()])
    world.behaviour = 'refuse'
    with pytest.raises(BackendError) as err:
        _relocate(world)
    assert 'Lost connection to destination host' in err.value.msg
    assert 'Nothing moved: VM web1 is still running on the source %s' % SRC_URI in err.value.msg
    assert not err.value.outcome.changed


def test_a_source_left_paused_by_a_failed_job_is_resumed():
    world = World([_vm()])
    world.behaviour = 'pause-and-fail'
    with pytest.raises(BackendError) as err:
        _relocate(world)
    assert 'it was resumed' in err.value.msg and 'still running on the source' in err.value.msg
    assert ('resume', 'web1') in world.src.writes


def test_timeout_aborts_the_job():
    world = World([_vm()])
    world.behaviour = 'hang'
    with pytest.raises(BackendError) as err:
        _relocate(world, timeout=1)
    assert 'did not finish within timeout=1 s and was aborted' in err.value.msg
    assert 'canceled by client' in err.value.msg and 'Nothing moved' in err.value.msg
    assert ('abort', 'web1') in world.src.writes


def test_post_copy_switch_when_precopy_does_not_converge():
    world = World([_vm()])
    world.behaviour = 'converge-slowly'
    outcome = _relocate(world, post_copy=True, post_copy_after_iterations=2)[0]
    assert ('postcopy', 'web1') in world.src.writes and outcome.extra['job']['postcopy'] is True
    assert ('abort', 'web1') not in world.src.writes


def test_post_copy_switch_after_a_time():
    world = World([_vm()])
    world.behaviour = 'converge-slowly'
    outcome = _relocate(world, post_copy=True, post_copy_after=0, post_copy_after_iterations=1000)[0]
    assert outcome.extra['job']['postcopy'] is True


# -- options ----------------------------------------------------------------------------------

@pytest.mark.parametrize('params, fragment', [
    ({'tunnelled': True, 'peer_to_peer': False}, 'tunnelled: needs peer_to_peer=true'),
    ({'tunnelled': True, 'migration_uri': 'tcp://x'}, 'migration_uri: cannot be combined with tunnelled=true'),
    ({'tunnelled': True, 'tls': True}, 'tls: cannot be combined with tunnelled=true'),
    ({'mode': 'offline', 'copy_storage': 'all'}, 'copy_storage: applies to live migration only'),
    ({'mode': 'offline', 'persistent': False}, 'persistent: must be true with mode=offline'),
    ({'post_copy_after_iterations': 2}, 'post_copy_after_iterations: needs post_copy=true'),
    ({'timeout': 0}, 'timeout: must be 1 or more'),
    ({'compression': ['zstd']}, 'set parallel_connections too'),
    ({'tls_destination': 'x'}, 'tls_destination: needs tls=true'),
    ({'destination': SRC_URI}, 'destination: is the source uri'),
    ({'destination_memory_reserve': 'lots'}, 'destination_memory_reserve: cannot read'),
])
def test_options_refused(params, fragment):
    with pytest.raises(SpecError) as err:
        _opts(**params)
    assert fragment in err.value.msg


def test_post_copy_iterations_default():
    assert _opts(post_copy=True)['post_copy_after_iterations'] == lm.POSTCOPY_ITERATIONS
    assert _opts()['post_copy_after_iterations'] is None


def test_relocate_passes_errors_with_the_outcome():
    class Broken:
        def locate(self, name):
            return {'at': 'source', 'warnings': ['careful']}

        def describe(self, placement):
            return {'where': placement['at']}

        def precheck(self, placement):
            return Plan(['moved'], details={'notes': {'prechecks': {}}})

        def move(self, placement, plan):
            raise BackendError('boom')

    with pytest.raises(VirtError) as err:
        rc.relocate(Broken(), 'x', rc.Options())
    assert err.value.outcome.changed is False and err.value.outcome.warnings == ['careful']

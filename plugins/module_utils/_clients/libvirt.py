# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin adapter over libvirt-python.

One connection per module run.  Every libvirt call goes through ``_call`` so
that ``libvirtError`` never escapes: it becomes ``NotFound`` for the "no such
object" codes and ``BackendError`` (with libvirt's own message) otherwise.
"""

from __future__ import annotations

import threading
import time
import traceback

try:
    import libvirt
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised through missing_required_lib
    libvirt = None
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import (
    BackendError,
    MissingLibrary,
    NotFound,
)

_NOT_FOUND_CODES = (
    'VIR_ERR_NO_DOMAIN', 'VIR_ERR_NO_NETWORK', 'VIR_ERR_NO_STORAGE_POOL',
    'VIR_ERR_NO_STORAGE_VOL', 'VIR_ERR_NO_DOMAIN_METADATA', 'VIR_ERR_NO_NWFILTER',
    'VIR_ERR_NO_SECRET', 'VIR_ERR_NO_DOMAIN_SNAPSHOT', 'VIR_ERR_NO_NODE_DEVICE',
)

# Power states as the rest of the collection names them.
STATE_NAMES = {
    0: 'stopped',        # VIR_DOMAIN_NOSTATE
    1: 'running',        # VIR_DOMAIN_RUNNING
    2: 'running',        # VIR_DOMAIN_BLOCKED (running, waiting on a resource)
    3: 'paused',         # VIR_DOMAIN_PAUSED
    4: 'shutting_down',  # VIR_DOMAIN_SHUTDOWN
    5: 'stopped',        # VIR_DOMAIN_SHUTOFF
    6: 'crashed',        # VIR_DOMAIN_CRASHED
    7: 'pmsuspended',    # VIR_DOMAIN_PMSUSPENDED
}


def _not_found_codes():
    return set(getattr(libvirt, c) for c in _NOT_FOUND_CODES if hasattr(libvirt, c))


_EXISTS_CODES = ('VIR_ERR_DOM_EXIST', 'VIR_ERR_NETWORK_EXIST', 'VIR_ERR_STORAGE_VOL_EXIST')


def _call(what, func, *args):
    """Run one libvirt call, translating libvirtError into our typed errors.

    A ``BackendError`` that says the object already exists carries ``exists=True`` (the
    reconcile layer converges an object another run created at the same moment).
    """
    try:
        return func(*args)
    except libvirt.libvirtError as exc:
        code, message = exc.get_error_code(), exc.get_error_message() or str(exc)
        if code in _not_found_codes():
            raise NotFound('%s: %s' % (what, message))
        exists = code in set(getattr(libvirt, c) for c in _EXISTS_CODES if hasattr(libvirt, c)) or \
            'already exists' in message
        raise BackendError('%s failed: %s' % (what, message), exists=exists)
    except (ValueError, TypeError) as exc:
        # libvirt-python refuses some values before libvirt sees them (a NUL character in a string)
        raise BackendError('%s failed: libvirt cannot take the value given (%s)' % (what, exc))


def _cpu_list(text):
    """The CPU numbers of a libvirt CPU list such as ``0-2,4``."""
    found = set()
    for part in (text or '').split(','):
        part = part.strip()
        if not part:
            continue
        first, _sep, last = part.partition('-')
        found.update(range(int(first), int(last or first) + 1))
    return found


class LibvirtClient:
    """A lazily opened connection to one libvirt URI."""

    def __init__(self, uri, username=None, password=None):
        if not HAS_LIBVIRT:
            raise MissingLibrary('libvirt-python', LIBVIRT_IMPORT_ERROR)
        self.uri = uri
        self._username = username
        self._password = password
        self._conn = None
        self._opening = threading.Lock()
        # Silence libvirt's default handler that prints every error on stderr.
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

    # -- connection ---------------------------------------------------------
    @property
    def conn(self):
        """The one connection of this client, opened on first use. fleet's threads share it: opened twice, an
        object looked up on one connection would meet a stream of the other (libvirt refuses that)."""
        if self._conn is None:
            with self._opening:
                if self._conn is None:
                    self._conn = self._open()
        return self._conn

    def _open(self):
        try:
            if self._username is None and self._password is None:
                return libvirt.open(self.uri)
            return libvirt.openAuth(self.uri, self._auth_spec(), 0)
        except libvirt.libvirtError as exc:
            raise BackendError(
                'cannot connect to libvirt at %s: %s. Check that libvirtd is running '
                'there and that the uri option is right.' % (self.uri, exc.get_error_message() or exc))
        except (ValueError, TypeError) as exc:
            raise BackendError('uri: %r is not a libvirt URI (%s)' % (self.uri, exc))

    def _auth_spec(self):
        creds = [libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE]

        def callback(credentials, _data):
            for cred in credentials:
                if cred[0] == libvirt.VIR_CRED_AUTHNAME:
                    cred[4] = self._username or ''
                elif cred[0] == libvirt.VIR_CRED_PASSPHRASE:
                    cred[4] = self._password or ''
                else:
                    return -1
            return 0
        return [creds, callback, None]

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except libvirt.libvirtError:
                pass
            self._conn = None

    def is_local(self):
        """True when the URI names no remote host (files are on this machine)."""
        uri = self.uri or ''
        if '://' not in uri:
            return True
        rest = uri.split('://', 1)[1]
        return rest.startswith('/') or rest.startswith('?')

    # -- host ---------------------------------------------------------------
    def capabilities(self):
        return _call('reading host capabilities', self.conn.getCapabilities)

    def domain_capabilities(self, virttype=None, machine=None, arch=None):
        return _call('reading domain capabilities', self.conn.getDomainCapabilities,
                     None, arch, machine, virttype, 0)

    def node_info(self):
        """[model, memory MiB, cpus, MHz, NUMA nodes, sockets per node, cores, threads]."""
        return _call('reading host node info', self.conn.getInfo)

    def free_pages(self, page_sizes_kib, cell_count):
        return _call('reading free huge pages', self.conn.getFreePages, page_sizes_kib, 0, cell_count, 0)

    def hostname(self):
        return _call('reading the host name', self.conn.getHostname)

    def versions(self):
        """(libvirt version, hypervisor version, hypervisor type), versions as integers."""
        return (_call('reading the libvirt version', self.conn.getLibVersion),
                _call('reading the hypervisor version', self.conn.getVersion),
                _call('reading the hypervisor type', self.conn.getType))

    # -- domains ------------------------------------------------------------
    def lookup_domain(self, name):
        return _call('looking up VM %s' % name, self.conn.lookupByName, name)

    def list_domains(self):
        return _call('listing VMs', self.conn.listAllDomains, 0)

    def domain_states(self):
        """name -> ``(dom, state, autostart)`` of every VM of the host, in two calls whatever their number
        (``getAllDomainStats`` for the domains and their states, ``listAllDomains`` for those that autostart),
        where reading them one by one takes three per VM (lookup, state, autostart)."""
        stats = _call('listing VMs', self.conn.getAllDomainStats, libvirt.VIR_DOMAIN_STATS_STATE, 0)
        autostart = set(dom.name() for dom in _call('listing VMs', self.conn.listAllDomains,
                                                    libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART))
        return dict((dom.name(), (dom, STATE_NAMES.get(values.get('state.state'), 'stopped'), dom.name() in autostart))
                    for dom, values in stats)

    def domain_xml(self, dom, inactive=False):
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return _call('reading the definition of VM %s' % dom.name(), dom.XMLDesc, flags)

    def domain_state(self, dom):
        state = _call('reading the state of VM %s' % dom.name(), dom.state)[0]
        return STATE_NAMES.get(state, 'stopped')

    def domain_crashed(self, dom):
        """True when libvirt says the VM crashed: its QEMU process ended without a shutdown
        (shut off, reason crashed) or it is kept in the crashed state."""
        state, reason = _call('reading the state of VM %s' % dom.name(), dom.state)[:2]
        return state == libvirt.VIR_DOMAIN_CRASHED or (
            state == libvirt.VIR_DOMAIN_SHUTOFF and reason == getattr(libvirt, 'VIR_DOMAIN_SHUTOFF_CRASHED', 3))

    def domain_autostart(self, dom):
        return bool(_call('reading autostart of VM %s' % dom.name(), dom.autostart))

    def define_domain(self, xml):
        return _call('defining VM', self.conn.defineXML, xml)

    def start_domain(self, dom, paused=False):
        flags = libvirt.VIR_DOMAIN_START_PAUSED if paused else 0
        return _call('starting VM %s' % dom.name(), dom.createWithFlags, flags)

    def shutdown_domain(self, dom):
        return _call('asking VM %s to shut down' % dom.name(), dom.shutdown)

    def destroy_domain(self, dom):
        return _call('destroying (powering off) VM %s' % dom.name(), dom.destroy)

    def suspend_domain(self, dom):
        return _call('pausing VM %s' % dom.name(), dom.suspend)

    def resume_domain(self, dom):
        return _call('resuming VM %s' % dom.name(), dom.resume)

    def wakeup_domain(self, dom):
        return _call('waking VM %s from guest suspend' % dom.name(), dom.pMWakeup, 0)

    def undefine_domain(self, dom):
        flags = 0
        for flag in ('VIR_DOMAIN_UNDEFINE_MANAGED_SAVE', 'VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA',
                     'VIR_DOMAIN_UNDEFINE_NVRAM', 'VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA'):
            flags |= getattr(libvirt, flag, 0)
        return _call('undefining VM %s' % dom.name(), dom.undefineFlags, flags)

    def set_autostart(self, dom, value):
        return _call('setting autostart of VM %s' % dom.name(), dom.setAutostart, 1 if value else 0)

    def set_memory_live(self, dom, kib):
        return _call('changing the memory of running VM %s' % dom.name(),
                     dom.setMemoryFlags, kib, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def set_vcpus_live(self, dom, count):
        return _call('changing the vCPUs of running VM %s' % dom.name(),
                     dom.setVcpusFlags, count, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def attach_device_live(self, dom, xml):
        return _call('attaching a device to running VM %s' % dom.name(),
                     dom.attachDeviceFlags, xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def detach_device_live(self, dom, xml):
        return _call('detaching a device from running VM %s' % dom.name(),
                     dom.detachDeviceFlags, xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def set_metadata_live(self, dom, kind, value, key=None, uri=None):
        types = {
            'title': libvirt.VIR_DOMAIN_METADATA_TITLE,
            'description': libvirt.VIR_DOMAIN_METADATA_DESCRIPTION,
            'element': libvirt.VIR_DOMAIN_METADATA_ELEMENT,
        }
        return _call('updating %s of running VM %s' % (kind, dom.name()), dom.setMetadata,
                     types[kind], value, key, uri, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def interface_addresses(self, dom, source):
        """Guest addresses as libvirt reports them from ``source`` (``lease``, ``agent`` or ``arp``); empty when
        the source knows none or cannot answer (no lease yet, no agent running)."""
        flag = getattr(libvirt, 'VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_' + source.upper(), None)
        if flag is None:  # pragma: no cover - libvirt older than 4.0 (no ARP source)
            return {}
        try:
            return dom.interfaceAddresses(flag, 0) or {}
        except libvirt.libvirtError:
            return {}

    def shutdown_domain_via(self, dom, mode):
        """Ask the guest to shut down through ``mode``: ``acpi`` (the power button), ``agent`` (the QEMU guest
        agent) or ``any`` (the agent, then ACPI)."""
        flags = {'acpi': libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN, 'agent': libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT,
                 'any': libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN | libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT}[mode]
        return _call('asking VM %s to shut down (%s)' % (dom.name(), mode), dom.shutdownFlags, flags)

    def set_guest_vcpus(self, dom, count):
        """Online exactly ``count`` vCPUs inside the guest, through its guest agent."""
        return _call('onlining %d vCPUs in the guest of VM %s through its guest agent' % (count, dom.name()),
                     dom.setVcpusFlags, count, libvirt.VIR_DOMAIN_VCPU_GUEST)

    def guest_vcpus_online(self, dom):
        """How many vCPUs the guest has online, as its guest agent says."""
        info = _call('reading the guest\'s vCPUs of VM %s through its guest agent' % dom.name(), dom.guestVcpus)
        return len(_cpu_list(info.get('online', '')))

    # -- networks and storage used by VM specs ------------------------------
    def lookup_network(self, name):
        return _call('looking up network %s' % name, self.conn.networkLookupByName, name)

    def list_network_names(self):
        return sorted(n.name() for n in _call('listing networks', self.conn.listAllNetworks, 0))

    def lookup_pool(self, name):
        return _call('looking up storage pool %s' % name, self.conn.storagePoolLookupByName, name)

    def lookup_volume(self, pool_name, vol_name):
        pool = self.lookup_pool(pool_name)
        return _call('looking up volume %s in pool %s' % (vol_name, pool_name), pool.storageVolLookupByName, vol_name)

    def lookup_volume_by_path(self, path):
        return _call('looking up the volume at %s' % path, self.conn.storageVolLookupByPath, path)

    def volume_xml(self, vol):
        return _call('reading volume %s' % vol.name(), vol.XMLDesc, 0)

    def delete_volume(self, vol):
        return _call('deleting volume %s' % vol.path(), vol.delete, 0)

    # -- networks (virtfleet.virt.network) --
    def list_networks(self):
        return _call('listing networks', self.conn.listAllNetworks, 0)

    def network_xml(self, net, inactive=False):
        flags = libvirt.VIR_NETWORK_XML_INACTIVE if inactive else 0
        return _call('reading the definition of network %s' % net.name(), net.XMLDesc, flags)

    def network_is_active(self, net):
        return bool(_call('reading the state of network %s' % net.name(), net.isActive))

    def network_is_persistent(self, net):
        return bool(_call('reading whether network %s is persistent' % net.name(), net.isPersistent))

    def network_autostart(self, net):
        return bool(_call('reading autostart of network %s' % net.name(), net.autostart))

    def network_dhcp_leases(self, net):
        return _call('reading the DHCP leases of network %s' % net.name(), net.DHCPLeases, None, 0) or []

    def define_network(self, xml):
        return _call('defining network', self.conn.networkDefineXML, xml)

    def start_network(self, net):
        return _call('starting network %s' % net.name(), net.create)

    def destroy_network(self, net):
        return _call('stopping network %s' % net.name(), net.destroy)

    def undefine_network(self, net):
        return _call('undefining network %s' % net.name(), net.undefine)

    def set_network_autostart(self, net, value):
        return _call('setting autostart of network %s' % net.name(), net.setAutostart, 1 if value else 0)

    def update_network(self, net, command, section, index, xml, live=True, config=True):
        """virNetworkUpdate: ``command`` add/delete/modify, ``section`` such as ip_dhcp_host or dns_host."""
        flags = ((libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE if live else 0)
                 | (libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG if config else 0))
        commands = {'add': libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                    'delete': libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE,
                    'modify': libvirt.VIR_NETWORK_UPDATE_COMMAND_MODIFY}
        sections = {'ip_dhcp_host': libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
                    'ip_dhcp_range': libvirt.VIR_NETWORK_SECTION_IP_DHCP_RANGE,
                    'dns_host': libvirt.VIR_NETWORK_SECTION_DNS_HOST}
        return _call('updating %s of network %s (%s)' % (section.replace('_', ' '), net.name(), command),
                     net.update, commands[command], sections[section], index, xml, flags)

    # -- storage (virtfleet.virt.storage_pool / volume) --
    def list_pools(self):
        return _call('listing storage pools', self.conn.listAllStoragePools, 0)

    def storage_pool_capabilities(self):
        """The storage pool capabilities XML, or None when this libvirt cannot tell."""
        if not hasattr(self.conn, 'getStoragePoolCapabilities'):
            return None
        try:
            return self.conn.getStoragePoolCapabilities(0)
        except libvirt.libvirtError:
            return None

    def pool_xml(self, pool, inactive=False):
        flags = libvirt.VIR_STORAGE_XML_INACTIVE if inactive else 0
        return _call('reading the definition of storage pool %s' % pool.name(), pool.XMLDesc, flags)

    def pool_is_active(self, pool):
        return bool(_call('reading the state of storage pool %s' % pool.name(), pool.isActive))

    def pool_autostart(self, pool):
        return bool(_call('reading autostart of storage pool %s' % pool.name(), pool.autostart))

    def define_pool(self, xml):
        return _call('defining storage pool', self.conn.storagePoolDefineXML, xml, 0)

    def build_pool(self, pool, overwrite=None):
        """Build (format) a pool. ``overwrite``: None (no flag), False (refuse to overwrite data), True.

        Returns False when libvirt reports the pool already built (e.g. the device already
        holds the requested filesystem), True when it built it.
        """
        flags = 0
        if overwrite is True:
            flags = libvirt.VIR_STORAGE_POOL_BUILD_OVERWRITE
        elif overwrite is False:
            flags = libvirt.VIR_STORAGE_POOL_BUILD_NO_OVERWRITE
        try:
            pool.build(flags)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == getattr(libvirt, 'VIR_ERR_STORAGE_POOL_BUILT', -1):
                return False
            raise BackendError('building storage pool %s failed: %s' % (pool.name(), exc.get_error_message() or exc))
        return True

    def start_pool(self, pool):
        return _call('starting storage pool %s' % pool.name(), pool.create, 0)

    def stop_pool(self, pool):
        return _call('stopping storage pool %s' % pool.name(), pool.destroy)

    def delete_pool_data(self, pool):
        return _call('deleting the data of storage pool %s' % pool.name(), pool.delete, 0)

    def undefine_pool(self, pool):
        return _call('undefining storage pool %s' % pool.name(), pool.undefine)

    def set_pool_autostart(self, pool, value):
        return _call('setting autostart of storage pool %s' % pool.name(), pool.setAutostart, 1 if value else 0)

    def refresh_pool(self, pool, timeout=30):
        """Rescan a pool's volumes, waiting out the refresh libvirt runs itself after an upload."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return pool.refresh(0)
            except libvirt.libvirtError as exc:
                message = exc.get_error_message() or str(exc)
                if 'asynchronous jobs' not in message or time.monotonic() >= deadline:
                    raise BackendError('refreshing storage pool %s failed: %s' % (pool.name(), message))
                time.sleep(0.1)

    def list_volumes(self, pool):
        return _call('listing the volumes of storage pool %s' % pool.name(), pool.listAllVolumes, 0)

    def lookup_volume_in_pool(self, pool, name):
        return _call('looking up volume %s in pool %s' % (name, pool.name()), pool.storageVolLookupByName, name)

    def create_volume(self, pool, xml):
        return _call('creating a volume in storage pool %s' % pool.name(), pool.createXML, xml, 0)

    def clone_volume(self, pool, xml, source):
        return _call('cloning volume %s in storage pool %s' % (source.name(), pool.name()),
                     pool.createXMLFrom, xml, source, 0)

    def resize_volume(self, vol, capacity, shrink=False):
        flags = libvirt.VIR_STORAGE_VOL_RESIZE_SHRINK if shrink else 0
        return _call('resizing volume %s' % vol.path(), vol.resize, capacity, flags)

    def wipe_volume(self, vol):
        return _call('wiping volume %s' % vol.path(), vol.wipe, 0)

    def upload_volume(self, vol, length, read_chunk, before_finish=None):
        """Stream ``length`` bytes into ``vol`` (virStorageVolUpload, works over remote URIs).

        ``read_chunk(nbytes)`` returns the next bytes (b'' at the end); ``before_finish()``
        runs when all was sent and may raise to abort the upload.
        """
        stream = _call('opening a stream', self.conn.newStream, 0)
        try:
            _call('starting the upload to volume %s' % vol.path(), vol.upload, stream, 0, length, 0)
            _call('uploading to volume %s' % vol.path(), stream.sendAll,
                  lambda _stream, nbytes, _opaque: read_chunk(nbytes), None)
            if before_finish is not None:
                before_finish()
            _call('finishing the upload to volume %s' % vol.path(), stream.finish)
        except BaseException:
            try:
                stream.abort()
            except libvirt.libvirtError:
                pass
            raise

    def download_volume(self, vol, offset, length):
        """Read ``length`` bytes of ``vol`` from ``offset`` through a stream (works over remote URIs)."""
        stream = _call('opening a stream', self.conn.newStream, 0)
        chunks = []
        try:
            _call('starting the download of volume %s' % vol.path(), vol.download, stream, offset, length, 0)
            _call('downloading volume %s' % vol.path(), stream.recvAll,
                  lambda _stream, data, _opaque: chunks.append(data), None)
            _call('finishing the download of volume %s' % vol.path(), stream.finish)
        except BaseException:
            try:
                stream.abort()
            except libvirt.libvirtError:
                pass
            raise
        return b''.join(chunks)

    def pool_available(self, pool):
        """The bytes free in the storage pool, as libvirt last saw it (no refresh: reading writes nothing)."""
        return _call('reading storage pool %s' % pool.name(), pool.info)[3]

    def volume_pool(self, vol):
        return _call('looking up the storage pool of volume %s' % vol.name(), vol.storagePoolLookupByVolume)

    # -- migration (virtfleet.virt.migrate) --
    def lookup_domain_by_uuid(self, uuid):
        return _call('looking up the VM with UUID %s' % uuid, self.conn.lookupByUUIDString, uuid)

    def domain_info(self, dom):
        """[state, max memory KiB, memory KiB, vCPUs, CPU time ns]."""
        return _call('reading the info of VM %s' % dom.name(), dom.info)

    def domain_is_persistent(self, dom):
        return bool(_call('reading whether VM %s is persistent' % dom.name(), dom.isPersistent))

    def domain_job_stats(self, dom, completed=False):
        """Statistics of the VM's running job, or of its last completed one (a dict, VIR_DOMAIN_JOB_*)."""
        flags = libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED if completed else 0
        return _call('reading the job statistics of VM %s' % dom.name(), dom.jobStats, flags) or {}

    def abort_domain_job(self, dom):
        return _call('aborting the job of VM %s' % dom.name(), dom.abortJob)

    def migration_supports(self, flag):
        """Whether this libvirt-python knows VIR_MIGRATE_<flag>."""
        return hasattr(libvirt, 'VIR_MIGRATE_' + flag)

    def migrate_domain(self, dom, uri, flags, params, destination=None):
        """Migrate ``dom``: peer-to-peer (the source daemon connects to ``uri``) or, when
        ``destination`` (a LibvirtClient) is given, managed by this client through both connections.

        ``flags`` are VIR_MIGRATE_* names without the prefix (``LIVE``, ``PEER2PEER``...),
        ``params`` maps VIR_MIGRATE_PARAM_* names without the prefix (``URI``, ``BANDWIDTH``...)
        to values (a list for parameters libvirt accepts several times).
        """
        bits = 0
        for flag in flags:
            bits |= getattr(libvirt, 'VIR_MIGRATE_' + flag)
        typed = dict((getattr(libvirt, 'VIR_MIGRATE_PARAM_' + key), value) for key, value in params.items())
        what = 'migrating VM %s to %s' % (dom.name(), uri)
        if destination is None:
            return _call(what, dom.migrateToURI3, uri, typed, bits)
        return _call(what, dom.migrate3, destination.conn, typed, bits)

    def start_postcopy(self, dom):
        return _call('switching the migration of VM %s to post-copy' % dom.name(), dom.migrateStartPostCopy, 0)

    def set_migration_max_downtime(self, dom, milliseconds):
        return _call('setting the maximum migration downtime of VM %s' % dom.name(),
                     dom.migrateSetMaxDowntime, milliseconds, 0)

    def compare_hypervisor_cpu(self, cpu_xml, emulator=None, arch=None, machine=None, virttype=None):
        """How this host's hypervisor can run a guest CPU: ``(verdict, message)``.

        ``verdict`` is ``identical``, ``superset`` or ``incompatible`` (``message`` says why).
        """
        return self._compare_cpu('comparing the guest CPU with the hypervisor of %s' % self.uri,
                                 self.conn.compareHypervisorCPU, emulator, arch, machine, virttype, cpu_xml)

    def compare_host_cpu(self, cpu_xml):
        """How this host's CPU compares with another host's CPU: ``(verdict, message)``."""
        return self._compare_cpu('comparing a host CPU with the CPU of %s' % self.uri,
                                 self.conn.compareCPU, cpu_xml)

    @staticmethod
    def _compare_cpu(what, func, *args):
        flags = getattr(libvirt, 'VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE', 0)
        try:
            result = func(*(args + (flags,)))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == getattr(libvirt, 'VIR_ERR_CPU_INCOMPATIBLE', -1):
                return 'incompatible', exc.get_error_message() or str(exc)
            raise BackendError('%s failed: %s' % (what, exc.get_error_message() or exc))
        verdicts = {libvirt.VIR_CPU_COMPARE_IDENTICAL: 'identical', libvirt.VIR_CPU_COMPARE_SUPERSET: 'superset'}
        return verdicts.get(result, 'incompatible'), ''

    def memory_stats(self):
        """Host memory in KiB: ``total``, ``free``, ``buffers``, ``cached`` (all NUMA cells)."""
        return _call('reading host memory statistics', self.conn.getMemoryStats,
                     libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)

    def lookup_pool_by_target_path(self, path):
        return _call('looking up the storage pool of directory %s' % path,
                     self.conn.storagePoolLookupByTargetPath, path)

    # -- snapshots (virtfleet.virt.vm_snapshot, vm_snapshot_info) --
    def list_snapshots(self, dom):
        return _call('listing the snapshots of VM %s' % dom.name(), dom.listAllSnapshots, 0)

    def lookup_snapshot(self, dom, name):
        return _call('looking up snapshot %r of VM %s' % (name, dom.name()), dom.snapshotLookupByName, name, 0)

    def snapshot_xml(self, snap):
        return _call('reading snapshot %r' % snap.getName(), snap.getXMLDesc, 0)

    def snapshot_is_current(self, snap):
        return bool(_call('reading whether snapshot %r is current' % snap.getName(), snap.isCurrent, 0))

    def create_snapshot(self, dom, xml, disk_only=False, quiesce=False):
        """Take a snapshot described by ``xml``, all disks or none (``ATOMIC``); ``disk_only`` makes it external
        (new overlay files), ``quiesce`` freezes the guest's filesystems through its agent meanwhile."""
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
        if disk_only:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
        if quiesce:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
        return _call('taking a snapshot of VM %s' % dom.name(), dom.snapshotCreateXML, xml, flags)

    def revert_snapshot(self, dom, snap, run=None):
        """Revert VM ``dom`` to ``snap``; ``run``: ``running`` or ``paused`` to leave it so (``None``: the state the
        snapshot recorded)."""
        flags = {None: 0, 'running': libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING,
                 'paused': libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED}[run]
        return _call('reverting VM %s to snapshot %r' % (dom.name(), snap.getName()), dom.revertToSnapshot, snap, flags)

    def delete_snapshot(self, snap, metadata_only=False):
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY if metadata_only else 0
        return _call('deleting snapshot %r' % snap.getName(), snap.delete, flags)

    def domain_reverted_since_run(self, dom):
        """True when libvirt's reason for the VM's state says a snapshot revert put it there and it has not run
        since: shut off or paused "from snapshot" (a start, a resume or a stop replaces that reason)."""
        state, reason = _call('reading the state of VM %s' % dom.name(), dom.state)[:2]
        return (state, reason) in ((libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT),
                                   (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_FROM_SNAPSHOT))

    def domain_paused_by_job(self, dom):
        """The job that left VM ``dom`` paused ("save", "snapshot", "migration"), or None: libvirt pauses a guest
        for these and does not resume it when it dies (or restarts) in the middle of one."""
        state, reason = _call('reading the state of VM %s' % dom.name(), dom.state)[:2]
        if state != libvirt.VIR_DOMAIN_PAUSED:
            return None
        return {libvirt.VIR_DOMAIN_PAUSED_SAVE: 'save', libvirt.VIR_DOMAIN_PAUSED_SNAPSHOT: 'snapshot',
                libvirt.VIR_DOMAIN_PAUSED_MIGRATION: 'migration'}.get(reason)

    def domain_metadata(self, dom, uri):
        """The metadata element of VM ``dom`` in namespace ``uri`` (as XML text), or None when it has none."""
        try:
            return _call('reading the metadata of VM %s' % dom.name(), dom.metadata,
                         libvirt.VIR_DOMAIN_METADATA_ELEMENT, uri, 0)
        except NotFound:
            return None

    def set_domain_metadata(self, dom, xml, key, uri, live=False):
        """Store the metadata element ``xml`` in the VM's definition (and in the running VM with ``live``)."""
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if live else 0)
        return _call('updating the metadata of VM %s' % dom.name(), dom.setMetadata,
                     libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, key, uri, flags)

    def guest_agent_fs_info(self, dom):
        """The guest's filesystems as its QEMU guest agent lists them (raises when no agent answers)."""
        return _call('asking the guest agent of VM %s' % dom.name(), dom.fsInfo, 0)

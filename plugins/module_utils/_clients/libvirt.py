# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin adapter over libvirt-python.

One connection per module run.  Every libvirt call goes through ``_call`` so
that ``libvirtError`` never escapes: it becomes ``NotFound`` for the "no such
object" codes and ``BackendError`` (with libvirt's own message) otherwise.
"""

from __future__ import annotations

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


def _call(what, func, *args):
    """Run one libvirt call, translating libvirtError into our typed errors."""
    try:
        return func(*args)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in _not_found_codes():
            raise NotFound('%s: %s' % (what, exc.get_error_message() or exc))
        raise BackendError('%s failed: %s' % (what, exc.get_error_message() or exc))


class LibvirtClient:
    """A lazily opened connection to one libvirt URI."""

    def __init__(self, uri, username=None, password=None):
        if not HAS_LIBVIRT:
            raise MissingLibrary('libvirt-python', LIBVIRT_IMPORT_ERROR)
        self.uri = uri
        self._username = username
        self._password = password
        self._conn = None
        # Silence libvirt's default handler that prints every error on stderr.
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

    # -- connection ---------------------------------------------------------
    @property
    def conn(self):
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

    def free_memory(self):
        return _call('reading free host memory', self.conn.getFreeMemory)

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

    def domain_xml(self, dom, inactive=False):
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return _call('reading the definition of VM %s' % dom.name(), dom.XMLDesc, flags)

    def domain_state(self, dom):
        state = _call('reading the state of VM %s' % dom.name(), dom.state)[0]
        return STATE_NAMES.get(state, 'stopped')

    def domain_autostart(self, dom):
        return bool(_call('reading autostart of VM %s' % dom.name(), dom.autostart))

    def domain_has_managed_save(self, dom):
        return bool(_call('reading managed save of VM %s' % dom.name(), dom.hasManagedSaveImage, 0))

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

    def interface_addresses(self, dom):
        """Guest addresses from DHCP leases (then the guest agent); empty when unknown."""
        for source in ('VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE', 'VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT'):
            try:
                found = dom.interfaceAddresses(getattr(libvirt, source), 0)
            except libvirt.libvirtError:
                continue
            if found:
                return found
        return {}

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

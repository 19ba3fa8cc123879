# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin adapter over pyvmomi (the vSphere API).

One session per module run, opened lazily and logged out by ``close``.  Objects
are found with one PropertyCollector query over a container view (never a round
trip per object) and returned as plain dicts, so drivers never touch pyvmomi
types.  Every API call goes through ``_call``: vSphere faults become
``NotFound`` or ``BackendError`` with vSphere's own message; vSphere tasks are
waited for with a timeout and their errors turned into messages the same way.
The password never appears in any message.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
import traceback

try:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim, vmodl
    from pyVmomi.VmomiSupport import ManagedObject
    HAS_PYVMOMI = True
    PYVMOMI_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised through missing_required_lib
    vim = vmodl = SmartConnect = Disconnect = ManagedObject = None
    HAS_PYVMOMI = False
    PYVMOMI_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import (
    BackendError,
    MissingLibrary,
    NotFound,
)

# connection option -> the environment variable it falls back to (the names other VMware tools use)
ENV = {'hostname': 'VMWARE_HOST', 'port': 'VMWARE_PORT', 'validate_certs': 'VMWARE_VALIDATE_CERTS',
       'ca_path': 'VMWARE_CA_PATH', 'proxy_host': 'VMWARE_PROXY_HOST', 'proxy_port': 'VMWARE_PROXY_PORT',
       'username': 'VMWARE_USER', 'password': 'VMWARE_PASSWORD'}

# vSphere power states as the rest of the collection names them.
STATE_NAMES = {'poweredOn': 'running', 'poweredOff': 'stopped', 'suspended': 'paused'}

# Properties read for an ESXi host: 'light' finds it by name; 'facts' describes its hardware.
HOST_LIGHT = ('name', 'parent')
HOST_FACTS = HOST_LIGHT + (
    'hardware.cpuInfo', 'hardware.cpuPkg', 'hardware.memorySize', 'hardware.systemInfo.uuid', 'hardware.numaInfo',
    'summary.hardware.cpuModel', 'summary.hardware.cpuMhz', 'summary.quickStats.overallMemoryUsage',
    'config.product', 'config.network.dnsConfig.hostName', 'runtime.connectionState', 'runtime.powerState',
    'runtime.inMaintenanceMode',
)

# Properties read for a VM.  'light' finds a VM by name; 'full' describes it.
VM_LIGHT = ('name', 'parent', 'config.template')
VM_FULL = VM_LIGHT + (
    'resourcePool', 'config.uuid', 'config.instanceUuid', 'config.guestId', 'config.firmware',
    'config.annotation', 'config.hardware.memoryMB', 'config.hardware.numCPU', 'config.hardware.device',
    'config.extraConfig', 'config.memoryHotAddEnabled', 'config.cpuHotAddEnabled', 'config.files.vmPathName',
    'runtime.powerState', 'runtime.host', 'guest.net', 'guest.ipAddress', 'guest.toolsRunningStatus',
    'guest.hostName',
)

NIC_MODELS = {}         # vim class -> model name, filled below
CONTROLLERS = {}        # vim class -> (bus, subtype)
if HAS_PYVMOMI:
    NIC_MODELS = {
        vim.vm.device.VirtualVmxnet3: 'vmxnet3',
        vim.vm.device.VirtualE1000e: 'e1000e',
        vim.vm.device.VirtualE1000: 'e1000',
    }
    CONTROLLERS = {
        vim.vm.device.ParaVirtualSCSIController: ('scsi', 'pvscsi'),
        vim.vm.device.VirtualLsiLogicSASController: ('scsi', 'lsilogicsas'),
        vim.vm.device.VirtualLsiLogicController: ('scsi', 'lsilogic'),
        vim.vm.device.VirtualBusLogicController: ('scsi', 'buslogic'),
        vim.vm.device.VirtualAHCIController: ('sata', 'ahci'),
        vim.vm.device.VirtualIDEController: ('ide', 'ide'),
    }


# connection settings that go into a URL, an HTTP header or a file name: a control character breaks them
TEXT_SETTINGS = ('hostname', 'username', 'password', 'ca_path', 'proxy_host')


def control_character_setting(settings):
    """The first of ``TEXT_SETTINGS`` whose value in ``settings`` holds a control character (NUL, newline, ...),
    or ``None``. The value itself is never shown (it may be the password)."""
    for key in TEXT_SETTINGS:
        value = settings.get(key)
        if isinstance(value, str) and any(ord(char) < 0x20 or ord(char) == 0x7f for char in value):
            return key
    return None


def _fault_text(exc):
    """vSphere's own words for a fault: its localized message, else its type."""
    msg = getattr(exc, 'msg', None) or getattr(exc, 'localizedMessage', None)
    faults = getattr(exc, 'faultMessage', None) or []
    extra = [m.message for m in faults if getattr(m, 'message', None)]
    name = type(exc).__name__.split('.')[-1]
    text = msg or name
    if extra:
        text += ' (%s)' % '; '.join(extra)
    if name not in text:
        text += ' [%s]' % name
    return text


def _data(value):
    """A vSphere data object (or list of them) as plain dicts and lists; managed objects as their ids."""
    if isinstance(value, ManagedObject):
        return value._moId
    if isinstance(value, vmodl.DynamicData):
        return dict((prop.name, _data(getattr(value, prop.name, None))) for prop in value._GetPropertyList()
                    if prop.name not in ('dynamicType', 'dynamicProperty'))
    if isinstance(value, (list, tuple)):
        return [_data(item) for item in value]
    return value


class VSphereClient:
    """A lazily opened session to one vCenter or ESXi host."""

    def __init__(self, hostname, username, password, port=443, validate_certs=True, ca_path=None,
                 proxy_host=None, proxy_port=None, task_timeout=600):
        if not HAS_PYVMOMI:
            raise MissingLibrary('pyvmomi', PYVMOMI_IMPORT_ERROR)
        self.hostname = hostname
        self.port = port or 443
        self.username = username
        self._password = password
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.proxy_host = proxy_host
        self.proxy_port = proxy_port
        self.task_timeout = task_timeout
        self._si = None
        self._content = None
        self._opening = threading.Lock()

    @property
    def where(self):
        return '%s:%s' % (self.hostname, self.port)

    def _scrub(self, text):
        """Never let the password through, whatever a library put in a message."""
        text = str(text)
        if self._password:
            text = text.replace(self._password, '********')
        return text

    # -- session ----------------------------------------------------------------
    @property
    def content(self):
        """The session's service content, logged in on first use; one session however many of fleet's threads
        ask at once (a racing thread saw the session before its content and read None)."""
        if self._content is None:
            with self._opening:
                if self._content is None:
                    self._si = self._connect()
                    self._content = self._si.RetrieveContent()
        return self._content

    def _ssl_context(self):
        if not self.validate_certs:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        try:
            return ssl.create_default_context(cafile=self.ca_path)
        except (OSError, ssl.SSLError) as exc:
            raise BackendError('ca_path: cannot read CA certificates from %s: %s' % (self.ca_path, exc))

    def _connect(self):
        if not self.hostname:
            raise BackendError('hostname: the vSphere backend needs the vCenter or ESXi host name '
                               '(option hostname or the environment variable VMWARE_HOST)')
        if not self.username or not self._password:
            raise BackendError('username/password: the vSphere backend needs both (options username and '
                               'password, or the environment variables VMWARE_USER and VMWARE_PASSWORD)')
        kwargs = dict(host=self.hostname, port=int(self.port), user=self.username, pwd=self._password,
                      sslContext=self._ssl_context(), httpConnectionTimeout=60)
        if self.proxy_host:
            kwargs.update(httpProxyHost=self.proxy_host, httpProxyPort=int(self.proxy_port or 80))
        try:
            return SmartConnect(**kwargs)
        except vim.fault.InvalidLogin:
            raise BackendError('cannot log in to vSphere at %s as %s: the user name or password is wrong '
                               '(vSphere refused the login)' % (self.where, self.username))
        except ssl.SSLCertVerificationError as exc:
            raise BackendError(
                'cannot verify the TLS certificate of vSphere at %s: %s. Trust the CA that signed it '
                '(option ca_path, or the CA bundle named by the environment variable SSL_CERT_FILE), or set '
                'validate_certs: false to skip verification (not recommended)'
                % (self.where, self._scrub(getattr(exc, 'verify_message', None) or exc.reason or exc)))
        except ssl.SSLError as exc:
            raise BackendError('TLS error talking to vSphere at %s: %s' % (self.where, self._scrub(exc)))
        except vmodl.MethodFault as exc:
            raise BackendError('cannot log in to vSphere at %s: %s' % (self.where, self._scrub(_fault_text(exc))))
        except (OSError, socket.error) as exc:
            raise BackendError('cannot connect to vSphere at %s: %s. Check hostname and port (and proxy_host)'
                               % (self.where, self._scrub(exc)))
        except Exception as exc:  # pyvmomi raises bare Exceptions for bad answers
            raise BackendError('cannot connect to vSphere at %s: %s' % (self.where, self._scrub(exc)))

    def close(self):
        if self._si is not None:
            try:
                Disconnect(self._si)
            except Exception:  # logging out of a dead session is not an error of this run
                pass
            self._si = None
            self._content = None

    def _call(self, what, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (vim.fault.NotFound, vmodl.fault.ManagedObjectNotFound) as exc:
            raise NotFound('%s: %s' % (what, self._scrub(_fault_text(exc))))
        except vmodl.MethodFault as exc:
            raise BackendError('%s failed: %s' % (what, self._scrub(_fault_text(exc))))
        except (OSError, socket.error) as exc:
            raise BackendError('%s failed: lost the connection to vSphere at %s: %s'
                               % (what, self.where, self._scrub(exc)))

    # -- finding objects: one PropertyCollector query --------------------------------
    def _to_dicts(self, contents):
        found = []
        for item in contents:
            row = {'ref': item.obj, 'moid': item.obj._moId, 'type': type(item.obj).__name__.split('.')[-1]}
            for prop in item.propSet or []:
                row[prop.name] = prop.val
            found.append(row)
        return found

    def _retrieve(self, what, object_specs, type_props):
        collector = self.content.propertyCollector
        prop_specs = [vmodl.query.PropertyCollector.PropertySpec(type=kind, pathSet=list(props), all=False)
                      for kind, props in type_props]
        filter_spec = vmodl.query.PropertyCollector.FilterSpec(objectSet=object_specs, propSet=prop_specs)
        options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=1000)
        result = self._call(what, collector.RetrievePropertiesEx, [filter_spec], options)
        found = []
        while result is not None:
            found.extend(self._to_dicts(result.objects))
            if not result.token:
                break
            result = self._call(what, collector.ContinueRetrievePropertiesEx, result.token)
        return found

    def collect(self, what, type_props, hops=()):
        """Objects of the given kinds anywhere below the root folder, with the given properties, as
        lists of plain dicts by kind: one container view and one RetrievePropertiesEx (paged by the
        server), never a request per object.

        ``hops`` are ``(kind, path)`` pairs of managed-object properties followed from the objects
        in the view, e.g. ``(vim.HostSystem, 'configManager.networkSystem')``: the objects reached
        come back in the same answer, with the properties ``type_props`` names for their kind
        (kinds that are no managed entity are reached only this way).
        """
        content = self.content
        view_kinds = [kind for kind, _props in type_props if issubclass(kind, vim.ManagedEntity)]
        view = self._call('creating a container view', content.viewManager.CreateContainerView,
                          content.rootFolder, view_kinds, True)
        try:
            spec = vmodl.query.PropertyCollector
            hop_specs = [spec.TraversalSpec(name='hop%d' % index, path=path, skip=False, type=kind)
                         for index, (kind, path) in enumerate(hops)]
            traversal = spec.TraversalSpec(name='view', path='view', skip=False, type=vim.view.ContainerView,
                                           selectSet=[spec.SelectionSpec(name=h.name) for h in hop_specs])
            obj_spec = spec.ObjectSpec(obj=view, skip=True, selectSet=[traversal] + hop_specs)
            rows = self._retrieve(what, [obj_spec], type_props)
        finally:
            try:
                view.Destroy()
            except Exception:  # the view dies with the session anyway
                pass
        merged = {}
        for row in rows:  # a port group matches two property specs: merge them
            merged.setdefault(row['moid'], {}).update(row)
        kinds = {}
        for row in merged.values():
            kinds.setdefault(_KINDS.get(row['type'], 'other'), []).append(self._plain(row))
        return kinds

    def inventory(self, vm_props=VM_LIGHT):
        """Everything a VM run needs to resolve names, as lists of plain dicts by kind.

        One query (``collect``) for all datacenters, folders, compute resources, hosts,
        resource pools, datastores, networks, distributed switches and VMs (with ``vm_props``;
        ``vm_props=None``: no VMs - what finding one VM by name needs, whatever the number of VMs).
        """
        vms = [(vim.VirtualMachine, tuple(vm_props))] if vm_props is not None else []
        return self.collect('reading the vSphere inventory', [
            (vim.Datacenter, ('name', 'parent', 'vmFolder', 'hostFolder', 'networkFolder', 'datastoreFolder')),
            (vim.Folder, ('name', 'parent', 'childType')),
            (vim.ComputeResource, ('name', 'parent', 'resourcePool', 'host')),
            (vim.HostSystem, ('name', 'parent', 'datastore', 'network')),
            (vim.ResourcePool, ('name', 'parent', 'owner')),
            (vim.Datastore, ('name', 'parent', 'summary.accessible')),
            (vim.Network, ('name', 'parent')),
            (vim.dvs.DistributedVirtualPortgroup, ('name', 'parent', 'key', 'config.distributedVirtualSwitch')),
            (vim.DistributedVirtualSwitch, ('name', 'parent', 'uuid')),
        ] + vms)

    def vm_rows(self, vm_props=VM_LIGHT):
        """Every VM and template with ``vm_props``, as plain dicts: one query (``collect``)."""
        return self.collect('reading the VMs', [(vim.VirtualMachine, tuple(vm_props))]).get('vms', [])

    def find_vms(self, parents, name):
        """The VMs and templates named ``name`` directly in each of ``parents`` (folder or vApp references):
        the SearchIndex's FindChild, one small call per parent and no listing of VMs, however many there
        are. A list of ``{'ref', 'moid', 'parent'}`` (the parent's id), one per parent at most."""
        index = self.content.searchIndex
        found = []
        for parent in parents:
            child = self._call('looking up VM %s' % name, index.FindChild, entity=parent, name=name)
            if isinstance(child, vim.VirtualMachine):  # a folder or vApp may carry the name too
                found.append({'ref': child, 'moid': child._moId, 'parent': parent._moId})
        return found

    def host_inventory(self, what, host_props=HOST_LIGHT, network_systems=False, networks=False,
                       datastore_props=None, vm_names=False):
        """Datacenters, folders, compute resources and ESXi hosts (with ``host_props``) in one query
        (``collect``); with ``network_systems`` also each host's standard vSwitches and port groups
        (its HostNetworkSystem, reached from the host in the same query), with ``networks`` the
        networks and distributed port groups and switches, with ``datastore_props`` the datastores,
        with ``vm_names`` the names of all VMs (and the VMs of each network).
        """
        host_props = tuple(host_props)
        hops = []
        if network_systems:
            host_props += ('configManager.networkSystem',)
            hops.append((vim.HostSystem, 'configManager.networkSystem'))
        type_props = [
            (vim.Datacenter, ('name', 'parent', 'networkFolder', 'datastoreFolder')),
            (vim.Folder, ('name', 'parent')),
            (vim.ComputeResource, ('name', 'parent', 'host')),
            (vim.HostSystem, host_props),
        ]
        if network_systems:
            type_props.append((vim.host.NetworkSystem, ('networkInfo.vswitch', 'networkInfo.portgroup')))
        if networks:
            type_props += [
                (vim.Network, ('name', 'parent', 'host') + (('vm',) if vm_names else ())),
                (vim.dvs.DistributedVirtualPortgroup, ('name', 'parent', 'key', 'config.distributedVirtualSwitch',
                                                       'config.defaultPortConfig', 'config.numPorts')),
                (vim.DistributedVirtualSwitch, ('name', 'parent', 'uuid')),
            ]
        if datastore_props:
            type_props.append((vim.Datastore, tuple(datastore_props)))
        if vm_names:
            type_props.append((vim.VirtualMachine, ('name',)))
        return self.collect(what, type_props, hops)

    def about(self):
        """What answers at ``hostname``: vCenter (apiType VirtualCenter) or an ESXi host (HostAgent)."""
        about = self.content.about
        return {'name': about.name, 'version': about.version, 'build': about.build, 'api_type': about.apiType}

    def vms(self, refs, props=VM_FULL):
        """Full properties of the given VMs in one query."""
        if not refs:
            return []
        specs = [vmodl.query.PropertyCollector.ObjectSpec(obj=ref, skip=False) for ref in refs]
        try:
            rows = self._retrieve('reading VMs', specs, [(vim.VirtualMachine, props)])
        except NotFound:
            return []
        return [self._plain(row) for row in rows]

    def vm_state(self, ref):
        rows = self.vms([ref], ('runtime.powerState',))
        if not rows:
            raise NotFound('the VM %s no longer exists' % ref._moId)
        return STATE_NAMES.get(rows[0].get('runtime.powerState'), 'stopped')

    # -- plain data out of pyvmomi objects ---------------------------------------------
    def _plain(self, row):
        for key, value in list(row.items()):
            if key in ('ref',):
                continue
            if isinstance(value, ManagedObject):
                row[key] = value._moId
                row[key + '@ref'] = value
            elif key in ('host', 'datastore', 'network', 'childType'):
                row[key] = [v._moId if isinstance(v, ManagedObject) else _data(v) for v in value or []]
            elif key == 'config.hardware.device':
                row[key] = [_device(d) for d in value or []]
            elif key == 'config.extraConfig':
                row[key] = [(o.key, o.value) for o in value or []]
            elif key == 'guest.net':
                row[key] = [_guest_nic(n) for n in value or []]
            else:
                row[key] = _data(value)
        return row

    # -- tasks ----------------------------------------------------------------------------
    def wait_task(self, task, what, timeout=None):
        """Wait for a vSphere task; its error becomes a BackendError naming ``what``."""
        timeout = self.task_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            info = self._call(what, lambda: task.info)
            if info.state == 'success':
                return info.result
            if info.state == 'error':
                raise BackendError('%s failed: %s' % (what, self._scrub(_fault_text(info.error))))
            if time.monotonic() >= deadline:
                raise BackendError('%s: the vSphere task %s is still %s after %s s'
                                   % (what, task._moId, info.state, timeout))
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _run_task(self, what, func, *args, **kwargs):
        task = self._call(what, func, *args, **kwargs)
        return self.wait_task(task, what)

    # -- VM operations -------------------------------------------------------------------------
    def create_vm(self, folder, pool, host, config):
        spec = self._config_spec(config)
        return self._run_task('creating VM %s' % config['name'], folder.CreateVM_Task,
                              config=spec, pool=pool, host=host)

    def reconfigure_vm(self, ref, name, config):
        return self._run_task('reconfiguring VM %s' % name, ref.ReconfigVM_Task, spec=self._config_spec(config))

    def power_on(self, ref, name):
        return self._run_task('powering on VM %s' % name, ref.PowerOnVM_Task)

    def power_off(self, ref, name):
        return self._run_task('powering off VM %s' % name, ref.PowerOffVM_Task)

    def suspend(self, ref, name):
        return self._run_task('suspending VM %s' % name, ref.SuspendVM_Task)

    def shutdown_guest(self, ref, name):
        """Ask the guest OS to shut down; False when VMware Tools are not there to ask."""
        try:
            ref.ShutdownGuest()
        except vim.fault.ToolsUnavailable:
            return False
        except vmodl.MethodFault as exc:
            raise BackendError('asking VM %s to shut down failed: %s' % (name, self._scrub(_fault_text(exc))))
        return True

    def unregister_vm(self, ref, name):
        return self._call('unregistering VM %s' % name, ref.UnregisterVM)

    def destroy_vm(self, ref, name):
        return self._run_task('deleting VM %s' % name, ref.Destroy_Task)

    # -- templates, clones, guest customization ---------------------------------------------------
    def mark_as_template(self, ref, name):
        return self._call('marking VM %s as a template' % name, ref.MarkAsTemplate)

    def mark_as_vm(self, ref, name, pool, host):
        """MarkAsVirtualMachine: a VM again, in resource pool ``pool`` (on ``host``, or None)."""
        return self._call('marking template %s as a VM' % name, ref.MarkAsVirtualMachine, pool=pool, host=host)

    def current_snapshot(self, ref):
        """The VM's current snapshot (a managed object) or None."""
        rows = self._retrieve('reading the current snapshot', [vmodl.query.PropertyCollector.ObjectSpec(
            obj=ref, skip=False)], [(vim.VirtualMachine, ('snapshot.currentSnapshot',))])
        return rows[0].get('snapshot.currentSnapshot') if rows else None

    def clone_vm(self, source, source_name, folder, name, location, config, snapshot=None):
        """CloneVM_Task of ``source`` into ``folder`` as ``name``, powered off and not a template.

        ``location``: ``pool``, ``host``, ``datastore`` (references or None); ``snapshot``: a linked clone from
        that snapshot (new child disks on the source's disks); ``config``: the clone's configuration (as
        ``reconfigure_vm`` takes it). Returns the new VM."""
        reloc = vim.vm.RelocateSpec()
        for key in ('pool', 'host', 'datastore'):
            if location.get(key) is not None:
                setattr(reloc, key, location[key])
        spec = vim.vm.CloneSpec(location=reloc, powerOn=False, template=False, config=self._config_spec(config))
        if snapshot is not None:
            spec.snapshot = snapshot
            reloc.diskMoveType = 'createNewChildDiskBacking'
        return self._run_task('cloning %s into VM %s' % (source_name, name), source.CloneVM_Task,
                              folder=folder, name=name, spec=spec)

    def customize_vm(self, ref, name, custom, nics):
        """CustomizeVM_Task with a Linux identity (``custom``: the normalized customization; ``nics``: how many
        network adapters the VM has - each gets the item of ``custom['networks']`` at its index, or DHCP)."""
        cust = vim.vm.customization
        hostname = cust.FixedName(name=custom['hostname']) if custom.get('hostname') else \
            cust.VirtualMachineNameGenerator()
        identity = cust.LinuxPrep(hostName=hostname, domain=custom.get('domain') or '')
        settings = cust.GlobalIPSettings(dnsServerList=list(custom.get('dns_servers') or []))
        if custom.get('domain'):
            settings.dnsSuffixList = [custom['domain']]
        mapping = []
        networks = list(custom.get('networks') or [])
        for index in range(nics):
            net = networks[index] if index < len(networks) else {'dhcp': True}
            if net.get('dhcp'):
                adapter = cust.IPSettings(ip=cust.DhcpIpGenerator())
            else:
                adapter = cust.IPSettings(ip=cust.FixedIp(ipAddress=net['ip']),
                                          subnetMask=_netmask(net['prefix']))
                if net.get('gateway'):
                    adapter.gateway = [net['gateway']]
            if custom.get('dns_servers'):
                adapter.dnsServerList = list(custom['dns_servers'])
            if custom.get('domain'):
                adapter.dnsDomain = custom['domain']
            mapping.append(cust.AdapterMapping(adapter=adapter))
        spec = cust.Specification(identity=identity, globalIPSettings=settings, nicSettingMap=mapping)
        return self._run_task('customizing VM %s' % name, ref.CustomizeVM_Task, spec=spec)

    # -- snapshots ------------------------------------------------------------------------------
    def vm_snapshots(self, ref):
        """The VM's power state and its snapshot tree in one query, or None when the VM is gone:
        ``{'name', 'state', 'snapshots'}``, the snapshots parents first (vSphere's tree order: siblings as
        taken), each a dict with ``ref`` (for revert and remove), ``name``, ``description``, ``created`` (UTC,
        ISO 8601), ``state`` (the power state vSphere recorded), ``quiesced``, ``parent`` (its name) and
        ``current``."""
        specs = [vmodl.query.PropertyCollector.ObjectSpec(obj=ref, skip=False)]
        try:
            rows = self._retrieve('reading the snapshots of a VM', specs,
                                  [(vim.VirtualMachine, ('name', 'runtime.powerState', 'snapshot'))])
        except NotFound:
            return None
        if not rows:
            return None
        row = rows[0]
        info = row.get('snapshot')
        current = info.currentSnapshot._moId if info is not None and info.currentSnapshot is not None else None
        entries = []

        def walk(trees, parent):
            for tree in trees or []:
                created = tree.createTime
                if created is not None and created.tzinfo is not None:
                    created = created.astimezone(datetime.timezone.utc)
                entries.append({'ref': tree.snapshot, 'name': tree.name, 'description': tree.description or None,
                                'created': created.strftime('%Y-%m-%dT%H:%M:%SZ') if created else None,
                                'state': STATE_NAMES.get(tree.state, 'stopped'), 'quiesced': bool(tree.quiesced),
                                'parent': parent, 'current': tree.snapshot._moId == current})
                walk(tree.childSnapshotList, tree.name)
        walk(info.rootSnapshotList if info is not None else [], None)
        return {'name': row.get('name'), 'state': STATE_NAMES.get(row.get('runtime.powerState'), 'stopped'),
                'snapshots': entries}

    def _task_property(self, task, what, path):
        spec = vmodl.query.PropertyCollector
        filter_spec = spec.FilterSpec(objectSet=[spec.ObjectSpec(obj=task, skip=False)],
                                      propSet=[spec.PropertySpec(type=vim.Task, pathSet=[path], all=False)])
        for item in self._call(what, self.content.propertyCollector.RetrieveContents, [filter_spec]) or []:
            for prop in item.propSet or []:
                return prop.val
        return None

    def _run_snapshot_task(self, what, func, **kwargs):
        """Run a snapshot task and wait for it reading ``info.state`` (and ``info.error``) alone: govmomi's
        simulator names the snapshot, no managed entity, as the ``info.entity`` of a snapshot's own tasks, which
        pyvmomi refuses to read as a whole ``info``."""
        task = self._call(what, func, **kwargs)
        deadline = time.monotonic() + self.task_timeout
        delay = 0.05
        while True:
            state = self._task_property(task, what, 'info.state')
            if state == 'success':
                return None
            if state == 'error':
                error = self._task_property(task, what, 'info.error')
                raise BackendError('%s failed: %s' % (what, self._scrub(_fault_text(error) if error else 'unknown error')))
            if time.monotonic() >= deadline:
                raise BackendError('%s: the vSphere task %s is still %s after %s s'
                                   % (what, task._moId, state, self.task_timeout))
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def create_snapshot(self, ref, vm, name, description, memory, quiesce):
        """CreateSnapshot_Task with vSphere's own ``memory`` and ``quiesce`` flags; the new snapshot's ref."""
        return self._run_task('taking snapshot %r of VM %s' % (name, vm), ref.CreateSnapshot_Task,
                              name=name, description=description or '', memory=bool(memory), quiesce=bool(quiesce))

    def revert_snapshot(self, snap, vm, name, suppress_power_on):
        """RevertToSnapshot_Task; ``suppress_power_on`` keeps vSphere from powering the VM on."""
        return self._run_snapshot_task('reverting VM %s to snapshot %r' % (vm, name), snap.RevertToSnapshot_Task,
                                       suppressPowerOn=bool(suppress_power_on))

    def remove_snapshot(self, snap, vm, name, children):
        """RemoveSnapshot_Task (``removeChildren``: the snapshots below it too)."""
        return self._run_snapshot_task('removing snapshot %r of VM %s' % (name, vm), snap.RemoveSnapshot_Task,
                                       removeChildren=bool(children))

    # -- relocation (vMotion, storage vMotion) ------------------------------------------------------
    @staticmethod
    def _relocate_spec(move):
        spec = vim.vm.RelocateSpec()
        if move.get('host') is not None:
            spec.host = move['host']
        if move.get('pool') is not None:
            spec.pool = move['pool']
        if move.get('datastore') is not None:
            spec.datastore = move['datastore']
            spec.disk = [vim.vm.RelocateSpec.DiskLocator(diskId=key, datastore=move['datastore'])
                         for key in move.get('disk_keys') or []]
        return spec

    def check_relocate(self, ref, name, move):
        """vSphere's own relocation checks (VmProvisioningChecker.CheckRelocate_Task): a list of
        problems (errors and warnings as text), or None when this vSphere does not offer them."""
        checker = self.content.vmProvisioningChecker
        if checker is None:
            return None
        what = 'checking the relocation of VM %s' % name
        try:
            task = checker.CheckRelocate_Task(vm=ref, spec=self._relocate_spec(move))
        except vmodl.fault.MethodNotFound:
            return None
        except vmodl.MethodFault as exc:
            raise BackendError('%s failed: %s' % (what, self._scrub(_fault_text(exc))))
        found = []
        for result in self.wait_task(task, what) or []:
            found += ['error: %s' % self._scrub(_fault_text(e)) for e in result.error or []]
            found += ['warning: %s' % self._scrub(_fault_text(w)) for w in result.warning or []]
        return found

    def relocate_vm(self, ref, name, move, timeout=None):
        what = 'relocating VM %s' % name
        task = self._call(what, ref.RelocateVM_Task, spec=self._relocate_spec(move))
        return self.wait_task(task, what, timeout)

    # -- standard port groups (HostNetworkSystem of one host) -------------------------------
    @staticmethod
    def _portgroup_spec(name, vswitch, vlan):
        return vim.host.PortGroup.Specification(name=name, vswitchName=vswitch, vlanId=int(vlan),
                                                policy=vim.host.NetworkPolicy())

    def add_portgroup(self, netsys, host, name, vswitch, vlan):
        self._call('adding port group %s to vSwitch %s of host %s' % (name, vswitch, host), netsys.AddPortGroup,
                   portgrp=self._portgroup_spec(name, vswitch, vlan))

    def update_portgroup(self, netsys, host, name, vswitch, vlan):
        self._call('changing port group %s on host %s' % (name, host), netsys.UpdatePortGroup,
                   pgName=name, portgrp=self._portgroup_spec(name, vswitch, vlan))

    def remove_portgroup(self, netsys, host, name):
        self._call('removing port group %s from host %s' % (name, host), netsys.RemovePortGroup, pgName=name)

    # -- NFS datastores (HostDatastoreSystem of one host) -------------------------------------
    def mount_nas_datastore(self, dss, host, name, remote_hosts, remote_path, nfs_type='nfs'):
        """Mount an NFS export as datastore ``name`` on one host (``CreateNasDatastore``).

        ``localPath`` is the datastore name (ESXi mounts it below /vmfs/volumes); ``nfs_type``
        is ``nfs`` (NFS 3, one server) or ``nfs41`` (NFS 4.1, one or more server addresses).
        """
        spec = vim.host.NasVolume.Specification(
            remoteHost=remote_hosts[0], remotePath=remote_path, localPath=name, accessMode='readWrite',
            type='NFS41' if nfs_type == 'nfs41' else 'NFS')
        if nfs_type == 'nfs41':
            spec.remoteHostNames = list(remote_hosts)
            spec.securityType = 'AUTH_SYS'
        what = 'mounting %s:%s as NFS datastore %s on host %s' % (','.join(remote_hosts), remote_path, name, host)
        return self._call(what, dss.CreateNasDatastore, spec=spec)._moId

    def remove_datastore(self, dss, host, ds, name):
        """Unmount datastore ``ds`` from one host (``RemoveDatastore``). A server without the
        method (govmomi's simulator) raises BackendError with ``details['unsupported']``."""
        what = 'unmounting datastore %s from host %s' % (name, host)

        def remove():
            try:
                dss.RemoveDatastore(datastore=ds)
            except vmodl.fault.MethodNotFound as exc:
                raise BackendError('%s failed: %s' % (what, self._scrub(_fault_text(exc))), unsupported=True)
        self._call(what, remove)

    def destroy_datastore(self, ds, name, timeout=None):
        """Remove datastore ``ds`` from the inventory, i.e. from every host (``Destroy_Task``,
        waited for up to ``timeout`` s); vSphere refuses it while VMs use the datastore."""
        what = 'removing datastore %s' % name
        task = self._call(what, ds.Destroy_Task)
        return self.wait_task(task, what, timeout)

    # -- specs from plain data ---------------------------------------------------------------
    def _config_spec(self, config):
        spec = vim.vm.ConfigSpec()
        simple = {'name': 'name', 'guest_id': 'guestId', 'memory_mb': 'memoryMB', 'vcpus': 'numCPUs',
                  'annotation': 'annotation', 'memory_hot_add': 'memoryHotAddEnabled',
                  'cpu_hot_add': 'cpuHotAddEnabled', 'firmware': 'firmware'}
        for key, attr in simple.items():
            if config.get(key) is not None:
                setattr(spec, attr, config[key])
        if config.get('datastore'):
            spec.files = vim.vm.FileInfo(vmPathName='[%s]' % config['datastore'])
        if config.get('extra_config'):
            spec.extraConfig = [vim.option.OptionValue(key=k, value=v) for k, v in config['extra_config']]
        spec.deviceChange = [self._device_change(change) for change in config.get('devices') or []]
        return spec

    def _device_change(self, change):
        op = change['op']
        dspec = vim.vm.device.VirtualDeviceSpec()
        dspec.operation = {'add': 'add', 'edit': 'edit', 'remove': 'remove'}[op]
        kind = change['kind']
        if kind == 'controller':
            device = _new_controller(change)
        elif kind == 'disk':
            device = change.get('device@ref') if op != 'add' else None
            if device is None:
                device = vim.vm.device.VirtualDisk()
                if change.get('existing'):  # attach a disk file that exists
                    device.backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                        diskMode='persistent', fileName=change['existing'])
                else:
                    device.backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                        diskMode='persistent', thinProvisioned=True, fileName='[%s]' % change['datastore'])
                    dspec.fileOperation = 'create'
            if change.get('size_kb'):
                device.capacityInKB = change['size_kb']
                device.capacityInBytes = change['size_kb'] * 1024
            if op == 'remove' and change.get('destroy_file'):
                dspec.fileOperation = 'destroy'
        elif kind == 'cdrom':
            device = change.get('device@ref') if op != 'add' else None
            if device is None:
                device = vim.vm.device.VirtualCdrom()
                if change.get('iso'):
                    device.backing = vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=change['iso'])
                else:
                    device.backing = vim.vm.device.VirtualCdrom.RemotePassthroughBackingInfo(
                        deviceName='', exclusive=False)
                device.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
                    startConnected=bool(change.get('iso')), allowGuestControl=True, connected=False)
        elif kind == 'nic':
            device = change.get('device@ref') if op != 'add' else None
            if device is None:
                cls = dict((v, k) for k, v in NIC_MODELS.items())[change['model']]
                device = cls()
                device.backing = self._nic_backing(change['network'])
                device.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
                    startConnected=True, allowGuestControl=True, connected=True)
                if change.get('mac'):
                    device.addressType = 'manual'
                    device.macAddress = change['mac']
                else:
                    device.addressType = 'generated'
        else:  # pragma: no cover - the driver names only the kinds above
            raise BackendError('unknown device kind %s' % kind)
        if op == 'add':
            device.key = change['key']
            if change.get('controller_key') is not None:
                device.controllerKey = change['controller_key']
            if change.get('unit') is not None:
                device.unitNumber = change['unit']
        dspec.device = device
        return dspec

    @staticmethod
    def _nic_backing(network):
        if network.get('portgroup_key'):
            port = vim.dvs.PortConnection(portgroupKey=network['portgroup_key'], switchUuid=network['switch_uuid'])
            return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port)
        return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
            deviceName=network['name'], network=network.get('ref'))


_KINDS = {
    'Datacenter': 'datacenters', 'Folder': 'folders', 'ClusterComputeResource': 'compute',
    'ComputeResource': 'compute', 'HostSystem': 'hosts', 'ResourcePool': 'pools', 'VirtualApp': 'pools',
    'Datastore': 'datastores', 'Network': 'networks', 'DistributedVirtualPortgroup': 'networks',
    'OpaqueNetwork': 'networks', 'VmwareDistributedVirtualSwitch': 'switches',
    'DistributedVirtualSwitch': 'switches', 'VirtualMachine': 'vms',
    'NetworkSystem': 'network_systems', 'DatastoreSystem': 'datastore_systems',
}


def _new_controller(change):
    subtype = change.get('subtype', 'pvscsi')
    classes = {
        'pvscsi': vim.vm.device.ParaVirtualSCSIController,
        'lsilogic': vim.vm.device.VirtualLsiLogicController,
        'lsilogicsas': vim.vm.device.VirtualLsiLogicSASController,
        'ahci': vim.vm.device.VirtualAHCIController,
    }
    device = classes[subtype]()
    device.busNumber = change['bus_number']
    if change['bus'] == 'scsi':
        device.sharedBus = 'noSharing'
    return device


def _device(dev):
    """A device as a plain dict; ``device@ref`` keeps the pyvmomi object for edits."""
    item = {'key': dev.key, 'controller_key': dev.controllerKey, 'unit': dev.unitNumber,
            'label': dev.deviceInfo.label if dev.deviceInfo else None, 'device@ref': dev}
    for cls, (bus, subtype) in CONTROLLERS.items():
        if isinstance(dev, cls):
            item.update(kind='controller', bus=bus, subtype=subtype, bus_number=dev.busNumber)
            return item
    if isinstance(dev, vim.vm.device.VirtualDisk):
        backing = dev.backing
        item.update(kind='disk', file=getattr(backing, 'fileName', None),
                    capacity_kb=dev.capacityInKB or (dev.capacityInBytes or 0) // 1024)
    elif isinstance(dev, vim.vm.device.VirtualCdrom):
        backing = dev.backing
        iso = backing.fileName if isinstance(backing, vim.vm.device.VirtualCdrom.IsoBackingInfo) else None
        item.update(kind='cdrom', file=iso or None)
    elif isinstance(dev, vim.vm.device.VirtualEthernetCard):
        model = next((name for cls, name in NIC_MODELS.items() if isinstance(dev, cls)), 'other')
        backing = dev.backing
        item.update(kind='nic', model=model, mac=(dev.macAddress or '').lower() or None,
                    address_type=dev.addressType)
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
            item.update(portgroup_key=backing.port.portgroupKey, switch_uuid=backing.port.switchUuid)
        else:
            item.update(network_name=getattr(backing, 'deviceName', None),
                        network=backing.network._moId if getattr(backing, 'network', None) else None)
    else:
        item['kind'] = 'other'
    return item


def _netmask(prefix):
    """The IPv4 netmask of a prefix length (24 -> 255.255.255.0)."""
    value = (0xffffffff << (32 - prefix)) & 0xffffffff
    return '.'.join(str((value >> shift) & 0xff) for shift in (24, 16, 8, 0))


def _guest_nic(nic):
    addresses = []
    if nic.ipConfig and nic.ipConfig.ipAddress:
        for addr in nic.ipConfig.ipAddress:
            addresses.append({'address': addr.ipAddress, 'prefix': addr.prefixLength})
    else:
        addresses = [{'address': a, 'prefix': None} for a in nic.ipAddress or []]
    return {'mac': (nic.macAddress or '').lower() or None, 'network': nic.network,
            'device_key': nic.deviceConfigId, 'addresses': addresses}

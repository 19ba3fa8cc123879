"""What a module call may change, read straight from the daemons, limited to one name prefix.

Each snapshot is a plain, comparable structure: equal snapshots before and after a call mean the
call changed nothing there. Everything is read with the daemons' own interfaces (libvirt-python,
the podman CLI through the test wrapper, pyvmomi), never through the collection.
"""
from __future__ import annotations

import json
import os
import ssl
import subprocess
import time

import libvirt
from lxml import etree

URI = 'qemu:///system'


def _pool_xml(xml):
    """A pool's definition without the sizes of its filesystem (they move whenever any file there changes)."""
    root = etree.fromstring(xml.encode('utf-8'))
    for tag in ('capacity', 'allocation', 'available'):
        for elem in root.findall(tag):
            root.remove(elem)
    return etree.tostring(root, encoding='unicode')


def _live_network_xml(xml):
    """An active network's live definition without ``connections`` (the number of guest interfaces attached to it
    right now: the domains' own snapshots show their starts and stops)."""
    root = etree.fromstring(xml.encode('utf-8'))
    root.attrib.pop('connections', None)
    return etree.tostring(root, encoding='unicode')


def _quiet(_ctx, _err):
    return None


def daemon_id(pidfile='/run/libvirtd.pid'):
    """The running libvirtd as ``(pid, start time)``, None when there is none: a change means it was restarted.

    A fuzz run never restarts libvirtd, but other test runs on the machine may (the kvm_host role, the fault
    tests); a restarted daemon reloads and refreshes its pools, which a before/after comparison would take for
    a change the call made.
    """
    try:
        with open(pidfile) as handle:
            pid = int(handle.read().strip())
        with open('/proc/%d/stat' % pid) as handle:
            return pid, handle.read().rsplit(')', 1)[1].split()[19]  # field 22: start time in clock ticks
    except (OSError, ValueError, IndexError):
        return None


class Libvirt:
    """Domains, networks and pools (with their volumes) whose names start with a prefix."""

    def __init__(self, uri=URI):
        self.uri = uri
        self._conn = None
        libvirt.registerErrorHandler(_quiet, None)

    @property
    def conn(self):
        if self._conn is not None:
            try:
                if self._conn.isAlive():
                    return self._conn
            except libvirt.libvirtError:
                pass
            self.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                self._conn = libvirt.open(self.uri)
                return self._conn
            except libvirt.libvirtError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except libvirt.libvirtError:
                pass
            self._conn = None

    def snapshot(self, prefixes, retries=3):
        """Retried: an object another call removes while it is listed is simply read again."""
        for attempt in range(retries):
            try:
                return self._snapshot(prefixes)
            except libvirt.libvirtError:
                if attempt == retries - 1:
                    raise
                time.sleep(0.2)
        return None

    def _snapshot(self, prefixes):
        prefixes = tuple(prefixes)
        conn = self.conn
        domains, networks, pools = {}, {}, {}
        for dom in conn.listAllDomains(0):
            if not dom.name().startswith(prefixes):
                continue
            persistent = bool(dom.isPersistent())
            active = bool(dom.isActive())
            # the live definition too: a change made to the running guest only (a hot-plug, a live memory or
            # vCPU change, a media change) shows nowhere else. Read twice 20 s apart, a running test guest's live
            # XML is the same to the byte (its id, vnc port, pty, tap device and aliases are set at start and stay
            # until it stops), so it is compared whole.
            domains[dom.name()] = (dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) if persistent else None,
                                   dom.XMLDesc(0) if active else None,
                                   dom.state()[0], bool(dom.autostart()), persistent,
                                   bool(dom.hasManagedSaveImage(0)))
        for net in conn.listAllNetworks(0):
            if net.name().startswith(prefixes):
                active = bool(net.isActive())
                networks[net.name()] = (net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE),
                                        _live_network_xml(net.XMLDesc(0)) if active else None, active,
                                        bool(net.autostart()), bool(net.isPersistent()))
        for pool in conn.listAllStoragePools(0):
            if not pool.name().startswith(prefixes):
                continue
            active = bool(pool.isActive())
            volumes = []
            if active:
                for vol in pool.listAllVolumes(0):
                    info = vol.info()
                    volumes.append((vol.name(), vol.path(), info[0], info[1]))
            pools[pool.name()] = (_pool_xml(pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE)), active, bool(pool.autostart()),
                                  sorted(volumes))
        return {'domains': domains, 'networks': networks, 'pools': pools}

    # -- cleanup of a run's own objects --------------------------------------------------------
    def remove_all(self, prefixes):
        prefixes = tuple(prefixes)
        conn = self.conn
        for dom in conn.listAllDomains(0):
            if dom.name().startswith(prefixes):
                try:
                    if dom.isActive():
                        dom.destroy()
                except libvirt.libvirtError:
                    pass
                try:
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                      | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
                except libvirt.libvirtError:
                    pass
        for net in conn.listAllNetworks(0):
            if net.name().startswith(prefixes):
                for step in (net.destroy, net.undefine):
                    try:
                        step()
                    except libvirt.libvirtError:
                        pass
        for pool in conn.listAllStoragePools(0):
            if pool.name().startswith(prefixes):
                try:
                    if pool.isActive():
                        for vol in pool.listAllVolumes(0):
                            try:
                                vol.delete(0)
                            except libvirt.libvirtError:
                                pass
                        pool.destroy()
                except libvirt.libvirtError:
                    pass
                try:
                    pool.undefine()
                except libvirt.libvirtError:
                    pass


NETWORK_KEYS = ('id', 'driver', 'network_interface', 'created', 'subnets', 'ipv6_enabled', 'internal', 'dns_enabled',
                'labels', 'options', 'ipam_options')
VOLUME_KEYS = ('Driver', 'Mountpoint', 'CreatedAt', 'Labels', 'Options', 'Scope')


class Podman:
    """Containers, volumes and networks whose names start with a prefix (through the test wrapper)."""

    def __init__(self, path):
        self.path = path

    def run(self, *args, check=False):
        proc = subprocess.run([self.path] + [str(a) for a in args], capture_output=True, text=True, timeout=120,
                              check=False)
        if check and proc.returncode != 0:
            raise RuntimeError('podman %s: %s' % (' '.join(map(str, args)), proc.stderr.strip()))
        return proc

    def _json(self, *args):
        # a read that fails (Podman's lock held long by another user of the same storage) is no empty list: taken
        # for one, it shows objects vanishing and reappearing around a call that did not touch them
        for attempt in range(3):
            proc = self.run(*args)
            if proc.returncode == 0:
                break
            time.sleep(1 + attempt)
        else:
            raise RuntimeError('podman %s failed 3 times: %s' % (' '.join(map(str, args)), proc.stderr.strip()[-300:]))
        try:
            return json.loads(proc.stdout) if proc.stdout.strip() else []
        except ValueError as exc:
            raise RuntimeError('podman %s printed no JSON: %r' % (' '.join(map(str, args)), proc.stdout[-300:])) from exc

    def names(self, prefixes):
        containers = [n for entry in self._json('ps', '--all', '--format', 'json') for n in entry.get('Names') or []
                      if n.startswith(tuple(prefixes))]
        volumes = [v.get('Name') for v in self._json('volume', 'ls', '--format', 'json')
                   if (v.get('Name') or '').startswith(tuple(prefixes))]
        networks = [n.get('name') or n.get('Name') for n in self._json('network', 'ls', '--format', 'json')
                    if (n.get('name') or n.get('Name') or '').startswith(tuple(prefixes))]
        return sorted(containers), sorted(volumes), sorted(networks)

    def snapshot(self, prefixes):
        containers, volumes, networks = self.names(prefixes)
        found = {}
        for data in (self._json('container', 'inspect', *containers) if containers else []):
            host = data.get('HostConfig') or {}
            config = data.get('Config') or {}
            state = data.get('State') or {}
            # podman restarts a container with a restart policy by itself whenever its command exits: then its
            # status and start time change between any two reads, whatever a call does
            policy = (host.get('RestartPolicy') or {}).get('Name') or 'no'
            volatile = policy not in ('no', '')
            found[data.get('Name')] = (data.get('Id'), None if volatile else state.get('Status'),
                                       None if volatile else state.get('StartedAt'),
                                       config.get('Env'), config.get('Labels'), config.get('Cmd'), data.get('Image'),
                                       json.dumps(host.get('PortBindings'), sort_keys=True),
                                       json.dumps(data.get('Mounts'), sort_keys=True),
                                       json.dumps(host.get('RestartPolicy'), sort_keys=True), host.get('Memory'),
                                       host.get('NanoCpus'),
                                       sorted((data.get('NetworkSettings') or {}).get('Networks') or {}))
        # networks and volumes with their definitions, so that a change of one (labels, options, subnets) or its
        # removal and re-creation (a new id, created time or mount point) shows; not MountCount or NeedsCopyUp,
        # which a container's start or stop moves
        nets = {}
        for data in (self._json('network', 'inspect', *networks) if networks else []):
            nets[data.get('name')] = json.dumps(dict((k, data.get(k)) for k in NETWORK_KEYS), sort_keys=True)
        vols = {}
        for data in (self._json('volume', 'inspect', *volumes) if volumes else []):
            vols[data.get('Name')] = json.dumps(dict((k, data.get(k)) for k in VOLUME_KEYS), sort_keys=True)
        return {'containers': found, 'volumes': vols, 'networks': nets, 'pods': self.pods(prefixes)}

    def pod_names(self, prefixes):
        return sorted(p.get('Name') for p in self._json('pod', 'ps', '--format', 'json')
                      if (p.get('Name') or '').startswith(tuple(prefixes)))

    def pods(self, prefixes):
        """Pods with their definitions and members (not their status, which their containers' runs move)."""
        found = {}
        for name in self.pod_names(prefixes):
            data = self._json('pod', 'inspect', name)
            data = (data[0] if data else {}) if isinstance(data, list) else data
            infra = data.get('InfraConfig') or {}
            found[name] = json.dumps({
                'id': data.get('Id'), 'created': data.get('Created'), 'labels': data.get('Labels'),
                'hostname': data.get('Hostname'), 'infra': data.get('CreateInfra'),
                'share': sorted(data.get('SharedNamespaces') or []), 'ports': infra.get('PortBindings'),
                # in the order of a Go map: it differs between two reads of the same pod
                'networks': sorted(infra.get('Networks') or []),
                'containers': sorted(c.get('Name') for c in data.get('Containers') or [])}, sort_keys=True)
        return found

    def remove_all(self, prefixes):
        for name in self.pod_names(prefixes):
            self.run('pod', 'rm', '--force', '--time', '0', name)
        containers, volumes, networks = self.names(prefixes)
        for name in containers:
            self.run('rm', '--force', '--volumes', '--time', '0', name)
        for name in volumes:
            self.run('volume', 'rm', '--force', name)
        for name in networks:
            self.run('network', 'rm', '--force', name)


class VSphere:
    """What a vCenter simulator holds under names that start with a prefix: VMs, standard port groups (on
    every host) and datastores."""

    def __init__(self, facts):
        self.facts = facts
        self._si = None

    @property
    def si(self):
        from pyVim.connect import SmartConnect
        if self._si is None:
            self._si = SmartConnect(host=self.facts['host'], port=int(self.facts['port']), user=self.facts['username'],
                                    pwd=self.facts['password'],
                                    sslContext=ssl.create_default_context(cafile=self.facts['ca_file']))
        return self._si

    def close(self):
        from pyVim.connect import Disconnect
        if self._si is not None:
            try:
                Disconnect(self._si)
            except Exception:  # pylint: disable=broad-except
                pass
            self._si = None

    def objects(self, kind, prefixes=None):
        from pyVmomi import vim
        content = self.si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [getattr(vim, kind)], True)
        try:
            return [o for o in view.view if prefixes is None or o.name.startswith(tuple(prefixes))]
        finally:
            view.Destroy()

    def portgroups(self, prefixes):
        """``{host: [(name, vswitch, vlan)]}`` of the port groups whose names start with a prefix."""
        found = {}
        for host in self.objects('HostSystem'):
            groups = sorted((pg.spec.name, pg.spec.vswitchName, pg.spec.vlanId)
                            for pg in host.configManager.networkSystem.networkInfo.portgroup
                            if pg.spec.name.startswith(tuple(prefixes)))
            if groups:
                found[host.name] = groups
        return found

    def snapshot(self, prefixes):
        vms = {}
        for vm in self.objects('VirtualMachine', prefixes):
            config = vm.config
            vms[vm.name] = (str(config.modified), config.hardware.memoryMB, config.hardware.numCPU,
                            vm.runtime.powerState, config.annotation,
                            sorted((o.key, str(o.value)) for o in config.extraConfig),
                            sorted(d.key for d in config.hardware.device),
                            # a template has no resource pool, and govmomi's simulator panics (closing the
                            # connection) when that one unset property is read alone
                            str(vm.runtime.host), None if config.template else str(vm.resourcePool), str(vm.parent))
        datastores = {}
        for ds in self.objects('Datastore', prefixes):
            nas = getattr(ds.info, 'nas', None)
            datastores[ds.name] = (ds.summary.type, nas and nas.remoteHost, nas and nas.remotePath,
                                   sorted(mount.key.name for mount in ds.host))
        return {'vms': vms, 'portgroups': self.portgroups(prefixes), 'datastores': datastores}

    def remove_all(self, prefixes):
        from pyVim.task import WaitForTask
        for vm in self.objects('VirtualMachine', prefixes):
            try:
                if vm.runtime.powerState != 'poweredOff':
                    WaitForTask(vm.PowerOffVM_Task())
                WaitForTask(vm.Destroy_Task())
            except Exception:  # pylint: disable=broad-except
                pass
        for host in self.objects('HostSystem'):
            for name, _vswitch, _vlan in self.portgroups(prefixes).get(host.name, []):
                try:
                    host.configManager.networkSystem.RemovePortGroup(pgName=name)
                except Exception:  # pylint: disable=broad-except
                    pass
        for ds in self.objects('Datastore', prefixes):
            try:
                WaitForTask(ds.Destroy_Task())  # the simulator has no RemoveDatastore
            except Exception:  # pylint: disable=broad-except
                pass


def files(root, skip=('logs',)):
    """Names and sizes of the files under ``root`` (serial logs left out: running guests write them)."""
    found = []
    for base, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if os.path.relpath(os.path.join(base, d), root) not in skip)
        for name in names:
            path = os.path.join(base, name)
            try:
                found.append((os.path.relpath(path, root), os.path.getsize(path)))
            except OSError:
                pass
    return sorted(found)

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloud-init NoCloud seeds: the files, their content hash and the ISO image.

The ISO is built in memory with pycdlib (pure Python, installed with pip next to
libvirt-python): no xorriso/genisoimage binary is needed on the host that runs the
module, nothing is written to a temporary file, and the bytes are streamed into
the volume through libvirt, so remote URIs work the same as local ones.

The image has the volume label ``cidata``, ISO 9660 names plus Rock Ridge and
Joliet long names (``user-data``, ``meta-data``, ``network-config``), and a
marker in the primary volume descriptor's application-use field:
``virtfleet-seed sha256=<content hash> files=<names>`` - what a later run
compares, so the seed is rebuilt only when its content changes.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import traceback

try:
    import pycdlib
    HAS_PYCDLIB = True
    PYCDLIB_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported through missing_required_lib
    pycdlib = None
    HAS_PYCDLIB = False
    PYCDLIB_IMPORT_ERROR = traceback.format_exc()

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML is not on every host that runs a module
    yaml = None

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

LABEL = 'cidata'
SECTOR = 2048
PVD_OFFSET = 16 * SECTOR          # the primary volume descriptor
_APP_USE = slice(883, 883 + 512)  # its application-use field
_MARKER_RE = re.compile(r'^virtfleet-seed sha256=([0-9a-f]{64}) files=([a-z,-]*)\s*$')
FILE_ORDER = ('meta-data', 'user-data', 'network-config')
VM_SEED_SUFFIX = '-cidata.iso'  # the seed volume the vm module keeps for a VM is named after it


def vm_seed_volume(vm_name):
    return vm_name + VM_SEED_SUFFIX


def _render(value, param, header=''):
    """A str is used verbatim; a dict becomes YAML (as JSON, which YAML reads) after ``header``."""
    if isinstance(value, dict):
        return (header + json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')
    if isinstance(value, str):
        return value.encode('utf-8')
    raise SpecError(param, 'expected a string (the file content) or a dictionary, got %s' % type(value).__name__)


def _check_yaml(data, param, what):
    """Refuse, naming ``param``, a file cloud-init reads as YAML that is not YAML (cloud-init would skip it and
    the guest boot without it). Without PyYAML on the host that runs the module, the check is left to cloud-init."""
    if yaml is None:
        return
    try:
        parsed = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = ' (line %d, column %d)' % (mark.line + 1, mark.column + 1) if mark is not None else ''
        raise SpecError(param, 'is not valid YAML%s: %s; cloud-init would ignore %s'
                        % (where, getattr(exc, 'problem', None) or exc, what))
    if parsed is not None and not isinstance(parsed, dict):
        raise SpecError(param, 'must be a YAML mapping; cloud-init would ignore %s (it is a %s)'
                        % (what, type(parsed).__name__))


def seed_files(name, user_data=None, meta_data=None, network_config=None, param=''):
    """The seed's files (name -> bytes) from the module options (``param``: the prefix of their names in
    messages). ``#cloud-config`` user-data, meta-data and network-config strings must be YAML mappings."""
    if meta_data is None:
        meta_data = {}
    if isinstance(meta_data, dict) and 'instance-id' not in meta_data:
        meta_data = dict(meta_data, **{'instance-id': name})
    files = {
        'meta-data': _render(meta_data, param + 'meta_data'),
        'user-data': _render(user_data if user_data is not None else '#cloud-config\n', param + 'user_data',
                             header='#cloud-config\n'),
    }
    if network_config is not None:
        files['network-config'] = _render(network_config, param + 'network_config')
    if isinstance(user_data, str) and user_data.startswith('#cloud-config'):
        _check_yaml(user_data, param + 'user_data', 'the whole user-data')
    if isinstance(meta_data, str):
        _check_yaml(meta_data, param + 'meta_data', 'the meta-data')
    if isinstance(network_config, str):
        _check_yaml(network_config, param + 'network_config', 'the network configuration')
    return files


def content_sha256(files):
    """One hash over every file's name and content (what decides a rebuild)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        digest.update(name.encode('ascii') + b'\0' + str(len(data)).encode('ascii') + b'\0' + data)
    return digest.hexdigest()


def seed_spec(files):
    return {'content_sha256': content_sha256(files), 'files': sorted(files)}


def marker(digest, names):
    return 'virtfleet-seed sha256=%s files=%s' % (digest, ','.join(sorted(names)))


def parse_marker(sector):
    """The ``seed_spec`` stored in an ISO's primary volume descriptor, or None when it has none."""
    if len(sector) < SECTOR or sector[1:6] != b'CD001' or sector[0:1] != b'\x01':
        return None
    match = _MARKER_RE.match(sector[_APP_USE].decode('ascii', 'replace'))
    if not match:
        return None
    return {'content_sha256': match.group(1), 'files': [n for n in match.group(2).split(',') if n]}


def build_iso(files, digest):
    """The NoCloud seed ISO image (bytes)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident=LABEL, joliet=3, rock_ridge='1.09',
            app_ident_str='VIRTFLEET CLOUD-INIT SEED', app_use=marker(digest, files))
    for name in sorted(files, key=lambda n: FILE_ORDER.index(n) if n in FILE_ORDER else len(FILE_ORDER)):
        data = files[name]
        iso.add_fp(io.BytesIO(data), len(data), '/%s.;1' % name.upper().replace('-', '_'),
                   rr_name=name, joliet_path='/' + name)
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


# -- the customization option (_customization.normalize) as seed files ------------------------------------------

def instance_id(vm_uuid):
    """The instance-id of a VM's customization seed: derived from its UUID, so a clone (a new UUID) is a new
    instance for cloud-init and a re-run of the same VM is not."""
    return 'iid-' + vm_uuid


def _ethernet(net, dns, domain):
    if net.get('dhcp', True) and not net.get('ip'):
        item = {'dhcp4': True}
    else:
        item = {'addresses': ['%s/%d' % (net['ip'], net['prefix'])]}
        if net.get('gateway'):
            item['routes'] = [{'to': '::/0' if ':' in net['gateway'] else '0.0.0.0/0', 'via': net['gateway']}]
    if dns or domain:
        item['nameservers'] = dict(([('addresses', list(dns))] if dns else []) + ([('search', [domain])] if domain else []))
    return item


def network_config(custom, macs):
    """network-config version 2 for ``custom`` (the normalized customization), one ethernet per item of its
    ``networks`` matched by the MAC of the VM's NIC at that index (``macs``); None when it sets no network."""
    networks = custom.get('networks') or []
    dns = custom.get('dns_servers') or []
    if not networks and not dns:
        return None
    if len(networks) > len(macs):
        raise SpecError('customization.networks', 'has %d items, but the VM has %d network interfaces (one item '
                                                  'per interface, in their order)' % (len(networks), len(macs)))
    if not networks:
        networks = [{'dhcp': True} for _mac in macs]
    ethernets = {}
    for index, net in enumerate(networks):
        item = _ethernet(net, dns, custom.get('domain'))
        item['match'] = {'macaddress': macs[index]}
        item['set-name'] = 'eth%d' % index
        ethernets['eth%d' % index] = item
    return {'version': 2, 'ethernets': ethernets}


def customization_files(custom, vm_uuid, macs):
    """The seed files (``seed_files``) of a normalized customization for the VM of UUID ``vm_uuid`` whose NICs
    have the MAC addresses ``macs`` (in order): meta-data with the instance-id and local-hostname, ``#cloud-config``
    user-data (customization.user_data, then hostname/fqdn and ssh_authorized_keys on top: keys are added to those
    user_data lists) and network-config v2 when it sets addresses or DNS servers."""
    meta = {'instance-id': instance_id(vm_uuid)}
    user = dict(custom.get('user_data') or {})
    hostname, domain = custom.get('hostname'), custom.get('domain')
    if hostname:
        meta['local-hostname'] = hostname
        user['hostname'] = hostname
        user['preserve_hostname'] = False
        if domain:
            user['fqdn'] = '%s.%s' % (hostname, domain)
            user.setdefault('prefer_fqdn_over_hostname', False)
    if custom.get('ssh_authorized_keys'):
        keys = list(user.get('ssh_authorized_keys') or [])
        user['ssh_authorized_keys'] = keys + [k for k in custom['ssh_authorized_keys'] if k not in keys]
    return seed_files(meta['instance-id'], user_data=user, meta_data=meta,
                      network_config=network_config(custom, macs), param='customization.')

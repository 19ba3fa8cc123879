# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt storage pool and volume XML <-> normalized specs, with lxml only.

``render_pool`` patches the existing definition when there is one, so that
what the spec does not manage (UUID, target permissions, ...) survives an
update untouched.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils import _storage_spec
from ansible_collections.virtfleet.virt.plugins.module_utils._xml import etree, from_string, to_string

_UNIT_BYTES = {'b': 1, 'bytes': 1, 'k': 1024, 'kib': 1024, 'kb': 1000, 'm': 1024 ** 2, 'mib': 1024 ** 2,
               'mb': 1000 ** 2, 'g': 1024 ** 3, 'gib': 1024 ** 3, 'gb': 1000 ** 3, 't': 1024 ** 4,
               'tib': 1024 ** 4, 'tb': 1000 ** 4, 'p': 1024 ** 5, 'pib': 1024 ** 5, 'pb': 1000 ** 5}


def _bytes(elem):
    if elem is None or not (elem.text or '').strip():
        return None
    return int(elem.text.strip()) * _UNIT_BYTES.get((elem.get('unit') or 'bytes').lower(), 1)


def _root(xml):
    return from_string(xml) if not isinstance(xml, etree._Element) else xml


# -- pools ------------------------------------------------------------------------

def parse_pool(xml):
    """Return ``(name, uuid, spec, sizes)`` of a pool definition; ``spec`` lacks ``autostart``."""
    root = _root(xml)
    kind = root.get('type')
    rule = _storage_spec.POOL_TYPES.get(kind, {'source': ()})
    source = {}
    src = root.find('source')
    if src is not None:
        devices = [d.get('path') for d in src.findall('device') if d.get('path')]
        if kind == 'iscsi':
            if devices:
                source['iqn'] = devices[0]
        elif devices:
            source['devices'] = devices
        hosts = [_storage_spec.join_host(h.get('name'), int(h.get('port')) if h.get('port') else None)
                 for h in src.findall('host') if h.get('name')]
        if hosts:
            source['hosts'] = hosts
        if src.find('dir') is not None and src.find('dir').get('path'):
            source['dir'] = src.find('dir').get('path')
        if (src.findtext('name') or '').strip():
            source['name'] = src.findtext('name').strip()
        if src.find('format') is not None and src.find('format').get('type'):
            source['format'] = src.find('format').get('type')
        iqn = src.find('initiator/iqn')
        if iqn is not None and iqn.get('name'):
            source['initiator'] = iqn.get('name')
        auth = src.find('auth')
        if auth is not None:
            item = {'type': auth.get('type'), 'username': auth.get('username')}
            secret = auth.find('secret')
            if secret is not None:
                if secret.get('uuid'):
                    item['secret_uuid'] = secret.get('uuid')
                if secret.get('usage'):
                    item['secret_usage'] = secret.get('usage')
            source['auth'] = dict((k, v) for k, v in item.items() if v is not None)
    # keep only what the pool type takes: libvirt adds nothing the spec would compare then
    source = dict((k, v) for k, v in source.items() if k in rule['source'])
    path = root.findtext('target/path')
    spec = {'type': kind, 'path': path.strip() if path and path.strip() else None, 'source': source}
    sizes = dict((key, _bytes(root.find(key))) for key in ('capacity', 'allocation', 'available'))
    return root.findtext('name'), root.findtext('uuid'), spec, sizes


def render_pool(name, spec, base_xml=None):
    """The pool definition for ``spec``; patches ``base_xml`` (keeps its UUID, permissions, ...)."""
    if base_xml is not None:
        root = _root(base_xml)
        for tag in ('capacity', 'allocation', 'available'):
            for old in root.findall(tag):
                root.remove(old)
    else:
        root = etree.Element('pool')
        etree.SubElement(root, 'name').text = name
    root.set('type', spec['type'])
    old_source = root.find('source')
    source = etree.Element('source')
    if old_source is not None:
        old_source.addprevious(source)
        root.remove(old_source)
    else:
        name_elem = root.find('uuid') if root.find('uuid') is not None else root.find('name')
        name_elem.addnext(source)
    src = spec.get('source') or {}
    for host in src.get('hosts') or []:
        host_name, port = _storage_spec.split_host(host)
        elem = etree.SubElement(source, 'host', name=host_name)
        if port is not None:
            elem.set('port', str(port))
    for device in src.get('devices') or []:
        etree.SubElement(source, 'device', path=device)
    if src.get('iqn'):
        etree.SubElement(source, 'device', path=src['iqn'])
    if src.get('dir'):
        etree.SubElement(source, 'dir', path=src['dir'])
    if src.get('name'):
        etree.SubElement(source, 'name').text = src['name']
    if src.get('format'):
        etree.SubElement(source, 'format', type=src['format'])
    if src.get('initiator'):
        etree.SubElement(etree.SubElement(source, 'initiator'), 'iqn', name=src['initiator'])
    auth = src.get('auth')
    if auth:
        elem = etree.SubElement(source, 'auth', type=auth.get('type') or 'chap', username=auth['username'])
        secret = etree.SubElement(elem, 'secret')
        if auth.get('secret_uuid'):
            secret.set('uuid', auth['secret_uuid'])
        else:
            secret.set('usage', auth['secret_usage'])
    target = root.find('target')
    if spec.get('path'):
        if target is None:
            target = etree.SubElement(root, 'target')
        path = target.find('path')
        if path is None:
            path = etree.Element('path')
            target.insert(0, path)
        path.text = spec['path']
    elif target is not None:
        root.remove(target)
    return to_string(root)


# -- volumes ----------------------------------------------------------------------

def parse_volume(xml):
    """The facts of a volume definition as a flat dict (sizes in bytes)."""
    root = _root(xml)
    fmt = root.find('target/format')
    backing = root.find('backingStore')
    backing_path = backing.findtext('path') if backing is not None else None
    backing_format = backing.find('format') if backing is not None else None
    return {
        'name': root.findtext('name'),
        'key': root.findtext('key'),
        'type': root.get('type'),
        'path': root.findtext('target/path'),
        'format': fmt.get('type') if fmt is not None else None,
        'capacity': _bytes(root.find('capacity')),
        'allocation': _bytes(root.find('allocation')),
        'backing_path': backing_path.strip() if backing_path and backing_path.strip() else None,
        'backing_format': backing_format.get('type') if backing_format is not None else None,
    }


def render_volume(name, fmt, capacity, backing_path=None, backing_format=None, sparse=False):
    """A volume to create; ``sparse`` allocates nothing up front (file pools: a sparse file)."""
    root = etree.Element('volume')
    etree.SubElement(root, 'name').text = name
    etree.SubElement(root, 'capacity', unit='bytes').text = str(int(capacity))
    if sparse:
        etree.SubElement(root, 'allocation', unit='bytes').text = '0'
    target = etree.SubElement(root, 'target')
    etree.SubElement(target, 'format', type=fmt)
    if backing_path:
        backing = etree.SubElement(root, 'backingStore')
        etree.SubElement(backing, 'path').text = backing_path
        if backing_format:
            etree.SubElement(backing, 'format', type=backing_format)
    return to_string(root)

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt domain XML <-> normalized VM spec, with lxml only.

``parse`` reads the fields the spec manages and ignores what libvirt
generates (PCI addresses, aliases, controllers, MACs are kept but only
compared when the user names them).  ``render`` patches an existing
definition in place, so that everything the spec does not manage (addresses,
devices added by hand, libvirt defaults) survives an update untouched.
"""

from __future__ import annotations

import copy
import json
import uuid

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._xml import etree, from_string, to_string

TAGS_NS = 'https://virtfleet.dev/xmlns/virt/vm/1.0'
TAGS_PREFIX = 'virtfleet'
TAGS_ELEMENT = '{%s}tags' % TAGS_NS
# Our other metadata. libvirt keeps one element per namespace in <metadata> (it drops the others silently), so
# each has its own: <vftemplate:template/>, <vfcustom:customization>JSON</vfcustom:customization> (the spec form,
# user_data as its sha256 only) and <vfclone:clone source=".." uuid=".." linked="yes|no"/> (the VM it was cloned from).
_NS = {'template': ('vftemplate', 'https://virtfleet.dev/xmlns/virt/vm/template/1.0'),
       'customization': ('vfcustom', 'https://virtfleet.dev/xmlns/virt/vm/customization/1.0'),
       'clone': ('vfclone', 'https://virtfleet.dev/xmlns/virt/vm/clone/1.0')}
TEMPLATE_ELEMENT = '{%s}template' % _NS['template'][1]
CUSTOMIZATION_ELEMENT = '{%s}customization' % _NS['customization'][1]
CLONE_ELEMENT = '{%s}clone' % _NS['clone'][1]


def _ns_element(kind, **attrs):
    prefix, uri = _NS[kind]
    return etree.Element('{%s}%s' % (uri, kind), nsmap={prefix: uri}, **attrs)


_UNIT_KIB = {'b': 1.0 / 1024, 'bytes': 1.0 / 1024, 'k': 1, 'kib': 1, 'kb': 1000.0 / 1024,
             'm': 1024, 'mib': 1024, 'mb': 1000.0 ** 2 / 1024, 'g': 1024 ** 2, 'gib': 1024 ** 2,
             'gb': 1000.0 ** 3 / 1024, 't': 1024 ** 3, 'tib': 1024 ** 3, 'tb': 1000.0 ** 4 / 1024}
_NIC_SOURCE_ATTR = {'network': 'network', 'bridge': 'bridge', 'direct': 'dev'}
AGENT_CHANNEL = 'org.qemu.guest_agent.0'
_KERNEL_BOOT = ('kernel', 'initrd', 'cmdline')


def _mib(elem):
    if elem is None or not (elem.text or '').strip():
        return None
    factor = _UNIT_KIB.get((elem.get('unit') or 'KiB').lower(), 1)
    return int(int(elem.text.strip()) * factor) // 1024


# -- parse --------------------------------------------------------------------

def _parse_disk(disk):
    item = {'device': disk.get('device', 'disk')}
    source = disk.find('source')
    kind = disk.get('type', 'file')
    if source is not None:
        if kind == 'volume':
            item['pool'] = source.get('pool')
            item['volume'] = source.get('volume')
        else:
            path = source.get('file') or source.get('dev') or source.get('dir')
            if path:
                item['path'] = path
    target = disk.find('target')
    if target is not None:
        item['target'] = target.get('dev')
        item['bus'] = target.get('bus')
    driver = disk.find('driver')
    if driver is not None:
        if driver.get('type'):
            item['format'] = driver.get('type')
        if driver.get('cache'):
            item['cache'] = driver.get('cache')
    item['readonly'] = disk.find('readonly') is not None
    return dict((k, v) for k, v in item.items() if v is not None)


def _parse_interface(nic):
    kind = nic.get('type')
    source = nic.find('source')
    item = {'type': kind, 'source': source.get(_NIC_SOURCE_ATTR[kind]) if source is not None else None}
    if kind == 'direct' and source is not None:
        item['mode'] = source.get('mode', 'vepa')
    model = nic.find('model')
    item['model'] = model.get('type') if model is not None else None
    mac = nic.find('mac')
    item['mac'] = mac.get('address').lower() if mac is not None and mac.get('address') else None
    return dict((k, v) for k, v in item.items() if v is not None)


def _parse_serial(serial):
    item = {'type': serial.get('type', 'pty')}
    source = serial.find('source')
    if source is not None:
        if item['type'] in ('file', 'unix'):
            item['path'] = source.get('path')
        elif item['type'] == 'tcp':
            item['host'] = source.get('host')
            item['port'] = int(source.get('service')) if source.get('service') else None
    return dict((k, v) for k, v in item.items() if v is not None)


def _parse_graphics(graphics):
    if graphics is None:
        return None
    listen = graphics.get('listen')
    if listen is None:
        listen_elem = graphics.find('listen')
        listen = listen_elem.get('address') if listen_elem is not None else None
    port = -1 if graphics.get('autoport') == 'yes' else int(graphics.get('port', '-1'))
    item = {'type': graphics.get('type'), 'listen': listen, 'port': port}
    return dict((k, v) for k, v in item.items() if v is not None)


def _parse_cpu(cpu):
    if cpu is None or cpu.get('mode') is None and cpu.find('model') is None:
        return None
    mode = cpu.get('mode', 'custom')
    item = {'mode': mode}
    model = cpu.find('model')
    if mode == 'custom' and model is not None and model.text:
        item['model'] = model.text.strip()
    return item


def _parse_tags(root):
    tags = {}
    elem = root.find('metadata/' + TAGS_ELEMENT)
    if elem is not None:
        for tag in elem.findall('{%s}tag' % TAGS_NS):
            tags[tag.get('name')] = tag.text or ''
    return tags


def _parse_customization(root):
    elem = root.find('metadata/' + CUSTOMIZATION_ELEMENT)
    if elem is None or not (elem.text or '').strip():
        return None
    try:
        value = json.loads(elem.text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def clone_record(xml):
    """``{'name', 'uuid', 'linked'}`` of the VM a domain was cloned from (its ``<vf:clone>`` metadata), or None."""
    root = from_string(xml) if not isinstance(xml, etree._Element) else xml
    elem = root.find('metadata/' + CLONE_ELEMENT)
    if elem is None:
        return None
    return {'name': elem.get('source'), 'uuid': elem.get('uuid'), 'linked': elem.get('linked') == 'yes'}


def _agent_channels(devices):
    return [c for c in devices.findall('channel')
            if c.find('target') is not None and c.find('target').get('name') == AGENT_CHANNEL]


def agent_channels(root):
    """The guest agent's channel elements of a domain definition."""
    devices = root.find('devices')
    return _agent_channels(devices) if devices is not None else []


def _text(root, path):
    elem = root.find(path)
    return elem.text if elem is not None and elem.text else None


def parse(xml):
    """Return ``(name, uuid, spec)`` of a domain definition."""
    root = from_string(xml) if not isinstance(xml, etree._Element) else xml
    os_elem = root.find('os')
    os_type = os_elem.find('type') if os_elem is not None else None
    loader = os_elem.find('loader') if os_elem is not None else None
    uefi = os_elem is not None and (os_elem.get('firmware') == 'efi' or
                                    (loader is not None and loader.get('type') == 'pflash'))
    vcpu = root.find('vcpu')
    max_vcpus = int(vcpu.text) if vcpu is not None else 1
    boot = [b.get('dev') for b in os_elem.findall('boot')] if os_elem is not None else []
    devices = root.find('devices')
    if devices is None:
        devices = etree.Element('devices')
    max_memory = _mib(root.find('memory'))
    spec = {
        'domain_type': root.get('type'),
        'arch': os_type.get('arch') if os_type is not None else None,
        'machine': os_type.get('machine') if os_type is not None else None,
        'firmware': 'uefi' if uefi else 'bios',
        'kernel': _text(os_elem, 'kernel') if os_elem is not None else None,
        'initrd': _text(os_elem, 'initrd') if os_elem is not None else None,
        'cmdline': _text(os_elem, 'cmdline') if os_elem is not None else None,
        'memory': _mib(root.find('currentMemory')) or max_memory,
        'max_memory': max_memory,
        'vcpus': int(vcpu.get('current', max_vcpus)) if vcpu is not None else 1,
        'max_vcpus': max_vcpus,
        'cpu': _parse_cpu(root.find('cpu')),
        'boot': boot or None,
        'disks': [_parse_disk(d) for d in devices.findall('disk') if d.get('device', 'disk') in ('disk', 'cdrom')],
        'interfaces': [_parse_interface(n) for n in devices.findall('interface') if n.get('type') in _NIC_SOURCE_ATTR],
        'graphics': _parse_graphics(devices.find('graphics')),
        'serial': [_parse_serial(s) for s in devices.findall('serial')],
        'guest_agent': bool(_agent_channels(devices)),
        'cloud_init': None,  # read from the seed volume when a run asks for cloud_init (the driver's align)
        'customization': _parse_customization(root),
        'template': root.find('metadata/' + TEMPLATE_ELEMENT) is not None,
        'title': _text(root, 'title'),
        'description': _text(root, 'description'),
        'tags': _parse_tags(root),
        'xml': None,
    }
    return _text(root, 'name'), _text(root, 'uuid'), spec


# -- render -------------------------------------------------------------------

def _child(parent, tag, index=None):
    elem = parent.find(tag)
    if elem is None:
        elem = etree.Element(tag)
        if index is None:
            parent.append(elem)
        else:
            parent.insert(index, elem)
    return elem


def _set_text(root, tag, value, index):
    elem = root.find(tag)
    if value is None:
        if elem is not None:
            root.remove(elem)
        return
    _child(root, tag, index).text = value


def disk_element(item, elem=None):
    """Build (or patch in place) a <disk> element for a normalized disk item."""
    if elem is None:
        elem = etree.Element('disk')
    elem.set('device', item.get('device', 'disk'))
    for tag in ('source', 'readonly'):
        for old in elem.findall(tag):
            elem.remove(old)
    driver = elem.find('driver')
    if driver is None:
        driver = etree.Element('driver')
        elem.insert(0, driver)
    driver.set('name', 'qemu')
    driver.set('type', item.get('format', 'raw'))
    if item.get('cache'):
        driver.set('cache', item['cache'])
    elif 'cache' in driver.attrib:
        del driver.attrib['cache']
    source = None
    if item.get('volume'):
        elem.set('type', 'volume')
        source = etree.Element('source', pool=item['pool'], volume=item['volume'])
    elif item.get('path'):
        is_block = item['path'].startswith('/dev/')
        elem.set('type', 'block' if is_block else 'file')
        source = etree.Element('source', **{'dev' if is_block else 'file': item['path']})
    else:
        elem.set('type', 'file')
    if source is not None:
        driver.addnext(source)
    target = elem.find('target')
    if target is None:
        target = etree.SubElement(elem, 'target')
    address = elem.find('address')
    if address is not None and target.get('bus') not in (None, item['bus']):
        # the address belongs to the old bus (a usb port, a sata/scsi drive slot): libvirt assigns a new one
        elem.remove(address)
    target.attrib.clear()
    target.set('dev', item['target'])
    target.set('bus', item['bus'])
    if item.get('readonly'):
        target.addnext(etree.Element('readonly'))
    if item.get('bus') not in ('virtio',):
        # a PCI address does not fit a disk moved to another bus
        address = elem.find('address')
        if address is not None and address.get('type') == 'pci':
            elem.remove(address)
    return elem


def interface_element(item, elem=None):
    """Build (or patch in place) an <interface> element for a normalized NIC item."""
    if elem is None:
        elem = etree.Element('interface')
    elem.set('type', item['type'])
    for tag in ('source', 'model'):
        for old in elem.findall(tag):
            elem.remove(old)
    mac = elem.find('mac')
    if item.get('mac'):
        if mac is None:
            mac = etree.Element('mac')
            elem.insert(0, mac)
        mac.set('address', item['mac'])
    source = etree.Element('source', **{_NIC_SOURCE_ATTR[item['type']]: item['source']})
    if item['type'] == 'direct':
        source.set('mode', item.get('mode', 'vepa'))
    if mac is not None:
        mac.addnext(source)
    else:
        elem.insert(0, source)
    source.addnext(etree.Element('model', type=item.get('model', 'virtio')))
    return elem


def _serial_element(item, port):
    elem = etree.Element('serial', type=item['type'])
    if item['type'] in ('file', 'unix'):
        attrs = {'path': item['path']}
        if item['type'] == 'unix':
            attrs['mode'] = 'bind'
        etree.SubElement(elem, 'source', **attrs)
    elif item['type'] == 'tcp':
        etree.SubElement(elem, 'source', mode='bind', host=item.get('host', '127.0.0.1'), service=str(item['port']))
        etree.SubElement(elem, 'protocol', type='raw')
    etree.SubElement(elem, 'target', port=str(port))
    return elem


def _render_disks(devices, disks):
    existing = dict((d.find('target').get('dev'), d) for d in devices.findall('disk')
                    if d.get('device', 'disk') in ('disk', 'cdrom') and d.find('target') is not None)
    wanted = set(d['target'] for d in disks)
    for target, elem in existing.items():
        if target not in wanted:
            devices.remove(elem)
    anchor = None
    for item in disks:
        elem = existing.get(item['target'])
        if elem is not None:
            disk_element(item, elem)
        else:
            elem = disk_element(item)
            if anchor is not None:
                anchor.addnext(elem)
            else:
                devices.insert(0, elem)
        anchor = elem


def _render_interfaces(devices, nics):
    existing = [n for n in devices.findall('interface') if n.get('type') in _NIC_SOURCE_ATTR]
    by_mac = dict((n.find('mac').get('address').lower(), n) for n in existing if n.find('mac') is not None)
    keep = set()
    for item in nics:
        elem = by_mac.get(item.get('mac'))
        if elem is not None:
            interface_element(item, elem)
            keep.add(id(elem))
        else:
            devices.append(interface_element(item))
    for elem in existing:
        if id(elem) not in keep:
            devices.remove(elem)


def _render_graphics(devices, graphics):
    for old in devices.findall('graphics'):
        if graphics is None or old is not devices.find('graphics'):
            devices.remove(old)
    if graphics is None:
        return
    elem = devices.find('graphics')
    if elem is None:
        elem = etree.SubElement(devices, 'graphics')
    for child in list(elem):
        elem.remove(child)
    elem.attrib.clear()
    elem.set('type', graphics['type'])
    if graphics.get('port', -1) == -1:
        elem.set('port', '-1')
        elem.set('autoport', 'yes')
    else:
        elem.set('port', str(graphics['port']))
        elem.set('autoport', 'no')
    elem.set('listen', graphics.get('listen', '127.0.0.1'))
    etree.SubElement(elem, 'listen', type='address', address=graphics.get('listen', '127.0.0.1'))


def _render_serial(devices, serials):
    current = [_parse_serial(s) for s in devices.findall('serial')]
    if current == serials:
        return
    for tag in ('serial', 'console'):
        for old in devices.findall(tag):
            devices.remove(old)
    for port, item in enumerate(serials):
        devices.append(_serial_element(item, port))


def agent_channel_element():
    """The virtio-serial channel of the QEMU guest agent (libvirt picks the socket path)."""
    elem = etree.Element('channel', type='unix')
    etree.SubElement(elem, 'target', type='virtio', name=AGENT_CHANNEL)
    return elem


def _render_guest_agent(devices, wanted):
    channels = _agent_channels(devices)
    if wanted and not channels:
        devices.append(agent_channel_element())
    elif not wanted:
        for old in channels:
            devices.remove(old)


def _render_metadata(root, spec, clone=None):
    """Our metadata elements (tags, template, customization; the clone record of a new clone) in ``<metadata>``,
    replacing ours and leaving any other application's."""
    metadata = root.find('metadata')
    managed = (TAGS_ELEMENT, TEMPLATE_ELEMENT, CUSTOMIZATION_ELEMENT) + ((CLONE_ELEMENT,) if clone else ())
    if metadata is not None:
        for old in [e for e in metadata if e.tag in managed]:
            metadata.remove(old)
    wanted = []
    if spec.get('tags'):
        wanted.append(tags_element(spec['tags']))
    if spec.get('template'):
        wanted.append(_ns_element('template'))
    if spec.get('customization') is not None:
        elem = _ns_element('customization')
        elem.text = json.dumps(spec['customization'], sort_keys=True)
        wanted.append(elem)
    if clone:
        wanted.append(_ns_element('clone', source=clone['name'], uuid=clone['uuid'],
                                  linked='yes' if clone['linked'] else 'no'))
    if wanted:
        if metadata is None:
            metadata = etree.Element('metadata')
            root.insert(_after(root, ('name', 'uuid', 'title', 'description')), metadata)
        for elem in wanted:
            metadata.append(elem)
    elif metadata is not None and len(metadata) == 0:
        root.remove(metadata)


def tags_element(tags, namespaced=True):
    """The ``<vf:tags>`` metadata element; ``namespaced=False`` gives the same element without a namespace,
    as ``virDomainSetMetadata`` takes it (libvirt puts it in the namespace it is given, and refuses an element
    that already has one)."""
    if namespaced:
        elem = etree.Element(TAGS_ELEMENT, nsmap={TAGS_PREFIX: TAGS_NS})
        name = '{%s}tag' % TAGS_NS
    else:
        elem = etree.Element('tags')
        name = 'tag'
    for key in sorted(tags):
        tag = etree.SubElement(elem, name, name=key)
        tag.text = tags[key]
    return elem


def _after(root, tags):
    """Index just after the last of ``tags`` present at the top level."""
    index = 0
    for i, child in enumerate(root):
        if child.tag in tags:
            index = i + 1
    return index


def _render_os(root, spec):
    before_os = ('name', 'uuid', 'title', 'description', 'metadata', 'memory', 'currentMemory', 'vcpu')
    os_elem = _child(root, 'os', _after(root, before_os))
    os_type = _child(os_elem, 'type', 0)
    os_type.text = 'hvm'
    os_type.set('arch', spec['arch'])
    if spec.get('machine'):
        os_type.set('machine', spec['machine'])
    if spec['firmware'] == 'uefi':
        if os_elem.find('loader') is None:
            os_elem.set('firmware', 'efi')
            firmware = _child(os_elem, 'firmware', 1)
            for old in firmware.findall('feature'):
                firmware.remove(old)
            etree.SubElement(firmware, 'feature', enabled='no', name='secure-boot')
    else:
        os_elem.attrib.pop('firmware', None)
        for tag in ('firmware', 'loader', 'nvram'):
            for old in os_elem.findall(tag):
                os_elem.remove(old)
    for key in _KERNEL_BOOT:
        for old in os_elem.findall(key):
            os_elem.remove(old)
    anchor = os_elem.find('nvram') if os_elem.find('nvram') is not None else os_elem.find('loader')
    anchor = anchor if anchor is not None else os_type
    for key in _KERNEL_BOOT:
        if spec.get(key):
            elem = etree.Element(key)
            elem.text = spec[key]
            anchor.addnext(elem)
            anchor = elem
    if spec.get('boot') is not None:
        for old in os_elem.findall('boot'):
            os_elem.remove(old)
        for dev in spec['boot']:
            etree.SubElement(os_elem, 'boot', dev=dev)


def _render_cpu(root, cpu):
    if cpu is None:
        return
    old = root.find('cpu')
    if old is not None and _parse_cpu(old) == cpu:
        return
    elem = etree.Element('cpu', mode=cpu['mode'])
    if cpu['mode'] == 'custom':
        elem.set('match', 'exact')
        model = etree.SubElement(elem, 'model', fallback='allow')
        model.text = cpu['model']
    if old is not None:
        old.addprevious(elem)
        root.remove(old)
    else:
        root.insert(_after(root, ('os', 'features')), elem)


def render(name, spec, base_xml=None, new_uuid=None, clone=None):
    """Return domain XML for ``spec``: ``base_xml`` patched in place, or a new definition (with ``new_uuid`` when
    given, and the ``clone`` record ``{name, uuid, linked}`` of a new clone)."""
    if base_xml is not None:
        root = from_string(base_xml) if not isinstance(base_xml, etree._Element) else copy.deepcopy(base_xml)
    else:
        root = etree.Element('domain')
        etree.SubElement(root, 'name')
        # our own UUID: a definition racing another run's for the same name fails "already exists"
        # (libvirt would silently merge two definitions without one)
        etree.SubElement(root, 'uuid').text = new_uuid or str(uuid.uuid4())
        features = etree.Element('features')
        etree.SubElement(features, 'acpi')
        etree.SubElement(features, 'apic')
    root.set('type', spec['domain_type'])
    root.find('name').text = name
    _set_text(root, 'title', spec.get('title'), _after(root, ('name', 'uuid')))
    _set_text(root, 'description', spec.get('description'), _after(root, ('name', 'uuid', 'title')))
    _render_metadata(root, spec, clone)
    index = _after(root, ('name', 'uuid', 'title', 'description', 'metadata'))
    memory = _child(root, 'memory', index)
    memory.set('unit', 'KiB')
    memory.text = str(spec['max_memory'] * 1024)
    current = _child(root, 'currentMemory', root.index(memory) + 1)
    current.set('unit', 'KiB')
    current.text = str(spec['memory'] * 1024)
    vcpu = _child(root, 'vcpu', root.index(current) + 1)
    vcpu.set('placement', vcpu.get('placement', 'static'))
    vcpu.text = str(spec['max_vcpus'])
    if spec['vcpus'] != spec['max_vcpus']:
        vcpu.set('current', str(spec['vcpus']))
    else:
        vcpu.attrib.pop('current', None)
    _render_os(root, spec)
    if base_xml is None:
        root.find('os').addnext(features)
    _render_cpu(root, spec.get('cpu'))
    devices = _child(root, 'devices')
    _render_disks(devices, spec['disks'])
    _render_interfaces(devices, spec['interfaces'])
    _render_graphics(devices, spec.get('graphics'))
    _render_serial(devices, spec.get('serial') or [])
    _render_guest_agent(devices, spec.get('guest_agent'))
    if spec.get('xml'):
        apply_fragment(root, from_string(spec['xml']))
    return to_string(root)


# -- the raw XML escape hatch ---------------------------------------------------

def _subset(want, have):
    """True when every attribute, text and child of ``want`` is found in ``have``."""
    if want.tag != have.tag:
        return False
    for key, value in want.attrib.items():
        if have.get(key) != value:
            return False
    if (want.text or '').strip() and (want.text or '').strip() != (have.text or '').strip():
        return False
    free = list(have)
    for child in want:
        for candidate in free:
            if _subset(child, candidate):
                free.remove(candidate)
                break
        else:
            return False
    return True


def check_fragment(fragment_xml):
    """Validate the ``xml`` option: a <domain> element whose children are merged."""
    root = from_string(fragment_xml)
    if root.tag != 'domain':
        raise SpecError('xml', 'must be a <domain> element whose children are merged into the '
                               'definition, got <%s>' % root.tag)
    managed = {'name', 'uuid', 'memory', 'currentMemory', 'vcpu', 'os', 'title', 'description', 'metadata'}
    clash = sorted(set(child.tag for child in root) & managed)
    if clash:
        raise SpecError('xml', 'sets %s, which the structured options manage; use those options instead'
                        % ', '.join('<%s>' % c for c in clash))
    return root


def fragment_satisfied(fragment_xml, domain_xml):
    fragment = from_string(fragment_xml)
    root = from_string(domain_xml)
    for child in fragment:
        if child.tag == 'devices':
            devices = root.find('devices')
            if devices is None or not all(any(_subset(dev, have) for have in devices) for dev in child):
                return False
        elif not any(_subset(child, have) for have in root.findall(child.tag)):
            return False
    return True


def apply_fragment(root, fragment):
    for child in fragment:
        if child.tag == 'devices':
            devices = _child(root, 'devices')
            for dev in child:
                if not any(_subset(dev, have) for have in devices):
                    devices.append(copy.deepcopy(dev))
            continue
        for old in root.findall(child.tag):
            root.remove(old)
        root.append(copy.deepcopy(child))

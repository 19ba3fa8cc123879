"""libvirt domain XML <-> spec (module_utils/_drivers/libvirt_domxml.py)."""
from __future__ import annotations

import pytest
from lxml import etree

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec as vs
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_domxml as dx
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def full_spec(**kwargs):
    partial = {'domain_type': 'kvm', 'memory': 256, 'max_memory': 512, 'vcpus': 1, 'max_vcpus': 2,
               'disks': [{'path': '/img/a.qcow2', 'format': 'qcow2', 'cache': 'none'},
                         {'pool': 'default', 'volume': 'b.raw'}, {'device': 'cdrom', 'readonly': True}],
               'interfaces': [{'type': 'network', 'source': 'default', 'mac': '52:54:00:01:02:03'},
                              {'type': 'direct', 'source': 'eth0', 'mode': 'bridge', 'model': 'e1000'}],
               'graphics': {'type': 'vnc', 'listen': '127.0.0.1', 'port': -1},
               'serial': [{'type': 'file', 'path': '/var/log/x.log'}, {'type': 'tcp', 'host': '127.0.0.1', 'port': 4555}],
               'boot': ['hd', 'cdrom'], 'cpu': {'mode': 'host-model'}, 'firmware': 'uefi',
               'title': 'T <&>', 'description': 'multi\nline', 'tags': {'k': '<v & "w">'}}
    partial.update(kwargs)
    spec = vs.merge(partial, None)
    for disk in spec['disks']:
        disk.setdefault('format', 'raw')
    return spec


def test_render_then_parse_round_trips():
    spec = full_spec()
    name, _uuid, parsed = dx.parse(dx.render('vm1', spec))
    assert name == 'vm1'
    spec.pop('autostart')
    parsed.pop('autostart', None)
    assert dict((k, parsed[k]) for k in spec) == spec


def test_render_patches_in_place_keeping_what_it_does_not_manage():
    base = dx.render('vm1', full_spec())
    root = etree.fromstring(base)
    disk = root.find('devices/disk')
    etree.SubElement(disk, 'address', type='pci', domain='0x0000', bus='0x00', slot='0x07', function='0x0')
    etree.SubElement(root.find('devices'), 'rng', model='virtio')
    etree.SubElement(root.find('devices/interface'), 'alias', name='net0')
    spec = full_spec(memory=384)
    spec['interfaces'] = spec['interfaces'][:1]
    out = etree.fromstring(dx.render('vm1', spec, base_xml=etree.tostring(root)))
    assert out.find('devices/disk/address').get('slot') == '0x07', 'PCI address kept'
    assert out.find('devices/rng') is not None, 'device not managed by the spec kept'
    assert out.find('devices/interface/alias').get('name') == 'net0'
    assert len(out.findall('devices/interface')) == 1, 'interface not listed removed'
    assert out.findtext('currentMemory') == str(384 * 1024)


def test_tags_are_namespaced_and_stored_exactly():
    root = etree.fromstring(dx.render('vm1', full_spec()))
    tags = root.find('metadata/{%s}tags' % dx.TAGS_NS)
    assert tags.find('{%s}tag' % dx.TAGS_NS).text == '<v & "w">'


def test_parse_ignores_generated_values_and_units():
    xml = """<domain type='kvm'><name>x</name><uuid>u</uuid>
      <memory unit='GiB'>1</memory><currentMemory unit='MiB'>512</currentMemory>
      <vcpu placement='static' current='2'>4</vcpu>
      <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><loader type='pflash'>/x</loader></os>
      <devices>
        <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/a'/>
          <target dev='vda' bus='virtio'/><alias name='virtio-disk0'/>
          <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></disk>
        <disk type='file' device='floppy'><target dev='fda' bus='fdc'/></disk>
        <interface type='user'><mac address='52:54:00:00:00:09'/></interface>
        <graphics type='spice' autoport='yes'><listen type='address' address='0.0.0.0'/></graphics>
      </devices></domain>"""
    _name, _uuid, spec = dx.parse(xml)
    assert (spec['memory'], spec['max_memory'], spec['vcpus'], spec['max_vcpus']) == (512, 1024, 2, 4)
    assert spec['firmware'] == 'uefi' and spec['machine'] == 'pc-q35-7.2'
    assert spec['disks'] == [{'device': 'disk', 'path': '/a', 'target': 'vda', 'bus': 'virtio', 'format': 'raw',
                              'readonly': False}]
    assert spec['interfaces'] == [], 'unmanaged interface types are left alone'
    assert spec['graphics'] == {'type': 'spice', 'listen': '0.0.0.0', 'port': -1}


def test_fragment_subset_matching():
    domain = dx.render('vm1', full_spec(xml=None))
    fragment = "<domain><devices><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng></devices></domain>"
    assert not dx.fragment_satisfied(fragment, domain)
    root = etree.fromstring(domain)
    dx.apply_fragment(root, etree.fromstring(fragment))
    # libvirt adds attributes and elements of its own: still a match
    root.find('devices/rng').append(etree.Element('alias', name='rng0'))
    root.find('devices/rng').set('extra', 'x')
    assert dx.fragment_satisfied(fragment, etree.tostring(root))


@pytest.mark.parametrize('fragment,fragment_msg', [
    ('<domain><memory>1</memory></domain>', 'structured options'),
    ('<devices/>', 'must be a <domain> element'),
    ('<domain><unclosed></domain>', 'not well-formed'),
])
def test_bad_fragments(fragment, fragment_msg):
    with pytest.raises(SpecError, match=fragment_msg):
        dx.check_fragment(fragment)


def test_entities_are_not_resolved():
    evil = '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain><title>&x;</title></domain>'
    _name, _uuid, spec = dx.parse(evil)
    assert 'root:' not in (spec['title'] or '')


@pytest.mark.parametrize('old_bus, address', [
    ('usb', "<address type='usb' bus='0' port='1'/>"),
    ('sata', "<address type='drive' controller='0' bus='0' target='0' unit='0'/>"),
])
def test_moving_a_disk_to_another_bus_drops_the_old_bus_address(old_bus, address):
    """Found by tests/hardening/fuzz.py: usb -> virtio kept <address type='usb'> and libvirt refused."""
    spec = full_spec(disks=[{'path': '/img/a.raw', 'target': 'vdz', 'bus': old_bus}])
    root = etree.fromstring(dx.render('vm1', spec))
    root.find('devices/disk').append(etree.fromstring(address))
    moved = full_spec(disks=[{'path': '/img/a.raw', 'target': 'vdz', 'bus': 'virtio'}])
    out = etree.fromstring(dx.render('vm1', moved, base_xml=etree.tostring(root)))
    assert out.find('devices/disk/target').get('bus') == 'virtio'
    assert out.find('devices/disk/address') is None
    same = etree.fromstring(dx.render('vm1', spec, base_xml=etree.tostring(root)))
    assert same.find('devices/disk/address') is not None, 'an unchanged bus keeps its address'


def test_a_new_definition_carries_its_own_uuid():
    """A run racing another one to define the same name then fails "already exists" (and converges),
    instead of libvirt merging the two definitions (tests/integration/test_hardening_concurrency.py)."""
    first, second = (etree.fromstring(dx.render('vm1', full_spec())) for index in range(2))
    assert first.findtext('uuid') and first.findtext('uuid') != second.findtext('uuid')
    again = etree.fromstring(dx.render('vm1', full_spec(memory=384), base_xml=etree.tostring(first)))
    assert again.findtext('uuid') == first.findtext('uuid') and len(again.findall('uuid')) == 1


def test_kernel_boot_and_guest_agent_round_trip_and_removal():
    spec = full_spec(kernel='/boot/vmlinuz', initrd='/boot/initrd.img', cmdline='root=LABEL=root console=ttyS0',
                     guest_agent=True, firmware='bios')
    spec.pop('autostart')  # not in the XML (libvirt keeps it apart)
    xml = dx.render('vm', spec)
    root = etree.fromstring(xml)
    assert [c.tag for c in root.find('os')][:4] == ['type', 'kernel', 'initrd', 'cmdline']
    assert root.find("devices/channel[@type='unix']/target").get('name') == 'org.qemu.guest_agent.0'
    assert dict((k, v) for k, v in dx.parse(xml)[2].items() if k != 'autostart') == spec
    # patched in place: removal takes the elements away
    bare = dict(spec, kernel=None, initrd=None, cmdline=None, guest_agent=False)
    root = etree.fromstring(dx.render('vm', bare, base_xml=xml))
    assert root.find('os/kernel') is None and root.find('os/cmdline') is None and root.find('devices/channel') is None
    assert dict((k, v) for k, v in dx.parse(etree.tostring(root).decode())[2].items() if k != 'autostart') == bare


def test_kernel_boot_options_checked():
    assert vs.partial_from_params({'name': 'a', 'kernel': '', 'initrd': '/b', 'cmdline': ''}) == \
        {'kernel': None, 'initrd': '/b', 'cmdline': None}
    with pytest.raises(SpecError) as err:
        vs.partial_from_params({'name': 'a', 'kernel': 'vmlinuz'})
    assert err.value.param == 'kernel'
    with pytest.raises(SpecError) as err:
        vs.check_kernel_boot({'kernel': None, 'initrd': None, 'cmdline': 'console=ttyS0'})
    assert err.value.param == 'cmdline'
    vs.check_kernel_boot({'kernel': '/k', 'initrd': '/i', 'cmdline': 'x'})


def test_template_customization_and_clone_record_round_trip():
    custom = {'hostname': 'web1', 'domain': None, 'dns_servers': [], 'networks': [{'dhcp': True}],
              'ssh_authorized_keys': ['ssh-ed25519 AAAA k'], 'user_data_sha256': 'ab' * 32}
    spec = full_spec(template=True, customization=custom)
    xml = dx.render('vm1', spec, new_uuid='11111111-2222-3333-4444-555555555555',
                    clone={'name': 'tmpl', 'uuid': 'u-1', 'linked': True})
    root = etree.fromstring(xml)
    assert root.findtext('uuid') == '11111111-2222-3333-4444-555555555555'
    # one element per namespace: libvirt keeps only the first element of a namespace in <metadata>
    namespaces = [elem.tag.split('}')[0] for elem in root.find('metadata')]
    assert len(namespaces) == len(set(namespaces)) == 4, namespaces
    parsed = dx.parse(xml)[2]
    assert parsed['template'] is True and parsed['customization'] == custom and parsed['tags'] == spec['tags']
    assert dx.clone_record(xml) == {'name': 'tmpl', 'uuid': 'u-1', 'linked': True}
    # an update re-renders template and customization and keeps the clone record
    again = dx.render('vm1', dict(spec, template=False, customization=None), base_xml=xml)
    parsed = dx.parse(again)[2]
    assert parsed['template'] is False and parsed['customization'] is None
    assert dx.clone_record(again) == {'name': 'tmpl', 'uuid': 'u-1', 'linked': True}
    assert dx.clone_record(dx.render('vm2', full_spec())) is None

"""Driver and module-helper fixes found by tests/hardening (fuzzing and concurrent runs), with fakes."""
from __future__ import annotations

import pytest

from ansible.module_utils import basic

from ansible_collections.virtfleet.virt.plugins.module_utils import _module
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_network import LibvirtNetworkDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_vm import LibvirtVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import NotFound, SpecError

NET_XML = ("<network><name>%s</name><uuid>0b3c3a8e-6a34-4a39-9a2f-7c0f4e1a2b3%d</uuid><bridge name='vbr%d'/>"
           "<ip address='10.9.%d.1' prefix='24'/></network>")
DOM_XML = ("<domain type='kvm'><name>%s</name><uuid>8f1d6e0c-1c70-4c5e-9e1b-2d8e6a3f0c1%d</uuid>"
           "<memory unit='KiB'>32768</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>")


class Obj:
    def __init__(self, name, index):
        self._name = name
        self.index = index

    def name(self):
        return self._name


class VanishingClient:
    """A libvirt client whose second object disappears between the listing and the reads."""

    uri = 'qemu:///system'

    def __init__(self):
        self.objects = [Obj('vft-a', 1), Obj('vft-gone', 2), Obj('vft-c', 3)]

    def _check(self, obj):
        if obj.name() == 'vft-gone':
            raise NotFound('reading %s: no such object' % obj.name())

    def is_local(self):
        return True

    def list_networks(self):
        return list(self.objects)

    def network_xml(self, net, inactive=False):
        self._check(net)
        return NET_XML % (net.name(), net.index, net.index, net.index)

    def network_is_persistent(self, net):
        self._check(net)
        return True

    def network_autostart(self, net):
        self._check(net)
        return False

    def network_is_active(self, net):
        self._check(net)
        return True

    def list_domains(self):
        return list(self.objects)

    def domain_states(self):  # the VM driver's list: every domain with its state and autostart, in one read
        return dict((dom.name(), (dom, 'stopped', False)) for dom in self.objects)

    def domain_xml(self, dom, inactive=False):
        self._check(dom)
        return DOM_XML % (dom.name(), dom.index)

    def domain_autostart(self, dom):
        return False

    def domain_state(self, dom):
        return 'stopped'


def test_lists_skip_objects_removed_while_they_are_read():
    client = VanishingClient()
    assert [n['name'] for n in LibvirtNetworkDriver(client).list()] == ['vft-a', 'vft-c']
    assert [d['name'] for d in LibvirtVMDriver(client).list()] == ['vft-a', 'vft-c']


def test_overlap_check_ignores_a_network_removed_meanwhile():
    driver = LibvirtNetworkDriver(VanishingClient())
    driver._check_overlap('vft-new', 'ipv4', {'address': '10.9.2.1', 'prefix': 24})  # vft-gone's subnet: no clash
    with pytest.raises(SpecError, match='overlaps'):
        driver._check_overlap('vft-new', 'ipv4', {'address': '10.9.3.1', 'prefix': 24})


@pytest.mark.parametrize('params, expected', [
    ({'cpu': 2}, ['cpu must be a dict, got int 2']),
    ({'cpu': {'mode': 'custom'}, 'graphics': True}, ['graphics must be a dict, got bool True']),
    ({'ipv4': {'address': '10.0.0.1', 'dhcp_range': 1.5}}, ['ipv4.dhcp_range must be a dict, got float 1.5']),
    ({'disks': [{'path': '/a'}, 5]}, ['disks[1] must be a dict, got int 5']),
    ({'disks': [{'path': '/a'}, ['/b']]}, ["disks[1] must be a dict, got list ['/b']"]),
    ({'disks': 5}, ['disks must be a dict or a list of dicts, got int 5']),
    ({'cpu': None, 'graphics': 'vnc'}, ["graphics must be a dict, got str 'vnc'"]),
    ({'cpu': 'mode=custom', 'graphics': '{"type": "vnc"}'}, []),  # key=value and JSON: ansible-core parses them
    ({'ipv4': 'dhcp_range=x'}, ["ipv4.dhcp_range must be a dict, got str 'x'"]),
    ({'cpu': 'ü' * 50}, ["cpu must be a dict, got str '%s..." % ('ü' * 36)]),
    ({'cpu': [1]}, ['cpu must be a dict, got a list']),  # ansible-core validates each item as the dict
])
def test_values_that_are_no_dicts_for_options_with_suboptions_are_found(params, expected):
    spec = {'cpu': {'type': 'dict', 'options': {'mode': {'type': 'str'}}},
            'graphics': {'type': 'dict', 'options': {'type': {'type': 'str'}}},
            'ipv4': {'type': 'dict', 'options': {'address': {'type': 'str'},
                                                 'dhcp_range': {'type': 'dict', 'options': {'start': {}}}}},
            'disks': {'type': 'list', 'elements': 'dict', 'options': {'path': {'type': 'path'}}}}
    assert _module.bad_suboptions(spec, params) == expected


def test_checked_spec_drops_the_suboptions_ansible_core_would_crash_on(monkeypatch):
    spec = {'cpu': {'type': 'dict', 'options': {'mode': {'type': 'str'}}},
            'ipv4': {'type': 'dict', 'options': {'dhcp_range': {'type': 'dict', 'options': {'start': {}}}}}}
    monkeypatch.setattr(basic, '_load_params', lambda: {'cpu': 2, 'ipv4': {'dhcp_range': 5}})
    checked = _module.checked_spec(spec)
    assert 'options' not in checked['cpu'] and 'options' not in checked['ipv4']['options']['dhcp_range']
    assert spec['cpu']['options'] and spec['ipv4']['options']['dhcp_range']['options'], 'the original is untouched'
    monkeypatch.setattr(basic, '_load_params', lambda: {'cpu': {'mode': 'x'}})
    assert _module.checked_spec(spec) is spec

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend-neutral VM spec: validation, normalization and merging.

A *partial* spec holds only what the user asked for.  ``merge`` fills every
field the user left out from the VM as it is (or from defaults for a new VM),
so that comparing the merged spec with the actual one tells exactly what the
user wants changed, and nothing that libvirt or vSphere filled in by itself.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import string

from ansible_collections.virtfleet.virt.plugins.module_utils import _cloud_init, _customization, _spec
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._units import size_mib

NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}\Z')
MAC_RE = re.compile(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}\Z')
TARGET_RE = re.compile(r'^(vd|sd|hd|xvd)[a-z]{1,2}\Z')
# a Linux network interface name, as the kernel's dev_valid_name() accepts it
IFNAME_RE = re.compile(r'^(?!\.\.?\Z)[^/:\s]{1,15}\Z')

DISK_BUSES = ('virtio', 'sata', 'scsi', 'ide', 'usb')
DISK_DEVICES = ('disk', 'cdrom')
DISK_FORMATS = ('raw', 'qcow2')
DISK_CACHES = ('default', 'none', 'writethrough', 'writeback', 'directsync', 'unsafe')
NIC_MODELS = ('virtio', 'e1000', 'e1000e', 'rtl8139', 'vmxnet3')
NIC_TYPES = ('network', 'bridge', 'direct')
DIRECT_MODES = ('bridge', 'vepa', 'private', 'passthrough')
BOOT_DEVICES = ('hd', 'cdrom', 'network', 'fd')
SERIAL_TYPES = ('pty', 'file', 'unix', 'tcp')
GRAPHICS_TYPES = ('vnc', 'spice', 'none')
CPU_MODES = ('host-model', 'host-passthrough', 'maximum', 'custom')
FIRMWARES = ('bios', 'uefi')

# Fields of the normalized spec, in the order they are shown.
FIELDS = ('domain_type', 'arch', 'machine', 'firmware', 'kernel', 'initrd', 'cmdline', 'memory', 'max_memory',
          'vcpus', 'max_vcpus', 'cpu', 'boot', 'disks', 'interfaces', 'graphics', 'serial', 'guest_agent',
          'cloud_init', 'customization', 'template', 'title', 'description', 'tags', 'autostart', 'xml')

DEFAULTS = {
    'arch': 'x86_64',
    'firmware': 'bios',
    'memory': 1024,
    'vcpus': 1,
    'cpu': None,
    'machine': None,
    'kernel': None,
    'initrd': None,
    'cmdline': None,
    'boot': None,
    'guest_agent': False,
    'cloud_init': None,
    'customization': None,
    'template': False,
    'disks': [],
    'interfaces': [],
    'graphics': None,
    'serial': [],
    'title': None,
    'description': None,
    'tags': {},
    'autostart': False,
    'xml': None,
}

_BUS_PREFIX = {'virtio': 'vd', 'sata': 'sd', 'scsi': 'sd', 'usb': 'sd', 'ide': 'hd'}


def usable_ipv4(address):
    """Whether ``address`` is an IPv4 address another host can reach the guest at (not loopback, link-local
    or 0.0.0.0)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def validate_name(name, param='name'):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError(param, '%r is not a valid name: use 1 to 64 characters, letters, digits and '
                               '"_.+-", starting with a letter or digit' % (name,))
    return name


def xml_text(value, param, single_line=False):
    """Check that ``value`` can be stored in XML exactly as given."""
    if value is None:
        return None
    value = str(value)
    for char in value:
        code = ord(char)
        if (code < 0x20 and char not in '\t\n\r') or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
            raise SpecError(param, 'contains the control character U+%04X, which cannot be stored; remove it' % code)
    if single_line and ('\n' in value or '\r' in value):
        raise SpecError(param, 'must be a single line (libvirt refuses newlines here)')
    if len(value) > 4096:
        raise SpecError(param, 'is %d characters long; the limit is 4096' % len(value))
    return value


def _clean(item):
    return dict((k, v) for k, v in item.items() if v is not None)


def _xml_safe(value, param):
    """Refuse, naming ``param``, any string in ``value`` that XML cannot hold (NUL, control characters)."""
    if isinstance(value, str):
        for char in value:
            code = ord(char)
            if (code < 0x20 and char not in '\t\n\r') or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
                raise SpecError(param, 'contains the control character U+%04X, which cannot be stored; remove it'
                                % code)
    elif isinstance(value, dict):
        for key, item in value.items():
            _xml_safe(key, param)
            _xml_safe(item, '%s.%s' % (param, key) if param else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _xml_safe(item, '%s[%d]' % (param, index))


# -- user input -> partial spec ------------------------------------------------

def _disk_from_params(raw, index):
    param = 'disks[%d]' % index
    item = dict((k, v) for k, v in raw.items() if v is not None)
    device = item.get('device', 'disk')
    has_path = 'path' in item
    has_vol = 'pool' in item or 'volume' in item
    if 'size' in item:
        # A size makes a disk without a source a new disk that the backend creates
        # (in ``pool`` when given), and grows an existing one; it never shrinks one.
        if device == 'cdrom':
            raise SpecError(param + '.size', 'a cdrom has no size; remove it')
        item['size'] = size_mib(item['size'], param + '.size')
    if has_path and has_vol:
        raise SpecError(param, 'give either path or pool and volume, not both')
    if 'volume' in item and 'pool' not in item:
        raise SpecError(param, 'pool and volume go together: name both')
    if 'pool' in item and 'volume' not in item and 'size' not in item:
        raise SpecError(param, 'pool and volume go together: name both (or set size to create a new disk in the pool)')
    if not has_path and not has_vol and device != 'cdrom' and 'size' not in item:
        raise SpecError(param, 'a disk needs a source: set path, or pool and volume, or size for a new disk '
                               '(only a cdrom may be empty)')
    if 'target' in item and not TARGET_RE.match(item['target']):
        raise SpecError(param + '.target', '%r is not a disk target name such as vda, sdb or hdc' % item['target'])
    if has_path and not item['path'].startswith('/'):
        raise SpecError(param + '.path', '%r is not an absolute path' % item['path'])
    if device == 'cdrom':
        item['readonly'] = True
    return _clean(item)


def _nic_from_params(raw, index):
    param = 'interfaces[%d]' % index
    sources = [t for t in NIC_TYPES if raw.get(t)]
    if len(sources) != 1:
        raise SpecError(param, 'set exactly one of network, bridge or direct (got %s)'
                        % (', '.join(sources) or 'none'))
    kind = sources[0]
    if kind in ('bridge', 'direct') and not IFNAME_RE.match(str(raw[kind])):
        raise SpecError('%s.%s' % (param, kind), '%r is not a host interface name: up to 15 characters, no "/", '
                                                 '":" or white space' % (raw[kind],))
    item = {'type': kind, 'source': raw[kind], 'model': raw.get('model'), 'mac': None, 'mode': None}
    if raw.get('mac') is not None:
        mac = str(raw['mac']).lower()
        if not MAC_RE.match(mac):
            raise SpecError(param + '.mac', '%r is not a MAC address such as 52:54:00:12:34:56' % raw['mac'])
        if int(mac[:2], 16) & 1:
            raise SpecError(param + '.mac', '%s is a multicast address; the first octet must be even' % mac)
        item['mac'] = mac
    if kind == 'direct':
        item['mode'] = raw.get('mode') or 'vepa'
    elif raw.get('mode'):
        raise SpecError(param + '.mode', 'mode applies only to direct interfaces')
    return _clean(item)


def _serial_from_params(raw, index):
    param = 'serial[%d]' % index
    item = _clean(dict(raw))
    kind = item.get('type', 'pty')
    item['type'] = kind
    if kind in ('file', 'unix') and not str(item.get('path', '')).startswith('/'):
        raise SpecError(param + '.path', 'a %s serial port needs an absolute path' % kind)
    if kind == 'tcp' and not item.get('port'):
        raise SpecError(param + '.port', 'a tcp serial port needs a port')
    if kind == 'tcp':
        item.setdefault('host', '127.0.0.1')
        item['port'] = int(item['port'])
    return item


def _direct_kernel_boot(params, spec):
    """``kernel``, ``initrd`` and ``cmdline``: an empty string removes one (the VM then boots from its disks)."""
    for key in ('kernel', 'initrd'):
        value = params.get(key)
        if value is None:
            continue
        if value and not value.startswith('/'):
            raise SpecError(key, '%r is not an absolute path (a file on the hypervisor host)' % value)
        spec[key] = value or None
    if params.get('cmdline') is not None:
        spec['cmdline'] = xml_text(params['cmdline'], 'cmdline', single_line=True) or None


def check_kernel_boot(spec):
    """An initrd or a command line without a kernel is refused (the merged spec: the VM's values count too)."""
    if spec.get('kernel'):
        return
    for key in ('initrd', 'cmdline'):
        if spec.get(key):
            raise SpecError(key, 'applies only with kernel (direct kernel boot): set kernel, or remove %s '
                                 '(%s: \'\')' % (key, key))


def _cloud_init_request(name, cloud_init):
    """The ``cloud_init`` option as a partial spec: the seed's content hash and file names, its pool when given,
    and (under ``data``, never shown) the files themselves. The instance-id defaults to the VM's name."""
    files = _cloud_init.seed_files(name, cloud_init.get('user_data'), cloud_init.get('meta_data'),
                                   cloud_init.get('network_config'), param='cloud_init.')
    seed = dict(_cloud_init.seed_spec(files), volume=_cloud_init.vm_seed_volume(name), data=files)
    if cloud_init.get('pool'):
        seed['pool'] = cloud_init['pool']
    return seed


def _clone_request(params):
    """``{'source': name, 'linked': bool}`` from ``clone_from``/``linked_clone``, or None. Not a spec field: the
    driver builds a new VM's spec from the source's, and never re-clones a VM that exists."""
    source = params.get('clone_from')
    if source is None:
        if params.get('linked_clone'):
            raise SpecError('linked_clone', 'applies only with clone_from (the VM or template to clone)')
        return None
    validate_name(source, 'clone_from')
    if source == params['name']:
        raise SpecError('clone_from', 'names the VM itself (%s); name another VM or template to clone' % source)
    return {'source': source, 'linked': bool(params.get('linked_clone'))}


def partial_from_params(params):
    """Validate the module's parameters and return the partial spec they ask for."""
    spec = {}
    if params.get('domain_type') is not None:
        spec['domain_type'] = params['domain_type']
    for key in ('arch', 'machine', 'firmware', 'autostart', 'guest_agent'):
        if params.get(key) is not None:
            spec[key] = params[key]
    _direct_kernel_boot(params, spec)
    for key in ('memory', 'max_memory'):
        if params.get(key) is not None:
            spec[key] = size_mib(params[key], key)
    for key in ('vcpus', 'max_vcpus'):
        if params.get(key) is not None:
            if params[key] < 1:
                raise SpecError(key, 'must be at least 1, got %d' % params[key])
            spec[key] = params[key]
    if 'memory' in spec and 'max_memory' in spec and spec['memory'] > spec['max_memory']:
        raise SpecError('memory', '%d MiB is more than max_memory (%d MiB); raise max_memory or lower memory'
                        % (spec['memory'], spec['max_memory']))
    if 'vcpus' in spec and 'max_vcpus' in spec and spec['vcpus'] > spec['max_vcpus']:
        raise SpecError('vcpus', '%d is more than max_vcpus (%d); raise max_vcpus or lower vcpus'
                        % (spec['vcpus'], spec['max_vcpus']))
    if params.get('cpu') is not None:
        cpu = _clean(params['cpu'])
        if cpu.get('mode') == 'custom' and not cpu.get('model'):
            raise SpecError('cpu.model', 'cpu mode custom needs a model, such as qemu64 or Skylake-Client')
        if cpu.get('model') and cpu.get('mode', 'custom') != 'custom':
            raise SpecError('cpu.model', 'a model applies only with cpu mode custom')
        if cpu.get('model'):
            cpu['mode'] = 'custom'
        spec['cpu'] = cpu or None
    if params.get('boot') is not None:
        if not params['boot']:
            # libvirt gives a VM without a boot order <boot dev='hd'/>: [] could never be reached
            raise SpecError('boot', 'needs at least one device (hd, cdrom, network, fd); leave boot out to keep '
                                    'the VM\'s boot order')
        spec['boot'] = list(params['boot'])
    if params.get('disks') is not None:
        spec['disks'] = [_disk_from_params(d, i) for i, d in enumerate(params['disks'])]
        targets = [d['target'] for d in spec['disks'] if 'target' in d]
        if len(targets) != len(set(targets)):
            raise SpecError('disks', 'two disks have the same target: %s' % ', '.join(sorted(targets)))
    if params.get('interfaces') is not None:
        spec['interfaces'] = [_nic_from_params(n, i) for i, n in enumerate(params['interfaces'])]
        macs = [n['mac'] for n in spec['interfaces'] if 'mac' in n]
        if len(macs) != len(set(macs)):
            raise SpecError('interfaces', 'two interfaces have the same mac')
    if params.get('graphics') is not None:
        graphics = _clean(params['graphics'])
        if graphics.get('type', 'vnc') == 'none':
            spec['graphics'] = None
        else:
            graphics.setdefault('type', 'vnc')
            graphics.setdefault('listen', '127.0.0.1')
            graphics.setdefault('port', -1)
            spec['graphics'] = graphics
    if params.get('serial') is not None:
        spec['serial'] = [_serial_from_params(s, i) for i, s in enumerate(params['serial'])]
    if params.get('title') is not None:
        spec['title'] = xml_text(params['title'], 'title', single_line=True) or None
    if params.get('description') is not None:
        spec['description'] = xml_text(params['description'], 'description') or None
    if params.get('tags') is not None:
        tags = {}
        for key, value in params['tags'].items():
            key = xml_text(key, 'tags', single_line=True)
            if not key:
                raise SpecError('tags', 'tag names must not be empty')
            tags[key] = xml_text('' if value is None else value, 'tags.%s' % key)
        spec['tags'] = tags
    if params.get('cloud_init') is not None:
        spec['cloud_init'] = _cloud_init_request(params['name'], params['cloud_init'])
    if params.get('customization') is not None:
        spec['customization'] = _customization.normalize(params['customization'])
    if params.get('template') is not None:
        spec['template'] = params['template']
    clone = _clone_request(params)
    if clone:
        spec['clone'] = clone
    _xml_safe(dict((k, v) for k, v in spec.items() if k != 'xml'), '')
    if params.get('xml') is not None:
        spec['xml'] = params['xml']
    return spec


# -- merging with the actual VM -------------------------------------------------

_SOURCE_KEYS = ('path', 'pool', 'volume')


def _disk_key(disk):
    if disk.get('path'):
        return ('path', disk['path'])
    if disk.get('volume'):
        return ('volume', disk.get('pool'), disk['volume'])
    return ('empty', disk.get('device', 'disk'))


def _match_items(desired, actual, want_keys, have_keys):
    """Pair each desired item with an actual one; return a list of (desired, actual_or_None).

    ``want_keys(item)`` lists the keys a desired item is matched by, best first;
    ``have_keys(item)`` all the keys an actual item can be found by.
    """
    free = list(actual)
    pairs = []
    for want in desired:
        found = None
        for key in want_keys(want):
            for have in free:
                if key in have_keys(have):
                    found = have
                    break
            if found is not None:
                break
        if found is not None:
            free.remove(found)
        pairs.append((want, found))
    return pairs


def _disk_keys(disk):
    keys = []
    if disk.get('target'):
        keys.append(('target', disk['target']))
    if not disk.get('target') or disk.get('path') or disk.get('volume'):
        keys.append(_disk_key(disk))
    return keys


def _nic_want_keys(nic):
    """A NIC with a MAC is that NIC; one without is the first of its source."""
    if nic.get('mac'):
        return [('mac', nic['mac'])]
    return [(nic['type'], nic['source'])]


def _nic_have_keys(nic):
    return [('mac', nic.get('mac')), (nic['type'], nic['source'])]


def _is_new_disk(disk):
    """A disk given only by its size (and maybe its pool): the backend creates it."""
    return 'size' in disk and not disk.get('path') and not disk.get('volume')


def _pair_new_disks(pairs, actual):
    """Pair each unmatched new (size-only) disk with the next unmatched actual disk, in order.

    So ``disks: [{size: 10GiB}]`` names the disk it created on the next run too.
    """
    used = [id(have) for _want, have in pairs if have is not None]
    free = [d for d in actual if id(d) not in used and d.get('device', 'disk') == 'disk']
    paired = []
    for want, have in pairs:
        if have is None and _is_new_disk(want) and not want.get('target'):
            have = next((d for d in free if want.get('pool') in (None, d.get('pool'))), None)
            if have is not None:
                free.remove(have)
        paired.append((want, have))
    return paired


def _merge_disks(desired, actual, defaults=None):
    defaults = defaults or DEVICE_DEFAULTS
    merged = []
    pairs = _pair_new_disks(_match_items(desired, actual, _disk_keys, _disk_keys), actual)
    for want, have in pairs:
        item = dict(have or {})
        if have and not _is_new_disk(want) and any(k in want for k in _SOURCE_KEYS):
            for key in _SOURCE_KEYS:
                item.pop(key, None)
        if have and 'bus' in want and 'target' not in want and \
                not item.get('target', '').startswith(_BUS_PREFIX[want['bus']]):
            item.pop('target', None)
        item.update(want)
        item.setdefault('device', 'disk')
        item.setdefault('bus', defaults['cdrom_bus'] if item['device'] == 'cdrom' else defaults['disk_bus'])
        item.setdefault('readonly', item['device'] == 'cdrom')
        merged.append(item)
    assign_targets(merged)
    # libvirt keeps a bus's disks in the order of their targets: the same disks in another order are no change
    if len(merged) == len(actual) and sorted(map(_canonical, merged)) == sorted(map(_canonical, actual)):
        return [dict(item) for item in actual]
    return merged


def assign_targets(disks):
    used = set(d['target'] for d in disks if d.get('target'))
    for disk in disks:
        if disk.get('target'):
            continue
        prefix = _BUS_PREFIX[disk['bus']]
        for letter in string.ascii_lowercase:
            if prefix + letter not in used:
                disk['target'] = prefix + letter
                used.add(disk['target'])
                break
        else:
            raise SpecError('disks', 'too many %s disks' % disk['bus'])


def _merge_interfaces(desired, actual, defaults=None):
    defaults = defaults or DEVICE_DEFAULTS
    merged = []
    for want, have in _match_items(desired, actual, _nic_want_keys, _nic_have_keys):
        item = dict(have or {})
        if have and have.get('type') != want['type']:
            item.pop('mode', None)
        item.update(want)
        item.setdefault('model', defaults['nic_model'])
        merged.append(item)
    # The same NICs in another order are no change: each keeps its MAC and its PCI address, so the guest
    # sees them as before whatever the order of the list (a reorder would otherwise be 'changed' forever).
    if len(merged) == len(actual) and sorted(map(_canonical, merged)) == sorted(map(_canonical, actual)):
        return [dict(item) for item in actual]
    return merged


def _canonical(item):
    return json.dumps(item, sort_keys=True)


# Device defaults where the user names none; a backend passes its own to ``merge``.
DEVICE_DEFAULTS = {'disk_bus': 'virtio', 'cdrom_bus': 'sata', 'nic_model': 'virtio'}


def merge(partial, actual_spec, device_defaults=None):
    """Return the full desired spec: ``partial`` on top of the actual spec (or defaults).

    ``device_defaults`` overrides ``DEVICE_DEFAULTS`` (the bus of a new disk or cdrom,
    the model of a new interface) for backends whose devices differ.
    """
    defaults = dict(DEVICE_DEFAULTS, **(device_defaults or {}))
    spec = _spec.overlay(partial, actual_spec, DEFAULTS, FIELDS, {
        'disks': lambda value, actual: _merge_disks(value, actual or [], defaults),
        'interfaces': lambda value, actual: _merge_interfaces(value, actual or [], defaults),
        'cpu': _merge_cpu})
    if actual_spec is None:
        spec['disks'] = _merge_disks(spec.get('disks') or [], [], defaults)
        spec['interfaces'] = _merge_interfaces(spec.get('interfaces') or [], [], defaults)
        spec['max_memory'] = spec.get('max_memory') or spec['memory']
        spec['max_vcpus'] = spec.get('max_vcpus') or spec['vcpus']
    # Raising the current value past the maximum raises the maximum too,
    # unless the user set both (partial_from_params refused that).
    if spec['memory'] > spec['max_memory']:
        if 'max_memory' in partial:
            raise SpecError('max_memory', '%d MiB is below the VM\'s memory (%d MiB); lower memory too'
                            % (spec['max_memory'], spec['memory']))
        spec['max_memory'] = spec['memory']
    if spec['vcpus'] > spec['max_vcpus']:
        if 'max_vcpus' in partial:
            raise SpecError('max_vcpus', '%d is below the VM\'s vcpus (%d); lower vcpus too'
                            % (spec['max_vcpus'], spec['vcpus']))
        spec['max_vcpus'] = spec['vcpus']
    return spec


def _merge_cpu(value, actual):
    """A CPU mode other than custom keeps the actual settings it does not name, and has no model."""
    if not (value and actual):
        return copy.deepcopy(value)
    cpu = dict(actual, **value) if value.get('mode') != 'custom' else copy.deepcopy(value)
    if cpu.get('mode') != 'custom':
        cpu.pop('model', None)
    return cpu


def changed_fields(before, after):
    """The spec fields whose values differ."""
    return _spec.changed_fields(FIELDS, before, after)


# -- power model (the same for every backend) ---------------------------------

POWER_STATES = ('running', 'paused', 'stopped')


def power_steps(current, target):
    """The steps from power state ``current`` to ``target``, as ``(action, until, graceful)``."""
    if current == target:
        return []
    if current == 'shutting_down':
        return [('wait', 'stopped', True)] + power_steps('stopped', target)
    if current == 'crashed':
        return [('destroy', 'stopped', False)] + power_steps('stopped', target)
    if current == 'pmsuspended':
        return [('wakeup', 'running', False)] + power_steps('running', target)
    table = {
        ('stopped', 'running'): [('start', 'running', False)],
        ('stopped', 'paused'): [('start_paused', 'paused', False)],
        ('running', 'paused'): [('suspend', 'paused', False)],
        ('running', 'stopped'): [('shutdown', 'stopped', True)],
        ('paused', 'running'): [('resume', 'running', False)],
        ('paused', 'stopped'): [('resume', 'running', False), ('shutdown', 'stopped', True)],
    }
    return list(table[(current, target)])

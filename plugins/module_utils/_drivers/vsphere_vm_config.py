# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The configuration of a vSphere VM besides its devices: memory, vCPUs, firmware, hot-add, guest OS,
the description (the annotation) and the tags (extraConfig ``virtfleet.tags.<name>``, JSON values).

A change a running VM cannot take (memory or vCPUs without hot-add or shrinking, firmware,
hot-add settings, guest OS) waits in extraConfig ``virtfleet.pending`` until the VM is stopped.
"""

from __future__ import annotations

import json

try:
    from urllib.parse import quote, unquote
except ImportError:  # pragma: no cover - Python 2 is not supported by this collection
    quote = unquote = None

from ansible_collections.virtfleet.virt.plugins.module_utils import _vm_spec

TAG_PREFIX = 'virtfleet.tags.'
PENDING_KEY = 'virtfleet.pending'
DEFAULT_GUEST_ID = 'otherGuest64'
# the vSphere-only VM settings of the module (hot-add, guest OS)
OPTIONS = ('memory_hot_add', 'cpu_hot_add', 'guest_id')
_CONFIG_NAMES = {'memory': 'memory_mb', 'vcpus': 'vcpus', 'memory_hot_add': 'memory_hot_add',
                 'cpu_hot_add': 'cpu_hot_add', 'guest_id': 'guest_id'}


def tag_key(name):
    return TAG_PREFIX + quote(name, safe='')


def read(row):
    """``(extra, tags, hardware, pending)`` of a VM: its extraConfig, tags, hardware as it is and the
    changes pending a restart (those still different from the hardware)."""
    extra = {}
    for key, value in row.get('config.extraConfig') or []:
        extra[key] = value  # the last value wins; an empty value is a removed entry
    tags = {}
    for key, value in extra.items():
        if key.startswith(TAG_PREFIX) and value not in (None, ''):
            try:
                tags[unquote(key[len(TAG_PREFIX):])] = json.loads(value)
            except ValueError:
                tags[unquote(key[len(TAG_PREFIX):])] = value
    try:
        pending = json.loads(extra.get(PENDING_KEY) or '{}')
    except ValueError:
        pending = {}
    firmware = 'uefi' if row.get('config.firmware') == 'efi' else 'bios'
    hardware = {'memory': row.get('config.hardware.memoryMB'), 'vcpus': row.get('config.hardware.numCPU'),
                'firmware': firmware, 'memory_hot_add': bool(row.get('config.memoryHotAddEnabled')),
                'cpu_hot_add': bool(row.get('config.cpuHotAddEnabled')),
                'guest_id': row.get('config.guestId')}
    pending = dict((k, v) for k, v in pending.items() if k in hardware and hardware[k] != v)
    return extra, tags, hardware, pending


def option_values(placement):
    """The vSphere-only VM settings the user asked for (hot-add, guest OS)."""
    return dict((k, placement[k]) for k in OPTIONS if k in placement)


def new(name, spec, options, datastore):
    """The configuration of a new VM (its devices aside)."""
    return {'name': name, 'guest_id': options.get('guest_id', DEFAULT_GUEST_ID),
            'datastore': datastore, 'memory_mb': spec['memory'], 'vcpus': spec['vcpus'],
            'firmware': 'efi' if spec['firmware'] == 'uefi' else 'bios',
            'annotation': spec.get('description') or '',
            'memory_hot_add': options.get('memory_hot_add', False),
            'cpu_hot_add': options.get('cpu_hot_add', False),
            'extra_config': sorted((tag_key(k), json.dumps(v)) for k, v in (spec.get('tags') or {}).items())}


def plan(actual, spec, options, running):
    """``(changes, live, cold)``: the changed fields, and the hardware settings the VM takes now (``live``)
    or at its next stop (``cold``, pending a restart)."""
    changes = _vm_spec.changed_fields(actual['spec'], spec)
    hardware = actual['hardware']
    current = dict(hardware, **actual['pending'])
    changes.extend(k for k in sorted(options) if current.get(k) != options[k])
    wanted = dict(current, firmware=spec['firmware'], memory=spec['memory'], vcpus=spec['vcpus'], **options)
    live, cold = {}, {}
    for key, value in wanted.items():
        if value == hardware.get(key):
            continue
        hot = not running or \
            (key == 'memory' and value > hardware['memory'] and hardware['memory_hot_add']) or \
            (key == 'vcpus' and value > hardware['vcpus'] and hardware['cpu_hot_add'])
        (live if hot else cold)[key] = value
    if not changes and (live or cold != actual['pending']):
        # nothing new asked, but a pending change can be applied now (the VM is stopped)
        changes = sorted(set(live) | set(cold) | set(actual['pending']))
    return changes, live, cold


def update(actual, spec, live, cold):
    """The reconfiguration of the hardware, description, tags and pending changes (the devices aside)."""
    config = {}
    for key, value in live.items():
        if key == 'firmware':
            config['firmware'] = 'efi' if value == 'uefi' else 'bios'
        else:
            config[_CONFIG_NAMES[key]] = value
    extra = []
    if spec.get('description') != actual['spec'].get('description'):
        config['annotation'] = spec.get('description') or ''
    old_tags, new_tags = actual['spec'].get('tags') or {}, spec.get('tags') or {}
    for key in sorted(set(old_tags) | set(new_tags)):
        if key not in new_tags:
            extra.append((tag_key(key), ''))
        elif old_tags.get(key) != new_tags[key]:
            extra.append((tag_key(key), json.dumps(new_tags[key])))
    if cold != actual['pending']:
        extra.append((PENDING_KEY, json.dumps(cold, sort_keys=True) if cold else ''))
    config['extra_config'] = extra
    return config

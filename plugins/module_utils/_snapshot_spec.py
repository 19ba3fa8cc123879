# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backend-neutral logic of VM snapshots: the request of ``vm_snapshot`` validated, the snapshot tree in order,
and what a request does to the tree (the prediction check mode and ``--diff`` show).

A VM's snapshots are a list of entries (dicts) with at least ``name``, ``parent`` (a name or None) and
``current`` (bool), parents before their children.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._vm_spec import validate_name, xml_text

STATES = ('present', 'absent', 'reverted')
VM_STATES = ('running', 'paused', 'stopped')
LOCATIONS = ('internal', 'external')
NAME_MAX = 255


def snapshot_name(value, param='name'):
    """A snapshot name: 1 to 255 characters on one line, no control characters (XML metacharacters are fine:
    they are escaped, never interpreted), no leading or trailing blanks."""
    if not isinstance(value, str) or not value:
        raise SpecError(param, 'must be a non-empty string')
    xml_text(value, param, single_line=True)
    if value != value.strip():
        raise SpecError(param, '%r starts or ends with blanks, which backends strip or refuse; remove them' % value)
    if len(value) > NAME_MAX:
        raise SpecError(param, 'is %d characters long; the limit is %d' % (len(value), NAME_MAX))
    return value


def request_from_params(params):
    """The validated request of a ``vm_snapshot`` task (nothing read yet)."""
    state = params['state']
    request = {'vm': validate_name(params['vm'], 'vm'), 'name': snapshot_name(params['name']), 'state': state,
               'memory': bool(params.get('memory')), 'quiesce': bool(params.get('quiesce')),
               'description': xml_text(params.get('description'), 'description'),
               'children': bool(params.get('children')), 'vm_state': params.get('vm_state'),
               'location': params.get('location') or 'internal'}
    unused = {'present': ('children', 'vm_state'), 'absent': ('memory', 'quiesce', 'description', 'vm_state'),
              'reverted': ('memory', 'quiesce', 'description', 'children')}[state]
    for key in unused:
        if request[key] not in (None, False) and not (key == 'location' and request[key] == 'internal'):
            raise SpecError(key, 'has no effect with state: %s; remove it' % state)
    if state != 'present' and request['location'] != 'internal':
        raise SpecError('location', 'is how a new snapshot is taken (state: present); remove it')
    return request


def find(entries, name):
    for entry in entries:
        if entry['name'] == name:
            return entry
    return None


def current(entries):
    found = [entry['name'] for entry in entries if entry.get('current')]
    return found[0] if found else None


def tree_order(entries):
    """``entries`` with parents before their children; roots and siblings by creation time, then name."""
    names = set(entry['name'] for entry in entries)
    children = {}
    for entry in entries:
        parent = entry.get('parent') if entry.get('parent') in names else None
        children.setdefault(parent, []).append(entry)
    ordered = []

    def walk(parent):
        for entry in sorted(children.get(parent, []), key=lambda e: (e.get('created') or '', e['name'])):
            ordered.append(entry)
            walk(entry['name'])
    walk(None)
    return ordered


def subtree(entries, name):
    """``name`` and every snapshot below it, deepest first (the order to delete them one by one)."""
    below = [name]
    for entry in tree_order(entries):
        if entry.get('parent') in below and entry['name'] not in below:
            below.append(entry['name'])
    return list(reversed(below))


def after_create(entries, entry):
    """The tree once ``entry`` is taken: a child of the current snapshot, and current itself."""
    new = dict(entry, parent=current(entries), current=True)
    return tree_order([dict(e, current=False) for e in entries] + [new])


def after_delete(entries, name, children):
    """The tree once snapshot ``name`` is deleted (with its subtree when ``children``; else its children move up
    to its parent). When the current snapshot goes, its parent (of the deleted subtree) becomes current, as
    libvirt and vSphere do."""
    gone = set(subtree(entries, name)) if children else {name}
    removed = find(entries, name)
    parent = removed.get('parent')
    current_gone = current(entries) in gone
    kept = []
    for entry in entries:
        if entry['name'] in gone:
            continue
        entry = dict(entry)
        if entry.get('parent') == name:
            entry['parent'] = parent
        if current_gone:
            entry['current'] = entry['name'] == parent
        kept.append(entry)
    return tree_order(kept)


def after_revert(entries, name):
    return [dict(entry, current=entry['name'] == name) for entry in entries]


def revert_state(entry, vm_state):
    """The power state a revert to ``entry`` leaves the VM in: ``vm_state``, else the state the snapshot
    recorded (a snapshot without memory has no running guest to go back to: stopped)."""
    if vm_state:
        return vm_state
    if not entry.get('memory'):
        return 'stopped'
    return entry.get('vm_state') if entry.get('vm_state') in VM_STATES else 'running'

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the snapshot drivers of every backend share: a VM seen through its snapshot tree (the resource
``_reconcile.ensure`` converges), the tree a ``vm_snapshot`` request wants, and the plan that gets there.

A backend driver reads the VM (``read``: ``name``, ``state``, ``snapshots`` in tree order, ``at_snapshot``),
says what it refuses (``check_create``, ``check_revert``, ``check_tree``), how an existing snapshot differs from
the request (``differences``) and when a revert leaves the VM provably still at the snapshot
(``provably_at``), and writes (``apply_update``).
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils import _snapshot_spec as snapspec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers._base import Driver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Plan

PUBLIC = ('name', 'parent', 'description', 'created', 'vm_state', 'memory', 'location', 'current', 'size')
SNAPSHOT_STATES = ('running', 'paused', 'stopped')


def public(entry):
    """A snapshot as the modules return it."""
    return dict((key, entry.get(key)) for key in PUBLIC) if entry else {}


class SnapshotTreeDriver(Driver):
    kind = 'VM'
    result_fields = {'snapshot': {}}
    where = 'on this host'  # where a missing VM was looked for, in the refusal

    def __init__(self, client, request=None):
        super().__init__(client)
        self.request = request  # the validated request of a vm_snapshot task (None: reading only)

    # -- what a backend says --------------------------------------------------------------
    def check_tree(self, actual):
        """Refuse a tree the module cannot work on (before anything is written)."""

    def check_create(self, actual):
        """Refuse a snapshot the backend cannot take of ``actual`` (before anything is written)."""
        raise NotImplementedError

    def check_revert(self, actual, entry):
        """Refuse a revert the backend cannot make (``entry`` exists)."""

    def differences(self, entry):
        """The options of the request that ``entry`` (an existing snapshot of that name) was taken without."""
        raise NotImplementedError

    def provably_at(self, actual, entry, target):
        """Whether the VM, reverted to ``entry`` and left ``target``, can be known to be still at it next run."""
        raise NotImplementedError

    # -- the tree ---------------------------------------------------------------------------
    def describe(self, actual):
        entries = actual['snapshots']
        return {'name': actual['name'], 'state': actual['state'],
                'spec': {'snapshots': [public(entry) for entry in entries], 'current': snapspec.current(entries),
                         'at_snapshot': actual['at_snapshot']}}

    def desired(self, partial, actual):
        req = self.request
        if actual is None:
            raise SpecError('vm', 'there is no VM named %s %s; check the name (virtfleet.virt.vm_info lists the VMs)'
                            % (req['vm'], self.where))
        self.check_tree(actual)
        entries, at = actual['snapshots'], actual['at_snapshot']
        entry = snapspec.find(entries, req['name'])
        if req['state'] == 'present':
            if entry is None:
                self.check_create(actual)
                new = {'name': req['name'], 'description': req['description'], 'created': None,
                       'vm_state': actual['state'], 'memory': req['memory'], 'location': req['location'] or 'internal',
                       'size': None}
                entries, at = snapspec.after_create(entries, new), None
            else:
                self._note_differences(entry)
        elif req['state'] == 'absent':
            if entry is not None:
                gone = snapspec.subtree(entries, req['name']) if req['children'] else [req['name']]
                entries = snapspec.after_delete(entries, req['name'], req['children'])
                at = None if at in gone else at
        else:
            if entry is None:
                names = [e['name'] for e in entries]
                raise SpecError('name', 'VM %s has no snapshot %r to revert to (its snapshots: %s)'
                                % (actual['name'], req['name'], ', '.join(repr(n) for n in names) or 'none'))
            self.check_revert(actual, entry)
            target = snapspec.revert_state(entry, req['vm_state'])
            entries = snapspec.after_revert(entries, req['name'])
            at = req['name'] if self.provably_at(actual, entry, target) else None
        return {'snapshots': [public(e) for e in entries], 'current': snapspec.current(entries), 'at_snapshot': at}

    def _note_differences(self, entry):
        differs = self.differences(entry)
        if self.request['description'] is not None and (entry['description'] or '') != self.request['description']:
            differs.append('description')
        if differs:
            self.found.warnings.append(
                'snapshot %r exists (taken %s) with other %s than this task asks for; an existing snapshot is kept '
                'as it is (snapshots are compared by name): delete it first (state: absent) to take it again'
                % (self.request['name'], entry['created'], ', '.join(differs)))

    # -- the plan -----------------------------------------------------------------------------
    def plan_update(self, actual, spec):
        req = self.request
        name = req['name']
        entry = snapspec.find(actual['snapshots'], name)
        if req['state'] == 'present' and entry is None:
            return Plan(['snapshots'], actions=['created snapshot %s' % name],
                        extra={'snapshot': snapspec.find(spec['snapshots'], name)})
        if req['state'] == 'absent' and entry is not None:
            gone = snapspec.subtree(actual['snapshots'], name) if req['children'] else [name]
            below = [n for n in gone if n != name]
            return Plan(['snapshots'], actions=['deleted snapshot %s%s' % (
                name, ' and the snapshots below it: %s' % ', '.join(reversed(below)) if below else '')],
                details={'gone': gone})
        if req['state'] == 'reverted':
            target = snapspec.revert_state(entry, req['vm_state'])
            if not (actual['at_snapshot'] == name and actual['state'] == target):
                return Plan(['at_snapshot'], actions=['reverted to snapshot %s, VM %s' % (name, target)],
                            state=target, extra={'snapshot': dict(public(entry), current=True)})
        return Plan([], extra={'snapshot': public(entry) if req['state'] != 'absent' else {}})

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract between a resource driver and ``_reconcile.ensure``.

A driver manages one kind of resource on one backend. ``_reconcile.ensure`` calls, in order:

``rescan(name)``
    outside check mode only: brings what the backend knows of the resource up to date before it
    is read (a storage pool's scan of its volumes); a write to the backend's view, so never in
    check mode; what it did goes to ``found``. By default there is nothing to rescan
``read(name)``
    the actual resource (an opaque dict the driver alone reads) or ``None``; reads only
``align(partial, actual)``
    the actual resource as seen against the user's request, as a new dict (by default
    ``actual`` itself): a value the request names that the normalized view leaves out but the
    backend holds (an image's default command, a raw XML fragment the domain already has)
    shows in the copy, so it is no change; ``actual`` itself is never changed
``desired(partial, actual)``
    the full desired spec: the user's partial spec merged with the actual one (or the
    defaults of a new resource) and checked against the backend; writes nothing
``describe(actual)``
    the public, normalized view: ``{'state': ..., 'spec': {...}, ...}``
``create(name, spec)``, ``plan_update(actual, spec)``, ``apply_update(actual, plan)``, ``delete(actual, options)``
    the writes; ``plan_update`` returns a ``Plan`` and writes nothing; the others return a
    ``Result`` (or ``None``): warnings, result fields, ``reboot_required`` after an update
``steps(current, target)``, ``perform(name, action)``, ``state(name)``
    state transitions (power for VMs, active/inactive for networks and pools): ``steps``
    returns the ``Step`` list from ``current`` to ``target``, ``perform`` runs one action
    (returning a ``Result`` or ``None``) and ``state`` reads the state now; a graceful step goes through
    ``perform_graceful(name, action, mode)`` with the request's ``shutdown_mode`` (by default ``perform``)
``settle_stopped(name)``
    outside check mode, after a run that changed the resource and leaves it in ``stopped_state``: writes
    what waited for the stop (vSphere: the changes pending a restart), so that the same task run again
    finds nothing to do; a ``Result`` or ``None``. By default nothing waits
``in_use(actual)``
    before a removal, also in check mode: who uses the resource (an ``InUse``, or ``None``: nobody, the
    default); the loop refuses the removal while some users block it, unless ``force``, and reports the
    affected ones under ``in_use_key``. A ``Plan`` that replaces the resource carries its ``InUse`` the same
    way. ``delete`` and ``apply_update`` are called only when the loop allowed it: they act on the users
    (disconnect them, remove them with the resource) and never decide on ``force`` themselves
``check_address(spec)``, ``address(name)``
    VMs, for ``wait_for_address``: ``check_address`` refuses (``SpecError``) a desired spec that can never
    have an address, before anything is written; ``address`` reads the VM now and returns its first usable
    IPv4 address as ``{address, interface, mac, source}``, or ``None`` while it has none
``check_health(spec)``, ``health(name)``, ``run_health_check(name)``
    containers, for ``wait_healthy``: ``check_health`` refuses (``SpecError``) a desired spec without a
    healthcheck, before anything is written; ``health`` reads the health now as ``{status (starting, healthy,
    unhealthy), configured, running, state, exit_code, failing_streak, log: [{exit_code, output, start, end}],
    interval (s)}``; ``run_health_check`` runs one check (the loop does, where the engine runs none by itself)

The class attributes say how the loop treats the resource: ``kind`` names it in messages,
``stopped_state`` is reached before a removal, ``initial_state`` is the state of a resource
just created, ``restartable_states`` are those a pending change restarts from (with
``restart_if_required``), ``in_use_key`` is the result field naming the users an ``InUse`` reports,
``reports_reboot`` adds ``reboot_required`` to the outcome and
``result_fields`` are result fields (with their defaults) that every run keeping the resource
reports; a ``Plan``'s ``extra`` fills them in. ``found`` (a ``Result``) collects what the driver
notices while rescanning, reading and validating (a pool it rescanned, an image that is to be pulled):
``ensure`` adds it to the outcome when it is done. Nothing else travels from a driver to the
module's result: no driver attributes are read after the run.

The defaults here fit a resource without run states (a volume, a port group, a datastore):
it is simply ``present``.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._plan import Result


class Driver:
    kind = 'resource'
    stopped_state = 'present'
    initial_state = 'present'
    restartable_states = ()
    reports_reboot = False
    result_fields = {}
    in_use_key = None

    def __init__(self, client):
        self.client = client
        self.found = Result()

    # -- reading --------------------------------------------------------------------
    def rescan(self, name):
        return None

    def read(self, name):
        raise NotImplementedError

    @staticmethod
    def read_one(lookup, read, name):
        """``read(lookup(name))``; ``None`` when ``lookup`` finds no such object."""
        try:
            obj = lookup(name)
        except NotFound:
            return None
        return read(obj)

    @staticmethod
    def read_all(objects, read):
        """``read`` of each of ``objects``, leaving out those removed while the list was read."""
        found = []
        for obj in objects:
            try:
                found.append(read(obj))
            except NotFound:
                continue
        return found

    def align(self, partial, actual):
        return actual

    def describe(self, actual):
        raise NotImplementedError

    # -- desired spec -------------------------------------------------------------------
    def desired(self, partial, actual):
        raise NotImplementedError

    # -- writing --------------------------------------------------------------------------
    def create(self, name, spec):
        raise NotImplementedError

    def plan_update(self, actual, spec):
        raise NotImplementedError

    def apply_update(self, actual, plan):
        raise NotImplementedError

    def delete(self, actual, options):
        raise NotImplementedError

    # -- run state: none by default ------------------------------------------------------
    def state(self, name):
        return self.initial_state

    def steps(self, current, target):
        return []

    def perform_graceful(self, name, action, mode):  # pylint: disable=unused-argument
        return self.perform(name, action)

    def perform(self, name, action):  # pragma: no cover - steps() names no action
        raise BackendError('%s has no action %s' % (self.kind, action))

    def in_use(self, actual):  # pylint: disable=unused-argument
        """Nobody uses the resource, by default."""
        return None

    def check_health(self, spec):
        raise SpecError('wait_healthy', 'a %s has no healthcheck to wait for' % self.kind)

    def settle_stopped(self, name):  # pylint: disable=unused-argument
        """Nothing waits for a stop by default."""
        return None


class VMDriver(Driver):
    """A virtual machine: power states, changes a running guest takes at its next restart, its address."""
    kind = 'VM'
    stopped_state = initial_state = 'stopped'
    restartable_states = ('running', 'paused')
    reports_reboot = True

    def check_address(self, spec):
        if not spec['interfaces']:
            raise SpecError('wait_for_address', 'the VM has no network interface, so it can never have an address: '
                                                'add one (interfaces) or leave wait_for_address out')

    def address(self, name):  # pragma: no cover - every VM driver reads its addresses
        raise NotImplementedError


class ActivatedDriver(Driver):
    """A resource defined and started apart (a libvirt network or storage pool)."""
    stopped_state = initial_state = 'inactive'
    restartable_states = ('active',)

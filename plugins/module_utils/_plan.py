# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The values drivers hand to the reconcile loop (``Step``, ``Plan``, ``InUse``, ``Result``) and ``wait_for``.

Drivers (``_drivers/``) and the reconcile loop (``_reconcile.py``) both import this
module; drivers never import the reconcile loop.
"""

from __future__ import annotations

import time

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import WaitTimeout


class Step:
    """One state transition: run ``action``, then wait until the state is ``until``.

    ``graceful`` steps (a shutdown request) wait up to the user's
    ``shutdown_timeout`` and escalate to ``escalate`` only when ``force`` is set.
    """

    def __init__(self, action, until, graceful=False, escalate=None):
        self.action = action
        self.until = until
        self.graceful = graceful
        self.escalate = escalate

    def __repr__(self):
        return 'Step(%s -> %s)' % (self.action, self.until)


class Plan:
    """What an update would do: the spec fields that change and the predicted effects.

    ``details`` is the driver's own (what ``apply_update`` needs); ``extra`` are result fields
    the plan predicts (also in check mode), such as a container's ``recreated``. An update that
    replaces the resource stops and starts it: ``actions`` names those run-state actions (reported
    after the update, also in check mode) and ``state`` is the run state it leaves the resource
    in (``None``: the state it had). ``in_use`` (an ``InUse``) says who uses the resource that the update
    replaces: the reconcile loop refuses the update while some of them block it, unless ``force``.
    """

    def __init__(self, changes, reboot_required=False, details=None, extra=None, actions=None, state=None,
                 in_use=None):
        self.changes = list(changes)
        self.reboot_required = reboot_required
        self.details = details or {}
        self.extra = dict(extra or {})
        self.actions = list(actions or [])
        self.state = state
        self.in_use = in_use


class InUse:
    """Who uses a resource that a removal or a replacement touches (the containers on a Podman network).

    ``affected``: every user the action touches, reported in the result field the driver's ``in_use_key``
    names; ``blocking``: those that refuse the action unless ``force``; ``refusal``: the message the
    reconcile loop gives then (it names what to do, and ``force``).
    """

    def __init__(self, affected, blocking=(), refusal=''):
        self.affected = sorted(affected)
        self.blocking = sorted(blocking)
        self.refusal = refusal


class Result:
    """What one driver call did or found, for the module's result.

    ``warnings``: messages for the user; ``reboot_required``: after an update, whether the
    running resource still needs a restart (``None``: the plan's prediction stands);
    ``extra``: further result fields (``deleted_volumes``, ``job``, ...); ``actions``: what the
    driver did besides what it was asked for, reported as actions (and so as a change);
    ``unless_restarted``: warnings about a change the running resource has not picked up, which
    the reconcile loop gives only when it does not restart the resource (``restart_if_required``).
    """

    def __init__(self, warnings=None, reboot_required=None, extra=None, actions=None, unless_restarted=None):
        self.warnings = list(warnings or [])
        self.reboot_required = reboot_required
        self.extra = dict(extra or {})
        self.actions = list(actions or [])
        self.unless_restarted = list(unless_restarted or [])

    def __repr__(self):
        return 'Result(warnings=%r, reboot_required=%r, extra=%r, actions=%r, unless_restarted=%r)' % (
            self.warnings, self.reboot_required, self.extra, self.actions, self.unless_restarted)


def wait_for(read_state, wanted, timeout, what, poll_interval=0.25):
    """Poll ``read_state()`` until it returns ``wanted``; raise ``WaitTimeout`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    state = read_state()
    while state != wanted:
        if time.monotonic() >= deadline:
            raise WaitTimeout('%s: still %s after waiting %s s for it to be %s'
                              % (what, state, timeout, wanted), state=state)
        time.sleep(poll_interval)
        state = read_state()
    return state

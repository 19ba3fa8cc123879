# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors shared by the client, driver and reconcile layers.

Nothing here knows about AnsibleModule: the module runner turns these into
``fail_json`` calls with a message that names the parameter and the fix.
"""

from __future__ import annotations


class VirtError(Exception):
    """Base class of every error the collection raises on purpose."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


class NotFound(VirtError):
    """The named object does not exist on the backend."""


class BackendError(VirtError):
    """The backend refused or failed an operation."""


class MissingLibrary(VirtError):
    """A Python SDK the backend needs is not importable on the managed host."""

    def __init__(self, library, exception=None):
        super().__init__("missing library: %s" % library)
        self.library = library
        self.exception = exception


class SpecError(VirtError):
    """The requested spec is invalid; ``param`` names the offending option."""

    def __init__(self, param, msg):
        super().__init__("%s: %s" % (param, msg) if param else msg)
        self.param = param


class WaitTimeout(VirtError):
    """A wait for a backend condition ran out of time."""

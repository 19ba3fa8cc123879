# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every resource spec does the same way: read the partial spec from the module's
parameters, lay it over the actual spec (or a new resource's defaults), list what differs.

Each ``_<resource>_spec.py`` keeps its own fields, defaults, parsers and checks.
"""

from __future__ import annotations

import copy


def from_params(params, parsers):
    """The partial spec: ``{key: parse(params[key])}`` for each ``(key, parse)`` the user set, in order."""
    return dict((key, parse(params[key])) for key, parse in parsers if params.get(key) is not None)


def overlay(partial, actual_spec, defaults, fields, mergers=None):
    """``partial`` on top of the actual spec (or ``defaults``), as a new dict of exactly ``fields``.

    A field is replaced by the partial value unless ``mergers`` has a function for it:
    ``merge(value, actual_value)`` then gives the new value (a port or device list merged item
    by item).
    """
    base = copy.deepcopy(actual_spec if actual_spec is not None else defaults)
    spec = dict(base)
    for key, value in partial.items():
        merge = (mergers or {}).get(key)
        spec[key] = merge(value, base.get(key)) if merge else copy.deepcopy(value)
    return dict((key, spec.get(key)) for key in fields)


def changed_fields(fields, before, after):
    """Of ``fields``, those whose values differ between the two specs."""
    return [key for key in fields if (before or {}).get(key) != (after or {}).get(key)]

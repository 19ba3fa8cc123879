# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Size parsing shared by every option that takes a size with a unit."""

from __future__ import annotations

import re

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

# Binary units: K/M/G/T and KiB/MiB/GiB/TiB (libvirt's convention for K/M/G);
# decimal units only when spelled KB/MB/GB/TB.
_UNITS = {
    'b': 1, '': None,
    'k': 1024, 'kib': 1024, 'kb': 1000,
    'm': 1024 ** 2, 'mib': 1024 ** 2, 'mb': 1000 ** 2,
    'g': 1024 ** 3, 'gib': 1024 ** 3, 'gb': 1000 ** 3,
    't': 1024 ** 4, 'tib': 1024 ** 4, 'tb': 1000 ** 4,
}
_SIZE_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$')


def parse_size(value, param, default_unit='MiB'):
    """Return ``value`` in bytes.

    ``value`` is an integer (counted in ``default_unit``) or a string with a
    unit such as ``2GiB``, ``512M`` or ``10 GB``.
    """
    if isinstance(value, bool):
        raise SpecError(param, 'expected a size such as 2048 or "2GiB", got %r' % (value,))
    if isinstance(value, int):
        number, unit = value, default_unit
    elif isinstance(value, float) and value.is_integer():
        number, unit = int(value), default_unit
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise SpecError(param, 'cannot read %r as a size: use a whole number of %s or a string '
                                   'with a unit such as "2GiB" or "512MiB"' % (value, default_unit))
        number, unit = match.group(1), match.group(2) or default_unit
        number = float(number) if '.' in number else int(number)
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise SpecError(param, 'unknown unit %r in %r: use B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB)'
                        % (unit, value))
    size = number * factor
    if size <= 0:
        raise SpecError(param, 'must be greater than zero, got %r' % (value,))
    if size != int(size):
        raise SpecError(param, '%r is not a whole number of bytes' % (value,))
    return int(size)


def size_mib(value, param):
    """Return ``value`` (integer MiB or a string with a unit) as whole MiB."""
    size = parse_size(value, param, default_unit='MiB')
    if size % (1024 ** 2):
        raise SpecError(param, '%r is not a whole number of MiB' % (value,))
    return size // (1024 ** 2)

"""Sizes with units (module_utils/_units.py)."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError
from ansible_collections.virtfleet.virt.plugins.module_utils._units import parse_size, size_mib


@pytest.mark.parametrize('value,mib', [
    (512, 512), ('512', 512), ('2GiB', 2048), ('2 GiB', 2048), ('2G', 2048), ('1024MiB', 1024),
    ('1048576KiB', 1024), ('1.5GiB', 1536), ('1TiB', 1024 * 1024), (2048.0, 2048),
])
def test_size_mib_accepts_integers_and_units(value, mib):
    assert size_mib(value, 'memory') == mib


def test_decimal_units_are_decimal():
    assert parse_size('1GB', 'capacity') == 10 ** 9
    assert parse_size('1KB', 'capacity', default_unit='B') == 1000


@pytest.mark.parametrize('value,fragment', [
    (0, 'greater than zero'), (-1, 'greater than zero'), ('-1GiB', 'cannot read'), ('2 parsecs', 'unknown unit'),
    ('abc', 'cannot read'), (True, 'expected a size'), ('1000KB', 'whole number of MiB'),
    ('0.3B', 'whole number of bytes'),
])
def test_bad_sizes_name_the_parameter(value, fragment):
    with pytest.raises(SpecError) as err:
        size_mib(value, 'memory')
    assert err.value.param == 'memory' and fragment in err.value.msg

"""The container healthcheck spec: durations, test forms, disabling, merging, and inspect's form."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_health as ch
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


@pytest.mark.parametrize('value, nanos', [(30, 30 * 10 ** 9), ('30s', 30 * 10 ** 9), ('1m30s', 90 * 10 ** 9),
                                          ('500ms', 5 * 10 ** 8), (0.5, 5 * 10 ** 8), ('1.5s', 15 * 10 ** 8),
                                          ('1h', 3600 * 10 ** 9), ('0', 0), ('2', 2 * 10 ** 9)])
def test_durations(value, nanos):
    assert ch.duration_ns(value, 'p') == nanos


@pytest.mark.parametrize('nanos, text', [(0, '0s'), (30 * 10 ** 9, '30s'), (90 * 10 ** 9, '1m30s'),
                                         (3600 * 10 ** 9, '1h0m0s'), (5 * 10 ** 8, '500ms'), (15 * 10 ** 8, '1.5s'),
                                         (1500, '1.5us'), (7, '7ns')])
def test_go_duration_strings(nanos, text):
    assert ch.format_duration(nanos) == text
    assert ch.duration_ns(text, 'p') == nanos


@pytest.mark.parametrize('value', ['soon', '-1s', '1x', '', '1h1', True, -1, '30 s'])
def test_bad_durations_name_the_option(value):
    with pytest.raises(SpecError) as err:
        ch.parse_healthcheck({'test': 'true', 'interval': value})
    assert err.value.param == 'healthcheck.interval'


def test_test_forms():
    assert ch.parse_test('curl -f x') == ['CMD-SHELL', 'curl -f x']
    assert ch.parse_test(['curl', '-f']) == ['CMD', 'curl', '-f']
    assert ch.parse_test(['CMD', 'curl']) == ['CMD', 'curl']
    assert ch.parse_test(['CMD-SHELL', 'a && b']) == ['CMD-SHELL', 'a && b']
    assert ch.parse_test('none') == ch.parse_test(['NONE']) == ['NONE']
    for bad in ('', [], ['CMD'], ['CMD-SHELL'], ['CMD-SHELL', 'a', 'b'], ['NONE', 'x']):
        with pytest.raises(SpecError):
            ch.parse_test(bad)


def test_disable_and_partial_keys():
    assert ch.parse_healthcheck({'disable': True, 'test': None}) == {'test': ['NONE']}
    assert ch.parse_healthcheck({'retries': 2, 'interval': 90}) == {'retries': 2, 'interval': '1m30s'}
    with pytest.raises(SpecError, match='contradict'):
        ch.parse_healthcheck({'disable': True, 'test': 'true'})
    with pytest.raises(SpecError, match='takes no interval'):
        ch.parse_healthcheck({'test': 'NONE', 'interval': 3})
    with pytest.raises(SpecError, match='is empty'):
        ch.parse_healthcheck({'test': None, 'disable': False})
    with pytest.raises(SpecError):
        ch.parse_healthcheck({'test': 'true', 'retries': 0})


def test_merge_keeps_what_the_task_does_not_set():
    actual = ch.from_inspect({'Test': ['CMD-SHELL', 'true'], 'Interval': 90 * 10 ** 9, 'Timeout': 30 * 10 ** 9,
                              'Retries': 3})
    assert actual == {'test': ['CMD-SHELL', 'true'], 'interval': '1m30s', 'timeout': '30s', 'retries': 3,
                      'start_period': '0s'}
    assert ch.merge_healthcheck({'retries': 5}, actual) == dict(actual, retries=5)
    assert ch.merge_healthcheck({'test': ['NONE']}, actual) == {'test': ['NONE']}
    assert ch.merge_healthcheck({'test': ['CMD', 'x']}, None) == dict(ch.DEFAULTS, test=['CMD', 'x'])
    with pytest.raises(SpecError) as err:
        ch.merge_healthcheck({'retries': 5}, {'test': ['NONE']})
    assert err.value.param == 'healthcheck.test'
    assert ch.from_inspect({'Test': ['NONE']}) == {'test': ['NONE']}
    assert ch.from_inspect(None) is None

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``healthcheck`` of the container spec: validation, canonical form and merging.

Canonical form (the same from the user and from ``podman inspect``'s ``Config.Healthcheck``):

- ``None``: the container runs the image's healthcheck, or none;
- ``{'test': ['NONE']}``: healthchecks disabled (``podman create --no-healthcheck``);
- ``{'test': ['CMD', ...] or ['CMD-SHELL', '...'], 'interval': '30s', 'timeout': '30s', 'retries': 3,
  'start_period': '0s'}``: durations in Go's notation, as podman prints them (``'1m30s'``, ``'500ms'``),
  not the nanoseconds ``podman inspect`` stores; an interval of ``'0s'`` means no timer runs the check.
"""

from __future__ import annotations

import re

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

# what podman sets for a key that a new healthcheck leaves out
DEFAULTS = {'interval': '30s', 'timeout': '30s', 'retries': 3, 'start_period': '0s'}
KEYS = ('test', 'interval', 'timeout', 'retries', 'start_period')
DISABLED = ['NONE']
_UNITS = {'ns': 1, 'us': 10 ** 3, '\u00b5s': 10 ** 3, 'ms': 10 ** 6, 's': 10 ** 9, 'm': 60 * 10 ** 9,
          'h': 3600 * 10 ** 9}
_PART = re.compile(r'(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)')
SECOND = 10 ** 9


def duration_ns(value, param):
    """Seconds (a number) or a Go duration (``'30s'``, ``'1m30s'``, ``'500ms'``) -> nanoseconds."""
    hint = 'use seconds (such as 30) or a duration such as "30s", "1m30s" or "500ms"'
    if isinstance(value, bool):
        raise SpecError(param, '%r is not a duration: %s' % (value, hint))
    if isinstance(value, (int, float)):
        nanos = int(round(value * SECOND))
    else:
        text = str(value).strip()
        if re.match(r'^\d+(\.\d+)?$', text):
            nanos = int(round(float(text) * SECOND))
        else:
            parts = _PART.findall(text)
            if not text or ''.join(number + unit for number, unit in parts) != text:
                raise SpecError(param, '%r is not a duration: %s' % (value, hint))
            nanos = int(round(sum(float(number) * _UNITS[unit] for number, unit in parts)))
    if nanos < 0:
        raise SpecError(param, 'must be 0 or more, got %r' % (value,))
    return nanos


def _decimal(nanos, unit):
    whole, frac = divmod(nanos, unit)
    digits = len(str(unit)) - 1
    frac_text = ('%0*d' % (digits, frac)).rstrip('0') if frac else ''
    return '%d%s' % (whole, '.' + frac_text if frac_text else '')


def format_duration(nanos):
    """Nanoseconds as Go's ``time.Duration.String()`` (with ``us`` for microseconds): ``'1m30s'``, ``'500ms'``."""
    nanos = int(nanos or 0)
    if nanos == 0:
        return '0s'
    if nanos < 10 ** 3:
        return '%dns' % nanos
    if nanos < 10 ** 6:
        return _decimal(nanos, 10 ** 3) + 'us'
    if nanos < SECOND:
        return _decimal(nanos, 10 ** 6) + 'ms'
    hours, rest = divmod(nanos, 3600 * SECOND)
    minutes, rest = divmod(rest, 60 * SECOND)
    seconds = _decimal(rest, SECOND) + 's'
    if hours:
        return '%dh%dm%s' % (hours, minutes, seconds)
    if minutes:
        return '%dm%s' % (minutes, seconds)
    return seconds


def seconds(text):
    """A canonical duration as seconds (a float)."""
    return duration_ns(text, 'duration') / float(SECOND)


def parse_test(value, param='healthcheck.test'):
    """The check command: a string (run by the container's /bin/sh) or a list (run directly); ``NONE`` disables."""
    if isinstance(value, (list, tuple)):
        test = [str(item) for item in value]
        if not test:
            raise SpecError(param, 'is empty: give the check command, such as "curl -f http://localhost/" or '
                                   '[curl, -f, http://localhost/], or disable: true')
        if test[0].upper() == 'NONE':
            if len(test) > 1:
                raise SpecError(param, '[NONE] disables the healthcheck and takes no arguments')
            return list(DISABLED)
        if test[0] == 'CMD-SHELL':
            if len(test) != 2 or not test[1].strip():
                raise SpecError(param, '[CMD-SHELL, COMMAND] takes exactly one command string')
            return test
        if test[0] == 'CMD':
            if len(test) < 2:
                raise SpecError(param, '[CMD, PROGRAM, ARGS...] needs the program to run')
            return test
        return ['CMD'] + test
    text = '' if value is None else str(value).strip()
    if not text:
        raise SpecError(param, 'is empty: give the check command, such as "curl -f http://localhost/"')
    if text.upper() == 'NONE':
        return list(DISABLED)
    return ['CMD-SHELL', text]


def parse_healthcheck(value, param='healthcheck'):
    """The user's ``healthcheck`` (its sub-options, unset ones ``None``) -> the canonical keys it sets."""
    if not isinstance(value, dict):
        raise SpecError(param, 'must be a dict with test, interval, timeout, retries, start_period (or disable)')
    given = dict((k, v) for k, v in value.items() if v is not None)
    disable = given.pop('disable', False)
    unknown = sorted(set(given) - set(KEYS))
    if unknown:
        raise SpecError(param, 'unknown keys %s: use test, interval, timeout, retries, start_period or disable'
                        % ', '.join(unknown))
    if disable:
        if 'test' in given and parse_test(given['test'], param + '.test') != DISABLED:
            raise SpecError(param, 'disable: true and a test contradict each other: drop one of them')
        given['test'] = DISABLED
    result = {}
    if 'test' in given:
        result['test'] = parse_test(given['test'], param + '.test')
    if result.get('test') == DISABLED:
        extra = sorted(k for k in given if k != 'test')
        if extra:
            raise SpecError(param, 'a disabled healthcheck takes no %s: drop them' % ', '.join(extra))
        return result
    if not given:
        raise SpecError(param, 'is empty: set test (the check command), or disable: true to turn off the image\'s '
                               'healthcheck')
    for key in ('interval', 'timeout', 'start_period'):
        if key in given:
            nanos = duration_ns(given[key], '%s.%s' % (param, key))
            if key == 'timeout' and nanos == 0:
                raise SpecError('%s.timeout' % param, 'must be more than 0 (such as "5s")')
            result[key] = format_duration(nanos)
    if 'retries' in given:
        retries = given['retries']
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
            raise SpecError('%s.retries' % param, 'must be a whole number of 1 or more, got %r' % (retries,))
        result['retries'] = retries
    return result


def merge_healthcheck(value, actual):
    """The desired healthcheck: the keys the user set on top of the container's (or podman's defaults)."""
    if value.get('test') == DISABLED:
        return {'test': list(DISABLED)}
    if actual and actual.get('test') != DISABLED:
        return dict(actual, **value)
    if 'test' not in value:
        raise SpecError('healthcheck.test', 'is required: the container has no healthcheck yet, so the check command '
                                            'must be given with %s' % ', '.join(sorted(value)))
    return dict(DEFAULTS, **value)


def from_inspect(config):
    """``Config.Healthcheck`` of ``podman inspect`` (nanoseconds) in the canonical form; ``None`` when unset."""
    if not config or not config.get('Test'):
        return None
    test = list(config['Test'])
    if test[0] == 'NONE':
        return {'test': list(DISABLED)}
    return {'test': test, 'interval': format_duration(config.get('Interval')),
            'timeout': format_duration(config.get('Timeout')), 'retries': config.get('Retries') or 0,
            'start_period': format_duration(config.get('StartPeriod'))}

"""Argument sets for the virtfleet.virt modules, generated from each module's own argument spec.

``capture_spec`` runs a module's ``main()`` with ``AnsibleModule`` replaced by a recorder, so the
spec is exactly the one the module builds (also for modules that build it inside ``main()``).
``Builder`` turns a spec into a hypothesis strategy of argument dicts that mixes valid and invalid
values: wrong types, out-of-range integers, unknown choices, XML/shell metacharacters, unicode,
over-long strings, unknown options and missing required options. Targets (``targets.py``) give
*hints* per option path: strategies of valid values that reach the real daemon with names and
paths confined to the run's own ``vft-fz-`` objects and directories, and curated invalid values
for options where random junk could reach outside them (paths, pool and volume names, URIs).
"""
from __future__ import annotations

import importlib
import string

from hypothesis import strategies as st

MODULE_PACKAGE = 'ansible_collections.virtfleet.virt.plugins.modules.'

# Characters and fragments that must never be interpreted: XML, shell, format strings, Jinja,
# path traversal, control characters, bidi/BOM, non-BMP and combining unicode, option lookalikes.
METACHARS = ['<', '>', '&', '"', "'", '<!--', ']]>', '&amp;', '&#0;', '&xxe;', '<![CDATA[x]]>', ';', '|',
             '&&', '$(id)', '`id`', '${HOME}', '$HOME', '\\', '%s', '%n', '%(x)s', '{{ 7 * 7 }}', '{%', '../',
             '..', '*', '?', '~', ' ', '\t', '\n', '\r', '\x00', '\x07', '\x1b[31m', '\u202e', '\ufeff',
             '\u0301', 'é', 'ü', 'ß', '日本', '🚀', '\U0010fffd', '-', '--help', '-rf', '/', '//', '=', ',', ':',
             '#', '[', ']', '{', '}', '\u2028', '\x7f']
OUT_OF_RANGE = [0, -1, -2, -2 ** 31, 2 ** 31, 2 ** 32, 2 ** 53 + 1, 2 ** 63, -2 ** 63, 2 ** 64, 10 ** 20]

text_small = st.text(max_size=24)
metachar_text = st.lists(st.sampled_from(METACHARS), min_size=1, max_size=5).map(''.join)
word_metachar = st.builds(lambda a, b, c: a + b + c, st.text(string.ascii_letters, max_size=6),
                          st.sampled_from(METACHARS), st.text(string.ascii_letters, max_size=6))
long_text = st.one_of(st.integers(65, 300).map(lambda n: 'a' * n),
                      st.sampled_from([4097, 5000, 70000]).map(lambda n: 'x' * n),
                      st.integers(20, 200).map(lambda n: 'ü' * n + '<&>'))
junk_text = st.one_of(text_small, metachar_text, word_metachar, long_text)
wrong_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2 ** 70, max_value=2 ** 70),
                          st.floats(allow_nan=True, allow_infinity=True), junk_text,
                          st.lists(st.integers(-5, 5), max_size=3),
                          st.dictionaries(st.text(string.ascii_letters, max_size=4), st.integers(), max_size=2))
unknown_option = st.one_of(st.sampled_from(['nonexistent_option', 'Name', 'state ', 'ansible_junk', 'uri\n']),
                           st.text(string.ascii_lowercase + '_', min_size=3, max_size=12).map(lambda s: 'zz_' + s))
bad_choice = st.one_of(st.sampled_from(['', 'nonexistent', 'RUNNING', 'Present', ' present', 'present\n', 'none',
                                        'true', '0']), junk_text)


class Captured(Exception):
    """Raised by the recorder that stands in for AnsibleModule."""


def capture_spec(module):
    """``(argument_spec, other AnsibleModule keyword arguments)`` as the module's ``main()`` builds them.

    Like ansible-test's validate-modules: ``AnsibleModule.__init__`` records its arguments and stops
    the module, ``_load_params`` returns no parameters.
    """
    from ansible.module_utils import basic  # pylint: disable=import-outside-toplevel
    mod = importlib.import_module(MODULE_PACKAGE + module)
    captured = {}

    def record(_self, argument_spec=None, **kwargs):
        captured['spec'] = argument_spec
        captured['kwargs'] = kwargs
        raise Captured()

    original_init, original_load = basic.AnsibleModule.__init__, basic._load_params
    basic.AnsibleModule.__init__ = record
    basic._load_params = dict
    try:
        mod.main()
    except Captured:
        pass
    finally:
        basic.AnsibleModule.__init__ = original_init
        basic._load_params = original_load
    return captured['spec'], captured['kwargs']


def no_log_paths(spec, path=()):
    """Option paths whose values are secrets (``no_log=True``)."""
    found = []
    for key, opt in spec.items():
        if opt.get('no_log'):
            found.append(path + (key,))
        if opt.get('options'):
            found.extend(no_log_paths(opt['options'], path + (key,)))
    return found


def weighted(*pairs):
    """A strategy drawing from ``pairs`` of ``(weight, strategy)`` in proportion to the weights."""
    table = []
    for weight, strategy in pairs:
        table.extend([strategy] * weight)
    return st.sampled_from(range(len(table))).flatmap(lambda index: table[index])


class Builder:
    """Strategies of argument dicts for one argument spec.

    ``hints`` maps an option path (a tuple of option names; list levels are not named) to a
    strategy of valid values; ``bad_hints`` to a strategy of invalid ones that replaces the
    generic junk (for options where junk could reach outside the run's own objects).
    ``always`` are top-level options present in every set; ``max_optional`` bounds how many
    other optional options a set (or a nested dict) carries.

    A *valid* set is meant to succeed: ``invalid_only`` are top-level options that no valid set
    carries (those of the other backend, which the module refuses on this one: they still come
    in one-bad and chaos sets), and ``coherent`` maps each valid set to a strategy of a set whose
    options agree with each other and with the objects the target made (a pool's type and path
    for its name, a subnet of the network's own, the host a VM is on...).
    """

    MODES = ('valid',) * 6 + ('one_bad',) * 3 + ('chaos',)

    def __init__(self, spec, hints=None, bad_hints=None, always=(), max_optional=5, exclude=(), rare=(),
                 invalid_only=(), coherent=None):
        self.spec = spec
        self.hints = hints or {}
        self.bad_hints = bad_hints or {}
        self.always = tuple(always)
        self.max_optional = max_optional
        self.exclude = set(exclude)
        self.rare = set(rare)  # top-level options that appear in about one set in 25
        self.invalid_only = set(invalid_only)
        self.coherent = coherent

    # -- the whole argument set ----------------------------------------------------------
    def argsets(self):
        """Strategy of ``(mode, args)``."""
        return st.sampled_from(self.MODES).flatmap(
            lambda mode: self.top(mode).map(lambda args: (mode, args)))

    def top(self, mode):
        """A top-level argument set of ``mode`` (a valid one made coherent)."""
        sets = self.options((), self.spec, mode, top=True)
        if mode == 'valid' and self.coherent is not None:
            sets = sets.flatmap(self.coherent)
        return sets

    def options(self, path, options, mode, top=False):
        """A dict for ``options``; ``mode`` valid, one_bad (one problem) or chaos (many)."""
        required = [k for k, o in options.items() if o.get('required')]
        pinned = [k for k in (self.always if top else ()) if k in options and k not in required]
        # the options of the other backend: never in a valid set (the module refuses them)
        skip = self.invalid_only if mode == 'valid' and not path else ()
        optional = sorted(k for k, o in options.items()
                          if not o.get('required') and k not in pinned and (path + (k,)) not in self.exclude
                          and not (top and k in self.rare) and k not in skip)
        rare = sorted(k for k in self.rare
                      if top and k in options and k not in required and k not in pinned and k not in skip)
        limit = min(self.max_optional, len(optional))

        @st.composite
        def build(draw):
            chosen = draw(st.lists(st.sampled_from(optional), max_size=limit, unique=True)) if optional else []
            if rare and draw(st.integers(0, 24)) == 24:
                chosen.append(draw(st.sampled_from(rare)))
            keys = required + pinned + chosen
            bad_keys, drop, unknown = set(), None, False
            if mode == 'one_bad':
                how = draw(st.integers(0, 19))
                if how == 19 and required:
                    drop = draw(st.sampled_from(required))
                elif how == 18 or not keys:
                    unknown = True
                else:
                    bad_keys.add(draw(st.sampled_from(keys)))
            elif mode == 'chaos':
                bad_keys = set(k for k in keys if draw(st.integers(0, 2)) == 2)
                unknown = draw(st.integers(0, 3)) == 3
                if required and draw(st.integers(0, 9)) == 9:
                    drop = draw(st.sampled_from(required))
            result = {}
            for key in keys:
                if key == drop:
                    continue
                result[key] = draw(self.value(path + (key,), options[key], key in bad_keys))
            if unknown:
                result[draw(unknown_option)] = draw(wrong_scalars)
            return result
        return build()

    # -- one option ------------------------------------------------------------------------------
    def value(self, path, opt, bad):
        if bad:
            return self.invalid(path, opt)
        if path in self.hints:
            return self.hints[path]
        return self.valid(path, opt)

    def valid(self, path, opt):
        kind = opt.get('type', 'str')
        choices = opt.get('choices')
        if kind == 'list':
            elements = opt.get('elements', 'str')
            if elements == 'dict' and opt.get('options'):
                item = self.options(path, opt['options'], 'valid')
            elif choices:
                item = st.sampled_from(list(choices))
            else:
                item = self.scalar(elements)
            return st.lists(item, max_size=3)
        if choices:
            return st.sampled_from(list(choices))
        if kind == 'dict':
            if opt.get('options'):
                return self.options(path, opt['options'], 'valid')
            return st.dictionaries(st.text(string.ascii_letters + '_-.', min_size=1, max_size=10),
                                   st.one_of(text_small, st.integers(-5, 5), st.none()), max_size=3)
        return self.scalar(kind)

    @staticmethod
    def scalar(kind):
        if kind == 'bool':
            return st.one_of(st.booleans(), st.sampled_from(['yes', 'no', 'true', 'false', 'on', 'off', 1, 0]))
        if kind == 'int':
            return st.integers(0, 64)
        if kind == 'float':
            return st.floats(0, 8, allow_nan=False)
        return st.one_of(st.text(string.ascii_letters + string.digits + '-_.', min_size=1, max_size=16), junk_text)

    def invalid(self, path, opt):
        if path in self.bad_hints:
            return self.bad_hints[path]
        kind = opt.get('type', 'str')
        elements = opt.get('elements', 'str')
        choices = [wrong_scalars]
        if opt.get('choices'):
            choices.append(bad_choice if kind != 'list' else st.lists(bad_choice, min_size=1, max_size=2))
        if kind == 'int':
            choices += [st.sampled_from(OUT_OF_RANGE), st.sampled_from(['abc', '1.5', '1e3', '0x10', ' 7 ', '']),
                        st.floats(allow_nan=True)]
        elif kind == 'bool':
            choices.append(st.sampled_from(['maybe', 2, -1, 'yes please', '', []]))
        elif kind == 'float':
            choices.append(st.sampled_from([float('nan'), float('inf'), -1e308, 'abc', '', -1]))
        elif kind in ('str', 'path', 'raw'):
            choices.append(junk_text)
        elif kind == 'list':
            choices.append(st.sampled_from(['a,b', '', 5, {'a': 1}]))
            if elements == 'dict' and opt.get('options'):
                good = st.lists(self.options(path, opt['options'], 'valid'), max_size=2)
                bad = self.options(path, opt['options'], 'one_bad')
                choices.append(st.tuples(good, bad).map(lambda pair: pair[0] + [pair[1]]))
            elif elements in ('str', 'path'):
                choices.append(st.lists(junk_text, min_size=1, max_size=3))
        elif kind == 'dict':
            choices.append(st.sampled_from(['a=1', 'not a dict', [], 5]))
            if opt.get('options'):
                choices.append(self.options(path, opt['options'], 'one_bad'))
        return st.one_of(*choices)

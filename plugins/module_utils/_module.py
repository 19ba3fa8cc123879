# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module shares: option declarations, the runner, connection options, error handling, results.

A module declares its options once, as an argument spec whose options may carry ``backends``
(the backends that take the option) and ``hint`` (what to do instead when it is refused);
``argument_spec`` strips those for ansible-core, ``refuse_options`` enforces them, and
``tests/unit/test_option_docs.py`` holds each module's documentation to them. ``run`` is the
runner: ``AnsibleModule`` → ``Session`` → options checked against the backend → the module's
operation (``ensure`` for a plain ensure module).

Connection options are declared once here and documented once per backend
in ``plugins/doc_fragments``.
"""

from __future__ import annotations

import copy
import decimal
import math
import os
import sys

from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible.module_utils.common.validation import check_type_dict, check_type_float, check_type_int

from ansible.module_utils.common import parameters as _parameters

from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile, _xml
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import MissingLibrary, SpecError, VirtError

# The clients are imported when a run opens one (or declares the vSphere options): a libvirt run does not
# load pyVmomi, a vSphere run not libvirt-python.


# Keys of an option declaration that are ours, not ansible-core's: ``backends`` (the backends that take
# the option; left out: all) and ``hint`` (what to do instead, said when the option is refused).
DECLARATION_KEYS = ('backends', 'hint')

# How the documentation names each backend: the description of an option declared for one backend
# starts with "<name> only" ("vSphere only.", "libvirt only.").
BACKEND_NAMES = {'libvirt': 'libvirt', 'vsphere': 'vSphere', 'podman': 'Podman'}


def only(backend, **options):
    """``options`` declared for ``backend`` alone: ``spec.update(_module.only('vsphere', host=dict(type='str')))``."""
    return dict((key, dict(option, backends=(backend,))) for key, option in options.items())


def argument_spec(options):
    """The argument spec ansible-core sees: the declared ``options`` without ``backends`` and ``hint``."""
    return dict((key, dict((k, v) for k, v in option.items() if k not in DECLARATION_KEYS))
                for key, option in options.items())


def backends_of(options):
    """option -> the backends that take it, for the declared ``options`` restricted to some backends."""
    return dict((key, tuple(option['backends'])) for key, option in options.items() if option.get('backends'))


def _mirrors_env(option, value):
    """Whether ``value`` only mirrors the environment variable the option falls back to: a vSphere connection
    option whose value comes from VMWARE_HOST (set for other tools) is not the choice of a libvirt task."""
    fallback = option.get('fallback') or ()
    if len(fallback) < 2 or fallback[0] is not env_fallback:
        return False
    names = [name for name in fallback[1] if name in os.environ]
    if not names:
        return False
    env = os.environ[names[0]]
    return str(value).lower() in (env.lower(), str(env in ('1', 'true', 'yes', 'on')).lower())


def refuse_options(backend, params, options):
    """Refuse the options set for a backend they do not apply to, naming the first one (by name), the
    backends it applies to, the backend the task runs on and what to do instead.

    An option counts as set when its value is neither None nor its default (a switch left at false)
    and does not only mirror the environment variable it falls back to.
    """
    for key in sorted(options):
        option, value = options[key], params.get(key)
        backends = option.get('backends')
        if (not backends or backend in backends or value is None or value == option.get('default')
                or _mirrors_env(option, value)):
            continue
        raise SpecError(key, 'applies to the %s backend only, and this task runs on %s; %s'
                        % (' and '.join(backends), backend, option.get('hint') or 'remove it'))


def new_module(options):
    """The ``AnsibleModule`` of the declared ``options`` (``checked_spec`` of their argument spec)."""
    params = basic._load_params()  # read once for both checks (a fleet's parameters are large)
    return Module(argument_spec=finite_spec(checked_spec(argument_spec(options), params), params),
                  supports_check_mode=True)


def _scrubbed(value, secrets):
    """``remove_values(value, secrets)`` of ansible-core, for results made of plain dicts, lists, strings, numbers,
    booleans and None (a module's result): the same output, without its generic walk (copies of each container,
    abstract type checks), which costs more than the rest of a no-op fleet run of 1000 VMs. Any other type
    (ansible-core's tagged values among them) goes through ``remove_values`` itself."""
    kind = type(value)
    if kind is dict:
        return dict((key, _scrubbed(item, secrets)) for key, item in value.items())
    if kind is list or kind is tuple:
        return [_scrubbed(item, secrets) for item in value]
    if kind is str:
        if value in secrets:
            return 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
        for secret in secrets:
            value = value.replace(secret, '*' * 8)
        return value
    if value is None or kind is bool:
        return value
    if kind is int or kind is float:
        text = str(value)
        return 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' if any(secret in text for secret in secrets) else value
    return _parameters.remove_values(value, secrets)


def remove_values(value, no_log_strings):
    """``ansible.module_utils.common.parameters.remove_values``, through ``_scrubbed``: the same result."""
    secrets = sorted((str(text) for text in no_log_strings), key=len, reverse=True)  # longest first, as ansible-core
    if not secrets:
        return _scrubbed(value, secrets) if type(value) is not dict else dict(value)  # pylint: disable=unidiomatic-typecheck
    return _scrubbed(value, secrets)


class Module(AnsibleModule):
    """``AnsibleModule`` whose result is scrubbed of the ``no_log`` values by ``remove_values`` above: the same
    values hidden, in the same way, at a fraction of the cost for a large result (a fleet's)."""

    def _return_formatted(self, kwargs):
        original = basic.remove_values
        basic.remove_values = remove_values  # what ansible-core's _return_formatted calls, for this return only
        try:
            super()._return_formatted(kwargs)
        finally:
            basic.remove_values = original


def run(options, operate, backend=None, secrets=None):
    """The module runner: ``new_module(options)`` → ``Session`` (``backend``: see ``Session``) → the options
    checked against the session's backend (``refuse_options``) → ``operate(module, session)``, which ends
    the run (``ensure_result``, ``module.exit_json``). Errors become ``fail_json`` (``Session``).

    ``secrets(params)`` names values hidden in every output (credentials inside an option's value, such as
    a URL's password) before anything can fail, a failed connection included.
    """
    module = new_module(options)
    if secrets is not None:
        module.no_log_values.update(secrets(module.params))
    with Session(module, backend) as session:
        refuse_options(session.backend, module.params, options)
        operate(module, session)


def ensure(key, drivers, request, diff_keys=('state', 'spec'), reboot_key='reboot_required'):
    """The operation of a plain ensure module, for ``run``.

    ``request(module, backend)`` gives ``(name, partial, state, target, opts)`` for ``_reconcile.ensure``
    (the input validated, nothing read yet); ``drivers`` maps each backend to the factory
    ``(client, params)`` of its driver. The result is ``ensure_result`` under ``key``.
    """
    def operate(module, session):
        name, partial, state, target, opts = request(module, session.backend)
        driver = backend_driver(drivers, session, module.params)
        outcome, before, after = _reconcile.ensure(driver, name, partial, state, target, opts)
        ensure_result(module, key, outcome, before, after, diff_keys=diff_keys, reboot_key=reboot_key)
    return operate


def backend_driver(drivers, session, params):
    """The driver of the session's backend from ``drivers`` (backend -> factory ``(client, params)``)."""
    if session.backend not in drivers:
        raise SpecError('backend', 'this module does not manage anything on the %s backend; use one of: %s'
                        % (session.backend, ', '.join(sorted(drivers))))
    return drivers[session.backend](session.client, params)


def found(driver, name):
    """What an info module lists: the resource named ``name`` (none when it does not exist), or all of them."""
    if name is None:
        return driver.list()
    actual = driver.read(name)
    return [actual] if actual else []


def connection_argument_spec(*backends):
    """Options that pick and reach the backend (doc fragment ``virtfleet.virt.libvirt``).

    A module that also runs on vSphere asks for ``'vsphere'`` too and gets the
    ``backend`` option and the vSphere connection options (doc fragment
    ``virtfleet.virt.vsphere``), declared for vSphere only; ``username``/``password``
    serve both backends.
    """
    spec = dict(
        # its default and LIBVIRT_DEFAULT_URI pass on vSphere (refuse_options), a URI the task names does not
        uri=dict(type='str', default='qemu:///system', fallback=(env_fallback, ['LIBVIRT_DEFAULT_URI']),
                 backends=('libvirt',), hint='vSphere is reached by hostname (and port)'),
        username=dict(type='str', fallback=(env_fallback, ['VIRTFLEET_USERNAME'])),
        password=dict(type='str', no_log=True, fallback=(env_fallback, ['VIRTFLEET_PASSWORD'])),
    )
    if 'vsphere' in backends:
        from ansible_collections.virtfleet.virt.plugins.module_utils._clients.vsphere import ENV as VSPHERE_ENV
        spec['backend'] = dict(type='str', default='auto', choices=['auto', 'libvirt', 'vsphere'])
        spec.update(only('vsphere', **dict((key, dict(type=kind, fallback=(env_fallback, [VSPHERE_ENV[key]])))
                                           for key, kind in (('hostname', 'str'), ('port', 'int'),
                                                             ('validate_certs', 'bool'), ('ca_path', 'path'),
                                                             ('proxy_host', 'str'), ('proxy_port', 'int')))))
    return spec


def _as_dict(value):
    """``value`` as ansible-core reads a value for an option with sub-options: a dict, or a string in JSON or
    ``key=value`` form; None when it cannot."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            return check_type_dict(value)
        except TypeError:
            return None
    return None


def _describe(value):
    text = repr(value)
    return '%s %s' % (type(value).__name__, text if len(text) <= 40 else text[:37] + '...')


def _bad_suboptions(spec, params, prefix='', path=()):
    """``(message, spec path)`` for each option with sub-options given a value that is not a dict: a number,
    a boolean, a list item that is no dict, a string that is neither JSON nor ``key=value``."""
    if not isinstance(params, dict):
        return
    for key, option in spec.items():
        if not option.get('options'):
            continue
        for name in [key] + list(option.get('aliases') or []):
            value = params.get(name)
            where = prefix + name
            if value is None:
                continue
            if not isinstance(value, list):
                parsed = _as_dict(value)
                if parsed is None:
                    yield ('%s must be a dict%s, got %s' % (
                        where, ' or a list of dicts' if option.get('type') == 'list' else '', _describe(value)),
                        path + (key,))
                else:
                    yield from _bad_suboptions(option['options'], parsed, where + '.', path + (key,))
                continue
            for index, item in enumerate(value):
                parsed = _as_dict(item)
                if parsed is None:
                    if option.get('type', 'str') == 'dict':
                        # a list for a dict: ansible-core reads each item as the dict, then refuses the list
                        yield ('%s must be a dict, got a list' % where, path + (key,))
                    else:
                        yield ('%s[%d] must be a dict, got %s' % (where, index, _describe(item)), path + (key,))
                    break
                yield from _bad_suboptions(option['options'], parsed, '%s[%d].' % (where, index), path + (key,))


def bad_suboptions(spec, params):
    """Messages for options with sub-options that were given something other than a dict.

    ansible-core's argument validation cannot handle such a value well: a number or a boolean (``cpu: 2``,
    ``ipv4: 1``) raises ``TypeError`` (a traceback instead of a message); a string that is neither JSON
    nor ``key=value``, or a list item that is not a dict, breaks its collection of ``no_log`` values, so
    the failure it reports shows every secret of the task (``password``) in ``invocation``.
    """
    return [message for message, _path in _bad_suboptions(spec, params)]


def checked_spec(argument_spec, params=None):
    """``argument_spec`` as ansible-core can validate the module's parameters safely::

        module = AnsibleModule(argument_spec=_module.checked_spec(spec), ...)   # new_module() does this

    An option with sub-options that was given something other than a dict (``bad_suboptions``) loses
    its sub-options in the copy returned, so ansible-core refuses the value with its usual message
    ("argument 'cpu' is of type int ... unable to convert to dict") through ``fail_json``, with the
    ``no_log`` values hidden.
    """
    paths = [path for _message, path in _bad_suboptions(argument_spec, basic._load_params() if params is None else params)]
    if not paths:
        return argument_spec
    spec = copy.deepcopy(argument_spec)
    for path in paths:
        option = {'options': spec}
        for key in path:
            option = option['options'][key]
        option.pop('options', None)
    return spec


# The largest magnitude an int option takes: what the backends' APIs carry (64-bit signed); a larger one
# only fails later, deep inside a conversion (``int too large to convert to float``).
INT_LIMIT = 2 ** 63 - 1
_FLOAT_LIMIT = decimal.Decimal(sys.float_info.max)
# The first character of every string decimal.Decimal reads as a number, with the Unicode digits (isdecimal):
# an ASCII digit, a sign, a point, Infinity, NaN, sNaN
_NUMBER_STARTS = frozenset('0123456789+-.iInNsS')


def number_problem(kind, value):
    """Why ``value`` cannot be the value of an option of type ``kind`` ('int' or 'float'), or None (it may be
    one, or is not a number at all, which ansible-core refuses with its own message).

    ansible-core's own conversion raises ``OverflowError`` (a traceback, not a message) for an infinite
    value given to an int option ("Infinity", "-inf", 1e400, which JSON reads as inf); NaN and numbers past
    what the backends carry get through it or fail later the same way, deep inside the module.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or (text[0] not in _NUMBER_STARTS and not text[0].isdecimal()):  # Decimal() refuses it
            return None
        try:
            number = decimal.Decimal(text)
        except (decimal.DecimalException, ValueError):
            return None
        finite = number.is_finite()
    else:
        number = value
        finite = not isinstance(value, float) or math.isfinite(value)
    if not finite:
        return '%s is not a finite number' % value
    if kind == 'int' and abs(number) > INT_LIMIT:
        return '%s is out of range: an int here is at most %d in magnitude' % (_short(value), INT_LIMIT)
    if kind == 'float' and abs(decimal.Decimal(number)) > _FLOAT_LIMIT:
        return '%s is out of range: a float here is at most %g in magnitude' % (_short(value), sys.float_info.max)
    return None


def _short(value):
    try:
        text = str(value)
    except ValueError:  # an int past Python's digit limit for str()
        return 'a number of more than 4000 digits'
    return text if len(text) <= 40 else text[:37] + '...'


def _number_checker(kind):
    """ansible-core's type check of ``kind`` ('int', 'float') that first refuses, with a message, a value
    ``number_problem`` finds; it is named ``kind``, so the message reads "... unable to convert to int: ..."."""
    convert = check_type_int if kind == 'int' else check_type_float

    def check(value):
        problem = number_problem(kind, value)
        if problem is not None:
            raise TypeError(problem)
        return convert(value)
    check.__name__ = kind
    return check


def _has_problem_number(value):
    if isinstance(value, dict):
        return any(_has_problem_number(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_problem_number(item) for item in value)
    return number_problem('int', value) is not None or number_problem('float', value) is not None


def _number_types(spec):
    """A copy of ``spec`` whose int and float options (and list elements), sub-options included, check with
    ``_number_checker``."""
    spec = dict((key, dict(option)) for key, option in spec.items())
    for option in spec.values():
        for field in ('type', 'elements'):
            if option.get(field) in ('int', 'float'):
                option[field] = _number_checker(option[field])
        if option.get('options'):
            option['options'] = _number_types(option['options'])
    return spec


def finite_spec(argument_spec, params=None):
    """``argument_spec`` as ansible-core can validate numbers safely in ``params`` (by default the module's)::

        module = AnsibleModule(argument_spec=_module.finite_spec(_module.checked_spec(spec)), ...)  # new_module()
        ArgumentSpecValidator(_module.finite_spec(item_spec, item)).validate(item)  # a list item checked alone

    When the parameters hold a number that is not finite (inf, NaN, as a number or a string) or out of range
    anywhere, the int and float options of the copy returned refuse it with ansible-core's usual message
    naming the option ("argument 'wait_timeout' is of type float and we were unable to convert to int: inf
    is not a finite number"; "found in 'disks'" for a sub-option) instead of a traceback. Otherwise (nearly
    always) the spec is returned as it is.
    """
    if not _has_problem_number(basic._load_params() if params is None else params):
        return argument_spec
    return _number_types(argument_spec)


def wait_argument_spec():
    """Options of the reconcile loop shared by modules that change power/run state."""
    return dict(
        force=dict(type='bool', default=False),
        shutdown_timeout=dict(type='int', default=120),
        wait_timeout=dict(type='int', default=60),
    )


def reconcile_options(module, **extra):
    params = module.params
    for key in ('shutdown_timeout', 'wait_timeout'):
        if params.get(key) is not None and params[key] < 0:
            module.fail_json(msg='%s must be 0 or more seconds, got %d' % (key, params[key]))
    return _reconcile.Options(
        check_mode=module.check_mode,
        force=params.get('force', False),
        shutdown_timeout=params.get('shutdown_timeout', 120),
        wait_timeout=params.get('wait_timeout', 60),
        shutdown_mode=params.get('shutdown_mode'),
        wait_for_address=bool(params.get('wait_for_address')),
        wait_for_address_timeout=300 if params.get('wait_for_address_timeout') is None else params['wait_for_address_timeout'],
        **extra)


def _libvirt_client(params):
    if not _xml.HAS_LXML:
        raise MissingLibrary('lxml', _xml.LXML_IMPORT_ERROR)
    from ansible_collections.virtfleet.virt.plugins.module_utils._clients.libvirt import LibvirtClient
    return LibvirtClient(params['uri'], params.get('username'), params.get('password'))


def _vsphere_client(params):
    from ansible_collections.virtfleet.virt.plugins.module_utils._clients.vsphere import (
        ENV as VSPHERE_ENV, VSphereClient, control_character_setting)
    key = control_character_setting(params)
    if key:
        raise SpecError(key, 'contains a control character (NUL, newline, ...), which a vSphere connection '
                             'cannot use; remove it')
    # VMWARE_USER/VMWARE_PASSWORD apply to vSphere only, so a libvirt run never picks them up.
    return VSphereClient(
        params.get('hostname'),
        params.get('username') or os.environ.get(VSPHERE_ENV['username']),
        params.get('password') or os.environ.get(VSPHERE_ENV['password']),
        port=params.get('port') or 443,
        validate_certs=params.get('validate_certs') is not False,
        ca_path=params.get('ca_path'),
        proxy_host=params.get('proxy_host'),
        proxy_port=params.get('proxy_port'))


def _podman_client(params):
    from ansible_collections.virtfleet.virt.plugins.module_utils._clients import podman
    return podman.from_params(params)


# backend name -> factory(params) of the client that talks to it
CLIENT_FACTORIES = {
    'vsphere': _vsphere_client,
    'libvirt': _libvirt_client,
    'podman': _podman_client,
}


def select_backend(params):
    """The backend a module run talks to, from its connection options.

    ``backend: auto`` (or a module without that option) means vSphere when a
    ``hostname`` is set (also through VMWARE_HOST), else libvirt.
    """
    backend = params.get('backend') or 'auto'
    if backend != 'auto':
        return backend
    return 'vsphere' if params.get('hostname') else 'libvirt'


class Session:
    """Opens the backend connection for one module run and turns our errors into ``fail_json``.

    ::

        with Session(module) as session:
            driver = LibvirtVMDriver(session.client)
            ...

    ``backend`` forces a backend (e.g. ``podman``); by default it is chosen from
    the connection options by ``select_backend``.
    """

    def __init__(self, module, backend=None):
        self.module = module
        self.backend = backend
        self.client = None

    def __enter__(self):
        params = self.module.params
        if self.backend is None:
            self.backend = select_backend(params)
        try:
            self.client = CLIENT_FACTORIES[self.backend](params)
        except MissingLibrary as exc:
            self.module.fail_json(msg=missing_required_lib(exc.library), exception=exc.exception)
        except VirtError as exc:
            self.module.fail_json(msg=exc.msg, changed=False)
        return self

    def __exit__(self, exc_type, exc, _tb):
        if self.client is not None:
            self.client.close()
        if exc_type is not None and issubclass(exc_type, VirtError):
            outcome = getattr(exc, 'outcome', None)
            result = {'msg': exc.msg, 'changed': bool(outcome and outcome.changed)}
            if outcome is not None and outcome.actions:
                result['actions'] = outcome.actions
            self.module.fail_json(**result)
        return False


def ensure_result(module, key, outcome, before, after, diff_keys=('state', 'spec'), reboot_key='reboot_required'):
    """Build the result of an ``ensure`` (or ``relocate``) call and exit.

    ``reboot_key`` names the result field of ``outcome.reboot_required`` (``None``: the module
    reports it itself).
    """
    result = dict(changed=outcome.changed, actions=outcome.actions)
    result[key] = after or {}
    result.update(outcome.fields(reboot_key))
    if module._diff:
        result['diff'] = _reconcile.diff(before, after, diff_keys)
    for warning in outcome.warnings:
        module.warn(warning)
    module.exit_json(**result)

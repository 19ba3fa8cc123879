"""Numbers ansible-core's own validation cannot take: an int or float option given a value that is not finite
(inf, -inf, NaN; as a number or a string) or out of range is refused with ansible-core's usual message naming the
option (``_module.finite_spec``, used by ``new_module``), never with a traceback (``OverflowError``)."""
from __future__ import annotations

import json
import types

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.virtfleet.virt.plugins.module_utils import _fleet, _module
from ansible_collections.virtfleet.virt.plugins.modules import fleet

OPTIONS = dict(
    wait_timeout=dict(type='int', default=60),
    ratio=dict(type='float'),
    ports=dict(type='list', elements='int'),
    note=dict(type='str'),
    disks=dict(type='list', elements='dict', options=dict(size=dict(type='int'), weight=dict(type='float'))),
    ipv4=dict(type='dict', options=dict(prefix=dict(type='int'))),
)


def _module_result(capsys, params):
    """What ``new_module`` ends the run with: the parsed params, or the failure's JSON."""
    with patch_module_args(params):
        try:
            module = _module.new_module(OPTIONS)
        except SystemExit:
            return json.loads(capsys.readouterr().out)
    return {'params': module.params}


@pytest.mark.parametrize('params, option, problem', [
    ({'wait_timeout': float('inf')}, "'wait_timeout' is of type float", 'inf is not a finite number'),
    ({'wait_timeout': 'Infinity'}, "'wait_timeout' is of type str", 'Infinity is not a finite number'),
    ({'wait_timeout': '-inf'}, "'wait_timeout' is of type str", '-inf is not a finite number'),
    ({'wait_timeout': float('nan')}, "'wait_timeout' is of type float", 'nan is not a finite number'),
    ({'wait_timeout': 'nan'}, "'wait_timeout' is of type str", 'nan is not a finite number'),
    ({'wait_timeout': '1e400'}, "'wait_timeout' is of type str", '1e400 is out of range'),
    ({'wait_timeout': 10 ** 30}, "'wait_timeout' is of type int", 'is out of range'),
    ({'ratio': 'inf'}, "'ratio' is of type str", 'inf is not a finite number'),
    ({'ratio': '1e400'}, "'ratio' is of type str", '1e400 is out of range'),
    ({'ratio': 10 ** 400}, "'ratio' is of type int", 'is out of range'),
    ({'disks': [{'size': float('-inf')}]}, "'size' is of type float found in 'disks'", '-inf is not a finite number'),
    ({'disks': [{'size': 1, 'weight': 'nan'}]}, "'weight' is of type str found in 'disks'", 'nan is not a finite'),
    ({'ipv4': {'prefix': 'Infinity'}}, "'prefix' is of type str found in 'ipv4'", 'Infinity is not a finite number'),
    ({'ports': [1, float('inf')]}, "option 'ports' is of type float", 'inf is not a finite number'),
])
def test_non_finite_and_out_of_range_numbers_are_refused_with_a_message(capsys, params, option, problem):
    result = _module_result(capsys, params)
    assert result.get('failed'), result
    assert option in result['msg'] and problem in result['msg'], result['msg']
    assert 'Traceback' not in json.dumps(result) and 'OverflowError' not in json.dumps(result)


def test_finite_numbers_and_other_values_pass_as_before(capsys):
    params = {'wait_timeout': '12', 'ratio': '2.5', 'ports': [1, '2'], 'note': 'Infinity',
              'disks': [{'size': 2 ** 63 - 1, 'weight': 1e300}], 'ipv4': {'prefix': 24}}
    found = _module_result(capsys, params)['params']
    assert (found['wait_timeout'], found['ratio'], found['ports'], found['note']) == (12, 2.5, [1, 2], 'Infinity')
    assert found['disks'][0]['size'] == 2 ** 63 - 1 and found['ipv4']['prefix'] == 24
    # a value that is no number is still ansible-core's to refuse, with its own message
    result = _module_result(capsys, {'wait_timeout': 'x', 'note': 'nan'})
    assert result['failed'] and "unable to convert to int" in result['msg'] and 'cannot be converted' in result['msg']


@pytest.mark.parametrize('kind, value', [('int', float('inf')), ('int', '-Infinity'), ('int', 'NaN'),
                                         ('int', 2 ** 63), ('int', -2 ** 63 - 5), ('int', '9.3e18'),
                                         ('float', '1e309'), ('float', -10 ** 309), ('float', 'nan')])
def test_number_problem_names_the_value(kind, value):
    assert _module.number_problem(kind, value)


@pytest.mark.parametrize('kind, value', [('int', 2 ** 63 - 1), ('int', '-12'), ('int', 2.5), ('int', 'x'),
                                         ('int', True), ('int', None), ('int', [1]), ('float', 1e308),
                                         ('float', '-0.5'), ('float', 10 ** 300)])
def test_number_problem_leaves_the_rest_to_ansible_core(kind, value):
    assert _module.number_problem(kind, value) is None


def test_the_spec_is_untouched_unless_a_number_needs_it(monkeypatch):
    from ansible.module_utils import basic
    spec = _module.argument_spec(OPTIONS)
    monkeypatch.setattr(basic, '_load_params', lambda: {'wait_timeout': 5, 'disks': [{'size': 3}]})
    assert _module.finite_spec(spec) is spec
    monkeypatch.setattr(basic, '_load_params', lambda: {'disks': [{'size': 'inf'}]})
    checked = _module.finite_spec(spec)
    assert callable(checked['disks']['options']['size']['type']) and callable(checked['ports']['elements'])
    assert spec['disks']['options']['size']['type'] == 'int', 'the original is untouched'


def test_a_validator_of_items_checked_alone_gets_the_same_refusal():
    """What a module that validates list items one by one (fleet's vms) can use: the params given explicitly."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    spec = _module.argument_spec(OPTIONS)
    item = {'wait_timeout': 'Infinity', 'disks': [{'size': 1}]}
    assert _module.finite_spec(spec, {'wait_timeout': 3}) is spec
    result = ArgumentSpecValidator(_module.finite_spec(spec, item)).validate(item)
    assert any("'wait_timeout'" in m and 'Infinity is not a finite number' in m for m in result.error_messages)


def test_fleet_items_refuse_them_one_by_one():
    """fleet validates its items itself (before connecting): a non-finite number in one item fails that item."""
    module = types.SimpleNamespace(check_mode=True, no_log_values=set(), params={
        'vms': [{'name': 'vft-a', 'vcpus': float('inf')}, {'name': 'vft-b', 'max_vcpus': 'NaN'}]})
    requests = _fleet.requests_of(module, fleet.item_spec())
    assert [request[0] for request in requests] == ['vft-a', 'vft-b']
    assert "'vcpus'" in str(requests[0][1]) and 'inf is not a finite number' in str(requests[0][1])
    assert "'max_vcpus'" in str(requests[1][1]) and 'NaN is not a finite number' in str(requests[1][1])
    assert [request[1].param for request in requests] == ['vms[0]', 'vms[1]']

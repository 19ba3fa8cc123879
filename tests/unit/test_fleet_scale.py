"""The fleet's cheap paths give what the plain ones give: item validation once per shape, and the no_log scrub."""
from __future__ import annotations

import pytest
from ansible.module_utils.common import parameters
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.virtfleet.virt.plugins.module_utils import _fleet, _module
from ansible_collections.virtfleet.virt.plugins.modules import fleet

ITEMS = [
    {'name': 'vft-a', 'state': 'running', 'memory': 32, 'disks': [{'path': '/var/lib/x/a.img'}], 'tags': {'k': 'v'}},
    {'name': 'vft-b', 'state': 'running', 'memory': 32, 'disks': [{'path': '/var/lib/x/b.img'}], 'tags': {'k': 'v'}},
    {'name': 'vft-c', 'state': 'present', 'memory': '1 parsec', 'disks': [{'path': '/c.img'}]},
    {'name': 'vft-d', 'state': 'present', 'memory': '1 parsec', 'disks': [{'path': '/d.img'}]},
    {'name': 'vft-e', 'state': 'sideways'},
    {'name': 'vft-f', 'disks': [{'path': '~/f.img'}], 'title': 'a $HOME title'},
    {'name': 'vft-g', 'disks': [{'path': '$HOME/g.img'}]},
    {'name': 'vft-h', 'vcpus': float('inf')},
    {'name': 'inf', 'vcpus': 'NaN'},
    {'name': 'vft-i', 'bogus': 1, 'cloud_init': {'user_data': 'secret-one'}},
    {'name': 'vft-j', 'cloud_init': {'user_data': {'password': 'secret-two'}}},
    {'name': 5},
    {'name': 'vft-k', 'vcpus': '2'},
    {'name': 'vft-l', 'vcpus': 2},
    {'name': 'vft-m', 'vcpus': True},
]


def _plain(spec, item):
    checked = ArgumentSpecValidator(_module.finite_spec(spec, item)).validate(item)
    return checked.validated_parameters, list(checked.error_messages), set(checked._no_log_values)


@pytest.mark.parametrize('index', range(len(ITEMS)))
def test_item_validation_per_shape_equals_validating_each_item(index):
    spec = fleet.item_spec()
    validator = _fleet.ItemValidator(spec)
    for item in ITEMS[:index]:  # earlier items fill the shape cache
        validator.validate(item)
    assert validator.validate(ITEMS[index]) == _plain(spec, ITEMS[index])


def test_items_differing_only_in_names_and_paths_validate_once():
    validator = _fleet.ItemValidator(fleet.item_spec())
    calls = []
    for index in range(50):
        params, errors, _no_log = validator.validate({'name': 'vft-%d' % index, 'state': 'present', 'memory': 32,
                                                      'disks': [{'path': '/img/%d.img' % index}]})
        calls.append(params['name'])
        assert not errors and params['disks'][0]['path'] == '/img/%d.img' % index
    assert len(validator._shapes) == 1 and calls == ['vft-%d' % index for index in range(50)]


def test_item_secrets_join_the_modules_no_log_values():
    class FakeModule:
        check_mode = False
        no_log_values = set()
        params = {'vms': [{'name': 'vft-a', 'cloud_init': {'user_data': 'secret-one'}}]}
    _fleet.requests_of(FakeModule, fleet.item_spec())
    assert 'secret-one' in FakeModule.no_log_values


RESULT = {
    'changed': False, 'n': 5, 'f': 1.5, 'none': None, 'yes': True,
    'results': [{'name': 'vm-hunter2-x', 'tags': {'pw': 'hunter2'}, 'list': ('a', 'hunter2', 12345),
                 'nested': [[{'deep': 'xx hunter2 hunter2 xx'}]]}, {'name': 'plain', 'n': 12345}],
    'bytes': b'b-hunter2', 'set': {'hunter2', 'ok'},
}


@pytest.mark.parametrize('secrets', [set(), {'hunter2'}, {'hunter2', 'hunter'}, {'2345'}, {'True'}, {'1.5'}])
def test_scrub_equals_ansible_core_remove_values(secrets):
    def as_json(value):  # what the result becomes: a tuple is a JSON list
        if isinstance(value, dict):
            return dict((key, as_json(item)) for key, item in value.items())
        if isinstance(value, (list, tuple)):
            return [as_json(item) for item in value]
        return value
    assert as_json(_module.remove_values(RESULT, secrets)) == as_json(parameters.remove_values(RESULT, secrets))

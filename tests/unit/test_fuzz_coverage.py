"""Every module of the collection is a target of the hardening fuzzer (tests/hardening), so a new module cannot
land without its seeded argument sets; read from the sources (the fuzzer's own imports need its environment)."""
from __future__ import annotations

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = os.path.join(REPO, 'plugins', 'modules')
HARNESS = os.path.join(REPO, 'tests', 'hardening', 'harness.py')


def fuzz_targets():
    with open(HARNESS, encoding='utf-8') as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ['TARGETS']:
            return ast.literal_eval(node.value)
    raise AssertionError('no TARGETS in %s' % HARNESS)


def test_every_module_is_a_fuzz_target():
    modules = sorted(name[:-3] for name in os.listdir(MODULES) if name.endswith('.py') and name != '__init__.py')
    targets = fuzz_targets()
    # inventory@<plugin>: an inventory plugin's source file, not a module
    plugins = [target.split('@')[1] for target in targets if target.startswith('inventory@')]
    assert all(os.path.exists(os.path.join(REPO, 'plugins', 'inventory', name + '.py')) for name in plugins), plugins
    fuzzed = set(target.split('@')[0] for target in targets if not target.startswith('inventory@'))
    missing = [name for name in modules if name not in fuzzed]
    assert not missing, 'modules with no fuzz target in tests/hardening/harness.py TARGETS: %s' % missing
    assert not fuzzed - set(modules), 'fuzz targets of modules that do not exist: %s' % sorted(fuzzed - set(modules))

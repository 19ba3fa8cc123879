"""The backend notes of the modules' documentation agree with the options' declarations.

Ansible needs each module's DOCUMENTATION as static YAML, so the declaration (``backends`` in the
module's ``argument_spec()``) cannot write it; this test holds the two together instead. An option
declared for one backend starts its description with "<backend> only" (``_module.BACKEND_NAMES``:
"libvirt only", "vSphere only"), and an option whose description says so is declared so. The
options of the doc fragments (``extends_documentation_fragment``) count as the module's.
"""
from __future__ import annotations

import importlib
import re

import pytest
import yaml

from ansible_collections.virtfleet.virt.plugins.module_utils import _module

from .test_module_options import MODULES

PACKAGE = 'ansible_collections.virtfleet.virt.plugins.'
# "<backend> only" where a sentence or a paragraph starts ("On vSphere only V(present) ..." is no note)
NOTE = re.compile(r'(?:^|[.;]\s+)(%s) only\b' % '|'.join(re.escape(name) for name in _module.BACKEND_NAMES.values()))
BACKEND_OF = dict((name, backend) for backend, name in _module.BACKEND_NAMES.items())


def documented_options(module):
    """option -> its description as a list of paragraphs, from the module's DOCUMENTATION and its fragments."""
    doc = yaml.safe_load(importlib.import_module(PACKAGE + 'modules.' + module).DOCUMENTATION)
    options = {}
    for fragment in doc.get('extends_documentation_fragment') or []:
        namespace, collection, name, *part = fragment.split('.')
        if (namespace, collection) != ('virtfleet', 'virt'):
            continue  # ansible.builtin.action_common_attributes: attributes, no options
        holder = importlib.import_module(PACKAGE + 'doc_fragments.' + name).ModuleDocFragment
        options.update(yaml.safe_load(getattr(holder, part[0].upper() if part else 'DOCUMENTATION')).get('options', {}))
    options.update(doc.get('options') or {})
    return dict((key, option['description'] if isinstance(option['description'], list) else [option['description']])
                for key, option in options.items())


def notes(paragraphs):
    """The backends the description says the option is for (where it says "<backend> only")."""
    return set(BACKEND_OF[match.group(1)] for paragraph in paragraphs for match in NOTE.finditer(paragraph))


def disagreements(declared, documented):
    """Messages for each option whose declaration and documentation disagree about its backends."""
    found = []
    for key in sorted(set(declared) | set(documented)):
        backends = set(declared.get(key, {}).get('backends') or ())
        paragraphs = documented.get(key, [''])
        said = notes(paragraphs)
        if said != backends:
            found.append('%s: declared for %s, documented for %s' % (
                key, ', '.join(sorted(backends)) or 'every backend', ', '.join(sorted(said)) or 'every backend'))
        elif backends:
            start = ' and '.join(_module.BACKEND_NAMES[backend] for backend in sorted(backends)) + ' only'
            if not paragraphs[0].startswith(start):
                found.append('%s: its description must start with "%s"' % (key, start))
    return found


@pytest.mark.parametrize('module', MODULES)
def test_backend_notes_in_the_docs_match_the_declarations(module):
    declared = importlib.import_module(PACKAGE + 'modules.' + module).argument_spec()
    assert disagreements(declared, documented_options(module)) == []


def test_the_check_sees_each_kind_of_disagreement():
    declared = dict(a=dict(type='str', backends=('libvirt',)), b=dict(type='str'),
                    c=dict(type='str', backends=('vsphere',)), d=dict(type='str', backends=('vsphere',)),
                    e=dict(type='str'))
    documented = dict(a=['Something.'], b=['vSphere only. Something.'], c=['Something. vSphere only.'],
                      d=['libvirt only. Something.'], e=['On vSphere only V(present) is taken.'])
    assert disagreements(declared, documented) == [
        'a: declared for libvirt, documented for every backend',
        'b: declared for every backend, documented for vsphere',
        'c: its description must start with "vSphere only"',
        'd: declared for vsphere, documented for libvirt',
    ]


def test_the_fragments_options_count():
    documented = documented_options('vm')
    assert documented['hostname'][0].startswith('vSphere only.')    # virtfleet.virt.vsphere
    assert documented['cluster'][0].startswith('vSphere only.')     # virtfleet.virt.vsphere.placement
    assert 'shutdown_timeout' in documented                          # virtfleet.virt.libvirt.wait

# Sphinx configuration of the virtfleet.virt docs site.
# tests/env/docs-site.sh generates the plugin pages into rst/collections with antsibull-docs
# (antsibull-docs collection --use-current) and then runs sphinx-build with -W (warnings are
# errors). Started from `antsibull-docs sphinx-init --use-current virtfleet.virt`.
import atexit
import os
import shutil
import tempfile
import zlib

project = 'virtfleet.virt'
copyright = 'virtfleet.virt developers, GPL-3.0-or-later'  # pylint: disable=redefined-builtin

title = 'virtfleet.virt documentation'
html_short_title = 'virtfleet.virt'

extensions = ['sphinx.ext.intersphinx', 'sphinx_antsibull_ext']

pygments_style = 'ansible'

highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
# The top bar links to this project (galaxy.yml's repository and issues), not to Ansible's blog and
# forum; no Read the Docs ads.
html_theme_options = {
    'topbar_links': {
        'Repository': 'https://github.com/virtfleet/virt',
        'Issues': 'https://github.com/virtfleet/virt/issues',
    },
    'show_rtd_ethical_ads': False,
}

display_version = False

html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False


def _local_inventory(source):
    """Write the plain-text intersphinx inventory ``source`` as an objects.inv; return its path."""
    with open(source) as handle:
        lines = [line for line in handle if line.strip() and not line.startswith('#')]
    header = ('# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n'
              '# The remainder of this file is compressed using zlib.\n')
    tmp = tempfile.mkdtemp(prefix='virtfleet-docs-inv-')
    atexit.register(shutil.rmtree, tmp, True)
    path = os.path.join(tmp, 'objects.inv')
    with open(path, 'wb') as handle:
        handle.write(header.encode('utf-8') + zlib.compress(''.join(lines).encode('utf-8')))
    return path


# Links to Ansible's own documentation resolve against a local inventory of the few targets the
# pages use (ansible_devel.inv.txt): the site builds offline, and nitpicky mode below still turns
# any reference that does not resolve into a build error.
intersphinx_mapping = {
    'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/',
                      _local_inventory(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    'ansible_devel.inv.txt'))),
}
intersphinx_disabled_reftypes = []

default_role = 'any'

nitpicky = True

"""The docs site: antsibull-docs and Sphinx build it (tests/env/docs-site.sh), headless Chromium opens
the vm module's page from a local HTTP server, and the rendered page has the options table."""
from __future__ import annotations

import functools
import html.parser
import http.server
import itertools
import json
import os
import struct
import subprocess
import tempfile
import threading

import pytest

from conftest import ENV

VM_PAGE = 'collections/virtfleet/virt/vm_module.html'
WINDOW = (1280, 2000)


def _docs_site(*args, timeout=1800):
    proc = subprocess.run(['bash', os.path.join(ENV, 'docs-site.sh')] + list(args), capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, 'docs-site.sh %s failed (%d):\n%s\n%s' % (
        ' '.join(args), proc.returncode, proc.stdout[-4000:], proc.stderr[-8000:])
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    """The site, built from this checkout into a fresh directory."""
    out = tmp_path_factory.mktemp('docs-site')
    _docs_site(str(out))
    return str(out)


@pytest.fixture(scope='module')
def chromium():
    """Debian's Chromium, installed by docs-site.sh when missing."""
    return _docs_site('--browser', timeout=1800)


class _Recorder(http.server.SimpleHTTPRequestHandler):
    requests = None  # a list per server, set by _serve

    def log_request(self, code='-', size='-'):
        self.requests.append((self.path.split('?')[0], int(code)))

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


@pytest.fixture(scope='module')
def served(site):
    """(base URL, list of (path, status) the server answered) for the site on 127.0.0.1."""
    requests = []
    handler = type('Handler', (_Recorder,), {'requests': requests})
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(handler, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d/' % server.server_address[1], requests
    server.shutdown()
    server.server_close()


def _chromium(chromium, *args):
    with tempfile.TemporaryDirectory(prefix='virtfleet-chromium-') as profile:
        proc = subprocess.run(
            [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--user-data-dir=' + profile, '--window-size=%d,%d' % WINDOW] + list(args),
            capture_output=True, timeout=600, check=False, cwd=profile)
    assert proc.returncode == 0, 'chromium failed (%d):\n%s' % (proc.returncode, proc.stderr.decode()[-4000:])
    return proc.stdout.decode('utf-8')


class _OptionsTable(html.parser.HTMLParser):
    """Reads the first options table in <section id="parameters">: its header cells and the option
    anchors (parameter-<name>, parameter-<name>/<suboption>, one for each alias too)."""

    def __init__(self):
        super().__init__()
        self.in_parameters = False
        self.section_depth = 0
        self.table_state = None  # None before the table, 'in' inside it, 'done' after it
        self.in_header = False
        self.headers = []
        self.anchors = set()
        self.titles = []
        self._title = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'section':
            if self.in_parameters:
                self.section_depth += 1
            elif attrs.get('id') == 'parameters':
                self.in_parameters, self.section_depth = True, 1
        if not self.in_parameters or self.table_state == 'done':
            return
        if tag == 'table' and 'ansible-option-table' in (attrs.get('class') or '').split():
            self.table_state = 'in'
        elif self.table_state == 'in':
            if tag == 'th':
                self.in_header = True
                self.headers.append('')
            elif tag == 'div' and 'ansibleOptionAnchor' in (attrs.get('class') or '').split():
                self.anchors.add(attrs['id'].partition('parameter-')[2])
            elif tag == 'p' and 'ansible-option-title' in (attrs.get('class') or '').split():
                self._title = ''

    def handle_endtag(self, tag):
        if tag == 'section' and self.in_parameters:
            self.section_depth -= 1
            if self.section_depth == 0:
                self.in_parameters = False
        elif tag == 'table' and self.table_state == 'in':
            self.table_state = 'done'
        elif tag == 'th':
            self.in_header = False
        elif tag == 'p' and self._title is not None:
            self.titles.append(self._title.strip())
            self._title = None

    def handle_data(self, data):
        if self.in_header:
            self.headers[-1] += data.strip()
        if self._title is not None:
            self._title += data


def _documented_anchors(options, prefix=()):
    """The anchors antsibull-docs gives an option table: every path of names or aliases."""
    anchors = set()
    for name, spec in options.items():
        for path in itertools.product(*prefix, [name] + list(spec.get('aliases') or [])):
            anchors.add('/'.join(path))
        anchors |= _documented_anchors(spec.get('suboptions') or {},
                                       prefix + ([name] + list(spec.get('aliases') or []),))
    return anchors


@pytest.fixture(scope='module')
def vm_doc(venv_bin, collections_path):
    """The vm module's documentation as ansible-doc reads it (doc fragments merged)."""
    proc = subprocess.run([os.path.join(venv_bin, 'ansible-doc'), '-t', 'module', '--json', 'virtfleet.virt.vm'],
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path), capture_output=True,
                          text=True, timeout=600, check=True)
    return json.loads(proc.stdout)['virtfleet.virt.vm']['doc']


def test_vm_module_page_renders_its_options_table(chromium, served, vm_doc, tmp_path):
    base, requests = served
    dom = _chromium(chromium, '--dump-dom', base + VM_PAGE)
    table = _OptionsTable()
    table.feed(dom)
    assert table.table_state == 'done', 'no options table under "Parameters" on %s' % VM_PAGE
    assert table.headers == ['Parameter', 'Comments']
    # the options the task examples and the README lead with, rendered as option titles
    for option in ('name', 'state', 'memory', 'max_memory', 'vcpus', 'max_vcpus', 'disks'):
        assert option in table.titles
    # and every option and sub-option the module documents (with its doc fragments), each alias too
    assert table.anchors == _documented_anchors(vm_doc['options'])
    # the browser fetched the page and everything it links for its look (theme CSS, scripts) from the site
    statuses = dict(requests)
    assert statuses.get('/' + VM_PAGE) == 200
    assert statuses.get('/_static/css/ansible.css') == 200
    assert [r for r in requests if r[1] != 200] == []
    # a screenshot for a person to look at (run pytest with -s to see its path)
    shot = tmp_path / 'vm_module.png'
    _chromium(chromium, '--screenshot=%s' % shot, base + VM_PAGE)
    print('screenshot of %s: %s' % (VM_PAGE, shot))
    data = shot.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n' and struct.unpack('>II', data[16:24]) == WINDOW

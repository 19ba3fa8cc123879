"""Seeded fuzz run of the virtfleet.virt modules against the real daemons.

    VIRTFLEET_VENV_DIR=/tmp/vf /tmp/vf/bin/python tests/hardening/fuzz.py --per-module 1000 --seed 8 \\
        --out /var/tmp/virtfleet-fuzz.json
    /tmp/vf/bin/python tests/hardening/report.py /var/tmp/virtfleet-fuzz.json   # rewrites docs/reliability.md

For every module (``--modules`` to choose), hypothesis generates ``--per-module`` argument sets from
the module's own argument spec (``strategies.py``, ``targets.py``); each set runs through the real
module as Ansible runs it (a child process of the venv's python, arguments in a file), and every
``--playbook-every``-th set through a real ``ansible-playbook`` task instead. ``harness.judge``
checks each call. The same seed generates the same sets (same hypothesis version and code).
The target ``inventory@vsphere`` fuzzes the vsphere inventory plugin's configuration instead: each set is a source
file read by ``ansible-inventory --list`` (``InventoryRunner``), judged by ``judge_inventory``: a valid inventory or
an error Ansible raised on purpose (an ``ansible.errors`` exception with a message, never a Python one), the
simulator unchanged, the password never shown.
Targets run ``--jobs`` at a time, each in a process of its own, touching only its own objects; the longest
expected first (``EXPECTED_SECONDS``), Podman and vSphere targets beside libvirt ones (``next_target``).
The exit status is 1 when any set broke an invariant (or a target did not complete).

Interruptions lose little: each worker saves its results every few sets in ``--parts`` (kept after
the run), ``--out`` is rewritten whenever a target finishes (``complete: false`` until the end), and
SIGTERM or Ctrl-C stops the workers, which clean up and save what they did. A full run can be done in
pieces (``--modules vm,fleet``, then the rest, each with its own ``--out``); report.py merges result
files and part files by target, the newest complete result of each winning::

    tests/hardening/report.py /var/tmp/fuzz-a.json /var/tmp/fuzz-b.json /var/tmp/fuzz-a.parts/*.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402  pylint: disable=wrong-import-position
from harness import ModuleRunner, judge, parse_result, redact, secret_values, short_msg  # noqa: E402  pylint: disable=wrong-import-position

sys.path.insert(0, harness.collections_root())

CHECKPOINT_EVERY = 25  # a worker saves its results so far every this many sets
STOP = []            # set by SIGTERM/SIGINT: the remaining sets are skipped, the target is cleaned up
TARGETS = harness.TARGETS


# -- ansible-playbook ---------------------------------------------------------------------------------

def yaml_string(text):
    """``text`` as a YAML double-quoted scalar: printable characters as they are, everything else escaped."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append('\\' + char)
        elif 0x20 <= code <= 0x7E or (0xA0 <= code <= 0xD7FF and code not in (0x2028, 0x2029)) or \
                (0xE000 <= code <= 0xFFFD and code != 0xFEFF) or code >= 0x10000:
            out.append(char)
        elif code <= 0xFF:
            out.append('\\x%02x' % code)
        elif code <= 0xFFFF:
            out.append('\\u%04x' % code)
        else:
            out.append('\\U%08x' % code)
    return '"%s"' % ''.join(out)


TEMPLATE_MARKERS = ('{{', '{%', '{#')


def ansible_string(text):
    """``text`` as a YAML scalar Ansible reads back as exactly that string, never templated.

    A plain double-quoted scalar is always a string. ``!unsafe`` only where Jinja could see a template:
    ansible-core 2.19 resolves an ``!unsafe`` scalar as if it were plain (``!unsafe "off"`` is False,
    ``!unsafe "="`` and ``!unsafe "<<"`` fail to load), which a string with ``{`` in it never is.
    """
    text = str(text)
    return ('!unsafe ' if any(m in text for m in TEMPLATE_MARKERS) else '') + yaml_string(text)


def ansible_yaml(value):
    """``value`` as flow YAML that Ansible loads back as ``value`` (strings never templated)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return '.nan'
        if value in (float('inf'), float('-inf')):
            return '.inf' if value > 0 else '-.inf'
        text = repr(value)
        # YAML 1.1 reads a float only with a dot and a signed exponent: 1e+300 would be a string
        mantissa, sep, exponent = text.partition('e')
        if '.' not in mantissa:
            mantissa += '.0'
        if sep and exponent[0] not in '+-':
            exponent = '+' + exponent
        return mantissa + sep + exponent
    if isinstance(value, str):
        return ansible_string(value)
    if isinstance(value, list):
        return '[' + ', '.join(ansible_yaml(v) for v in value) + ']'
    if isinstance(value, dict):
        return '{' + ', '.join(yaml_key(k) + ansible_yaml(v) for k, v in value.items()) + '}'
    return ansible_string(value)


def yaml_key(key):
    """``"key": `` (an explicit ``? "key" :`` past YAML's 1024-character limit for implicit keys)."""
    text = ansible_string(key)
    return ('? %s : ' if len(text) > 1000 else '%s: ') % text


class PlaybookRunner:
    """Runs one module task through ansible-playbook and returns its registered result."""

    def __init__(self, workdir, python=None, root=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        python = python or harness.venv_python()
        self.bin = os.path.dirname(python)
        self.inventory = os.path.join(workdir, 'inventory.ini')
        with open(self.inventory, 'w') as handle:
            handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % python)
        env = dict((k, v) for k, v in os.environ.items() if k not in harness.SCRUBBED_ENV)
        env.update(ANSIBLE_COLLECTIONS_PATH=root or harness.collections_root(), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_HOST_KEY_CHECKING='False', ANSIBLE_DEPRECATION_WARNINGS='False',
                   ANSIBLE_RETRY_FILES_ENABLED='False', ANSIBLE_LOCAL_TEMP=os.path.join(workdir, 'tmp'),
                   PATH=self.bin + os.pathsep + os.environ.get('PATH', ''))
        self.env = env

    def run(self, module, args, check_mode=False, diff=False, timeout=300):
        """``(result, output, seconds, timed_out, rc)``: the registered dict of the task (None when the play saved
        none), ansible-playbook's output and its exit status (None when it timed out).

        The task is not ``ignore_errors``: a failed task fails the host, so ansible-playbook exits 2 as it does for
        a user; an ``always`` section saves the registered result either way.
        """
        run_id = uuid.uuid4().hex[:8]
        out = os.path.join(self.workdir, 'result-%s.json' % run_id)
        path = os.path.join(self.workdir, 'play-%s.yml' % run_id)
        keys = ', '.join(yaml_key(k) + ansible_yaml(v) for k, v in args.items())
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write('- hosts: localhost\n  gather_facts: false\n  tasks:\n'
                         '    - block:\n'
                         '        - name: fuzzed task\n'
                         '          virtfleet.virt.%s: {%s}\n'
                         '          register: result\n'
                         '          check_mode: %s\n          diff: %s\n'
                         '      always:\n'
                         '        - name: save the result\n'
                         '          ansible.builtin.copy: {content: "{{ result | to_json }}", dest: %s}\n'
                         '          check_mode: false\n          diff: false\n'
                         % (module, keys, json.dumps(check_mode), json.dumps(diff), json.dumps(out)))
        started = time.monotonic()
        try:
            proc = subprocess.run([os.path.join(self.bin, 'ansible-playbook'), '-i', self.inventory, '-v', path],
                                  env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
                                  cwd=self.workdir)
        except subprocess.TimeoutExpired:
            return None, '', time.monotonic() - started, True, None
        finally:
            os.unlink(path)
        seconds = time.monotonic() - started
        output = proc.stdout + proc.stderr
        try:
            with open(out) as handle:
                result = json.load(handle)
            os.unlink(out)
        except (OSError, ValueError):
            result = None
        return result, output, seconds, False, proc.returncode


def judge_playbook(result, output, timed_out, before, after, check_mode, info, secrets, rc):
    """Like ``harness.judge`` for a registered result (Ansible wraps module crashes as MODULE FAILURE).

    ``rc`` is ansible-playbook's own exit status: 0 when the task succeeded, 2 when it failed (the host failed);
    it is held against the task's ``failed`` flag like a module's exit status (``rc:`` problem).
    """
    if timed_out:
        return 'timeout', ['timeout: ansible-playbook did not end within its bound']
    if result is None:
        return 'crash', ['not_json: no registered result (ansible-playbook rc %s): %r' % (rc, output[-300:])]
    stdout = json.dumps(result)
    # the registered result of a crash: msg "MODULE FAILURE", module_stdout/module_stderr/exception
    if 'module_stderr' in result or 'module_stdout' in result:
        stdout = 'MODULE FAILURE ' + stdout
    outcome, problems = judge(rc, stdout, '', False, before, after, check_mode, info, [])
    if result.get('failed') and rc != 2:
        problems.append('rc: ansible-playbook exited %s for a failed task (2 expected)' % rc)
    leaks = harness.leaked(secrets, output, json.dumps(result))
    if leaks:
        problems.append('secret_leak: %d secret(s) in the ansible-playbook output or result' % len(leaks))
    return outcome, problems


# -- inventory sources (ansible-inventory) ---------------------------------------------------------------------

class InventoryRunner:
    """Reads one inventory source file through ``ansible-inventory --list`` with only the plugin under test
    enabled, a failed source failing the command, and every traceback shown (to tell Ansible's errors from
    Python's)."""

    def __init__(self, workdir, python=None, root=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.bin = os.path.dirname(python or harness.venv_python())
        env = dict((k, v) for k, v in os.environ.items() if k not in harness.SCRUBBED_ENV)
        env.update(ANSIBLE_COLLECTIONS_PATH=root or harness.collections_root(), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_DEPRECATION_WARNINGS='False', ANSIBLE_LOCAL_TEMP=os.path.join(workdir, 'tmp'),
                   ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED='True', ANSIBLE_DISPLAY_TRACEBACK='always',
                   LC_ALL='C.UTF-8', LANG='C.UTF-8')
        self.env = env

    def run(self, plugin, args, timeout=120):
        """``(rc, stdout, stderr, seconds, timed_out)`` of ``ansible-inventory --list`` on ``args`` as a source file."""
        path = os.path.join(self.workdir, 'src-%s.%s.yml' % (uuid.uuid4().hex[:8], plugin.split('.')[-1]))
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write('\n'.join(yaml_key(k) + ansible_yaml(v) for k, v in args.items()) + '\n')
        started = time.monotonic()
        try:
            proc = subprocess.run([os.path.join(self.bin, 'ansible-inventory'), '-i', path, '--list'],
                                  env=dict(self.env, ANSIBLE_INVENTORY_ENABLED=plugin), capture_output=True,
                                  text=True, timeout=timeout, check=False, cwd=self.workdir)
        except subprocess.TimeoutExpired:
            return None, '', '', time.monotonic() - started, True
        finally:
            os.unlink(path)
        return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started, False


def parse_failure(stderr):
    """``(exception class, message)`` of what escaped the plugin's ``parse``: the exception line that ends the
    traceback whose frames call ``plugin.parse(`` (None, None when there is none)."""
    lines = stderr.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].startswith('Traceback (most recent call last)'):
            frames = []
            index += 1
            while index < len(lines) and lines[index].startswith(' '):
                frames.append(lines[index])
                index += 1
            if index < len(lines) and any('plugin.parse(' in frame for frame in frames):
                cls, _sep, msg = lines[index].partition(': ')
                return cls.strip(), msg.strip()
        else:
            index += 1
    return None, None


def judge_inventory(rc, stdout, stderr, timed_out, before, after, secrets):
    """``(outcome, problems, msg, hosts)`` of one source: a valid inventory (every host with ``virtfleet_vm``)
    or a clear error (an exception of ``ansible.errors``, with a message), nothing changed, no secret shown."""
    if timed_out:
        return 'timeout', ['timeout: ansible-inventory did not end within its bound'], None, None
    problems, msg, hosts = [], None, None
    if rc == 0:
        try:
            data = json.loads(stdout)
            hostvars = data['_meta']['hostvars']
            hosts = len(hostvars)
            missing = [name for name, hv in hostvars.items() if 'virtfleet_vm' not in hv]
            if missing:
                problems.append('invalid_inventory: %d host(s) without virtfleet_vm' % len(missing))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append('invalid_inventory: rc 0 and no inventory JSON (%s): %r' % (exc, stdout[-300:]))
        outcome = 'ok'
    else:
        cls, msg = parse_failure(stderr)
        if cls is None:
            problems.append('no_error: rc %s and no exception out of the plugin: %r' % (rc, stderr[-300:]))
        elif not cls.startswith('ansible.errors.'):
            problems.append('python_error: %s: %s' % (cls, (msg or '')[:200]))
        elif not msg:
            problems.append('no_msg: %s without a message' % cls)
        outcome = 'failed'
    if before != after:
        problems.append('unreported_change: an inventory read changed the simulator')
    leaks = harness.leaked(secrets, stdout, stderr)
    if leaks:
        problems.append('secret_leak: %d secret(s) in the ansible-inventory output' % len(leaks))
    return outcome, problems, (msg or '')[:240] or None, hosts


def call_inventory(target, runner, args, mode):
    target.before_call()
    secrets = secret_values(args, target.secret_paths) + list(target.extra_secrets)
    before = target.snapshot()
    rc, stdout, stderr, seconds, timed_out = runner.run('virtfleet.virt.' + target.module, args,
                                                        timeout=target.timeout)
    after = target.snapshot()
    outcome, problems, msg, hosts = judge_inventory(rc, stdout, stderr, timed_out, before, after, secrets)
    record = {'via': 'inventory', 'mode': mode, 'check': False, 'diff': False, 'outcome': outcome, 'changed': False,
              'seconds': round(seconds, 2), 'msg': msg, 'problems': problems, 'actions': None, 'hosts': hosts}
    if problems:
        record['args'] = redact(args, secrets)
        record['output'] = redact((stderr or '')[-1500:], secrets)
    return record


# -- one target -------------------------------------------------------------------------------------------

def now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def run_target(key, env, count, seed, playbook_every, log, save=None):
    """Run ``count`` sets against target ``key``; ``save(result)`` gets the result so far every
    ``CHECKPOINT_EVERY`` sets (``complete: false``), so that a killed worker loses little."""
    from hypothesis import HealthCheck, Phase, given, settings  # pylint: disable=import-outside-toplevel
    from hypothesis import seed as hypothesis_seed  # pylint: disable=import-outside-toplevel
    from hypothesis import strategies as st  # pylint: disable=import-outside-toplevel
    import targets  # pylint: disable=import-outside-toplevel

    target = targets.make(key, env)
    runner = ModuleRunner(os.path.join(env.work, target.stem))
    playbooks = PlaybookRunner(runner.workdir) if playbook_every else None
    if getattr(target, 'inventory', False):  # an inventory plugin: every set is a source file
        runner, playbooks = InventoryRunner(runner.workdir), None
    records = []
    started = time.monotonic()

    def result(complete):
        return {'target': key, 'module': target.module, 'seed': seed, 'requested': count,
                'playbook_every': playbook_every, 'seconds': round(time.monotonic() - started, 1),
                'options': sorted(target.spec), 'complete': complete, 'finished': now(), 'records': records}
    try:
        target.setup()
        strategy = st.tuples(target.builder().argsets(), st.integers(0, 9), st.integers(0, 9))

        @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None, print_blob=False,
                  suppress_health_check=list(HealthCheck))
        @hypothesis_seed(seed)
        @given(strategy)
        def fuzz(example):
            if STOP:
                return
            (mode, args), check_draw, diff_draw = example
            index = len(records)
            via = 'playbook' if playbooks and index % playbook_every == 0 else 'module'
            record = call(target, runner, playbooks, via, args, mode, check_draw < 2, diff_draw < 3)
            # every successful change is made again, through the module: it must report no change
            if record['outcome'] == 'ok' and record['changed'] and not record['check']:
                again = call(target, runner, None, 'module', args, mode, False, False, restore=False)
                record['rerun'] = {'changed': again['changed'], 'outcome': again['outcome'],
                                   'problems': again['problems'], 'msg': again['msg']}
                by_design = again['changed'] and again['outcome'] == 'ok' and target.rerun_changes_by_design(args)
                if by_design:
                    record.setdefault('inconclusive', []).append('rerun changed by design: ' + by_design)
                elif again['changed'] or again['outcome'] != 'ok':
                    record['problems'].append('not_idempotent: the same set again reported changed=%s, %s: %s'
                                              % (again['changed'], again['outcome'], again.get('actions')))
                record['problems'].extend('rerun ' + p for p in again['problems'])
                if again.get('inconclusive'):
                    record.setdefault('inconclusive', []).extend('rerun ' + p for p in again['inconclusive'])
            if record['problems'] and 'args' not in record:
                secrets = secret_values(args, target.secret_paths) + list(target.extra_secrets)
                record['args'] = redact(args, secrets)
            record['index'] = index
            records.append(record)
            if log:
                flag = ' PROBLEM' if record['problems'] else (' INCONCLUSIVE' if record.get('inconclusive') else '')
                log.write('%s #%d %s %s %s %.1fs%s %s\n' % (key, index, record['via'], mode, record['outcome'],
                                                            record['seconds'], flag,
                                                            '; '.join(record['problems'])[:300]))
                if record['problems'] or record.get('inconclusive'):
                    log.write('    %s\n' % json.dumps(record, default=str)[:4000])
                log.flush()
            if save and len(records) % CHECKPOINT_EVERY == 0:
                save(result(False))
        fuzz()
    finally:
        target.teardown()
    # hypothesis may end a target early when its argument space is exhausted: complete unless stopped
    return result(not STOP)


STATE_PROBLEMS = ('unreported_change', 'check_mode_changed_state')


def call(target, runner, playbooks, via, args, mode, check_mode, diff, restore=True):
    """One call, judged. ``restore``: restore the target's base objects first (``before_call``) - not before the
    idempotence re-run of a set, which must find what the set's first call left."""
    if getattr(target, 'inventory', False):
        return call_inventory(target, runner, args, mode)
    if restore:
        target.before_call()
    secrets = secret_values(args, target.secret_paths) + list(target.extra_secrets)
    daemon = target.daemon()
    before = target.snapshot()
    if via == 'playbook':
        result, output, seconds, timed_out, rc = playbooks.run(target.module, args, check_mode, diff,
                                                               timeout=target.timeout + 120)
        after = target.snapshot()
        outcome, problems = judge_playbook(result, output, timed_out, before, after, check_mode, target.info,
                                           secrets, rc)
        changed = bool((result or {}).get('changed'))
        msg = str((result or {}).get('msg'))[:240] if (result or {}).get('msg') is not None else None
        actions = (result or {}).get('actions')
    else:
        rc, stdout, stderr, seconds, timed_out = runner.run(target.module, args, check_mode, diff,
                                                            timeout=target.timeout)
        after = target.snapshot()
        outcome, problems = judge(rc, stdout, stderr, timed_out, before, after, check_mode, target.info, secrets)
        changed = bool((parse_result(stdout) or {}).get('changed'))
        actions = (parse_result(stdout) or {}).get('actions')
        msg = short_msg(stdout)
        if problems and ('not_json' in problems[-1] or any(p.startswith('traceback') for p in problems)):
            msg = (stderr or stdout)[-1500:]
    record = {'via': via, 'mode': mode, 'check': check_mode, 'diff': diff, 'outcome': outcome, 'changed': changed,
              'seconds': round(seconds, 2), 'msg': msg, 'problems': problems, 'actions': actions}
    if target.daemon() != daemon:
        # someone else restarted libvirtd meanwhile: its reload, not the call, may be what changed the state
        record['inconclusive'] = ['libvirtd was restarted during the call (%s -> %s): %s'
                                  % (daemon, target.daemon(), p) for p in problems if p.startswith(STATE_PROBLEMS)]
        record['problems'] = problems = [p for p in problems if not p.startswith(STATE_PROBLEMS)]
    if problems or outcome == 'failed_after_change' or record.get('inconclusive'):
        record['args'] = redact(args, secrets)
        if before != after:
            record['state_diff'] = state_diff(before, after)
    return record


def _short(value):
    return json.dumps(value, default=str)[:300]


def state_diff(before, after):
    """What changed, by object, for a record: names, and the parts of their snapshots that differ."""
    changed = []
    for kind in sorted(set(before) | set(after)):
        old, new = before.get(kind), after.get(kind)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            for sub in sorted(set(old) | set(new)):
                a, b = old.get(sub), new.get(sub)
                if isinstance(a, dict) and isinstance(b, dict):
                    for name in sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n)):
                        old_item, new_item = a.get(name), b.get(name)
                        if isinstance(old_item, (list, tuple)) and isinstance(new_item, (list, tuple)):
                            parts = ['[%d] %s -> %s' % (i, _short(x), _short(y))
                                     for i, (x, y) in enumerate(zip(old_item, new_item)) if x != y]
                        else:
                            parts = ['%s -> %s' % (_short(old_item), _short(new_item))]
                        changed.append('%s/%s: %s: %s' % (kind, sub, name, '; '.join(parts)))
                elif a != b:
                    changed.append('%s/%s' % (kind, sub))
        else:
            changed.append(kind)
    return changed


# -- the whole run ----------------------------------------------------------------------------------------

def write_json(path, data, indent=None):
    """Write ``path`` atomically (a reader never sees half a file; a kill never leaves one)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile('w', dir=directory, prefix='.tmp-', delete=False) as handle:
        json.dump(data, handle, indent=indent, sort_keys=True, default=str)
    os.replace(handle.name, path)


def read_part(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--per-module', type=int, default=1000)
    parser.add_argument('--seed', type=int, default=8)
    parser.add_argument('--modules', default=','.join(TARGETS))
    parser.add_argument('--playbook-every', type=int, default=50,
                        help='every N-th set runs through ansible-playbook (0: none)')
    parser.add_argument('--jobs', type=int, default=3)
    parser.add_argument('--out', default='/var/tmp/virtfleet-fuzz.json',
                        help='results; rewritten whenever a target finishes (complete: false until the end)')
    parser.add_argument('--base', default='/var/lib/virtfleet-test/fuzz')
    parser.add_argument('--log', default=None, help='progress log (default: OUT with .log)')
    parser.add_argument('--parts', default=None,
                        help='directory for the per-target results the workers save as they go, kept after the '
                             'run (default: OUT with .parts); report.py reads them too')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--run-id', help='the run id (default: a random one)')
    parser.add_argument('--podman-path', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    # --run-id names the run (its objects are vft-fz-<stem>-<run id>-...): a caller that runs tests beside it tells
    # the run's objects from its own by it (tests/integration/test_hardening_fuzz.py)
    run_id = args.run_id or uuid.uuid4().hex[:4]
    if len(run_id) != 4 or run_id.strip('0123456789abcdef'):
        parser.error('--run-id: 4 hex digits (it goes into bridge names, at most 15 characters)')
    keys = [k for k in args.modules.split(',') if k]
    unknown = [k for k in keys if k not in TARGETS]
    if unknown:
        parser.error('unknown targets %s (known: %s)' % (', '.join(unknown), ', '.join(TARGETS)))
    os.environ['VIRTFLEET_COLLECTIONS_PATH'] = harness.collections_root()  # the workers test this checkout
    podman = {}  # podman-up.sh's outcome: {'path': ...} or {'error': ...}, found when a Podman target starts
    base = os.path.join(args.base, run_id)
    os.makedirs(base, exist_ok=True)
    stem = os.path.splitext(args.out)[0]
    log_path = args.log or stem + '.log'
    parts_dir = args.parts or stem + '.parts'
    os.makedirs(parts_dir, exist_ok=True)
    started = time.monotonic()
    parts = {}
    pending = list(keys)
    running = {}
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def summary(complete):
        return {'seed': args.seed, 'per_module': args.per_module, 'playbook_every': args.playbook_every,
                'run_id': run_id, 'seconds': round(time.monotonic() - started, 1), 'finished': now(),
                'complete': complete, 'requested_targets': keys,
                'platform': '%s, Python %s' % (platform.platform(), platform.python_version()),
                'versions': versions(), 'targets': [parts[k] for k in keys if k in parts]}

    # Podman is set up (tests/env/podman-up.sh: an install on a fresh machine) beside the first libvirt targets,
    # not before them; the Podman targets wait for it, and so do the vSphere ones (whose tests/env/vcsim-up.sh may
    # install Debian packages too: one apt-get at a time)
    setup = threading.Thread(target=lambda: podman.update(podman_setup()), daemon=True)
    if any(k in PODMAN_TARGETS for k in keys):
        setup.start()

    with open(log_path, 'w') as log:
        while pending or running:
            if STOP:
                pending = []
                for key, (proc, part, stopping) in list(running.items()):
                    if not stopping:
                        proc.terminate()  # the worker skips the remaining sets, cleans up and saves what it did
                        running[key] = (proc, part, True)
            while pending and len(running) < max(1, args.jobs):
                startable = [k for k in pending if backend(k) == 'libvirt' or not setup.is_alive()]
                if not startable:
                    break
                key = next_target(startable, running, args.jobs)
                pending.remove(key)
                part = os.path.join(parts_dir, 'part-%s-%s.json' % (run_id, key.replace('@', '-')))
                cmd = [sys.executable, os.path.abspath(__file__), '--worker', key, '--run-id', run_id,
                       '--per-module', str(args.per_module), '--seed', str(args.seed), '--out', part,
                       '--base', base, '--playbook-every', str(args.playbook_every), '--log', log_path + '.' + key]
                if key in PODMAN_TARGETS:
                    # only the Podman targets need Podman: when it cannot be set up, they fail, the others run
                    if not podman:  # the setup thread ended without a word
                        podman['error'] = 'tests/env/podman-up.sh: the setup ended without a result'
                    if 'error' in podman:
                        parts[key] = {'target': key, 'records': [], 'complete': False, 'finished': now(),
                                      'error': podman['error']}
                        log.write('%s %s not run: %s\n' % (now(), key, podman['error']))
                        log.flush()
                        write_json(args.out, summary(False), indent=1)
                        continue
                    cmd += ['--podman-path', podman['path']]
                # its own session: a Ctrl-C on the terminal reaches this process only, which stops the workers
                proc = subprocess.Popen(cmd, start_new_session=True)  # pylint: disable=consider-using-with
                running[key] = (proc, part, False)
                log.write('%s started %s\n' % (now(), key))
                log.flush()
            time.sleep(0.2)  # a finished worker's slot is given to the next target at once, not up to 1 s later
            for key in list(running):
                proc, part, _stopping = running[key]
                if proc.poll() is None:
                    continue
                del running[key]
                parts[key] = read_part(part) or {'target': key, 'records': [], 'complete': False, 'finished': now(),
                                                 'error': 'the worker exited with %s and saved no results'
                                                          % proc.returncode}
                if proc.returncode and not parts[key].get('error'):
                    parts[key]['error'] = 'the worker exited with %s' % proc.returncode
                log.write('%s finished %s (rc %s, %d sets%s)\n'
                          % (now(), key, proc.returncode, len(parts[key].get('records') or []),
                             '' if parts[key].get('complete') else ', incomplete'))
                log.flush()
                write_json(args.out, summary(False), indent=1)
    done = summary(not STOP and all(t.get('complete') and not t.get('error') for t in parts.values()))
    write_json(args.out, done, indent=1)
    shutil.rmtree(base, ignore_errors=True)
    problems = sum(1 for t in done['targets'] for r in t['records'] if r['problems'])
    errors = [t['target'] for t in done['targets'] if t.get('error')]
    incomplete = [t['target'] for t in done['targets'] if not t.get('complete')]
    print('%d targets, %d sets, %d with problems%s%s; results in %s'
          % (len(done['targets']), sum(len(t['records']) for t in done['targets']), problems,
             ', workers failed: ' + ', '.join(errors) if errors else '',
             ', incomplete: ' + ', '.join(incomplete) if incomplete else '', args.out))
    return 1 if problems or errors or not done['complete'] else 0


PODMAN_TARGETS = ('container', 'container_network', 'container_volume', 'container_pod', 'container_image',
                  'container_info')

# About how long each target takes in the quick slice (12 sets, tests/integration/test_hardening_fuzz.py), in
# seconds: 12 times its seconds per set in the 1000-set run (tests/hardening/results/part-*.json.gz), plus its
# setup (a simulator of its own for a vSphere target, the two hosts for migrate, Podman objects); Podman's
# container_network and container_volume, which have no 1000-set part, from a quick-slice run beside container.
# Used only for the order the targets start in: the longest first, so that no long target starts last and runs on
# alone while the other slots are idle (the run ends with its longest tail). A target not listed (a new one) counts
# as DEFAULT_SECONDS of its backend: it starts early rather than late.
EXPECTED_SECONDS = {
    'container': 41, 'container_network': 45, 'container_volume': 35, 'container_info': 20,
    'storage_pool_info@vsphere': 32, 'vm@vsphere': 31, 'network@vsphere': 29, 'storage_pool@vsphere': 29,
    'migrate@vsphere': 22, 'network_info@vsphere': 21, 'vm_info@vsphere': 20, 'host_info@vsphere': 19,
    'vm_snapshot@vsphere': 15, 'vm_snapshot_info@vsphere': 15, 'inventory@vsphere': 20,
    'migrate': 24, 'storage_pool': 20, 'volume': 19, 'storage_pool_info': 17, 'volume_info': 17,
    'fleet': 16, 'network_info': 16, 'host_info': 16, 'cloud_init_seed': 15, 'vm_info': 15,
    'vm': 13, 'network': 13, 'vm_snapshot': 12, 'vm_snapshot_info': 10,
}
DEFAULT_SECONDS = {'libvirt': 30, 'podman': 45, 'vsphere': 35}


def backend(key):
    """What a target's calls go to: ``podman``, ``vsphere`` (a simulator of the target's own) or ``libvirt``."""
    if key in PODMAN_TARGETS:
        return 'podman'
    return 'vsphere' if key.endswith('@vsphere') else 'libvirt'


def expected_seconds(key):
    return EXPECTED_SECONDS.get(key, DEFAULT_SECONDS[backend(key)])


def next_target(pending, running, jobs):
    """The target to start next: the longest expected of ``pending`` (longest-first keeps a long target from
    running alone at the end), skipping a target whose backend already has ``jobs - 1`` targets running while a
    target of another backend waits: Podman and vSphere targets run beside libvirt ones instead of all the
    Podman targets queueing on Podman's locks at once, and libvirtd is never the only thing busy."""
    order = sorted(pending, key=lambda k: (-expected_seconds(k), pending.index(k)))
    busy = {}
    for key in running:
        busy[backend(key)] = busy.get(backend(key), 0) + 1
    cap = max(1, jobs - 1)
    for key in order:
        if busy.get(backend(key), 0) < cap:
            return key
    return order[0]


def podman_setup():
    """``{'path': podman command}`` ($VIRTFLEET_PODMAN_PATH or tests/env/podman-up.sh), or ``{'error': why not}``."""
    if os.environ.get('VIRTFLEET_PODMAN_PATH'):
        return {'path': os.environ['VIRTFLEET_PODMAN_PATH']}
    try:
        return {'path': harness.env_script('podman-up.sh')}
    except subprocess.CalledProcessError as exc:
        return {'error': 'tests/env/podman-up.sh failed (exit %s): %s'
                         % (exc.returncode, ((exc.stderr or '') + (exc.stdout or '')).strip()[-1500:])}
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {'error': 'tests/env/podman-up.sh could not run: %s' % exc}


def versions():
    found = {}
    try:
        import ansible  # pylint: disable=import-outside-toplevel
        from ansible.release import __version__ as ansible_version  # pylint: disable=import-outside-toplevel
        found['ansible-core'] = ansible_version
        del ansible
    except ImportError:
        pass
    try:
        import hypothesis  # pylint: disable=import-outside-toplevel
        found['hypothesis'] = hypothesis.__version__
    except ImportError:
        pass
    try:
        import libvirt  # pylint: disable=import-outside-toplevel
        found['libvirt'] = '%d.%d.%d' % (libvirt.getVersion() // 1000000, libvirt.getVersion() // 1000 % 1000,
                                         libvirt.getVersion() % 1000)
    except Exception:  # pylint: disable=broad-except
        pass
    return found


def _stop(_signum, _frame):
    STOP.append(True)


def worker(args):
    import targets  # pylint: disable=import-outside-toplevel
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    env = targets.Env(args.run_id, args.base, args.podman_path)
    with open(args.log, 'w') as log:
        try:
            result = run_target(args.worker, env, args.per_module, args.seed, args.playbook_every, log,
                                save=lambda partial: write_json(args.out, partial))
        except Exception:  # pylint: disable=broad-except
            saved = read_part(args.out) or {'target': args.worker, 'records': []}
            saved.update(complete=False, finished=now(), error=traceback.format_exc()[-2000:])
            write_json(args.out, saved)
            raise
    write_json(args.out, result)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Running one generated argument set through a real module, and judging the outcome.

A module runs the way Ansible runs it on the managed host: a child process of the test venv's
python (``python -m ansible_collections.virtfleet.virt.plugins.modules.<name> ARGS_FILE``, the
file holding ``{"ANSIBLE_MODULE_ARGS": {...}}``), against the real daemon. Around each call the
harness snapshots what the call may change (the run's own libvirt domains, networks, pools and
volumes; Podman containers, volumes and networks; vSphere VMs, port groups and datastores) and checks:

- the output is one JSON object; a failure carries a non-empty ``msg``; never a Python traceback
  (``exception`` only for a missing library);
- a call that reports ``changed: false`` (a failure included) and any check-mode call leaves the
  snapshot as it was; an info module never reports a change;
- the call ends within its time bound;
- no secret it was given (``no_log`` options, passwords) appears in its stdout or stderr.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ENV_DIR = os.path.join(REPO, 'tests', 'env')
URI = 'qemu:///system'
MODULE_PACKAGE = 'ansible_collections.virtfleet.virt.plugins.modules.'
MISSING_LIB = 'Failed to import the required Python library'
TRACEBACK_MARKERS = ('Traceback (most recent call last)', 'MODULE FAILURE')
# Every fuzz target (targets.py), in the report's order: a module against libvirtd or Podman, or ``<module>@vsphere``
# against a vCenter simulator of the target's own; ``inventory@vsphere`` is the vsphere inventory plugin's source file.
TARGETS = ('vm', 'fleet', 'network', 'container', 'container_network', 'container_volume', 'container_pod',
           'container_image',
           'storage_pool', 'volume',
           'cloud_init_seed', 'migrate',
           'vm_info', 'network_info', 'host_info', 'storage_pool_info', 'volume_info', 'container_info',
           'vm_snapshot', 'vm_snapshot_info',
           'vm@vsphere', 'network@vsphere', 'storage_pool@vsphere', 'migrate@vsphere', 'vm_info@vsphere',
           'host_info@vsphere', 'network_info@vsphere', 'storage_pool_info@vsphere', 'vm_snapshot@vsphere',
           'vm_snapshot_info@vsphere', 'inventory@vsphere')

# Environment variables the modules read as fallbacks: never inherited from the caller.
SCRUBBED_ENV = ('LIBVIRT_DEFAULT_URI', 'VIRTFLEET_USERNAME', 'VIRTFLEET_PASSWORD', 'VMWARE_HOST', 'VMWARE_PORT',
                'VMWARE_USER', 'VMWARE_PASSWORD', 'VMWARE_VALIDATE_CERTS', 'VMWARE_CA_PATH', 'VMWARE_PROXY_HOST',
                'VMWARE_PROXY_PORT')


def sh(*argv, check=True, timeout=600, env=None):
    return subprocess.run([str(a) for a in argv], check=check, capture_output=True, text=True, timeout=timeout,
                          env=env)


def env_script(name, *args, env=None):
    """Run tests/env/<name> and return the last line it printed."""
    out = sh('bash', os.path.join(ENV_DIR, name), *args, env=env).stdout.strip().splitlines()
    return out[-1] if out else ''


def collections_root():
    """A collections path whose virtfleet.virt is this checkout (refusing one that is another checkout)."""
    root = os.environ.get('VIRTFLEET_COLLECTIONS_PATH') or env_script('collection.sh')
    found = os.path.realpath(os.path.join(root, 'ansible_collections', 'virtfleet', 'virt'))
    if found != os.path.realpath(REPO):
        raise RuntimeError('%s holds virtfleet.virt from %s, not from this checkout %s' % (root, found, REPO))
    return root


def venv_python():
    venv = os.environ.get('VIRTFLEET_VENV_DIR')
    return os.path.join(venv, 'bin', 'python') if venv else sys.executable


# -- running a module ------------------------------------------------------------------------------

class ModuleRunner:
    """Runs collection modules as child processes, as Ansible runs them on the managed host."""

    def __init__(self, workdir, python=None, root=None):
        self.workdir = workdir
        self.python = python or venv_python()
        root = root or collections_root()
        env = dict((k, v) for k, v in os.environ.items() if k not in SCRUBBED_ENV)
        env['PYTHONPATH'] = root + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
        env['LC_ALL'] = env['LANG'] = 'C.UTF-8'
        self.env = env
        self.cwd = os.path.join(workdir, 'cwd')
        os.makedirs(self.cwd, exist_ok=True)

    def run(self, module, args, check_mode=False, diff=False, verbosity=0, timeout=120):
        """Return ``(rc, stdout, stderr, seconds, timed_out)``."""
        payload = dict(args)
        payload.update(_ansible_check_mode=check_mode, _ansible_diff=diff, _ansible_verbosity=verbosity)
        fd, path = tempfile.mkstemp(prefix='args-', suffix='.json', dir=self.workdir)
        with os.fdopen(fd, 'w') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': payload}, handle)
        started = time.monotonic()
        proc = subprocess.Popen([self.python, '-m', MODULE_PACKAGE + module, path], cwd=self.cwd, env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            out, err = proc.communicate()
        finally:
            os.unlink(path)
        return (proc.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace'),
                time.monotonic() - started, timed_out)


def parse_result(stdout):
    """The module's JSON result, or None when stdout is not exactly one JSON object."""
    text = stdout.strip()
    if not text.startswith('{'):
        return None
    try:
        result = json.loads(text)
    except ValueError:
        return None
    return result if isinstance(result, dict) else None


# -- secrets ----------------------------------------------------------------------------------------

_SECRET_CORE = re.compile(r'Vf[0-9a-f]{12}')


def secret_values(args, paths):
    """The secret strings of ``args`` at the option ``paths`` (lists are searched item by item)."""
    found = []

    def walk(value, rest):
        if not rest:
            collect(value)
            return
        if isinstance(value, list):
            for item in value:
                walk(item, rest)
        elif isinstance(value, dict) and rest[0] in value:
            walk(value[rest[0]], rest[1:])

    def collect(value):
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)
    for path in paths:
        walk(args, path)
    return found


def leaked(secrets, *texts):
    """Secrets (or their distinctive cores) that show up in ``texts``."""
    blob = '\n'.join(texts)
    leaks = []
    for secret in secrets:
        cores = _SECRET_CORE.findall(secret)
        if cores:
            if any(core in blob for core in cores):
                leaks.append(secret)
        elif len(secret) >= 8 and secret in blob:
            leaks.append(secret)
    return leaks


# -- judging one call -----------------------------------------------------------------------------------

def judge(rc, stdout, stderr, timed_out, before, after, check_mode, info, secrets):
    """``(outcome, problems)``: outcome ok/failed/failed_after_change/timeout/crash, and invariant violations."""
    problems = []
    result = parse_result(stdout)
    if timed_out:
        return 'timeout', ['timeout: the call did not end within its bound']
    for marker in TRACEBACK_MARKERS:
        if marker in stdout or marker in stderr:
            problems.append('traceback: %s in the output' % marker)
    if result is None:
        problems.append('not_json: stdout is not one JSON object (rc %s): %r' % (rc, (stdout or stderr)[-300:]))
        return 'crash', problems
    failed = bool(result.get('failed'))
    changed = bool(result.get('changed'))
    # (ansible-playbook registers "(traceback unavailable)" for every failure without one)
    if 'exception' in result and MISSING_LIB not in str(result.get('msg')) and \
            result['exception'] != '(traceback unavailable)':
        problems.append('exception: %s' % str(result['exception'])[-300:])
    if failed and (not isinstance(result.get('msg'), str) or not result['msg'].strip()):
        problems.append('no_msg: failed without a message')
    if failed != (rc != 0):
        problems.append('rc: exit code %s with failed=%s' % (rc, failed))
    if before != after:
        if check_mode:
            problems.append('check_mode_changed_state: check mode changed the hypervisor')
        elif not changed:
            problems.append('unreported_change: changed=false (failed=%s) but the hypervisor changed' % failed)
    if info and changed:
        problems.append('info_changed: an info module reported a change')
    leaks = leaked(secrets, stdout, stderr)
    if leaks:
        problems.append('secret_leak: %d secret(s) in the output' % len(leaks))
    if not failed:
        outcome = 'ok'
    elif changed or before != after:
        outcome = 'failed_after_change'
    else:
        outcome = 'failed'
    return outcome, problems


def short_msg(stdout, limit=240):
    result = parse_result(stdout) or {}
    msg = result.get('msg')
    return str(msg)[:limit] if msg is not None else None


def redact(value, secrets):
    """``value`` (args) with each secret replaced, for logs and reports."""
    text = json.dumps(value, sort_keys=True, default=str)
    for secret in secrets:
        if secret:
            text = text.replace(json.dumps(secret)[1:-1], '<secret>')
    return json.loads(text)

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin adapter over the podman command line.

Why the CLI and not the REST API: Podman is daemonless.  The REST API needs
``podman system service`` running (a socket, a systemd unit or a process to
manage), while the ``podman`` binary is always there when Podman is, runs as
the same user, and prints machine-readable JSON (``inspect``, ``--format
json``).  Every call is one argv list run without a shell.

A failed call never escapes as ``CalledProcessError``: it becomes ``NotFound``
when podman says the object does not exist and ``BackendError`` (with podman's
own message) otherwise.  A missing podman binary is a ``BackendError`` naming
``podman_path``: podman is a program, not a Python library.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound

# podman's ways of saying "there is no such object"
_NOT_FOUND = re.compile(r'no such (container|object|image|volume|network)|no container with name or id'
                        r'|image not known|network not found|unable to find network|volume not found'
                        r'|no such pod', re.I)
# the `podman ps` states of a container whose processes are up: a change to what it uses would disrupt it
RUNNING_STATES = ('running', 'paused', 'stopping', 'restarting')
# podman's Go logger prefixes ('time="..." level=warning msg="..."') and CLI prefix ('Error: ')
_LOG_LINE = re.compile(r'^time="[^"]*" level=(\w+) msg="(.*)"$')


def entry_names(entries):
    """The name (or short ID) of each `podman ps` entry, sorted."""
    return sorted((entry.get('Names') or [entry.get('Id', '?')[:12]])[0] for entry in entries)


def argument_spec():
    """Options that reach podman (doc fragment ``virtfleet.virt.podman``)."""
    return dict(
        podman_path=dict(type='str', default='podman'),
    )


def from_params(params):
    """``_module.CLIENT_FACTORIES['podman']``: the client for one module run."""
    return PodmanClient(params.get('podman_path') or 'podman')


def _message(stderr):
    """podman's error message from its stderr: the ``Error:`` lines, else the last warnings."""
    errors, others = [], []
    for line in stderr.splitlines():
        line = line.strip()
        if not line:
            continue
        match = _LOG_LINE.match(line)
        if match:
            if match.group(1) in ('error', 'fatal'):
                errors.append(match.group(2))
            else:
                others.append(match.group(2))
        elif line.startswith('Error: '):
            errors.append(line[len('Error: '):])
        else:
            others.append(line)
    return '; '.join(errors or others[-3:]) or 'no message on stderr'


def _version_tuple(text):
    numbers = re.findall(r'\d+', text or '')[:3]
    return tuple(int(n) for n in numbers) + (0,) * (3 - len(numbers))


class PodmanClient:
    """Runs ``podman`` (or the program at ``podman_path``) and parses its JSON."""

    def __init__(self, path='podman'):
        self.path = path
        self._info = None
        self._version = None

    def close(self):
        """Nothing to close: every call is its own process."""

    # -- running podman -------------------------------------------------------
    def run(self, args, what, ok_codes=(0,)):
        """Run ``podman args...``; return ``(rc, stdout)``, raising our typed errors on failure."""
        argv = [self.path] + [str(a) for a in args]
        env = dict(os.environ, LC_ALL='C', LANG='C')
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env, check=False)
        except ValueError:  # subprocess refuses a NUL character in an argument
            raise BackendError('%s failed: an argument contains a NUL character, which podman cannot take; remove '
                               'it' % what)
        except OSError as exc:
            raise BackendError('cannot run podman as %r (%s): install Podman on the managed host (Debian/Ubuntu: '
                               'apt-get install podman; RHEL/Fedora: dnf install podman) or set podman_path to '
                               'the podman executable' % (self.path, exc.strerror or exc))
        stdout = proc.stdout.decode('utf-8', 'replace')
        if proc.returncode in ok_codes:
            return proc.returncode, stdout
        message = _message(proc.stderr.decode('utf-8', 'replace'))
        if _NOT_FOUND.search(message):
            raise NotFound('%s: %s' % (what, message))
        raise BackendError('%s failed: %s' % (what, message), rc=proc.returncode,
                           exists='already in use' in message or 'already exists' in message)

    def _json(self, args, what):
        out = self.run(args, what)[1]
        try:
            return json.loads(out) if out.strip() else None
        except ValueError:
            raise BackendError('%s: podman printed something that is not JSON: %r' % (what, out[:200]))

    # -- the engine -------------------------------------------------------------
    def info(self):
        if self._info is None:
            self._info = self._json(['info', '--format', 'json'], 'reading podman info') or {}
        return self._info

    def version(self):
        """Podman's version as a tuple of three integers."""
        if self._version is None:
            data = self._json(['version', '--format', 'json'], 'reading the podman version') or {}
            client = data.get('Client') or data.get('Server') or {}
            self._version = _version_tuple(client.get('Version'))
        return self._version

    def persistent_update(self):
        """True when ``podman update`` changes are stored (Podman 5.1+ on the SQLite database).

        Older Podman (and BoltDB) apply ``podman update`` to the cgroup only: it is lost at
        the next start and ``podman inspect`` never shows it, so callers recreate instead.
        """
        if self.version() < (5, 1, 0):
            return False
        return (self.info().get('host') or {}).get('databaseBackend') == 'sqlite'

    # -- containers -------------------------------------------------------------
    def inspect_container(self, name):
        found = self._json(['container', 'inspect', name], 'inspecting container %s' % name) or []
        if not found:
            raise NotFound('inspecting container %s: no such container' % name)
        return found[0]

    def _inspect_many(self, command, refs, inspect_one, what):
        """``podman <command> REF...`` of several objects at once; ones removed meanwhile are left out (Podman
        fails the whole call for one missing object: then each is inspected alone)."""
        if not refs:
            return []
        try:
            return self._json(command + list(refs), what) or []
        except NotFound:
            found = []
            for ref in refs:
                try:
                    found.append(inspect_one(ref))
                except NotFound:
                    pass
            return found

    def inspect_containers(self, refs):
        """``podman inspect`` of several containers at once; ones removed meanwhile are left out."""
        return self._inspect_many(['container', 'inspect'], refs, self.inspect_container, 'inspecting containers')

    def list_containers(self):
        """``podman ps --all`` entries (Id, Names, State, Labels, ...)."""
        return self._json(['ps', '--all', '--format', 'json'], 'listing containers') or []

    def create_container(self, options, image, command=None):
        args = ['create'] + list(options) + [image] + list(command or [])
        return self.run(args, 'creating container')[1].strip().splitlines()[-1]

    def start_container(self, name):
        self.run(['start', name], 'starting container %s' % name)

    def stop_container(self, name, timeout=None):
        args = ['stop'] + (['--time', int(timeout)] if timeout is not None else []) + [name]
        self.run(args, 'stopping container %s' % name)

    def pause_container(self, name):
        self.run(['pause', name], 'pausing container %s' % name)

    def unpause_container(self, name):
        self.run(['unpause', name], 'unpausing container %s' % name)

    def remove_container(self, name, force=False):
        """Remove ``name`` and its anonymous volumes (named volumes are kept)."""
        args = ['rm', '--volumes'] + (['--force', '--time', '0'] if force else []) + [name]
        self.run(args, 'removing container %s' % name)

    def rename_container(self, name, new_name):
        self.run(['rename', name, new_name], 'renaming container %s to %s' % (name, new_name))

    def update_container(self, name, options):
        self.run(['update'] + list(options) + [name], 'updating container %s' % name)

    def run_healthcheck(self, name):
        """Run the container's healthcheck once (``podman healthcheck run``); podman records the result in its
        health log. True when the check passed."""
        return self.run(['healthcheck', 'run', name], 'running the healthcheck of container %s' % name,
                        ok_codes=(0, 1))[0] == 0

    def container_logs(self, name, tail=5):
        try:
            return self.run(['logs', '--tail', int(tail), name], 'reading the log of container %s' % name)[1]
        except BackendError:
            return ''

    # -- images, networks -------------------------------------------------------
    def inspect_image(self, ref):
        found = self._json(['image', 'inspect', ref], 'inspecting image %s' % ref) or []
        if not found:
            raise NotFound('inspecting image %s: image not known' % ref)
        return found[0]

    def pull_image(self, ref):
        self.run(['pull', '--quiet', ref], 'pulling image %s' % ref)

    def network_exists(self, name):
        return self.run(['network', 'exists', name], 'looking up network %s' % name, ok_codes=(0, 1))[0] == 0

    def volume_exists(self, name):
        return self.run(['volume', 'exists', name], 'looking up volume %s' % name, ok_codes=(0, 1))[0] == 0

    def remove_volume(self, name):
        self.run(['volume', 'rm', name], 'removing volume %s' % name)

    def list_network_names(self):
        return sorted(n.get('name') or n.get('Name') for n in
                      self._json(['network', 'ls', '--format', 'json'], 'listing networks') or [])

    def network_connect(self, network, name):
        self.run(['network', 'connect', network, name], 'connecting container %s to network %s' % (name, network))

    def network_disconnect(self, network, name):
        self.run(['network', 'disconnect', network, name],
                 'disconnecting container %s from network %s' % (name, network))

    # -- networks and volumes as objects (container_network, container_volume) -----------------
    def inspect_network(self, name):
        found = self._json(['network', 'inspect', name], 'inspecting network %s' % name) or []
        if not found:
            raise NotFound('inspecting network %s: network not found' % name)
        return found[0]

    def inspect_networks(self):
        """``podman network inspect`` of every network (one call)."""
        names = self.list_network_names()
        if not names:
            return []
        try:
            return self._json(['network', 'inspect'] + names, 'inspecting networks') or []
        except NotFound:  # one was removed meanwhile
            found = []
            for name in names:
                try:
                    found.append(self.inspect_network(name))
                except NotFound:
                    pass
            return found

    def create_network(self, args):
        self.run(['network', 'create'] + list(args), 'creating network %s' % args[-1])

    def remove_network(self, name):
        """Remove network ``name``; never with --force, which would remove the containers on it."""
        self.run(['network', 'rm', name], 'removing network %s' % name)

    def containers_using(self, kind, name):
        """``podman ps --all`` entries of the containers that use network or volume ``name``."""
        return self._json(['ps', '--all', '--filter', '%s=%s' % (kind, name), '--format', 'json'],
                          'listing the containers that use %s %s' % (kind, name)) or []

    def inspect_volume(self, name):
        found = self._json(['volume', 'inspect', name], 'inspecting volume %s' % name) or []
        if not found:
            raise NotFound('inspecting volume %s: no such volume' % name)
        return found[0]

    def list_volume_names(self):
        return sorted(v.get('Name') or v.get('name') for v in
                      self._json(['volume', 'ls', '--format', 'json'], 'listing volumes') or [])

    def create_volume(self, args):
        self.run(['volume', 'create'] + list(args), 'creating volume %s' % args[-1])

    def remove_volume_forced(self, name):
        """``podman volume rm --force``: removes the containers that use the volume first."""
        self.run(['volume', 'rm', '--force', name], 'removing volume %s' % name)

    # -- pods (container_pod) ----------------------------------------------------------------
    def inspect_pod(self, name):
        found = self._json(['pod', 'inspect', name], 'inspecting pod %s' % name)
        if isinstance(found, list):  # Podman 5 prints a list, Podman 4 one object
            found = found[0] if found else None
        if not found:
            raise NotFound('inspecting pod %s: no such pod' % name)
        return found

    def list_pod_names(self):
        return sorted(p.get('Name') for p in self._json(['pod', 'ps', '--format', 'json'], 'listing pods') or [])

    def pod_exists(self, name):
        return self.run(['pod', 'exists', name], 'looking up pod %s' % name, ok_codes=(0, 1))[0] == 0

    def create_pod(self, args):
        return self.run(['pod', 'create'] + list(args), 'creating pod %s' % args[args.index('--name') + 1])[1].strip()

    def remove_pod(self, name, force=False):
        """Remove pod ``name``; with ``force``, Podman stops and removes its containers first."""
        self.run(['pod', 'rm'] + (['--force', '--time', '0'] if force else []) + [name], 'removing pod %s' % name)

    # -- images as objects (container_image) ---------------------------------------------------
    def run_logged(self, args, what, timeout, tail=12):
        """Run a long podman command (build, pull, load) with a timeout; on failure, the message ends with the
        last ``tail`` lines of its output (a build's log)."""
        argv = [self.path] + [str(a) for a in args]
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, LC_ALL='C', LANG='C'), check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BackendError('%s did not finish within timeout (%s s): raise timeout, or check what podman '
                               'waits for (a registry, a slow build step)' % (what, timeout))
        except (OSError, ValueError) as exc:
            raise BackendError('cannot run podman as %r for %s (%s): install Podman or set podman_path'
                               % (self.path, what, exc))
        out = proc.stdout.decode('utf-8', 'replace')
        if proc.returncode != 0:
            lines = [line for line in out.splitlines() if line.strip()][-tail:]
            raise BackendError('%s failed (exit %d): %s' % (what, proc.returncode, '\n'.join(lines) or 'no output'),
                               rc=proc.returncode)
        return out

    def list_images(self):
        """``podman images --format json`` entries (Id, Names, Labels, ...)."""
        return self._json(['images', '--format', 'json'], 'listing images') or []

    def tag_image(self, image, ref):
        self.run(['tag', image, ref], 'tagging image %s as %s' % (image[:12], ref))

    def untag_image(self, image, ref):
        self.run(['untag', image, ref], 'removing the name %s of image %s' % (ref, image[:12]))

    def remove_image(self, image, force=False):
        """``podman rmi``; with ``force``, the containers that use the image are removed with it."""
        self.run(['rmi'] + (['--force'] if force else []) + [image], 'removing image %s' % image)

    def containers_using_image(self, image_id):
        """``podman ps --all`` entries of the containers made from image ``image_id`` (or an image built on it)."""
        return self._json(['ps', '--all', '--filter', 'ancestor=%s' % image_id, '--format', 'json'],
                          'listing the containers that use image %s' % image_id[:12]) or []

    def inspect_images(self, refs):
        """``podman image inspect`` of several images at once; ones removed meanwhile are left out."""
        return self._inspect_many(['image', 'inspect'], refs, self.inspect_image, 'inspecting images')

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Healthchecks of Podman containers: the ``podman create`` options of a healthcheck, the
healthcheck read back from ``podman inspect``, and what ``_reconcile``'s ``wait_healthy`` reads
(the health status and log) and runs (one check).

Podman runs a container's checks from a systemd timer every ``interval``. Without systemd (a
container or a mount namespace without a systemd connection, as on the test machines) podman logs
``unable to get systemd connection to add healthchecks`` and no check ever runs by itself: the
status stays ``starting``. So the wait runs ``podman healthcheck run`` itself, every ``interval``
while no check ran otherwise (``_reconcile._wait_healthy``).
"""

from __future__ import annotations

import json

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_health as chealth
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def health_options(spec):
    """``podman create`` options of ``spec['healthcheck']`` (none: the image's healthcheck)."""
    check = spec.get('healthcheck')
    if not check:
        return []
    if check['test'] == chealth.DISABLED:
        return ['--no-healthcheck']
    opts = ['--health-cmd', json.dumps(check['test'])]
    if 'interval' in check:
        opts += ['--health-interval', 'disable' if chealth.seconds(check['interval']) == 0 else check['interval']]
    if 'timeout' in check:
        opts += ['--health-timeout', check['timeout']]
    if 'retries' in check:
        opts += ['--health-retries', str(check['retries'])]
    if 'start_period' in check:
        opts += ['--health-start-period', check['start_period']]
    return opts


def normalize(config, image_config):
    """The container's healthcheck in the spec: ``None`` when it is the image's own (a new image brings its
    own), else the canonical form."""
    raw = config.get('Healthcheck')
    if raw and raw == image_config.get('Healthcheck'):
        return None
    return chealth.from_inspect(raw)


def effective(spec, image_config):
    """The healthcheck the container runs: its own, else its image's; ``None`` when none (or disabled)."""
    check = spec.get('healthcheck')
    if check is None:
        check = chealth.from_inspect(image_config.get('Healthcheck'))
    if not check or check['test'] == chealth.DISABLED:
        return None
    return check


def check_health(spec, image_config):
    """Refuse ``wait_healthy`` for a spec without a healthcheck (before anything is written)."""
    if spec.get('image_id') is None:
        return  # to be pulled: its healthcheck is not known yet (the wait says so when there is none)
    if effective(spec, image_config) is None:
        raise SpecError('wait_healthy', 'the container has no healthcheck (%s): set healthcheck.test, or leave '
                                        'wait_healthy out'
                        % ('disabled' if (spec.get('healthcheck') or {}).get('test') == chealth.DISABLED
                           else 'none in the spec or the image'))


def health(data):
    """What ``wait_healthy`` reads: ``{'status', 'running', 'state', 'exit_code', 'failing_streak', 'log',
    'interval' (s), 'configured'}`` from ``podman inspect`` data."""
    state = data.get('State') or {}
    found = state.get('Health') or state.get('Healthcheck') or {}
    raw = (data.get('Config') or {}).get('Healthcheck') or {}
    configured = bool(raw.get('Test')) and raw['Test'][0] != 'NONE'
    log = [{'exit_code': entry.get('ExitCode'), 'output': (entry.get('Output') or '').strip(),
            'start': entry.get('Start'), 'end': entry.get('End')} for entry in found.get('Log') or []]
    return {'status': found.get('Status') or ('starting' if configured else None), 'configured': configured,
            'running': state.get('Status') == 'running', 'state': state.get('Status'),
            'exit_code': state.get('ExitCode'), 'failing_streak': found.get('FailingStreak') or 0,
            'log': log, 'interval': (raw.get('Interval') or 0) / float(chealth.SECOND)}

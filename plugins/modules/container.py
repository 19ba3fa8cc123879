#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container
short_description: Manage Podman containers from a declared spec
version_added: 0.1.0
description:
  - Creates, updates, starts, stops and removes a Podman container so that it matches the options given.
  - Idempotent on the normalized state read back from C(podman inspect), not on the command line that created the
    container - ports, volumes, networks, units and restart policies are compared in one canonical form, and
    environment variables, labels and the command the image (or podman) sets by itself never count as a change.
  - Options left out are not changed. Options given as lists or dicts (O(env), O(labels), O(ports), O(volumes),
    O(networks)) are complete - what is not listed is removed.
  - Networks change in place (C(podman network connect)/C(disconnect)). O(memory), O(cpus) and O(restart_policy)
    change in place with C(podman update) on Podman 5.1 and later with the SQLite database, which keeps such
    updates. Older Podman applies C(podman update) only to the running cgroup, loses it at the next start and does
    not show it in C(podman inspect), so there those changes recreate the container.
  - Every other change recreates the container and says so (RV(recreated), RV(recreate_reasons)). The new container
    is created under a temporary name first (which checks the image, volumes and networks) and only then replaces
    the old one, in the same run state. If it does not start, the old container is put back as it was.
author:
  - virtfleet.virt developers (@virtfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - virtfleet.virt.podman
attributes:
  check_mode:
    support: full
    details: Predicts C(changed), RV(actions), RV(recreated) and RV(recreate_reasons); changes nothing.
  diff_mode:
    support: full
    details: Before and after of the run state and the normalized spec.
  platform:
    platforms: posix
options:
  name:
    description: Container name, unique on the host.
    type: str
    required: true
  state:
    description:
      - V(present) - the container exists (a new one is created, not started); its run state is left alone.
      - V(started) (alias V(running)) - it exists and runs. A container that exits right after it starts is an
        error that shows its last output.
      - V(stopped) - it exists and is stopped (C(podman stop), which kills after O(stop_timeout)).
      - V(absent) - it is stopped and removed with its anonymous volumes; named volumes and host paths are kept.
    type: str
    choices: [present, started, running, stopped, absent]
    default: present
  image:
    description:
      - Image reference, such as V(localhost/app:1.0) or V(quay.io/org/app@sha256:...). Required to create a
        container.
      - Compared by the image ID it names in local storage, so another name of the same image is no change, and a tag
        that now names another image recreates the container.
      - An image missing from local storage is pulled (see O(pull)); the run fails with a clear message, changing
        nothing, when that is not possible.
    type: str
  pull:
    description:
      - Pull O(image) when it is not in local storage. With V(false), a missing image is an error.
      - Images present locally are never pulled again.
    type: bool
    default: true
  command:
    description:
      - Command and arguments (arguments to the image's entrypoint, if it has one) - a list, or a string split
        like a shell would (no shell runs it).
      - Left out, the image's default command runs (the returned C(spec.command) is V(null)), and a new default
        in the image is no change.
    type: raw
  env:
    description:
      - Environment variables. Values are strings (quote booleans, so that the container gets the exact text).
      - Variables the image or podman set by themselves (such as C(PATH), C(container), C(TERM)) are not listed
        and not removed; setting one here overrides it.
    type: dict
  labels:
    description:
      - Container labels. Labels that come from the image are not listed and not removed.
    type: dict
  ports:
    description:
      - Published ports, C([HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]) - for example V(8080:80),
        V(127.0.0.1:8080:80/tcp), V([::1]:5353:53/udp), V(127.0.0.1::80) (any free host port) or ranges of equal
        length V(8080-8081:80-81).
      - Returned and compared in one canonical form, one port per entry -
        C(HOST_IP:HOST_PORT:CONTAINER_PORT/PROTOCOL) with V(0.0.0.0) for every address. A port given without host
        port matches whatever port podman picked, and keeps it.
    type: list
    elements: str
  volumes:
    description:
      - Mounts, C(SOURCE:DESTINATION[:ro]) - SOURCE is an absolute host path (which must exist) or a volume name
        (created when missing, kept when the container is removed).
      - Anonymous volumes (no SOURCE) are not managed; name them.
    type: list
    elements: str
  networks:
    description:
      - Networks to join (they must exist, see C(podman network create)), or V([host]) or V([none]).
      - Left out, a new container joins podman's default network (named C(podman)).
      - Joining or leaving named networks happens in place; switching to or from V(host)/V(none) recreates.
    type: list
    elements: str
  pod:
    description:
      - The pod the container joins (it must exist, see virtfleet.virt.container_pod); it then shares the pod's
        namespaces - its network, published ports and host name are the pod's, so O(ports) and O(networks) are
        refused with it.
      - Compared on the pod C(podman inspect) names; a change (another pod, or V("") for none) recreates the
        container.
    type: str
    version_added: 0.3.0
  restart_policy:
    description:
      - V(no), V(always), V(unless-stopped), V(on-failure) or V(on-failure:N) (at most N restarts).
      - Podman restarts containers while it runs; restarting them after a host reboot is the job of
        C(podman-restart.service) or a systemd unit.
    type: str
  memory:
    description:
      - Memory limit - an integer number of MiB or a string with a unit such as V(512MiB) or V(1GiB)
        (V(K)/V(M)/V(G) are binary units). At least 6 MiB. V(0) removes the limit.
    type: raw
  cpus:
    description:
      - CPU limit, in CPUs (V(0.5) is half a CPU); V(0) removes the limit.
    type: float
  stop_timeout:
    description:
      - Seconds C(podman stop) waits after the stop signal before it kills the container.
      - Left out, the container's own stop timeout applies (10 s unless the image or container says otherwise).
    type: int
  healthcheck:
    description:
      - The container's healthcheck. Keys left out keep the container's current values (a new healthcheck gets
        podman's defaults - interval 30s, timeout 30s, 3 retries, no start period).
      - Left out, the container runs its image's healthcheck, if the image has one.
      - Compared on C(podman inspect) (durations normalized, so V(30) and V(30s) are the same); a change
        recreates the container.
    type: dict
    suboptions:
      test:
        description:
          - The check command. A string runs in the container's C(/bin/sh -c) (C(CMD-SHELL)); a list runs
            directly (C(CMD)); a list may also start with V(CMD) or V(CMD-SHELL) as in an image's HEALTHCHECK.
          - V(NONE) (or V([NONE])) disables the healthcheck, also the image's one - the same as O(healthcheck.disable).
        type: raw
      interval:
        description:
          - Time between two checks - seconds, or a duration such as V(30s), V(1m30s), V(500ms).
          - V(0) schedules no checks (only C(podman healthcheck run) and O(wait_healthy) run them).
        type: raw
      timeout:
        description: Time a check may take before it counts as failed (seconds or a duration, more than 0).
        type: raw
      retries:
        description: Failed checks in a row that make the container unhealthy (1 or more).
        type: int
      start_period:
        description: Time after the start during which failed checks do not count (seconds or a duration).
        type: raw
      disable:
        description: V(true) disables every healthcheck, also the image's (C(podman create --no-healthcheck)).
        type: bool
  wait_healthy:
    description:
      - Wait until the container's healthcheck passes (status C(healthy)), at most O(wait_timeout) seconds; the
        result's RV(health) tells how it went. The task fails, showing the exit codes and output of the last
        checks, when the container becomes C(unhealthy), stops, or is not healthy within O(wait_timeout) - what
        the run changed (a created or recreated container) stays and is reported as changed.
      - Podman runs the checks from a systemd timer every interval. Where there is none (no systemd, for example
        inside a container), podman runs no checks by itself; the wait then runs C(podman healthcheck run) itself,
        once per interval (every second when the interval is 0) while no other check ran.
      - Needs O(state=started) and a healthcheck (O(healthcheck) or the image's). Check mode does not wait.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for a run state change to be reported, and for the container to become healthy
        (O(wait_healthy)).
    type: int
    default: 60
notes:
  - On recreation, settings this module does not manage (for example a user, devices or capabilities given to
    C(podman create) by hand) are not carried over.
  - Environment values are passed to C(podman create) as arguments and stored in the container's configuration,
    where C(podman inspect) shows them; do not put secrets in O(env).
seealso:
  - module: virtfleet.virt.container_info
'''

EXAMPLES = r'''
- name: A web server from a local image, published on the loopback address only
  virtfleet.virt.container:
    name: web1
    image: localhost/web:1.4
    state: started
    ports:
      - 127.0.0.1:8080:80
    env:
      LOG_LEVEL: info
    volumes:
      - /srv/web1/htdocs:/var/www:ro
      - web1-cache:/var/cache/web
    labels:
      fleet: shop
    restart_policy: always
    memory: 256MiB
    cpus: 0.5

- name: Join a second network (in place, the container keeps running)
  virtfleet.virt.container:
    name: web1
    networks: [podman, backend]

- name: Stop it, killing it if it ignores SIGTERM for 30 s
  virtfleet.virt.container:
    name: web1
    state: stopped
    stop_timeout: 30

- name: Remove it (named volumes stay)
  virtfleet.virt.container:
    name: web1
    state: absent

- name: A new version, with a healthcheck; fail (showing the checks' output) unless it becomes healthy in 2 minutes
  virtfleet.virt.container:
    name: web1
    image: localhost/web:1.5
    state: started
    healthcheck:
      test: wget -q -O /dev/null http://localhost/
      interval: 10s
      timeout: 3s
      retries: 3
      start_period: 5s
    wait_healthy: true
    wait_timeout: 120

- name: Podman somewhere else than in PATH
  virtfleet.virt.container:
    name: web1
    podman_path: /opt/podman/bin/podman
'''

RETURN = r'''
container:
  description: The container after the run (in check mode, as predicted). Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: Container name.
      type: str
      sample: web1
    id:
      description: Container ID. A recreated container has a new one.
      type: str
      sample: 3adcfd9363e1a9154e04ff107eee54108f2bfa92ac18d35d36f93b08e02ba189
    state:
      description: Run state - running, paused, stopped (created or exited) or stopping.
      type: str
      sample: running
    status:
      description: Podman's own status - created, running, paused, exited, stopping, ...
      type: str
      sample: running
    exit_code:
      description: Exit code of the last run (0 when it never ran).
      type: int
      sample: 0
    spec:
      description:
        - The normalized spec, in the shape of this module's options, plus C(image_id) (the image ID the
          container runs). C(memory) is in MiB; C(command) is V(null) when the image's default command runs;
          C(env) and C(labels) hold only what does not come from the image or podman.
      type: dict
      sample: {image: localhost/web:1.4, image_id: ec12c338f6e7..., command: [httpd, -f], env: {LOG_LEVEL: info},
               ports: ['127.0.0.1:8080:80/tcp'], volumes: ['/srv/web1/htdocs:/var/www:ro'], networks: [podman],
               restart_policy: always, labels: {fleet: shop}, memory: 256, cpus: 0.5, pod: null, healthcheck: null}
health:
  description:
    - With O(wait_healthy) (not in check mode) - the container's health when the wait ended. C(checks_run) counts the
      checks the wait ran itself (C(podman healthcheck run)), C(log) holds podman's last health log entries.
  returned: when O(wait_healthy=true) and the container became healthy
  type: dict
  sample: {status: healthy, waited: 2.1, checks_run: 1, log: [{exit_code: 0, output: '', start: '2026-12-05T21:28:19Z',
           end: '2026-12-05T21:28:19Z'}]}
recreated:
  description: True when the run replaced (or, in check mode, would replace) the container by a new one.
  returned: unless O(state=absent)
  type: bool
  sample: false
recreate_reasons:
  description: The spec fields whose change forced the recreation.
  returned: unless O(state=absent)
  type: list
  elements: str
  sample: [env, ports]
actions:
  description: What the run did (or, in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: [created, start]
'''

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_spec, _module
from ansible_collections.virtfleet.virt.plugins.module_utils._clients import podman
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_container import PodmanContainerDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError


def argument_spec():
    spec = podman.argument_spec()
    spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'started', 'running', 'stopped', 'absent']),
        image=dict(type='str'),
        pull=dict(type='bool', default=True),
        command=dict(type='raw'),
        env=dict(type='dict'),
        labels=dict(type='dict'),
        ports=dict(type='list', elements='str'),
        volumes=dict(type='list', elements='str'),
        networks=dict(type='list', elements='str'),
        restart_policy=dict(type='str'),
        memory=dict(type='raw'),
        cpus=dict(type='float'),
        pod=dict(type='str'),
        stop_timeout=dict(type='int'),
        healthcheck=dict(type='dict', options=dict(
            test=dict(type='raw'), interval=dict(type='raw'), timeout=dict(type='raw'), retries=dict(type='int'),
            start_period=dict(type='raw'), disable=dict(type='bool'))),
        wait_healthy=dict(type='bool', default=False),
        wait_timeout=dict(type='int', default=60),
    )
    return spec


# state option -> the run state the container ends in (else its run state is left alone)
TARGETS = {'started': 'running', 'running': 'running', 'stopped': 'stopped'}


def request(module, _backend):
    params = module.params
    name = _container_spec.validate_name(params['name'])
    if params['stop_timeout'] is not None and params['stop_timeout'] < 0:
        raise SpecError('stop_timeout', 'must be 0 or more seconds, got %d' % params['stop_timeout'])
    if params['wait_healthy'] and TARGETS.get(params['state']) != 'running':
        raise SpecError('wait_healthy', 'needs state: started - a container that is %s does not become healthy'
                        % params['state'])
    state = 'running' if params['state'] == 'started' else params['state']
    partial = _container_spec.partial_from_params(params) if state != 'absent' else {}
    return name, partial, state, TARGETS.get(params['state']), _module.reconcile_options(
        module, wait_healthy=params['wait_healthy'])


DRIVERS = {'podman': lambda client, params: PodmanContainerDriver(
    client, pull=params['pull'], stop_timeout=params['stop_timeout'], target=TARGETS.get(params['state']))}


def main():
    _module.run(argument_spec(), _module.ensure('container', DRIVERS, request), backend='podman')


if __name__ == '__main__':
    main()

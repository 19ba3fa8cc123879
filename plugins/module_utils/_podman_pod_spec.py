# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The spec of a Podman pod (``container_pod``): validation, normalization and merging.

One canonical form, the same whether it comes from the user or from ``podman pod inspect``:

``infra``
    whether the pod has an infra container (which holds the shared namespaces, the published ports and the
    networks); ``share``, the sorted shared namespaces (``cgroup``, ``ipc``, ``net``, ``pid``, ``uts``;
    ``None``: Podman's default for a new pod); ``ports``, published ports in the canonical form of the
    ``container`` module (``HOST_IP:HOST_PORT:CONTAINER_PORT/PROTOCOL``); ``networks``, sorted names
    (``None``: Podman's default network); ``labels``, a dict of strings; ``hostname`` (``None``: not set).

A partial spec holds only what the user set; ``merge`` fills the rest from the pod as it is (or a new pod's
defaults), so what Podman picks by itself (the default namespaces and network) is never a change.
"""

from __future__ import annotations

import re

from ansible_collections.virtfleet.virt.plugins.module_utils import _container_spec as cspec
from ansible_collections.virtfleet.virt.plugins.module_utils import _podman_objects_spec as ospec
from ansible_collections.virtfleet.virt.plugins.module_utils import _spec
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.podman_container_create import publish_option
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

NAMESPACES = ('cgroup', 'ipc', 'net', 'pid', 'uts')
HOSTNAME_RE = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z')
FIELDS = ('infra', 'share', 'ports', 'networks', 'labels', 'hostname')
DEFAULTS = {'infra': True, 'share': None, 'ports': [], 'networks': None, 'labels': {}, 'hostname': None}
# what only an infra container holds
INFRA_FIELDS = ('share', 'ports', 'networks', 'hostname')


def validate_name(name):
    return ospec.validate_name(name, 'pod')


def parse_share(value, param='share'):
    if not isinstance(value, list):
        raise SpecError(param, 'must be a list of namespaces (%s)' % ', '.join(NAMESPACES))
    names = [str(n).strip().lower() for n in value]
    unknown = sorted(set(n for n in names if n not in NAMESPACES))
    if unknown:
        listed = ', '.join(repr(n) for n in unknown)
        raise SpecError(param, 'unknown namespaces %s: use %s' % (listed, ', '.join(NAMESPACES)))
    if not names:
        raise SpecError(param, 'an empty list shares nothing, and Podman then makes no infra container: set '
                               'infra: false for that')
    return sorted(set(names))


def parse_hostname(value, param='hostname'):
    text = str(value).strip()
    if not text:
        return None
    if len(text) > 253 or not HOSTNAME_RE.match(text):
        raise SpecError(param, '%r is not a host name (letters, digits and "-", dot-separated labels of 1 to 63 '
                               'characters)' % (value,))
    return text


PARSERS = (('infra', bool), ('share', parse_share), ('ports', cspec.parse_ports), ('networks', cspec.parse_networks),
           ('labels', lambda value: ospec.text_map(value, 'labels')),
           ('hostname', parse_hostname))


def partial_from_params(params):
    partial = _spec.from_params(params, PARSERS)
    if partial.get('infra') is False:
        given = [key for key in INFRA_FIELDS if key in partial and partial[key] not in ([], None)]
        if given:
            raise SpecError(given[0], 'needs the infra container (it holds the shared namespaces, ports, networks '
                                      'and host name of a pod): remove %s or set infra: true' % ', '.join(given))
    return partial


def merge(partial, actual_spec):
    spec = _spec.overlay(partial, actual_spec, DEFAULTS, FIELDS,
                         {'ports': lambda value, actual: cspec.merge_ports(value, actual or [])})
    if not spec['infra']:
        # a pod without infra container has none of these: what the pod had with one goes with it
        spec.update(share=[], ports=[], networks=None, hostname=None)
    elif actual_spec is not None and not actual_spec['infra'] and 'share' not in partial:
        spec['share'] = None  # a new infra container shares Podman's default namespaces
    if spec['share'] is not None and 'net' not in spec['share']:
        for key in ('ports', 'networks'):
            if partial.get(key):
                raise SpecError(key, 'needs the pod to share its network namespace: add net to share, or '
                                     'remove %s' % key)
    if spec['networks'] and set(spec['networks']) & set(cspec.NETWORK_MODES) and spec['ports']:
        raise SpecError('ports', 'a pod on network %s publishes no ports: remove ports or choose a network'
                        % spec['networks'][0])
    return spec


def from_inspect(data, ports):
    """The normalized spec of a ``podman pod inspect`` result; ``ports``: its infra's bindings, canonical."""
    infra = bool(data.get('CreateInfra'))
    config = data.get('InfraConfig') or {}
    networks = None
    if infra:
        if config.get('HostNetwork'):
            networks = ['host']
        else:
            networks = sorted(config.get('Networks') or []) or None
    return {
        'infra': infra,
        'share': sorted(data.get('SharedNamespaces') or []) if infra else [],
        'ports': ports if infra else [],
        'networks': networks,
        'labels': dict(data.get('Labels') or {}),
        'hostname': (data.get('Hostname') or None) if infra else None,
    }


def create_args(name, spec):
    """The arguments of ``podman pod create`` for ``spec``."""
    args = ['--name', name]
    if not spec['infra']:
        args.append('--infra=false')
    if spec['share'] is not None and spec['infra']:
        args += ['--share', ','.join(spec['share'])]
        if 'cgroup' in spec['share']:
            args.append('--share-parent=false')  # Podman refuses to share the cgroup namespace otherwise
    for port in spec['ports']:
        args += ['--publish', publish_option(port)]
    for network in spec['networks'] or []:
        args += ['--network', network]
    if spec['hostname']:
        args += ['--hostname', spec['hostname']]
    for key, value in sorted(spec['labels'].items()):
        args += ['--label', '%s=%s' % (key, value)]
    return args


def changed_fields(before, after):
    """The fields that differ; a ``share`` or ``networks`` of ``None`` (Podman's default) is no change."""
    return [key for key in FIELDS if not (after.get(key) is None and key in ('share', 'networks'))
            and (before or {}).get(key) != after.get(key)]

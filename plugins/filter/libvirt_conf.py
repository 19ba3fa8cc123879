# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Format a value for libvirt's configuration files (qemu.conf, libvirtd.conf)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _quote(text):
    if '"' in text or '\n' in text:
        raise AnsibleFilterError('libvirt configuration strings cannot contain double quotes or newlines: %r' % text)
    return '"%s"' % text


def libvirt_conf_value(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return '[ %s ]' % ', '.join(_quote(str(v)) for v in value) if value else '[ ]'
    if isinstance(value, str):
        return _quote(value)
    raise AnsibleFilterError('cannot write %r to a libvirt configuration file: use a string, number, '
                             'boolean or list of strings' % (value,))


class FilterModule:
    def filters(self):
        return {'libvirt_conf_value': libvirt_conf_value}

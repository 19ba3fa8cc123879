# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lxml for every libvirt XML document (domains, networks, pools, volumes, capabilities).

Parsing never resolves entities or fetches anything; XML is built as element trees and
serialized here, never by string concatenation.
"""

from __future__ import annotations

import traceback

try:
    from lxml import etree
    HAS_LXML = True
    LXML_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported through missing_required_lib
    etree = None
    HAS_LXML = False
    LXML_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.virtfleet.virt.plugins.module_utils._errors import SpecError

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True) if HAS_LXML else None


def from_string(xml, param='xml'):
    try:
        return etree.fromstring(xml.encode('utf-8') if isinstance(xml, str) else xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SpecError(param, 'is not well-formed XML: %s' % exc)


def to_string(root):
    return etree.tostring(root, encoding='unicode', pretty_print=True)

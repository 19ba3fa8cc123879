# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options that reach the Podman backend (module_utils/_clients/podman.py: argument_spec).
    DOCUMENTATION = r'''
options:
  podman_path:
    description:
      - The podman executable on the managed host - a name looked up in E(PATH) or an absolute path.
      - Also the place for a wrapper script when podman must run in a special environment
        (for example inside a particular mount namespace).
    type: str
    default: podman
requirements:
  - Podman 4.3 or later on the host that runs the module (the C(podman) command line; no Python library,
    no API service).
notes:
  - The modules drive the C(podman) command line and parse its JSON output (C(podman inspect),
    C(--format json)) rather than the REST API, because Podman is daemonless - the REST API would need
    C(podman system service) running as an extra service, while the CLI is always present wherever Podman is,
    runs as the same user and needs no Python library.
  - Commands run without a shell, as an argument list.
  - Rootful Podman when the module runs as root, rootless Podman of the remote user otherwise.
  - O(podman_path) can be set once for a play with C(module_defaults) and the action group
    C(group/virtfleet.virt.podman), which holds only the Podman modules.
'''

# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options of the libvirt backend (module_utils/_module.py: connection_argument_spec).
    DOCUMENTATION = r'''
options:
  uri:
    description:
      - libvirt only. The libvirt connection URI of the hypervisor, for example C(qemu:///system),
        C(qemu+ssh://root@host/system) or C(qemu+tcp://10.0.0.2/system).
      - One connection is opened per module run.
      - If not set, the environment variable E(LIBVIRT_DEFAULT_URI) is used, then C(qemu:///system).
    type: str
    default: qemu:///system
  username:
    description:
      - User name for libvirt authentication (SASL or the remote transport), when the URI needs one.
      - If not set, the environment variable E(VIRTFLEET_USERNAME) is used.
    type: str
  password:
    description:
      - Password for libvirt authentication. Never logged or returned.
      - If not set, the environment variable E(VIRTFLEET_PASSWORD) is used.
    type: str
requirements:
  - libvirt-python >= 9.0 on the host that runs the module
  - lxml
notes:
  - Connection options can be set once for a play with
    C(module_defaults) and the action group C(group/virtfleet.virt.all).
'''

    # Options of modules that wait for a state change.
    WAIT = r'''
options:
  force:
    description:
      - When a graceful shutdown does not finish within O(shutdown_timeout), power the guest off
        (libvirt C(destroy)).
      - Without O(force), the module fails with a message and leaves the guest running.
      - With O(force=true) and O(shutdown_timeout=0) the guest is powered off at once.
    type: bool
    default: false
  shutdown_timeout:
    description:
      - Seconds to wait for a graceful (ACPI) shutdown before failing, or powering off when O(force=true).
    type: int
    default: 120
  wait_timeout:
    description:
      - Seconds to wait for other state changes (start, pause, resume, power off) to be reported.
    type: int
    default: 60
'''

    # Options of the modules that converge VMs (vm, fleet): how a guest is stopped, what a run waits for.
    VM_WAIT = r'''
options:
  shutdown_mode:
    description:
      - libvirt only. How a graceful shutdown asks the guest - V(acpi) presses the ACPI power button,
        V(agent) asks the QEMU guest agent (the VM needs O(virtfleet.virt.vm#module:guest_agent=true) and the agent
        running in the guest), V(any) tries the agent, then ACPI.
      - Left out, libvirt chooses (the agent when the VM has its channel, else ACPI).
      - A guest that ignores the request is powered off after O(shutdown_timeout) only with O(force=true).
    type: str
    choices: [acpi, agent, any]
  wait_for_address:
    description:
      - Return only once the running VM has an IPv4 address, which RV(virtfleet.virt.vm#module:address) then
        holds with its C(source) - C(agent) (the QEMU guest agent, asked first when the VM has one), C(lease)
        (the DHCP leases of libvirt's networks) or C(arp) (the host's ARP table); on vSphere C(tools) (the IP
        address VMware Tools reports).
      - Loopback and link-local addresses do not count. A VM with no network interface is refused before
        anything is changed; a VM that is not running after the run fails.
      - Not in check mode (nothing is started there, so there is nothing to wait for).
    type: bool
    default: false
  wait_for_address_timeout:
    description:
      - Seconds to wait for the address with O(wait_for_address=true) before failing. A cloud image under
        software emulation (TCG) needs about a minute.
    type: int
    default: 300
'''

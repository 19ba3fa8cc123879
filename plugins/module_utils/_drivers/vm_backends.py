# -*- coding: utf-8 -*-
# Copyright: virtfleet.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which VM driver serves which backend (the ``vm`` and ``vm_info`` modules).

Which options each backend takes is declared with the options (``_vm_options``), not here.
"""

from __future__ import annotations

from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_vm import LibvirtVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._vm_options import vsphere_options
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.vsphere_vm import VSphereVMDriver

# The parameters the vSphere VM driver takes: placement of a new VM and vSphere-only settings (the vm module's
# vSphere options).
VSPHERE_PLACEMENT = tuple(vsphere_options())

# backend -> factory(client, params) of the VM driver
DRIVERS = {
    'libvirt': lambda client, params: LibvirtVMDriver(client),
    'vsphere': lambda client, params: VSphereVMDriver(
        client, dict((key, params.get(key)) for key in VSPHERE_PLACEMENT)),
}

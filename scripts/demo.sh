#!/usr/bin/env bash
# Quick start: deploy a three-VM fleet on this machine's libvirt and print it.
# On a fresh Debian 12 machine, as root: installs libvirt/QEMU and a virtualenv
# with Ansible, starts libvirtd, then runs playbooks/demo.yml. Run it again:
# nothing changes (changed=0). Remove the fleet with:
#   scripts/demo.sh --remove
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh needs root (it installs packages and starts libvirtd)" >&2; exit 1; }
bash "$here/tests/env/libvirt-up.sh"
venv=$(bash "$here/tests/env/venv.sh")
collections=$(bash "$here/tests/env/collection.sh")
base=/var/lib/libvirt/images/virtfleet-demo-base.img
[ -f "$base" ] || bash "$here/tests/env/guest-image.sh" "$base" >/dev/null
playbook=playbooks/demo.yml
if [ "${1:-}" = "--remove" ]; then
  playbook=playbooks/demo_remove.yml
  shift
fi
# Interpreter discovery can pick a broken pyenv shim: name the venv's python.
ANSIBLE_COLLECTIONS_PATH="$collections" "$venv/bin/ansible-playbook" -i localhost, -c local \
  -e "ansible_python_interpreter=$venv/bin/python" "$here/$playbook" "$@"

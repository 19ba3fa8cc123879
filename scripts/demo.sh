#!/usr/bin/env bash
# Quick start: deploy a three-VM fleet on this machine's libvirt and print it.
# On a fresh Debian 12 machine, as root: installs libvirt/QEMU and a virtualenv
# with Ansible, starts libvirtd, then runs playbooks/demo.yml. Run it again:
# nothing changes (changed=0). Remove the fleet with:
#   scripts/demo.sh --remove
# With --real, the fleet is three real Debian 12 guests instead of boot sectors:
# playbooks/cloud_fleet.yml with the image tests/env/linux-guest.sh builds from
# Debian's packages (a few minutes the first time, then cached), cloud-init, a wait
# for their addresses and a play inside them over SSH (key in ~/.cache/virtfleet/demo-ssh):
#   scripts/demo.sh --real            scripts/demo.sh --real --remove
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh needs root (it installs packages and starts libvirtd)" >&2; exit 1; }
bash "$here/tests/env/libvirt-up.sh"
venv=$(bash "$here/tests/env/venv.sh")
collections=$(bash "$here/tests/env/collection.sh")
playbook=playbooks/demo.yml
extra=()
if [ "${1:-}" = "--real" ]; then
  shift
  playbook=playbooks/cloud_fleet.yml
  image=$(bash "$here/tests/env/linux-guest.sh" | tail -1)
  key=$HOME/.cache/virtfleet/demo-ssh/id_ed25519
  if [ ! -f "$key" ]; then
    mkdir -p "$(dirname "$key")"
    ssh-keygen -q -t ed25519 -N '' -C virtfleet-demo -f "$key"
  fi
  # without VT-x/AMD-V, KVM cannot run a 64-bit guest here: software emulation (TCG)
  domain_type=kvm
  grep -qwE 'vmx|svm' /proc/cpuinfo || domain_type=qemu
  extra=(-e cloud_name=demo-cloud -e "cloud_base_image=$image/disk.qcow2" -e "cloud_ssh_key=$key"
         -e "cloud_base_checksum=sha256:$(sha256sum "$image/disk.qcow2" | cut -d' ' -f1)"
         -e "cloud_domain_type=$domain_type")
  [ "${1:-}" = "--remove" ] && { playbook=playbooks/cloud_fleet_remove.yml; shift; }
else
  base=/var/lib/libvirt/images/virtfleet-demo-base.img
  [ -f "$base" ] || bash "$here/tests/env/guest-image.sh" "$base" >/dev/null
  if [ "${1:-}" = "--remove" ]; then
    playbook=playbooks/demo_remove.yml
    shift
  fi
fi
# Interpreter discovery can pick a broken pyenv shim: name the venv's python (for localhost only: the
# real guests of --real use their own python over SSH)
inventory=$HOME/.cache/virtfleet/demo-inventory.ini
mkdir -p "$(dirname "$inventory")"
echo "localhost ansible_connection=local ansible_python_interpreter=$venv/bin/python" >"$inventory"
ANSIBLE_COLLECTIONS_PATH="$collections" "$venv/bin/ansible-playbook" -i "$inventory" "${extra[@]}" \
  "$here/$playbook" "$@"

#!/usr/bin/env bash
# Bring up a real libvirtd + QEMU/KVM test environment on Debian (as root).
# Idempotent: installs only missing packages, starts only daemons that are not
# running, and records what it started so libvirt-down.sh stops only those.
set -euo pipefail

STATE_DIR=${VIRTFLEET_STATE_DIR:-/run/virtfleet-test}
MARK="# managed by virtfleet.virt tests/env/libvirt-up.sh"
PKGS=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
      qemu-utils dnsmasq-base iptables libvirt-dev pkg-config gcc ovmf xorriso nasm
      busybox-static iproute2 lvm2)

log() { printf '[libvirt-up] %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "libvirt-up.sh must run as root" >&2; exit 1; }
mkdir -p "$STATE_DIR"

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libvirtd refuses to start without these.
getent group kvm >/dev/null || groupadd --system kvm
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null || \
  useradd --system --gid libvirt-qemu --groups kvm --home-dir /var/lib/libvirt --no-create-home \
          --shell /usr/sbin/nologin libvirt-qemu
getent group libvirt >/dev/null || groupadd --system libvirt

# qemu.conf for the test daemon: these machines run QEMU as root, no security driver.
conf=/etc/libvirt/qemu.conf
if [ -f "$conf" ] && ! grep -qF "$MARK" "$conf"; then
  cp -a "$conf" "$STATE_DIR/qemu.conf.orig"
fi
if ! grep -qF "$MARK" "$conf" 2>/dev/null; then
  mkdir -p /etc/libvirt
  cat > "$conf" <<CONF
$MARK
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
CONF
  touch "$STATE_DIR/qemu.conf.written"
fi

mkdir -p /var/lib/libvirt/images /var/lib/libvirt/qemu/nvram /var/log/libvirt/qemu /run/libvirt

# The daemons of this mount namespace called NAME: the simulated hosts of twohost-up.sh run their
# own libvirtd/virtlogd in other mount namespaces (their own /run), which serve other sockets.
ours_running() { # name -> pids
  local pid
  for pid in $(pgrep -x "$1"); do
    [ "$(readlink "/proc/$pid/ns/mnt")" = "$(readlink /proc/self/ns/mnt)" ] && echo "$pid"
  done
  return 0
}
start_daemon() { # name, pidfile, args...
  local name=$1 pidfile=$2; shift 2
  if pgrep -F "$pidfile" -x "$name" >/dev/null 2>&1; then
    return 0
  fi
  if [ -n "$(ours_running "$name")" ]; then
    log "$name already running (not started by us)"
    return 0
  fi
  log "starting $name"
  "$@"
  echo "$name" >> "$STATE_DIR/started"
}
start_daemon virtlogd /run/virtlogd.pid /usr/sbin/virtlogd -d -p /run/virtlogd.pid
start_daemon libvirtd /run/libvirtd.pid /usr/sbin/libvirtd -d -p /run/libvirtd.pid

for _ in $(seq 1 100); do
  if virsh -q -c qemu:///system version >/dev/null 2>&1; then break; fi
  sleep 0.2
done
virsh -q -c qemu:///system version >/dev/null || { log "libvirtd does not answer on qemu:///system"; exit 1; }

# Which accelerator do guests get here?
if virsh -q -c qemu:///system domcapabilities --virttype kvm >/dev/null 2>&1; then
  echo kvm > "$STATE_DIR/domain_type"
  log "KVM is usable: guests use <domain type='kvm'> (64-bit Linux kernels still need TCG on these machines)"
else
  echo qemu > "$STATE_DIR/domain_type"
  log "KVM is NOT usable here: falling back to <domain type='qemu'> (TCG emulation)"
fi
log "libvirtd ready on qemu:///system"

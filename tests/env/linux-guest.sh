#!/usr/bin/env bash
# Build the real Linux test guest: Debian 12 (bookworm) from Debian's packages with
# mmdebstrap --variant=minbase, the cloud kernel, systemd, dbus, cloud-init (NoCloud),
# openssh-server, qemu-guest-agent and ifupdown + isc-dhcp-client. Needs no loop device
# and no mount: the root filesystem is made with `mkfs.ext4 -d` straight into a partition
# of the image, the boot partition is FAT written with mtools, the boot loader is syslinux
# (installed with `syslinux --offset`) behind syslinux's mbr.bin.
#
# Output, in a cache directory keyed by a hash of this script (it holds the package list):
#   disk.qcow2   MBR partition table: p1 FAT16 /boot (64 MiB, active: syslinux, vmlinuz,
#                initrd.img), p2 ext4 root labelled vfroot (2 GiB, about 1.5 GiB of it free,
#                so growpart is not needed). BIOS boot (machine pc), root on a virtio disk,
#                console on ttyS0. qcow2 so that tests use it as the backing file of their
#                overlays (qemu-img create -b disk.qcow2 -F qcow2) and it stays sparse.
#   vmlinuz, initrd.img   the same kernel and initrd, for direct kernel boot
#   cmdline      the kernel command line the image needs (root=LABEL=vfroot ... console=ttyS0)
#   packages.txt the guest's installed packages (name version)
# Guest configuration: cloud-init datasources NoCloud (seed labelled cidata on a virtio
# disk or an IDE cdrom; the cloud kernel has no AHCI, so not SATA) then None;
# /etc/network/interfaces sources interfaces.d (cloud-init writes its ENI config there);
# dbus for logind (ACPI power button) and the agent's shutdown; qemu-guest-agent starts
# when its virtio-serial port org.qemu.guest_agent.0 appears; serial getty on ttyS0;
# root has no password; sshd takes keys only (cloud-init installs them); no SSH host keys
# and an empty machine-id in the image (each guest makes its own); apt lists, caches,
# man pages and docs removed. No udev rule onlines hot-plugged vCPUs (the collection does
# that through the agent).
#
# Cache: $VIRTFLEET_LINUX_GUEST_CACHE (default /var/cache/virtfleet: outside root's 0700
# home, so a QEMU that runs as libvirt-qemu can read the backing file). Prints the build
# time or "cached", and as its last line the directory. Concurrent runs serialise on a
# flock; a build happens in a temporary directory renamed into place when complete.
# Usage: linux-guest.sh [--tools-only]
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "[linux-guest] needs root (mmdebstrap chroot, apt-get)" >&2; exit 1; }

packages=(
  linux-image-cloud-amd64 systemd-sysv dbus udev cloud-init openssh-server qemu-guest-agent
  ifupdown isc-dhcp-client iproute2 sudo
)
suite=bookworm
boot_mib=64
root_mib=2048
label=vfroot

cache_root=${VIRTFLEET_LINUX_GUEST_CACHE:-/var/cache/virtfleet}
key=$(sha256sum "$0" | cut -c1-12)
out="$cache_root/linux-guest-$key"
mkdir -p "$cache_root"

exec 9>"$out.lock"
flock 9
if [ -f "$out/disk.qcow2" ] && [ -f "$out/cmdline" ]; then
  echo "[linux-guest] cached: $out"
  echo "$out"
  exit 0
fi

# tools (Debian package -> command)
need=()
for pair in mmdebstrap:mmdebstrap syslinux:syslinux syslinux-common:/usr/lib/syslinux/mbr/mbr.bin \
            mtools:mcopy dosfstools:mkfs.fat fdisk:sfdisk qemu-utils:qemu-img e2fsprogs:mkfs.ext4; do
  pkg=${pair%%:*} cmd=${pair#*:}
  if [[ $cmd == /* ]]; then [ -e "$cmd" ] || need+=("$pkg"); else command -v "$cmd" >/dev/null || need+=("$pkg"); fi
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# --tools-only: install the build tools and stop (tests/run.sh does this in the foreground, so that
# the build itself, run in the background, never takes the apt/dpkg lock other setup scripts need)
if [ "${1:-}" = --tools-only ]; then
  echo "[linux-guest] build tools installed"
  exit 0
fi

# The machine's configured Debian mirror(s) for this suite (deb822 .sources or one-line .list),
# as one-line entries for mmdebstrap.
mirrors() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case $f in
      *.sources)
        awk -v suite="$suite" '
          function flush(  i, n, s, u, opt) {
            if (types ~ /(^| )deb( |$)/ && uris != "" && suites != "") {
              n = split(suites, s, " ")
              split(uris, u, " ")
              opt = (signed != "" ? "[signed-by=" signed "] " : "")
              for (i = 1; i <= n; i++) if (index(s[i], suite) == 1) print "deb " opt u[1] " " s[i] " " comps
            }
            types = uris = suites = comps = signed = ""
          }
          /^[[:space:]]*#/ { next }
          /^[[:space:]]*$/ { flush(); next }
          { key = $1; sub(/:$/, "", key); $1 = ""; sub(/^ /, "")
            if (key == "Types") types = $0; else if (key == "URIs") uris = $0
            else if (key == "Suites") suites = $0; else if (key == "Components") comps = $0
            else if (key == "Signed-By") signed = $0 }
          END { flush() }' "$f" ;;
      *) grep -E "^deb(\s+\[[^]]*\])?\s+\S+\s+$suite(-\S+)?\s" "$f" || true ;;
    esac
  done
}
mapfile -t sources < <(mirrors | grep -v 'disabled' | sort -u)
[ ${#sources[@]} -gt 0 ] || sources=("deb http://deb.debian.org/debian $suite main")

# under the lock, a temporary directory left here is from a build that was killed: remove it
# (--one-file-system: never into a /proc, /sys or /dev that mmdebstrap's chroot still had mounted)
find "$cache_root" -maxdepth 1 -name ".linux-guest-$key.*" -exec rm -rf --one-file-system {} +
start=$(date +%s)
tmp=$(mktemp -d "$cache_root/.linux-guest-$key.XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT
root=$tmp/root

hooks=$tmp/customize.sh
cat >"$hooks" <<'EOF'
#!/bin/sh
# mmdebstrap customize hook: $1 is the root directory
set -eu
r=$1
echo debian >"$r/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
# pass 0: minbase has no e2fsprogs, so there is no fsck.ext4 to run
printf 'LABEL=@LABEL@\t/\text4\terrors=remount-ro\t0\t0\n' >"$r/etc/fstab"
cat >"$r/etc/network/interfaces" <<'ENI'
# cloud-init writes the guest's interfaces into interfaces.d
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
ENI
mkdir -p "$r/etc/network/interfaces.d"
cat >"$r/etc/cloud/cloud.cfg.d/99_virtfleet.cfg" <<'CFG'
# virtfleet test guest: seed only from a NoCloud disk (no network metadata probes)
datasource_list: [NoCloud, None]
# minbase has no locales package (no update-locale): cc_locale would fail and cloud-init report an error
locale: false
CFG
mkdir -p "$r/etc/ssh/sshd_config.d"
printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\n' >"$r/etc/ssh/sshd_config.d/virtfleet.conf"
rm -f "$r"/etc/ssh/ssh_host_*
chroot "$r" passwd -d root >/dev/null
chroot "$r" passwd -l root >/dev/null
chroot "$r" systemctl enable serial-getty@ttyS0.service >/dev/null 2>&1
: >"$r/etc/machine-id"
rm -f "$r/var/lib/dbus/machine-id"
chroot "$r" dpkg-query -W -f '${Package} ${Version}\n' >"$r/../packages.txt"
rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old "$r"/var/log/*.log \
       "$r"/var/log/apt/* "$r"/tmp/* "$r"/var/tmp/*
EOF
sed -i "s/@LABEL@/$label/" "$hooks"
chmod +x "$hooks"

echo "[linux-guest] mmdebstrap $suite from: ${sources[*]}" >&2
mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook="$hooks \"\$1\"" \
  "$suite" "$root" "${sources[@]}" >&2

kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -1)
initrd=$root/boot/initrd.img-${kernel##*/vmlinuz-}
if [ ! -f "$kernel" ] || [ ! -f "$initrd" ]; then echo "[linux-guest] no kernel/initrd in $root/boot" >&2; exit 1; fi
cp "$kernel" "$tmp/vmlinuz"
cp "$initrd" "$tmp/initrd.img"
cmdline="root=LABEL=$label ro console=ttyS0,115200"
echo "$cmdline" >"$tmp/cmdline"

# disk: MBR, p1 FAT16 /boot (active), p2 ext4 root; 1 MiB aligned
raw=$tmp/disk.raw
boot_start=2048
root_start=$((boot_start + boot_mib * 2048))
total=$((root_start + root_mib * 2048))
truncate -s $((total * 512)) "$raw"
sfdisk --quiet "$raw" <<EOF
label: dos
start=$boot_start, size=$((boot_mib * 2048)), type=e, bootable
start=$root_start, size=$((root_mib * 2048)), type=83
EOF
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
mkfs.fat -F 16 -n VFBOOT --offset=$boot_start "$raw" $((boot_mib * 1024)) >/dev/null
cat >"$tmp/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND $cmdline
EOF
export MTOOLS_SKIP_CHECK=1
mcopy -i "$raw@@$((boot_start * 512))" "$tmp/vmlinuz" "$tmp/initrd.img" "$tmp/syslinux.cfg" ::/
syslinux --offset $((boot_start * 512)) --install "$raw"
mkfs.ext4 -q -L "$label" -d "$root" -E offset=$((root_start * 512)) "$raw" "${root_mib}M"
qemu-img convert -O qcow2 "$raw" "$tmp/disk.qcow2"
rm -rf --one-file-system "$raw" "$root" "$tmp/syslinux.cfg" "$hooks"

chmod 0755 "$tmp"
rm -rf --one-file-system "$out"
mv "$tmp" "$out"
trap - EXIT
echo "[linux-guest] built in $(( $(date +%s) - start )) s: $(du -sh --apparent-size "$out/disk.qcow2" | cut -f1) disk.qcow2 ($(du -sh "$out/disk.qcow2" | cut -f1) on disk)" >&2
echo "[linux-guest] built in $(( $(date +%s) - start )) s"
echo "$out"

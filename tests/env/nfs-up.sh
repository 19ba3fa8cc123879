#!/usr/bin/env bash
# An NFS server on 127.0.0.1 for the netfs storage pool test (as root), from Debian's packages.
# Idempotent: installs only missing packages and starts only what does not answer.
# Exit 0: the server answers `showmount -e 127.0.0.1`. Exit 3, with the reason on stdout: this kernel
# cannot (no NFS client or no NFS server in it) -- the only case in which the test may skip.
# Any other failure is a failure of the test setup.
set -euo pipefail
PKGS=(nfs-common nfs-kernel-server rpcbind)

log() { printf '[nfs-up] %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "nfs-up.sh must run as root" >&2; exit 1; }

has_fs() { # filesystem -> true when the kernel has it (loading its module when it can)
  grep -qw "$1" /proc/filesystems && return 0
  command -v modprobe >/dev/null && modprobe -q "$1" 2>/dev/null && grep -qw "$1" /proc/filesystems
}
has_fs nfs || { echo "this kernel has no NFS client (no nfs in /proc/filesystems, and no module to load)"; exit 3; }
has_fs nfsd || { echo "this kernel has no NFS server (no nfsd in /proc/filesystems, and no module to load)"; exit 3; }

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

answers() { showmount -e 127.0.0.1 >/dev/null 2>&1; }
if ! answers; then
  mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
  pgrep -x rpcbind >/dev/null || rpcbind -w
  rpc.nfsd 4
  pgrep -x rpc.mountd >/dev/null || rpc.mountd
  exportfs -r
  for _ in $(seq 1 50); do answers && break; sleep 0.2; done
  answers || { log "the NFS server does not answer on 127.0.0.1 (showmount -e)"; exit 1; }
  log "NFS server ready on 127.0.0.1"
fi

#!/usr/bin/env bash
# Two simulated hypervisor hosts on this machine, for the live-migration tests (virtfleet.virt.migrate).
#
# Each host (hv1, hv2) is:
#   - a network namespace vft-hvN; the two are joined by a veth pair on 10.254.77.0/24 and have no
#     other interface or route, so migration traffic never leaves these namespaces (and loopback);
#   - a mount namespace in which /etc/libvirt, /var/lib/libvirt, /var/log/libvirt,
#     /var/cache/libvirt and /run are private bind mounts of $BASE/hvN/{etc,lib,log,cache,run};
#   - a UTS namespace with its own hostname (libvirt refuses to migrate between equal hostnames)
#     and its own host_uuid in libvirtd.conf;
#   - its own virtlogd and libvirtd; libvirtd listens on TCP on the host's own address only, with
#     auth_tcp = "none" -- acceptable only because that link joins these two namespaces alone.
# A sleeping holder process per host keeps the namespaces; daemons are started in them with nsenter.
# The root namespace reaches each libvirtd through its unix socket (qemu+unix:///system?socket=...),
# and the hosts reach each other over TCP (qemu+tcp://10.254.77.N/system).
# /var/lib/virtfleet-test/shared is not private, so it is the same directory at the same path on both
# hosts (shared storage, serial logs); /var/lib/libvirt/images is private to each host.
#
# Idempotent: starts only what is not running. Never touches the root namespace's libvirtd or
# /etc/libvirt. Prints one line per host: "<name> <unix-socket URI> <TCP URI>".
# tests/env/twohost-down.sh stops what this started (by pid file) and removes the namespaces.
set -euo pipefail

BASE=${VIRTFLEET_TWOHOST_DIR:-/var/lib/virtfleet-test/twohost}
SHARED=${VIRTFLEET_TWOHOST_SHARED:-/var/lib/virtfleet-test/shared}
SUBNET=10.254.77
HOSTS=(hv1 hv2)
MARK="# managed by virtfleet.virt tests/env/twohost-up.sh"

log() { printf '[twohost-up] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "twohost-up.sh must run as root"
for cmd in ip nsenter unshare virsh /usr/sbin/libvirtd /usr/sbin/virtlogd; do
  command -v "$cmd" >/dev/null || die "$cmd not found: run tests/env/libvirt-up.sh first (it installs libvirt)"
done

addr() { # host -> its address
  case $1 in hv1) echo "$SUBNET.1" ;; hv2) echo "$SUBNET.2" ;; esac
}
veth() { # host -> its end of the veth pair
  echo "vft-veth${1#hv}"
}
unix_uri() { echo "qemu+unix:///system?socket=$BASE/$1/run/libvirt/libvirt-sock"; }
tcp_uri() { echo "qemu+tcp://$(addr "$1")/system"; }

alive() { # pidfile, command name -> true when the process it names runs that command
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] &&
    [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]  # a zombie is dead
}

holder_ok() { # host -> true when its holder runs in its own mount namespace
  local pidfile=$BASE/$1/holder.pid pid
  alive "$pidfile" sleep || return 1
  pid=$(cat "$pidfile")
  [ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
    [ "$(readlink "/proc/$pid/ns/net")" = "$(stat -L -c 'net:[%i]' "/run/netns/vft-$1" 2>/dev/null)" ]
}

in_host() { # host, command... : run in the host's namespaces with a clean environment
  local host=$1; shift
  nsenter --target "$(cat "$BASE/$host/holder.pid")" --net --mount --uts -- \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}

# -- network: two namespaces and the veth pair between them --------------------------------------
setup_network() {
  local h
  for h in "${HOSTS[@]}"; do
    [ -e "/run/netns/vft-$h" ] || ip netns add "vft-$h"
  done
  if ! ip -n vft-hv1 link show "$(veth hv1)" >/dev/null 2>&1; then
    ip -n vft-hv2 link del "$(veth hv2)" 2>/dev/null || true
    ip link add "$(veth hv1)" netns vft-hv1 type veth peer name "$(veth hv2)" netns vft-hv2
  fi
  for h in "${HOSTS[@]}"; do
    ip -n "vft-$h" link set lo up
    ip -n "vft-$h" addr replace "$(addr "$h")/24" dev "$(veth "$h")"
    ip -n "vft-$h" link set "$(veth "$h")" up
  done
}

# -- per-host configuration (rewritten on every run; host_uuid is kept) --------------------------
write_config() {
  local h=$1 d=$BASE/$1 uuid
  mkdir -p "$d"/etc/qemu/networks "$d"/etc/storage "$d"/lib/images "$d"/lib/qemu/nvram \
           "$d"/log/qemu "$d"/cache/qemu "$d"/run
  [ -s "$d/host_uuid" ] || cat /proc/sys/kernel/random/uuid > "$d/host_uuid"
  uuid=$(cat "$d/host_uuid")
  cat > "$d/etc/libvirtd.conf" <<CONF
$MARK
# TCP without authentication on this simulated host's own address only: the veth link joins the
# two test namespaces alone, nothing else can reach it.
listen_tls = 0
listen_tcp = 1
listen_addr = "$(addr "$h")"
auth_tcp = "none"
auth_unix_ro = "none"
auth_unix_rw = "none"
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
host_uuid = "$uuid"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
  cat > "$d/etc/qemu.conf" <<CONF
$MARK
user = "root"
group = "root"
security_driver = "none"
remember_owner = 0
cgroup_controllers = [ ]
migration_address = "$(addr "$h")"
migration_host = "$(addr "$h")"
CONF
  [ -f "$d/etc/virtlogd.conf" ] || printf '%s\n' "$MARK" > "$d/etc/virtlogd.conf"
}

# -- the holder: a sleeper that keeps the mount and UTS namespaces ---------------------------------
start_holder() {
  local h=$1 d=$BASE/$1
  holder_ok "$h" && return 0
  rm -f "$d/holder.pid"
  log "starting the namespace holder of $h"
  # shellcheck disable=SC2016  # expanded by the inner shell
  setsid nsenter --net="/run/netns/vft-$h" -- unshare --mount --uts --propagation private -- \
    /bin/bash -c '
      set -e
      h=$1 d=$2
      hostname "vft-$h"
      mount -t sysfs sysfs /sys 2>/dev/null || true   # /sys/class/net of this namespace
      mount --bind "$d/etc" /etc/libvirt
      mount --bind "$d/lib" /var/lib/libvirt
      mount --bind "$d/log" /var/log/libvirt
      mount --bind "$d/cache" /var/cache/libvirt
      echo $$ > "$d/holder.pid.tmp"
      mount --bind "$d/run" /run
      mv "$d/holder.pid.tmp" "$d/holder.pid"
      exec sleep infinity' holder "$h" "$d" </dev/null >"$d/holder.log" 2>&1 &
  for _ in $(seq 1 100); do
    [ -s "$d/holder.pid" ] && break
    sleep 0.05
  done
  holder_ok "$h" || die "the namespace holder of $h did not start: $(cat "$d/holder.log" 2>/dev/null)"
}

# -- daemons ---------------------------------------------------------------------------------------
start_daemons() {
  local h=$1 d=$BASE/$1 uri
  uri=$(unix_uri "$h")
  if ! alive "$d/run/virtlogd.pid" virtlogd; then
    log "starting virtlogd of $h"
    in_host "$h" /usr/sbin/virtlogd -d -p /run/virtlogd.pid </dev/null >>"$d/log/daemons.out" 2>&1
  fi
  if ! alive "$d/run/libvirtd.pid" libvirtd; then
    log "starting libvirtd of $h (TCP on $(addr "$h"))"
    in_host "$h" /usr/sbin/libvirtd -d --listen -p /run/libvirtd.pid </dev/null >>"$d/log/daemons.out" 2>&1
  fi
  for _ in $(seq 1 150); do
    virsh -q -c "$uri" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "libvirtd of $h does not answer on $uri (see $d/log/libvirtd.log)"
}

seed_caps_cache() { # from, to: copy QEMU capability probes (a cold daemon probes QEMU for ~8 s)
  local from=$1/qemu/capabilities to=$2/qemu/capabilities
  [ -d "$from" ] || return 0
  if ! ls "$to"/*.xml >/dev/null 2>&1 && ls "$from"/*.xml >/dev/null 2>&1; then
    mkdir -p "$to"
    cp -a "$from"/*.xml "$to"/
  fi
}

# -- objects the tests expect on both hosts ------------------------------------------------------------
ensure_objects() {
  local h=$1 uri tmp info
  uri=$(unix_uri "$h")
  tmp=$(mktemp -d)
  if ! virsh -q -c "$uri" net-info vft-net >/dev/null 2>&1; then
    printf "<network><name>vft-net</name><bridge name='vftbr0' stp='off'/></network>\n" > "$tmp/net.xml"
    virsh -q -c "$uri" net-define "$tmp/net.xml" >/dev/null
  fi
  info=$(virsh -q -c "$uri" net-info vft-net)
  grep -Eq '^Active: +yes' <<<"$info" || virsh -q -c "$uri" net-start vft-net >/dev/null
  ensure_pool "$uri" vft-images /var/lib/libvirt/images "$tmp"
  ensure_pool "$uri" vft-shared "$SHARED" "$tmp"
  rm -rf "$tmp"
}

ensure_pool() { # uri, name, dir, tmpdir
  local uri=$1 name=$2 dir=$3 tmp=$4 info
  if ! virsh -q -c "$uri" pool-info "$name" >/dev/null 2>&1; then
    printf "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>\n" "$name" "$dir" > "$tmp/pool.xml"
    virsh -q -c "$uri" pool-define "$tmp/pool.xml" >/dev/null
  fi
  info=$(virsh -q -c "$uri" pool-info "$name")
  grep -Eq '^State: +running' <<<"$info" || virsh -q -c "$uri" pool-start "$name" >/dev/null
}

mkdir -p "$BASE" "$SHARED"
setup_network
prev=
for h in "${HOSTS[@]}"; do
  write_config "$h"
  if [ -z "$prev" ]; then
    # the root daemon's probes are of the same QEMU binary; libvirtd re-probes if they are stale
    seed_caps_cache /var/cache/libvirt "$BASE/$h/cache"
  elif ! ls "$BASE/$h/cache/qemu/capabilities"/*.xml >/dev/null 2>&1; then
    # make sure the first daemon has probed QEMU, then give the second its probes
    virsh -q -c "$(unix_uri "$prev")" domcapabilities --virttype kvm >/dev/null 2>&1 ||
      virsh -q -c "$(unix_uri "$prev")" domcapabilities >/dev/null 2>&1 || true
    seed_caps_cache "$BASE/$prev/cache" "$BASE/$h/cache"
  fi
  start_holder "$h"
  start_daemons "$h"
  ensure_objects "$h"
  prev=$h
done
for h in "${HOSTS[@]}"; do
  echo "$h $(unix_uri "$h") $(tcp_uri "$h")"
done

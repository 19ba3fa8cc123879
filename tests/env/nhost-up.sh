#!/usr/bin/env bash
# N simulated hypervisor hosts on this machine, for tests and benchmarks of fleets across many hypervisors
# (tests/integration/test_hypervisors.py, bench/hypervisors.py):  tests/env/nhost-up.sh [N]   (default 3)
#
# The generalisation of tests/env/twohost-up.sh (which stays as it is for the migration tests; the two sets use
# different names, addresses and directories, so both can run at once). Each host nhK (K = 1..N) is:
#   - a network namespace vft-nhK with one veth into the switch namespace vft-nhsw, whose bridge vft-nhbr joins
#     all hosts on 10.254.78.0/24 (nhK is 10.254.78.K); nothing else, no route out, so traffic between the
#     hosts never leaves these namespaces;
#   - a mount namespace in which /etc/libvirt, /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt and /run
#     are private bind mounts of $BASE/nhK/{etc,lib,log,cache,run};
#   - a UTS namespace with its own hostname (vft-nhK) and its own host_uuid in libvirtd.conf;
#   - its own virtlogd and libvirtd; libvirtd listens on TCP on the host's own address only, auth_tcp = "none"
#     (acceptable only because that bridge joins these namespaces alone).
# A sleeping holder process per host keeps the namespaces; daemons are started in them with nsenter.
# The controller (the root namespace) reaches each libvirtd through its unix socket
# (qemu+unix:///system?socket=$BASE/nhK/run/libvirt/libvirt-sock); the hosts reach each other over TCP
# (qemu+tcp://10.254.78.K/system). Everything outside the private mounts (e.g. /var/lib/virtfleet-bench,
# $SHARED) is the same directory on every host.
#
# Idempotent: starts only what is not running; a larger N adds hosts, a smaller N leaves the others running
# (tests/env/nhost-down.sh stops them all). Never touches the root namespace's libvirtd, /etc/libvirt or the
# two-host set. Prints one line per host 1..N: "<name> <unix-socket URI> <TCP URI>".
set -euo pipefail

COUNT=${1:-3}
BASE=${VIRTFLEET_NHOST_DIR:-/var/lib/virtfleet-test/nhost}
SHARED=${VIRTFLEET_NHOST_SHARED:-/var/lib/virtfleet-test/nhost-shared}
SUBNET=10.254.78
SWITCH=vft-nhsw
BRIDGE=vft-nhbr
MARK="# managed by virtfleet.virt tests/env/nhost-up.sh"

log() { printf '[nhost-up] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "nhost-up.sh must run as root"
if ! [[ $COUNT =~ ^[0-9]+$ ]] || [ "$COUNT" -lt 1 ] || [ "$COUNT" -gt 200 ]; then
  die "usage: nhost-up.sh [N], 1 <= N <= 200"
fi
for cmd in ip nsenter unshare virsh /usr/sbin/libvirtd /usr/sbin/virtlogd; do
  command -v "$cmd" >/dev/null || die "$cmd not found: run tests/env/libvirt-up.sh first (it installs libvirt)"
done

HOSTS=()
for k in $(seq 1 "$COUNT"); do HOSTS+=("nh$k"); done

addr() { echo "$SUBNET.${1#nh}"; }
unix_uri() { echo "qemu+unix:///system?socket=$BASE/$1/run/libvirt/libvirt-sock"; }
tcp_uri() { echo "qemu+tcp://$(addr "$1")/system"; }

alive() { # pidfile, command name -> true when the process it names runs that command (and is no zombie)
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] &&
    [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

holder_ok() { # host -> true when its holder runs in its own mount namespace and in the host's netns
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

# -- network: the switch namespace with its bridge, one namespace and veth per host ------------------
setup_switch() {
  [ -e "/run/netns/$SWITCH" ] || ip netns add "$SWITCH"
  ip -n "$SWITCH" link show "$BRIDGE" >/dev/null 2>&1 || ip -n "$SWITCH" link add "$BRIDGE" type bridge
  ip -n "$SWITCH" link set lo up
  ip -n "$SWITCH" link set "$BRIDGE" up
}

setup_host_network() {
  local h=$1 port=vft-p${1#nh}
  [ -e "/run/netns/vft-$h" ] || ip netns add "vft-$h"
  if ! ip -n "vft-$h" link show vft-eth0 >/dev/null 2>&1; then
    ip -n "$SWITCH" link del "$port" 2>/dev/null || true
    ip link add vft-eth0 netns "vft-$h" type veth peer name "$port" netns "$SWITCH"
  fi
  ip -n "$SWITCH" link set "$port" master "$BRIDGE"
  ip -n "$SWITCH" link set "$port" up
  ip -n "vft-$h" link set lo up
  ip -n "vft-$h" addr replace "$(addr "$h")/24" dev vft-eth0
  ip -n "vft-$h" link set vft-eth0 up
}

# -- per-host configuration (rewritten on every run; host_uuid is kept) ------------------------------
write_config() {
  local h=$1 d=$BASE/$1 uuid
  mkdir -p "$d"/etc/qemu/networks "$d"/etc/storage "$d"/lib/images "$d"/lib/qemu/nvram \
           "$d"/log/qemu "$d"/cache/qemu "$d"/run
  [ -s "$d/host_uuid" ] || cat /proc/sys/kernel/random/uuid > "$d/host_uuid"
  uuid=$(cat "$d/host_uuid")
  cat > "$d/etc/libvirtd.conf" <<CONF
$MARK
# TCP without authentication on this simulated host's own address only: the bridge in the namespace
# $SWITCH joins the test namespaces alone, nothing else can reach it.
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

# -- the holder: a sleeper that keeps the mount and UTS namespaces -----------------------------------
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

# -- daemons -----------------------------------------------------------------------------------------
start_daemons() { # host: start what is not running (does not wait for libvirtd to answer)
  local h=$1 d=$BASE/$1
  if ! alive "$d/run/virtlogd.pid" virtlogd; then
    log "starting virtlogd of $h"
    in_host "$h" /usr/sbin/virtlogd -d -p /run/virtlogd.pid </dev/null >>"$d/log/daemons.out" 2>&1
  fi
  if ! alive "$d/run/libvirtd.pid" libvirtd; then
    log "starting libvirtd of $h (TCP on $(addr "$h"))"
    in_host "$h" /usr/sbin/libvirtd -d --listen -p /run/libvirtd.pid </dev/null >>"$d/log/daemons.out" 2>&1
  fi
}

wait_answers() {
  local h=$1 uri
  uri=$(unix_uri "$h")
  for _ in $(seq 1 300); do
    virsh -q -c "$uri" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "libvirtd of $h does not answer on $uri (see $BASE/$h/log/libvirtd.log)"
}

seed_caps_cache() { # from, to: copy QEMU capability probes (a cold daemon probes QEMU for ~8 s)
  local from=$1/qemu/capabilities to=$2/qemu/capabilities
  [ -d "$from" ] || return 0
  if ! ls "$to"/*.xml >/dev/null 2>&1 && ls "$from"/*.xml >/dev/null 2>&1; then
    mkdir -p "$to"
    cp -a "$from"/*.xml "$to"/
  fi
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

ensure_objects() { # the pools every host has: its private images, the shared directory
  local h=$1 uri tmp
  uri=$(unix_uri "$h")
  tmp=$(mktemp -d)
  ensure_pool "$uri" vft-images /var/lib/libvirt/images "$tmp"
  ensure_pool "$uri" vft-shared "$SHARED" "$tmp"
  rm -rf "$tmp"
}

mkdir -p "$BASE" "$SHARED"
setup_switch
for h in "${HOSTS[@]}"; do
  setup_host_network "$h"
  write_config "$h"
  # the root daemon's probes are of the same QEMU binary; libvirtd re-probes if they are stale
  seed_caps_cache /var/cache/libvirt "$BASE/$h/cache"
  start_holder "$h"
  start_daemons "$h"
done
for h in "${HOSTS[@]}"; do  # the daemons start at the same time; wait for each, then give it its objects
  wait_answers "$h"
  ensure_objects "$h"
done
for h in "${HOSTS[@]}"; do
  echo "$h $(unix_uri "$h") $(tcp_uri "$h")"
done

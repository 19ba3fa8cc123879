#!/usr/bin/env bash
# Tear down the simulated hypervisor hosts of tests/env/nhost-up.sh (all of them, whatever N was): stop the
# guests, daemons and namespace holders it started (by their pid files only), then remove the hosts' network
# namespaces and the switch namespace. The root namespace's libvirtd, /etc/libvirt and the two-host set of
# tests/env/twohost-up.sh are never touched. Keeps $BASE/nhK/{etc,cache,host_uuid} (configuration and QEMU
# probes, for a quick next start); removes the hosts' state, logs and images.
set -uo pipefail

BASE=${VIRTFLEET_NHOST_DIR:-/var/lib/virtfleet-test/nhost}
SWITCH=vft-nhsw

log() { printf "[nhost-down] %s %s\n" "$(date +%T.%N | cut -c1-12)" "$*" >&2; }

running() { # pid -> true while it runs (a zombie waiting for init to reap it does not)
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

stop_pidfile() { # pidfile, what, command name: stops that process only if it still is what we started
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  case $(cat "/proc/$pid/comm" 2>/dev/null) in
    "$3"*) ;;
    *) log "not stopping pid $pid of $1: it is no longer $3"; return 0 ;;
  esac
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do running "$pid" || break; sleep 0.1; done
  if running "$pid"; then
    kill -9 "$pid" 2>/dev/null
  fi
  log "stopped $2 ($pid)"
}

[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
hosts=()
for d in "$BASE"/nh*; do
  [ -d "$d" ] && hosts+=("$(basename "$d")")
done
for h in "${hosts[@]}"; do
  d=$BASE/$h
  uri="qemu+unix:///system?socket=$d/run/libvirt/libvirt-sock"
  # guests first, through their daemon while it runs...
  if [ -S "$d/run/libvirt/libvirt-sock" ]; then
    for dom in $(timeout 30 virsh -q -c "$uri" list --name 2>/dev/null); do
      timeout 30 virsh -q -c "$uri" destroy "$dom" >/dev/null 2>&1 && log "destroyed guest $dom on $h"
    done
  fi
  stop_pidfile "$d/run/libvirtd.pid" "libvirtd of $h" libvirtd
  # ...then any QEMU a dead daemon left behind, by the pid files that daemon wrote
  for pidfile in "$d"/run/libvirt/qemu/*.pid; do
    [ -e "$pidfile" ] || continue
    case $(basename "$pidfile") in driver.pid) continue ;; esac
    stop_pidfile "$pidfile" "QEMU $(basename "$pidfile" .pid) of $h" qemu
  done
  stop_pidfile "$d/run/virtlogd.pid" "virtlogd of $h" virtlogd
  stop_pidfile "$d/holder.pid" "namespace holder of $h" sleep
  rm -rf "${d:?}/run" "${d:?}/lib" "${d:?}/log" "${d:?}/holder.pid" "${d:?}/holder.log" "${d:?}/etc/qemu" \
         "${d:?}/etc/storage"
  if [ -e "/run/netns/vft-$h" ]; then
    ip netns del "vft-$h" && log "removed network namespace vft-$h"
  fi
done
if [ -e "/run/netns/$SWITCH" ]; then
  ip netns del "$SWITCH" && log "removed network namespace $SWITCH"
fi
exit 0

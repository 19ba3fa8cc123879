#!/usr/bin/env bash
# Stop the vCenter simulator that tests/env/vcsim-up.sh started from this state
# directory (and nothing else: the pid must still be one of our vcsim builds).
set -euo pipefail
STATE_DIR=${VIRTFLEET_VCSIM_DIR:-/run/virtfleet-test/vcsim}
CACHE_DIR=${VIRTFLEET_VCSIM_CACHE:-/var/cache/virtfleet/vcsim}
pidfile="$STATE_DIR/vcsim.pid"
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
case "$exe" in
  "$CACHE_DIR"/vcsim-*)
    kill -TERM "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    printf '[vcsim-down] stopped the simulator (pid %s)\n' "$pid" >&2
    ;;
esac
rm -f "$pidfile" "$STATE_DIR/env.json"

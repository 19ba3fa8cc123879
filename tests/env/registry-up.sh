#!/usr/bin/env bash
# Start a private container registry for the image tests (Debian's docker-registry package, never from the
# internet) on 127.0.0.1:<free port>, with its own storage under /var/lib/virtfleet-test/registry-<port>.
# Prints, on the last line of stdout, "127.0.0.1:PORT PID STORAGE_DIR"; the caller stops it (kill PID) and
# removes STORAGE_DIR. Idempotent install: only a missing package is installed, and the package's own service
# is kept from starting while it is installed (a policy-rc.d that refuses starts, only when none is there).
set -euo pipefail
log() { printf '[registry-up] %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "registry-up.sh must run as root" >&2; exit 1; }

exec 9>/run/virtfleet-registry-install.lock
flock 9
if ! dpkg-query -W -f='${Status}' docker-registry 2>/dev/null | grep -q "install ok installed"; then
  log "installing docker-registry"
  policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null || {
    [ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d
fi
flock -u 9

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=/var/lib/virtfleet-test/registry-$port
mkdir -p "$dir/storage"
cat > "$dir/config.yml" <<CONF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
CONF
setsid docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 < /dev/null &
pid=$!
echo "$pid" > "$dir/pid"
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/v2/', timeout=2)" 2>/dev/null; then
    log "registry on 127.0.0.1:$port (pid $pid, storage $dir)"
    echo "127.0.0.1:$port $pid $dir"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || { log "the registry exited: $(tail -5 "$dir/log")"; exit 1; }
  sleep 0.3
done
kill "$pid" 2>/dev/null || true
log "the registry did not answer on 127.0.0.1:$port within 30 s: $(tail -5 "$dir/log")"
exit 1

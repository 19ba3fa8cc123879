#!/usr/bin/env bash
# Build and start govmomi's vCenter simulator for the vSphere tests (as root).
# Idempotent: installs only missing Debian packages, rebuilds only when
# tests/env/vcsim/main.go (or the Go toolchain) changed, and starts the simulator
# only when it is not already running from this state directory.
#
# It listens on 127.0.0.1 (TLS, with a CA made at start) and accepts one user
# name and a random password kept in the state directory (mode 0600).  The last
# line printed is the state directory; the tests read from it:
#   env.json  url, host, port, username, ca_file, pid
#   ca.pem    the CA that signed the simulator's certificate
#   password  the password of env.json's username
#   nas/      the simulator's working directory. govmomi's CreateNasDatastore names the
#             datastore after the last element of the spec's localPath and needs that path
#             to be a directory on the simulator's machine (relative paths resolve against its
#             working directory): a test that mounts NFS datastore "X" makes nas/X first
#             (tests/integration/test_vsphere_storage.py).
# Environment: VIRTFLEET_VCSIM_DIR (state directory, default /run/virtfleet-test/vcsim),
#   VIRTFLEET_VCSIM_MACHINES (VMs made per cluster and standalone host at start, default 2).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
STATE_DIR=${VIRTFLEET_VCSIM_DIR:-/run/virtfleet-test/vcsim}
MACHINES=${VIRTFLEET_VCSIM_MACHINES:-2}
CACHE_DIR=${VIRTFLEET_VCSIM_CACHE:-/var/cache/virtfleet/vcsim}
PKGS=(golang-go golang-github-vmware-govmomi-dev)

log() { printf '[vcsim-up] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "vcsim-up.sh must run as root (it installs Debian packages)" >&2; exit 1; }

# Install and build one at a time: the fuzz run's vSphere targets start simulators of their own side by side,
# and two apt-gets (or two go builds into one file) at once fail. Released before the simulator starts.
mkdir -p "$CACHE_DIR"
exec 8>"$CACHE_DIR/.build.lock"
flock 8
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Build when the source or the toolchain changed; the binary's name carries their hash.
src="$here/tests/env/vcsim"
key=$( (cat "$src"/*.go; go version; dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev) | sha256sum | cut -c1-16)
bin="$CACHE_DIR/vcsim-$key"
mkdir -p "$CACHE_DIR"
if [ ! -x "$bin" ]; then
  log "building $bin"
  (cd "$src" && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS='' GOCACHE="$CACHE_DIR/gocache" \
     go build -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
fi
exec 8>&-

mkdir -p "$STATE_DIR"
chmod 0755 "$STATE_DIR"
pidfile="$STATE_DIR/vcsim.pid"

running_pid() { # the pid of the simulator this directory started, if it still runs
  [ -f "$pidfile" ] || return 1
  local pid; pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$bin" ] || return 2
  echo "$pid"
}

ready() { # env.json written by this pid and the port accepts connections
  local pid=$1 port
  [ -f "$STATE_DIR/env.json" ] || return 1
  grep -q "\"pid\": $pid," "$STATE_DIR/env.json" || return 1
  grep -q "\"machines\": $MACHINES," "$STATE_DIR/env.json" || return 1
  port=$(sed -n 's/.*"port": "\([0-9]*\)".*/\1/p' "$STATE_DIR/env.json")
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

set +e
pid=$(running_pid); status=$?
set -e
if [ $status = 0 ] && ready "$pid"; then
  log "already running (pid $pid)"
  echo "$STATE_DIR"
  exit 0
fi
if [ $status = 0 ] || [ $status = 2 ]; then
  # ours, but an older build or another model size: replace it
  bash "$here/tests/env/vcsim-down.sh" >&2
fi

if [ ! -s "$STATE_DIR/password" ]; then
  (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=\n' > "$STATE_DIR/password")
fi
chmod 0600 "$STATE_DIR/password"
rm -f "$STATE_DIR/env.json"

log "starting the simulator ($MACHINES VMs per compute resource)"
mkdir -p "$STATE_DIR/nas"
chmod 0755 "$STATE_DIR/nas"
(cd "$STATE_DIR/nas" && exec setsid "$bin" -listen 127.0.0.1:0 -dir "$STATE_DIR" \
  -password-file "$STATE_DIR/password" -machines "$MACHINES" </dev/null >"$STATE_DIR/vcsim.log" 2>&1) &
pid=$!
echo "$pid" > "$pidfile"

for _ in $(seq 1 150); do
  if ready "$pid"; then
    log "ready: $(sed -n 's/.*"url": "\(.*\)".*/\1/p' "$STATE_DIR/env.json") (pid $pid)"
    echo "$STATE_DIR"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
log "the simulator did not come up; its log:"
cat "$STATE_DIR/vcsim.log" >&2
exit 1

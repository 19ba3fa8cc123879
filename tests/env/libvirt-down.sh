#!/usr/bin/env bash
# Stop only what libvirt-up.sh started, and restore qemu.conf if it replaced one.
set -uo pipefail
STATE_DIR=${VIRTFLEET_STATE_DIR:-/run/virtfleet-test}
[ -f "$STATE_DIR/started" ] || exit 0
for name in $(tac "$STATE_DIR/started"); do
  pidfile=/run/$name.pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "[libvirt-down] stopped $name"
  fi
done
rm -f "$STATE_DIR/started"
if [ -f "$STATE_DIR/qemu.conf.orig" ]; then
  mv "$STATE_DIR/qemu.conf.orig" /etc/libvirt/qemu.conf
elif [ -f "$STATE_DIR/qemu.conf.written" ]; then
  rm -f /etc/libvirt/qemu.conf
fi
rm -f "$STATE_DIR/qemu.conf.written"

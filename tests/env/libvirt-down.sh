#!/usr/bin/env bash
# Stop only what libvirt-up.sh started, and restore qemu.conf if it replaced one.
set -uo pipefail
STATE_DIR=${VIRTFLEET_STATE_DIR:-/run/virtfleet-test}
[ -f "$STATE_DIR/started" ] || exit 0
for name in $(tac "$STATE_DIR/started"); do
  pidfile=/run/$name.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 50); do kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null || break; sleep 0.1; done
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

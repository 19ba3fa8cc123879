#!/usr/bin/env bash
# Bring up rootful Podman for the container tests on Debian (as root) and print, on the last line of
# stdout, the podman command the tests pass as podman_path (tests/env/podman-wrapper).
# Idempotent: installs only missing packages, creates the mount namespace and the test image only
# when they are missing.
#
# Host quirks of these machines (docs/host-quirks.md, "Podman"), handled here and in the wrapper only:
#   - the hybrid cgroup layout (cgroup v1 controllers + cgroup2 at /sys/fs/cgroup/unified) makes crun
#     refuse to run containers: podman runs in a persistent mount namespace without that mount;
#   - crun cannot set the containers' nofile limit above the host's hard limit: the wrapper lowers
#     nofile/nproc (1024/1000) before podman runs.
# No registry is reachable: the test image is imported from a busybox-static root filesystem.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NS_DIR=${VIRTFLEET_PODMAN_NS_DIR:-/run/virtfleet-podman}
NS=$NS_DIR/mntns
IMAGE=localhost/vft-busybox:latest
PODMAN="$here/podman-wrapper"
PKGS=(podman crun conmon golang-github-containers-common netavark aardvark-dns iptables uidmap
      fuse-overlayfs catatonit busybox-static util-linux)

log() { printf '[podman-up] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "podman-up.sh must run as root" >&2; exit 1; }
mkdir -p "$NS_DIR"
exec 9>"$NS_DIR.lock"
flock 9

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# One persistent mount namespace, bound to a file, for every podman invocation: conmon and the
# containers' mounts live there, so a later `podman ps` or `podman stop` sees what `podman run` did.
if [ "$(findmnt -n -o FSTYPE --target "$NS" 2>/dev/null)" != nsfs ]; then
  # A mount namespace can only be bound onto a file of a private mount.
  mountpoint -q "$NS_DIR" || mount --bind "$NS_DIR" "$NS_DIR"
  mount --make-private "$NS_DIR"
  touch "$NS"
  unshare --mount="$NS" --propagation private true
  rm -f "$NS_DIR/verified"
  log "created the mount namespace $NS for podman"
fi
if [ "$(nsenter --mount="$NS" findmnt -n -o FSTYPE /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2 ]; then
  nsenter --mount="$NS" umount /sys/fs/cgroup/unified
  log "unmounted the cgroup2 'unified' hierarchy inside $NS (crun refuses hybrid cgroups)"
fi

# The test image: busybox-static (a static binary and its applet links), no registry needed.
if ! "$PODMAN" image exists "$IMAGE"; then
  root=$(mktemp -d /tmp/vft-busybox-root.XXXXXX)
  trap 'rm -rf "$root" "$root.tar"' EXIT
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/var/www"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  echo 'virtfleet test image' > "$root/var/www/index.html"
  chmod 1777 "$root/tmp"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$root.tar" .
  # An environment variable and a label from the image: the tests check they never count as changes.
  "$PODMAN" import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' \
    --change 'ENV VFT_IMAGE_DEFAULT=from-image' --change 'LABEL org.virtfleet.test.image=vft-busybox' \
    "$root.tar" "$IMAGE" >/dev/null
  log "imported $IMAGE from busybox-static"
fi

# Prove once per namespace that the quirks are handled and that state survives across invocations.
if [ ! -f "$NS_DIR/verified" ]; then
  probe=vft-probe-$$
  "$PODMAN" run --rm "$IMAGE" true
  "$PODMAN" run -d --name "$probe" "$IMAGE" sleep 60 >/dev/null
  seen=$("$PODMAN" ps --filter "name=^$probe\$" --format '{{.Names}}')
  status=$("$PODMAN" container inspect --format '{{.State.Status}}' "$probe")
  "$PODMAN" rm --force --time 0 "$probe" >/dev/null
  if [ "$seen $status" != "$probe running" ]; then
    log "a second podman invocation does not see the container the first one started (got: '$seen $status')"
    exit 1
  fi
  touch "$NS_DIR/verified"
  log "podman $("$PODMAN" version --format '{{.Client.Version}}') ready: containers run and persist across invocations"
fi
echo "$PODMAN"

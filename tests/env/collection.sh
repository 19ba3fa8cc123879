#!/usr/bin/env bash
# Print a collections path in which ansible_collections/virtfleet/virt is this checkout.
# One directory per checkout, so two checkouts on one machine never test each other's code.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
key=$(printf '%s' "$here" | sha256sum | cut -c1-12)
root=${VIRTFLEET_COLLECTIONS:-/tmp/virtfleet-collections-$key}
mkdir -p "$root/ansible_collections/virtfleet"
ln -sfn "$here" "$root/ansible_collections/virtfleet/virt"
echo "$root"

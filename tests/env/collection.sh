#!/usr/bin/env bash
# Print a collections path in which ansible_collections/virtfleet/virt is this checkout.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
root=${VIRTFLEET_COLLECTIONS:-/tmp/virtfleet-collections}
mkdir -p "$root/ansible_collections/virtfleet"
ln -sfn "$here" "$root/ansible_collections/virtfleet/virt"
echo "$root"

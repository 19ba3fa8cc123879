#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection laid out as ansible_collections/virtfleet/virt.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
venv=$1; shift
bash "$here/tests/env/ansible-test-offline.sh" "$venv"
dest=$(mktemp -d /tmp/virtfleet-sanity.XXXXXX)
trap 'rm -rf "$dest"' EXIT
mkdir -p "$dest/ansible_collections/virtfleet/virt"
(cd "$here" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$dest/ansible_collections/virtfleet/virt"
cd "$dest/ansible_collections/virtfleet/virt"
PATH="$venv/bin:$PATH" ansible-test sanity --venv --python 3.11 --color no "$@"

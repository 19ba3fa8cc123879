#!/usr/bin/env bash
# Print the path of the project's virtualenv, creating it when missing.
# The venv lives outside the repository (so ansible-test does not scan it) and
# is keyed by the requirements it was built from: a change makes a new one.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
req="$here/tests/requirements.txt"
key=$(sha256sum < "$req" | cut -c1-12)
venv=${VIRTFLEET_VENV:-$HOME/.cache/virtfleet/venv-$key}
if [ ! -x "$venv/bin/ansible-playbook" ] || [ ! -f "$venv/.complete" ]; then
  py=$(command -v python3.11 || command -v python3)
  if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$venv"
  "$py" -m venv "$venv" >&2
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/pip" install -q -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv"

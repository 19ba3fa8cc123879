#!/usr/bin/env bash
# The whole test suite, as the README's quick start and CI (.ci/run) run it.
# On a fresh Debian 12 machine, as root: installs what it needs (Debian
# packages, a virtualenv), starts libvirtd/virtlogd, then runs
#   1. ansible-test sanity
#   2. ansible-lint (production profile) on roles and playbooks, changelog and docs lint
#   3. pytest: unit tests, then integration tests against the real daemons.
# Daemons this script started are stopped at the end (set VIRTFLEET_KEEP_ENV=1 to keep them).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
[ "$(id -u)" = 0 ] || { echo "tests/run.sh needs root (it installs packages and starts libvirtd)" >&2; exit 1; }

step() { printf '\n=== %s (%s) ===\n' "$*" "$(date -u +%H:%M:%S)"; }

step "test environment"
# shellcheck disable=SC2317  # called by the EXIT trap
teardown() {
  # pytest's fixtures stop what they started; this catches a run killed before their teardown
  bash "$here/tests/env/twohost-down.sh" || true
  bash "$here/tests/env/nhost-down.sh" || true
  bash "$here/tests/env/vcsim-down.sh" || true
  bash "$here/tests/env/libvirt-down.sh"
}
guest_pid=
# shellcheck disable=SC2317  # called by the EXIT trap
on_exit() {
  [ -z "$guest_pid" ] || kill -- -"$guest_pid" 2>/dev/null || true
  [ -n "${VIRTFLEET_KEEP_ENV:-}" ] || teardown
}
trap on_exit EXIT
[ -z "${VIRTFLEET_KEEP_ENV:-}" ] || export VIRTFLEET_KEEP_TWOHOST=1
bash tests/env/libvirt-up.sh
bash tests/env/clean-leftovers.sh
# with shellcheck installed, ansible-test sanity checks the shell scripts too
if ! command -v shellcheck >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
fi
venv=$(bash tests/env/venv.sh)
export VIRTFLEET_VENV_DIR="$venv"
VIRTFLEET_COLLECTIONS_PATH=$(bash tests/env/collection.sh)
VIRTFLEET_GUEST_IMAGE=$(bash tests/env/guest-image.sh)
export VIRTFLEET_COLLECTIONS_PATH VIRTFLEET_GUEST_IMAGE
export PATH="$venv/bin:$PATH"
echo "venv: $venv"
ansible_version=$("$venv/bin/ansible" --version)
echo "${ansible_version%%$'\n'*}"

# The real Linux test guest (tests/env/linux-guest.sh, minutes when not cached) is built in the
# background while sanity and the linters run; its tools are installed first, in the foreground, so
# the build takes no apt lock. The linux_guest fixture runs the script again: it waits on the
# script's lock and finds the image cached, or reports the build's failure in the tests that need it.
bash tests/env/linux-guest.sh --tools-only >/dev/null
guest_log=$(mktemp /tmp/virtfleet-linux-guest.XXXXXX)
setsid bash tests/env/linux-guest.sh >"$guest_log" 2>&1 &
guest_pid=$!

if [ -z "${VIRTFLEET_SKIP_SANITY:-}" ]; then
  step "ansible-test sanity"
  bash tests/env/sanity.sh "$venv"
fi

step "ansible-lint"
ANSIBLE_COLLECTIONS_PATH="$VIRTFLEET_COLLECTIONS_PATH" ansible-lint --nocolor playbooks roles

step "changelog and collection docs lint (antsibull-changelog, antsibull-docs)"
bash tests/env/docs-site.sh --lint

step "real Linux guest image (background build)"
if wait "$guest_pid"; then tail -n 2 "$guest_log"; else echo "the build failed; the linux_guest tests will say why:"; tail -n 20 "$guest_log"; fi
guest_pid=
rm -f "$guest_log"

step "pytest: unit and integration"
# In the files' own order. pytest-randomly is installed: `python -m pytest -p randomly ...` shuffles the files
# and the tests in each with a new seed (printed as "Using --randomly-seed=N"; add --randomly-seed=N to
# replay one). Its first full run found a post-copy race in migrate (fixed) and one failure of the
# host_maintenance Molecule scenario not yet explained, so CI keeps the files' order for now.
set +e
"$venv/bin/python" -m pytest -p no:cacheprovider -p no:randomly -ra --durations=25 tests/unit tests/integration "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure of this suite too.
exit $rc

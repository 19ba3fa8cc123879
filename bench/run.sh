#!/usr/bin/env bash
# Run the benchmarks (as root, on a machine where tests/env/libvirt-up.sh works).
#   bench/run.sh fleet [--sizes 20,50,100 --reps 3 ...]   -> bench/results/fleet-<date>.json
#   bench/run.sh migration [--guests 4 --runs 3 ...]       -> bench/results/migration-<date>.json
#   bench/run.sh guests [--reps 3 ...]                     -> bench/results/guests-<date>.json
#     (3 real Linux guests under TCG; builds the image with tests/env/linux-guest.sh if needed)
#   bench/run.sh snapshots [--sizes 50 --reps 3 ...]       -> bench/results/snapshots-<date>.json
#     (snapshot then delete on N stopped qcow2 guests: fleet, a vm_snapshot loop, raw libvirt-python)
#   bench/run.sh scale [--sizes 10,100,1000 --reps 3 ...]   -> bench/results/scale-<date>.json and .png
#     (one hypervisor holding up to 1000 VMs: fleet no-op, --check, vm_info, define from nothing, the module's
#      peak RSS, each against raw libvirt-python; the no-op cost curve with the community.libvirt loop)
#   bench/run.sh hypervisors [--hosts 8 --per-host 20 --reps 3 ...] -> bench/results/hypervisors-<date>.json
#     (a fleet across N simulated hypervisors of tests/env/nhost-up.sh: the vm_fleet role's per-host form with
#      forks = N, the same playbook with forks = 1, raw libvirt-python with a thread per host)
# bench/vsphere_noop.py brings its own simulator and community.vmware: run it directly (bench/README.md).
# A separate virtualenv holds the `ansible` package, which brings community.libvirt
# (the loop we compare with); the test suite's venv stays lean.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-fleet}; shift || true
case "$what" in
  fleet|migration|guests|snapshots|hypervisors|scale) ;;
  *) echo "bench/run.sh runs fleet, migration, guests, snapshots, hypervisors or scale; bench/vsphere_noop.py is run directly (see bench/README.md)" >&2
     exit 2 ;;
esac
bash "$here/tests/env/libvirt-up.sh"
venv=${VIRTFLEET_BENCH_VENV:-$HOME/.cache/virtfleet/bench-venv}
if [ ! -f "$venv/.complete" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q 'ansible>=10,<13' libvirt-python lxml pycdlib matplotlib
  touch "$venv/.complete"
fi
# pycdlib: virtfleet.virt builds cloud-init seeds with it (venvs made before it was listed lack it)
"$venv/bin/python" -c 'import pycdlib' 2>/dev/null || "$venv/bin/pip" install -q pycdlib
# matplotlib: bench/scale.py plots its cost curve (venvs made before it was listed lack it)
[ "$what" != scale ] || "$venv/bin/python" -c 'import matplotlib' 2>/dev/null || "$venv/bin/pip" install -q matplotlib
if [ "$what" = guests ]; then
  bash "$here/tests/env/linux-guest.sh" >/dev/null   # the real guest image (cached)
  # the community.libvirt contender and the raw script make their seed ISOs with xorriso
  command -v xorriso >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xorriso >/dev/null; }
fi
collections=$(bash "$here/tests/env/collection.sh")
mkdir -p "$here/bench/results"
out="$here/bench/results/$what-$(date +%Y%m%d-%H%M).json"
"$venv/bin/python" "$here/bench/$what.py" --collections "$collections" --out "$out" "$@"
echo "results: $out"

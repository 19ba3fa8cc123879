#!/usr/bin/env bash
# Remove what earlier, interrupted test runs left in libvirt: every domain, network and storage
# pool whose name starts with "vft-" (the test suite's prefix), so that a new run starts clean.
# Only tests/run.sh calls it, before the tests: never while another test run is going on.
set -uo pipefail
uri=${VIRTFLEET_TEST_URI:-qemu:///system}
for dom in $(virsh -q -c "$uri" list --all --name | grep '^vft-'); do
  virsh -q -c "$uri" destroy "$dom" >/dev/null 2>&1
  virsh -q -c "$uri" undefine --nvram --managed-save --snapshots-metadata "$dom" >/dev/null 2>&1 &&
    echo "[clean-leftovers] removed VM $dom"
done
for net in $(virsh -q -c "$uri" net-list --all --name | grep '^vft-'); do
  virsh -q -c "$uri" net-destroy "$net" >/dev/null 2>&1
  virsh -q -c "$uri" net-undefine "$net" >/dev/null 2>&1 && echo "[clean-leftovers] removed network $net"
done
for pool in $(virsh -q -c "$uri" pool-list --all --name | grep '^vft-'); do
  virsh -q -c "$uri" pool-destroy "$pool" >/dev/null 2>&1
  virsh -q -c "$uri" pool-undefine "$pool" >/dev/null 2>&1 && echo "[clean-leftovers] removed pool $pool"
done
exit 0

#!/usr/bin/env bash
# Build the test guest: a 512-byte boot sector (tests/guest/counter.asm) that
# counts on the serial port, in a 1 MiB raw disk image. Prints the image path.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-/var/lib/virtfleet-test/counter.img}
command -v nasm >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nasm >/dev/null; }
mkdir -p "$(dirname "$out")"
nasm -f bin -o "$out.bin" "$here/tests/guest/counter.asm"
truncate -s 1M "$out.tmp"
dd if="$out.bin" of="$out.tmp" conv=notrunc status=none
mv "$out.tmp" "$out"
rm -f "$out.bin"
echo "$out"

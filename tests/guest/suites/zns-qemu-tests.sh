#!/usr/bin/env bash
# `zns qemu` in front of the seed's QEMU ZNS command line: -drive zns.raw (a 32 GiB sparse raw file) with
# -device nvme,serial=deadbeef and the seed's -device nvme-ns (zoned, 64M zones, 62M capacity, max_open 16,
# max_active 32, zasl 5), booted twice with Debian 13's QEMU (install/install-trixie-qemu.sh) through the harness's
# kernel, initramfs and user networking instead of the original host-specific bridge. The first boot checks the
# seed's nvme list and zones and writes; the second sees the zones as the first left them. Prints TAP lines; skips
# (one '# skipped' line) without the trixie QEMU.
set -uo pipefail
suites=$(cd "$(dirname "$0")" && pwd)
guest=$(dirname "$suites")
qemu="$guest/harness/qemu-trixie"
if ! "$qemu" --version >/dev/null 2>&1; then
  echo "# skipped: zns qemu kernel tests need Debian 13's QEMU (tests/guest/install/install-trixie-qemu.sh)"
  exit 0
fi
work=$(mktemp -d /var/tmp/zns-qemu-tests.XXXXXX)
source "$guest/lib/tap.sh"
source "$guest/lib/server.sh"   # zns_dll, built when missing
trap 'rm -rf "$work"' EXIT
truncate -s 32G "$work/zns.raw"
mkdir -p "$work/share"

# The seed's QEMU command with `zns qemu` in front: run-guest.sh calls this wrapper as its QEMU, the nvme options
# come as --qemu-arg after the harness's own (-M q35, -m 2G, -accel tcg, user networking).
cat >"$work/zns-qemu" <<WRAP
#!/bin/bash
cd "$work" && exec dotnet "$zns_dll" qemu -- "$qemu" "\$@" 2>>"$work/zns-qemu.log"
WRAP
chmod +x "$work/zns-qemu"
seed=(-drive file=zns.raw,id=nvmezns0,format=raw,if=none -device nvme,serial=deadbeef,id=nvme0
  -device nvme-ns,drive=nvmezns0,bus=nvme0,nsid=1,logical_block_size=4096,physical_block_size=4096,zoned=true,zoned.zone_size=64M,zoned.zone_capacity=62M,zoned.max_open=16,zoned.max_active=32,zoned.zasl=5)
qargs=()
for a in "${seed[@]}"; do qargs+=(--qemu-arg "$a"); done

boot() {
  "$guest/harness/run-guest.sh" -t 600 -w "$work/share" --mem 2G --qemu "$work/zns-qemu" "${qargs[@]}" \
    --tap-name "zns qemu: boot $1" -e FIRST="$n" "$guest/in-guest/zns-qemu-guest.sh" "$1" "$work/share"
}
out=$(boot 1); all=$out; echo "$out" | grep -v '^# last='
last=$(echo "$out" | sed -n 's/^# last=//p' | tail -1); n=${last:-$n}
# zns qemu ends when QEMU does: the zone state file is written and the lock is free.
[ -s "$work/zns.raw.zns" ]; tap $? "zns qemu: the zone state is saved in zns.raw.zns when QEMU exits"
grep -q "running .*vfio-user-pci" "$work/zns-qemu.log"; tap $? "zns qemu: prints the rewritten QEMU command (vfio-user-pci) on stderr"
out=$(boot 2); all+=$out; echo "$out" | grep -v '^# last='
last=$(echo "$out" | sed -n 's/^# last=//p' | tail -1); n=${last:-$n}
# zns qemu's own lines (its stderr) as comments when something failed.
grep -q '^not ok' <<<"$all" && sed 's/^/# zns qemu: /' "$work/zns-qemu.log" | tail -20

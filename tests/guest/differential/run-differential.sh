#!/usr/bin/env bash
# Differential test against QEMU: one guest boot under Debian 13's QEMU (tests/guest/harness/qemu-trixie) holds QEMU's own
# emulated ZNS namespace (PCIe, over a raw file) and zns over NVMe/TCP (host 10.0.2.2) with the same geometry and
# options; zdiff drives both through /dev/ngXnY with the named cases of cases.txt and a generated sequence from a
# seed, comparing every answer. Then kernel-side checks of Copy, Verify, Compare and a ZRWA sequence against zns.
# Prints TAP lines. ZNS_DIFF_SEED (default: time-based, printed), ZNS_DIFF_COUNT (default 1000).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
harness=$(cd "$here/../harness" && pwd)
if ! "$harness/qemu-trixie" --version >/dev/null 2>&1; then
  echo "not ok - differential: no Debian 13 QEMU (run tests/guest/install/install-trixie-qemu.sh as root)"; exit 0
fi
work=$(mktemp -d /var/tmp/zns-differential.XXXXXX)
source "$here/../lib/server.sh"
cleanup() { stop_server 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
seed=${ZNS_DIFF_SEED:-$(( $(date +%s) % 100000 + 1 ))}
count=${ZNS_DIFF_COUNT:-1000}
port=$(( 20000 + RANDOM % 20000 ))

# One geometry for both devices. QEMU puts zasl/mdts and mqes/max_ioqpairs/aerl on the controller, the rest on the
# namespace. Namespaces 2 (conventional, 4 KiB blocks) and 3 (conventional, 512-byte blocks) are Copy sources.
ctrl_opts="mqes=63,max_ioqpairs=2,aerl=7"
zone_opts="zoned.zone_size=1M,zoned.zone_capacity=768K,zoned.max_open=4,zoned.max_active=6,zoned.descr_ext_size=64,zoned.zrwas=32K,zoned.zrwafg=8K,zoned.numzrwa=2"
gcc -O2 -Wall -o "$work/zdiff" "$here/zdiff.c" || { echo "not ok - differential: zdiff does not build"; exit 0; }
cp "$here/cases.txt" "$work/"
truncate -s 32M "$work/qemu-zns.raw"
truncate -s 4M "$work/qemu-ns2.raw"
truncate -s 1M "$work/qemu-ns3.raw"

server_dir=$work
start_server "ram:32M,logical_block_size=4096,$zone_opts,zoned.zasl=5,mdts=7" ram:4M,zoned=off \
  ram:1M,zoned=off,logical_block_size=512 -o "$ctrl_opts" --listen "127.0.0.1:$port" --control off ||
  { echo "not ok - differential: zns serve did not start"; exit 0; }

echo "# differential against $("$harness/qemu-trixie" --version | head -1), seed $seed, $count generated commands"
"$harness/run-guest.sh" -t "${ZNS_DIFF_TIMEOUT:-900}" -w "$work" -m nvme --qemu "$harness/qemu-trixie" --tap-name differential \
  --qemu-arg -drive --qemu-arg "file=$work/qemu-zns.raw,if=none,id=zdiff0,format=raw,discard=unmap" \
  --qemu-arg -drive --qemu-arg "file=$work/qemu-ns2.raw,if=none,id=zdiff1,format=raw,discard=unmap" \
  --qemu-arg -drive --qemu-arg "file=$work/qemu-ns3.raw,if=none,id=zdiff2,format=raw,discard=unmap" \
  --qemu-arg -device --qemu-arg "nvme,serial=qemuzns,id=qnvme0,zoned.zasl=5,mdts=7,$ctrl_opts" \
  --qemu-arg -device --qemu-arg "nvme-ns,drive=zdiff0,bus=qnvme0,nsid=1,zoned=true,logical_block_size=4096,physical_block_size=4096,$zone_opts" \
  --qemu-arg -device --qemu-arg "nvme-ns,drive=zdiff1,bus=qnvme0,nsid=2,logical_block_size=4096,physical_block_size=4096" \
  --qemu-arg -device --qemu-arg "nvme-ns,drive=zdiff2,bus=qnvme0,nsid=3,logical_block_size=512,physical_block_size=512" \
  "$here/guest-differential.sh" "$port" "$work" "$seed" "$count" 2>"$work/guest.err"
rc=$?
if [ "$rc" -ge 124 ]; then
  sed 's/^/# /' "$work/guest.err" | tail -20   # run-guest.sh printed the failing line (--tap-name)
elif ! grep -qE '^(ok|not ok) ' "$work/diff.tap" 2>/dev/null; then
  echo "not ok - differential: the guest reported nothing (run-guest exit $rc)"; sed 's/^/# /' "$work/guest.err" | tail -20
fi
exit 0

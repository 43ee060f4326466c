#!/usr/bin/env bash
# End-to-end protection over vfio-user: zns serves a zoned namespace with 8 bytes of metadata and Type 1 PI
# (separate metadata buffer, 4 KiB blocks) as a PCIe controller; Linux's block layer generates and verifies the
# tags. Boot 1 checks the integrity profile, writes and reads back known data through the integrity path, appends
# twice into one zone with nvme zns zone-append (PRACT, PIREMAP) and runs fio write+verify. Between the boots the
# host damages a stored guard with zns fault corrupt-pi; boot 2 reads that block and must fail with an I/O error
# (the kernel logs the End-to-end Guard Check Error) while its neighbour still reads. A second namespace has the
# 64-bit guard (ms=16,pif=2). TAP lines; skips
# without Debian 13's QEMU (tests/guest/install/install-trixie-qemu.sh).
set -uo pipefail
suites=$(cd "$(dirname "$0")" && pwd)
guest=$(dirname "$suites")
qemu="$guest/harness/qemu-trixie"
if ! "$qemu" --version >/dev/null 2>&1; then
  echo "# skipped: the PI tests over vfio-user need Debian 13's QEMU (tests/guest/install/install-trixie-qemu.sh)"
  exit 0
fi
work=$(mktemp -d /var/tmp/zns-pi-tests.XXXXXX)
for l in tap server; do source "$guest/lib/$l.sh"; done
cleanup() { stop_server 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
TAP_PREFIX="pi: "
sock="$work/nvme.sock"
mkdir -p "$work/target" "$work/share"
run_guest() {
  "$guest/harness/run-guest.sh" -t 600 -w "$work/share" --mem 1G --qemu "$qemu" \
    --qemu-arg -object --qemu-arg memory-backend-memfd,id=mem,size=1G,share=on \
    --qemu-arg -machine --qemu-arg memory-backend=mem \
    --qemu-arg -device --qemu-arg "{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"$sock\"}}" "$@"
}

(cd "$work/target" && zns create pi.raw --size 1G --zone-size 64M -o ms=8,pi=1 >/dev/null); tap $? "zns create pi.raw -o ms=8,pi=1"
(cd "$work/target" && zns create pi64.raw --size 512M --zone-size 64M -o ms=16,pi=1,pif=2 >/dev/null)
tap $? "zns create pi64.raw -o ms=16,pi=1,pif=2"
cport=$((20000 + RANDOM % 20000))
start_server --listen none --vfio-user "$sock" --control "127.0.0.1:$cport" pi.raw pi64.raw || { tap 1 "zns serve starts"; exit 1; }

# Boot 1: what the guest prints is parsed here.
run_guest -c '
modprobe nvme
for _ in $(seq 1 100); do [ -b /dev/nvme0n1 ] && break; sleep 0.2; done
echo "format=$(cat /sys/block/nvme0n1/integrity/format 2>&1)"
echo "zoned=$(cat /sys/block/nvme0n1/queue/zoned)"
head -c 65536 /dev/urandom > /tmp/data
dd if=/tmp/data of=/dev/nvme0n1 bs=64k count=1 oflag=direct 2>/dev/null && echo "write=ok"
dd if=/dev/nvme0n1 of=/tmp/back bs=64k count=1 iflag=direct 2>/dev/null && cmp -s /tmp/data /tmp/back && echo "read=same"
head -c 8192 /dev/urandom > /tmp/two
# Twice into zone 1: the tags PRACT makes from ILBRT (the zone start) are remapped to where each append landed.
for _ in 1 2; do
  out=$(nvme zns zone-append /dev/nvme0n1 -s 0x4000 -z 8192 -d /tmp/two --prinfo=8 --piremap --ref-tag=$((0x4000)) 2>&1); echo "append=$out"
done
cat /tmp/two /tmp/two > /tmp/four
dd if=/dev/nvme0n1 of=/tmp/four.back bs=16384 count=1 skip=$((0x4000 * 4096 / 16384)) iflag=direct 2>/dev/null && cmp -s /tmp/four /tmp/four.back && echo "appended=same"
fio --name=pi --filename=/dev/nvme0n1 --direct=1 --ioengine=psync --zonemode=zbd --rw=write --bs=256k \
  --offset=128M --size=64M --verify=crc32c --do_verify=1 --output-format=terse >/tmp/fio.out 2>&1 && echo "fio=ok"
tail -n 3 /tmp/fio.out | cut -c1-200
# NSID 2: the 64-bit guard (CRC-64).
for _ in $(seq 1 100); do [ -b /dev/nvme0n2 ] && break; sleep 0.2; done
echo "format2=$(cat /sys/block/nvme0n2/integrity/format 2>&1)"
dd if=/tmp/data of=/dev/nvme0n2 bs=64k count=1 oflag=direct 2>/dev/null &&
  dd if=/dev/nvme0n2 of=/tmp/back2 bs=64k count=1 iflag=direct 2>/dev/null && cmp -s /tmp/data /tmp/back2 && echo "crc64=same"
' >"$work/boot1.log" 2>&1
grep -q "^format=T10-DIF-TYPE1-CRC" "$work/boot1.log"; tap $? "integrity/format is T10-DIF-TYPE1-CRC"
grep -q "^zoned=host-managed" "$work/boot1.log"; tap $? "the namespace is zoned (host-managed)"
grep -q "^write=ok" "$work/boot1.log"; tap $? "a direct write through the integrity path succeeds"
grep -q "^read=same" "$work/boot1.log"; tap $? "the data reads back with its tags verified"
[ "$(grep -c "^append=.*[Ss]uccess" "$work/boot1.log")" = 2 ]; tap $? "two nvme zns zone-append with PRACT and PIREMAP succeed"
grep -q "^appended=same" "$work/boot1.log"; tap $? "the appended blocks read back with their tags checked (reference tags remapped to their LBAs)"
grep -q "^fio=ok" "$work/boot1.log"; tap $? "fio zonemode=zbd write with verify=crc32c through the integrity path"
grep "^format2=" "$work/boot1.log" | sed "s/^/# /"
grep -q "^format2=EXT-DIF-TYPE1-CRC64" "$work/boot1.log"; tap $? "NSID 2 (pif=2): integrity/format is EXT-DIF-TYPE1-CRC64"
grep -q "^crc64=same" "$work/boot1.log"; tap $? "NSID 2: data written and read back with 64-bit guards verified"

out=$(ZNS_CONTROL="127.0.0.1:$cport" zns fault corrupt-pi --nsid 1 --lba 3 --field guard 2>&1)
echo "$out" | grep -q -E '"blocks": ?1'; tap $? "zns fault corrupt-pi damages the guard of LBA 3"

# Boot 2: the damaged block fails the host's guard check; its neighbour does not.
run_guest -c '
modprobe nvme
for _ in $(seq 1 100); do [ -b /dev/nvme0n1 ] && break; sleep 0.2; done
dd if=/dev/nvme0n1 of=/dev/null bs=4k count=1 skip=2 iflag=direct 2>/dev/null && echo "neighbour=ok"
dd if=/dev/nvme0n1 of=/dev/null bs=4k count=1 skip=3 iflag=direct 2>/dev/null || echo "damaged=failed"
dmesg | grep -i -m2 -E "guard|end-to-end|I/O error|critical" | sed "s/^/dmesg: /"
' >"$work/boot2.log" 2>&1
grep -q "^neighbour=ok" "$work/boot2.log"; tap $? "the block beside the damaged one still reads"
grep -q "^damaged=failed" "$work/boot2.log"; tap $? "the read of the damaged block fails"
grep -q "^dmesg: .*LBA 3.*sc 0x82" "$work/boot2.log"; tap $? "the kernel logs End-to-end Guard Check Error (SCT 2, SC 82h) for LBA 3"
grep "^dmesg: " "$work/boot2.log" | sed "s/^/# /"
echo "# corrupt-pi: $out"
grep -v -E "^(format|format2|crc64|zoned|write|read|append|appended|fio|neighbour|damaged)=" "$work/boot1.log" "$work/boot2.log" | tail -n 5 | sed 's/^/# /'
stop_server; tap $? "zns serve stops cleanly"

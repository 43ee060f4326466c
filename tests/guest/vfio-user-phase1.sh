#!/bin/bash
# Runs in the guest, zns attached as a PCIe NVMe controller through vfio-user. Args: SHARE_DIR.
# Writes TAP lines to stdout and to SHARE_DIR/vfio1.tap.
share=$1
n=0
tap() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - vfio-user: $2"; else echo "not ok $n - vfio-user: $2"; fi | tee -a "$share/vfio1.tap"; }
: > "$share/vfio1.tap"
modprobe nvme
dev=/dev/nvme0n1
for _ in $(seq 1 100); do [ -b $dev ] && break; sleep 0.1; done
[ "$(cat /sys/class/nvme/nvme0/transport 2>/dev/null)" = pcie ]; tap $? "the controller is a PCIe NVMe controller (transport pcie)"
[ "$(cat /sys/bus/pci/devices/*/class | grep -c 0x010802)" -ge 1 ]; tap $? "a PCI function with class code 010802h (NVM Express)"
list=$(nvme list 2>&1)
echo "$list" | grep -q "deadbeef"; tap $? "nvme list shows serial deadbeef"
echo "$list" | grep -q "34.36  GB /  34.36  GB"; tap $? "nvme list shows 34.36  GB /  34.36  GB"

# shellcheck source=tests/guest/seed-zone-checks.sh
source "$(dirname "$0")/seed-zone-checks.sh"
seed_zone_checks $dev
q=/sys/block/nvme0n1/queue

echo mq-deadline > $q/scheduler 2>/dev/null
fio --name=zbd --filename=$dev --direct=1 --zonemode=zbd --ioengine=libaio --rw=write --bs=64k --iodepth=4 \
    --numjobs=2 --offset=32z --offset_increment=4z --size=1z --verify=crc32c --do_verify=1 --group_reporting \
    --output="$share/vfio-fio.txt" >/dev/null 2>&1; rc=$?
[ $rc = 0 ] && grep -q "err= 0" "$share/vfio-fio.txt"; tap $? "fio zonemode=zbd, 2 jobs, verify=crc32c reads back clean"
# 512 KiB transfers: PRP lists across pages.
head -c $((8 << 20)) /dev/urandom > /tmp/8m
dd if=/tmp/8m of=$dev bs=512k seek=$((110*128)) oflag=direct 2>/dev/null \
  && cmp <(dd if=$dev bs=512k skip=$((110*128)) count=16 iflag=direct 2>/dev/null) /tmp/8m; tap $? "8 MiB in 512 KiB writes read back identical"
# The same through SGLs: the controller reports them (SGLS 0x10001) and sgl_threshold=1 makes Linux use them for
# every I/O command instead of PRPs.
nvme id-ctrl /dev/nvme0 2>/dev/null | grep -q -E "^sgls +: 0x10001"; tap $? "Identify Controller reports SGLs with bit buckets (sgls 0x10001)"
echo 1 > /sys/module/nvme/parameters/sgl_threshold
dd if=/tmp/8m of=$dev bs=512k seek=$((114*128)) oflag=direct 2>/dev/null \
  && cmp <(dd if=$dev bs=512k skip=$((114*128)) count=16 iflag=direct 2>/dev/null) /tmp/8m; tap $? "8 MiB in 512 KiB writes through SGLs read back identical"
fio --name=sgl --filename=$dev --direct=1 --zonemode=zbd --ioengine=libaio --rw=write --bs=16k --iodepth=8 \
    --offset=116z --size=2z --verify=crc32c --do_verify=1 --output="$share/vfio-fio-sgl.txt" >/dev/null 2>&1; rc=$?
[ $rc = 0 ] && grep -q "err= 0" "$share/vfio-fio-sgl.txt"; tap $? "fio verify through SGLs reads back clean"
echo 32768 > /sys/module/nvme/parameters/sgl_threshold

# Known data for the restart check: zone 100 filled, zone 101 partly written (left open), zone 102 appended.
dd if=/dev/urandom of=/tmp/full bs=1M count=62 2>/dev/null
dd if=/tmp/full of=$dev bs=1M seek=$((100*64)) oflag=direct 2>/dev/null
dd if=/tmp/full of=$dev bs=1M seek=$((101*64)) count=3 oflag=direct 2>/dev/null
nvme zns zone-append $dev -s $((102*0x4000)) -z 4096 -d /tmp/4k >/dev/null 2>&1
sha256sum /tmp/full | cut -d' ' -f1 > "$share/full.sha"
head -c 3M /tmp/full | sha256sum | cut -d' ' -f1 > "$share/part.sha"
sha256sum /tmp/4k | cut -d' ' -f1 > "$share/4k.sha"
blkzone report $dev > "$share/report-before.txt"
[ "$(sed -n 101p "$share/report-before.txt" | sed -E 's/.*zcond:[ ]*[0-9]+\(([a-z]+)\).*/\1/')" = fu ]; tap $? "a zone written to its capacity is full"

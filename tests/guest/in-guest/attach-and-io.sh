#!/bin/bash
# Runs in the guest: the first attach of the seed's default namespace, the same checks over every transport
# (lib/attach.sh): identity, geometry, zone actions, a ZNS error, fio, large transfers, Compare, Copy, the Timestamp
# feature, fio verify under an injected write latency (asked of the host: lib/host-requests.sh), then the known data
# that after-restart.sh checks. TAP lines on stdout.
# Environment: TRANSPORT (tcp | pcie) NQN SHARE FIRST (number of the first line), PORT (tcp), HOST_REQUESTS.
guest=$(cd "$(dirname "$0")/.." && pwd)
for l in tap attach seed-zone-checks known-data host-requests; do source "$guest/lib/$l.sh"; done
n=$((FIRST - 1))
[ "$TRANSPORT" = pcie ] && TAP_PREFIX="vfio-user: "
HOST_LOG=$SHARE/host.log
ctrl=/dev/nvme0

if [ "$TRANSPORT" = tcp ]; then
  out=$(nvme discover -t tcp -a 10.0.2.2 -s "$PORT" 2>&1)
  echo "$out" | grep -q "subnqn:  $NQN"; tap $? "nvme discover lists $NQN"
  connect; tap $? "nvme connect"
else
  connect
  ns_dev 1 >/dev/null   # the controller is up once its namespace is
  [ "$(cat /sys/class/nvme/nvme0/transport 2>/dev/null)" = pcie ]; tap $? "the controller is a PCIe NVMe controller (transport pcie)"
  [ "$(cat /sys/bus/pci/devices/*/class | grep -c 0x010802)" -ge 1 ]; tap $? "a PCI function with class code 010802h (NVM Express)"
fi
dev=$(ns_dev 1) || dev=/dev/nvme0n1
q=/sys/block/${dev#/dev/}/queue
list=$(nvme list 2>&1)
echo "$list" | grep -q "deadbeef"; tap $? "nvme list shows serial deadbeef"
echo "$list" | grep -q "34.36  GB /  34.36  GB"; tap $? "nvme list shows 34.36  GB /  34.36  GB"
echo "$list" | grep -q "4 KiB +  0 B"; tap $? "nvme list shows 4 KiB +  0 B"

seed_zone_checks "$dev"
rz=$(nvme zns report-zones "$dev" -s 0x8000 -d 1 2>&1)
echo "$rz" | grep -q "SLBA: 0x8000     WP: 0x8002"; tap $? "nvme zns report-zones shows WP 0x8002 after two appends"
echo "$rz" | grep -q "State: 0x20"; tap $? "appended zone is implicitly opened (state 0x20)"
state() { nvme zns report-zones "$dev" -s "$1" -d 1 2>/dev/null | grep -q "$2"; }
nvme zns open-zone "$dev" -s 0xc000 >/dev/null && state 0xc000 "State: 0x30"; tap $? "nvme zns open-zone: explicitly opened (0x30)"
nvme zns close-zone "$dev" -s 0xc000 >/dev/null && state 0xc000 "State: 0x40"; tap $? "nvme zns close-zone: closed (0x40)"
nvme zns finish-zone "$dev" -s 0xc000 >/dev/null && state 0xc000 "State: 0xe0"; tap $? "nvme zns finish-zone: full (0xe0)"
nvme zns reset-zone "$dev" -s 0xc000 >/dev/null && state 0xc000 "WP: 0xc000 .*State: 0x10"; tap $? "nvme zns reset-zone: empty (0x10), WP at zone start"

# Linux 6.1 keeps the writes of a zone in order only with mq-deadline (docs/tests.md: Linux host settings).
echo mq-deadline > "$q/scheduler" 2>/dev/null
fio --name=zbd --filename="$dev" --direct=1 --zonemode=zbd --ioengine=libaio --rw=write --bs=64k --iodepth=4 \
    --numjobs=4 --offset=32z --offset_increment=4z --size=2z --verify=crc32c --do_verify=1 --group_reporting \
    --output="$SHARE/fio.txt" >/dev/null 2>&1; rc=$?
[ $rc = 0 ] && grep -q "err= 0" "$SHARE/fio.txt"; tap $? "fio zonemode=zbd, 4 jobs, verify=crc32c across 8 zones reads back clean"
# 512 KiB transfers (PCIe: PRP lists across pages; TCP: data PDUs and R2Ts).
head -c $((8 << 20)) /dev/urandom > /tmp/8m
dd if=/tmp/8m of="$dev" bs=512k seek=$((110*128)) oflag=direct 2>/dev/null \
  && cmp <(dd if="$dev" bs=512k skip=$((110*128)) count=16 iflag=direct 2>/dev/null) /tmp/8m; tap $? "8 MiB in 512 KiB writes read back identical"
if [ "$TRANSPORT" = pcie ]; then
  # The same through SGLs: the controller reports them (SGLS 0x10001) and sgl_threshold=1 makes Linux use them for
  # every I/O command instead of PRPs.
  nvme id-ctrl $ctrl 2>/dev/null | grep -q -E "^sgls +: 0x10001"; tap $? "Identify Controller reports SGLs with bit buckets (sgls 0x10001)"
  echo 1 > /sys/module/nvme/parameters/sgl_threshold
  dd if=/tmp/8m of="$dev" bs=512k seek=$((114*128)) oflag=direct 2>/dev/null \
    && cmp <(dd if="$dev" bs=512k skip=$((114*128)) count=16 iflag=direct 2>/dev/null) /tmp/8m; tap $? "8 MiB in 512 KiB writes through SGLs read back identical"
  fio --name=sgl --filename="$dev" --direct=1 --zonemode=zbd --ioengine=libaio --rw=write --bs=16k --iodepth=8 \
      --offset=116z --size=2z --verify=crc32c --do_verify=1 --output="$SHARE/fio-sgl.txt" >/dev/null 2>&1; rc=$?
  [ $rc = 0 ] && grep -q "err= 0" "$SHARE/fio-sgl.txt"; tap $? "fio verify through SGLs reads back clean"
  echo 32768 > /sys/module/nvme/parameters/sgl_threshold
fi

# Compare and Copy through nvme-cli (passthrough commands): 4 blocks at zone 120, compared, then copied to the write
# pointer of zone 121 (empty) and read back from there.
zl=$((0x4000))
head -c 16384 /dev/urandom > /tmp/d16k
head -c 16384 /dev/zero > /tmp/z16k
dd if=/tmp/d16k of="$dev" bs=16k seek=$((120 * zl / 4)) oflag=direct 2>/dev/null
nvme compare "$dev" -s $((120 * zl)) -c 3 -z 16384 -d /tmp/d16k > /tmp/cmp.out 2>&1; rc=$?
tap $rc "nvme compare of the data written succeeds"; [ $rc = 0 ] || sed 's/^/# /' /tmp/cmp.out
nvme compare "$dev" -s $((120 * zl)) -c 3 -z 16384 -d /tmp/z16k > /tmp/cmp.out 2>&1; rc=$?
[ $rc != 0 ] && grep -q -i -E "compare.?fail" /tmp/cmp.out; tap $? "nvme compare of other data fails with Compare Failure"
grep -q -i -E "compare.?fail" /tmp/cmp.out || sed 's/^/# /' /tmp/cmp.out
nvme copy "$dev" --sdlba=$((121 * zl)) --slbs=$((120 * zl)) --blocks=3 > /tmp/copy.out 2>&1; rc=$?
tap $rc "nvme copy of 4 blocks to the write pointer of an empty zone"; [ $rc = 0 ] || sed 's/^/# /' /tmp/copy.out
cmp -s <(dd if="$dev" bs=16k skip=$((121 * zl / 4)) count=1 iflag=direct 2>/dev/null) /tmp/d16k; tap $? "the copied blocks read back as the source"
# Timestamp (feature 0Eh): Linux sets it when the controller is enabled and warns when that fails.
nvme get-feature $ctrl -f 0x0e > /tmp/ts.out 2>&1; rc=$?
tap $rc "nvme get-feature -f 0x0e (Timestamp) succeeds"; [ $rc = 0 ] || sed 's/^/# /' /tmp/ts.out
! dmesg | grep -q "could not set timestamp"; tap $? "the kernel log has no 'could not set timestamp'"
dmesg | grep "could not set timestamp" | sed 's/^/# /'

# fio verify while every write is delayed by 3 ms (zns fault latency, armed on the host through the control CLI):
# 4 jobs of 4 KiB writes at iodepth 8, each in its own zone (48 to 51), 2 MiB each.
host fault latency --opcode write --us 3000 > /dev/null; tap $? "zns fault latency --opcode write --us 3000 (on the host) is armed"
fio --name=latency --filename="$dev" --direct=1 --zonemode=zbd --ioengine=libaio --rw=write --bs=4k --iodepth=8 \
    --numjobs=4 --offset=48z --offset_increment=1z --size=1z --io_size=2M --verify=crc32c --do_verify=1 \
    --group_reporting --output="$SHARE/fio-latency.txt" >/dev/null 2>"$SHARE/fio-latency.err"; rc=$?
[ $rc = 0 ] && grep -q "err= 0" "$SHARE/fio-latency.txt"
tap $? "fio zonemode=zbd, 4 jobs of 4 KiB at iodepth 8, verify=crc32c, with 3 ms write latency reads back clean"
[ $rc = 0 ] || { grep -E "err=" "$SHARE/fio-latency.txt"; head -n 4 "$SHARE/fio-latency.err"; } | head -n 6 | sed 's/^/# /'
host fault clear > /dev/null; tap $? "zns fault clear"

known_data_write "$dev" "$SHARE"
if [ "$TRANSPORT" = tcp ]; then disconnect; tap $? "nvme disconnect"; fi

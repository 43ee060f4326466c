#!/bin/bash
# In the guest that `zns qemu` booted from the seed's QEMU ZNS command line (suites/zns-qemu-tests.sh).
#   zns-qemu-guest.sh 1 DIR   the seed's nvme list, the seed zone checks, then 1 MiB written to zone 3 (kept in DIR)
#   zns-qemu-guest.sh 2 DIR   the zones as the first boot left them: zone 3 closed with its data, the appends of zone 2
phase=$1 dir=$2
lib=$(cd "$(dirname "$0")/../lib" && pwd)
source "$lib/tap.sh"
source "$lib/seed-zone-checks.sh"
TAP_PREFIX="zns qemu: boot $phase: "
n=${FIRST:-0}
modprobe nvme
dev=/dev/nvme0n1
for _ in $(seq 1 300); do [ -b $dev ] && break; sleep 0.1; done
[ -b $dev ]; tap $? "the guest's nvme driver binds the vfio-user-pci controller ($dev)"
nvme list | grep -qE "^$dev .* deadbeef .* zns .*34\.36  GB /  34\.36  GB +4 KiB \+  0 B"; tap $? "nvme list shows the seed's line (serial deadbeef, 34.36 GB, 4 KiB blocks)"
z3=0x60000
if [ "$phase" = 1 ]; then
  seed_zone_checks $dev
  head -c 1M /dev/urandom > "$dir/data"
  dd if="$dir/data" of=$dev bs=1M seek=$((0x60000 * 512 / 1048576)) count=1 oflag=direct 2>/dev/null; tap $? "1 MiB written at the start of zone 3"
  [ "$(wptr $z3)" = 0x000800 ] && [ "$(cond $z3)" = oi ]; tap $? "zone 3: implicitly opened (oi), wptr 0x000800"
else
  [ "$(blkzone report $dev | head -1)" = "  start: 0x000000000, len 0x020000, cap 0x01f000, wptr 0x000000 reset:0 non-seq:0, zcond: 1(em) [type: 2(SEQ_WRITE_REQUIRED)]" ]
  tap $? "blkzone report prints the seed's first line"
  [ "$(blkzone capacity $dev)" = 0x003e00000 ]; tap $? "blkzone capacity prints 0x003e00000"
  [ "$(cat /sys/block/nvme0n1/queue/nr_zones)" = 512 ]; tap $? "nr_zones is 512"
  [ "$(wptr 0x40000)" = 0x000010 ]; tap $? "zone 2 keeps the first boot's two appends (wptr 0x000010)"
  [ "$(wptr $z3)" = 0x000800 ] && [ "$(cond $z3)" = cl ]; tap $? "zone 3 is closed (cl) with wptr 0x000800, as the first boot left it"
  cmp <(dd if=$dev bs=1M skip=$((0x60000 * 512 / 1048576)) count=1 iflag=direct 2>/dev/null) "$dir/data"; tap $? "zone 3 holds the first boot's data"
  [ "$(wptr 0x20000)" = 0x000000 ] && [ "$(cond 0x20000)" = em ]; tap $? "zone 1 is empty, as the first boot's reset left it"
fi
echo "# last=$n"

#!/bin/bash
# Runs in the guest after zns serve was restarted (a new boot), over every transport (lib/attach.sh): the zones and
# data of attach-and-io.sh are as before; nsid 2 is a conventional namespace; nsid 3 was made by `zns create -o
# ...,zoned.zrwas=64K,zoned.zrwafg=16K,zoned.numzrwa=4` and is served with no options, so its Zone Random Write
# Area comes from the file. Then, per transport: NVMe/TCP header and data digests; btrfs on the PCIe controller.
# TAP lines on stdout. Environment: TRANSPORT (tcp | pcie) NQN SHARE FIRST, PORT (tcp).
guest=$(cd "$(dirname "$0")/.." && pwd)
for l in tap attach known-data; do source "$guest/lib/$l.sh"; done
n=$((FIRST - 1))
[ "$TRANSPORT" = pcie ] && TAP_PREFIX="vfio-user: "

connect; rc=$?
dev=$(ns_dev 1); found=$?
if [ "$TRANSPORT" = tcp ]; then tap $rc "reconnect after the target restarted"; else tap $found "the namespace is back after zns restarted"; fi
dev=${dev:-/dev/nvme0n1}
known_data_check "$dev" "$SHARE"

conv=$(ns_dev 2)
[ -b "$conv" ] && [ "$(cat "/sys/block/${conv#/dev/}/queue/zoned")" = none ]; tap $? "nsid 2 is a conventional (not zoned) namespace"
[ "$(blockdev --getsize64 "$conv" 2>/dev/null)" = 268435456 ]; tap $? "nsid 2 has the size given (256 MiB)"
head -c 65536 /dev/urandom > /tmp/64k
dd if=/tmp/64k of="$conv" bs=64k seek=100 oflag=direct 2>/dev/null && dd if=/tmp/64k of="$conv" bs=64k seek=3 oflag=direct 2>/dev/null \
  && cmp <(dd if="$conv" bs=64k skip=100 count=1 iflag=direct 2>/dev/null) /tmp/64k; tap $? "random-offset writes on the conventional namespace read back"

# ZRWA of 64 KiB (16 blocks), flush granularity 16 KiB (4 blocks), 4 resources (NUMZRWA as QEMU reports it). The
# assertions were checked against QEMU's own ZNS device with the same options: its Open with ZRWA makes the zone
# explicitly opened with the ZRWA Valid attribute (Attrs 0x8).
zrwa=$(ns_dev 3)
nvme zns id-ns "$zrwa" > /tmp/zrwa-id.txt 2>&1
grep -q -E "^zrwasz +: 16$" /tmp/zrwa-id.txt && grep -q -E "^zrwafg +: 4$" /tmp/zrwa-id.txt && grep -q -E "^numzrwa +: 0x4$" /tmp/zrwa-id.txt
rc=$?; tap $rc "nsid 3 (zns create -o ...,zoned.zrwas=64K,...; served with no options): nvme zns id-ns shows its ZRWA (16 blocks, granularity 4, 4 resources)"
[ $rc = 0 ] || grep -i -E "zrwa|ozcs|^zoc" /tmp/zrwa-id.txt | sed 's/^/# /'
z=$((2 * 0x4000))
nvme zns open-zone "$zrwa" -s $z --zrwaa > /tmp/zrwa.out 2>&1 && nvme zns report-zones "$zrwa" -s $z -d 1 >> /tmp/zrwa.out 2>&1 && grep -q "State: 0x30 .*Attrs: 0x8" /tmp/zrwa.out
rc=$?; tap $rc "nsid 3: nvme zns open-zone --zrwaa opens a zone with a ZRWA (explicitly opened, ZRWA valid)"; [ $rc = 0 ] || sed 's/^/# /' /tmp/zrwa.out
head -c 4096 /dev/urandom > /tmp/zrwa-4k
nvme write "$zrwa" -s $((z + 6)) -c 0 -z 4096 -d /tmp/zrwa-4k > /tmp/zrwa.out 2>&1; rc=$?
tap $rc "nsid 3: a write 6 blocks beyond the write pointer, inside the ZRWA window, succeeds"; [ $rc = 0 ] || sed 's/^/# /' /tmp/zrwa.out

if [ "$TRANSPORT" = tcp ]; then
  disconnect; tap $? "nvme disconnect"
  # Header and data digests (CRC32C) when the host asks for them.
  connect -g -G; tap $? "nvme connect with header and data digests (-g -G)"
  dev=$(ns_dev 1) || dev=/dev/nvme0n1
  head -c 1048576 /dev/urandom > /tmp/1m
  dd if=/tmp/1m of="$dev" bs=1M seek=$((124*64)) oflag=direct 2>/dev/null \
    && cmp <(dd if="$dev" bs=1M skip=$((124*64)) count=1 iflag=direct 2>/dev/null) /tmp/1m; tap $? "1 MiB written and read back with digests on"
  disconnect; tap $? "nvme disconnect (digests)"
else
  # A filesystem on the zoned namespace (btrfs zoned when its tools are there). NVMe/TCP runs btrfs and f2fs in
  # fs-tests.sh.
  if command -v mkfs.btrfs >/dev/null; then
    blkzone reset "$dev" >/dev/null 2>&1
    mkfs.btrfs -q -f -O zoned "$dev" >/dev/null 2>&1 && mkdir -p /mnt/z && mount "$dev" /mnt/z \
      && head -c $((4 << 20)) /dev/urandom > /tmp/f && cp /tmp/f /mnt/z/f && sync && umount /mnt/z \
      && mount "$dev" /mnt/z && cmp /tmp/f /mnt/z/f && umount /mnt/z; tap $? "btrfs (zoned) mkfs, write, remount, read back"
  fi
fi

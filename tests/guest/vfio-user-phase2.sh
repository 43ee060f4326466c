#!/bin/bash
# Runs in the guest after zns was restarted (a new VM boot). Args: SHARE_DIR FIRST_TEST_NUMBER.
share=$1; n=$(( $2 - 1 ))
tap() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - vfio-user: $2"; else echo "not ok $n - vfio-user: $2"; fi; }
modprobe nvme
dev=/dev/nvme0n1
for _ in $(seq 1 100); do [ -b $dev ] && break; sleep 0.1; done
[ -b $dev ]; tap $? "the namespace is back after zns restarted"
blkzone report $dev > /tmp/report-after.txt
# A restart is a power cycle: zones that were open come back closed.
sed -E 's/zcond: [23]\(o[ie]\)/zcond: 4(cl)/' "$share/report-before.txt" > /tmp/expected.txt
diff -u /tmp/expected.txt /tmp/report-after.txt > /tmp/report.diff; tap $? "every zone's write pointer and condition survive the restart"
[ -s /tmp/report.diff ] && head -20 /tmp/report.diff
[ "$(dd if=$dev bs=1M skip=$((100*64)) count=62 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$(cat "$share/full.sha")" ]; tap $? "data of the full zone survives the restart"
[ "$(dd if=$dev bs=1M skip=$((101*64)) count=3 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$(cat "$share/part.sha")" ]; tap $? "data of the partly written zone survives the restart"
[ "$(dd if=$dev bs=4k skip=$((102*0x4000)) count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$(cat "$share/4k.sha")" ]; tap $? "appended data survives the restart"
dd if=/dev/zero of=$dev bs=1M seek=$((101*64+3)) count=1 oflag=direct 2>/dev/null; tap $? "writing continues at the restored write pointer"
# A filesystem on the zoned namespace (btrfs zoned when its tools are there, else f2fs).
if command -v mkfs.btrfs >/dev/null; then
  blkzone reset $dev >/dev/null 2>&1
  mkfs.btrfs -q -f -O zoned $dev >/dev/null 2>&1 && mkdir -p /mnt/z && mount $dev /mnt/z \
    && head -c $((4 << 20)) /dev/urandom > /tmp/f && cp /tmp/f /mnt/z/f && sync && umount /mnt/z \
    && mount $dev /mnt/z && cmp /tmp/f /mnt/z/f && umount /mnt/z; tap $? "btrfs (zoned) mkfs, write, remount, read back"
fi

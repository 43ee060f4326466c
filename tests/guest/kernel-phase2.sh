#!/bin/bash
# Runs in the guest after the target was restarted. Args: PORT NQN SHARE_DIR FIRST_TEST_NUMBER.
port=$1; nqn=$2; share=$3; n=$(( $4 - 1 ))
tap() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
modprobe nvme-tcp
dev=/dev/nvme0n1
nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" >/dev/null 2>&1; tap $? "reconnect after the target restarted"
for _ in $(seq 1 50); do [ -b $dev ] && break; sleep 0.1; done
blkzone report $dev > /tmp/report-after.txt
# A restart is a power cycle: zones that were open come back closed (nothing was left open without data).
sed -E 's/zcond: [23]\(o[ie]\)/zcond: 4(cl)/' "$share/report-before.txt" > /tmp/expected.txt
diff -u /tmp/expected.txt /tmp/report-after.txt > /tmp/report.diff; tap $? "every zone's write pointer and condition survive the restart"
[ -s /tmp/report.diff ] && head -20 /tmp/report.diff
[ "$(dd if=$dev bs=1M skip=$((100*64)) count=62 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$(cat "$share/full.sha")" ]; tap $? "data of the full zone survives the restart"
[ "$(dd if=$dev bs=1M skip=$((101*64)) count=3 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$(cat "$share/part.sha")" ]; tap $? "data of the partly written zone survives the restart"
[ "$(dd if=$dev bs=4k skip=$((102*0x4000)) count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$(cat "$share/4k.sha")" ]; tap $? "appended data survives the restart"
dd if=/dev/zero of=$dev bs=1M seek=$((101*64+3)) count=1 oflag=direct 2>/dev/null; tap $? "writing continues at the restored write pointer"

conv=/dev/nvme0n2
[ -b $conv ] && [ "$(cat /sys/block/nvme0n2/queue/zoned)" = none ]; tap $? "nsid 2 is a conventional (not zoned) namespace"
[ "$(blockdev --getsize64 $conv 2>/dev/null)" = 268435456 ]; tap $? "nsid 2 has the size given (256 MiB)"
head -c 65536 /dev/urandom > /tmp/64k
dd if=/tmp/64k of=$conv bs=64k seek=100 oflag=direct 2>/dev/null && dd if=/tmp/64k of=$conv bs=64k seek=3 oflag=direct 2>/dev/null \
  && cmp <(dd if=$conv bs=64k skip=100 count=1 iflag=direct 2>/dev/null) /tmp/64k; tap $? "random-offset writes on the conventional namespace read back"
nvme disconnect -n "$nqn" >/dev/null 2>&1; tap $? "nvme disconnect"

# Header and data digests (CRC32C) when the host asks for them.
nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" -g -G >/dev/null 2>&1; tap $? "nvme connect with header and data digests (-g -G)"
for _ in $(seq 1 50); do [ -b $dev ] && break; sleep 0.1; done
head -c 1048576 /dev/urandom > /tmp/1m
dd if=/tmp/1m of=$dev bs=1M seek=$((110*64)) oflag=direct 2>/dev/null \
  && cmp <(dd if=$dev bs=1M skip=$((110*64)) count=1 iflag=direct 2>/dev/null) /tmp/1m; tap $? "1 MiB written and read back with digests on"
nvme disconnect -n "$nqn" >/dev/null 2>&1; tap $? "nvme disconnect (digests)"

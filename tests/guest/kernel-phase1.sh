#!/bin/bash
# Runs in the guest. Args: PORT NQN SHARE_DIR. Writes TAP lines to stdout and to SHARE_DIR/phase1.tap.
port=$1; nqn=$2; share=$3
n=0
tap() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi | tee -a "$share/phase1.tap"; }
check() { local d=$1; shift; "$@" >/dev/null 2>&1; tap $? "$d"; }
: > "$share/phase1.tap"
modprobe nvme-tcp
dev=/dev/nvme0n1

out=$(nvme discover -t tcp -a 10.0.2.2 -s "$port" 2>&1)
echo "$out" | grep -q "subnqn:  $nqn"; tap $? "nvme discover lists $nqn"

nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" >/dev/null 2>&1; tap $? "nvme connect"
for _ in $(seq 1 50); do [ -b $dev ] && break; sleep 0.1; done
list=$(nvme list 2>&1)
echo "$list" | grep -q "deadbeef"; tap $? "nvme list shows serial deadbeef"
echo "$list" | grep -q "34.36  GB /  34.36  GB"; tap $? "nvme list shows 34.36  GB /  34.36  GB"
echo "$list" | grep -q "4 KiB +  0 B"; tap $? "nvme list shows 4 KiB +  0 B"

# shellcheck source=tests/guest/seed-zone-checks.sh
source "$(dirname "$0")/seed-zone-checks.sh"
seed_zone_checks $dev
q=/sys/block/nvme0n1/queue
rz=$(nvme zns report-zones $dev -s 0x8000 -d 1 2>&1)
echo "$rz" | grep -q "SLBA: 0x8000     WP: 0x8002"; tap $? "nvme zns report-zones shows WP 0x8002 after two appends"
echo "$rz" | grep -q "State: 0x20"; tap $? "appended zone is implicitly opened (state 0x20)"
nvme zns open-zone $dev -s 0xc000 >/dev/null && nvme zns report-zones $dev -s 0xc000 -d 1 | grep -q "State: 0x30"; tap $? "nvme zns open-zone: explicitly opened (0x30)"
nvme zns close-zone $dev -s 0xc000 >/dev/null && nvme zns report-zones $dev -s 0xc000 -d 1 | grep -q "State: 0x40"; tap $? "nvme zns close-zone: closed (0x40)"
nvme zns finish-zone $dev -s 0xc000 >/dev/null && nvme zns report-zones $dev -s 0xc000 -d 1 | grep -q "State: 0xe0"; tap $? "nvme zns finish-zone: full (0xe0)"
nvme zns reset-zone $dev -s 0xc000 >/dev/null && nvme zns report-zones $dev -s 0xc000 -d 1 | grep -q "WP: 0xc000 .*State: 0x10"; tap $? "nvme zns reset-zone: empty (0x10), WP at zone start"

echo mq-deadline > $q/scheduler 2>/dev/null
fio --name=zbd --filename=$dev --direct=1 --zonemode=zbd --ioengine=libaio --rw=write --bs=64k --iodepth=4 \
    --numjobs=4 --offset=32z --offset_increment=4z --size=2z --verify=crc32c --do_verify=1 --group_reporting \
    --output="$share/fio.txt" >/dev/null 2>&1; rc=$?
[ $rc = 0 ] && grep -q "err= 0" "$share/fio.txt"; tap $? "fio zonemode=zbd, 4 jobs, verify=crc32c across 8 zones reads back clean"

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
nvme disconnect -n "$nqn" >/dev/null 2>&1; tap $? "nvme disconnect"

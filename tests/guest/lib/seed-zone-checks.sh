# Sourced by the guest phase scripts: the checks of the seed's default namespace (geometry in sysfs and blkzone,
# zone actions, Zone Append, a write not at the write pointer and its status in the kernel log) on block device $1,
# the same over every transport. Needs the caller's tap function.
seed_zone_checks() {
    local dev=$1 q=/sys/block/${1#/dev/}/queue first z1=0x20000 a1 a2
    [ "$(cat "$q/zoned")" = host-managed ]; tap $? "queue/zoned is host-managed"
    [ "$(cat "$q/nr_zones")" = 512 ]; tap $? "nr_zones is 512"
    [ "$(cat "$q/max_open_zones")" = 16 ]; tap $? "max_open_zones is 16"
    [ "$(cat "$q/max_active_zones")" = 32 ]; tap $? "max_active_zones is 32"
    [ "$(cat "$q/zone_append_max_bytes")" = 131072 ]; tap $? "zone_append_max_bytes is 131072"

    first=$(blkzone report "$dev" | head -1)
    [ "$first" = "  start: 0x000000000, len 0x020000, cap 0x01f000, wptr 0x000000 reset:0 non-seq:0, zcond: 1(em) [type: 2(SEQ_WRITE_REQUIRED)]" ]
    tap $? "blkzone report prints the seed's first line"
    [ "$(blkzone report "$dev" | wc -l)" = 512 ]; tap $? "blkzone report lists 512 zones"
    [ "$(blkzone capacity "$dev")" = "0x003e00000" ]; tap $? "blkzone capacity prints 0x003e00000"

    blkzone open -o $z1 -c 1 "$dev" && [ "$(cond $z1)" = oe ]; tap $? "blkzone open: zone becomes explicitly opened (oe)"
    blkzone close -o $z1 -c 1 "$dev" && [ "$(cond $z1)" = cl ]; tap $? "blkzone close: zone becomes closed (cl)"
    blkzone finish -o $z1 -c 1 "$dev" && [ "$(cond $z1)" = fu ] && [ "$(wptr $z1)" = 0x020000 ]; tap $? "blkzone finish: zone becomes full (fu)"
    blkzone reset -o $z1 -c 1 "$dev" && [ "$(cond $z1)" = em ] && [ "$(wptr $z1)" = 0x000000 ]; tap $? "blkzone reset: zone becomes empty (em), wptr 0"

    head -c 4096 /dev/urandom > /tmp/4k
    a1=$(nvme zns zone-append "$dev" -s 0x8000 -z 4096 -d /tmp/4k 2>&1)
    a2=$(nvme zns zone-append "$dev" -s 0x8000 -z 4096 -d /tmp/4k 2>&1)
    [ "$a1" = "Success appended data to LBA 8000" ] && [ "$a2" = "Success appended data to LBA 8001" ]; tap $? "nvme zns zone-append returns LBA 8000 then 8001"

    dd if=/tmp/4k of="$dev" bs=4k seek=$((0x10000 + 5)) count=1 oflag=direct 2>/dev/null; local rc=$?
    [ $rc != 0 ]; tap $? "a write not at the write pointer fails"
    dmesg | grep -q -E "Zone Invalid Write|sct 0x1 / sc 0xbc"; tap $? "the kernel log shows the ZNS status (sct 0x1 / sc 0xbc)"
}
# Condition (em, oe, cl, fu, ...) and write pointer of the zone at sector $1 of $dev.
cond() { blkzone report -o "$1" -c 1 "$dev" | sed -E 's/.*zcond:[ ]*([0-9]+)\(([a-z]+)\).*/\2/'; }
wptr() { blkzone report -o "$1" -c 1 "$dev" | sed -E 's/.*wptr (0x[0-9a-f]+).*/\1/'; }

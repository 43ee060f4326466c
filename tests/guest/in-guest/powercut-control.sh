#!/bin/bash
# The negative control of the power-cut tests (sourced by powercut-fs.sh, before its file system): the loss is real.
# On the zoned namespace CONTROL_NSID, with the host attached and left to reconnect on its own:
#   zone 0: 256 KiB written and flushed, then 1 MiB written with O_DIRECT and no flush
#   zone 1: 256 KiB written by a passthrough Write with FUA (nvme write -f: no flush from the host)
#   zone 2: 256 KiB written with O_DIRECT and followed by a Flush (dd conv=fsync)
#   zone 3: 256 KiB written with O_DIRECT and no flush
# then a power cut with --keep none. After the host has reconnected, zone 0's write pointer is back at its flushed
# 256 KiB and the MiB after it reads as zeros, zone 3 is Empty again, and zones 1 and 2 read back as written.
# Needs PORT NQN HOST_REQUESTS CONTROL_NSID SEED; TAP lines are unnumbered.

control_cut() {
    local cdev d bs zsec z i want rc
    connect --reconnect-delay=1 --ctrl-loss-tmo=60; tap $? "control: nvme connect (reconnect delay 1 s, controller loss timeout 60 s)"
    cdev=$(ns_dev "$CONTROL_NSID") || { tap 1 "control: zoned namespace $CONTROL_NSID attached"; return 1; }
    d=${cdev#/dev/}
    bs=$(<"/sys/block/$d/queue/logical_block_size")
    zsec=$(<"/sys/block/$d/queue/chunk_sectors")   # zone size in 512-byte sectors
    for i in a c d e; do head -c 256K /dev/urandom >"/tmp/ctl-$i"; done
    head -c 1M /dev/urandom >/tmp/ctl-b
    # dd offsets in units of 256 KiB; a zone is zsec * 512 bytes.
    z() { echo $(( $1 * zsec * 512 / (256 << 10) )); }
    wp() { blkzone report -o $(( $1 * zsec )) -c 1 "$cdev" | sed -E 's/.*wptr (0x[0-9a-f]+).*/\1/'; }
    cond() { blkzone report -o $(( $1 * zsec )) -c 1 "$cdev" | sed -E 's/.*zcond: *[0-9]+\(([a-z]+)\).*/\1/'; }
    rc=0
    dd if=/tmp/ctl-a of="$cdev" bs=256K seek="$(z 0)" oflag=direct conv=fsync status=none || rc=1
    dd if=/tmp/ctl-d of="$cdev" bs=256K seek="$(z 2)" oflag=direct conv=fsync status=none || rc=1
    nvme write "$cdev" -s $(( zsec * 512 / bs )) -c $(( (256 << 10) / bs - 1 )) -z $((256 << 10)) -d /tmp/ctl-c -f >/dev/null 2>&1 || rc=1
    dd if=/tmp/ctl-b of="$cdev" bs=256K seek="$(( $(z 0) + 1 ))" oflag=direct status=none || rc=1
    dd if=/tmp/ctl-e of="$cdev" bs=256K seek="$(z 3)" oflag=direct status=none || rc=1
    local before=("$(wp 0)" "$(wp 1)" "$(wp 2)" "$(wp 3)")
    tap $rc "control: written (write pointers of zones 0-3: ${before[*]}): 256 KiB + flush then 1 MiB unflushed in zone 0, 256 KiB FUA in zone 1, 256 KiB + flush in zone 2, 256 KiB unflushed in zone 3"

    host cut none "$SEED" >/dev/null; tap $? "control: power cut (--keep none, seed $SEED)"
    local deadline=$((SECONDS + 60)) ctrl
    ctrl=$(basename "$(readlink -f "/sys/block/$d/device")")
    while [ "$(<"/sys/class/nvme/$ctrl/state")" != live ] || ! blkzone report -c 1 "$cdev" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || break; read -r -t 0.2 <> <(:) || true
    done
    [ "$(<"/sys/class/nvme/$ctrl/state")" = live ] && [ -b "$cdev" ]
    tap $? "control: the host reconnected by itself ($ctrl $(<"/sys/class/nvme/$ctrl/state"), $cdev still there)"

    # blkzone reports a write pointer relative to its zone's start, in 512-byte sectors (256 KiB = 512).
    local after=("$(wp 0)" "$(wp 1)" "$(wp 2)" "$(wp 3)")
    note "control: write pointers after the cut: ${after[*]}"
    read_back() { dd if="$cdev" bs=256K skip="$1" count="$2" iflag=direct status=none; }
    [ $((after[0])) = 512 ] && [ $((before[0])) = 2560 ]
    tap $? "control: zone 0's write pointer moved back from ${before[0]} to ${after[0]} (its flushed 256 KiB)"
    cmp -s <(read_back "$(z 0)" 1) /tmp/ctl-a && cmp -s <(read_back $(( $(z 0) + 1 )) 4) <(head -c 1M /dev/zero)
    tap $? "control: zone 0's flushed 256 KiB read back as written, the unflushed MiB after it as zeros"
    [ $((after[3])) = 0 ] && [ $((before[3])) = 512 ] && [ "$(cond 3)" = em ] && cmp -s <(read_back "$(z 3)" 1) <(head -c 256K /dev/zero)
    tap $? "control: zone 3's unflushed write is gone: $(cond 3), write pointer ${after[3]}, zeros"
    [ $((after[1])) = 512 ] && cmp -s <(read_back "$(z 1)" 1) /tmp/ctl-c
    tap $? "control: zone 1's FUA write is kept (write pointer ${after[1]}, data read back)"
    [ $((after[2])) = 512 ] && cmp -s <(read_back "$(z 2)" 1) /tmp/ctl-d
    tap $? "control: zone 2's write followed by a flush is kept (write pointer ${after[2]}, data read back)"
    [ -d "$SHARE/evidence" ] || mkdir -p "$SHARE/evidence"
    blkzone report -c 4 "$cdev" >"$SHARE/evidence/control.zones" 2>&1
    disconnect
}

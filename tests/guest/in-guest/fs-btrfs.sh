#!/bin/bash
# Guest side of fs-tests.sh for btrfs zoned. Environment: PORT NQN SHARE CYCLES FS_MIB BALANCE (see fs-tests.sh).
# shellcheck source=tests/guest/lib/fs-lib.sh
source "$(dirname "$0")/../lib/fs-lib.sh"
L=$SHARE/lists
modprobe -a btrfs
check() { btrfs_check "$1"; }

connect; tap $? "nvme connect"
dev=$(ns_dev 1); tap $? "zoned namespace attached ($dev, $(cat /sys/block/"${dev#/dev/}"/queue/zoned 2>/dev/null))"
set_sched "$dev"
note "kernel $(uname -r), scheduler: $(cat /sys/block/"${dev#/dev/}"/queue/scheduler)"

mkfs.btrfs -f -O zoned -d single -m single "$dev" >"$SHARE/mkfs.out" 2>&1; tap $? "mkfs.btrfs -O zoned -d single -m single"
mount "$dev" "$mnt"; tap $? "mount"
lap >/dev/null
python3 "$fsdata" write "$mnt" a 60 "$FS_MIB" "$L/a"; rc=$?
sync; tap $((rc | $?)) "write 60 files of mixed sizes ($FS_MIB MiB) and sync"
note "btrfs write+sync $FS_MIB MiB: $(lap) s"
umount "$mnt" && mount "$dev" "$mnt"; tap $? "umount and mount again"
verify "$L/a"; tap $? "every file verifies after the remount (sha256)"
note "btrfs verify: $(lap) s"
btrfs filesystem df "$mnt" | sed 's/^/#   /'
if [ "$BALANCE" = 1 ]; then
    btrfs scrub start -B "$mnt" >"$SHARE/scrub.out" 2>&1; rc=$?
    tap $rc "btrfs scrub finds no error"; [ $rc = 0 ] || sed 's/^/#   /' "$SHARE/scrub.out"
fi
n=0; while read -r _ path; do n=$((n + 1)); [ $((n % 2)) = 0 ] && rm -f "$path"; done <"$L/a"
keep_existing "$L/a" "$L/a.kept"
sync; tap $? "delete every other file"
if [ "$BALANCE" = 1 ]; then
    lap >/dev/null
    btrfs balance start -dusage=100 "$mnt" >"$SHARE/balance.out" 2>&1; rc=$?
    tap $rc "btrfs balance -dusage=100 (zones reclaimed and rewritten)"
    [ $rc = 0 ] || { sed 's/^/#   /' "$SHARE/balance.out" | tail -3; evidence balance "$dev"; dmesg | grep -i -E 'btrfs|nvme' | tail -n 8 | sed 's/^/#   /'; }
    note "btrfs balance: $(lap) s"
fi
umount "$mnt" && mount "$dev" "$mnt" && verify "$L/a.kept"; tap $? "the remaining files verify after delete, balance, remount"
python3 "$fsdata" write "$mnt" b 20 8 "$L/b" && sync; tap $? "write 20 more files (8 MiB)"
umount "$mnt"; check "$dev"; tap $? "btrfs check --readonly is clean"

# ---- restart of zns serve (a clean stop: SIGTERM) between two attaches
disconnect; tap $? "nvme disconnect"
host_do restart; tap $? "zns serve stopped and started again on the host"
connect && dev=$(ns_dev 1) && set_sched "$dev" && mount "$dev" "$mnt"; tap $? "reconnect and mount after the restart"
cat "$L/a.kept" "$L/b" >"$L/all"
verify "$L/all"; tap $? "every file verifies after zns restarted ($(wc -l <"$L/all") files)"
python3 "$fsdata" write "$mnt" c 10 4 "$L/c" && sync && verify "$L/c"; tap $? "writing continues after the restart"
cat "$L/c" >>"$L/all"
umount "$mnt"; check "$dev"; tap $? "btrfs check --readonly is clean after the restart"
disconnect

# ---- crashes: SIGKILL of zns serve while files are written with a sync after each
for c in $(seq 1 "$CYCLES"); do
    connect --ctrl-loss-tmo=5 --reconnect-delay=1 && dev=$(ns_dev 1) && set_sched "$dev" && mount "$dev" "$mnt" ||
        { tap 1 "crash $c: attach and mount"; break; }
    : >"$L/crash$c"
    start_stream "k${c}-" "$L/crash$c"
    wait_lines "$L/crash$c" $((3 + c)); rc=$?
    host_do kill; tap $((rc | $?)) "crash $c: zns serve killed (SIGKILL) after $(wc -l <"$L/crash$c") synced files, while writing"
    crash_cleanup
    host_do start || { tap 1 "crash $c: zns serve starts again"; break; }
    connect && dev=$(ns_dev 1) && set_sched "$dev" && mount "$dev" "$mnt"; tap $? "crash $c: reconnect and mount"
    cat "$L/crash$c" >>"$L/all"
    verify "$L/all"; rc=$?
    tap $rc "crash $c: every file synced before the kill verifies ($(wc -l <"$L/all") files)"
    [ $rc = 0 ] || evidence "crash$c" "$dev"
    umount "$mnt"; check "$dev"; tap $? "crash $c: btrfs check --readonly is clean"
    disconnect
done
note "btrfs total: $((SECONDS - t0)) s"

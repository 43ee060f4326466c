#!/bin/bash
# Guest side of suites/powercut-tests.sh: a file system on zns through CUTS power cuts at random points of an
# fsync-heavy workload (crashload.py). Environment: FS (btrfs | f2fs), PORT NQN SHARE HOST_REQUESTS, CUTS, SEED,
# CONTROL_NSID (set: run the negative control, powercut-control.sh, on that namespace first).
#
# Cut c uses seed SEED+c for the workload, the instant of the cut and zns's choice of what to keep; odd cuts keep
# nothing unflushed (--keep none), even ones a random prefix of each zone's unflushed writes, the last one torn
# (--keep random --torn). After a cut the guest acts as a host that lost power with its drive: its kernel deletes
# the controller at once (nothing it had queued reaches the device), the workload is killed, the file system
# unmounted; then it attaches again, mounts (log replay / roll-forward recovery), verifies every file whose fsync
# returned, unmounts and runs the checker read-only.
# RECONNECT=1 (a study, not part of the suite's checks): the controller reconnects by itself after a cut (reconnect
# delay 1 s) and the workload runs on for 5 s against the device that lost its unflushed writes; what the file system
# did is printed (read-only or not, its kernel messages), then the cycle goes on as after a power loss. Files the
# workload completed after the reconnect are checked too, so losses there are reported.
# shellcheck source=tests/guest/lib/fs-lib.sh
source "$(dirname "$0")/../lib/fs-lib.sh"
load="$(dirname "$0")/crashload.py"
state=/tmp/crash.state
oplog=/tmp/crash.log
label="$FS"

# The workload's controller is made through the kernel's fabrics device, which is what nvme connect does, without
# nvme-cli's start-up and sysfs scan (a second or more per cycle under TCG). It has ctrl_loss_tmo=0: at the cut the
# kernel deletes the controller itself, failing what it held, and never reconnects to send what the file system had
# queued to a device that lost its unflushed writes (a host that lost power sends nothing more either). A reconnect
# delay does not do it: a guest slowed down by a loaded machine was seen to reconnect before it could delete the
# controller, and the stale writes then corrupted the file system. Sets ctrl (nvmeN).
ctrl=
connect_fs() {
    local fd line v opts="nqn=$NQN,transport=tcp,traddr=10.0.2.2,trsvcid=$PORT"
    if [ "${RECONNECT:-0}" = 1 ]; then opts+=",reconnect_delay=1,ctrl_loss_tmo=60"; else opts+=",ctrl_loss_tmo=0"; fi
    [ -r /etc/nvme/hostnqn ] && read -r v </etc/nvme/hostnqn && opts+=",hostnqn=$v"
    [ -r /etc/nvme/hostid ] && read -r v </etc/nvme/hostid && opts+=",hostid=$v"
    exec {fd}<>/dev/nvme-fabrics || return 1
    if echo "$opts" >&"$fd" 2>/dev/null && read -r line <&"$fd"; then
        exec {fd}>&-
        line=${line#instance=}; ctrl=nvme${line%%,*}
        return 0
    fi
    exec {fd}>&-
    return 1
}
# Deleting the controller fails every command it holds, as nvme disconnect does (after a cut the kernel has done it).
delete_fs_ctrl() { [ -z "$ctrl" ] || { echo 1 >"/sys/class/nvme/$ctrl/delete_controller"; } 2>/dev/null; ctrl=; }
case $FS in
    btrfs)
        modprobe -a btrfs
        attach() { connect_fs && dev=$(ns_dev 1) && set_sched "$dev"; }
        mkfs_fs() { mkfs.btrfs -f -O zoned -d single -m single "$dev"; }
        mount_fs() { mount "$dev" "$mnt"; }
        check_fs() { btrfs_check "$dev"; } ;;
    f2fs)
        modprobe -a f2fs
        attach() { connect_fs && conv_dev=$(ns_dev 1) && dev=$(ns_dev 2) && set_sched "$dev" && conv=$(by_id "$conv_dev") && zoned=$(by_id "$dev"); }
        mkfs_fs() { mkfs.f2fs -f -m -c "$zoned" "$conv"; }
        mount_fs() { mount -t f2fs "$conv" "$mnt"; }
        check_fs() { f2fs_check "$conv"; } ;;
    *) echo "powercut-fs: unknown FS '$FS'" >&2; exit 2 ;;
esac
# Attach again after a cut: zns may still be off for a moment.
reattach() {
    local deadline=$((SECONDS + 30))
    until attach 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || return 1
        delete_fs_ctrl; read -r -t 0.2 <> <(:) || true
    done
}
# RECONNECT=1: the host reconnects by itself and the workload goes on; what the file system makes of it.
host_view() {
    local deadline=$((SECONDS + 30)) before state
    before=$(grep -c '"D"' "$oplog")
    until read -r state <"/sys/class/nvme/$ctrl/state" && [ "$state" = live ]; do
        [ $SECONDS -lt $deadline ] || break; read -r -t 0.2 <> <(:) || true
    done
    read -r -t 5 <> <(:) || true
    note "reconnect: controller $state; operations completed $before at the cut, $(grep -c '"D"' "$oplog") 5 s after the reconnect; mount: $(grep " $mnt " /proc/mounts | cut -d' ' -f4 | cut -d, -f1)"
    dmesg | grep -i -E 'btrfs|f2fs|I/O error|invalid|reconnect' | grep -v -i 'attempt' | tail -n 8 | sed 's/^/#   dmesg: /'
}
# Milliseconds since the epoch, without a process.
ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

if [ -n "${CONTROL_NSID:-}" ]; then
    # shellcheck source=tests/guest/in-guest/powercut-control.sh
    source "$(dirname "$0")/powercut-control.sh"
    control_cut
fi

# Writeback within a fraction of a second (the default waits 30 s), so that what the workload writes without fsync
# (its scratch files) reaches the device between flushes, and a cut has unflushed data to drop under the fsynced files.
echo 20 >/proc/sys/vm/dirty_expire_centisecs
echo 10 >/proc/sys/vm/dirty_writeback_centisecs
attach; tap $? "$label: connect ($ctrl, $dev)"
note "kernel $(uname -r), scheduler: $(cat /sys/block/"${dev#/dev/}"/queue/scheduler)"
mkfs_fs >"$SHARE/mkfs.out" 2>&1; rc=$?
tap $rc "$label: mkfs"; [ $rc = 0 ] || tail -5 "$SHARE/mkfs.out" | sed 's/^/#   /'
mount_fs && python3 "$load" init "$mnt" && umount "$mnt"; tap $? "$label: mount, work directories made durable, umount"
rm -f "$state" "$oplog"

# The workload and its check: one Python process for all cycles (crashload.py serve).
coproc LOAD { exec python3 "$load" serve "$mnt" "$state" "$oplog" 2>"$SHARE/load.err"; }
load_do() { echo "$*" >&"${LOAD[1]}"; read -r answer <&"${LOAD[0]}"; echo "$answer"; }
# The verify answer: failure lines as comments, then "= STATUS SUMMARY".
load_verify() {
    local line
    echo verify >&"${LOAD[1]}"
    while read -r line <&"${LOAD[0]}"; do
        [[ $line == =* ]] && { summary=${line#= * }; line=${line#= }; return "${line%% *}"; }
        echo "$line"
    done
    summary="the workload process is gone"; return 1
}

for c in $(seq 1 "$CUTS"); do
    seed=$((SEED + c))
    if [ $((c % 2)) = 1 ]; then keep=none; else keep=random-torn; fi
    c0=$(ms)
    [ "${RECONNECT:-0}" = 1 ] && dmesg -C
    if [ ! -b "$dev" ]; then
        # Seen once on 7.3 right after the control phase: the device was gone before any cut of this boot. Say so,
        # with the kernel's last lines, and attach again (the mount below still has to succeed).
        note "cut $c: $dev is gone before the workload; the kernel's last lines, then attach again"
        dmesg | tail -n 6 | sed 's/^/#   dmesg: /'
        delete_fs_ctrl; reattach || true
    fi
    mount_fs || { tap 1 "$label: cut $c: mount before the workload"; break; }
    # The cut comes 0.1-1.6 s after the workload's first completed operation (the seed picks the instant).
    RANDOM=$seed
    running=$(load_do run "$seed" $((100 + RANDOM % 1500)))
    t1=$(ms)
    host cut "$keep" "$seed" >"$SHARE/cut.out"; cut_rc=$?
    t2=$(ms)
    [ "${RECONNECT:-0}" = 1 ] && host_view
    # A host that lost power: nothing it had queued may reach the device. Deleting the controller fails that I/O,
    # which lets the workload die; then the file system (with write errors, maybe read-only) is unmounted.
    delete_fs_ctrl
    ops=$(load_do kill)
    timeout 60 umount "$mnt" 2>/dev/null || timeout 30 umount -l "$mnt"
    t3=$(ms)
    reattach; att_rc=$?
    t4=$(ms)
    mount_fs; mount_rc=$?
    t5=$(ms)
    load_verify; verify_rc=$?
    t6=$(ms)
    umount "$mnt"; check_fs; check_rc=$?
    t7=$(ms)
    what=()
    [ "$running" = running ] || what+=("$running")
    [ $cut_rc = 0 ] || what+=("the cut failed ($(tail -n 1 "$SHARE/cut.out"))")
    [ $att_rc = 0 ] || what+=("no reattach")
    [ $mount_rc = 0 ] || what+=("mount failed")
    [ $verify_rc = 0 ] || what+=("files lost")
    [ $check_rc = 0 ] || what+=("checker failed")
    rc=$((${#what[@]} > 0))
    [ $rc = 0 ] || { evidence "$FS-cut$c" "$dev"; cp "$state" "$oplog" "$SHARE/evidence/" 2>/dev/null; }
    checked="checker clean"; [ $check_rc = 0 ] || checked="checker not clean"
    tap $rc "$label: cut $c/$CUTS (--keep ${keep/-/ --}, seed $seed) after $ops operations: mount, $summary, $checked${what:+ -- FAILED: ${what[*]}}"
    note "cut $c: workload $((t1 - c0)) ms, cut $((t2 - t1)) ms, cleanup $((t3 - t2)) ms, attach $((t4 - t3)) ms, mount $((t5 - t4)) ms, verify $((t6 - t5)) ms, umount+check $((t7 - t6)) ms, total $((t7 - c0)) ms"
    [ $att_rc = 0 ] || break
done
delete_fs_ctrl
note "$label total: $((SECONDS - t0)) s"
exit 0

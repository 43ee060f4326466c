#!/bin/bash
# Guest script: the btrfs zoned workload repeated against zns (on the host, 10.0.2.2) and against the kernel's own
# nvmet-tcp over a zoned null_blk (in this guest, 127.0.0.1) with the same geometry, with the I/O scheduler left at
# its default and set to mq-deadline. One line per run; kernel log and zone report kept at the first trouble.
#
#   btrfs-study-host.sh (on the host) boots this; environment: PORT NQN SHARE RUNS MIB TARGETS SCHEDS
# shellcheck source=tests/guest/lib/fs-lib.sh
source "$(dirname "$0")/../lib/fs-lib.sh"
RUNS=${RUNS:-5}; MIB=${MIB:-96}
nvmet_nqn=nqn.2026-01.io.zns:nvmet-nullb0
C=/sys/kernel/config/nvmet
modprobe -a btrfs nvmet nvmet_tcp

# The same geometry as zns serves (the seed's): 64 MiB zones, 62 MiB capacity, 16 open, 32 active, 2 GiB.
modprobe null_blk nr_devices=1 zoned=1 zone_size=64 zone_capacity=62 zone_nr_conv=0 \
    zone_max_open=16 zone_max_active=32 memory_backed=1 gb=2 bs=4096
mkdir "$C/subsystems/$nvmet_nqn"
echo 1 >"$C/subsystems/$nvmet_nqn/attr_allow_any_host"
mkdir "$C/subsystems/$nvmet_nqn/namespaces/1"
echo -n /dev/nullb0 >"$C/subsystems/$nvmet_nqn/namespaces/1/device_path"
echo 1 >"$C/subsystems/$nvmet_nqn/namespaces/1/enable"
mkdir "$C/ports/1"
echo tcp >"$C/ports/1/addr_trtype"; echo ipv4 >"$C/ports/1/addr_adrfam"
echo 127.0.0.1 >"$C/ports/1/addr_traddr"; echo 4420 >"$C/ports/1/addr_trsvcid"
ln -s "$C/subsystems/$nvmet_nqn" "$C/ports/1/subsystems/$nvmet_nqn"

trouble_kept=0
one_run() {
    local target=$1 sched=$2 run=$3 addr port nqn dev list=/tmp/list.$$ missing wrong bal warn ziw head path
    case $target in
        zns) addr=10.0.2.2 port=$PORT nqn=$NQN ;;
        nvmet) addr=127.0.0.1 port=4420 nqn=$nvmet_nqn ;;
    esac
    nvme connect -t tcp -a $addr -s "$port" -n "$nqn" >/dev/null || { echo "# connect $target failed"; return 1; }
    dev=$(NQN=$nqn ns_dev 1) || { echo "# no device for $target"; nvme disconnect -n "$nqn" >/dev/null; return 1; }
    [ "$sched" = mq-deadline ] && ZNS_SCHED=mq-deadline set_sched "$dev"
    head=$(sed -E 's/.*\[([^]]+)\].*/\1/' "/sys/block/${dev#/dev/}/queue/scheduler" 2>/dev/null)
    path=$(sed -E 's/.*\[([^]]+)\].*/\1/' /sys/block/nvme*c*n1/queue/scheduler 2>/dev/null | tr '\n' ,)
    dmesg -C
    rm -f $list
    mkfs.btrfs -f -O zoned -d single -m single "$dev" >/dev/null 2>&1 && mount "$dev" "$mnt" || { echo "# mkfs/mount failed"; return 1; }
    python3 "$fsdata" write "$mnt" f 200 "$MIB" $list
    sync; umount "$mnt"; mount "$dev" "$mnt"
    missing=$(while read -r _ p; do [ -e "$p" ] || echo; done <$list | wc -l)
    wrong=$(sha256sum -c $list 2>/dev/null | grep -c ': FAILED$')
    local df; df=$(btrfs filesystem df "$mnt" | sed -n 's/^Data, single: total=[^,]*, used=\([^,]*\), zone_unusable=\(.*\)/used=\1 unusable=\2/p')
    n=0; while read -r _ p; do n=$((n + 1)); [ $((n % 2)) = 0 ] && rm -f "$p"; done <$list
    sync
    btrfs balance start -dusage=100 "$mnt" >/dev/null 2>&1; bal=$?
    umount "$mnt"; mount "$dev" "$mnt"
    keep_existing $list $list.kept 2>/dev/null
    local after; after=$(sha256sum -c $list.kept 2>/dev/null | grep -c -v ': OK$')
    warn=$(dmesg | grep -c 'is removed before metadata write out')
    ziw=$(dmesg | grep -c -E 'Zone Invalid Write|Invalid Zone Write|sc 0xbc|Zone Is Invalid')
    echo "run target=$target sched=$sched(head=$head path=${path%,}) n=$run files=$(wc -l <$list) missing_after_remount=$missing wrong=$wrong $df balance_rc=$bal bad_after_balance=$after removed_warnings=$warn zone_invalid_write_msgs=$ziw"
    if [ $((missing + wrong + bal + after + warn + ziw)) != 0 ] && [ $trouble_kept -lt 4 ]; then
        trouble_kept=$((trouble_kept + 1))
        evidence "$target-$sched-$run" "$dev"
    fi
    umount "$mnt"
    nvme disconnect -n "$nqn" >/dev/null
}

for r in $(seq 1 "$RUNS"); do
    for target in ${TARGETS:-zns nvmet}; do
        for sched in ${SCHEDS:-default mq-deadline}; do
            one_run "$target" "$sched" "$r"
        done
    done
done
echo "# study done in $((SECONDS - t0)) s"

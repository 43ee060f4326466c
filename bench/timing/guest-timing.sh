#!/bin/bash
# Guest side of run-guest-timing.sh: for each target (LABEL:PORT:NQN), attach it over NVMe/TCP and measure what the
# ZN540 dataset measures with fio and blkzone; one line "LABEL<TAB>QUANTITY<TAB>VALUE" per figure in WORK/results.tsv.
set -euo pipefail
work=$1; shift
runtime=${RUNTIME:-5}
modprobe nvme-tcp
out=$work/results.tsv
exec 2>"$work/guest-trace.log"
set -x
: >"$out"
zone_sectors=4194304   # 2 GiB in 512-byte sectors

fio_json() { fio --output-format=json --direct=1 --ioengine=libaio --filename="$dev" "$@"; }
now_ns() { date +%s%N; }

for spec in "$@"; do
    IFS=: read -r label port nqn <<<"$spec"
    nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" >/dev/null
    dev=
    for _ in $(seq 1 100); do
        for c in /sys/class/nvme/nvme*; do
            [[ $(cat "$c/subsysnqn" 2>/dev/null) == "$nqn" ]] || continue
            for n in "$c"/nvme*n1; do [[ -e $n ]] && dev=/dev/$(basename "$n"); done
        done
        [[ -n $dev && -b $dev ]] && break
        sleep 0.1
    done
    [[ -b $dev ]] || { echo "no block device for $nqn" >&2; exit 1; }
    echo mq-deadline >/sys/block/"$(basename "$dev")"/queue/scheduler
    emit() { printf '%s\t%s\t%s\n' "$label" "$1" "$2" | tee -a "$out"; }

    # 4 KiB random read latency at QD1 over 64 MiB written at the start of zone 0.
    dd if=/dev/zero of="$dev" bs=1M count=64 oflag=direct status=none
    v=$(fio_json --name=rr --rw=randread --bs=4k --iodepth=1 --offset=0 --size=64M --runtime="$runtime" --time_based \
        | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["read"]["lat_ns"]["mean"]/1000,1))')
    emit read_4k_qd1_lat_us "$v"

    # Sequential writes, N jobs with a zone each (zones 1.., as the dataset's offset_increment), QD1.
    for spec2 in "4k:1:write_4k_1zone_mbps" "4k:2:write_4k_2zone_mbps" "4k:4:write_4k_4zone_mbps" "128k:1:write_128k_1zone_mbps"; do
        IFS=: read -r bs jobs name <<<"$spec2"
        blkzone reset "$dev"
        v=$(fio_json --name=w --zonemode=zbd --rw=write --bs="$bs" --iodepth=1 --numjobs="$jobs" --offset=2G \
            --offset_increment=2G --size=2G --job_max_open_zones=1 --runtime="$runtime" --time_based --group_reporting \
            | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"]/1e6,1))')
        emit "$name" "$v"
    done
    blkzone reset "$dev"

    # Reset of a full zone (made Full by finishing it while Empty): blkzone reset as a user runs it, 3 times.
    total=0
    for z in 1 2 3; do
        blkzone finish -o $((z * zone_sectors)) -c 1 "$dev"
        t0=$(now_ns); blkzone reset -o $((z * zone_sectors)) -c 1 "$dev"; t1=$(now_ns)
        total=$((total + t1 - t0))
    done
    emit reset_full_ms "$(python3 -c "print(round($total/3/1e6,2))")"

    # Finish of a zone holding one block.
    dd if=/dev/zero of="$dev" bs=4k count=1 seek=$((4 * zone_sectors / 8)) oflag=direct status=none
    t0=$(now_ns); blkzone finish -o $((4 * zone_sectors)) -c 1 "$dev"; t1=$(now_ns)
    emit finish_1block_ms "$(python3 -c "print(round(($t1-$t0)/1e6,1))")"

    # The same blkzone reset of an Empty zone: what process start and the ioctl cost here (the guest's floor).
    t0=$(now_ns); blkzone reset -o $((5 * zone_sectors)) -c 1 "$dev"; t1=$(now_ns)
    emit reset_empty_ms "$(python3 -c "print(round(($t1-$t0)/1e6,2))")"

    blkzone reset "$dev"
    nvme disconnect -n "$nqn" >/dev/null
done

#!/usr/bin/env bash
# Runs in the guest (see run-vfio-compare.sh). Args: WORKDIR. Finds the three zoned namespaces by serial and runs the
# same fio jobs as fio-compare-guest.sh on each, interleaving the targets per workload; appends to WORKDIR/results.tsv
# (target workload IOPS MiB/s clat_mean_us guest_busy_%).
set -uo pipefail
work=${1:?usage: vfio-compare-guest.sh WORKDIR}
runtime=${RUNTIME:-10}
ramp=${RAMP:-2}
targets=${TARGETS:-qemu zvfio ztcp}
workloads=${WORKLOADS:-seqwrite128k randread4k-qd1 randread4k-qd16 seqwrite4k seqwrite4k-4jobs}
hostport=${HOSTPORT:?}
res=$work/results.tsv
: >"$res"
log() { printf '[%6.1f s] %s\n' "$(awk '{print $1}' /proc/uptime)" "$*"; }

modprobe nvme
modprobe nvme-tcp
nvme connect -t tcp -a 10.0.2.2 -s "$hostport" -n nqn.2026-01.io.zns.bench:tcp >/dev/null || log "nvme connect failed"
declare -A serial=([qemu]=qemuzns [zvfio]=vfiozns [ztcp]=tcpzns) dev=()
for _ in $(seq 1 100); do
    for t in $targets; do
        for c in /sys/class/nvme/nvme*; do
            [[ $(tr -d ' ' <"$c/serial") == "${serial[$t]}" ]] || continue
            for b in "$c"/nvme*n1; do [[ -b /dev/${b##*/} ]] && dev[$t]=/dev/${b##*/}; done
        done
    done
    (( ${#dev[@]} == $(wc -w <<<"$targets") )) && break
    sleep 0.2
done
for t in $targets; do
    [[ -n ${dev[$t]:-} ]] || { log "no device for $t"; exit 1; }
    echo mq-deadline >"/sys/block/${dev[$t]#/dev/}/queue/scheduler"
    log "$t: ${dev[$t]} ($(cat "/sys/block/${dev[$t]#/dev/}/queue/nr_zones") zones)"
done

cpu_snapshot() {
    local _ user nice sys idle iowait irq softirq steal
    read -r _ user nice sys idle iowait irq softirq steal _ </proc/stat
    busy=$((user + nice + sys + irq + softirq + steal)); total=$((busy + idle + iowait))
}

run_fio() {
    local target=$1 d=$2 wl=$3 zone=$((64 << 20)) args=()
    case $wl in
        seqwrite128k)    args=(--rw=write --bs=128k --iodepth=1 --offset=0 --size=$((8 * zone))) ;;
        randread4k-qd1)  args=(--rw=randread --bs=4k --iodepth=1 --offset=0 --size=$((8 * zone))) ;;
        randread4k-qd16) args=(--rw=randread --bs=4k --iodepth=16 --offset=0 --size=$((8 * zone))) ;;
        seqwrite4k)      args=(--rw=write --bs=4k --iodepth=1 --offset=$((8 * zone)) --size=$((8 * zone))) ;;
        seqwrite4k-4jobs) args=(--rw=write --bs=4k --iodepth=1 --numjobs=4 --group_reporting
                                --offset=$((16 * zone)) --size=$((4 * zone)) --offset_increment=$((4 * zone))) ;;
        *) echo "unknown workload $wl"; return 1 ;;
    esac
    [[ $wl == randread* ]] || blkzone reset "$d"
    local out=$work/$target-$wl.json
    echo "start $target $wl" >"$work/mark"
    cpu_snapshot; local b0=$busy t0=$total
    fio --name="$wl" --filename="$d" --direct=1 --ioengine=libaio --zonemode=zbd \
        --time_based --runtime="$runtime" --ramp_time="$ramp" "${args[@]}" \
        --output-format=json --output="$out" >/dev/null
    cpu_snapshot
    echo "end $target $wl" >"$work/mark"
    local gbusy=$(( 100 * (busy - b0) / (total - t0 > 0 ? total - t0 : 1) ))
    jq -r --arg t "$target" --arg w "$wl" --arg g "$gbusy" '.jobs[0] as $j
        | ($j.read.iops + $j.write.iops) as $iops
        | (($j.read.bw + $j.write.bw) / 1024) as $mib
        | (if $j.read.iops > 0 then $j.read.clat_ns.mean else $j.write.clat_ns.mean end / 1000) as $lat
        | ($j.read.total_ios + $j.write.total_ios) as $ios
        | "\($t)\t\($w)\t\($iops | floor)\t\($mib * 10 | round / 10)\t\($lat | round)\t\($g)\t\($ios)"' "$out" | tee -a "$res"
}

# Unmeasured warm-up (the host-side JIT, QEMU's block layer caches).
for t in $targets; do
    blkzone reset "${dev[$t]}"
    fio --name=warm --filename="${dev[$t]}" --direct=1 --ioengine=libaio --zonemode=zbd --rw=write --bs=128k \
        --size=$((8 << 26)) --time_based --runtime=4 >/dev/null 2>&1
done
for wl in $workloads; do
    for t in $targets; do run_fio "$t" "${dev[$t]}" "$wl"; done
done
echo done >"$work/mark"

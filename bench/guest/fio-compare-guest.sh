#!/usr/bin/env bash
# Guest side of bench/guest/run-fio-compare.sh: runs inside one Linux guest
# (tests/guest/harness/run-guest.sh) and benchmarks up to three zoned NVMe/TCP
# namespaces of the same geometry with the same fio jobs:
#
#   nvmet   the kernel's nvmet-tcp exporting a zoned null_blk, guest 127.0.0.1:4420
#   zguest  zns serve (dotnet) inside the guest, RAM backstore, guest 127.0.0.1:4421
#   zhost   zns serve on the host, RAM backstore, reached at 10.0.2.2:HOSTPORT
#
#   fio-compare-guest.sh WORKDIR HOSTPORT ZNS_DLL
#
# Environment: RUNTIME (s per fio job, default 12), RAMP (s, default 2), ROUNDS (default 1),
# WARMUP (s per warm-up job, 3 jobs per target, default 8; 0 = none),
# TARGETS (default "nvmet zguest zhost"), WORKLOADS (default: all five),
# ZNS_ENV (extra NAME=VALUE words for the in-guest dotnet, e.g. DOTNET_TieredPGO=0),
# ZNS_ARGS (extra words for the in-guest zns serve, e.g. --receive-poll 20000), ZNS_NICE (its nice value),
# PIPE_DLL (Zns.Benchmarks.dll: run its no-socket `pipe` loop at the end, zns's own cost per read in this guest,
# alone and after a process switch).
# Writes WORKDIR/results.tsv (target workload iops MiB/s clat_mean_us) and the
# fio JSON files; prints progress on stdout.
set -uo pipefail
work=${1:?usage: fio-compare-guest.sh WORKDIR HOSTPORT ZNS_DLL}
hostport=${2:?}
zns_dll=${3:?}
zns_cmd=(dotnet "$zns_dll"); [[ $zns_dll == *.dll ]] || zns_cmd=("$zns_dll")   # or a native executable
runtime=${RUNTIME:-12}
ramp=${RAMP:-2}
targets=${TARGETS:-nvmet zguest zhost}
workloads=${WORKLOADS:-seqwrite128k randread4k-qd1 randread4k-qd16 seqwrite4k seqwrite4k-4jobs}
zns_env=${ZNS_ENV:-}
zns_args=${ZNS_ARGS:-}
# ZNS_NICE: the in-guest zns's nice value. nvmet-tcp's I/O work runs in a WQ_HIGHPRI workqueue, at nice -20.
zns_prio=(); [[ -n ${ZNS_NICE:-} ]] && zns_prio=(nice -n "$ZNS_NICE")

nqn_nvmet=nqn.2024-01.io.zns.bench:nvmet-nullb0
nqn_zguest=nqn.2026-01.io.zns.bench:guest
nqn_zhost=nqn.2026-01.io.zns.bench:host
C=/sys/kernel/config/nvmet
res=$work/results.tsv
: >"$res"

log() { printf '[%6.1f s] %s\n' "$(awk '{print $1}' /proc/uptime)" "$*"; }

# Geometry shared by all three targets: 64 zones of 64 MiB, capacity 62 MiB,
# max open 16, max active 32, 4 KiB blocks, data kept in RAM.
ZNS_GEOM=(--zone-size 64M --zone-capacity 62M --max-open 16 --max-active 32 --zasl 4
          --logical-block-size 4096)

zguest_pid=
cleanup() {
    for n in "$nqn_nvmet" "$nqn_zguest" "$nqn_zhost"; do nvme disconnect -n "$n" >/dev/null 2>&1 || true; done
    [[ -n $zguest_pid ]] && kill "$zguest_pid" 2>/dev/null || true
}
trap cleanup EXIT

# Wait for a bash-builtin condition without spawning sleep processes (slow under TCG).
pause() { read -r -t "$1" <> <(:) || true; }

find_dev() { # NQN -> /dev/nvmeXnY
    local nqn=$1 b deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        for b in /sys/block/nvme*; do
            [[ -e $b/device/subsysnqn && $(<"$b/hidden") == 0 ]] || continue
            [[ $(<"$b/device/subsysnqn") == "$nqn" && -b /dev/${b##*/} ]] && { echo "/dev/${b##*/}"; return; }
        done
        pause 0.2
    done
    return 1
}

setup_nvmet() {
    modprobe null_blk nr_devices=1 zoned=1 zone_size=64 zone_capacity=62 zone_nr_conv=0 \
        zone_max_open=16 zone_max_active=32 memory_backed=1 gb=4 bs=4096
    modprobe -a nvmet nvmet_tcp
    local s=$C/subsystems/$nqn_nvmet
    mkdir "$s"; echo 1 >"$s/attr_allow_any_host"
    mkdir "$s/namespaces/1"
    echo -n /dev/nullb0 >"$s/namespaces/1/device_path"
    echo 1 >"$s/namespaces/1/enable"
    mkdir "$C/ports/1"
    echo tcp >"$C/ports/1/addr_trtype"; echo ipv4 >"$C/ports/1/addr_adrfam"
    echo 127.0.0.1 >"$C/ports/1/addr_traddr"; echo 4420 >"$C/ports/1/addr_trsvcid"
    ln -s "$s" "$C/ports/1/subsystems/$nqn_nvmet"
    nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$nqn_nvmet" >/dev/null
}

teardown_nvmet() {
    nvme disconnect -n "$nqn_nvmet" >/dev/null || true
    rm -f "$C/ports/1/subsystems/$nqn_nvmet"; rmdir "$C/ports/1"
    echo 0 >"$C/subsystems/$nqn_nvmet/namespaces/1/enable"
    rmdir "$C/subsystems/$nqn_nvmet/namespaces/1" "$C/subsystems/$nqn_nvmet"
    modprobe -r null_blk || true
}

setup_zguest() {
    local t0=$SECONDS log=$work/zguest-serve.log
    # shellcheck disable=SC2086
    "${zns_prio[@]}" env DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 $zns_env \
        "${zns_cmd[@]}" serve "ram:4G" "${ZNS_GEOM[@]}" --listen 127.0.0.1:4421 \
        --nqn "$nqn_zguest" $zns_args >"$log" 2>&1 &
    zguest_pid=$!
    local deadline=$((SECONDS + 120))
    until grep -q "press Ctrl-C" "$log" 2>/dev/null; do
        kill -0 "$zguest_pid" 2>/dev/null || { cat "$log"; return 1; }
        ((SECONDS < deadline)) || { echo "zns serve did not start"; cat "$log"; return 1; }
        pause 0.5
    done
    log "zns serve in the guest ready after $((SECONDS - t0)) s (env: ${zns_env:-none})"
    nvme connect -t tcp -a 127.0.0.1 -s 4421 -n "$nqn_zguest" >/dev/null
}

teardown_zguest() {
    nvme disconnect -n "$nqn_zguest" >/dev/null || true
    kill "$zguest_pid" 2>/dev/null || true
    wait "$zguest_pid" 2>/dev/null || true
    zguest_pid=
}

setup_zhost() { nvme connect -t tcp -a 10.0.2.2 -s "$hostport" -n "$nqn_zhost" >/dev/null; }
teardown_zhost() { nvme disconnect -n "$nqn_zhost" >/dev/null || true; }

# CPU accounting (bash builtins only): total busy and total jiffies of the guest, and the in-guest zns
# process's user+system jiffies.
cpu_snapshot() {
    local _ user nice sys idle iowait irq softirq steal
    read -r _ user nice sys idle iowait irq softirq steal _ </proc/stat
    busy=$((user + nice + sys + irq + softirq + steal)); total=$((busy + idle + iowait))
    proc=0
    if [[ -n $zguest_pid && -r /proc/$zguest_pid/stat ]]; then
        local st; st=$(</proc/$zguest_pid/stat); st=${st##*) }
        local f; read -r -a f <<<"$st"; proc=$((f[11] + f[12]))
    fi
}

# Per-thread CPU jiffies of the in-guest zns process ("tid name jiffies" lines), for the zguest-threads file.
thread_cpu() {
    local d st f name
    [[ -n $zguest_pid ]] || return 0
    for d in /proc/$zguest_pid/task/*; do
        { st=$(<"$d/stat"); } 2>/dev/null || continue   # the thread may have ended
        name=${st#*(}; name=${name%)*}; name=${name// /_}
        read -r -a f <<<"${st##*) }"
        echo "${d##*/} $name $((f[11] + f[12])) ${f[11]} ${f[12]}"
    done
}

# CPU jiffies per thread name since BEFORE (an earlier thread_cpu): "name total user system" lines. Counted per
# thread id; a thread that started since counts from zero (the JIT's tier-up thread ends when idle and a new one
# starts later).
thread_delta() {
    { echo "$1" | sed 's/^/B /'; thread_cpu | sed 's/^/A /'; } | awk '
        $1 == "B" { b[$2] = $4; bu[$2] = $5; bs[$2] = $6 }
        $1 == "A" { d = $4 - b[$2]; if (d > 0) { c[$3] += d; u[$3] += $5 - bu[$2]; s[$3] += $6 - bs[$2] } }
        END { for (n in c) print n, c[n], u[n], s[n] }'
}

# One fio job; appends "target workload iops MiB/s clat_mean_us guest_busy_% zns_cpu_% round" to results.tsv
# (CPU percentages of all guest CPUs together, 100% = all vCPUs busy).
run_fio() {
    local target=$1 dev=$2 wl=$3 zone=$((64 << 20)) args=()
    case $wl in
        seqwrite128k)    args=(--rw=write --bs=128k --iodepth=1 --offset=0 --size=$((8 * zone))) ;;
        randread4k-qd1)  args=(--rw=randread --bs=4k --iodepth=1 --offset=0 --size=$((8 * zone))) ;;
        randread4k-qd16) args=(--rw=randread --bs=4k --iodepth=16 --offset=0 --size=$((8 * zone))) ;;
        seqwrite4k)      args=(--rw=write --bs=4k --iodepth=1 --offset=$((8 * zone)) --size=$((8 * zone))) ;;
        seqwrite4k-4jobs) args=(--rw=write --bs=4k --iodepth=1 --numjobs=4 --group_reporting
                                --offset=$((16 * zone)) --size=$((4 * zone)) --offset_increment=$((4 * zone))) ;;
        *) echo "unknown workload $wl"; return 1 ;;
    esac
    # Writes start from empty zones; the reads use what seqwrite128k wrote.
    [[ $wl == randread* ]] || blkzone reset "$dev"
    local out=$work/$target-$wl-r${round:-1}.json
    cpu_snapshot; local b0=$busy t0=$total p0=$proc before=
    [[ $target == zguest ]] && before=$(thread_cpu)
    fio --name="$wl" --filename="$dev" --direct=1 --ioengine=libaio --zonemode=zbd \
        --time_based --runtime="$runtime" --ramp_time="$ramp" "${args[@]}" \
        --output-format=json --output="$out" >/dev/null
    cpu_snapshot
    local gbusy=$(( 100 * (busy - b0) / (total - t0 > 0 ? total - t0 : 1) )) zcpu=-
    if [[ $target == zguest ]]; then
        zcpu=$(( 100 * (proc - p0) / (total - t0 > 0 ? total - t0 : 1) ))
        # CPU per thread name during this job, in % of all vCPUs.
        thread_delta "$before" | awk -v tot=$((total - t0)) -v w="$wl" -v r="${round:-1}" '
            { printf "%s r%s %-24s %5.1f%%  (user %.1f%%, system %.1f%%)\n", w, r, $1, 100 * $2 / tot, 100 * $3 / tot, 100 * $4 / tot }' \
            | sort -k4 -rn >>"$work/zguest-threads.txt"
    fi
    jq -r --arg t "$target" --arg w "$wl" --arg g "$gbusy" --arg z "$zcpu" --arg r "${round:-1}" '.jobs[0] as $j
        | ($j.read.iops + $j.write.iops) as $iops
        | (($j.read.bw + $j.write.bw) / 1024) as $mib
        | (if $j.read.iops > 0 then $j.read.clat_ns.mean else $j.write.clat_ns.mean end / 1000) as $lat
        | "\($t)\t\($w)\t\($iops | floor)\t\($mib * 10 | round / 10)\t\($lat | round)\t\($g)\t\($z)\t\($r)"' "$out" | tee -a "$res"
}

log "guest: $(nproc) vCPUs, $(awk '/MemTotal/ {print int($2/1024) " MiB"}' /proc/meminfo), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
modprobe nvme-tcp
# All targets are attached at once and each workload runs on every target in turn (then the next workload), so
# a change of host load during the run hits all targets alike instead of favouring whichever ran first. An idle
# target costs nothing measurable: nvmet's kernel threads and the in-guest zns's threads sleep.
declare -A devs
active=()
for t in $targets; do
    if ! "setup_$t"; then
        log "$t: setup failed, skipped"; "teardown_$t" 2>/dev/null || true; continue
    fi
    nqn_var=nqn_$t
    dev=$(find_dev "${!nqn_var}") || { log "$t: no block device, skipped"; "teardown_$t" || true; continue; }
    q=/sys/block/${dev#/dev/}/queue
    echo mq-deadline >"$q/scheduler"
    log "$t: $dev zoned=$(<"$q/zoned") nr_zones=$(<"$q/nr_zones") max_open=$(<"$q/max_open_zones") max_active=$(<"$q/max_active_zones") append_max=$(<"$q/zone_append_max_bytes") sched=$(<"$q/scheduler")"
    devs[$t]=$dev
    active+=("$t")
done
# Warm-up, unmeasured, the same on every target: 128k writes (R2T path), 4k writes (in-capsule), 4k reads and
# zone resets on zones 32-47. The in-guest zns needs it: under TCG its JIT's background tier-up (the
# ".NET Tiered Compilation" thread) was measured at 37-52% of the guest's CPUs during the first jobs after start.
warmup=${WARMUP:-8}
if ((warmup > 0)); then
    for t in "${active[@]}"; do
        d=${devs[$t]} wz=$((64 << 20))
        blkzone reset -o $((32 * wz / 512)) -l $((16 * wz / 512)) "$d"
        for spec in "--rw=write --bs=128k" "--rw=write --bs=4k --offset=$((40 * wz))" "--rw=randread --bs=4k --iodepth=8"; do
            # shellcheck disable=SC2086
            fio --name=warmup --filename="$d" --direct=1 --ioengine=libaio --zonemode=zbd --time_based \
                --runtime="$warmup" --offset=$((32 * wz)) --size=$((8 * wz)) $spec --output=/dev/null
        done
    done
    log "warm-up done (${warmup} s x 3 jobs per target)"
    # The in-guest zns is warm once its JIT has stopped tiering up: more random-read warm-up jobs while its
    # ".NET Tiered Compilation" thread used more than 1% of the vCPUs during the last one (at most 10 more).
    if [[ -n ${devs[zguest]:-} && -n $zguest_pid ]]; then
        for ((extra = 1; extra <= 10; extra++)); do
            cpu_snapshot; t0=$total; before=$(thread_cpu)
            fio --name=warmup --filename="${devs[zguest]}" --direct=1 --ioengine=libaio --zonemode=zbd --time_based \
                --runtime="$warmup" --offset=$((32 * (64 << 20))) --size=$((8 * (64 << 20))) --rw=randread --bs=4k \
                --iodepth=8 --output=/dev/null
            cpu_snapshot; j=$(thread_delta "$before" | awk '$1 ~ /^\.NET_Tiered/ { j += $2 } END { print j + 0 }')
            jit=$(( 1000 * j / (total - t0 > 0 ? total - t0 : 1) ))
            log "zguest: extra warm-up job $extra: JIT tier-up thread at $((jit / 10)).$((jit % 10))% of the vCPUs"
            ((jit <= 10)) && break
        done
    fi
fi
# The floor of a user-space target at queue depth 1 in this guest: a bare request/response loop over the loopback
# with a 4 KiB read's byte counts (bench/guest/pingpong.c), between the targets' jobs' conditions (all attached).
pingpong=$(mktemp /tmp/pingpong.XXXXXX)
if gcc -O2 -pthread -o "$pingpong" "$(dirname "$0")/pingpong.c"; then
    floor() { "$pingpong" 2000 | tee -a "$work/pingpong.txt"; }
else
    floor() { :; }
fi
floor
for ((round = 1; round <= ${ROUNDS:-1}; round++)); do
    for wl in $workloads; do
        for t in "${active[@]}"; do
            run_fio "$t" "${devs[$t]}" "$wl"
        done
    done
done
floor
if [[ -n ${PIPE_DLL:-} ]]; then
    # The code alone; a bounce through a child process alone (two process switches); both per I/O, which is
    # what a target behind a socket pays: its code runs right after a switch.
    for mode in "--workload read" "--workload none --bounce" "--workload read --bounce"; do
        # Each after a warm-up: in a fresh process under TCG the JIT needs about 40 s to finish tiering up (in 6 s
        # of a cold process a read measured 1.1-2.5 ms, after 40 s 70-80 us).
        # shellcheck disable=SC2086
        DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 dotnet "$PIPE_DLL" pipe --seconds 6 --warmup 45 $mode | tee -a "$work/pingpong.txt"
    done
fi
for t in "${active[@]}"; do "teardown_$t"; done
log "done, load $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# One Linux 6.1 guest (QEMU 11.1 from tests/guest/install/install-trixie-qemu.sh, TCG) with three zoned NVMe namespaces of
# the same geometry (64 MiB zones, 62 MiB capacity, max open 16, max active 32, 4 KiB blocks, ZASL 64 KiB, data in
# RAM), and the same fio jobs on each, interleaved per workload:
#   qemu   QEMU's built-in NVMe controller with a zoned nvme-ns on a raw file in /dev/shm
#   zvfio  zns on the host as a PCIe NVMe controller over vfio-user (ram:4G)
#   ztcp   zns on the host over NVMe/TCP through QEMU's user networking (ram:4G)
# Prints IOPS per workload, the ratios zvfio/qemu and zvfio/ztcp, their geometric means, and the host CPU time of the
# vfio-user zns process per I/O of its jobs.
#   bench/guest/run-vfio-compare.sh [-r RUNTIME] [--workloads "..."] [-o OUTDIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
runtime=10 out= workloads=
while (($#)); do
    case $1 in
        -r) runtime=$2; shift 2 ;;
        --workloads) workloads=$2; shift 2 ;;
        -o) out=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
out=${out:-$(mktemp -d /var/tmp/zns-vfio-compare.XXXXXX)}
mkdir -p "$out"
zns_dll=$repo/src/Zns.Cli/bin/Release/net10.0/zns.dll
[[ -f $zns_dll ]] || dotnet build "$repo/src/Zns.Cli" -c Release -nologo -v quiet >/dev/null
geom=(--zone-size 64M --zone-capacity 62M --max-open 16 --max-active 32 --zasl 4 --logical-block-size 4096)
sock=$out/nvme.sock port=$(( 20000 + RANDOM % 20000 ))
qraw=/dev/shm/zns-bench-qemu.raw
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -f "$qraw"; }
trap cleanup EXIT
start() { # LOG ARGS...
    local log=$1; shift
    dotnet "$zns_dll" serve ram:4G "${geom[@]}" "$@" >"$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 150); do grep -q "press Ctrl-C" "$log" && return 0; sleep 0.2; done
    cat "$log"; return 1
}
start "$out/zvfio.log" --listen none --vfio-user "$sock" --serial vfiozns --nqn nqn.2026-01.io.zns.bench:vfio
vfio_pid=${pids[-1]}
start "$out/ztcp.log" --listen "127.0.0.1:$port" --serial tcpzns --nqn nqn.2026-01.io.zns.bench:tcp
truncate -s 4G "$qraw"
cpu() { local st; st=$(<"/proc/$1/stat"); st=${st##*) }; local f; read -r -a f <<<"$st"; echo $((f[11] + f[12])); }
# Host CPU of the vfio-user zns process, sampled at the guest's job marks (the work dir is shared over 9p).
: >"$out/mark"
(
    last=; c0=0
    while sleep 0.05; do
        m=$(cat "$out/mark" 2>/dev/null) || continue
        [[ $m == "$last" ]] && continue
        last=$m
        case $m in
            "start zvfio "*) c0=$(cpu "$vfio_pid") ;;
            "end zvfio "*) echo "${m#end zvfio } $(( $(cpu "$vfio_pid") - c0 ))" >>"$out/zvfio-cpu.txt" ;;
            done) exit 0 ;;
        esac
    done
) &
pids+=($!)
"$repo/tests/guest/harness/run-guest.sh" -t 1800 -w "$out" --mem 4G --smp 2 --append "nvme_core.multipath=N" \
    --qemu "$repo/tests/guest/harness/qemu-trixie" \
    --qemu-arg -object --qemu-arg memory-backend-memfd,id=mem,size=4G,share=on \
    --qemu-arg -machine --qemu-arg memory-backend=mem \
    --qemu-arg -device --qemu-arg "{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"$sock\"}}" \
    --qemu-arg -drive --qemu-arg "file=$qraw,if=none,id=qz,format=raw,aio=threads" \
    --qemu-arg -device --qemu-arg nvme,id=qnvme,serial=qemuzns,zoned.zasl=4 \
    --qemu-arg -device --qemu-arg "nvme-ns,drive=qz,bus=qnvme,nsid=1,logical_block_size=4096,physical_block_size=4096,zoned=true,zoned.zone_size=64M,zoned.zone_capacity=62M,zoned.max_open=16,zoned.max_active=32" \
    -e "RUNTIME=$runtime" -e "HOSTPORT=$port" ${workloads:+-e "WORKLOADS=$workloads"} \
    "$repo/bench/guest/vfio-compare-guest.sh" "$out"
hz=$(getconf CLK_TCK)
awk -F'\t' -v hz="$hz" -v secs="$((runtime + 2))" -v cpuf="$out/zvfio-cpu.txt" '
    BEGIN { while ((getline l < cpuf) > 0) { split(l, a, " "); ticks[a[1]] = a[2] } }
    { iops[$1, $2] = $3; ios[$1, $2] = $7; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
    END {
        printf "%-18s %9s %9s %9s %11s %11s %14s\n", "workload", "qemu", "zvfio", "ztcp", "zvfio/qemu", "zvfio/ztcp", "host us/IO"
        for (i = 1; i <= n; i++) {
            w = order[i]; q = iops["qemu", w]; v = iops["zvfio", w]; t = iops["ztcp", w]
            rq = q > 0 ? v / q : 0; rt = t > 0 ? v / t : 0
            lq += log(rq > 0 ? rq : 1e-9); lt += log(rt > 0 ? rt : 1e-9)
            # CPU is sampled over ramp + runtime, so it is divided by the I/Os of both at the measured rate.
            us = v > 0 && (w in ticks) ? 1e6 * ticks[w] / hz / (v * secs) : 0
            printf "%-18s %9d %9d %9d %10.2fx %10.2fx %14.1f\n", w, q, v, t, rq, rt, us
        }
        printf "%-18s %9s %9s %9s %10.2fx %10.2fx\n", "geometric mean", "", "", "", exp(lq / n), exp(lt / n)
    }' "$out/results.tsv" | tee "$out/table.txt"
echo "results: $out"

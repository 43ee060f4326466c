#!/usr/bin/env bash
# fio in a Linux guest against three zoned NVMe/TCP namespaces of the same geometry, in one guest boot:
# the kernel's nvmet-tcp over a zoned null_blk (guest loopback), zns serve inside the guest (guest
# loopback) and zns serve on the host (reached at 10.0.2.2). Prints one table with the ratios.
#
#   sudo bench/guest/run-fio-compare.sh [-r RUNTIME] [--smp N] [--mem SIZE] [--targets "nvmet zguest zhost"]
#                                       [--workloads "..."] [--zns-env "NAME=VALUE ..."] [--zns-args "..."] [--zns-nice N] [--zns-dll PATH] [--rounds N] [--warmup SEC]
#                                       [-o OUTDIR]
#
# See bench/guest/README.md.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
runtime=12
smp=2
mem=4G
targets="nvmet zguest zhost"
workloads=
zns_env=
zns_args=
zns_nice=
out=
rounds=1
warmup=8
zns_dll=$repo/src/Zns.Cli/bin/Release/net10.0/zns.dll
while (($#)); do
    case $1 in
        -r|--runtime) runtime=$2; shift 2 ;;
        --smp) smp=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --targets) targets=$2; shift 2 ;;
        --workloads) workloads=$2; shift 2 ;;
        --zns-env) zns_env=$2; shift 2 ;;
        --zns-args) zns_args=$2; shift 2 ;;
        --zns-nice) zns_nice=$2; shift 2 ;;
        -o) out=$2; shift 2 ;;
        --zns-dll) zns_dll=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

[[ -f $zns_dll ]] || dotnet build "$repo/src/Zns.Cli" -c Release -nologo -v quiet >/dev/null
# A .dll runs under dotnet; anything else is an executable (the NativeAOT build, tests/packaging/publish-aot.sh).
zns_cmd=(dotnet "$zns_dll"); [[ $zns_dll == *.dll ]] || zns_cmd=("$zns_dll")
work=${out:-$(mktemp -d /var/tmp/zns-fio-compare.XXXXXX)}
mkdir -p "$work"
port=$((20000 + RANDOM % 20000))
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

echo "host: $(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ " $targets " == *" zhost "* ]]; then
    "${zns_cmd[@]}" serve "ram:4G" --zone-size 64M --zone-capacity 62M --max-open 16 --max-active 32 \
        --zasl 4 --logical-block-size 4096 --listen "127.0.0.1:$port" --nqn nqn.2026-01.io.zns.bench:host \
        >"$work/zhost-serve.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 150); do
        grep -q "press Ctrl-C" "$work/zhost-serve.log" 2>/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/zhost-serve.log"; exit 1; }
        sleep 0.2
    done
    grep -q "press Ctrl-C" "$work/zhost-serve.log" || { echo "zns serve did not start"; exit 1; }
fi

t0=$SECONDS
envs=(-e "RUNTIME=$runtime" -e "TARGETS=$targets" -e "ROUNDS=$rounds" -e "WARMUP=$warmup")
[[ -n $workloads ]] && envs+=(-e "WORKLOADS=$workloads")
[[ -n $zns_env ]] && envs+=(-e "ZNS_ENV=$zns_env")
[[ -n $zns_args ]] && envs+=(-e "ZNS_ARGS=$zns_args")
[[ -n $zns_nice ]] && envs+=(-e "ZNS_NICE=$zns_nice")
# zns's own code per 4 KiB read in the guest, with no socket, when the benchmarks are built (bench pipe).
pipe_dll=$repo/bench/Zns.Benchmarks/bin/Release/net10.0/Zns.Benchmarks.dll
[[ -f $pipe_dll ]] && envs+=(-e "PIPE_DLL=$pipe_dll")
rc=0
"$repo/tests/guest/harness/run-guest.sh" -t 1200 --smp "$smp" --mem "$mem" --append nvme_core.multipath=N \
    -w "$work" "${envs[@]}" "$repo/bench/guest/fio-compare-guest.sh" "$work" "$port" "$zns_dll" || rc=$?
echo "host: guest run took $((SECONDS - t0)) s, load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n $server_pid ]] && ! kill -0 "$server_pid" 2>/dev/null; then
    echo "host: zns serve on the host exited during the run (see $work/zhost-serve.log)"
fi

echo
echo "fio 3.33, zonemode=zbd direct=1 libaio, ${runtime} s per job (+2 s ramp), warm-up ${warmup} s x 3 per target, TCG -smp $smp -m $mem, mq-deadline"
[[ -n $zns_env ]] && echo "zns in the guest with: $zns_env"
[[ -n $zns_args ]] && echo "zns in the guest serves with: $zns_args"
[[ -n $zns_nice ]] && echo "zns in the guest runs at nice $zns_nice"
awk -F'\t' '
    # Several rounds: each cell is the median over the rounds (mean of the middle two for an even count).
    { k = $1 SUBSEP $2; c = ++cnt[k]; v_iops[k, c] = $3; v_lat[k, c] = $5; v_busy[k, c] = $6; v_zcpu[k, c] = $7
      if (!($2 in order)) { order[$2] = ++n; name[n] = $2 } }
    function median(arr, k, c,    i, j, t, a) {
        for (i = 1; i <= c; i++) a[i] = arr[k, i] + 0
        for (i = 2; i <= c; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
    }
    function has(t, w) { return ((t SUBSEP w) in cnt) }
    function iops(t, w) { return median(v_iops, t SUBSEP w, cnt[t SUBSEP w]) }
    function cell(t, w) { return has(t, w) ? sprintf("%7d %6s", iops(t, w), "(" int(median(v_lat, t SUBSEP w, cnt[t SUBSEP w]) + 0.5) ")") : sprintf("%14s", "-") }
    function pct(t, w) { return has(t, w) ? int(median(v_busy, t SUBSEP w, cnt[t SUBSEP w]) + 0.5) "%" : "-" }
    function ratio(t, w) {
        if (!has(t, w) || !has("nvmet", w) || iops("nvmet", w) == 0) return "-"
        return sprintf("%.2fx", iops(t, w) / iops("nvmet", w))
    }
    # Of the ratios to nvmet over the workloads that both targets ran.
    function geomean(t,    i, w, k, l) {
        for (i = 1; i <= n; i++) {
            w = name[i]
            if (has(t, w) && has("nvmet", w) && iops("nvmet", w) > 0 && iops(t, w) > 0) { l += log(iops(t, w) / iops("nvmet", w)); k++ }
        }
        return k ? sprintf("%.2fx", exp(l / k)) : "-"
    }
    END {
        printf "%-17s %14s %14s %14s %10s %10s\n", "workload", "nvmet IOPS", "zns-guest IOPS", "zns-host IOPS", "guest/nvmet", "host/nvmet"
        printf "%-17s %14s %14s %14s\n", "", "(clat us)", "(clat us)", "(clat us)"
        for (i = 1; i <= n; i++) {
            w = name[i]
            printf "%-17s %14s %14s %14s %10s %10s\n", w, cell("nvmet", w), cell("zguest", w), cell("zhost", w), ratio("zguest", w), ratio("zhost", w)
        }
        printf "%-17s %14s %14s %14s %10s %10s\n", "geometric mean", "", "", "", geomean("zguest"), geomean("zhost")
        printf "\nguest CPU busy during each job (%% of all vCPUs; zns-guest: whole guest / the zns process)\n"
        printf "%-17s %10s %16s %10s\n", "workload", "nvmet", "zns-guest", "zns-host"
        for (i = 1; i <= n; i++) {
            w = name[i]
            z = has("zguest", w) ? pct("zguest", w) " / " int(median(v_zcpu, "zguest" SUBSEP w, cnt["zguest" SUBSEP w]) + 0.5) "%" : "-"
            printf "%-17s %10s %16s %10s\n", w, pct("nvmet", w), z, pct("zhost", w)
        }
        for (k in cnt) if (cnt[k] > rounds) rounds = cnt[k]
        printf "\n(%d round%s; each cell is the median over the rounds)\n", rounds, (rounds > 1 ? "s" : "")
    }' "$work/results.tsv"
if [[ -s $work/pingpong.txt ]]; then
    echo "in this guest, before and after the jobs: a bare user-space round trip (bench/guest/pingpong.c); zns's code alone, a process bounce alone, both (bench pipe):"
    sed 's/^/  /' "$work/pingpong.txt"
fi
echo "raw results: $work/results.tsv (fio JSON next to it)"
exit "$rc"

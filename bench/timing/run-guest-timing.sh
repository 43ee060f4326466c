#!/bin/bash
# The ZN540 timing validation from a Linux guest: zns serve runs on the host twice (timing off, and timing=zn540,
# both with the drive's geometry in RAM); a Linux 6.1 guest under QEMU (tests/guest/harness/run-guest.sh) attaches each
# over NVMe/TCP at 10.0.2.2 and measures with fio and blkzone; the table puts the zn540 figures next to the
# dataset's (src/Zns.Core/Timing/zn540.json) and the timing-off floor of this guest.
#   sudo bench/timing/run-guest-timing.sh [-r SECONDS_PER_FIO_JOB] [-o WORKDIR]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
runtime=5
out=
while (($#)); do
    case $1 in
        -r) runtime=$2; shift 2 ;;
        -o) out=$2; shift 2 ;;
        *) echo "usage: $0 [-r SECONDS] [-o WORKDIR]" >&2; exit 2 ;;
    esac
done
zns_dll=$repo/src/Zns.Cli/bin/Release/net10.0/zns.dll
[[ -f $zns_dll ]] || dotnet build "$repo/src/Zns.Cli" -c Release -nologo -v quiet >/dev/null
work=${out:-$(mktemp -d /var/tmp/zns-timing.XXXXXX)}
mkdir -p "$work"
geometry="zoned.zone_size=2G,zoned.zone_capacity=1077M,zoned.max_open=14,zoned.max_active=14"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
specs=()
for mode in off zn540; do
    port=$((20000 + RANDOM % 20000))
    nqn=nqn.2026-01.io.zns.timing:$mode
    dotnet "$zns_dll" serve "ram:32G,$geometry,timing=$mode" --listen "127.0.0.1:$port" --nqn "$nqn" >"$work/serve-$mode.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 300); do grep -q "press Ctrl-C" "$work/serve-$mode.log" 2>/dev/null && break; sleep 0.2; done
    grep -q "press Ctrl-C" "$work/serve-$mode.log" || { cat "$work/serve-$mode.log"; exit 1; }
    specs+=("$mode:$port:$nqn")
done
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$repo/tests/guest/harness/run-guest.sh" -t 1500 --mem 2G --append nvme_core.multipath=N -w "$work" -e "RUNTIME=$runtime" \
    "$repo/bench/timing/guest-timing.sh" "$work" "${specs[@]}"
python3 - "$work/results.tsv" "$repo/src/Zns.Core/Timing/zn540.json" <<'PY'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
m = json.load(open(sys.argv[2]))["measured"]
val = {(a, b): float(c) for a, b, c in rows}
dataset = {
    "read_4k_qd1_lat_us": ("4 KiB random read latency, QD1", "µs", m["read_4k_qd1_lat_us"]["value"]),
    "write_4k_1zone_mbps": ("4 KiB sequential write, 1 zone × QD1", "MB/s", m["write_4k_zones_mbps"]["value"]["1"]),
    "write_4k_2zone_mbps": ("4 KiB sequential write, 2 zones × QD1", "MB/s", m["write_4k_zones_mbps"]["value"]["2"]),
    "write_4k_4zone_mbps": ("4 KiB sequential write, 4 zones × QD1", "MB/s", m["write_4k_zones_mbps"]["value"]["4"]),
    "write_128k_1zone_mbps": ("128 KiB sequential write, 1 zone × QD1", "MB/s", m["write_128k_zones_mbps"]["value"]["1"]),
    "reset_full_ms": ("reset of a full zone (BLKRESETZONE)", "ms", m["reset_us_by_written_lbas"]["value"]["275712"] / 1000),
    "finish_1block_ms": ("finish, 1 block written (BLKFINISHZONE)", "ms", m["finish_us_by_written_lbas"]["value"]["1"] / 1000),
    "read_during_reset_ms": ("4 KiB read issued during a full-zone reset", "ms", m["read_during_reset_us"]["value"] / 1000),
    "reset_empty_ms": ("reset of an Empty zone (the zone-action floor)", "ms", None),
}
print("| quantity | unit | dataset | zns zn540 (guest) | zn540/dataset | guest floor (timing off) | (zn540 − floor)/dataset |")
print("|---|---|---|---|---|---|---|")
floor_action = val.get(("off", "reset_empty_ms"))
for k, (name, unit, d) in dataset.items():
    on, off = val.get(("zn540", k)), val.get(("off", k))
    ratio = f"{on / d:.2f}×" if d and on is not None else "-"
    # A zone action's floor is the same ioctl answered at once (reset of an Empty zone, timing off).
    fl = floor_action if k in ("reset_full_ms", "finish_1block_ms") else None
    net = f"{(on - fl) / d:.2f}×" if d and on is not None and fl is not None else "-"
    shown = f"{d:.2f}" if d is not None else "-"
    print(f"| {name} | {unit} | {shown} | {on} | {ratio} | {fl if fl is not None else off} | {net} |")
PY

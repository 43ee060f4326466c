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

    # Zone actions timed around the ioctl itself (BLKRESETZONE / BLKFINISHZONE, what blkzone issues), so that process
    # start under TCG is not in the figure: reset of a full zone (made Full by finishing it while Empty), finish of a zone holding one block, 3 samples each; and the same
    # reset of an Empty zone, which the device answers at once (the guest's floor for a zone action).
    python3 - "$dev" "$zone_sectors" "$out" "$label" <<'PY'
import fcntl, mmap, os, struct, sys, time
dev, zs, out, label = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
RESET, FINISH = 0x40101283, 0x40101288   # _IOW(0x12, 131 / 136, struct blk_zone_range)
fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
def action(code, zone):
    t0 = time.perf_counter_ns()
    fcntl.ioctl(fd, code, struct.pack("QQ", zone * zs, zs))
    return (time.perf_counter_ns() - t0) / 1e6
def write(zone, nbytes):
    m = mmap.mmap(-1, 1 << 20)   # page-aligned, as O_DIRECT needs
    left, off = nbytes, zone * zs * 512
    while left:
        n = min(left, 1 << 20)
        os.pwritev(fd, [memoryview(m)[:n]], off)
        left -= n; off += n
def emit(name, values):
    v = round(sum(values) / len(values), 2)
    with open(out, "a") as f: f.write(f"{label}\t{name}\t{v}\n")
    print(label, name, v, flush=True)
full, fin, empty = [], [], []
for z in (1, 2, 3):
    action(FINISH, z); full.append(action(RESET, z))
for z in (7, 8, 9):
    write(z, 4096); fin.append(action(FINISH, z)); action(RESET, z)
for z in (10, 11, 12):
    empty.append(action(RESET, z))
# A 4 KiB read of zone 14 issued 0.5 ms into the reset of the full zone 13 next to it (the dataset's interference run).
import threading
during = []
buf = mmap.mmap(-1, 4096)
for _ in range(3):
    write(14, 4096); action(FINISH, 13)
    t = threading.Thread(target=action, args=(RESET, 13)); t.start()
    time.sleep(0.0005)
    t0 = time.perf_counter_ns(); os.preadv(fd, [buf], 14 * zs * 512); during.append((time.perf_counter_ns() - t0) / 1e6)
    t.join(); action(RESET, 14)
emit("reset_full_ms", full); emit("finish_1block_ms", fin); emit("reset_empty_ms", empty); emit("read_during_reset_ms", during)
PY

    blkzone reset "$dev"
    nvme disconnect -n "$nqn" >/dev/null
done

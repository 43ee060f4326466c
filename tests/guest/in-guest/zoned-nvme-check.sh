#!/usr/bin/env bash
# Guest-side check of a zoned namespace served over NVMe/TCP.
#
#   zoned-nvme-check.sh ADDR PORT NQN
#
# Runs inside the guest (tests/guest/harness/run-guest.sh): discovers and connects to
# the target at ADDR:PORT (10.0.2.2 is the host's 127.0.0.1), finds the
# namespace's block device, checks that the kernel sees it as host-managed
# zoned, reports zones, writes and verifies data with fio in zbd mode, does a
# zone append, finish and reset with nvme-cli, and disconnects.
set -euo pipefail
addr=${1:?usage: zoned-nvme-check.sh ADDR PORT NQN}
port=${2:?usage: zoned-nvme-check.sh ADDR PORT NQN}
nqn=${3:?usage: zoned-nvme-check.sh ADDR PORT NQN}

step() { echo "=== $*"; }
connected=0
cleanup() { if ((connected)); then nvme disconnect -n "$nqn" >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT

modprobe nvme-tcp
step "discover $addr:$port"
nvme discover -t tcp -a "$addr" -s "$port"
step "connect $nqn"
nvme connect -t tcp -a "$addr" -s "$port" -n "$nqn"
connected=1

# The namespace's block device: the disk whose (controller's or subsystem's)
# subsysnqn is ours. With native multipath that is the head disk nvmeXnY; the
# per-path disks nvmeXcYnZ are hidden and have no /dev node.
dev=
deadline=$((SECONDS + 15))
while ((SECONDS < deadline)); do
    for b in /sys/block/nvme*; do
        [[ -e $b/device/subsysnqn && $(<"$b/hidden") == 0 ]] || continue
        [[ $(<"$b/device/subsysnqn") == "$nqn" && -b /dev/${b##*/} ]] && dev=/dev/${b##*/} && break
    done
    [[ -n $dev ]] && break
    read -r -t 0.2 <> <(:) || true
done
[[ -n $dev ]] || { echo "no block device for $nqn"; exit 1; }
ctrl=$(basename "$(readlink -f "/sys/block/${dev#/dev/}/device")")
q=/sys/block/${dev#/dev/}/queue
step "device $dev"
for a in zoned nr_zones chunk_sectors zone_append_max_bytes max_open_zones max_active_zones \
         logical_block_size max_hw_sectors_kb scheduler; do
    printf '%-22s %s\n' "$a" "$(cat "$q/$a" 2>/dev/null || echo '?')"
done
[[ $(<"$q/zoned") == host-managed ]] || { echo "not host-managed"; exit 1; }
zone_sectors=$(<"$q/chunk_sectors")
lbs=$(<"$q/logical_block_size")

step "nvme zns id-ns"
nvme zns id-ns "$dev" | head -n 12
step "blkzone report (first 3 zones)"
blkzone reset "$dev"
blkzone report "$dev" | head -n 3

step "fio: zbd sequential write + verify, zones 0-1"
fio --name=zbd-verify --filename="$dev" --direct=1 --ioengine=psync --zonemode=zbd \
    --rw=write --bs=64k --offset=0 --size=$((2 * zone_sectors * 512)) --io_size=8M \
    --verify=crc32c --do_verify=1 --output-format=terse --terse-version=3 |
    awk -F';' '{ printf "wrote %s KiB at %s KiB/s, verified %s KiB, error %s\n", $47, $48, $6, $5; exit $5 != 0 }'
blkzone report -c 2 "$dev"

step "zone append to zone 2, finish zone 2, reset all"
zslba=$((2 * zone_sectors * 512 / lbs))
head -c "$lbs" /dev/urandom >/tmp/append.bin
nvme zns zone-append "$dev" -s "$zslba" -z "$lbs" -d /tmp/append.bin
nvme zns report-zones "$dev" -s "$zslba" -d 1
nvme zns finish-zone "$dev" -s "$zslba"
blkzone report -o $((2 * zone_sectors)) -c 1 "$dev"
nvme zns reset-zone "$dev" -a
blkzone report -c 3 "$dev"

step "disconnect"
nvme disconnect -n "$nqn"
connected=0
echo "zoned-nvme-check: OK ($dev on $ctrl)"

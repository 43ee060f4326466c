#!/usr/bin/env bash
# The Linux 6.1 btrfs study (docs/tests.md: Linux 6.1 and btrfs balance): zns serves the seed's geometry (64 MiB zones,
# 62 MiB capacity, 16 open, 32 active, 2 GiB) on the host; one guest runs btrfs-study.sh against it and against
# nvmet-tcp over a zoned null_blk of the same geometry, scheduler default and mq-deadline, RUNS times each.
#
#   btrfs-study-host.sh [SPEC] [RUNS] [MIB]      default: 6.1 5 96; evidence kept in $ZNS_STUDY_DIR (default /var/tmp/zns-btrfs-study)
set -uo pipefail
spec=${1:-6.1}; runs=${2:-5}; mib=${3:-96}
guest=$(cd "$(dirname "$0")/.." && pwd)
work=${ZNS_STUDY_DIR:-/var/tmp/zns-btrfs-study}
rm -rf "$work"; mkdir -p "$work/target" "$work/share"
source "$guest/lib/server.sh"
trap 'kill_server' EXIT
port=$((20000 + RANDOM % 20000)); nqn=nqn.2026-01.io.zns:study
truncate -s 2G "$work/target/seed.raw"
start_server --zone-size 64M --zone-capacity 62M --max-open 16 --max-active 32 seed.raw --nqn "$nqn" \
    --listen "127.0.0.1:$port" --control off || exit 1
"$guest/harness/run-guest.sh" -t "${ZNS_STUDY_TIMEOUT:-5400}" --mem 3G --kernel-version "$spec" -w "$work/share" \
    -e "PORT=$port" -e "NQN=$nqn" -e "SHARE=$work/share" -e "RUNS=$runs" -e "MIB=$mib" \
    ${ZNS_STUDY_TARGETS:+-e "TARGETS=$ZNS_STUDY_TARGETS"} ${ZNS_STUDY_SCHEDS:+-e "SCHEDS=$ZNS_STUDY_SCHEDS"} \
    "$guest/studies/btrfs-study.sh" | tee "$work/study.txt"
stop_server
grep "refused ahead" "$work/serve.log"
echo "# evidence: $work/share/evidence"

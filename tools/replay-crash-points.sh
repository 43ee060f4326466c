#!/usr/bin/env bash
# Replays crash points of a zns write log (zns serve --write-log DIR) and runs a check on each: for every chosen
# point, `zns replay` rebuilds a backstore image as the namespace was then (with --keep, as a power cut leaves it),
# and CHECK runs with the image's path as its argument ($1, also $ZNS_IMAGE; the point in $ZNS_POINT). The same
# idea as fstests' replay-log, for zoned namespaces. Exit status: 0 when every check passed, 1 when one failed,
# 2 for bad usage.
#
#   tools/replay-crash-points.sh DIR (--every-flush | --count N) --check CMD
#        [--nsid N] [--keep none|all|random] [--torn] [--seed S] [--work DIR] [--keep-images]
#
# --every-flush   one point after each flush (flush 1, 2, ...)
# --count N       N points spread evenly over the entries (the last one included)
# --check CMD     a shell command; e.g. 'zns serve "$1" ... & mount ...; fsck ...' or a script
# --keep ...      what each crash keeps of the writes after its last flush (default all); with random, point i
#                 uses seed S+i so the crashes differ and any one can be rebuilt again
# --work DIR      where images go (default: a new temporary directory, removed at the end)
# --keep-images   keep each point's image (point-K.raw) instead of removing it after its check
# ZNS             the zns command (default: zns on PATH), e.g. ZNS="dotnet src/Zns.Cli/bin/Release/net10.0/zns.dll"
set -uo pipefail

usage() { echo "replay-crash-points: $1" >&2; exit 2; }
[ $# -ge 1 ] || usage "usage: $0 DIR (--every-flush | --count N) --check CMD [--nsid N] [--keep POLICY] [--torn] [--seed S] [--work DIR] [--keep-images]"
log=$1; shift
mode=; count=; check=; nsid=(); keep=all; torn=(); seed=0; work=; keep_images=0
while [ $# -gt 0 ]; do
  case $1 in
    --every-flush) mode=flush ;;
    --count) [ $# -ge 2 ] || usage "--count needs N"; mode=count; count=$2; shift ;;
    --check) [ $# -ge 2 ] || usage "--check needs CMD"; check=$2; shift ;;
    --nsid) [ $# -ge 2 ] || usage "--nsid needs N"; nsid=(--nsid "$2"); shift ;;
    --keep) [ $# -ge 2 ] || usage "--keep needs none, all or random"; keep=$2; shift ;;
    --torn) torn=(--torn) ;;
    --seed) [ $# -ge 2 ] || usage "--seed needs S"; seed=$2; shift ;;
    --work) [ $# -ge 2 ] || usage "--work needs DIR"; work=$2; shift ;;
    --keep-images) keep_images=1 ;;
    *) usage "unknown option '$1'" ;;
  esac
  shift
done
[ -n "$mode" ] || usage "give --every-flush or --count N"
[ -n "$check" ] || usage "give --check CMD"
case $keep in none|all|random) ;; *) usage "--keep: '$keep' is not none, all or random" ;; esac
[[ $seed =~ ^[0-9]+$ ]] || usage "--seed: '$seed' is not a whole number ≥ 0"
if [ "$mode" = count ] && ! [[ $count =~ ^[1-9][0-9]*$ ]]; then usage "--count: '$count' is not a whole number ≥ 1"; fi
read -r -a zns <<<"${ZNS:-zns}"

# The log's size: its last line is "E entries, F flushes".
listing=$("${zns[@]}" replay "$log" "${nsid[@]}" --list) || exit 2
summary=$(printf '%s\n' "$listing" | tail -n 1)
entries=$(sed -n 's/^\([0-9]*\) entries, \([0-9]*\) flushes.*/\1/p' <<<"$summary")
flushes=$(sed -n 's/^\([0-9]*\) entries, \([0-9]*\) flushes.*/\2/p' <<<"$summary")
[ -n "$entries" ] || usage "$log: could not read the entry count from zns replay --list"

points=()
if [ "$mode" = flush ]; then
  [ "$flushes" -gt 0 ] || usage "$log: the log has no flush"
  for ((f = 1; f <= flushes; f++)); do points+=("--flush $f"); done
else
  [ "$entries" -gt 0 ] || usage "$log: the log has no entries"
  [ "$count" -le "$entries" ] || count=$entries
  for ((i = 1; i <= count; i++)); do points+=("--to $(( (i * entries + count - 1) / count - 1 ))"); done
fi

if [ -z "$work" ]; then work=$(mktemp -d /tmp/zns-crash-points.XXXXXX); trap 'rm -rf "$work"' EXIT; fi
mkdir -p "$work" || exit 2
failed=0; n=0
echo "1..${#points[@]}"
for point in "${points[@]}"; do
  n=$((n + 1))
  image="$work/point-$n.raw"
  rm -f "$image" "$image.zns"
  crash=(--keep "$keep")
  [ "$keep" = random ] && crash+=(--seed $((seed + n - 1)) "${torn[@]}")
  # shellcheck disable=SC2086 # $point is an option and its value
  if ! "${zns[@]}" replay "$log" "${nsid[@]}" $point --image "$image" "${crash[@]}" >"$work/replay.out" 2>&1; then
    echo "not ok $n - $point: zns replay failed: $(tail -n 1 "$work/replay.out")"
    failed=1
    continue
  fi
  if ZNS_IMAGE=$image ZNS_POINT=$point bash -c "$check" crash-point "$image" >"$work/check.out" 2>&1; then
    echo "ok $n - $point ${crash[*]}"
  else
    echo "not ok $n - $point ${crash[*]}: check failed; rebuild it with: zns replay $log ${nsid[*]}${nsid[*]:+ }$point --image FILE ${crash[*]}"
    sed 's/^/# /' "$work/check.out" | tail -n 20
    failed=1
  fi
  [ "$keep_images" = 1 ] || rm -f "$image" "$image.zns"
done
exit $failed

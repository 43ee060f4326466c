#!/usr/bin/env bash
# Real-kernel tests: zns serves the seed's default namespace on the host, Linux 6.1 boots under QEMU
# (tests/guest/run-guest.sh) and attaches it over NVMe/TCP through 10.0.2.2, runs nvme-cli, blkzone and fio
# against it, disconnects; zns is stopped and restarted; a second boot checks that every zone and the data are as
# before. Then btrfs and f2fs on every kernel of ZNS_KERNELS (fs-tests.sh). Prints one TAP-style line per check
# ("ok N - ..." / "not ok N - ...").
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
here="$repo/tests/guest"
zns_dll="$repo/src/Zns.Cli/bin/Release/net10.0/zns.dll"
[ -f "$zns_dll" ] || dotnet build "$repo/src/Zns.Cli" -c Release -nologo -v quiet >/dev/null
work=$(mktemp -d /var/tmp/zns-kernel-tests.XXXXXX)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$(( 20000 + RANDOM % 20000 ))
nqn=nqn.2026-01.io.zns:subsys

start_server() {
  (cd "$work/target" && exec dotnet "$zns_dll" serve "$@" --listen "127.0.0.1:$port" >>"$work/serve.log" 2>&1) &
  server_pid=$!
  for _ in $(seq 1 100); do
    grep -q "press Ctrl-C" "$work/serve.log" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "not ok - zns serve did not start"; cat "$work/serve.log"; return 1
}

stop_server() {
  kill -TERM "$server_pid"; wait "$server_pid"; local rc=$?; server_pid=
  return $rc
}

mkdir -p "$work/target" "$work/share"
start_server || exit 1

# A guest that did not finish (timeout, a boot that hung or died each time) is a failing line of its own
# (--tap-name), so that a phase which ran no checks cannot pass unseen.
run_guest() {
  "$here/run-guest.sh" -t 600 -w "$work/share" --tap-name "$(basename "$1")" "$@"
}

# Phase 1: attach, check identity and geometry, zone actions, errors, fio, then write known data.
run_guest "$here/kernel-phase1.sh" "$port" "$nqn" "$work/share" | tee "$work/phase1.tap"
n=$(grep -c -E '^(ok|not ok) ' "$work/phase1.tap")

if stop_server; then echo "ok $((n+1)) - zns serve stops cleanly on SIGTERM"; else echo "not ok $((n+1)) - zns serve exit status on SIGTERM"; fi
# Restart with a second, conventional namespace next to the first.
start_server zns.raw ram:256M,zoned=off || exit 1

# Phase 2: a new boot against the restarted target sees the same zones and data; digests; mixed namespaces.
run_guest "$here/kernel-phase2.sh" "$port" "$nqn" "$work/share" "$((n+2))" | tee "$work/phase2.tap"
n=$(( n + 1 + $(grep -c -E '^(ok|not ok) ' "$work/phase2.tap") ))
stop_server >/dev/null 2>&1 || true

# Phase 3: access control from a real `nvme connect --hostnqn`.
allowed=nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000aa
start_server --allow-host "$allowed" || exit 1
run_guest "$here/kernel-phase3.sh" "$port" "$nqn" "$allowed" "$((n+1))" | tee "$work/phase3.tap"
n=$(( n + $(grep -c -E '^(ok|not ok) ' "$work/phase3.tap") ))
stop_server >/dev/null 2>&1 || true

# Filesystems (btrfs zoned; f2fs with a conventional namespace for metadata) on every kernel of the matrix, across a
# restart and SIGKILL crashes of zns serve (fs-tests.sh). ZNS_KERNELS selects the kernels (default 6.1,6.12,7);
# ZNS_F2FS_KERNELS narrows f2fs to some of them (default: all of ZNS_KERNELS).
IFS=, read -r -a kernels <<<"${ZNS_KERNELS:-6.1,6.12,7}"
f2fs_kernels=",${ZNS_F2FS_KERNELS:-${ZNS_KERNELS:-6.1,6.12,7}},"
for k in "${kernels[@]}"; do
  if ! "$here/kernels.sh" path "$k" >/dev/null 2>&1; then
    n=$((n+1)); echo "not ok $n - kernel $k is not available (run tests/guest/install-deps.sh)"; continue
  fi
  for fs in btrfs f2fs; do
    [ "$fs" = f2fs ] && [[ $f2fs_kernels != *",$k,"* ]] && { echo "# f2fs on $k skipped (ZNS_F2FS_KERNELS)"; continue; }
    # The guests use mq-deadline on every kernel: Linux 6.1 with scheduler none reorders the writes of a zone
    # across I/O queues and btrfs balance then fails (docs/tests.md: Linux 6.1 and btrfs balance).
    "$here/fs-tests.sh" "$k" "$fs" | awk -v n="$n" '/^(ok|not ok) - /{ n++; sub(/ - /, " " n " - ") } { print; fflush() }' \
      | tee "$work/fs-$k-$fs.tap"
    n=$(( n + $(grep -c -E '^(ok|not ok) ' "$work/fs-$k-$fs.tap") ))
  done
done

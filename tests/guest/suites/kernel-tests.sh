#!/usr/bin/env bash
# Real-kernel tests over NVMe/TCP: zns serves on the host, Linux 6.1 boots under QEMU (harness/run-guest.sh) and
# attaches it through 10.0.2.2. The phases every transport runs (lib/transport-phases.sh): identity, geometry, zone
# actions, errors, Compare, Copy, Timestamp, fio (also under an injected write latency); zns is stopped and
# restarted; a second boot checks that every zone and the data are as before, a conventional namespace, a ZRWA
# namespace from `zns create`, and header and data digests. Then access control (--allow-host, a third boot), and
# btrfs and f2fs on every kernel of ZNS_KERNELS (fs-tests.sh). Prints one TAP line per check ("ok N - ...").
set -uo pipefail
suites=$(cd "$(dirname "$0")" && pwd)
guest=$(dirname "$suites")
work=$(mktemp -d /var/tmp/zns-kernel-tests.XXXXXX)
for l in tap server host-requests transport-phases; do source "$guest/lib/$l.sh"; done
cleanup() { control_agent_stop; stop_server 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

transport=tcp
port=$(( 20000 + RANDOM % 20000 ))
listen=(--listen "127.0.0.1:$port")
# A guest that did not finish (timeout, a boot that hung or died each time) is a failing line of its own
# (--tap-name), so that a phase which ran no checks cannot pass unseen.
run_guest() { "$guest/harness/run-guest.sh" -t 600 -w "$work/share" "$@"; }

transport_phases || exit 1

# Access control from a real `nvme connect --hostnqn`.
allowed=nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000aa
start_server "${listen[@]}" --control off --allow-host "$allowed" || { tap 1 "zns serve --allow-host starts"; exit 1; }
run_phase access-control.sh "$allowed"
stop_server >/dev/null 2>&1

# Filesystems (btrfs zoned; f2fs with a conventional namespace for metadata) on every kernel of the matrix, across a
# restart and SIGKILL crashes of zns serve (fs-tests.sh). ZNS_KERNELS selects the kernels (default 6.1,6.12,7);
# ZNS_F2FS_KERNELS narrows f2fs to some of them (default: all of ZNS_KERNELS).
IFS=, read -r -a kernels <<<"${ZNS_KERNELS:-6.1,6.12,7}"
f2fs_kernels=",${ZNS_F2FS_KERNELS:-${ZNS_KERNELS:-6.1,6.12,7}},"
for k in "${kernels[@]}"; do
  if ! "$guest/harness/kernels.sh" path "$k" >/dev/null 2>&1; then
    tap 1 "kernel $k is not available (run tests/guest/install/install-deps.sh)"; continue
  fi
  for fs in btrfs f2fs; do
    [ "$fs" = f2fs ] && [[ $f2fs_kernels != *",$k,"* ]] && { echo "# f2fs on $k skipped (ZNS_F2FS_KERNELS)"; continue; }
    # The guests use mq-deadline on every kernel: Linux 6.1 with scheduler none reorders the writes of a zone
    # across I/O queues and btrfs balance then fails (docs/tests.md: Linux 6.1 and btrfs balance).
    "$suites/fs-tests.sh" "$k" "$fs" | awk -v n="$n" '/^(ok|not ok) - /{ n++; sub(/ - /, " " n " - ") } { print; fflush() }' \
      | tee "$work/fs-$k-$fs.tap"
    n=$(( n + $(tap_count "$work/fs-$k-$fs.tap") ))
  done
done

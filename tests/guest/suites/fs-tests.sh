#!/usr/bin/env bash
# Filesystem tests on a real kernel: zns serves on the host, the guest (harness/run-guest.sh, kernel SPEC) runs
# btrfs or f2fs on it, every byte verified by SHA-256, across a restart and SIGKILL crashes of zns serve.
#
#   fs-tests.sh SPEC FS [WORKDIR]     SPEC: 6.1, 6.12, 7 (see harness/kernels.sh); FS: btrfs or f2fs
#
# The guest asks for restarts and kills through the shared dir (lib/host-requests.sh), so one boot covers the whole
# sequence. Prints unnumbered TAP lines ("ok - ...") prefixed with the kernel and FS; kernel-tests.sh numbers them.
# Environment: ZNS_CRASH_CYCLES (default 2), ZNS_FS_MIB (data of the first write, default 32), ZNS_SCHED (none |
# mq-deadline | default; the guest's I/O scheduler, default mq-deadline), ZNS_BTRFS_BALANCE=0 (skip
# scrub-and-balance, see docs/tests.md on Linux 6.1).
set -uo pipefail
spec=${1:?usage: fs-tests.sh SPEC btrfs|f2fs [WORKDIR]}
fs=${2:?usage: fs-tests.sh SPEC btrfs|f2fs [WORKDIR]}
guest=$(cd "$(dirname "$0")/.." && pwd)
keep_work=${3:+1}
work=${3:-$(mktemp -d /var/tmp/zns-fs-tests.XXXXXX)}
for l in tap server host-requests; do source "$guest/lib/$l.sh"; done
TAP_NUMBERS=0
# A WORKDIR given again keeps its backstores, not the requests of the guest before.
rm -rf "$work/share/requests"
mkdir -p "$work/target" "$work/share/requests"
port=$((20000 + RANDOM % 20000))
nqn=nqn.2026-01.io.zns:fs
label="$spec $fs"

case $fs in
    # 2 GiB zoned, 16 MiB zones with 15 MiB capacity (a zone size apart from its capacity, as on real ZNS drives).
    btrfs) files=(fs.raw:2G); serve_args=(--zone-size 16M --zone-capacity 15M fs.raw) ;;
    # f2fs keeps its metadata on a conventional namespace (nsid 1) beside the zoned one (nsid 2).
    f2fs) files=(conv.raw:256M fs.raw:2G); serve_args=(--zone-size 16M --zone-capacity 15M conv.raw,zoned=off fs.raw) ;;
    # Not a file system: a raw zoned namespace that the host keeps attached across a kill (fs-reconnect.sh).
    reconnect) files=(fs.raw:1G); serve_args=(--zone-size 64M fs.raw) ;;
    *) echo "fs-tests: unknown FS $fs" >&2; exit 2 ;;
esac

serve() { start_server "${serve_args[@]}" --nqn "$nqn" --listen "127.0.0.1:$port" --control off; }
# The guest's requests: stop, start, restart or kill zns serve (this shell is its parent, so it can wait for it).
fs_request() {
    case $1 in
        stop) stop_server ;;
        start) serve ;;
        restart) stop_server && serve ;;
        kill) kill_server ;;
        *) return 2 ;;
    esac
    local rc=$?
    echo "# host: $1 -> $rc" >>"$work/host.log"
    return $rc
}

cleanup() {
    [ -n "${guest_pid:-}" ] && kill "$guest_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null
    [ -z "$keep_work" ] && [ "${ZNS_KEEP_WORK:-0}" != 1 ] && rm -rf "$work"
}
trap cleanup EXIT

for f in "${files[@]}"; do [ -e "$work/target/${f%%:*}" ] || truncate -s "${f#*:}" "$work/target/${f%%:*}"; done
serve || { tap 1 "$label: zns serve starts"; exit 1; }
# The guest runs in the background; this shell answers its requests (it is zns serve's parent, so it can wait for it).
( "$guest/harness/run-guest.sh" -t "${ZNS_FS_TIMEOUT:-1500}" --kernel-version "$spec" -w "$work/share" \
    -e "PORT=$port" -e "NQN=$nqn" -e "SHARE=$work/share" -e "HOST_REQUESTS=$work/share/requests" -e "CYCLES=${ZNS_CRASH_CYCLES:-2}" \
    -e "FS_MIB=${ZNS_FS_MIB:-32}" -e "ZNS_SCHED=${ZNS_SCHED:-mq-deadline}" -e "BALANCE=${ZNS_BTRFS_BALANCE:-1}" \
    "$guest/in-guest/fs-$fs.sh" 2>"$work/guest.err"; echo $? >"$work/guest-rc" ) | sed -u -E "s/^(ok|not ok) - /\1 - $label: /" &
guest_pid=$!
serve_requests "$work/share/requests" fs_request "$work/guest-rc"
wait "$guest_pid"
rc=$(cat "$work/guest-rc")
grep -h '^run-guest: boot' "$work/guest.err" | sed 's/^/# /'
if [ "$rc" != 0 ]; then
    tap 1 "$label: guest script exit status $rc"
    tail -n 40 "$work/guest.err" | sed 's/^/#   /'
fi
stop_server; tap $? "$label: zns serve stops cleanly at the end"
# Writes refused ahead of the write pointer: host reordering (kernel-tests.sh reports them; see docs/tests.md).
grep -h "refused ahead of the write pointer" "$work/serve.log" | sed 's/^/# /'

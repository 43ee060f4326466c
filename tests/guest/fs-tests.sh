#!/usr/bin/env bash
# Filesystem tests on a real kernel: zns serves on the host, the guest (tests/guest/run-guest.sh, kernel SPEC) runs
# btrfs or f2fs on it, every byte verified by SHA-256, across a restart and SIGKILL crashes of zns serve.
#
#   fs-tests.sh SPEC FS [WORKDIR]     SPEC: 6.1, 6.12, 7 (see kernels.sh); FS: btrfs or f2fs
#
# The guest asks for restarts and kills through files in the shared dir (ctl/req.N; the answer is ctl/ack.N), so
# one boot covers the whole sequence. Prints unnumbered TAP lines ("ok - ...") prefixed with the kernel and FS;
# kernel-tests.sh numbers them. Environment: ZNS_CRASH_CYCLES (default 2), ZNS_FS_MIB (data of the first
# write, default 32), ZNS_SCHED (none | mq-deadline | default; the guest's I/O scheduler, default mq-deadline),
# ZNS_BTRFS_BALANCE=0 (skip scrub-and-balance, see docs/tests.md on Linux 6.1).
set -uo pipefail
spec=${1:?usage: fs-tests.sh SPEC btrfs|f2fs [WORKDIR]}
fs=${2:?usage: fs-tests.sh SPEC btrfs|f2fs [WORKDIR]}
repo=$(cd "$(dirname "$0")/../.." && pwd)
here="$repo/tests/guest"
zns_dll="$repo/src/Zns.Cli/bin/Release/net10.0/zns.dll"
[ -f "$zns_dll" ] || dotnet build "$repo/src/Zns.Cli" -c Release -nologo -v quiet >/dev/null
keep_work=${3:+1}
work=${3:-$(mktemp -d /var/tmp/zns-fs-tests.XXXXXX)}
mkdir -p "$work/target" "$work/share/ctl"
server_pid=
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

start_server() {
    (cd "$work/target" && exec dotnet "$zns_dll" serve "${serve_args[@]}" --nqn "$nqn" --listen "127.0.0.1:$port" \
        >>"$work/serve.log" 2>&1) &
    server_pid=$!
    local before
    before=$(grep -c "press Ctrl-C" "$work/serve.log" 2>/dev/null)
    for _ in $(seq 1 150); do
        [ "$(grep -c "press Ctrl-C" "$work/serve.log" 2>/dev/null)" -gt "${before:-0}" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.2
    done
    echo "# zns serve did not start:"; sed 's/^/#   /' "$work/serve.log" | tail -5
    return 1
}
stop_server() { [ -n "$server_pid" ] || return 0; kill -TERM "$server_pid"; wait "$server_pid"; local rc=$?; server_pid=; return $rc; }
kill_server() { [ -n "$server_pid" ] || return 0; kill -KILL "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=; return 0; }

# Answers the guest's requests until the guest ends.
serve_requests() {
    local n=1 cmd rc
    while :; do
        if [ -e "$work/share/ctl/req.$n" ]; then
            cmd=$(cat "$work/share/ctl/req.$n")
            case $cmd in
                stop) stop_server; rc=$? ;;
                start) start_server; rc=$? ;;
                restart) stop_server && start_server; rc=$? ;;
                kill) kill_server; rc=$? ;;
                *) rc=1 ;;
            esac
            echo "# host: $cmd -> $rc" >>"$work/host.log"
            if [ $rc = 0 ]; then echo ok; else echo "failed $rc"; fi >"$work/share/ctl/ack.$n"
            n=$((n + 1))
            continue
        fi
        [ -e "$work/guest-rc" ] && return
        sleep 0.1
    done
}

cleanup() {
    [ -n "${guest_pid:-}" ] && kill "$guest_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null
    [ -z "$keep_work" ] && [ "${ZNS_KEEP_WORK:-0}" != 1 ] && rm -rf "$work"
}
trap cleanup EXIT

for f in "${files[@]}"; do [ -e "$work/target/${f%%:*}" ] || truncate -s "${f#*:}" "$work/target/${f%%:*}"; done
start_server || { echo "not ok - $label: zns serve starts"; exit 1; }
# The guest runs in the background; this shell answers its requests (it is zns serve's parent, so it can wait for it).
( "$here/run-guest.sh" -t "${ZNS_FS_TIMEOUT:-1500}" --kernel-version "$spec" -w "$work/share" \
    -e "PORT=$port" -e "NQN=$nqn" -e "SHARE=$work/share" -e "CYCLES=${ZNS_CRASH_CYCLES:-2}" \
    -e "FS_MIB=${ZNS_FS_MIB:-32}" -e "ZNS_SCHED=${ZNS_SCHED:-mq-deadline}" -e "BALANCE=${ZNS_BTRFS_BALANCE:-1}" \
    "$here/fs-$fs.sh" 2>"$work/guest.err"; echo $? >"$work/guest-rc" ) | sed -u -E "s/^(ok|not ok) - /\1 - $label: /" &
guest_pid=$!
serve_requests
wait "$guest_pid"
rc=$(cat "$work/guest-rc")
grep -h '^run-guest: boot' "$work/guest.err" | sed 's/^/# /'
if [ "$rc" != 0 ]; then
    echo "not ok - $label: guest script exit status $rc"
    tail -n 40 "$work/guest.err" | sed 's/^/#   /'
fi
if stop_server; then echo "ok - $label: zns serve stops cleanly at the end"; else echo "not ok - $label: zns serve exit status at the end"; fi
# Writes refused ahead of the write pointer: host reordering (kernel-tests.sh reports them; see docs/tests.md).
grep -h "refused ahead of the write pointer" "$work/serve.log" | sed 's/^/# /'

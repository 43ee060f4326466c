#!/usr/bin/env bash
# Power cuts under real file systems: zns serves on the host, Linux boots under QEMU (harness/run-guest.sh) and runs
# btrfs, then f2fs, through ZNS_POWERCUT_CUTS (default 20) power cuts each at random points of an fsync-heavy
# workload (in-guest/powercut-fs.sh, crashload.py): after each cut the guest attaches again, mounts, every file whose
# fsync returned verifies by SHA-256 and the checker (btrfs check / fsck.f2fs, read-only) is clean. Half the cuts
# are `zns fault power-cut --keep none`, half `--keep random --torn`. The btrfs boot first runs the negative control
# (in-guest/powercut-control.sh): an unflushed O_DIRECT write is gone after a --keep none cut and its zone's write
# pointer moved back, a FUA write and a write followed by a flush are kept.
#
#   powercut-tests.sh [SPEC...]     kernels (see harness/kernels.sh), default ZNS_POWERCUT_KERNELS or "6.12 7"
#
# One guest boot per kernel and file system; the guest asks for the cuts through the shared dir
# (lib/host-requests.sh). Prints one TAP line per check ("ok N - ...").
# Environment: ZNS_POWERCUT_CUTS (cuts per file system and kernel), ZNS_POWERCUT_SEED (the base seed, printed; cut c
# of a run uses SEED+c, so a failing cut reproduces with the same SEED), ZNS_POWERCUT_OFF_MS (how long zns stays
# off after a cut, default 300), ZNS_POWERCUT_FS (default "btrfs f2fs"), ZNS_KEEP_WORK=1 (keep the work dirs: logs,
# evidence), ZNS_POWERCUT_RECONNECT=1 (a study: the host reconnects by itself after each cut and the workload goes on
# for 5 s before the power-loss cleanup; see in-guest/powercut-fs.sh).
set -uo pipefail
suites=$(cd "$(dirname "$0")" && pwd)
guest=$(dirname "$suites")
for l in tap server host-requests; do source "$guest/lib/$l.sh"; done
if [ $# -gt 0 ]; then kernels=("$@"); else read -r -a kernels <<<"${ZNS_POWERCUT_KERNELS:-6.12 7}"; fi
cuts=${ZNS_POWERCUT_CUTS:-20}
seed=${ZNS_POWERCUT_SEED:-$((RANDOM * 32768 + RANDOM))}
off_ms=${ZNS_POWERCUT_OFF_MS:-300}
nqn=nqn.2026-01.io.zns:powercut
echo "# power-cut tests: kernels ${kernels[*]}, $cuts cuts per file system, seed $seed (ZNS_POWERCUT_SEED=$seed reproduces)"

# The guest's requests: "cut none|random-torn SEED".
cut_request() {
    [ "$1" = cut ] || return 2
    local keep=(--keep "${2%-torn}")
    [[ $2 == *-torn ]] && keep+=(--torn)
    echo "# host: zns fault power-cut ${keep[*]} --seed $3 --off-ms $off_ms" >>"$work/host.log"
    ZNS_CONTROL="127.0.0.1:$cport" zns fault power-cut "${keep[@]}" --seed "$3" --off-ms "$off_ms"
}

cleanup() {
    [ -n "${guest_pid:-}" ] && kill "$guest_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null
    [ -n "${work:-}" ] && [ "${ZNS_KEEP_WORK:-0}" != 1 ] && rm -rf "$work"
}

# One boot: kernel $1, file system $2; the TAP lines go to stdout, unnumbered.
run_fs() {
    local spec=$1 fs=$2 files serve_args control=() start=$SECONDS rc
    work=$(mktemp -d /var/tmp/zns-powercut.XXXXXX)
    mkdir -p "$work/target" "$work/share/requests"
    port=$((20000 + RANDOM % 20000)); cport=$((port + 1))
    case $fs in
        # 2 GiB zoned, 16 MiB zones with 15 MiB capacity; the negative control on a second zoned namespace.
        btrfs) files=(fs.raw:2G ctl.raw:64M); serve_args=(--zone-size 16M --zone-capacity 15M fs.raw ctl.raw)
               control=(-e CONTROL_NSID=2) ;;
        # f2fs keeps its metadata on a conventional namespace (nsid 1) beside the zoned one (nsid 2).
        f2fs) files=(conv.raw:${ZNS_POWERCUT_CONV:-256M} fs.raw:${ZNS_POWERCUT_ZONED:-2G}); serve_args=(--zone-size 16M --zone-capacity 15M conv.raw,zoned=off fs.raw) ;;
    esac
    for f in "${files[@]}"; do truncate -s "${f#*:}" "$work/target/${f%%:*}"; done
    if ! start_server "${serve_args[@]}" --nqn "$nqn" --listen "127.0.0.1:$port" --control "127.0.0.1:$cport"; then
        echo "not ok - $spec $fs: zns serve starts"; return
    fi
    ( "$guest/harness/run-guest.sh" -t "${ZNS_POWERCUT_TIMEOUT:-900}" --kernel-version "$spec" -w "$work/share" \
        --tap-name "$spec $fs power cuts" \
        -e "FS=$fs" -e "PORT=$port" -e "NQN=$nqn" -e "SHARE=$work/share" -e "HOST_REQUESTS=$work/share/requests" \
        -e "CUTS=$cuts" -e "SEED=$seed" -e "RECONNECT=${ZNS_POWERCUT_RECONNECT:-0}" "${control[@]}" \
        "$guest/in-guest/powercut-fs.sh" 2>"$work/guest.err"; echo $? >"$work/guest-rc" ) |
        sed -u -E "s/^(ok|not ok) - /\1 - $spec /" &
    guest_pid=$!
    serve_requests "$work/share/requests" cut_request "$work/guest-rc"
    wait "$guest_pid"; guest_pid=
    rc=$(cat "$work/guest-rc")
    grep -h '^run-guest: boot' "$work/guest.err" | sed 's/^/# /'
    if [ "$rc" != 0 ]; then
        echo "not ok - $spec $fs: guest script exit status $rc"
        tail -n 40 "$work/guest.err" | sed 's/^/#   /'
    fi
    # What each cut dropped, as zns logged it.
    grep -h -i 'power cut' "$work/serve.log" | tail -n 4 | sed 's/^/# zns: /'
    stop_server; rc=$?
    [ $rc = 0 ] && echo "ok - $spec $fs: zns serve stops cleanly at the end" || { echo "not ok - $spec $fs: zns serve stops cleanly at the end (exit $rc)"; tail -n 5 "$work/serve.log" | sed 's/^/#   /'; }
    echo "# $spec $fs: $((SECONDS - start)) s in all"
    [ "${ZNS_KEEP_WORK:-0}" = 1 ] && echo "# work dir: $work" || rm -rf "$work"
    work=
}

all() {
    trap cleanup EXIT
    for k in "${kernels[@]}"; do
        if ! "$guest/harness/kernels.sh" path "$k" >/dev/null 2>&1; then
            echo "not ok - kernel $k is not available (run tests/guest/install/install-deps.sh)"; continue
        fi
        for fs in ${ZNS_POWERCUT_FS:-btrfs f2fs}; do run_fs "$k" "$fs"; done
    done
}
all | awk '/^(ok|not ok) - /{ n++; sub(/ - /, " " n " - ") } { print; fflush() }'

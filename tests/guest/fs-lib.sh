# shellcheck shell=bash
# Sourced by the guest filesystem scripts (fs-btrfs.sh, fs-f2fs.sh). Needs PORT NQN SHARE set.
# TAP lines are unnumbered ("ok - ..."); fs-tests.sh numbers them.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fsdata="$here/fsdata.py"
mnt=/mnt/zns
mkdir -p "$mnt" "$SHARE/lists"
ctl=$SHARE/ctl
req=0
t0=$SECONDS

tap() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
note() { echo "# [$((SECONDS - t0)) s] $*"; }
# Seconds since the last call (for the timing figures).
lap_t=$SECONDS
lap() { local d=$((SECONDS - lap_t)); lap_t=$SECONDS; echo "$d"; }

# Ask the host (fs-tests.sh) to stop / start / kill / restart zns serve; waits for its answer.
host_do() {
    req=$((req + 1))
    echo "$1" >"$ctl/req.$req.tmp" && mv "$ctl/req.$req.tmp" "$ctl/req.$req"
    local deadline=$((SECONDS + 120))
    while [ ! -e "$ctl/ack.$req" ]; do
        [ $SECONDS -lt $deadline ] || { note "host did not answer $1"; return 1; }
        read -r -t 0.2 <> <(:) || true
    done
    [ "$(cat "$ctl/ack.$req")" = ok ]
}

# The block device of nsid N of our subsystem (native multipath: the non-hidden head), waiting for it.
ns_dev() {
    local nsid=$1 deadline=$((SECONDS + 20)) b
    while [ $SECONDS -lt $deadline ]; do
        # By the disk's nsid attribute, not its name: kernels that scan namespaces in parallel may name nsid 2 nXn1.
        for b in /sys/block/nvme*n*; do
            [ -e "$b" ] || continue
            if [ -r "$b/nsid" ]; then [ "$(cat "$b/nsid")" = "$nsid" ] || continue; else [[ $b == *n"$nsid" ]] || continue; fi
            [ "$(cat "$b/hidden" 2>/dev/null || echo 0)" = 0 ] || continue
            grep -qx "$NQN" "$b/device/subsysnqn" 2>/dev/null || grep -qx "$NQN" "$b/device/device/subsysnqn" 2>/dev/null || continue
            [ -b "/dev/${b##*/}" ] && { echo "/dev/${b##*/}"; return 0; }
        done
        read -r -t 0.2 <> <(:) || true
    done
    return 1
}

connect() { nvme connect -t tcp -a 10.0.2.2 -s "$PORT" -n "$NQN" "$@" >/dev/null; }
disconnect() { nvme disconnect -n "$NQN" >/dev/null 2>&1; }

# I/O scheduler of a zoned disk: mq-deadline where Linux before 6.10 needs it to keep the writes of a zone in
# order (see docs/tests.md: host settings). ZNS_SCHED overrides (none, mq-deadline, default = leave as is).
set_sched() {
    local dev=${1#/dev/} want=${ZNS_SCHED:-mq-deadline} q
    [ "$want" = default ] && return 0
    for q in /sys/block/"$dev"/queue/scheduler /sys/block/"${dev%n*}"c*n"${dev##*n}"/queue/scheduler; do
        [ -w "$q" ] && echo "$want" >"$q" 2>/dev/null
    done
    return 0
}

# Verify a list (sha256sum format); prints failures. Status 0 if every file matches.
verify() {
    local out
    out=$(sha256sum --quiet -c "$1" 2>&1)
    local rc=$?
    [ $rc = 0 ] || { echo "$out" | head -n 10 | sed 's/^/#   /'; note "$(echo "$out" | grep -c -v '^sha256sum:') files failed of $(wc -l <"$1")"; }
    return $rc
}

# Lines of list $1 whose file still exists go to $2 (after deletes).
keep_existing() { while read -r sum path; do [ -e "$path" ] && echo "$sum  $path"; done <"$1" >"$2"; }

# Background writer for the crash cycles: files with a sync after each, listed once durable.
start_stream() { python3 "$fsdata" stream "$mnt" "$1" "$2" >/dev/null 2>&1 & stream_pid=$!; }
wait_lines() {
    local list=$1 n=$2 deadline=$((SECONDS + ${3:-120}))
    while [ "$(wc -l <"$list" 2>/dev/null || echo 0)" -lt "$n" ]; do
        [ $SECONDS -lt $deadline ] || return 1
        kill -0 "$stream_pid" 2>/dev/null || return 1
        read -r -t 0.2 <> <(:) || true
    done
}

# After SIGKILL of zns: the host's controller is in reconnect; delete it so that blocked I/O fails, stop the
# writer, unmount (the file system has seen write errors and may be read-only).
crash_cleanup() {
    timeout 60 nvme disconnect -n "$NQN" >/dev/null 2>&1
    kill -KILL "$stream_pid" 2>/dev/null
    timeout 60 bash -c "while kill -0 $stream_pid 2>/dev/null; do sleep 0.2; done"
    wait "$stream_pid" 2>/dev/null
    timeout 60 umount "$mnt" 2>/dev/null || timeout 30 umount -l "$mnt"
}

# Zone reports and kernel log for the evidence dir when something fails.
evidence() {
    local tag=$1 dev=$2
    mkdir -p "$SHARE/evidence"
    [ -b "$dev" ] && blkzone report "$dev" >"$SHARE/evidence/$tag.zones" 2>&1
    dmesg >"$SHARE/evidence/$tag.dmesg" 2>&1
}

# shellcheck shell=bash
# Sourced by the guest filesystem scripts (in-guest/fs-btrfs.sh, fs-f2fs.sh, fs-reconnect.sh, powercut-fs.sh,
# studies/btrfs-study.sh).
# Needs PORT NQN SHARE HOST_REQUESTS set. TAP lines are unnumbered ("ok - ..."); fs-tests.sh numbers them.
lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for l in tap attach host-requests; do source "$lib/$l.sh"; done
TAP_NUMBERS=0
fsdata="$lib/../in-guest/fsdata.py"
mnt=/mnt/zns
mkdir -p "$mnt" "$SHARE/lists"
t0=$SECONDS

note() { echo "# [$((SECONDS - t0)) s] $*"; }
# Seconds since the last call (for the timing figures).
lap_t=$SECONDS
lap() { local d=$((SECONDS - lap_t)); lap_t=$SECONDS; echo "$d"; }

# Ask the host (fs-tests.sh) to stop / start / kill / restart zns serve; waits for its answer.
host_do() { host "$1" >/dev/null || { note "the host could not $1 zns serve"; return 1; }; }

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

# The checkers, read-only; their output goes to the share, its tail as comments when they fail.
# A failing check prints its first error lines and its summary as comments, and keeps its output in
# $SHARE/evidence/btrfs-check.N. One finding is let through, reported as a comment: tree blocks that are not
# nodesize aligned (and "crossing stripe boundary" for them), which btrfs zoned writes after a cut tore one of its
# metadata writes at a block boundary: it places the next tree block at the zone's write pointer, wherever the cut
# left it (docs/crash-testing.md). Any other line of the check's output fails it.
btrfs_check() {
    btrfs check --readonly "$1" >"$SHARE/check.out" 2>&1 && return 0
    mkdir -p "$SHARE/evidence"
    local i=1 other
    while [ -e "$SHARE/evidence/btrfs-check.$i" ]; do i=$((i + 1)); done
    cp "$SHARE/check.out" "$SHARE/evidence/btrfs-check.$i"
    other=$(grep -v -E '^\[[0-9]/[0-9]\] |^Opening filesystem|^Checking filesystem on|^UUID:|^found [0-9]+ bytes used|^total (csum|tree|fs tree|extent tree) bytes|^btree space waste|^file data blocks allocated|^ referenced|is not nodesize aligned, may cause problem for 64K page system$|^bad metadata \[[0-9]+, [0-9]+\) crossing stripe boundary$|^ERROR: errors found in extent allocation tree or chunk allocation$' "$SHARE/check.out")
    if [ -z "$other" ] && grep -q 'not nodesize aligned' "$SHARE/check.out"; then
        note "btrfs check: only $(grep -c 'not nodesize aligned' "$SHARE/check.out") tree blocks not nodesize aligned (after a torn metadata write; evidence/btrfs-check.$i)"
        return 0
    fi
    echo "$other" | head -n 12 | sed 's/^/#   /'
    tail -n 3 "$SHARE/check.out" | sed 's/^/#   /'
    return 1
}
# fsck.f2fs -f --dry-run (check everything, change nothing) of the f2fs whose first device is $1: any [Fail] line or
# a non-zero exit fails, except a free segment count mismatch, an f2fs-tools quirk on zoned devices seen on QEMU's
# device too (see docs/tests.md).
f2fs_check() {
    fsck.f2fs -f --dry-run "$1" >"$SHARE/fsck.out" 2>&1
    local rc=$? bad
    bad=$(grep -i -E '\[fail\]' "$SHARE/fsck.out" | grep -v -i 'free segment' | head -n 5)
    if [ -z "$bad" ]; then
        [ $rc = 0 ] && return 0
        grep -q -i -E 'free segment.*\[fail\]' "$SHARE/fsck.out" && { note "fsck.f2fs: only the free segment count quirk"; return 0; }
    fi
    echo "$bad" | sed 's/^/#   /'; tail -n 3 "$SHARE/fsck.out" | sed 's/^/#   /'
    note "fsck.f2fs exit $rc"
    return 1
}

# f2fs records its devices by the paths given to mkfs: it opens the extra device by that path at mount, and
# fsck.f2fs wants the first one by the same path. Kernels that scan namespaces in parallel (6.2 and later) may give
# nsid 1 and 2 each other's names on a reconnect (/dev/nvme0n2 is then the conventional device). So both are given by
# the links udev makes for them (/dev/disk/by-id/nvme-WWID, 60-persistent-storage.rules); this guest has no udev, so
# the links are made here. Prints the link to device $1.
# The link is made only when it does not already lead to $1 (a process costs 0.1-0.3 s under TCG).
by_id() {
    local w link
    read -r w <"/sys/block/${1#/dev/}/wwid" || return 1
    link=/dev/disk/by-id/nvme-$w
    if ! [[ -L $link && $link -ef $1 ]]; then
        [ -d /dev/disk/by-id ] || mkdir -p /dev/disk/by-id
        ln -sfn "$1" "$link" || return 1
    fi
    echo "$link"
}

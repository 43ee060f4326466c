# shellcheck shell=bash
# Known data for the restart checks, the same over every transport (needs the caller's tap): before a restart of zns
# serve, known_data_write DEV SHARE fills zone 100, writes 3 MiB of zone 101 (left open) and appends 4 KiB to zone
# 102, keeping their digests and the zone report in SHARE; after it, known_data_check DEV SHARE (a new boot) checks
# that every zone and the data are as before and that writing continues at the restored write pointer.
known_data_write() {
    local dev=$1 share=$2
    dd if=/dev/urandom of=/tmp/full bs=1M count=62 2>/dev/null
    head -c 4096 /dev/urandom >/tmp/known-4k
    dd if=/tmp/full of="$dev" bs=1M seek=$((100 * 64)) oflag=direct 2>/dev/null
    dd if=/tmp/full of="$dev" bs=1M seek=$((101 * 64)) count=3 oflag=direct 2>/dev/null
    nvme zns zone-append "$dev" -s $((102 * 0x4000)) -z 4096 -d /tmp/known-4k >/dev/null 2>&1
    sha256sum /tmp/full | cut -d' ' -f1 >"$share/full.sha"
    head -c 3M /tmp/full | sha256sum | cut -d' ' -f1 >"$share/part.sha"
    sha256sum /tmp/known-4k | cut -d' ' -f1 >"$share/4k.sha"
    blkzone report "$dev" >"$share/report-before.txt"
    [ "$(sed -n 101p "$share/report-before.txt" | sed -E 's/.*zcond:[ ]*[0-9]+\(([a-z]+)\).*/\1/')" = fu ]
    tap $? "a zone written to its capacity is full"
}

known_data_check() {
    local dev=$1 share=$2
    blkzone report "$dev" >/tmp/report-after.txt
    # A restart is a power cycle: zones that were open come back closed (nothing was left open without data).
    sed -E 's/zcond: [23]\(o[ie]\)/zcond: 4(cl)/' "$share/report-before.txt" >/tmp/expected.txt
    diff -u /tmp/expected.txt /tmp/report-after.txt >/tmp/report.diff; tap $? "every zone's write pointer and condition survive the restart"
    [ -s /tmp/report.diff ] && head -20 /tmp/report.diff | sed 's/^/# /'
    [ "$(dd if="$dev" bs=1M skip=$((100 * 64)) count=62 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$(cat "$share/full.sha")" ]
    tap $? "data of the full zone survives the restart"
    [ "$(dd if="$dev" bs=1M skip=$((101 * 64)) count=3 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$(cat "$share/part.sha")" ]
    tap $? "data of the partly written zone survives the restart"
    [ "$(dd if="$dev" bs=4k skip=$((102 * 0x4000)) count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$(cat "$share/4k.sha")" ]
    tap $? "appended data survives the restart"
    dd if=/dev/zero of="$dev" bs=1M seek=$((101 * 64 + 3)) count=1 oflag=direct 2>/dev/null; tap $? "writing continues at the restored write pointer"
}

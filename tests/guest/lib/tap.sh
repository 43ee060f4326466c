# shellcheck shell=bash
# The TAP helper of every suite and guest script. `tap STATUS DESCRIPTION` prints "ok N - DESCRIPTION" when STATUS is
# 0, else "not ok N - DESCRIPTION" (use it as `COMMAND; tap $? "..."`).
#   n            the number of the last line printed; a script whose first line is FIRST sets n=$((FIRST - 1))
#   TAP_NUMBERS  0: unnumbered lines ("ok - ..."), for a caller that numbers them (fs-tests.sh, kernel-tests.sh)
#   TAP_PREFIX   put before every description (e.g. "vfio-user: ")
#   TAP_LOG      a file every line is also appended to
#   tap_failed   a function that, when defined, runs after each failing line (e.g. the kernel log's tail as comments)
n=${n:-0}
tap() {
    local status=$1 number=" -"
    [ "${TAP_NUMBERS:-1}" = 0 ] || { n=$((n + 1)); number=" $n -"; }
    local line="ok$number ${TAP_PREFIX:-}$2"
    [ "$status" = 0 ] || line="not $line"
    echo "$line"
    [ -z "${TAP_LOG:-}" ] || echo "$line" >>"$TAP_LOG"
    if [ "$status" != 0 ] && declare -F tap_failed >/dev/null; then tap_failed; fi
    return 0
}
# The count of TAP lines (numbered or not) in a file.
tap_count() { local c; c=$(grep -c -E '^(ok|not ok) ' "$1" 2>/dev/null); echo "${c:-0}"; }

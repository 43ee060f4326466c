# shellcheck shell=bash
# Requests from a guest script to its suite on the host, through a directory both see (under the -w share): the
# guest writes req.N (one line of words), the host runs it and leaves out.N (its output) and rc.N (its status).
#
# Guest side:  host WORDS...        ask the host; prints the answer's output, returns its status. HOST_REQUESTS is
#                                   the directory; HOST_LOG, if set, a file the output is also appended to. The
#                                   request number lives in a file, so calls from subshells stay in sequence.
# Host side:   serve_requests DIR HANDLER [UNTIL]
#                                   runs `HANDLER WORDS...` for each request in order, until the file UNTIL exists
#                                   (without UNTIL: until killed). Run it in the foreground when the handler must
#                                   be the parent of what it starts (stop_server waits for zns serve). DIR must
#                                   hold no requests of an earlier guest: empty it before the guest boots.

host() {
    local dir=${HOST_REQUESTS:?HOST_REQUESTS is not set} req=0 rc=99 out deadline wait_fd
    # Bash builtins only where it can (read, printf, $(<file)): every process costs 0.1-0.3 s under TCG.
    [ -e "$dir/.req" ] && read -r req <"$dir/.req"
    req=$((req + 1))
    echo "$req" >"$dir/.req"
    echo "$*" >"$dir/pending.$req" && mv "$dir/pending.$req" "$dir/req.$req"
    deadline=$((SECONDS + ${HOST_TIMEOUT:-300}))
    # The wait between two looks: a read with a timeout on a pipe nobody writes to (one process for the whole wait).
    exec {wait_fd}<> <(:)
    while [ ! -e "$dir/rc.$req" ] && [ $SECONDS -lt $deadline ]; do read -r -t 0.2 -u "$wait_fd" || true; done
    exec {wait_fd}>&-
    [ -e "$dir/rc.$req" ] || { echo "# the host did not answer '$*'"; return 99; }
    read -r rc <"$dir/rc.$req"
    out=$(<"$dir/out.$req")
    if [ -n "$out" ]; then
        printf '%s\n' "$out"
        [ -z "${HOST_LOG:-}" ] || printf '%s\n' "$out" >>"$HOST_LOG"
    fi
    return "$rc"
}

serve_requests() {
    local dir=$1 handler=$2 until=${3:-} next=1 words
    mkdir -p "$dir"
    while :; do
        if [ -e "$dir/req.$next" ]; then
            read -r -a words <"$dir/req.$next"
            "$handler" "${words[@]}" >"$dir/out.$next" 2>&1
            echo $? >"$dir/pending-rc.$next" && mv "$dir/pending-rc.$next" "$dir/rc.$next"
            next=$((next + 1))
            continue
        fi
        [ -n "$until" ] && [ -e "$until" ] && return 0
        sleep 0.1
    done
}

# shellcheck shell=bash
# zns serve on the host, for the suites: the CLI's build, one start, stop and kill. Needs $work.
#   zns_dll               the CLI (built here when missing)
#   zns ARGS...           runs it (create, fault, zones, ... against $ZNS_CONTROL)
#   server_dir            where zns serve runs (its backstores), default $work/target
#   server_log            its log (appended to), default $work/serve.log
#   start_server ARGS...  starts `zns serve ARGS...` in the background and waits until it serves (one more "press
#                         Ctrl-C" in the log than before); if it does not, prints the log's tail as comments, returns 1
#   stop_server           SIGTERM; returns zns serve's exit status (0: it stopped cleanly)
#   kill_server           SIGKILL (a crash)
#   server_pid            its PID while it runs; stop_server or kill_server in the suite's EXIT trap ends it
zns_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
zns_dll="$zns_repo/src/Zns.Cli/bin/Release/net10.0/zns.dll"
[ -f "$zns_dll" ] || dotnet build "$zns_repo/src/Zns.Cli" -c Release -nologo -v quiet >/dev/null
server_pid=
zns() { dotnet "$zns_dll" "$@"; }

start_server() {
    local log=${server_log:-$work/serve.log} dir=${server_dir:-$work/target} before
    mkdir -p "$dir"
    before=$(served "$log")
    (cd "$dir" && exec dotnet "$zns_dll" serve "$@" >>"$log" 2>&1) &
    server_pid=$!
    for _ in $(seq 1 150); do
        [ "$(served "$log")" -gt "$before" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.2
    done
    echo "# zns serve $* did not start:"
    tail -n 5 "$log" 2>/dev/null | sed 's/^/#   /'
    return 1
}
# How often the log says zns serve is serving.
served() { local c; c=$(grep -c "press Ctrl-C" "$1" 2>/dev/null); echo "${c:-0}"; }
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid"; wait "$server_pid"
    local rc=$?; server_pid=
    return $rc
}
kill_server() {
    [ -n "$server_pid" ] || return 0
    kill -KILL "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=
    return 0
}

# shellcheck shell=bash
# The host side of the phases that run over every transport: kernel-tests.sh (NVMe/TCP) and vfio-user-tests.sh (a
# PCIe controller over vfio-user) run the same guest scripts, which take the transport from TRANSPORT. Needs tap.sh,
# server.sh and host-requests.sh, $work, and from the suite:
#   transport     tcp | pcie
#   listen        zns serve's listener arguments (array): --listen 127.0.0.1:PORT, or --listen none --vfio-user SOCK
#   port          the NVMe/TCP port (tcp)
#   run_guest     a function: run-guest.sh with the suite's options (work dir, QEMU, devices), then its arguments
#   TAP_PREFIX    "vfio-user: " for PCIe
# n counts the TAP lines printed.
guest_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nqn=nqn.2026-01.io.zns:subsys
agent_pid=

# run_phase SCRIPT [ARGS...]: one guest boot running in-guest/SCRIPT; its TAP lines continue the numbering.
run_phase() {
    local script=$1; shift
    run_guest --tap-name "${TAP_PREFIX:-}${script%.sh}" -e "TRANSPORT=$transport" -e "NQN=$nqn" -e "PORT=${port:-}" \
        -e "SHARE=$work/share" -e "HOST_REQUESTS=$work/share/requests" -e "FIRST=$((n + 1))" \
        "$guest_dir/in-guest/$script" "$@" | tee "$work/${script%.sh}.tap"
    local lines; lines=$(tap_count "$work/${script%.sh}.tap")
    n=$((n + lines))
    # A guest that did not finish printed its line (--tap-name); one that finished without a check fails here.
    [ "$lines" -gt 0 ] || tap 1 "${script%.sh}: the guest ran no checks"
}

# The guest's requests are zns commands against the running zns serve's control endpoint (zns fault ...). Started
# before the guest boots, with no requests left from an earlier one (the numbering starts again at 1).
control_agent_start() {
    rm -rf "$work/share/requests"; mkdir -p "$work/share/requests"
    ( export ZNS_CONTROL=$1; serve_requests "$work/share/requests" zns ) &
    agent_pid=$!
}
control_agent_stop() { [ -z "$agent_pid" ] || { kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null; agent_pid=; }; }

transport_phases() {
    local cport=$((20000 + RANDOM % 20000))
    [ "$cport" = "${port:-}" ] && cport=$((cport + 1))
    mkdir -p "$work/target" "$work/share/requests"
    # Phase 1: the seed's default namespace (zns.raw: 32 GiB, 64 MiB zones, 62 MiB capacity, 16 open, 32 active).
    start_server "${listen[@]}" --control "127.0.0.1:$cport" || { tap 1 "zns serve starts"; return 1; }
    control_agent_start "127.0.0.1:$cport"
    run_phase attach-and-io.sh
    control_agent_stop
    stop_server; tap $? "zns serve stops cleanly on SIGTERM"

    # Phase 2: the same file after the restart, with a conventional namespace and one whose ZRWA comes from the file.
    (cd "$work/target" && zns create zrwa.raw --size 1G \
        -o zoned.zone_size=64M,zoned.zone_capacity=62M,zoned.zrwas=64K,zoned.zrwafg=16K,zoned.numzrwa=4 >/dev/null) ||
        tap 1 "zns create zrwa.raw -o ...,zoned.zrwas=64K,zoned.zrwafg=16K,zoned.numzrwa=4"
    start_server "${listen[@]}" --control "127.0.0.1:$cport" zns.raw ram:256M,zoned=off zrwa.raw ||
        { tap 1 "zns serve starts again"; return 1; }
    run_phase after-restart.sh
    stop_server >/dev/null 2>&1
    return 0
}

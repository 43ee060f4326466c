#!/bin/bash
# Stage 2: PID 1 in the guest's root (the host's root, read-only, with a tmpfs
# overlay). Loads extra modules, configures networking, runs the user's script
# with its output on the zns.out port, records the exit status in the run share, powers off.
RUN=/run/zns-guest
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8
export ZNS_GUEST=1

log() {
    local up _
    read -r up _ </proc/uptime
    echo "zns-guest stage2 [$up]: $*" >/dev/console
}
finish() {
    echo "$1" >"$RUN/exit-status"
    sync
    log "exit status $1, powering off"
    busybox poweroff -f
    echo o >/proc/sysrq-trigger
    sleep 10
}

log start
# shellcheck source=/dev/null
source "$RUN/config" || finish 125
echo zns-guest >/proc/sys/kernel/hostname

# A kernel other than the host's brings its modules from the kernel cache (tests/guest/harness/kernels.sh).
if [[ -n ${GUEST_MODDIR:-} ]]; then
    mkdir -p "/lib/modules/$GUEST_KVER" && mount --bind "$GUEST_MODDIR" "/lib/modules/$GUEST_KVER" ||
        log "cannot mount $GUEST_MODDIR at /lib/modules/$GUEST_KVER"
fi

if ((${#GUEST_MODULES[@]})); then
    modprobe -a "${GUEST_MODULES[@]}" || log "modprobe failed: ${GUEST_MODULES[*]}"
fi

# User networking: the guest is 10.0.2.15; QEMU's slirp gateway 10.0.2.2
# forwards to the host's loopback (127.0.0.1).
for ((i = 0; i < 50; i++)); do
    [[ -e /sys/class/net/eth0 ]] && break
    read -r -t 0.1 <> <(:) || true
done
if [[ -e /sys/class/net/eth0 ]]; then
    ip -batch - <<'NET' || log "network setup failed"
link set lo up
addr add 10.0.2.15/24 dev eth0
link set eth0 up
route add default via 10.0.2.2
NET
else
    ip link set lo up
    log "no eth0"
fi

for kv in "${GUEST_ENV[@]}"; do export "${kv?}"; done
cd "$GUEST_CWD" 2>/dev/null || cd /
: >"$RUN/started"
log "running ${GUEST_CMD[*]}"
"${GUEST_CMD[@]}" </dev/null >/dev/zns-out 2>&1
finish $?

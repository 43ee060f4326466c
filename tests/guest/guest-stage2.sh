#!/bin/bash
# Stage 2: PID 1 in the guest's root (the host's root, read-only, with a tmpfs
# overlay). Loads modules, configures networking, runs the user's script with
# its output on ttyS1, records the exit status in the run share, powers off.
RUN=/run/zns-guest
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8
export ZNS_GUEST=1

log() { echo "zns-guest stage2: $*" >/dev/console; }
finish() {
    echo "$1" >"$RUN/exit-status"
    sync
    log "exit status $1, powering off"
    busybox poweroff -f
    echo o >/proc/sysrq-trigger
    sleep 10
}

# shellcheck source=/dev/null
source "$RUN/config" || finish 125

ip link set lo up
modprobe -a virtio_net configfs "${GUEST_MODULES[@]}" || log "modprobe failed: virtio_net configfs ${GUEST_MODULES[*]}"
mount -t configfs configfs /sys/kernel/config 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

# User networking: the guest is 10.0.2.15, QEMU's slirp gateway 10.0.2.2 is the host's loopback.
for _ in $(seq 50); do [[ -e /sys/class/net/eth0 ]] && break; sleep 0.1; done
if [[ -e /sys/class/net/eth0 ]]; then
    ip addr add 10.0.2.15/24 dev eth0
    ip link set eth0 up
    ip route add default via 10.0.2.2
else
    log "no eth0"
fi
echo zns-guest >/proc/sys/kernel/hostname

stty -F /dev/ttyS1 raw -echo
for kv in "${GUEST_ENV[@]}"; do export "${kv?}"; done
cd "$GUEST_CWD" 2>/dev/null || cd /
touch "$RUN/started"
log "running ${GUEST_CMD[*]}"
"${GUEST_CMD[@]}" </dev/null >/dev/ttyS1 2>&1
finish $?

#!/bin/bash
# Runs in the guest (Linux with CONFIG_NVME_HOST_AUTH) against the target auth-tests.sh started.
# Args: PORT NQN HOST_A HOST_B HOST_C FIRST_TEST_NUMBER; keys in AUTH_* variables.
port=$1; nqn=$2; host_a=$3; host_b=$4; host_c=$5; n=$(( $6 - 1 ))
guest=$(cd "$(dirname "$0")/.." && pwd)
source "$guest/lib/tap.sh"
tap_failed() { dmesg | tail -8 | sed 's/^/# /'; }
modprobe nvme-tcp
dev_up() { for _ in $(seq 1 100); do [ -b /dev/nvme0n1 ] && return 0; sleep 0.1; done; return 1; }
disconnect() { nvme disconnect -n "$nqn" >/dev/null 2>&1; for _ in $(seq 1 50); do [ -e /dev/nvme0 ] || break; sleep 0.1; done; }
connect() { nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" "$@" >/dev/null 2>&1; }
since() { dmesg | tail -n +"$1"; }
mark() { dmesg | wc -l; }

m=$(mark); connect --hostnqn="$host_a" --dhchap-secret="$AUTH_KEY_A"; rc=$?
[ $rc = 0 ] && dev_up; tap $? "nvme connect --dhchap-secret with the right key attaches the zoned namespace"
since "$((m+1))" | grep -q "authenticated with hash hmac(sha256) dhgroup ffdhe2048"; tap $? "the kernel authenticated with hmac(sha256) and ffdhe2048 (forced by --dhchap-hash/--dhchap-dhgroup)"
dd if=/dev/nvme0n1 of=/dev/null bs=4096 count=16 iflag=direct 2>/dev/null; tap $? "reads work through the authenticated I/O queues"
[ "$(cat /sys/block/nvme0n1/queue/zoned 2>/dev/null)" = host-managed ]; tap $? "and the namespace is host-managed zoned"
# Re-authentication on the live controller: writing the secret to sysfs makes the host authenticate every queue again.
m=$(mark); ctrl=$(basename "$(readlink -f /sys/block/nvme0n1/device)")
printf '%s' "$AUTH_KEY_A" >"/sys/class/nvme/$ctrl/dhchap_secret" 2>/dev/null
for _ in $(seq 1 100); do since "$((m+1))" | grep -q "qid 0: authenticated" && break; sleep 0.1; done
since "$((m+1))" | grep -q "qid 0: authenticated" && ! since "$((m+1))" | grep -q -i "authentication failed"; tap $? "re-authentication requested through sysfs succeeds"
dd if=/dev/nvme0n1 of=/dev/null bs=4096 count=16 iflag=direct 2>/dev/null; tap $? "and I/O continues after it"
disconnect

m=$(mark); connect --hostnqn="$host_a" --dhchap-secret="$AUTH_WRONG"; rc=$?
[ $rc != 0 ] && [ ! -b /dev/nvme0n1 ]; tap $? "a wrong key is refused"
since "$((m+1))" | grep -q -i "auth.*fail\|failed to receive success1\|authentication failed"; tap $? "the kernel reports the authentication failure"
disconnect

m=$(mark); connect --hostnqn="$host_a"; rc=$?
[ $rc != 0 ] && [ ! -b /dev/nvme0n1 ]; tap $? "no key at all is refused (the controller requires authentication)"
disconnect

m=$(mark); connect --hostnqn="$host_a" --dhchap-secret="$AUTH_KEY_A" --dhchap-ctrl-secret="$AUTH_CTRL_A"; rc=$?
[ $rc = 0 ] && dev_up; tap $? "bidirectional: --dhchap-ctrl-secret with the controller's key attaches"
since "$((m+1))" | grep -q "controller authenticated"; tap $? "the kernel authenticated the controller"
disconnect

m=$(mark); connect --hostnqn="$host_a" --dhchap-secret="$AUTH_KEY_A" --dhchap-ctrl-secret="$AUTH_WRONG"; rc=$?
[ $rc != 0 ] && [ ! -b /dev/nvme0n1 ]; tap $? "bidirectional with a wrong controller key: the host refuses the controller"
disconnect

m=$(mark); connect --hostnqn="$host_b" --dhchap-secret="$AUTH_KEY_B"; rc=$?
[ $rc = 0 ] && dev_up; tap $? "host B (keys file) with a SHA-384-transformed 48-byte key attaches"
since "$((m+1))" | grep -q "authenticated with hash hmac(sha384) dhgroup ffdhe3072"; tap $? "with hmac(sha384) and ffdhe3072"
disconnect

m=$(mark); connect --hostnqn="$host_c" --dhchap-secret="$AUTH_KEY_C" --dhchap-ctrl-secret="$AUTH_CTRL_C"; rc=$?
[ $rc = 0 ] && dev_up; tap $? "host C (keys file) with a 64-byte key, bidirectional, attaches"
since "$((m+1))" | grep -q "authenticated with hash hmac(sha512) dhgroup null"; tap $? "with hmac(sha512) and the null DH group"
disconnect

m=$(mark); connect --hostnqn="$host_c" --dhchap-secret="$AUTH_KEY_A"; rc=$?
[ $rc != 0 ] && [ ! -b /dev/nvme0n1 ]; tap $? "another host's key does not work for host C"
disconnect

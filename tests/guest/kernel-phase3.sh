#!/bin/bash
# Runs in the guest against a target started with --allow-host. Args: PORT NQN ALLOWED_HOSTNQN FIRST_TEST_NUMBER.
port=$1; nqn=$2; allowed=$3; n=$(( $4 - 1 ))
tap() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
modprobe nvme-tcp
other=nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000ff
nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" --hostnqn="$other" >/dev/null 2>&1; rc=$?
[ $rc != 0 ] && [ ! -b /dev/nvme0n1 ]; tap $? "a host NQN not on --allow-host is refused"
dmesg | grep -q "is not allowed"; tap $? "the kernel logs the refusal as Connect Invalid Host (not allowed)"
nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" --hostnqn="$allowed" >/dev/null 2>&1; tap $? "the host NQN on --allow-host connects"
for _ in $(seq 1 50); do [ -b /dev/nvme0n1 ] && break; sleep 0.1; done
[ -b /dev/nvme0n1 ]; tap $? "and gets its zoned namespace"
nvme disconnect -n "$nqn" >/dev/null 2>&1; tap $? "nvme disconnect"

#!/bin/bash
# Runs in the guest against a zns serve started with --allow-host (NVMe/TCP: the host NQN of a Connect). TAP lines on
# stdout. Args: ALLOWED_HOSTNQN; environment: PORT NQN FIRST.
guest=$(cd "$(dirname "$0")/.." && pwd)
for l in tap attach; do source "$guest/lib/$l.sh"; done
allowed=$1
n=$((FIRST - 1))
other=nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000ff
connect --hostnqn="$other"; rc=$?
[ $rc != 0 ] && [ ! -b /dev/nvme0n1 ]; tap $? "a host NQN not on --allow-host is refused"
dmesg | grep -q "is not allowed"; tap $? "the kernel logs the refusal as Connect Invalid Host (not allowed)"
connect --hostnqn="$allowed"; tap $? "the host NQN on --allow-host connects"
ns_dev 1 >/dev/null; tap $? "and gets its zoned namespace"
disconnect; tap $? "nvme disconnect"

#!/usr/bin/env bash
# Guest script: serve a zoned null_blk with the kernel's own NVMe/TCP target
# (nvmet) on the guest's 127.0.0.1 and run zoned-nvme-check.sh against it.
# This checks the harness and zoned-nvme-check.sh against the reference
# target; a zns target on the host is checked the same way at 10.0.2.2.
#
#   tests/guest/harness/run-guest.sh tests/guest/studies/nvmet-reference.sh [PORT]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port=${1:-4420}
nqn=nqn.2024-01.io.zns.test:nvmet-nullb0
C=/sys/kernel/config/nvmet

# nvmet only exports zoned devices without conventional zones whose capacity
# is a whole number of zones.
modprobe null_blk nr_devices=1 zoned=1 zone_size=64 zone_capacity=62 zone_nr_conv=0 \
    zone_max_open=16 zone_max_active=32 memory_backed=1 gb=2 bs=4096
modprobe -a nvmet nvmet_tcp
mkdir "$C/subsystems/$nqn"
echo 1 >"$C/subsystems/$nqn/attr_allow_any_host"
mkdir "$C/subsystems/$nqn/namespaces/1"
echo -n /dev/nullb0 >"$C/subsystems/$nqn/namespaces/1/device_path"
echo 1 >"$C/subsystems/$nqn/namespaces/1/enable"
mkdir "$C/ports/1"
echo tcp >"$C/ports/1/addr_trtype"
echo ipv4 >"$C/ports/1/addr_adrfam"
echo 127.0.0.1 >"$C/ports/1/addr_traddr"
echo "$port" >"$C/ports/1/addr_trsvcid"
ln -s "$C/subsystems/$nqn" "$C/ports/1/subsystems/$nqn"

"$HERE/../in-guest/zoned-nvme-check.sh" 127.0.0.1 "$port" "$nqn"

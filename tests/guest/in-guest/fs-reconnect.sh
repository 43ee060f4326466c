#!/bin/bash
# Guest side of `suites/fs-tests.sh SPEC reconnect`: what a host sees when zns serve is killed and restarted while the
# host's controller is still attached and nvme-tcp reconnects on its own. Written, not flushed: 1 MiB at zone 0.
# shellcheck source=tests/guest/lib/fs-lib.sh
source "$(dirname "$0")/../lib/fs-lib.sh"
connect --reconnect-delay=2 --ctrl-loss-tmo=60; tap $? "nvme connect (reconnect delay 2 s)"
dev=$(ns_dev 1); d=${dev#/dev/}
ctrl=$(ls -d /sys/block/"$d"/device 2>/dev/null); ctrl=$(cat /sys/class/nvme/nvme0/state 2>/dev/null)
wp() { blkzone report -o "$1" -c 1 "$dev" | sed -E 's/.*wptr (0x[0-9a-f]+).*/\1/'; }
id_before=$(cat /sys/block/"$d"/uuid /sys/block/"$d"/nguid 2>/dev/null | tr '\n' ' ')
head -c 1M /dev/urandom >/tmp/1m
# First a flushed write in zone 1 (a Flush commits the whole namespace), then an unflushed one in zone 0.
dd if=/tmp/1m of="$dev" bs=1M seek=64 count=1 oflag=direct conv=fsync 2>/dev/null
note "write pointer of zone 1 (flushed) before the kill: $(wp 0x20000)"
dd if=/tmp/1m of="$dev" bs=1M count=1 oflag=direct 2>/dev/null; tap $? "1 MiB written to zone 0 without a flush"
note "write pointer of zone 0 before the kill: $(wp 0)"
host_do kill && host_do start; tap $? "zns serve killed (SIGKILL) and started again while attached"
deadline=$((SECONDS + 60))
while [ "$(cat /sys/class/nvme/nvme0/state 2>/dev/null)" != live ] || ! blkzone report -c 1 "$dev" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || break; read -r -t 0.5 <> <(:) || true
done
tap $? "the host reconnected on its own (controller state $(cat /sys/class/nvme/nvme0/state 2>/dev/null))"
note "write pointer of zone 0 after the reconnect: $(wp 0)"
note "write pointer of zone 1 after the reconnect: $(wp 0x20000)"
id_after=$(cat /sys/block/"$d"/uuid /sys/block/"$d"/nguid 2>/dev/null | tr '\n' ' ')
note "namespace identity before: $id_before after: $id_after; block device still $dev: $([ -b "$dev" ] && echo yes || echo no)"
cmp -s <(dd if="$dev" bs=1M count=1 iflag=direct 2>/dev/null) /tmp/1m; note "zone 0 data reads back as written: $([ $? = 0 ] && echo yes || echo no)"
dd if=/tmp/1m of="$dev" bs=1M seek=1 count=1 oflag=direct 2>/dev/null; note "a write at the host's idea of the write pointer (1 MiB): exit $?"
dmesg | grep -i -E 'nvme|I/O error|invalid' | tail -n 12 | sed 's/^/#   dmesg: /'
disconnect

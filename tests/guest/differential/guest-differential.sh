#!/usr/bin/env bash
# Runs in the guest: QEMU's PCIe ZNS controller is already there; attach zns over NVMe/TCP, then compare.
set -uo pipefail
port=$1 work=$2 seed=$3 count=$4
tap="$work/diff.tap"
: >"$tap"
out() { echo "$@" | tee -a "$tap"; }
nqn=nqn.2026-01.io.zns:subsys
for _ in $(seq 1 50); do ls /dev/ng*n1 >/dev/null 2>&1 && break; sleep 0.2; done
nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" >/dev/null || { out "not ok - differential: nvme connect"; exit 0; }
for _ in $(seq 1 50); do [ "$(ls /sys/class/nvme | wc -l)" -ge 2 ] && break; sleep 0.2; done
sleep 1
qemu_ctrl= zns_ctrl=
for c in /sys/class/nvme/nvme*; do
  case $(cat "$c/transport") in pcie) qemu_ctrl=$(basename "$c") ;; tcp) zns_ctrl=$(basename "$c") ;; esac
done
qemu_ng=$(ls -d /dev/ng${qemu_ctrl#nvme}n1 2>/dev/null) zns_ng=$(ls -d /dev/ng${zns_ctrl#nvme}n1 2>/dev/null)
qemu_ng2=$(ls -d /dev/ng${qemu_ctrl#nvme}n2 2>/dev/null) zns_ng2=$(ls -d /dev/ng${zns_ctrl#nvme}n2 2>/dev/null)
if [ -z "$qemu_ng" ] || [ -z "$zns_ng" ] || [ -z "$qemu_ng2" ] || [ -z "$zns_ng2" ]; then
  out "not ok - differential: char devices (qemu '$qemu_ctrl' zns '$zns_ctrl': $(ls /dev/ng* | tr '\n' ' '))"; exit 0
fi
echo "# qemu: /dev/$qemu_ctrl $qemu_ng $qemu_ng2; zns: /dev/$zns_ctrl $zns_ng $zns_ng2"
"$work/zdiff" "$work/cases.txt" "$qemu_ng" "$zns_ng" "/dev/$qemu_ctrl" "/dev/$zns_ctrl" 256 "$seed" "$count" "$qemu_ng2" "$zns_ng2" | tee -a "$tap"
n=$(grep -cE '^(ok|not ok) ' "$tap")
# The queue depth the kernel settled on from CAP.MQES (and MAXCMD over NVMe/TCP): the same mqes gives the same.
qs=$(cat /sys/class/nvme/$qemu_ctrl/sqsize) zs=$(cat /sys/class/nvme/$zns_ctrl/sqsize)
n=$((n + 1))
if [ "$qs" = "$zs" ]; then out "ok $n - differential: host queue depth from mqes (sysfs sqsize $qs on both)"
else out "not ok $n - differential: host queue depth from mqes (sysfs sqsize qemu $qs, zns $zs)"; fi

# Kernel-side checks against zns (nvme-cli through the kernel): Copy, Verify, Compare, a ZRWA sequence.
blk=/dev/${zns_ctrl}n1
nvme zns reset-zone "$blk" -a >/dev/null 2>&1
head -c 16384 /dev/urandom >"$work/d16k"
check() { n=$((n + 1)); if "$@" >"$work/cmd.out" 2>&1; then out "ok $n - kernel: $desc"; else out "not ok $n - kernel: $desc"; sed 's/^/# /' "$work/cmd.out" | tee -a "$tap"; fi; }
desc="nvme write 4 blocks at zone 2"; check nvme write "$blk" -s 512 -c 3 -z 16384 -d "$work/d16k"
desc="nvme copy 4 blocks to zone 3"; check nvme copy "$blk" --sdlba=768 --slbs=512 --blocks=3
desc="nvme compare matches the copied data"; check nvme compare "$blk" -s 768 -c 3 -z 16384 -d "$work/d16k"
head -c 16384 /dev/zero >"$work/z16k"
desc="nvme compare of other data fails with Compare Failure"; check bash -c "! nvme compare $blk -s 768 -c 3 -z 16384 -d $work/z16k"
desc="nvme verify"; check nvme verify "$blk" -s 512 -c 7
# ZRWA: Open with ZSASO (cdw13 = 03h | 1<<9), a write inside the window, an explicit flush (ZSA 11h).
desc="ZRWA: open with ZRWA allocation (passthrough)"; check nvme io-passthru "$blk" -o 0x79 -n 1 --cdw10=1024 --cdw13=$((0x203))
desc="ZRWA: write inside the window above the write pointer"; check nvme write "$blk" -s 1030 -c 0 -z 4096 -d "$work/d16k"
desc="ZRWA: write pointer unchanged inside the window"; check bash -c "nvme zns report-zones $blk -d 1 -s 1024 | grep -q 'WP: 0x400 '"
desc="ZRWA: explicit flush commits 8 blocks"; check nvme io-passthru "$blk" -o 0x79 -n 1 --cdw10=1031 --cdw13=$((0x11))
desc="ZRWA: write pointer after the flush"; check bash -c "nvme zns report-zones $blk -d 1 -s 1024 | grep -q 'WP: 0x408 '"
desc="ZRWA: Zone Append to a zone with a ZRWA is refused"; check bash -c "! nvme zns zone-append $blk -s 1024 -z 4096 -d $work/d16k"
nvme disconnect -n "$nqn" >/dev/null 2>&1
exit 0

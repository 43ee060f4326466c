#!/bin/bash
# Runs in the guest. Args: PORT NQN SHARE_DIR; HOST_REQUESTS. Asks the host (suites/control-tests.sh) to run zns commands
# while the namespace is attached, and checks what Linux sees. TAP lines on stdout; details in SHARE_DIR/guest.log.
port=$1; nqn=$2; share=$3
log=$share/guest.log
guest=$(cd "$(dirname "$0")/.." && pwd)
# tap; host ARGS...: run `zns ARGS` on the host against the running server (its output also goes to the log).
for l in tap host-requests; do source "$guest/lib/$l.sh"; done
HOST_LOG=$log
modprobe nvme-tcp
dev=/dev/nvme0n1; ctrl=/dev/nvme0
nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" >/dev/null 2>&1; tap $? "nvme connect"
for _ in $(seq 1 50); do [ -b $dev ] && break; sleep 0.1; done
zl=16384                         # LBAs (4 KiB) per zone
sec() { echo $(( $1 * zl * 8 )); } # zone start in 512-byte sectors
cond() { blkzone report -o "$(sec "$1")" -c 1 $dev | sed -E 's/.*zcond:[ ]*([0-9]+)\(([a-z]+)\).*/\2/'; }

nvme set-feature $ctrl -f 0x0b -v 0x08000000 >>"$log" 2>&1; tap $? "nvme set-feature -f 0x0b enables Zone Descriptor Changed notices (AEC bit 27)"
head -c 65536 /dev/urandom > /tmp/64k
dd if=/tmp/64k of=$dev bs=64k seek=$(( 2 * zl / 16 )) count=1 oflag=direct 2>>"$log"; tap $? "write 64 KiB at the start of zone 2"
dd if=/tmp/64k of=$dev bs=64k seek=$(( 3 * zl / 16 )) count=1 oflag=direct 2>>"$log"; tap $? "write 64 KiB at the start of zone 3"
dmesg -C

host zone offline 2 >/dev/null; tap $? "zns zone offline 2 (on the host) succeeds"
[ "$(cond 2)" = of ]; tap $? "blkzone report shows zone 2 offline (of)"
dd if=$dev of=/dev/null bs=4k skip=$(( 2 * zl )) count=1 iflag=direct 2>>"$log"; rc=$?
[ $rc != 0 ]; tap $? "a read of the offline zone fails"
dmesg | tee -a "$log" | grep -q -E "Zone Is Offline|sct 0x1 / sc 0xbb"; tap $? "the kernel log shows Zone Is Offline (sct 0x1 / sc 0xbb)"
nvme zns report-zones $dev -s $(( 2 * zl )) -d 1 2>&1 | tee -a "$log" | grep -q "State: 0xf0"; tap $? "nvme zns report-zones shows state 0xf0 (offline)"
for _ in $(seq 1 50); do dmesg | grep -q "async event result 00bfef02" && break; sleep 0.1; done
dmesg | grep -q "async event result 00bfef02"; tap $? "the host received the Zone Descriptor Changed event (00bfef02)"
czl=$(nvme zns changed-zone-list $dev 2>&1); echo "$czl" >> "$log"
echo "$czl" | grep -q -E "(^|[^0-9a-fx])(32768|0x8000)([^0-9a-f]|$)"; tap $? "nvme zns changed-zone-list lists zone 2 (ZSLBA 0x8000)"
czl2=$(nvme zns changed-zone-list $dev 2>&1); echo "$czl2" >> "$log"
! echo "$czl2" | grep -q -E "(32768|0x8000)"; tap $? "reading the list cleared it"

dmesg -C
host zone readonly 3 >/dev/null; tap $? "zns zone readonly 3 succeeds"
[ "$(cond 3)" = ro ]; tap $? "blkzone report shows zone 3 read only (ro)"
dd if=/tmp/64k of=$dev bs=64k seek=$(( 3 * zl / 16 + 1 )) count=1 oflag=direct 2>>"$log"; rc=$?
[ $rc != 0 ]; tap $? "a write to the read-only zone fails"
dmesg | tee -a "$log" | grep -q -E "Zone Is Read Only|sct 0x1 / sc 0xba"; tap $? "the kernel log shows Zone Is Read Only (sct 0x1 / sc 0xba)"
dd if=$dev of=/tmp/back bs=64k skip=$(( 3 * zl / 16 )) count=1 iflag=direct 2>>"$log" && cmp -s /tmp/back /tmp/64k; tap $? "the read-only zone still reads its data"
czl=$(nvme zns changed-zone-list $dev 2>&1); echo "$czl" >> "$log"
echo "$czl" | grep -q -E "(49152|0xc000)"; tap $? "the changed zone list now holds zone 3"
dmesg | grep -q "async event result 00bfef02"; tap $? "a second Zone Descriptor Changed event after the list was read"

# Namespace write protection (a drive going read-only at end of life): the host's notice handler rescans, re-reads
# Identify Namespace and follows NSATTR bit 0 with the disk's read-only flag. AEC bit 8 (Namespace Attribute Notices)
# is enabled again here, since the set-feature above left only bit 27.
write_protect_checks() {
  local ro z=12 i
  getro_is() { for _ in $(seq 1 150); do [ "$(blockdev --getro $dev)" = "$1" ] && return 0; sleep 0.2; done; return 1; }
  nvme set-feature $ctrl -f 0x0b -v 0x08000100 >>"$log" 2>&1; tap $? "nvme set-feature -f 0x0b enables Namespace Attribute Notices too (AEC bit 8)"
  ro=$(blockdev --getro $dev); [ "$ro" = 0 ]; tap $? "blockdev --getro is 0 before write protection ($ro)"
  head -c 65536 /dev/urandom > /tmp/wp
  dd if=/tmp/wp of=$dev bs=64k seek=$(( z * zl / 16 )) count=1 oflag=direct 2>>"$log"
  dmesg -C
  host namespace write-protect on >/dev/null; tap $? "zns namespace write-protect on (on the host) succeeds"
  getro_is 1; tap $? "the kernel marks the disk read-only: blockdev --getro 0 -> 1"
  dmesg | tee -a "$log" | grep -q "rescanning namespaces"; tap $? "the kernel log shows the notice's rescan (rescanning namespaces)"
  nvme id-ns $dev 2>&1 | tee -a "$log" | grep -q -E "^nsattr[[:space:]]*: (1|0x1)$"; tap $? "nvme id-ns shows nsattr 1 (bit 0: write protected)"
  ! dd if=/tmp/wp of=$dev bs=64k seek=$(( z * zl / 16 + 1 )) count=1 oflag=direct 2>>"$log"; tap $? "a dd oflag=direct write fails while protected"
  head -c 4096 /tmp/wp > /tmp/wp4k
  nvme write $dev -s $(( z * zl + 16 )) -c 0 -z 4096 -d /tmp/wp4k 2>&1 | tee -a "$log" | grep -q -i -E "write protected|0x4020"; tap $? "a passthrough nvme write reaches the target and fails with Namespace is Write Protected (DNR, 0x4020)"
  dd if=$dev of=/tmp/wp-back bs=64k skip=$(( z * zl / 16 )) count=1 iflag=direct 2>>"$log" && cmp -s /tmp/wp-back /tmp/wp; tap $? "reads still work and return the data written before"
  [ "$(cond $z)" = oi ]; tap $? "blkzone report still works and shows zone $z as it was (oi)"
  host namespace list 2>&1 | grep -q "nsid 1: .*write protected"; tap $? "zns namespace list shows the namespace write protected"
  dmesg -C
  host namespace write-protect off >/dev/null; tap $? "zns namespace write-protect off succeeds"
  getro_is 0; tap $? "the kernel makes the disk writable again: blockdev --getro 1 -> 0"
  dd if=/tmp/wp of=$dev bs=64k seek=$(( z * zl / 16 + 1 )) count=1 oflag=direct 2>>"$log" &&
    dd if=$dev of=/tmp/wp-back bs=64k skip=$(( z * zl / 16 + 1 )) count=1 iflag=direct 2>>"$log" && cmp -s /tmp/wp-back /tmp/wp
  tap $? "after lifting it a dd oflag=direct write works and reads back"
}
write_protect_checks

dmesg -C
lba=$(( 4 * zl ))
dd if=/tmp/64k of=$dev bs=64k seek=$(( lba / 16 )) count=1 oflag=direct 2>>"$log"
host fault media --lba $lba --blocks 4 --on read --dnr >/dev/null; tap $? "zns fault media (always, DNR) is armed"
dd if=$dev of=/dev/null bs=4k skip=$lba count=1 iflag=direct 2>>"$log"; rc=$?
[ $rc != 0 ]; tap $? "a read of the bad range fails"
dmesg | tee -a "$log" | grep -q -E "Unrecovered Read Error|sct 0x2 / sc 0x81"; tap $? "the kernel log shows Unrecovered Read Error (sct 0x2 / sc 0x81)"
host fault clear >/dev/null; tap $? "zns fault clear"
dd if=$dev of=/tmp/back bs=64k skip=$(( lba / 16 )) count=1 iflag=direct 2>>"$log" && cmp -s /tmp/back /tmp/64k; tap $? "after clearing, the range reads back its data"
host fault media --lba $lba --blocks 4 --on read --times 2 >/dev/null
dd if=$dev of=/tmp/back bs=64k skip=$(( lba / 16 )) count=1 iflag=direct 2>>"$log" && cmp -s /tmp/back /tmp/64k; tap $? "a media error that fires twice without DNR is recovered by the host's retries"
host fault list 2>&1 | grep -q '"mediaErrors": \[\]'; tap $? "the spent rule is gone from zns fault list"

out=$(host zone finish-recommended 5 2>&1); rc=$?
[ $rc != 0 ] && ! echo "$out" | grep -q "zcond"; tap $? "finish-recommended on an empty zone is refused (rc $rc)"
dd if=/tmp/64k of=$dev bs=64k seek=$(( 5 * zl / 16 )) count=1 oflag=direct 2>>"$log"
host zone finish-recommended 5 >/dev/null; tap $? "zns zone finish-recommended 5 on the open zone"
nvme zns report-zones $dev -s $(( 5 * zl )) -d 1 2>&1 | tee -a "$log" | grep -q -E "Attrs: 0x2"; tap $? "nvme zns report-zones shows the Finish Zone Recommended attribute (0x2)"
host zone finish 5 >/dev/null; tap $? "zns zone finish 5 (finished by the controller)"
nvme zns report-zones $dev -s $(( 5 * zl )) -d 1 2>&1 | tee -a "$log" | grep -q -E "State: 0xe0.*Attrs: 0x1"; tap $? "report-zones shows the zone Full with Zone Finished by Controller (0x1)"
[ "$(cond 5)" = fu ]; tap $? "blkzone report shows zone 5 full"

host fault transient --opcode write --status namespace-not-ready --times 3 >/dev/null
dd if=/tmp/64k of=$dev bs=64k seek=$(( 6 * zl / 16 )) count=1 oflag=direct 2>>"$log"; tap $? "a write that fails 3 times with Namespace Not Ready (no DNR) succeeds through the host's retries"

host fault drop-connections >/dev/null; tap $? "zns fault drop-connections"
sleep 1
for _ in $(seq 1 200); do dd if=$dev of=/dev/null bs=4k skip=0 count=1 iflag=direct 2>/dev/null && break; sleep 0.2; done
dd if=/tmp/64k of=$dev bs=64k seek=$(( 7 * zl / 16 )) count=1 oflag=direct 2>>"$log"; tap $? "after the dropped connections the host reconnects and writes again"

# Controller Fatal Status. The Linux host reads CSTS only around enable and shutdown, so it notices a fatal
# controller through what comes with it: commands that never complete (its keep-alive or I/O times out) or a dropped
# connection. Either way it starts error recovery, reconnects to a new controller (a new CNTLID), and resubmits
# what was in flight; data written before must read back unchanged.
ctl_sysfs=/sys/class/nvme/${ctrl#/dev/}
cfs_case() { # MODE ZONE
  local mode=$1 z=$2 before after
  head -c 65536 /dev/urandom > /tmp/cfs-$mode
  dd if=/tmp/cfs-$mode of=$dev bs=64k seek=$(( z * zl / 16 )) count=1 oflag=direct 2>>"$log"
  before=$(cat $ctl_sysfs/cntlid)
  dmesg -C
  host fault controller-fatal --then "$mode" >/dev/null; tap $? "zns fault controller-fatal --then $mode"
  # A read issued now is held (stall) or loses its connection (drop); it must complete once the host has recovered.
  dd if=$dev of=/tmp/cfs-back-$mode bs=64k skip=$(( z * zl / 16 )) count=1 iflag=direct 2>>"$log" &
  local ddpid=$!
  for _ in $(seq 1 900); do
    [ "$(cat $ctl_sysfs/state 2>/dev/null)" = live ] && [ "$(cat $ctl_sysfs/cntlid 2>/dev/null)" != "$before" ] && break
    sleep 0.2
  done
  after=$(cat $ctl_sysfs/cntlid 2>/dev/null)
  dmesg > /tmp/cfs-dmesg-$mode; sed "s/^/[cfs $mode] /" /tmp/cfs-dmesg-$mode >> "$log"
  if [ "$mode" = stall ]; then
    # The held Keep Alive (admin queue) times out after KATO, before any I/O timeout.
    grep -q "queue 0: timeout" /tmp/cfs-dmesg-$mode; tap $? "stall: the kernel log shows the admin queue's Keep Alive timing out (queue 0: timeout)"
  fi
  grep -q "starting error recovery" /tmp/cfs-dmesg-$mode; tap $? "$mode: the kernel starts error recovery"
  grep -q "Reconnecting in" /tmp/cfs-dmesg-$mode && grep -q "Successfully reconnected" /tmp/cfs-dmesg-$mode; tap $? "$mode: the kernel logs Reconnecting in ... and Successfully reconnected"
  [ -n "$after" ] && [ "$after" != "$before" ] && [ "$(cat $ctl_sysfs/state)" = live ]; tap $? "$mode: the controller is live again with a new CNTLID ($before -> $after)"
  wait $ddpid && cmp -s /tmp/cfs-back-$mode /tmp/cfs-$mode; tap $? "$mode: the read held across the failure completes with the data written before it"
  dd if=$dev of=/tmp/back bs=64k skip=$(( 3 * zl / 16 )) count=1 iflag=direct 2>>"$log" && cmp -s /tmp/back /tmp/64k; tap $? "$mode: older data (zone 3) reads back unchanged"
  dd if=/tmp/64k of=$dev bs=64k seek=$(( z * zl / 16 + 1 )) count=1 oflag=direct 2>>"$log" &&
    dd if=$dev of=/tmp/back bs=64k skip=$(( z * zl / 16 + 1 )) count=1 iflag=direct 2>>"$log" && cmp -s /tmp/back /tmp/64k; tap $? "$mode: writes and reads work on the new controller"
}
cfs_case stall 10
cfs_case drop 11

echo mq-deadline > /sys/block/nvme0n1/queue/scheduler 2>/dev/null
host browser-start >/dev/null
fio --name=after --filename=$dev --direct=1 --zonemode=zbd --ioengine=libaio --rw=write --bs=64k --iodepth=4 \
    --offset=8z --size=1z --verify=crc32c --do_verify=1 --output="$share/fio.txt" >/dev/null 2>&1; rc=$?
[ $rc = 0 ] || { sed 's/^/[fio] /' "$share/fio.txt" >> "$log"; dmesg | tail -30 | sed 's/^/[dmesg] /' >> "$log"; }
[ $rc = 0 ]; tap $? "fio zonemode=zbd still writes and verifies a zone"
host browser-done >/dev/null
nvme disconnect -n "$nqn" >/dev/null 2>&1; tap $? "nvme disconnect"

#!/bin/sh
# shellcheck shell=sh disable=SC2093,SC3060  # busybox ash
# Stage 1: PID 1 of the harness initramfs (busybox). Builds the guest root
# (host / over 9p, read-only, under a tmpfs overlay), mounts the per-run
# control share and the optional work dir, then switches to stage 2.
export PATH=/bin

log() {
    read -r up _ </proc/uptime
    echo "zns-guest stage1 [$up]: $*" >/dev/console
}
fail() {
    log "FAILED: $*"
    sleep 1
    poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
log start

# insmod does not apply "module.param=value" from the kernel command line
# (modprobe does), so pass those on by hand, e.g. nvme_core.multipath=N.
read -r cmdline </proc/cmdline
mod_params() {
    for tok in $cmdline; do
        case $tok in "$1".*=*) echo "${tok#"$1".}" ;; esac
    done
}
while read -r mod; do
    name=${mod%.ko}
    name=${name//-/_}
    # shellcheck disable=SC2046
    insmod "/modules/$mod" $(mod_params "$name") || log "insmod $mod failed"
done </modules/order

mkdir -p /share/run /share/root /share/rw /newroot
P9=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$P9,cache=mmap" zgrun /share/run || fail "mount run share"
mount -t 9p -o "$P9,ro,cache=loose" zgroot /share/root || fail "mount host root"
mount -t tmpfs -o mode=0755 tmpfs /share/rw
mkdir -p /share/rw/upper /share/rw/work
mount -t overlay -o lowerdir=/share/root,upperdir=/share/rw/upper,workdir=/share/rw/work \
    overlay /newroot || fail "mount overlay root"

R=/newroot
mount -t devtmpfs devtmpfs $R/dev
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t configfs configfs $R/sys/kernel/config 2>/dev/null
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=000 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mount -t tmpfs -o mode=0755 tmpfs $R/run
mount -t tmpfs -o mode=1777 tmpfs $R/var/tmp
ln -sf /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout
ln -sf /proc/self/fd/2 $R/dev/stderr
# The script's output goes to the virtio-serial port named zns.out; link it
# as /dev/zns-out (there is no udev to make /dev/virtio-ports/zns.out).
i=0
port=
while [ -z "$port" ] && [ $i -lt 200 ]; do
    for f in /sys/class/virtio-ports/*/name; do
        [ -f "$f" ] && [ "$(cat "$f")" = zns.out ] && port=${f%/name} && port=${port##*/}
    done
    [ -n "$port" ] || sleep 0.05
    i=$((i + 1))
done
if [ -n "$port" ]; then
    ln -sf "$port" $R/dev/zns-out
else
    log "no zns.out virtio-serial port; script output goes to the console"
    ln -sf console $R/dev/zns-out
fi

mkdir -p $R/run/zns-guest
mount --move /share/run $R/run/zns-guest || fail "move run share"

workdir=
[ -f $R/run/zns-guest/workdir ] && read -r workdir <$R/run/zns-guest/workdir
if [ -n "$workdir" ]; then
    mkdir -p "$R$workdir"
    mount -t 9p -o "$P9,cache=mmap" zgwork "$R$workdir" || fail "mount work dir $workdir"
fi

log switch_root
exec switch_root $R /bin/bash /run/zns-guest/stage2.sh
fail "switch_root"

#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2054,SC2317
# Boot the Debian kernel under QEMU (TCG) with the host's root filesystem as the
# guest's root (read-only 9p + tmpfs overlay) and run one script in it.
#
#   run-guest.sh [options] SCRIPT [ARGS...]
#   run-guest.sh [options] -c 'COMMANDS'
#
# The script's stdout and stderr are streamed to this command's stdout; the exit
# status is the script's. Harness messages go to stderr. See tests/guest/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
CACHE=${ZNS_GUEST_CACHE:-$REPO/.cache/guest}

usage() {
    cat <<EOF
usage: $(basename "$0") [options] SCRIPT [ARGS...]
       $(basename "$0") [options] -c 'COMMANDS'

Runs SCRIPT (a host path) as root in a Linux guest booted under QEMU (TCG).
The guest sees the host's / read-only (writes go to a tmpfs overlay); host
/tmp, /run and /var/tmp are NOT visible (fresh tmpfs in the guest). The host's
127.0.0.1 is reachable from the guest as 10.0.2.2.

options:
  -w DIR          read-write work dir, mounted at the same path in the guest
  -t SECONDS      hard timeout of one boot; QEMU is killed after it (default ${ZNS_GUEST_TIMEOUT:-600})
  --boot-timeout SECONDS
                  a guest whose script has not started this long after QEMU's
                  start is taken as a hung boot: QEMU is killed and the guest
                  booted again (default ${ZNS_GUEST_BOOT_TIMEOUT:-180}; a boot takes 5-15 s)
  -v              verbose: harness progress and the kernel console log
  -c COMMANDS     run 'bash -c COMMANDS' instead of a script
  -e NAME=VALUE   export a variable to the script (repeatable)
  -m MODULE       modprobe MODULE before the script (repeatable); virtio_net,
                  configfs and nvme_tcp (with nvme_core, nvme_fabrics) are
                  always loaded; the script can modprobe any other module
                  of the host's /lib/modules/KVER itself
  --append ARGS   extra kernel command line, e.g. "nvme_core.multipath=N"
  --mem SIZE      guest memory (default ${ZNS_GUEST_MEM:-2G})
  --smp N         guest CPUs (default ${ZNS_GUEST_SMP:-2})
  --kernel PATH   kernel image (default: the one linux-image-amd64 installs)
  --qemu PATH     QEMU binary or wrapper (default qemu-system-x86_64; e.g.
                  tests/guest/harness/qemu-trixie for Debian 13's QEMU)
  --qemu-arg ARG  extra QEMU argument, appended after the harness's own
                  (repeatable), e.g. --qemu-arg -device --qemu-arg nvme,...
  --kernel-version SPEC
                  boot the kernel of the matrix matching SPEC: 6.1 (Debian 12's),
                  6.12 or 7 (Debian 13's, fetched by install-deps.sh), or a full
                  version; its modules are mounted at /lib/modules/VER in the guest
  --keep          keep the run dir (console log, config) and print its path
  --tap-name NAME if the guest does not finish (exit status 124 or more), also
                  print "not ok - NAME: the guest did not finish (...)" on
                  stdout, so that a TAP suite counts a guest that ran no checks
  -h, --help      this help

exit status: the script's; 124 on timeout; 125 if the guest ended without
reporting one (kernel panic, boot failure, a boot that hung each time) or on
a harness error.
environment: ZNS_GUEST_CACHE (cache dir, default \$REPO/.cache/guest),
ZNS_GUEST_TIMEOUT, ZNS_GUEST_BOOT_TIMEOUT, ZNS_GUEST_BOOT_RETRIES (default 2), ZNS_GUEST_MEM, ZNS_GUEST_SMP, ZNS_GUEST_ACCEL (default tcg),
ZNS_GUEST_KERNEL (a path, or a SPEC as for --kernel-version), ZNS_GUEST_QEMU,
ZNS_GUEST_KERNEL_VERSION (SPEC), ZNS_KERNEL_CACHE (fetched kernels, default
/var/cache/zns-guest/kernels), ZNS_GUEST_PVH=0 (boot the compressed bzImage instead of the
cached uncompressed vmlinux).
EOF
}

die() { echo "run-guest: $*" >&2; exit 125; }
# --tap-name: one failing TAP line for a guest that did not finish, whichever way this command ends.
tap_name=
unfinished_line() {
    if [[ -n $tap_name ]] && (($1 >= 124)); then
        echo "not ok - $tap_name: the guest did not finish (run-guest.sh exit $1)"
    fi
    return 0
}
trap 'unfinished_line $?' EXIT

workdir=
timeout=${ZNS_GUEST_TIMEOUT:-600}
boot_timeout=${ZNS_GUEST_BOOT_TIMEOUT:-180}
verbose=0
command=
append=
mem=${ZNS_GUEST_MEM:-2G}
smp=${ZNS_GUEST_SMP:-2}
accel=${ZNS_GUEST_ACCEL:-tcg}
kernel=${ZNS_GUEST_KERNEL:-}
qemu_bin=${ZNS_GUEST_QEMU:-qemu-system-x86_64}
qemu_extra=()
kernel_version=${ZNS_GUEST_KERNEL_VERSION:-}
keep=0
envs=()
modules=()

while (($#)); do
    case $1 in
        -w) workdir=${2:?-w needs a directory}; shift 2 ;;
        -t) timeout=${2:?-t needs seconds}; shift 2 ;;
        --boot-timeout) boot_timeout=${2:?--boot-timeout needs seconds}; shift 2 ;;
        -v) verbose=1; shift ;;
        -c) command=${2?-c needs commands}; shift 2 ;;
        -e) [[ ${2:-} == [A-Za-z_]*=* ]] || die "-e needs NAME=VALUE"; envs+=("$2"); shift 2 ;;
        -m) modules+=("${2:?-m needs a module}"); shift 2 ;;
        --append) append=${2?--append needs an argument}; shift 2 ;;
        --append=*) append=${1#*=}; shift ;;
        --mem) mem=${2:?}; shift 2 ;;
        --smp) smp=${2:?}; shift 2 ;;
        --qemu) qemu_bin=${2:?--qemu needs a path}; shift 2 ;;
        --qemu-arg) qemu_extra+=("${2?--qemu-arg needs an argument}"); shift 2 ;;
        --kernel) kernel=${2:?}; kernel_version=; shift 2 ;;
        --kernel-version) kernel_version=${2:?--kernel-version needs a version}; kernel=; shift 2 ;;
        --kernel-version=*) kernel_version=${1#*=}; kernel=; shift ;;
        --keep) keep=1; shift ;;
        --tap-name) tap_name=${2:?--tap-name needs a name}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) usage >&2; die "unknown option $1" ;;
        *) break ;;
    esac
done
[[ $timeout =~ ^[0-9]+$ ]] && ((timeout > 0)) || die "bad timeout: $timeout"
[[ $boot_timeout =~ ^[0-9]+$ ]] && ((boot_timeout > 0)) || die "bad boot timeout: $boot_timeout"

vlog() { ((verbose)) && echo "run-guest: $*" >&2 || true; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
t_start=$(now)

# ---------------------------------------------------------------- kernel
find_kernel() {
    local dep kver
    dep=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null || true)
    kver=$(sed -n 's/^linux-image-\([^ ,]*\).*/\1/p' <<<"$dep")
    if [[ -n $kver && -f /boot/vmlinuz-$kver ]]; then
        echo "/boot/vmlinuz-$kver"
        return
    fi
    find /boot -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1
}
# A kernel given as a version (no slash) is a SPEC of the matrix (tests/guest/harness/kernels.sh).
if [[ -n $kernel && $kernel != */* ]]; then kernel_version=$kernel; kernel=; fi
if [[ -n $kernel_version ]]; then
    kernel=$("$HERE/kernels.sh" path "$kernel_version") || die "no kernel $kernel_version (run tests/guest/install/install-deps.sh as root)"
fi
[[ -n $kernel ]] || kernel=$(find_kernel)
[[ -n $kernel && -r $kernel ]] ||
    die "no readable kernel in /boot (run tests/guest/install/install-deps.sh as root)"
# A fetched kernel sits as .../usr/lib/modules/VER/vmlinuz beside its modules and config (kernels.sh);
# a host kernel as /boot/vmlinuz-VER with /lib/modules/VER and /boot/config-VER.
if [[ $(basename "$kernel") == vmlinuz && -d $(dirname "$kernel")/kernel ]]; then
    moddir=$(cd "$(dirname "$kernel")" && pwd -P)
    kver=$(basename "$moddir")
    modroot=${moddir%/lib/modules/"$kver"}
    kconfig=$moddir/config
else
    kver=$(basename "$kernel"); kver=${kver#vmlinuz-}
    moddir=/lib/modules/$kver
    modroot=/
    kconfig=/boot/config-$kver
fi
[[ -d $moddir ]] || die "no modules dir $moddir for kernel $kernel"
command -v "$qemu_bin" >/dev/null || die "$qemu_bin missing (run tests/guest/install/install-deps.sh)"
[[ -f $moddir/modules.dep ]] || die "$moddir has no modules.dep (run depmod -b $modroot $kver)"
busybox=$(command -v busybox || true)
[[ -n $busybox ]] || die "busybox missing (run tests/guest/install/install-deps.sh)"
LC_ALL=C ldd "$busybox" 2>&1 | grep -q '=>' &&
    die "$busybox is dynamically linked; the initramfs needs busybox-static"

# ---------------------------------------------------------------- initramfs
# Stage-1 modules, in dependency order, from the host's modules dir.
STAGE1_MODULES=(virtio_pci 9pnet_virtio 9p overlay virtio_console virtio_net configfs nvme_tcp)

build_initramfs() {
    local out=$1 tmp m path
    tmp=$(mktemp -d "$CACHE/build.XXXXXX")
    mkdir -p "$tmp"/{bin,dev,proc,sys,modules}
    cp "$busybox" "$tmp/bin/busybox"
    for a in sh mount insmod mkdir ln cat echo sleep switch_root poweroff; do
        ln -s busybox "$tmp/bin/$a"
    done
    for m in "${STAGE1_MODULES[@]}"; do
        modprobe -d "$modroot" -S "$kver" --show-depends "$m" || { rm -rf "$tmp"; die "modprobe --show-depends $m failed"; }
    done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r path; do
        case $path in
            *.ko) cp "$path" "$tmp/modules/" ;;
            *.ko.xz) xz -dc "$path" >"$tmp/modules/$(basename "${path%.xz}")" ;;
            *.ko.zst) zstd -qdc "$path" >"$tmp/modules/$(basename "${path%.zst}")" ;;
            *.ko.gz) gzip -dc "$path" >"$tmp/modules/$(basename "${path%.gz}")" ;;
            *) echo "run-guest: unexpected module file $path" >&2; exit 1 ;;
        esac
        m=$(basename "$path"); echo "${m%.ko*}.ko" >>"$tmp/modules/order"
    done
    [[ -s $tmp/modules/order ]] || { rm -rf "$tmp"; die "no stage-1 modules found for $kver"; }
    install -m 0755 "$HERE/guest-init.sh" "$tmp/init"
    (cd "$tmp" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$tmp.cpio"
    mv -f "$tmp.cpio" "$out"
    rm -rf "$tmp"
}

mkdir -p "$CACHE"
key=$( { echo "$kver"; sha256sum "$HERE/guest-init.sh" "$busybox"; echo "${STAGE1_MODULES[*]}";
         stat -c '%n %s %Y' "$moddir/modules.dep"; } | sha256sum | cut -c1-16)
initrd=$CACHE/initramfs-$kver-$key.cpio
# Drop stale images of this kernel (older than 10 minutes, other keys).
prune() { find "$CACHE" -maxdepth 1 -name "$1" ! -name "$(basename "$2")" -mmin +10 -delete 2>/dev/null || true; }
if [[ ! -s $initrd ]]; then
    vlog "building $initrd"
    build_initramfs "$initrd"
    prune "initramfs-$kver-*.cpio" "$initrd"
fi

# ---------------------------------------------------------------- vmlinux
# The Debian bzImage is XZ-compressed; decompressing it in emulated code costs
# 2-4 s of every boot under TCG. With CONFIG_PVH=y, QEMU can boot the
# uncompressed ELF vmlinux directly (PVH entry), so extract it once and cache it.
extract_vmlinux() {
    local in=$1 out=$2 magic off dec tmp
    tmp=$(mktemp "$CACHE/vmlinux.XXXXXX")
    for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08' 'lz4:\x02\x21\x4c\x18'; do
        dec=${magic%%:*}
        command -v "$dec" >/dev/null || continue
        for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$in" 2>/dev/null | cut -d: -f1 | head -n 5); do
            tail -c "+$((off + 1))" "$in" | "$dec" -dc >"$tmp" 2>/dev/null || true
            if [[ $(head -c 4 "$tmp" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then
                mv -f "$tmp" "$out"
                return 0
            fi
        done
    done
    rm -f "$tmp"
    return 1
}

boot_kernel=$kernel
if [[ ${ZNS_GUEST_PVH:-1} != 0 ]] && grep -qx 'CONFIG_PVH=y' "$kconfig" 2>/dev/null; then
    vkey=$(stat -L -c '%s %Y' "$kernel" | sha256sum | cut -c1-16)
    vmlinux=$CACHE/vmlinux-$kver-$vkey
    if [[ ! -s $vmlinux ]]; then
        vlog "extracting $vmlinux"
        if extract_vmlinux "$kernel" "$vmlinux"; then
            chmod 0644 "$vmlinux"
            prune "vmlinux-$kver-*" "$vmlinux"
        else
            vlog "could not extract vmlinux; booting $kernel"
        fi
    fi
    [[ -s $vmlinux ]] && boot_kernel=$vmlinux
fi

# ---------------------------------------------------------------- run dir
run=$(mktemp -d /tmp/zns-guest.XXXXXX)
qemu_pid=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill -TERM "$qemu_pid" 2>/dev/null || true
        for _ in $(seq 20); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    rm -f "$run.monitor"
    unfinished_line "$rc"
    if ((keep)); then
        echo "run-guest: run dir kept: $run" >&2
    else
        rm -rf "$run"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Work dir.
if [[ -n $workdir ]]; then
    mkdir -p "$workdir"
    workdir=$(realpath "$workdir")
    [[ $workdir != / ]] || die "-w / is not allowed"
    echo "$workdir" >"$run/workdir"
fi

under() { [[ $1 == "$2" || $1 == "$2"/* ]]; }
# Paths the guest does not see from the host: tmpfs mounts made over them.
hidden() {
    local p=$1 d
    [[ -n $workdir ]] && under "$p" "$workdir" && return 1
    for d in /tmp /run /var/tmp /dev /proc /sys; do under "$p" "$d" && return 0; done
    return 1
}

# What to run.
if [[ -n $command ]]; then
    guest_cmd=(/bin/bash -c "$command" bash "$@")
else
    (($#)) || { usage >&2; die "no SCRIPT given"; }
    script=$1
    if [[ $script != */* ]] && [[ ! -e $script ]]; then
        script=$(type -P "$1") || die "script not found: $1"
    fi
    shift
    [[ -f $script ]] || die "script not found: $script"
    script=$(realpath "$script")
    script_x=0; [[ -x $script ]] && script_x=1
    if hidden "$script"; then
        # Not visible in the guest (a clone under /tmp or /var/tmp): copy its directory into the run share, so that
        # the files it sources from beside itself come along; with the directory above it when that holds a lib/
        # (tests/guest: the scripts of in-guest/ source ../lib/).
        from=$(dirname "$script") rel=$(basename "$script")
        [[ -d $from/../lib ]] && { rel=$(basename "$from")/$rel; from=$(dirname "$from"); }
        vlog "$script is not visible in the guest; running a copy of $from"
        mkdir -p "$run/scripts"
        cp -r "$from/." "$run/scripts/"
        script=/run/zns-guest/scripts/$rel
    fi
    if ((script_x)); then
        guest_cmd=("$script" "$@")
    else
        guest_cmd=(/bin/bash "$script" "$@")
    fi
fi

shell_array() {
    local name=$1; shift
    printf '%s=(' "$name"
    (($#)) && printf '%q ' "$@"
    printf ')\n'
}
cwd=$(pwd -P)
hidden "$cwd" && cwd=/
{
    shell_array GUEST_CMD "${guest_cmd[@]}"
    shell_array GUEST_ENV "${envs[@]}"
    shell_array GUEST_MODULES "${modules[@]}"
    printf 'GUEST_CWD=%q\n' "$cwd"
    # A fetched kernel's modules: stage 2 mounts them at /lib/modules/KVER.
    if [[ $moddir != "/lib/modules/$kver" ]]; then
        hidden "$moddir" && die "kernel modules under $moddir are not visible in the guest (set ZNS_KERNEL_CACHE elsewhere)"
        printf 'GUEST_KVER=%q\nGUEST_MODDIR=%q\n' "$kver" "$moddir"
    fi
} >"$run/config"
cp "$HERE/guest-stage2.sh" "$run/stage2.sh"

# ---------------------------------------------------------------- QEMU
cmdline="console=ttyS0,115200 rdinit=/init panic=-1 loglevel=4 8250.nr_uarts=1"
cmdline+=" i8042.noaux i8042.nokbd i8042.nopnp cryptomgr.notests mitigations=off"
cmdline+=" random.trust_cpu=on no_timer_check tsc=reliable"
[[ -n $append ]] && cmdline+=" $append"

qemu=("$qemu_bin" -name zns-guest -M q35 -no-user-config -nodefaults
      -display none -vga none -no-reboot -smp "$smp" -m "$mem")
if [[ $accel == kvm ]]; then
    qemu+=(-accel kvm -cpu host)
else
    qemu+=(-accel tcg,thread=multi -cpu max)
fi
[[ -f /usr/share/qemu/qboot.rom ]] && qemu+=(-bios /usr/share/qemu/qboot.rom)
qemu+=(-kernel "$boot_kernel" -initrd "$initrd" -append "$cmdline"
       -chardev "file,id=con0,path=$run/console.log" -serial chardev:con0
       -chardev stdio,id=out0,signal=off
       -device virtio-serial-pci,id=vser0 -device virtserialport,chardev=out0,bus=vser0.0,name=zns.out
       -virtfs local,path=/,mount_tag=zgroot,security_model=none,readonly=on,multidevs=remap
       -virtfs "local,path=$run,mount_tag=zgrun,security_model=none,multidevs=remap"
       -netdev user,id=net0 -device virtio-net-pci,netdev=net0,romfile=
       -monitor "unix:$run.monitor,server=on,wait=off")
[[ -n $workdir ]] &&
    qemu+=(-virtfs "local,path=$workdir,mount_tag=zgwork,security_model=none,multidevs=remap")
((${#qemu_extra[@]})) && qemu+=("${qemu_extra[@]}")

vlog "kernel $boot_kernel, initrd $initrd, run dir $run, timeout ${timeout}s"
vlog "guest command: ${guest_cmd[*]}"
# If this shell is killed with SIGKILL (no trap runs), the kernel kills QEMU.
pdeath=()
setpriv --help 2>/dev/null | grep -q -- --pdeathsig && pdeath=(setpriv --pdeathsig KILL)
# QEMU's stdin is a FIFO this shell holds open and never writes: the stdio
# chardev then never sees EOF, which would mark the virtio-serial port as
# disconnected and block the guest's writes.
mkfifo "$run/stdin"
# shellcheck disable=SC2034
exec {stdin_fd}<>"$run/stdin"
# Where the vCPUs of a hung boot are: QEMU's monitor answers "info registers -a"; the instruction pointers go to
# stderr (python3 speaks to the monitor's Unix socket; without it nothing is printed).
dump_vcpus() {
    command -v python3 >/dev/null || return 0
    python3 - "$run.monitor" <<'PY' 2>/dev/null | sed 's/^/run-guest:   /' >&2 || true
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(b"info registers -a\n"); out = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk: break
        out += chunk
        s.settimeout(1)  # the answer has begun: it is whole once the monitor is silent for a second
except socket.timeout:
    pass
for line in out.decode(errors="replace").splitlines():
    if line.startswith(("CPU#", "RIP=", "EIP=")): print(line.strip()[:100])
PY
}

# Boots the guest once; sets t_qemu, t_boot, t_end, timed_out, boot_hung and qemu_rc.
boot_guest() {
    t_qemu=$(now)
    "${pdeath[@]}" "${qemu[@]}" <"$run/stdin" 2>"$run/qemu.log" &
    qemu_pid=$!

    deadline=$(awk -v s="$t_qemu" -v t="$timeout" 'BEGIN { printf "%d", s + t }')
    boot_deadline=$(awk -v s="$t_qemu" -v t="$boot_timeout" 'BEGIN { printf "%d", s + t }')
    t_boot=
    timed_out=0
    boot_hung=0
    # The loop's stderr is discarded: bash would report a QEMU that died on a
    # signal ("Aborted") there. Messages go to the saved stderr.
    exec {err_fd}>&2
    while kill -0 "$qemu_pid" 2>/dev/null; do
        if [[ -z $t_boot && -e $run/started ]]; then
            t_boot=$(now)
            vlog "guest script started $(elapsed "$t_qemu" "$t_boot") s after QEMU's start" 2>&"$err_fd"
        fi
        if (($(date +%s) >= deadline)); then
            timed_out=1
            echo "run-guest: timeout after ${timeout}s, killing QEMU" >&"$err_fd"
        elif [[ -z $t_boot ]] && (($(date +%s) >= boot_deadline)); then
            boot_hung=1
            echo "run-guest: the guest's script had not started ${boot_timeout}s after QEMU's start; the vCPUs:" >&"$err_fd"
            dump_vcpus 2>&"$err_fd"
        fi
        if ((timed_out || boot_hung)); then
            kill -TERM "$qemu_pid" 2>/dev/null || true
            for _ in $(seq 20); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$qemu_pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done 2>/dev/null
    qemu_rc=0
    wait "$qemu_pid" 2>/dev/null || qemu_rc=$?
    exec {err_fd}>&-
    qemu_pid=
    t_end=$(now)
    if [[ -z $t_boot && -e $run/started ]]; then t_boot=$t_end; fi
}

# Under TCG a guest kernel occasionally dies while it boots (an oops in early code patching, before any device
# is used), or hangs before it prints anything. When that happens before the guest script started, nothing of the
# test has run: boot again (ZNS_GUEST_BOOT_RETRIES times, default 2), keeping the failed boot's console log.
boot_retries=${ZNS_GUEST_BOOT_RETRIES:-2}
boot_guest
while ((!timed_out)) && [[ ! -e $run/started && ! -s $run/exit-status ]] && ((boot_retries-- > 0)) &&
      { ((boot_hung)) || grep -q -E "Kernel panic|Oops" "$run/console.log" 2>/dev/null; }; do
    mv "$run/console.log" "$run/console-failed-boot.log"
    if ((boot_hung)); then
        echo "run-guest: the guest hung while booting ($(wc -l <"$run/console-failed-boot.log") console lines); booting again" >&2
    else
        echo "run-guest: the guest kernel died while booting, before the script started (console: $(grep -m1 -E 'Oops|Kernel panic' "$run/console-failed-boot.log")); booting again" >&2
    fi
    rm -f "$run.monitor"
    boot_guest
done

if ((timed_out)); then
    rc=124
elif [[ -s $run/exit-status ]]; then
    rc=$(<"$run/exit-status")
elif ((boot_hung)); then
    echo "run-guest: the guest hung while booting on every try" >&2
    rc=125
else
    echo "run-guest: guest ended without an exit status (QEMU exit $qemu_rc)" >&2
    rc=125
fi

# boot: QEMU start to script start; total: this command's start to QEMU's exit.
boot_s=$([[ -n $t_boot ]] && elapsed "$t_qemu" "$t_boot" || echo "n/a")
echo "run-guest: boot ${boot_s} s, total $(elapsed "$t_start" "$t_end") s, exit $rc" >&2
if ((verbose)) || ((rc != 0)); then
    if [[ -s $run/qemu.log ]]; then
        echo "run-guest: ---- QEMU stderr ----" >&2
        cat "$run/qemu.log" >&2
    fi
    echo "run-guest: ---- guest console log ----" >&2
    cat "$run/console.log" >&2 2>/dev/null || true
    echo "run-guest: ---- end of console log ----" >&2
fi
exit "$rc"

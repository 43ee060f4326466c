#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2016
# Self-test of the Linux-guest harness.
#
#   tests/guest/harness/selftest.sh [--with-nvmet]     run on the host (as root)
#
# Boots the guest (tests/guest/harness/run-guest.sh) and checks, inside it: nvme-cli,
# blkzone and fio run; nvme_tcp, nvmet and nvmet_tcp load; a module parameter
# given with --append reaches the early-loaded nvme_core; a zoned null_blk
# device can be created and reported with blkzone; a TCP listener on the
# host's 127.0.0.1 is reachable at 10.0.2.2; the rw work dir is shared. On the
# host it checks exit-status propagation, the hard timeout, the hung-boot retry, --tap-name, a bad
# --boot-timeout and the cleanup.
# --with-nvmet also runs studies/nvmet-reference.sh (zoned NVMe/TCP end to end).
# Ends with a "selftest: N passed, N failed" line; exits non-zero on any failure.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# ------------------------------------------------------------ guest side
if [[ ${1:-} == --in-guest ]]; then
    port=$2 token=$3 work=$4
    pass=0 fail=0
    check() {   # check NAME COMMAND...: run it, show its output, record the result
        local name=$1; shift
        echo "--- $name: $*"
        if "$@"; then echo "ok - $name"; pass=$((pass + 1)); else echo "not ok - $name"; fail=$((fail + 1)); fi
    }
    echo "guest: kernel $(uname -r), $(nproc) CPUs, uptime $(cut -d' ' -f1 /proc/uptime) s"
    check "nvme-cli runs" nvme version
    check "blkzone runs" blkzone --version
    check "fio runs" fio --version
    check "nvme_tcp loads" bash -c 'modprobe nvme-tcp && grep -q "^nvme_tcp " /proc/modules && ls /sys/module/nvme_core >/dev/null'
    check "kernel arg nvme_core.multipath=N applied" grep -qx N /sys/module/nvme_core/parameters/multipath
    check "nvmet + nvmet_tcp load" bash -c 'modprobe -a nvmet nvmet_tcp && test -d /sys/kernel/config/nvmet'
    check "host TCP listener reachable at 10.0.2.2:$port" \
        bash -c "reply=\$(echo '$token' | nc -N -w 10 10.0.2.2 $port) && echo \"reply: \$reply\" && [[ \$reply == pong ]]"
    check "zoned null_blk + blkzone report" bash -c '
        modprobe null_blk nr_devices=1 zoned=1 zone_size=64 zone_capacity=62 zone_nr_conv=0 \
            zone_max_open=16 zone_max_active=32 memory_backed=1 gb=2 bs=4096 || exit 1
        for i in $(seq 50); do [[ -b /dev/nullb0 ]] && break; sleep 0.1; done
        echo "zoned: $(cat /sys/block/nullb0/queue/zoned), nr_zones: $(cat /sys/block/nullb0/queue/nr_zones)"
        blkzone report /dev/nullb0 | head -2
        [[ $(cat /sys/block/nullb0/queue/zoned) == host-managed ]] &&
            blkzone report /dev/nullb0 | head -1 | grep -q "wptr 0x0* "'
    check "work dir writable" bash -c "echo '$token' >'$work/from-guest' && sync"
    echo "guest: $pass passed, $fail failed"
    ((fail == 0))
    exit
fi

# ------------------------------------------------------------ host side
[[ $(id -u) -eq 0 ]] || { echo "selftest: run as root" >&2; exit 1; }
run_guest=$HERE/run-guest.sh
t0=$(date +%s.%N)
work=$(mktemp -d /tmp/zns-guest-selftest.XXXXXX)
nc_pid=
cleanup() {
    [[ -n $nc_pid ]] && kill "$nc_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
notok() { echo "not ok - $*"; fail=$((fail + 1)); }

# A one-shot TCP listener on the host's loopback: it answers "pong" and keeps
# what it received. Try a few random ports in case one is taken.
token=zns-guest-ping-$$-$RANDOM
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 20000))
    printf 'pong\n' | nc -l 127.0.0.1 "$port" >"$work/received" 2>"$work/nc.err" &
    nc_pid=$!
    sleep 0.2
    kill -0 "$nc_pid" 2>/dev/null && break
    nc_pid=
done
[[ -n $nc_pid ]] || { echo "selftest: could not start a listener with nc" >&2; exit 1; }
echo "selftest: host listener on 127.0.0.1:$port"

# 1. The main guest run.
"$run_guest" -v -w "$work" -t 300 --append "nvme_core.multipath=N" "$HERE/selftest.sh" --in-guest "$port" "$token" "$work" \
    2>"$work/guest.err" | tee "$work/guest.out"
rc=${PIPESTATUS[0]}
sed -n '/^run-guest: [kgb]/p' "$work/guest.err"
if ((rc == 0)); then ok "guest self-test exited 0"; else notok "guest self-test exited $rc"; cat "$work/guest.err"; fi
grep -q "^guest: [0-9]* passed, 0 failed" "$work/guest.out" &&
    ok "all guest checks passed" || notok "guest checks: $(grep '^guest: .* passed' "$work/guest.out")"
sleep 0.2
if grep -qx "$token" "$work/received" 2>/dev/null; then
    ok "host listener received the guest's line"
else
    notok "host listener did not receive the guest's line"
fi
[[ $(cat "$work/from-guest" 2>/dev/null) == "$token" ]] &&
    ok "guest wrote into the host work dir" || notok "no file from the guest in the work dir"
boot=$(sed -n 's/^run-guest: boot \([0-9.]*\) s, total \([0-9.]*\) s.*/\1/p' "$work/guest.err")
total=$(sed -n 's/^run-guest: boot \([0-9.]*\) s, total \([0-9.]*\) s.*/\2/p' "$work/guest.err")
rundir=$(sed -n 's/^run-guest: .*run dir \([^,]*\),.*/\1/p' "$work/guest.err")
[[ -n $rundir && ! -e $rundir ]] && ok "run dir removed" || notok "run dir '$rundir' left behind"

# 2. Exit status propagation.
"$run_guest" -c 'echo "status test"; exit 7' >"$work/exit.out" 2>&1
rc=$?
((rc == 7)) && ok "exit status 7 propagated" || { notok "exit status: got $rc, want 7"; cat "$work/exit.out"; }

# 3. Hard timeout: QEMU killed, 124, nothing left behind.
ts=$(date +%s)
"$run_guest" -v -t 3 -c 'sleep 600' >"$work/timeout.out" 2>&1
rc=$?
te=$(date +%s)
rundir=$(sed -n 's/^run-guest: .*run dir \([^,]*\),.*/\1/p' "$work/timeout.out")
if ((rc == 124 && te - ts <= 10)); then ok "timeout exits 124 after $((te - ts)) s"; else
    notok "timeout: exit $rc after $((te - ts)) s"; cat "$work/timeout.out"; fi
if [[ -n $rundir ]] && ! pgrep -f -- "$rundir" >/dev/null && [[ ! -e $rundir ]]; then
    ok "no QEMU process or run dir left after timeout"
else
    notok "QEMU process or run dir '$rundir' left after timeout"
fi

# 4. A boot that does not reach the script in time is killed and booted again; once every try hung: 125.
# (A one-second boot timeout: no boot is that fast under TCG.)
# --tap-name puts one failing TAP line for it on stdout.
ZNS_GUEST_BOOT_RETRIES=1 "$run_guest" --boot-timeout 1 --tap-name hung -c 'echo should-not-run' \
    >"$work/hung.out" 2>"$work/hung.err"
rc=$?
hung=$(grep -c "had not started 1s after QEMU's start" "$work/hung.err")
if ((rc == 125 && hung == 2)) && grep -q "booting again" "$work/hung.err" && ! grep -q should-not-run "$work/hung.out"; then
    ok "a hung boot is killed and retried once, then exits 125"
else
    notok "hung boot: exit $rc, $hung watchdog messages"; cat "$work/hung.out" "$work/hung.err"
fi
want="not ok - hung: the guest did not finish (run-guest.sh exit 125)"
[[ $(<"$work/hung.out") == "$want" ]] && ok "--tap-name prints one failing line for a guest that did not finish" ||
    { notok "--tap-name: stdout was '$(<"$work/hung.out")'"; }
# A bad --boot-timeout is refused before anything boots.
"$run_guest" --boot-timeout 0 -c true >"$work/badboot.out" 2>&1
rc=$?
((rc == 125)) && grep -q "bad boot timeout: 0" "$work/badboot.out" && ok "--boot-timeout 0 is refused, naming it" ||
    { notok "--boot-timeout 0: exit $rc"; cat "$work/badboot.out"; }

# 5. Optional: the zoned NVMe/TCP path end to end against the kernel's nvmet.
if [[ ${1:-} == --with-nvmet ]]; then
    "$run_guest" -t 300 "$HERE/../studies/nvmet-reference.sh" 2>&1 | tee "$work/nvmet.out" | sed 's/^/  | /'
    rc=${PIPESTATUS[0]}
    ((rc == 0)) && grep -q '^zoned-nvme-check: OK' "$work/nvmet.out" &&
        ok "zoned-nvme-check.sh against in-guest nvmet-tcp" ||
        notok "zoned-nvme-check.sh against in-guest nvmet-tcp (exit $rc)"
fi

t1=$(date +%s.%N)
echo "selftest: boot ${boot:-?} s, main run ${total:-?} s, whole self-test $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
echo "selftest: $pass passed, $fail failed"
((fail == 0))

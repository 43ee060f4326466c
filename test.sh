#!/usr/bin/env bash
# Runs every test: the .NET suites (unit, model-based, crash, protocol, target over loopback) and, when the guest
# harness can run here, the real-kernel tests (Linux 6.1 under QEMU as the NVMe/TCP host). Prints one summary
# line "N passed, N failed" at the end and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")"
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

dotnet build zns.slnx -c Release -nologo -v quiet 2>&1 | tail -n 3
dotnet test zns.slnx -c Release --no-build --logger "trx" --results-directory "$results/trx" 2>&1 \
  | grep -E '^(Passed!|Failed!)|\[FAIL\]|error' || true

passed=0; failed=0
for trx in "$results"/trx/*.trx; do
  [ -f "$trx" ] || continue
  p=$(grep -o 'passed="[0-9]*"' "$trx" | head -1 | grep -o '[0-9]*')
  f=$(grep -o 'failed="[0-9]*"' "$trx" | head -1 | grep -o '[0-9]*')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
if [ "$passed" -eq 0 ]; then
  echo "no .NET test results were produced"; failed=$((failed + 1))
fi

# A script suite prints TAP lines; one that prints none counts as a failure unless it said "# skipped".
run_tap_suite() {
  local name=$1 script=$2 log="$results/$1.log" p f
  [ -x "$script" ] || return 0
  "$script" | tee "$log"
  p=$(grep -c '^ok ' "$log" || true)
  f=$(grep -c '^not ok ' "$log" || true)
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && ! grep -q '^# skipped' "$log"; then
    f=1; echo "not ok - the $name tests reported nothing"
  fi
  passed=$((passed + p)); failed=$((failed + f))
}
run_guest_suite() { [ "${ZNS_SKIP_KERNEL_TESTS:-0}" = 1 ] || run_tap_suite "$@"; }

# The documentation: every relative link and anchor resolves; README.md is a front page with the two commands.
run_tap_suite docs tests/docs/check-links.sh
# zns top in a tmux pane against a running zns serve while a small NVMe/TCP host writes (needs tmux and python3).
run_tap_suite top tests/cli/top-tmux.sh
# The packed .NET tool and libraries, installed and used as a user would (needs the NuGet registry).
run_tap_suite packages tests/packaging/package-tests.sh
# The NativeAOT zns: the CLI test project and a C NVMe/TCP client against the native executable (needs clang).
run_tap_suite aot tests/packaging/aot-tests.sh

# The guest harness itself: booting, exit status, the hard timeout, the retry of a hung boot.
run_guest_suite harness tests/guest/harness/selftest.sh
run_guest_suite kernel tests/guest/suites/kernel-tests.sh
run_guest_suite authentication tests/guest/suites/auth-tests.sh
# The same kernel checks with zns as a PCIe NVMe controller over vfio-user (needs Debian 13's QEMU; skipped without).
run_guest_suite vfio-user tests/guest/suites/vfio-user-tests.sh
# End-to-end protection over vfio-user: the integrity path, Zone Append, fio verify, a corrupted guard (Debian 13's QEMU).
run_guest_suite pi tests/guest/suites/pi-tests.sh
# The seed's QEMU ZNS command line with `zns qemu` in front, booted twice (Debian 13's QEMU; skipped without).
run_guest_suite zns-qemu tests/guest/suites/zns-qemu-tests.sh
run_guest_suite control tests/guest/suites/control-tests.sh
run_guest_suite differential tests/guest/differential/run-differential.sh
# btrfs and f2fs through power cuts on Linux 6.12 and 7.x, and the negative control (docs/crash-testing.md).
run_guest_suite powercut tests/guest/suites/powercut-tests.sh

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

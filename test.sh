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

if [ -x tests/guest/kernel-tests.sh ] && [ "${ZNS_SKIP_KERNEL_TESTS:-0}" != 1 ]; then
  tests/guest/kernel-tests.sh | tee "$results/kernel.log"
  kp=$(grep -c '^ok ' "$results/kernel.log" || true)
  kf=$(grep -c '^not ok ' "$results/kernel.log" || true)
  if [ "$kp" -eq 0 ] && [ "$kf" -eq 0 ]; then kf=1; echo "not ok - the kernel tests reported nothing"; fi
  passed=$((passed + kp)); failed=$((failed + kf))
fi

if [ -x tests/guest/auth-tests.sh ] && [ "${ZNS_SKIP_KERNEL_TESTS:-0}" != 1 ]; then
  tests/guest/auth-tests.sh | tee "$results/auth.log"
  ap=$(grep -c '^ok ' "$results/auth.log" || true)
  af=$(grep -c '^not ok ' "$results/auth.log" || true)
  if [ "$ap" -eq 0 ] && [ "$af" -eq 0 ] && ! grep -q '^# skipped' "$results/auth.log"; then af=1; echo "not ok - the authentication kernel tests reported nothing"; fi
  passed=$((passed + ap)); failed=$((failed + af))
fi

if [ -x tests/guest/vfio-user-tests.sh ] && [ "${ZNS_SKIP_KERNEL_TESTS:-0}" != 1 ]; then
  # The same kernel checks with zns as a PCIe NVMe controller over vfio-user (needs Debian 13's QEMU; skipped without).
  tests/guest/vfio-user-tests.sh | tee "$results/vfio-user.log"
  passed=$((passed + $(grep -c '^ok ' "$results/vfio-user.log" || true)))
  failed=$((failed + $(grep -c '^not ok ' "$results/vfio-user.log" || true)))
fi

if [ -x tests/guest/control-tests.sh ] && [ -x tests/guest/kernel-tests.sh ] && [ "${ZNS_SKIP_KERNEL_TESTS:-0}" != 1 ]; then
  tests/guest/control-tests.sh | tee "$results/control.log"
  cp=$(grep -c '^ok ' "$results/control.log" || true)
  cf=$(grep -c '^not ok ' "$results/control.log" || true)
  if [ "$cp" -eq 0 ] && [ "$cf" -eq 0 ]; then cf=1; echo "not ok - the control tests reported nothing"; fi
  passed=$((passed + cp)); failed=$((failed + cf))
fi

if [ -x tests/guest/differential/run-differential.sh ] && [ "${ZNS_SKIP_KERNEL_TESTS:-0}" != 1 ]; then
  tests/guest/differential/run-differential.sh | tee "$results/differential.log"
  dp=$(grep -c '^ok ' "$results/differential.log" || true)
  df=$(grep -c '^not ok ' "$results/differential.log" || true)
  if [ "$dp" -eq 0 ] && [ "$df" -eq 0 ]; then df=1; echo "not ok - the differential test against QEMU reported nothing"; fi
  passed=$((passed + dp)); failed=$((failed + df))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

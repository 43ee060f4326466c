#!/usr/bin/env bash
# Kernel tests over vfio-user: zns serves the seed's default namespace as a PCIe NVMe controller on a Unix socket,
# Debian 13's QEMU (install/install-trixie-qemu.sh; the host's 7.2 has no vfio-user client) boots Linux 6.1 with
# -device vfio-user-pci on shareable guest memory, and the guest's nvme-pci driver binds it. The same phases as over
# NVMe/TCP (lib/transport-phases.sh, TRANSPORT=pcie), plus SGLs; phase 2 ends with btrfs on the namespace; phase 3
# is a power cut under nvme-pci (power_cut_phase). Prints TAP lines; skips (prints one '# skipped' line) without the
# trixie QEMU.
set -uo pipefail
suites=$(cd "$(dirname "$0")" && pwd)
guest=$(dirname "$suites")
qemu="$guest/harness/qemu-trixie"
if ! "$qemu" --version >/dev/null 2>&1; then
  echo "# skipped: vfio-user kernel tests need Debian 13's QEMU (tests/guest/install/install-trixie-qemu.sh)"
  exit 0
fi
work=$(mktemp -d /var/tmp/zns-vfio-tests.XXXXXX)
for l in tap server host-requests transport-phases; do source "$guest/lib/$l.sh"; done
cleanup() { control_agent_stop; stop_server 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

transport=pcie
TAP_PREFIX="vfio-user: "
sock="$work/nvme.sock"
listen=(--listen none --vfio-user "$sock")
run_guest() {
  "$guest/harness/run-guest.sh" -t 600 -w "$work/share" --mem 2G --qemu "$qemu" \
    --qemu-arg -object --qemu-arg memory-backend-memfd,id=mem,size=2G,share=on \
    --qemu-arg -machine --qemu-arg memory-backend=mem \
    --qemu-arg -device --qemu-arg "{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"$sock\"}}" "$@"
}

# Phase 3: `zns fault power-cut --keep none` under Linux's nvme-pci (in-guest/pcie-power-cut.sh), on a small zoned
# namespace; the guest asks for the cut through the shared dir.
power_cut_phase() {
  local cport=$((20000 + RANDOM % 20000))
  truncate -s 256M "$work/target/cut.raw"
  start_server "${listen[@]}" --control "127.0.0.1:$cport" --zone-size 16M --zone-capacity 16M cut.raw ||
    { tap 1 "power cut: zns serve starts"; return 1; }
  control_agent_start "127.0.0.1:$cport"
  run_phase pcie-power-cut.sh
  control_agent_stop
  grep -h 'Power cut' "$work/serve.log" | sed 's/^/# zns: /'
  stop_server; tap $? "power cut: zns serve stops cleanly on SIGTERM"
}

transport_phases && power_cut_phase

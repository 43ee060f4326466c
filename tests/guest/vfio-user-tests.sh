#!/usr/bin/env bash
# Kernel tests over vfio-user: zns serves the seed's default namespace as a PCIe NVMe controller on a Unix socket,
# Debian 13's QEMU (tests/guest/install-trixie-qemu.sh; the host's 7.2 has no vfio-user client) boots Linux 6.1
# with -device vfio-user-pci on shareable guest memory, and the guest's nvme-pci driver binds it. Phase 1 checks
# identity, geometry, zone actions, a ZNS error and fio; zns is restarted; phase 2 (a second boot) checks that
# zones and data are as before, then puts a filesystem on it. Prints TAP lines; skips (prints one '# skipped' line) without the
# trixie QEMU.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
here="$repo/tests/guest"
qemu="$here/qemu-trixie"
if ! "$qemu" --version >/dev/null 2>&1; then
  echo "# skipped: vfio-user kernel tests need Debian 13's QEMU (tests/guest/install-trixie-qemu.sh)"
  exit 0
fi
zns_dll="$repo/src/Zns.Cli/bin/Release/net10.0/zns.dll"
[ -f "$zns_dll" ] || dotnet build "$repo/src/Zns.Cli" -c Release -nologo -v quiet >/dev/null
work=$(mktemp -d /var/tmp/zns-vfio-tests.XXXXXX)
sock="$work/nvme.sock"
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {
  : > "$work/serve.log"
  (cd "$work/target" && exec dotnet "$zns_dll" serve --listen none --vfio-user "$sock" >>"$work/serve.log" 2>&1) &
  server_pid=$!
  for _ in $(seq 1 100); do
    grep -q "press Ctrl-C" "$work/serve.log" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "not ok - vfio-user: zns serve did not start"; cat "$work/serve.log"; return 1
}

stop_server() {
  kill -TERM "$server_pid"; wait "$server_pid"; local rc=$?; server_pid=
  return $rc
}

run_guest() {
  "$here/run-guest.sh" -t 600 -w "$work/share" --mem 2G --qemu "$qemu" --tap-name "vfio-user: $(basename "$1")" \
    --qemu-arg -object --qemu-arg memory-backend-memfd,id=mem,size=2G,share=on \
    --qemu-arg -machine --qemu-arg memory-backend=mem \
    --qemu-arg -device --qemu-arg "{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"$sock\"}}" "$@"
}

mkdir -p "$work/target" "$work/share"
start_server || exit 1
run_guest "$here/vfio-user-phase1.sh" "$work/share"
n=$(grep -c -E '^(ok|not ok) ' "$work/share/vfio1.tap" 2>/dev/null || echo 0)
if [ "$n" -eq 0 ]; then echo "not ok 1 - vfio-user: the guest ran no checks"; n=1; fi
if stop_server; then echo "ok $((n+1)) - vfio-user: zns serve stops cleanly on SIGTERM"; else echo "not ok $((n+1)) - vfio-user: zns serve exit status on SIGTERM"; fi
start_server || exit 1
run_guest "$here/vfio-user-phase2.sh" "$work/share" "$((n+2))"
stop_server >/dev/null 2>&1 || true

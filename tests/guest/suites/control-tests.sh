#!/usr/bin/env bash
# Run-time control with the real kernel attached: zns serve runs on the host with its management endpoint; Linux
# 6.1 boots under QEMU (harness/run-guest.sh), attaches over NVMe/TCP and asks the host to run `zns zone ...`
# and `zns fault ...` at chosen moments (requests through the shared directory), then checks what the host sees:
# I/O errors and their kernel log lines, blkzone report, nvme zns report-zones, the Changed Zone List and the
# Zone Descriptor Changed event, and namespace write protection (the disk going read-only and back). The host then
# checks /metrics and `zns stats`. TAP lines "ok N - ...".
set -uo pipefail
suites=$(cd "$(dirname "$0")" && pwd)
guest=$(dirname "$suites")
repo=$(cd "$guest/../.." && pwd)
work=$(mktemp -d /var/tmp/zns-control-tests.XXXXXX)
for l in tap server host-requests; do source "$guest/lib/$l.sh"; done
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
  stop_server 2>/dev/null
  # ZNS_KEEP_WORK=1 keeps the guest's log and the target's for a look after a failure.
  if [ "${ZNS_KEEP_WORK:-0}" = 1 ]; then echo "# kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

port=$(( 20000 + RANDOM % 20000 ))
cport=$(( port + 1 ))
nqn=nqn.2026-01.io.zns:subsys
mkdir -p "$work/target" "$work/share/requests"

(cd "$work/target" && zns create ctl.raw --size 2G --zone-size 64M --zone-capacity 62M --max-open 16 --max-active 32 >/dev/null) || {
  tap 1 "zns create"; exit 1; }
start_server ctl.raw --listen "127.0.0.1:$port" --control "127.0.0.1:$cport"
grep -q "^control: http://127.0.0.1:$cport" "$work/serve.log" || { tap 1 "zns serve did not start its control endpoint"; cat "$work/serve.log"; exit 1; }

# The zone map in headless Chromium while the guest writes (suites/zone-map-check.mjs): started before the
# guest's fio run, finished after it with the zone report taken then. The screenshot is kept in .cache/artifacts.
artifacts=${ZNS_ARTIFACTS:-$repo/.cache/artifacts}
browser_pid=
browser_start() {
  [ -x /usr/bin/chromium ] && [ -f "$repo/.cache/npm/node_modules/playwright-core/package.json" ] || {
    echo "not ok - chromium or playwright-core missing (tests/guest/install/install-browser.sh)" > "$work/browser.tap"; return 1; }
  mkdir -p "$artifacts"
  cp "$suites/zone-map-check.mjs" "$repo/.cache/npm/zone-map-check.mjs"
  node "$repo/.cache/npm/zone-map-check.mjs" "http://127.0.0.1:$cport/" "$work/map-report.txt" "$work/map-done" \
    "$artifacts/zone-map.png" > "$work/browser.tap" 2>&1 &
  browser_pid=$!
  # The page is loaded and has its first snapshot before the writes start.
  for _ in $(seq 1 450); do [ -f "$work/map-done.ready" ] && return 0; kill -0 "$browser_pid" 2>/dev/null || return 1; sleep 0.2; done
  return 1
}
browser_done() {
  ZNS_CONTROL="127.0.0.1:$cport" zns zones > "$work/map-report.txt" 2>&1
  touch "$work/map-done"
  [ -n "$browser_pid" ] && wait "$browser_pid"
}

# The agent runs each request of the guest (one line of zns arguments, or browser-start / browser-done) and leaves
# the output and exit status beside it (lib/host-requests.sh).
control_request() {
  case $1 in
    browser-start) browser_start ;;
    browser-done) browser_done ;;
    *) zns "$@" ;;
  esac
}
( export ZNS_CONTROL="127.0.0.1:$cport"; serve_requests "$work/share/requests" control_request ) &
agent_pid=$!

"$guest/harness/run-guest.sh" -t 900 -w "$work/share" --tap-name control -e "HOST_REQUESTS=$work/share/requests" \
  "$guest/in-guest/control-guest.sh" "$port" "$nqn" "$work/share" | tee "$work/guest.tap"
n=$(tap_count "$work/guest.tap")
if [ -f "$work/browser.tap" ] && grep -q -E '^(ok|not ok) - ' "$work/browser.tap"; then
  while read -r line; do
    case $line in ok\ -*|not\ ok\ -*) n=$((n+1)); echo "${line/ - / $n - }" ;; *) echo "# $line" ;; esac
  done < "$work/browser.tap"
else
  sed 's/^/# /' "$work/browser.tap" 2>/dev/null
  tap 1 "the zone map browser check did not run"
fi

metrics=$(curl -s "http://127.0.0.1:$cport/metrics")
echo "$metrics" | grep -q -E '^zns_io_errors_total\{[^}]*status="zone_is_offline"[^}]*\} [1-9]'; tap $? "/metrics counts the host's Zone Is Offline errors"
echo "$metrics" | grep -q -E '^zns_io_errors_total\{[^}]*status="unrecovered_read_error"[^}]*\} [1-9]'; tap $? "/metrics counts the injected Unrecovered Read Errors"
echo "$metrics" | grep -q -E '^zns_io_bytes_total\{[^}]*op="write"[^}]*\} [1-9]'; tap $? "/metrics counts written bytes"
echo "$metrics" | grep -q -E '^zns_zones\{[^}]*condition="offline"[^}]*\} 1$'; tap $? "/metrics shows one offline zone"
echo "$metrics" | grep -q -E '^zns_io_duration_seconds_bucket\{[^}]*op="read"'; tap $? "/metrics has a read latency histogram"
stats=$(ZNS_CONTROL="127.0.0.1:$cport" zns stats 2>&1)
echo "$stats" | grep -q "offline 1"; tap $? "zns stats shows the offline zone"
ZNS_CONTROL="127.0.0.1:$cport" zns zones -c 3 > "$work/zones.txt" 2>&1
grep -q "zcond:15(of)" "$work/zones.txt"; tap $? "zns zones prints the offline zone as blkzone does"

stop_server

# The zone map of a large namespace (4096 zones of 16 MiB over a sparse RAM backstore), host only: the first
# snapshot, updates that change every zone at once, zone actions at both ends, the stream's size
# (suites/zone-map-large.mjs). Its screenshot is kept beside the other one.
if [ -x /usr/bin/chromium ] && [ -f "$repo/.cache/npm/node_modules/playwright-core/package.json" ]; then
  lport=$(( port + 2 )); lcport=$(( port + 3 ))
  server_log=$work/serve-large.log start_server ram:64G,zoned.zone_size=16M --listen "127.0.0.1:$lport" --control "127.0.0.1:$lcport"
  cp "$suites/zone-map-large.mjs" "$repo/.cache/npm/zone-map-large.mjs"
  node "$repo/.cache/npm/zone-map-large.mjs" "http://127.0.0.1:$lcport/" 4096 "$artifacts/zone-map-4096.png" > "$work/large.tap" 2>&1
  while read -r line; do
    case $line in ok\ -*|not\ ok\ -*) n=$((n+1)); echo "${line/ - / $n - }" ;; *) echo "# $line" ;; esac
  done < "$work/large.tap"
  grep -q -E '^(ok|not ok) - ' "$work/large.tap" || tap 1 "the large zone map check did not run"
  stop_server
else
  tap 1 "chromium or playwright-core missing for the large zone map check (tests/guest/install/install-browser.sh)"
fi

(cd "$work/target" && zns report ctl.raw -c 4) > "$work/report-after.txt" 2>&1
sed -n 3p "$work/report-after.txt" | grep -q "zcond:15(of)"; tap $? "the offline zone is still offline after zns serve stops (zone state file)"
sed -n 4p "$work/report-after.txt" | grep -q "zcond:13(ro)"; tap $? "the read-only zone is still read only after zns serve stops"
out=$(ZNS_CONTROL="127.0.0.1:$cport" zns zones 2>&1); rc=$?
[ $rc = 1 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "no zns serve is answering"; tap $? "zns zones without a running server says so in one line"

#!/usr/bin/env bash
# The zone map's browser check (tests/guest/suites/zone-map-check.mjs) on this host alone, without a guest: zns serve with a
# RAM namespace (256 zones of 16 MiB, one made offline), the project's C initiator (bench/client) writing three
# zones and reading four while headless Chromium watches the page; then `zns zones` is the report the map is
# compared with. Needs chromium and playwright-core (tests/guest/install/install-browser.sh) and gcc.
# Usage: tests/guest/suites/zone-map-local.sh [SCREENSHOT]   (default .cache/artifacts/zone-map.png). TAP lines "ok N - ...".
set -uo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
here="$repo/tests/guest/suites"
shot=${1:-$repo/.cache/artifacts/zone-map.png}
zns_dll="$repo/src/Zns.Cli/bin/Release/net10.0/zns.dll"
[ -f "$zns_dll" ] || dotnet build "$repo/src/Zns.Cli" -c Release -nologo -v quiet >/dev/null
[ -x /usr/bin/chromium ] && [ -f "$repo/.cache/npm/node_modules/playwright-core/package.json" ] || {
  echo "not ok 1 - chromium or playwright-core missing (tests/guest/install/install-browser.sh)"; exit 1; }
client="$repo/.cache/zns-bench-client"
[ "$client" -nt "$repo/bench/client/zns-bench-client.c" ] ||
  gcc -O2 -pthread -o "$client" "$repo/bench/client/zns-bench-client.c" || { echo "not ok 1 - gcc bench/client"; exit 1; }
work=$(mktemp -d /var/tmp/zns-map-local.XXXXXX)
server_pid=; reader_pid=; browser_pid=
cleanup() {
  [ -n "$browser_pid" ] && kill "$browser_pid" 2>/dev/null
  [ -n "$reader_pid" ] && kill "$reader_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  if [ "${ZNS_KEEP_WORK:-0}" = 1 ]; then echo "# kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { # a port with its successor free
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 30000 ))
    ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/$((p + 1))) 2>/dev/null && { echo $p; return; }
  done
  return 1
}
port=$(free_port); cport=$((port + 1)); nqn=nqn.2026-01.io.zns:subsys
export ZNS_CONTROL="127.0.0.1:$cport"
(cd "$work" && exec dotnet "$zns_dll" serve ram:4G,zoned.zone_size=16M --listen "127.0.0.1:$port" --control "127.0.0.1:$cport" >"$work/serve.log" 2>&1) &
server_pid=$!
for _ in $(seq 1 150); do grep -q "press Ctrl-C" "$work/serve.log" 2>/dev/null && break; sleep 0.2; done
grep -q "^control: http://127.0.0.1:$cport" "$work/serve.log" || { echo "not ok 1 - zns serve did not start"; cat "$work/serve.log"; exit 1; }
curl -sf -X POST "http://127.0.0.1:$cport/api/faults" -d '{"zones":[{"nsid":1,"zone":200,"condition":"offline"}]}' >/dev/null ||
  { echo "not ok 1 - zone 200 offline"; exit 1; }

cp "$here/zone-map-check.mjs" "$repo/.cache/npm/zone-map-check.mjs"
mkdir -p "$(dirname "$shot")"
node "$repo/.cache/npm/zone-map-check.mjs" "http://127.0.0.1:$cport/" "$work/map-report.txt" "$work/map-done" "$shot" \
  > "$work/browser.tap" 2>&1 &
browser_pid=$!
for _ in $(seq 1 450); do [ -f "$work/map-done.ready" ] && break; kill -0 "$browser_pid" 2>/dev/null || break; sleep 0.2; done

# Reads (zones 0-3) for as long as the page is checked; writes (16 KiB, zones 8-10, each reset when full) for 20 s.
"$client" nvme "$port" "$nqn" 0 300 Read 4096 1 1 > "$work/reader.log" 2>&1 &
reader_pid=$!
"$client" nvme "$port" "$nqn" 0 20 Write 16384 1 3 > "$work/writer.log" 2>&1
dotnet "$zns_dll" zones > "$work/map-report.txt" 2>&1
touch "$work/map-done"
wait "$browser_pid"; browser_pid=

n=0
while read -r line; do
  case $line in ok\ -*|not\ ok\ -*) n=$((n+1)); echo "${line/ - / $n - }" ;; *) echo "# $line" ;; esac
done < "$work/browser.tap"
echo "# writer: $(tail -1 "$work/writer.log")"
grep -q '^not ok' "$work/browser.tap" && exit 1
[ "$n" -gt 0 ]

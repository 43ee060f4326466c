#!/usr/bin/env bash
# zns top in a real terminal: zns serve on a RAM namespace, `zns top` in a detached tmux session, a small NVMe/TCP
# host (nvmetcp-writer.py) writing, finishing and resetting zones; the pane is captured and checked for the
# figures and the sparkline blocks, then `q` must end zns top. TAP lines "ok N - ...".
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
zns_dll="$repo/src/Zns.Cli/bin/Release/net10.0/zns.dll"
command -v tmux >/dev/null || apt-get install -y tmux >/dev/null 2>&1 || true
if ! command -v tmux >/dev/null || ! command -v python3 >/dev/null; then echo "# skipped: tmux or python3 is missing"; exit 0; fi
[ -f "$zns_dll" ] || dotnet build "$repo/src/Zns.Cli" -c Release -nologo -v quiet >/dev/null
work=$(mktemp -d /tmp/zns-top-tmux.XXXXXX)
session="zns-top-$$"
server_pid=; writer_pid=
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null
  [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
n=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi; }
failed=0

(cd "$work" && exec dotnet "$zns_dll" serve ram:64M,zoned.zone_size=8M --listen 127.0.0.1:0 --control 127.0.0.1:0 >"$work/serve.log" 2>&1) &
server_pid=$!
for _ in $(seq 1 100); do grep -q "press Ctrl-C" "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*serving 1 namespace on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/serve.log")
control=$(sed -n 's/^control: http:\/\/\(127\.0\.0\.1:[0-9]*\) .*/\1/p' "$work/serve.log")
check "zns serve started with a control endpoint" '[ -n "$port" ] && [ -n "$control" ]' || true
[ -n "$port" ] && [ -n "$control" ] || { cat "$work/serve.log" | sed 's/^/# /'; exit 1; }

tmux new-session -d -s "$session" -x 130 -y 50 \
  "env LANG=C.UTF-8 TERM=xterm-256color dotnet '$zns_dll' top --control $control; echo TOP-EXITED \$?; sleep 60"
python3 "$repo/tests/cli/nvmetcp-writer.py" "$port" 5 2048 >"$work/writer.log" 2>&1 &
writer_pid=$!
pane=
for _ in $(seq 1 40); do
  sleep 0.25
  pane=$(tmux capture-pane -p -t "$session")
  grep -Eq '│ write +│ +[1-9][0-9,.]* +│' <<<"$pane" && grep -q '│ full  *│  *1 │' <<<"$pane" && break
done
printf '%s\n' "$pane" > "$work/pane.txt"
check "the header names the endpoint and shows two connections" 'grep -q "zns top  $control  all namespaces" <<<"$pane" && grep -q "connections 2" <<<"$pane"'
check "write IOPS and MB/s are shown while the host writes" 'grep -Eq "│ write +│ +[1-9][0-9,.]* +│ +[0-9]+\.[0-9]+ +│" <<<"$pane"'
check "the write sparkline has a raised block" 'grep -E "│ write " <<<"$pane" | grep -q "[▂▃▄▅▆▇█]"'
check "latency percentiles are shown" 'grep -Eq "│ +p50 │ +p99 │ +p99\.9 │" <<<"$pane" && grep -Eq "│ +[0-9][0-9,.]* │ +[0-9][0-9,.]* │ +[0-9][0-9,.]* │ +[▁▂▃▄▅▆▇█ ]+│" <<<"$pane"'
check "zones per condition with bars (one open, one full)" 'grep -q "│ implicitly open *│ *1 │ █" <<<"$pane" && grep -q "│ full *│ *1 │ █" <<<"$pane" && grep -q "│ empty *│ *6 │ █" <<<"$pane"'
check "resets and finishes and the faults panel are shown" 'grep -q "│ resets " <<<"$pane" && grep -q "│ finishes " <<<"$pane" && grep -q "none armed" <<<"$pane"'
wait "$writer_pid"; writer_pid=
tmux send-keys -t "$session" q
exited=
for _ in $(seq 1 40); do sleep 0.25; tmux capture-pane -p -t "$session" | grep -q "TOP-EXITED 0" && { exited=1; break; }; done
check "q ends zns top with exit status 0" '[ -n "$exited" ]'
out=$(dotnet "$zns_dll" top --once --control 127.0.0.1:1 2>&1); status=$?
check "an endpoint that does not answer is one line naming it, exit 1" '[ "$status" = 1 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q "127.0.0.1:1" <<<"$out"'
[ "$failed" = 0 ] || sed 's/^/# /' "$work/pane.txt"
echo "1..$n"
[ "$failed" = 0 ]

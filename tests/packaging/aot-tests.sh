#!/usr/bin/env bash
# The NativeAOT build of zns passes the same tests as the JIT build: publish it as docs/transports.md says
# (dotnet publish src/Zns.Cli -c Release -r linux-x64 -p:PublishAot=true), check the publish reports no trimming or
# AOT warning, run the whole CLI test project (tests/Zns.Cli.Tests: create, report, serve, the control commands,
# NVMe/TCP I/O through the TestKit initiator, crash recovery, bad arguments) against the native executable through
# ZNS_CLI_PATH, one TAP line per test, and drive 4 KiB writes and reads from the C NVMe/TCP client
# (bench/client/zns-bench-client.c) against it. TAP lines on stdout.
# Needs clang and zlib1g-dev (tests/packaging/install-aot-deps.sh) and the NuGet registry for the ILCompiler package.
# ZNS_AOT_BINARY=PATH tests an executable published before instead of publishing one.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /var/tmp/zns-aot.XXXXXX)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
n=0
tap() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - aot: $2"; else echo "not ok $n - aot: $2"; fi; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if ! command -v clang >/dev/null && ! command -v clang-14 >/dev/null || [ ! -e /usr/include/zlib.h ]; then
    if [ "${CI:-}" = true ]; then
        tap 1 "clang and zlib1g-dev are installed (tests/packaging/install-aot-deps.sh)"
    else
        echo "# skipped: the NativeAOT build needs clang and zlib1g-dev (tests/packaging/install-aot-deps.sh)"
    fi
    exit 0
fi

zns=${ZNS_AOT_BINARY:-}
if [ -z "$zns" ]; then
    start=$(date +%s)
    "$repo/tests/packaging/publish-aot.sh" "$work/aot"
    rc=$?
    echo "# AOT publish took $(($(date +%s) - start)) s"
    [ $rc = 0 ] || grep -E 'error|warning' "$work/aot.log" | sort -u | head -10 | sed 's/^/#   /'
    tap $rc "dotnet publish -r linux-x64 -p:PublishAot=true makes a native zns"
    warnings=$(grep -E '(warning|error) IL[0-9]+' "$work/aot.log" | sort -u)
    [ -z "$warnings" ] || echo "$warnings" | head -20 | sed 's/^/#   /'
    [ -z "$warnings" ]; tap $? "the AOT publish reports no trimming or AOT warning (IL2xxx, IL3xxx)"
    zns=$work/aot/zns
    [ $rc = 0 ] || exit 0
fi
zns=$(readlink -f "$zns")
echo "# $zns: $(($(stat -c %s "$zns") / 1024 / 1024)) MiB"
[ "$(head -c 4 "$zns" | od -An -c | tr -d ' \n')" = 177ELF ] && [ ! -e "$(dirname "$zns")/zns.dll" ] && env -i "$zns" --version >/dev/null
tap $? "zns is one native ELF executable (no zns.dll beside it) that runs with an empty environment"

# The CLI test project, each test against the native executable.
dotnet build "$repo/tests/Zns.Cli.Tests" -c Release -nologo -v quiet >"$work/build.log" 2>&1 \
    || { tail -5 "$work/build.log" | sed 's/^/#   /'; tap 1 "the CLI tests build"; exit 0; }
ZNS_CLI_PATH=$zns dotnet test "$repo/tests/Zns.Cli.Tests" -c Release --no-build --logger "trx;LogFileName=aot.trx" \
    --results-directory "$work/trx" >"$work/test.log" 2>&1
python3 - "$work/trx/aot.trx" "$n" "$work/n" <<'PY' || tap 1 "the CLI tests ran against the native zns (no results)"
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
results = ET.parse(sys.argv[1]).getroot().findall(".//t:UnitTestResult", ns)
n = int(sys.argv[2])
for r in sorted(results, key=lambda r: r.get("testName")):
    n += 1
    name = r.get("testName").replace("Zns.Cli.Tests.", "")
    print(f"{'ok' if r.get('outcome') == 'Passed' else 'not ok'} {n} - aot: {name}")
    if r.get("outcome") != "Passed":
        message = r.find(".//t:Message", ns)
        for line in (message.text if message is not None else "").splitlines()[:6]:
            print(f"#   {line}")
open(sys.argv[3], "w").write(str(n))
sys.exit(0 if results else 1)
PY
[ -f "$work/n" ] && n=$(cat "$work/n")

# A C NVMe/TCP initiator (its own Connect, Property Set of CC.EN, 4 KiB Writes and Reads at QD 8) against the
# native target. The client needs zones of 4096 blocks and 256 of them.
gcc -O2 -pthread -o "$work/client" "$repo/bench/client/zns-bench-client.c" 2>"$work/gcc.log" \
    || { sed 's/^/#   /' "$work/gcc.log"; tap 1 "the C NVMe/TCP client builds"; exit 0; }
(cd "$work" && exec "$zns" serve ram:4G,zoned.zone_size=16M --listen 127.0.0.1:0 --control off >"$work/serve.out" 2>"$work/serve.err") &
server=$!
port=
for _ in $(seq 100); do
    port=$(grep -oE 'serving 1 namespace on 127\.0\.0\.1:[0-9]+' "$work/serve.out" 2>/dev/null | grep -oE '[0-9]+$')
    [ -n "$port" ] && break
    sleep 0.1
done
io_ok() { # kind: the client measured a window with completed I/O and exited 0
    local out
    out=$(timeout 60 "$work/client" nvme "$port" nqn.2026-01.io.zns:subsys 0.2 1 "$1" 4096 8 1 2>&1) || { echo "#   $out"; return 1; }
    echo "# C client $1: $(echo "$out" | grep '^END')"
    echo "$out" | grep -qE '^END [1-9][0-9]* '
}
if [ -n "$port" ]; then
    io_ok Write; tap $? "the C NVMe/TCP client writes 4 KiB blocks to the native zns serve"
    io_ok Read; tap $? "the C NVMe/TCP client reads 4 KiB blocks from the native zns serve"
    kill -TERM "$server"; wait "$server"; rc=$?; server=
    tap $rc "the native zns serve stops with exit 0 on SIGTERM after serving I/O"
else
    sed 's/^/#   /' "$work/serve.err"
    tap 1 "the native zns serve prints its listening line"
fi

#!/usr/bin/env bash
# Start-up time and memory of the JIT build and the NativeAOT build of zns, side by side in one run: publishes both
# (the framework-dependent `zns` the .NET tool runs, and the native one of tests/packaging/publish-aot.sh), then runs
# `dotnet run -c Release --project bench/Zns.Benchmarks -- footprint` on them and prints its table.
# Options after the script go to the footprint mode (--starts 7 --rounds 2 --idle-seconds 2 --load-seconds 4).
# ZNS_AOT_BINARY=PATH uses a native zns published before instead of publishing one (about 3 minutes on 2 cores).
# Needs clang, zlib1g-dev and gcc (tests/packaging/install-aot-deps.sh).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /var/tmp/zns-footprint.XXXXXX)
trap 'rm -rf "$work"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet publish "$repo/src/Zns.Cli" -c Release -o "$work/jit" -nologo -v quiet >"$work/jit.log" 2>&1 \
    || { tail -20 "$work/jit.log" >&2; exit 1; }
aot=${ZNS_AOT_BINARY:-}
if [ -z "$aot" ]; then
    echo "footprint: publishing the NativeAOT zns" >&2
    "$repo/tests/packaging/publish-aot.sh" "$work/aot" || { grep -E 'error|warning' "$work/aot.log" | sort -u | head -20 >&2; exit 1; }
    aot=$work/aot/zns
fi
dotnet build "$repo/bench/Zns.Benchmarks" -c Release -nologo -v quiet >"$work/bench.log" 2>&1 \
    || { tail -20 "$work/bench.log" >&2; exit 1; }
dotnet "$repo/bench/Zns.Benchmarks/bin/Release/net10.0/Zns.Benchmarks.dll" footprint \
    --build "jit=$work/jit/zns" --build "aot=$aot" "$@"

#!/usr/bin/env bash
# Publish the NativeAOT zns into OUTDIR as docs/transports.md says (dotnet publish src/Zns.Cli -c Release -r linux-x64
# -p:PublishAot=true), from a copy of the sources so that the AOT variant of the libraries never lands in the tree's
# bin/ and obj/ (PublishAot on the command line reaches every project). The publish log is OUTDIR.log; exit code
# that of dotnet publish. Used by tests/packaging/aot-tests.sh and bench/footprint/footprint.sh.
set -uo pipefail
[ $# = 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
copy=$(mktemp -d /var/tmp/zns-aot-src.XXXXXX)
trap 'rm -rf "$copy"' EXIT
tar -C "$repo" --exclude=bin --exclude=obj -cf - src Directory.Build.props Directory.Build.targets Directory.Packages.props global.json \
    | tar -C "$copy" -xf -
DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 \
    dotnet publish "$copy/src/Zns.Cli" -c Release -r linux-x64 -p:PublishAot=true -o "$out" -nologo >"$out.log" 2>&1

#!/usr/bin/env bash
# Install what the NativeAOT build of zns needs (tests/packaging/aot-tests.sh, bench/footprint/footprint.sh):
# clang as the native compiler and linker, zlib1g-dev for the runtime's compression, gcc for the C NVMe/TCP client,
# python3 to read the test results.
# Idempotent: exits quickly when everything is already installed.
set -euo pipefail
required=(clang zlib1g-dev gcc python3)
missing=()
for p in "${required[@]}"; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" == installed ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    echo "install-aot-deps: all packages present"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-aot-deps: missing: ${missing[*]}; run as root to install" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-aot-deps: installed ${missing[*]}"

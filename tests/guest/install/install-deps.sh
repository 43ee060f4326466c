#!/usr/bin/env bash
# Install what the Linux-guest test harness (tests/guest/harness/run-guest.sh) needs.
# Idempotent: exits quickly when everything is already installed.
set -euo pipefail

required=(qemu-system-x86 linux-image-amd64 busybox-static kmod cpio iproute2
          nvme-cli fio util-linux netcat-openbsd xz-utils zstd procps btrfs-progs f2fs-tools python3)
optional=(zbd-utils)

# The Debian 13 kernels of the matrix (6.12, newest 7.x), unpacked into a cache; see harness/kernels.sh.
fetch_kernels() {
    [[ ${ZNS_KERNELS:-6.1,6.12,7} == 6.1 ]] && return 0
    "$(dirname "$0")/../harness/kernels.sh" fetch 6.12 7 || { echo "install-deps: fetching the Debian 13 kernels failed" >&2; return 1; }
}

is_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

missing=()
for p in "${required[@]}"; do is_installed "$p" || missing+=("$p"); done
opt_missing=()
for p in "${optional[@]}"; do is_installed "$p" || opt_missing+=("$p"); done

stamp_dir="${XDG_CACHE_HOME:-/var/cache}/zns-guest"
opt_stamp="$stamp_dir/optional-unavailable"
if ((${#missing[@]} == 0)); then
    if ((${#opt_missing[@]} == 0)) || [[ -f $opt_stamp ]]; then
        echo "install-deps: all packages present"
        fetch_kernels
        exit 0
    fi
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing: ${missing[*]} ${opt_missing[*]}; run as root to install" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update"
apt-get update -qq

to_install=("${missing[@]}")
for p in "${opt_missing[@]}"; do
    if apt-cache show "$p" >/dev/null 2>&1; then
        to_install+=("$p")
    else
        echo "install-deps: optional package $p not available, skipping"
        mkdir -p "$stamp_dir" && touch "$opt_stamp"
    fi
done

if ((${#to_install[@]} > 0)); then
    echo "install-deps: installing: ${to_install[*]}"
    apt-get install -y -qq --no-install-recommends "${to_install[@]}"
fi
fetch_kernels
echo "install-deps: done"

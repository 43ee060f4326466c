#!/usr/bin/env bash
# The guest kernel matrix: Debian 12's own 6.1 (installed in /boot by install-deps.sh) and Debian 13's 6.12 and
# newest 7.x, fetched from the Debian mirror's trixie / trixie-backports suites with a private apt configuration
# (download only; nothing of Debian 13 is installed on the host) and unpacked with dpkg -x into a cache.
#
#   kernels.sh fetch [SPEC...]   download and unpack the newest kernel of each SPEC (default: 6.12 7); idempotent
#   kernels.sh path SPEC         print the kernel image to boot for SPEC (6.1, 6.12, 7, or a full version)
#   kernels.sh list              print "SPEC VERSION IMAGE" for every kernel available here
#
# SPEC is a version prefix: "6.1" matches 6.1.x (not 6.12), "7" the newest 7.x. A cached kernel lives in
# $ZNS_KERNEL_CACHE/VER/usr/lib/modules/VER/ with vmlinuz, config and a depmod'ed module tree beside it; run-guest.sh
# bind-mounts that tree over /lib/modules/VER in the guest so that modprobe works there.
set -euo pipefail

CACHE=${ZNS_KERNEL_CACHE:-/var/cache/zns-guest/kernels}
APT_DIR=${ZNS_KERNEL_APT_DIR:-$(dirname "$CACHE")/apt}
MIRROR=${ZNS_KERNEL_MIRROR:-http://deb.debian.org/debian}
SUITES=(trixie trixie-backports)
ARCH=amd64

die() { echo "kernels: $*" >&2; exit 1; }

# "6.1" -> regex matching 6.1.x but not 6.12.x
spec_regex() { local s=${1//./\\.}; echo "^$s([.+-]|$)"; }

apt_opts() {
    echo -o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
        -o "Dir::State=$APT_DIR/state" -o "Dir::Cache=$APT_DIR/cache" -o Debug::NoLocking=1 \
        -o APT::Sandbox::User=root -o "APT::Architecture=$ARCH"
}

apt_update() {
    mkdir -p "$APT_DIR"/state/lists/partial "$APT_DIR"/cache/archives/partial
    local s
    : >"$APT_DIR/sources.list.new"
    for s in "${SUITES[@]}"; do
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $s main" >>"$APT_DIR/sources.list.new"
    done
    mv -f "$APT_DIR/sources.list.new" "$APT_DIR/sources.list"
    # shellcheck disable=SC2046
    apt-get $(apt_opts) -qq update
}

# Newest kernel version of SPEC in the Debian 13 suites, e.g. 7.3.4+deb13-amd64.
newest_remote() {
    local re
    re=$(spec_regex "$1")
    # shellcheck disable=SC2046
    apt-cache $(apt_opts) pkgnames linux-image- 2>/dev/null |
        sed -n "s/^linux-image-\([0-9][^ ]*-$ARCH\)$/\1/p" | grep -E "$re" | grep -v -E -- '-(rt|cloud)-' |
        sort -V | tail -n 1
}

have_pkg() {
    # shellcheck disable=SC2046
    apt-cache $(apt_opts) show "$1" >/dev/null 2>&1
}

fetch_one() {
    local spec=$1 kver root moddir tmp pkgs p deb
    kver=$(newest_remote "$spec")
    [[ -n $kver ]] || die "no linux-image-$spec.* for $ARCH in ${SUITES[*]}"
    root=$CACHE/$kver
    if [[ -f $root/.complete ]]; then
        echo "kernels: $kver present"
        return 0
    fi
    # 7.x is split into linux-binary (vmlinuz), linux-modules and linux-base (config, modules.builtin);
    # 6.12's linux-image holds all of it.
    if have_pkg "linux-binary-$kver"; then
        pkgs=("linux-binary-$kver" "linux-modules-$kver" "linux-base-$kver")
    else
        pkgs=("linux-image-$kver")
    fi
    echo "kernels: fetching ${pkgs[*]}"
    tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
    (cd "$APT_DIR/cache/archives" && apt-get $(apt_opts) -qq download "${pkgs[@]}") ||
        { rm -rf "$tmp"; die "download of ${pkgs[*]} failed"; }
    for p in "${pkgs[@]}"; do
        deb=$(find "$APT_DIR/cache/archives" -maxdepth 1 -name "${p}_*_$ARCH.deb" | sort -V | tail -n 1)
        [[ -n $deb ]] || { rm -rf "$tmp"; die "$p: no .deb after download"; }
        dpkg -x "$deb" "$tmp"
    done
    moddir=$tmp/usr/lib/modules/$kver
    [[ -d $moddir/kernel ]] || { rm -rf "$tmp"; die "$kver: no modules in the packages"; }
    # One layout for every cached kernel: vmlinuz and config beside the modules.
    [[ -f $moddir/vmlinuz ]] || cp "$tmp/boot/vmlinuz-$kver" "$moddir/vmlinuz"
    [[ -f $moddir/config ]] || cp "$tmp/boot/config-$kver" "$moddir/config"
    depmod -b "$tmp/usr" "$kver"
    touch "$tmp/.complete"
    rm -rf "$root"
    mv "$tmp" "$root"
    # Drop the .debs (over 200 MB); the unpacked tree is what is used.
    for p in "${pkgs[@]}"; do rm -f "$APT_DIR/cache/archives/${p}_"*.deb; done
    echo "kernels: $kver ready in $root"
}

# Kernel image for SPEC: a cached Debian 13 kernel, else one in /boot.
image_for() {
    local re v
    re=$(spec_regex "$1")
    v=$(find "$CACHE" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | grep -E "$re" | sort -V |
        while read -r k; do [[ -f $CACHE/$k/.complete ]] && echo "$k"; done | tail -n 1)
    if [[ -n $v ]]; then
        echo "$CACHE/$v/usr/lib/modules/$v/vmlinuz"
        return 0
    fi
    v=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | grep -E "$re" | sort -V | tail -n 1)
    [[ -n $v ]] && { echo "/boot/vmlinuz-$v"; return 0; }
    return 1
}

case ${1:-} in
    fetch)
        shift
        (($#)) || set -- 6.12 7
        [[ $(id -u) -eq 0 ]] || die "fetch needs root"
        mkdir -p "$CACHE"
        todo=()
        for s in "$@"; do
            img=$(image_for "$s" 2>/dev/null) && [[ $img == "$CACHE"/* ]] && echo "kernels: $s present: $img" && continue
            todo+=("$s")
        done
        ((${#todo[@]})) || exit 0
        apt_update
        for s in "${todo[@]}"; do fetch_one "$s"; done
        ;;
    path)
        [[ -n ${2:-} ]] || die "usage: kernels.sh path SPEC"
        image_for "$2" || die "no kernel $2 here (tests/guest/harness/kernels.sh fetch $2, or tests/guest/install/install-deps.sh)"
        ;;
    list)
        for s in 6.1 6.12 7; do
            img=$(image_for "$s" 2>/dev/null) || continue
            v=$(basename "$img"); [[ $v == vmlinuz ]] && v=$(basename "$(dirname "$img")") || v=${v#vmlinuz-}
            echo "$s $v $img"
        done
        ;;
    *) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 2 ;;
esac

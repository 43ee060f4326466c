#!/usr/bin/env bash
# Build a minimal Debian 13 (trixie) root with QEMU from trixie-backports in it, for the tests that need a newer
# QEMU than Debian 12's 7.2 (the vfio-user client, the newest NVMe ZNS emulation as a reference). Nothing of Debian
# 13 is installed on the host: the root is a directory, and tests/guest/harness/qemu-trixie runs its QEMU through the
# root's own dynamic loader. Idempotent: exits at once when the root is complete. Run as root.
#
# environment: ZNS_TRIXIE_ROOT (default /var/cache/zns-guest/trixie-root), ZNS_DEBIAN_MIRROR (default: the
# host's own Debian mirror).
set -euo pipefail

root=${ZNS_TRIXIE_ROOT:-/var/cache/zns-guest/trixie-root}
stamp=$root/.zns-complete

if [[ -f $stamp && -x $root/usr/bin/qemu-system-x86_64 ]]; then
    echo "install-trixie-qemu: $(cat "$stamp") in $root, nothing to do"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-trixie-qemu: run as root" >&2
    exit 1
fi

host_mirror() {
    # The first Debian URI the host's apt uses (deb822 or one-line format).
    local uri
    uri=$(grep -h -E '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
              /etc/apt/sources.list.d/*.list 2>/dev/null |
          grep -o -E 'https?://[^ ]*/debian/?' | grep -v security | head -n 1 || true)
    echo "${uri:-http://deb.debian.org/debian}"
}
mirror=${ZNS_DEBIAN_MIRROR:-$(host_mirror)}
mirror=${mirror%/}

if ! command -v debootstrap >/dev/null; then
    echo "install-trixie-qemu: apt-get install debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

tmp=$root.build
rm -rf "$tmp"
mkdir -p "$(dirname "$root")"
echo "install-trixie-qemu: debootstrap trixie from $mirror"
debootstrap --variant=minbase trixie "$tmp" "$mirror" >"$tmp.log" 2>&1 ||
    { tail -n 20 "$tmp.log" >&2; echo "install-trixie-qemu: debootstrap failed" >&2; exit 1; }

echo "deb $mirror trixie-backports main" >"$tmp/etc/apt/sources.list.d/backports.list"
in_root() { chroot "$tmp" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }
mount -t proc proc "$tmp/proc"
trap 'umount "$tmp/proc" 2>/dev/null || true' EXIT
echo "install-trixie-qemu: apt-get install -t trixie-backports qemu-system-x86"
in_root apt-get update -qq >>"$tmp.log" 2>&1
in_root apt-get install -y -qq --no-install-recommends -t trixie-backports qemu-system-x86 >>"$tmp.log" 2>&1 ||
    { tail -n 20 "$tmp.log" >&2; echo "install-trixie-qemu: apt-get install failed" >&2; exit 1; }
in_root apt-get clean
umount "$tmp/proc"
trap - EXIT

version=$(in_root dpkg-query -W -f='${Version}' qemu-system-x86)
echo "qemu-system-x86 $version" >"$tmp/.zns-complete"
rm -rf "$root"
mv "$tmp" "$root"
rm -f "$tmp.log"
echo "install-trixie-qemu: qemu-system-x86 $version in $root"

#!/usr/bin/env bash
# Real-kernel tests of NVMe in-band authentication (DH-HMAC-CHAP): zns serves with per-host keys made by
# `nvme gen-dhchap-key`, a Linux guest with CONFIG_NVME_HOST_AUTH (Debian 13's 6.12 from the kernel matrix; Debian
# 12's 6.1 cannot authenticate) runs `nvme connect --dhchap-secret` with the right, a wrong and no key, bidirectionally
# with --dhchap-ctrl-secret, and with three hosts whose allowed hash/DH group force SHA-256/ffdhe2048,
# SHA-384/ffdhe3072 and SHA-512/null. Prints TAP lines ("ok N - ..." / "not ok N - ...").
#
#   auth-tests.sh [FIRST_TEST_NUMBER]     environment: ZNS_AUTH_KERNEL (kernel SPEC; default the first of
#   ZNS_KERNELS other than 6.1, i.e. 6.12)
set -uo pipefail
guest=$(cd "$(dirname "$0")/.." && pwd)
first=${1:-1}
n=$((first - 1))
# The first kernel of the matrix that can authenticate (Debian 12's 6.1 lacks CONFIG_NVME_HOST_AUTH).
kernel=${ZNS_AUTH_KERNEL:-}
if [ -z "$kernel" ]; then
  IFS=, read -r -a matrix <<<"${ZNS_KERNELS:-6.1,6.12,7}"
  for k in "${matrix[@]}"; do [ "$k" != 6.1 ] && { kernel=$k; break; }; done
fi
if [ -z "$kernel" ]; then
  echo "# skipped: ZNS_KERNELS=${ZNS_KERNELS:-} has no kernel with CONFIG_NVME_HOST_AUTH (6.12 or 7)"
  exit 0
fi
work=$(mktemp -d /var/tmp/zns-auth-tests.XXXXXX)
for l in tap server; do source "$guest/lib/$l.sh"; done
cleanup() { stop_server 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if ! "$guest/harness/kernels.sh" path "$kernel" >/dev/null 2>&1; then
  tap 1 "no Linux $kernel guest kernel for the authentication tests (tests/guest/install/install-deps.sh fetches it)"
  exit 0
fi

port=$(( 20000 + RANDOM % 20000 ))
nqn=nqn.2026-01.io.zns:subsys
host_a=nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000a1
host_b=nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000b2
host_c=nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000c3
key_a=$(nvme gen-dhchap-key -m 1 -n "$host_a")
ctrl_a=$(nvme gen-dhchap-key -m 0 -l 32)
wrong=$(nvme gen-dhchap-key -m 1 -n "$host_a")
key_b=$(nvme gen-dhchap-key -m 2 -l 48 -n "$host_b")
key_c=$(nvme gen-dhchap-key -m 3 -l 64 -n "$host_c")
ctrl_c=$(nvme gen-dhchap-key -m 0 -l 64)

# Host A on the command line, hosts B and C in a keys file only its owner may read.
keys="$work/dhchap-keys"
( umask 077; printf '# host NQN, host key, controller key, allowed hashes and DH groups\n%s %s hash=sha384 dhgroup=ffdhe3072\n%s %s %s hash=sha512 dhgroup=null\n' \
    "$host_b" "$key_b" "$host_c" "$key_c" "$ctrl_c" >"$keys" )
mkdir -p "$work/share"
server_dir=$work
if ! start_server ram:1G --ephemeral --listen "127.0.0.1:$port" --control off \
   --allow-host "$host_a" --dhchap-key "$key_a" --dhchap-ctrl-key "$ctrl_a" --dhchap-hash sha256 --dhchap-dhgroup ffdhe2048 \
   --dhchap-keys "$keys"; then
  tap 1 "zns serve with DH-HMAC-CHAP keys did not start"; exit 0
fi

"$guest/harness/run-guest.sh" --kernel-version "$kernel" -t 600 -w "$work/share" --tap-name authentication \
  -e "AUTH_KEY_A=$key_a" -e "AUTH_CTRL_A=$ctrl_a" -e "AUTH_WRONG=$wrong" -e "AUTH_KEY_B=$key_b" -e "AUTH_KEY_C=$key_c" -e "AUTH_CTRL_C=$ctrl_c" \
  "$guest/in-guest/auth-guest.sh" "$port" "$nqn" "$host_a" "$host_b" "$host_c" "$first" | tee "$work/guest.tap"
n=$(( n + $(tap_count "$work/guest.tap") ))

# The target's side: one warning per failed attempt naming host and address, and no secret anywhere in the log.
grep -q "Authentication of host $host_a from 127.0.0.1:[0-9]* failed on queue 0" "$work/serve.log"; rc=$?
tap $rc "zns logs the failed attempts with host NQN and address"; [ $rc = 0 ] || sed 's/^/# /' "$work/serve.log" | tail -20
grep -q "Host $host_a from 127.0.0.1:[0-9]* authenticated on queue 0 (sha256, DH group ffdhe2048, re-authentication)" "$work/serve.log"
tap $? "zns logs the host's re-authentication"
leak=0
for k in "$key_a" "$ctrl_a" "$wrong" "$key_b" "$key_c" "$ctrl_c"; do
  body=${k#DHHC-1:??:}; body=${body%:}
  grep -q -F "${body:0:24}" "$work/serve.log" && leak=1
done
tap $leak "no key appears in the zns log"
stop_server 2>/dev/null

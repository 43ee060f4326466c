# shellcheck shell=bash
# Attaching zns in a guest script. TRANSPORT=tcp (the default): the kernel's nvme-tcp connects to zns serve at
# 10.0.2.2:PORT, subsystem NQN. TRANSPORT=pcie: zns is a PCIe NVMe controller (vfio-user, run-guest.sh's QEMU
# device) that nvme-pci binds at boot.
#   connect [OPTIONS]   tcp: nvme connect with OPTIONS (e.g. -g -G, --hostnqn=...), its messages as comments;
#                       pcie: loads nvme-pci
#   disconnect          tcp: nvme disconnect of NQN; pcie: nothing
#   ns_dev NSID         the block device of namespace NSID of NQN (any subsystem if NQN is unset), waiting up to
#                       20 s for it: with native multipath the non-hidden head disk (the per-path disks nvmeXcYnZ
#                       are hidden and have no /dev node). By the disk's nsid attribute, not its name: kernels that
#                       scan namespaces in parallel may name nsid 2 nXn1.
connect() {
    if [ "${TRANSPORT:-tcp}" = pcie ]; then modprobe nvme; return; fi
    local out rc
    out=$(nvme connect -t tcp -a 10.0.2.2 -s "$PORT" -n "$NQN" "$@" 2>&1 >/dev/null); rc=$?
    [ -z "$out" ] || echo "$out" | sed 's/^/# nvme connect: /'
    return $rc
}
disconnect() {
    [ "${TRANSPORT:-tcp}" = pcie ] && return 0
    nvme disconnect -n "$NQN" >/dev/null 2>&1
}
ns_dev() {
    local nsid=$1 deadline=$((SECONDS + 20)) b v
    # read, not cat or grep: a process costs 0.1-0.3 s under TCG.
    while [ $SECONDS -lt $deadline ]; do
        for b in /sys/block/nvme*n*; do
            [ -e "$b" ] || continue
            if [ -r "$b/nsid" ]; then read -r v <"$b/nsid"; [ "$v" = "$nsid" ] || continue; else [[ $b == *n"$nsid" ]] || continue; fi
            v=0; [ -r "$b/hidden" ] && read -r v <"$b/hidden"
            [ "$v" = 0 ] || continue
            if [ -n "${NQN:-}" ]; then
                v=; { read -r v <"$b/device/subsysnqn"; } 2>/dev/null
                if [ "$v" != "$NQN" ]; then v=; { read -r v <"$b/device/device/subsysnqn"; } 2>/dev/null; fi
                [ "$v" = "$NQN" ] || continue
            fi
            [ -b "/dev/${b##*/}" ] && { echo "/dev/${b##*/}"; return 0; }
        done
        # read -t as the sleep: a sleep process costs 0.1-0.3 s under TCG.
        read -r -t 0.2 <> <(:) || true
    done
    return 1
}

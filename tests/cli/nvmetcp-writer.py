#!/usr/bin/env python3
"""A small NVMe/TCP host for the zns top test: connects an admin and an I/O queue to 127.0.0.1:PORT, enables the
controller, then writes one block at a time to zone 0 for SECONDS seconds, and finishes zone 1 and resets zone 2's
neighbour (zone 0 at the end), so IOPS, zone conditions and resets move. Usage: nvmetcp-writer.py PORT SECONDS"""
import socket, struct, sys, time

SUBNQN = b"nqn.2026-01.io.zns:subsys"
HOSTNQN = b"nqn.2014-08.org.nvmexpress:uuid:7b0c6a8e-0000-4000-8000-0000000070f0"
HOSTID = bytes.fromhex("7b0c6a8e000040008000000000007" + "0f0")

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise EOFError("connection closed")
        b += chunk
    return b

def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    icreq = struct.pack("<BBBBI", 0x00, 0, 128, 0, 128) + struct.pack("<HBBI", 0, 0, 0, 0) + bytes(128 - 16)
    s.sendall(icreq)
    recv_exact(s, 128)
    return s

cid = 0
def submit(s, sqe, data=b""):
    """sqe: 64 bytes without CID/SGL; in-capsule data. Returns (status, dw0)."""
    global cid
    cid = (cid + 1) & 0xFFFF
    sqe = bytearray(sqe)
    sqe[1] = 0x40  # PSDT: SGL
    struct.pack_into("<H", sqe, 2, cid)
    if data:
        struct.pack_into("<QI", sqe, 24, 0, len(data)); sqe[39] = 0x01  # data block, offset subtype
    else:
        struct.pack_into("<QI", sqe, 24, 0, 0); sqe[39] = 0x5A          # transport data block
    hlen = 72
    s.sendall(struct.pack("<BBBBI", 0x04, 0, hlen, hlen if data else 0, hlen + len(data)) + bytes(sqe) + data)
    while True:
        hdr = recv_exact(s, 8)
        ptype, _, _, _, plen = struct.unpack("<BBBBI", hdr)
        body = recv_exact(s, plen - 8)
        if ptype == 0x05:
            dw0, = struct.unpack_from("<I", body, 0)
            status, = struct.unpack_from("<H", body, 14)
            return status >> 1, dw0

def fabrics_connect(s, qid, cntlid):
    sqe = bytearray(64); sqe[0] = 0x7F; sqe[4] = 0x01
    struct.pack_into("<HHH", sqe, 40, 0, qid, 31)
    data = bytearray(1024); data[0:16] = HOSTID; struct.pack_into("<H", data, 16, cntlid)
    data[256:256 + len(SUBNQN)] = SUBNQN; data[512:512 + len(HOSTNQN)] = HOSTNQN
    status, dw0 = submit(s, sqe, bytes(data))
    assert status == 0, f"connect qid {qid}: status {status:#x}"
    return dw0 & 0xFFFF

def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    admin = connect(port)
    cntlid = fabrics_connect(admin, 0, 0xFFFF)
    sqe = bytearray(64); sqe[0] = 0x7F; sqe[4] = 0x00
    struct.pack_into("<I", sqe, 44, 0x14); struct.pack_into("<Q", sqe, 48, 0x00460061)
    assert submit(admin, sqe)[0] == 0, "property set CC"
    io = connect(port)
    fabrics_connect(io, 1, cntlid)
    def io_cmd(opcode, slba, nlb=0, cdw13=0, data=b""):
        sqe = bytearray(64); sqe[0] = opcode; struct.pack_into("<I", sqe, 4, 1)
        struct.pack_into("<QII", sqe, 40, slba, nlb, cdw13)
        return submit(io, sqe, data)[0]
    block = bytes(4096)
    zone_lbas = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
    assert io_cmd(0x79, zone_lbas, cdw13=0x02) == 0, "finish zone 1"
    lba, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        assert io_cmd(0x01, lba, 0, data=block) == 0, f"write {lba}"
        lba += 1
        if lba == zone_lbas:
            assert io_cmd(0x79, 0, cdw13=0x04) == 0, "reset zone 0"
            lba = 0
        time.sleep(0.002)
    print(f"wrote up to lba {lba}", flush=True)

main()

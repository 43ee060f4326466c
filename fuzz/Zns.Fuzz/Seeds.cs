using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Protocol;

namespace Zns.Fuzz;

/// <summary>Hand-made starting inputs for each target (<c>Zns.Fuzz seed DIR</c> writes them as DIR/NAME/seed-*).</summary>
public static class Seeds
{
    /// <summary>Seeds by target name.</summary>
    public static IEnumerable<(string Target, string Name, byte[] Bytes)> All()
    {
        foreach (var (name, bytes) in Pdus())
            yield return (PduParserTarget.Name, name, bytes);
        foreach (var (name, bytes) in Commands())
            yield return (CommandDispatchTarget.Name, name, bytes);
        foreach (var (name, bytes) in StateFiles())
            yield return (ZoneStateLoaderTarget.Name, name, bytes);
        foreach (var (name, bytes) in DhchapExchanges())
            yield return (DhchapExchangeTarget.Name, name, bytes);
        foreach (var (name, bytes) in VfioUserMessages())
            yield return (VfioUserMessageTarget.Name, name, bytes);
    }

    /// <summary>vfio-user streams: negotiation and queries, then a controller bring-up over DMA-mapped memory.</summary>
    private static IEnumerable<(string, byte[])> VfioUserMessages()
    {
        static byte[] Message(ushort id, ushort command, byte[] payload, uint error = 0, uint flags = 0)
        {
            byte[] m = new byte[16 + payload.Length];
            BinaryPrimitives.WriteUInt16LittleEndian(m, id);
            BinaryPrimitives.WriteUInt16LittleEndian(m.AsSpan(2), command);
            BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), (uint)m.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), flags);
            BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(12), error);
            payload.CopyTo(m.AsSpan(16));
            return m;
        }
        static byte[] Words(params ulong[] fields)
        {
            // (value, size) pairs flattened: size in the low byte of every second entry.
            var b = new List<byte>();
            for (int i = 0; i < fields.Length; i += 2)
            {
                byte[] w = BitConverter.GetBytes(fields[i]);
                b.AddRange(w.AsSpan(0, (int)fields[i + 1]).ToArray());
            }
            return [.. b];
        }
        static byte[] Write(ushort id, uint region, ulong offset, uint value) => Message(id, 10, Words(offset, 8, region, 4, 4, 4, value, 4));
        byte[] version = Message(1, 1, [0, 0, 0, 0, .. "{\"capabilities\":{\"max_msg_fds\":16}}"u8, 0]);
        byte[] info = Message(2, 4, Words(16, 4, 0, 4, 0, 4, 0, 4));
        byte[] region = Message(3, 5, Words(32, 4, 0, 4, 7, 4, 0, 4, 0, 8, 0, 8));
        byte[] irq = Message(4, 7, Words(16, 4, 0, 4, 2, 4, 0, 4));
        byte[] readCfg = Message(5, 9, Words(0, 8, 7, 4, 64, 4));
        yield return ("negotiate-query", [.. version, .. info, .. region, .. irq, .. readCfg]);
        byte[] map = Message(6, 2, Words(32, 4, 3, 4, 0, 8, 0x100000, 8, 0x100000, 8), error: 1);
        byte[] irqs = Message(7, 8, Words(20, 4, 4 | 32, 4, 2, 4, 0, 4, 1, 4), error: 1);
        byte[] aqa = Write(8, 0, 0x24, 0x001F001F);
        byte[] asq = Write(9, 0, 0x28, 0x100000);
        byte[] asqHi = Write(10, 0, 0x2C, 0);
        byte[] acq = Write(11, 0, 0x30, 0x101000);
        byte[] acqHi = Write(12, 0, 0x34, 0);
        byte[] cc = Write(13, 0, 0x14, 0x00460061);
        byte[] doorbell = Write(14, 0, 0x1000, 1);
        byte[] csts = Message(15, 9, Words(0x1C, 8, 0, 4, 4, 4));
        byte[] unmap = Message(16, 3, Words(24, 4, 0, 4, 0x100000, 8, 0x100000, 8));
        byte[] reset = Message(17, 13, []);
        yield return ("bring-up", [.. version, .. map, .. irqs, .. aqa, .. asq, .. asqHi, .. acq, .. acqHi, .. cc, .. doorbell, .. csts, .. unmap, .. reset]);
        yield return ("bad-framing", [.. version, .. Message(2, 9, Words(0, 8, 0, 4, 4, 4))[..10], 0xFF, 0xFF]);
    }

    private static IEnumerable<(string, byte[])> Pdus()
    {
        var icReq = new byte[128];
        PduWriter.WriteIcReq(icReq, DigestOptions.Header | DigestOptions.Data);
        yield return ("icreq", icReq);
        var icResp = new byte[128];
        PduWriter.WriteIcResp(icResp, DigestOptions.None, 128 * 1024);
        yield return ("icresp", icResp);

        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(IoOpcode.Write);
        sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
        sqe.SetCommandId(7);
        sqe.SetNamespaceId(1);
        sqe.SetSgl(0, 8, NvmeTcp.SglInCapsuleData);
        byte[] data = [1, 2, 3, 4, 5, 6, 7, 8];
        foreach (var digests in (DigestOptions[])[DigestOptions.None, DigestOptions.Header, DigestOptions.Data, DigestOptions.Header | DigestOptions.Data])
        {
            var capsule = new byte[PduWriter.CapsuleCmdLength(data.Length, digests)];
            PduWriter.WriteCapsuleCmd(capsule, sqe, data, digests);
            yield return ($"capsule-data-dgst{(int)digests}", capsule);
            var bare = new byte[PduWriter.CapsuleCmdLength(0, digests)];
            PduWriter.WriteCapsuleCmd(bare, sqe, default, digests);
            yield return ($"capsule-dgst{(int)digests}", bare);
            var h2c = new byte[PduWriter.DataPduLength(data.Length, digests)];
            PduWriter.WriteDataPdu(h2c, PduType.H2CData, 7, 0, 0, data, true, digests);
            yield return ($"h2cdata-dgst{(int)digests}", h2c);
        }
        var c2h = new byte[PduWriter.DataPduLength(data.Length, DigestOptions.None)];
        PduWriter.WriteDataPdu(c2h, PduType.C2HData, 7, 0, 0, data, true, DigestOptions.None);
        yield return ("c2hdata", c2h);
        var r2t = new byte[PduWriter.R2TLength(DigestOptions.None)];
        PduWriter.WriteR2T(r2t, 7, 1, 0, 4096, DigestOptions.None);
        yield return ("r2t", r2t);
        var resp = new byte[PduWriter.CapsuleRespLength(DigestOptions.Header)];
        PduWriter.WriteCapsuleResp(resp, new CompletionQueueEntry { CommandId = 7, Status = NvmeStatus.ZoneInvalidWrite.WithDnr() }, DigestOptions.Header);
        yield return ("capsuleresp-hdgst", resp);
        var term = new byte[PduWriter.TermReqLength(8)];
        PduWriter.WriteTermReq(term, PduType.H2CTermReq, FatalErrorStatus.InvalidHeaderField, 2, icReq.AsSpan(0, 8));
        yield return ("h2ctermreq", term);
        // A padded capsule (PDO past the header) and two pipelined PDUs.
        var padded = new byte[72 + 8 + 8];
        sqe.Bytes.CopyTo(padded.AsSpan(8));
        PduWriter.WriteCommonHeader(padded, PduType.CapsuleCmd, PduFlags.None, 72, 80, padded.Length);
        data.CopyTo(padded.AsSpan(80));
        yield return ("capsule-padded", padded);
        yield return ("icreq-then-capsule", [.. icReq, .. padded]);
    }

    // Compact command records: control, opcode, NSID selector, CDW10..13.
    private static byte[] Compact(byte control, byte opcode, byte nsid, uint cdw10 = 0, uint cdw11 = 0, uint cdw12 = 0, uint cdw13 = 0)
    {
        var r = new byte[19];
        r[0] = (byte)(control | 8);
        r[1] = opcode;
        r[2] = nsid;
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(3), cdw10);
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(7), cdw11);
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(11), cdw12);
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(15), cdw13);
        return r;
    }

    private const byte Io = 1, Implied = 2;

    private static IEnumerable<(string, byte[])> Commands()
    {
        // 1 block write at zone 0, 2-block append to zone 1 (128 LBAs per zone), report, read back.
        yield return ("write-append-report-read", [
            .. Compact(Io | Implied, IoOpcode.Write, 1, 0, 0, 0),
            .. Compact(Io | Implied, IoOpcode.ZoneAppend, 1, 128, 0, 1),
            .. Compact(Io | Implied, IoOpcode.ZoneManagementReceive, 1, 0, 0, 255, 0),
            .. Compact(Io | Implied, IoOpcode.Read, 1, 0, 0, 0),
        ]);
        // Open zones past the limits, close, finish, reset all; then descriptor extension.
        yield return ("zone-management", [
            .. Compact(Io, IoOpcode.ZoneManagementSend, 1, 0, 0, 0, 3),
            .. Compact(Io, IoOpcode.ZoneManagementSend, 1, 128, 0, 0, 3),
            .. Compact(Io, IoOpcode.ZoneManagementSend, 1, 256, 0, 0, 3),
            .. Compact(Io, IoOpcode.ZoneManagementSend, 1, 0, 0, 0, 1),
            .. Compact(Io, IoOpcode.ZoneManagementSend, 1, 128, 0, 0, 2),
            .. Compact(Io | Implied | 0x10, IoOpcode.ZoneManagementSend, 1, 256, 0, 0, 0x10),
            .. new byte[64],
            .. Compact(Io, IoOpcode.ZoneManagementSend, 1, 0, 0, 0, 4 | 1 << 8),
        ]);
        // Writes filling a zone to capacity (96 LBAs of 48 KiB), then one more.
        yield return ("fill-zone", [
            .. Compact(Io | Implied, IoOpcode.Write, 1, 0, 0, 31),
            .. Compact(Io | Implied, IoOpcode.Write, 1, 32, 0, 31),
            .. Compact(Io | Implied, IoOpcode.Write, 1, 64, 0, 31),
            .. Compact(Io | Implied, IoOpcode.Write, 1, 96, 0, 0),
            .. Compact(Io | Implied, IoOpcode.WriteZeroes, 1, 128, 0, 3),
        ]);
        // Conventional namespace, DSM deallocate, flush all, bad NSID, unknown opcode.
        var range = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(range.AsSpan(4), 1);
        yield return ("conventional-dsm-flush", [
            .. Compact(Io | Implied, IoOpcode.Write, 2, 3, 0, 0),
            .. Compact(Io | Implied | 0x10, IoOpcode.DatasetManagement, 2, 0, 4, 0), .. range,
            .. Compact(Io, IoOpcode.Flush, 3),
            .. Compact(Io | Implied, IoOpcode.Read, 9, 0, 0, 0),
            .. Compact(Io, 0x55, 1),
        ]);
        // Admin: identify controller / namespace / zoned, log pages, features, AER, keep alive.
        yield return ("admin", [
            .. Compact(Implied, AdminOpcode.Identify, 0, 1),
            .. Compact(Implied, AdminOpcode.Identify, 1, 0),
            .. Compact(Implied, AdminOpcode.Identify, 1, 5, 2u << 24),
            .. Compact(Implied, AdminOpcode.GetLogPage, 0, 0x05 | 1023u << 16, 0, 0, 0),
            .. Compact(Implied, AdminOpcode.GetLogPage, 0, 0x02 | 127u << 16),
            .. Compact(0, AdminOpcode.SetFeatures, 0, 0x07, 0x00010001),
            .. Compact(0, AdminOpcode.SetFeatures, 0, 0x0B, 0x100),
            .. Compact(0, AdminOpcode.AsyncEventRequest, 0),
            .. Compact(0, AdminOpcode.KeepAlive, 0),
            .. Compact(Implied, AdminOpcode.GetFeatures, 0, 0x0F),
        ]);
        // Fabrics on both queues: property get, a second Connect, controller reset then I/O.
        yield return ("fabrics", [
            .. Compact(0, AdminOpcode.Fabrics, FabricsCommandType.PropertyGet, 1, 0),
            .. Compact(Implied, AdminOpcode.Fabrics, FabricsCommandType.Connect, 0, 31),
            .. Compact(Io, AdminOpcode.Fabrics, FabricsCommandType.PropertyGet, 1, 0),
            .. Compact(0, AdminOpcode.Fabrics, FabricsCommandType.PropertySet, 0, 0x14, 0x00460060),
            .. Compact(Io | Implied, IoOpcode.Write, 1, 0, 0, 0),
            .. Compact(0, AdminOpcode.Fabrics, FabricsCommandType.PropertySet, 0, 0x14, 0x00464061),
        ]);
        // One raw SQE: a write with a wrong data length.
        var raw = new byte[1 + 64 + 2];
        raw[0] = Io | 4; // explicit dword count follows
        raw[1] = IoOpcode.Write;
        raw[2] = 0x40;  // FLAGS: SGL
        raw[3] = 0x2A;  // CID
        raw[5] = 1;     // NSID
        BinaryPrimitives.WriteUInt16LittleEndian(raw.AsSpan(65), 3);
        yield return ("raw-write-bad-length", raw);
    }

    private static IEnumerable<(string, byte[])> StateFiles()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"zns-seed-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "ns");
            File.WriteAllBytes(path, new byte[1 << 20]);
            using (var ns = ZonedNamespace.OpenFile(path, CommandDispatchTarget.ZonedOptions with { DescriptorExtensionSize = 0 }))
            {
                ns.Write(0, new byte[512]);
                ns.ZoneManagementSend(128, ZoneSendAction.Open, false);
                ns.ZoneManagementSend(256, ZoneSendAction.Finish, false);
                ns.Detach();
            }
            byte[] state = File.ReadAllBytes(path + ".zns");
            yield return ("valid", state);
            yield return ("one-slot", state[..(state.Length / 2)]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>DH-HMAC-CHAP record sequences: a full exchange with null and ffdhe2048, a corrupt reply, out-of-order messages.</summary>
    private static IEnumerable<(string, byte[])> DhchapExchanges()
    {
        static byte[] Record(byte kind, ReadOnlySpan<byte> payload, int? length = null)
        {
            byte[] r = new byte[3 + payload.Length];
            r[0] = kind;
            BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(1), (ushort)(length ?? payload.Length));
            payload.CopyTo(r.AsSpan(3));
            return r;
        }
        static byte[] Negotiate(byte group)
        {
            byte[] n = new byte[72];
            Zns.Target.Fabrics.Auth.NegotiateMessage.Write(n, 3, 0, [1, 2, 3], [group]);
            return n;
        }
        byte[] receive = Record(1, [], 4096);
        byte[] get = Record(2, []);
        foreach (byte group in (byte[])[0, 1])
        {
            yield return ($"full-group{group}", [.. get, .. Record(0, Negotiate(group)), .. receive, .. Record(3, []), .. receive, .. get]);
        }
        yield return ("corrupt-reply", [.. Record(0, Negotiate(0)), .. receive, .. Record(7, [5]), .. receive, .. get]);
        yield return ("reply-first", [.. Record(0, new byte[80]), .. receive, .. get]);
        yield return ("reauth", [.. Record(0, Negotiate(0)), .. receive, .. Record(3, []), .. receive, .. Record(0, Negotiate(0)), .. get, .. receive, .. Record(3, []), .. receive, .. get]);
    }
}

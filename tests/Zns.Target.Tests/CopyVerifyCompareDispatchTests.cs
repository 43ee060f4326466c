using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests;

/// <summary>Copy, Verify, Compare and ZRWA commands through I/O dispatch: field decoding, data length, CQE DW0.</summary>
public class CopyVerifyCompareDispatchTests
{
    private const int Bs = 4096;

    private static (TestHost Host, IQueueHandler Io) Connected(NamespaceOptions options)
    {
        var host = new TestHost(null, [options]);
        var (_, _, io, _, _) = host.ConnectAll();
        return (host, io);
    }

    private static SubmissionQueueEntry CopyCommand(ulong sdlba, int ranges, int format = 0)
    {
        SubmissionQueueEntry sqe = Sqe.Create(IoOpcode.Copy, 1);
        sqe.SetCdw10_11(sdlba);
        sqe.SetCdw(12, (uint)(ranges - 1) | ((uint)format << 8));
        return sqe;
    }

    private static byte[] Ranges(params (ulong Slba, int Blocks)[] ranges)
    {
        var d = new byte[ranges.Length * 32];
        for (int i = 0; i < ranges.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(i * 32 + 8), ranges[i].Slba);
            BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(i * 32 + 16), (ushort)(ranges[i].Blocks - 1));
        }
        return d;
    }

    [Fact]
    public void CopyReturnsTheFailingRangeInDw0()
    {
        var (host, io) = Connected(new NamespaceOptions { ZoneSize = 1L << 20 });
        using (host)
        {
            ulong zone = host.Namespaces[0].Geometry.ZoneSizeLbas;
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 4), new byte[4 * Bs]));
            var ok = Run(io, CopyCommand(zone, 2), Ranges((0, 2), (2, 2)));
            Ok(ok);
            Assert.Equal(0ul, ok.Result);
            Assert.Equal(zone + 4, host.Namespaces[0].GetZone(1).WritePointer);
            var bad = Run(io, CopyCommand(zone + 4, 3), Ranges((0, 1), (0, 1), (zone * 1000, 1)));
            Fails(bad, NvmeStatus.LbaOutOfRange);
            Assert.Equal(2ul, bad.Result);
            Fails(Run(io, CopyCommand(zone, 1, format: 1), Ranges((0, 1))), NvmeStatus.InvalidFormat);
        }
    }

    [Fact]
    public void VerifyAndCompare()
    {
        var (host, io) = Connected(new NamespaceOptions { ZoneSize = 1L << 20 });
        using (host)
        {
            var data = Enumerable.Repeat((byte)0x42, 2 * Bs).ToArray();
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 2), data));
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Compare, 1, 0, 2), data));
            data[^1] = 0;
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.Compare, 1, 0, 2), data), NvmeStatus.CompareFailure);
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.Compare, 1, 0, 2), new byte[Bs]), NvmeStatus.DataSglLengthInvalid);
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Verify, 1, 250, 16)));
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.Verify, 1, 0, 129)), NvmeStatus.InvalidField);   // > VSL 512 KiB
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.Verify, 1, 0, 1), new byte[Bs]), NvmeStatus.DataSglLengthInvalid);
        }
    }

    [Fact]
    public void ZrwaOpenWriteAndFlush()
    {
        var (host, io) = Connected(new NamespaceOptions { ZoneSize = 1L << 20, Zrwas = 8 * Bs, NumZrwa = 2 });
        using (host)
        {
            SubmissionQueueEntry open = Sqe.ZoneSend(1, 0, ZoneSendAction.Open);
            open.SetCdw(13, open.Cdw13 | 1u << 9);                                       // ZSASO: allocate a ZRWA
            Ok(Run(io, open));
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 5, 1), new byte[Bs]));
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.ZoneAppend, 1, 0, 1), new byte[Bs]), NvmeStatus.InvalidZoneOperation);
            Ok(Run(io, Sqe.ZoneSend(1, 5, ZoneSendAction.FlushZrwa)));                        // commits LBAs 0..5
            Assert.Equal(6ul, host.Namespaces[0].GetZone(0).WritePointer);
        }
    }
}

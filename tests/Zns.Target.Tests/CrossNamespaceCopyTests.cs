using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests;

/// <summary>
/// Copy source range formats 2h/3h (a source NSID per range) and Host Behavior Support (FID 16h), which enables
/// them through CDFE, as QEMU 11.1 implements them (nvme_copy, nvme_do_copy, nvme_set_feature).
/// </summary>
public sealed class CrossNamespaceCopyTests
{
    private const int Bs = 4096;
    private const byte HostBehavior = 0x16;

    // nsid 1: zoned, 1 MiB zones; nsid 2: conventional, 4 KiB blocks; nsid 3: conventional, 512-byte blocks.
    private static (TestHost Host, IQueueHandler Admin, IQueueHandler Io) Connected()
    {
        var host = new TestHost(null,
            new NamespaceOptions { ZoneSize = 1L << 20 },
            new NamespaceOptions { Zoned = false },
            new NamespaceOptions { Zoned = false, LogicalBlockSize = 512 });
        var (admin, _, io, _, _) = host.ConnectAll();
        return (host, admin, io);
    }

    private static SubmissionQueueEntry CopyCommand(ulong sdlba, int ranges, int format)
    {
        SubmissionQueueEntry sqe = Sqe.Create(IoOpcode.Copy, 1);
        sqe.SetCdw10_11(sdlba);
        sqe.SetCdw(12, (uint)(ranges - 1) | ((uint)format << 8));
        return sqe;
    }

    private static byte[] Ranges(params (uint Snsid, ulong Slba, int Blocks)[] ranges)
    {
        var d = new byte[ranges.Length * 32];
        for (int i = 0; i < ranges.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(i * 32), ranges[i].Snsid);
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(i * 32 + 8), ranges[i].Slba);
            BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(i * 32 + 16), (ushort)(ranges[i].Blocks - 1));
        }
        return d;
    }

    private static byte[] Cdfe(ushort bits)
    {
        var hbs = new byte[512];
        BinaryPrimitives.WriteUInt16LittleEndian(hbs.AsSpan(4), bits);
        return hbs;
    }

    private static SubmissionQueueEntry ReadOf(uint nsid, ulong slba, uint blocks) => Sqe.ReadWrite(IoOpcode.Read, nsid, slba, blocks);

    [Fact]
    public void Formats2And3_AreInvalidField_UntilHostBehaviorSupportEnablesThem()
    {
        var (host, admin, io) = Connected();
        using (host)
        {
            Assert.Equal(0xF, U16(Identify(admin, 0x01), 534)); // OCFS: formats 0h-3h, as QEMU reports
            Fails(Run(io, CopyCommand(0, 1, 2), Ranges((2, 0, 1))), NvmeStatus.InvalidField);
            Fails(Run(io, CopyCommand(0, 1, 3), new byte[40]), NvmeStatus.InvalidField);
            var current = new byte[512];
            Ok(Run(admin, Sqe.GetFeatures(HostBehavior), current));
            Assert.All(current, b => Assert.Equal(0, b));

            Ok(Run(admin, Sqe.SetFeatures(HostBehavior, 0), Cdfe(0xC)));
            Ok(Run(admin, Sqe.GetFeatures(HostBehavior), current));
            Assert.Equal(Cdfe(0xC), current);
            Ok(Run(admin, Sqe.GetFeatures(HostBehavior, sel: 1), current)); // default: zeros
            Assert.All(current, b => Assert.Equal(0, b));
            Assert.Equal(0x4UL, Run(admin, Sqe.GetFeatures(HostBehavior, sel: 3), current).Result); // changeable

            // Format 3h carries 64-bit PI fields: Invalid Format without protection information, as format 1h.
            Fails(Run(io, CopyCommand(0, 1, 3), new byte[40]), NvmeStatus.InvalidFormat);
            Ok(Run(io, CopyCommand(0, 1, 2), Ranges((1, 0, 1))));
        }
    }

    [Fact]
    public void Format2_CopiesFromAnotherNamespace_RangeByRange()
    {
        var (host, admin, io) = Connected();
        using (host)
        {
            Ok(Run(admin, Sqe.SetFeatures(HostBehavior, 0), Cdfe(0x4)));
            var source = Enumerable.Range(0, 4 * Bs).Select(i => (byte)(i / Bs + 7)).ToArray();
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 2, 100, 4), source));
            var own = Enumerable.Repeat((byte)0x33, Bs).ToArray();
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 1), own));

            ulong zone1 = host.Namespaces[0].Geometry.ZoneSizeLbas;
            // Two blocks of nsid 2, then one of the destination namespace itself (SNSID = the command's NSID).
            Ok(Run(io, CopyCommand(zone1, 2, 2), Ranges((2, 101, 2), (1, 0, 1))));
            Assert.Equal(zone1 + 3, host.Namespaces[0].GetZone(1).WritePointer);
            var back = new byte[3 * Bs];
            Ok(Run(io, ReadOf(1, zone1, 3), back));
            Assert.Equal(source.AsSpan(Bs, 2 * Bs).ToArray(), back[..(2 * Bs)]);
            Assert.Equal(own, back[(2 * Bs)..]);
        }
    }

    [Theory]
    [InlineData(0u, 0x0B, 0x0)]          // NSID 0: Invalid Namespace or Format
    [InlineData(0xFFFF_FFFFu, 0x0B, 0x0)] // broadcast
    [InlineData(257u, 0x0B, 0x0)]        // above NN
    [InlineData(9u, 0x02, 0x0)]          // an empty slot: Invalid Field
    [InlineData(3u, 0x85, 0x1)]          // 512-byte blocks against 4 KiB: Incompatible Namespace or Format
    public void ABadSourceNamespace_FailsItsRange_WithItsIndexInDw0(uint snsid, byte sc, byte sct)
    {
        var (host, admin, io) = Connected();
        using (host)
        {
            Ok(Run(admin, Sqe.SetFeatures(HostBehavior, 0), Cdfe(0x4)));
            ulong zone1 = host.Namespaces[0].Geometry.ZoneSizeLbas;
            var bad = Run(io, CopyCommand(zone1, 2, 2), Ranges((2, 0, 1), (snsid, 0, 1)));
            Assert.Equal(new NvmeStatus((ushort)(sct << 8 | sc)).WithDnr(), bad.Status);
            Assert.Equal(1UL, bad.Result);
            Assert.Equal(zone1 + 1, host.Namespaces[0].GetZone(1).WritePointer); // the first range is written
        }
    }

    [Fact]
    public void ARangeOfTheDestinationEndingInsideTheCopy_IsOverlappingIoRange()
    {
        var (host, admin, io) = Connected();
        using (host)
        {
            Ok(Run(admin, Sqe.SetFeatures(HostBehavior, 0), Cdfe(0x4)));
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 8), new byte[8 * Bs]));
            // Destination LBA 8, 4 blocks in all: a source range ending at 9..11 overlaps; one ending at 8 does not.
            Fails(Run(io, CopyCommand(8, 1, 2), Ranges((1, 5, 4))), NvmeStatus.OverlappingIoRange);
            Ok(Run(io, CopyCommand(8, 1, 2), Ranges((1, 4, 4))));
            // Format 0h has no such check (QEMU's): its ranges are always of the destination namespace.
            Ok(Run(io, CopyCommand(12, 1, 0), Ranges((0, 9, 4))));
        }
    }

    [Fact]
    public void HostBehaviorSupport_IsAControllerFeature_ResetWithTheController()
    {
        var (host, admin, io) = Connected();
        using (host)
        {
            Fails(Run(admin, Sqe.SetFeatures(HostBehavior, 0), new byte[64]), NvmeStatus.DataSglLengthInvalid);
            SubmissionQueueEntry save = Sqe.SetFeatures(HostBehavior, 0);
            save.SetCdw(10, HostBehavior | 0x8000_0000u);
            Fails(Run(admin, save, Cdfe(0x4)), NvmeStatus.FeatureIdNotSaveable);
            Fails(Run(admin, Sqe.GetFeatures(HostBehavior), new byte[8]), NvmeStatus.DataSglLengthInvalid);
            Assert.Equal(0x4UL, Run(admin, Sqe.GetFeatures(HostBehavior, sel: 3)).Result); // no structure: any buffer

            Ok(Run(admin, Sqe.SetFeatures(HostBehavior, 0), Cdfe(0x4)));
            Ok(Run(io, CopyCommand(0, 1, 2), Ranges((2, 0, 1))));
            Ok(Run(admin, Sqe.PropertySet(ControllerProperties.Cc, 0x00460060))); // CC.EN 1 -> 0
            Enable(admin);
            var current = new byte[512];
            Ok(Run(admin, Sqe.GetFeatures(HostBehavior), current));
            Assert.All(current, b => Assert.Equal(0, b));
        }
    }

    [Fact]
    public void TheCoreCopyWithoutAController_KeepsFormats2And3Disabled()
    {
        using var ns = ZonedNamespace.CreateInMemory(8L << 20, new NamespaceOptions { ZoneSize = 1L << 20 });
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), ns.Copy(0, 2, 1, Ranges((1, 0, 1)), out _));
    }
}

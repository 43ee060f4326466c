using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Storage;
using Zns.Core.Zones;
using static Zns.Core.Tests.TestNamespaces;

namespace Zns.Core.Tests;

/// <summary>
/// Behaviour taken from QEMU's hw/nvme where zns used to differ: option defaults and limits, controller shutdown,
/// Select All walk order.
/// </summary>
public class QemuParityTests
{
    private static void Ok(NvmeStatus s) => Assert.True(s.IsSuccess, $"expected success, got {s}");

    private static void Is(NvmeStatus expected, NvmeStatus actual) =>
        Assert.True(expected.WithDnr() == actual, $"expected {expected.WithDnr()}, got {actual}");

    [Fact]
    public void MaxOpenDefaultsToMaxActive()
    {
        var g = ZoneGeometry.Create(new NamespaceOptions().WithQemuOptions("zoned.zone_size=64M,zoned.max_active=6"), 1L << 30);
        Assert.Equal(6u, g.MaxOpen);
        Assert.Equal(6u, g.MaxActive);
        // At the active limit the oldest implicitly opened zone is closed (auto transition needs an open limit).
        using var ns = Ram(Small(maxActive: 3));
        for (uint z = 0; z < 3; z++)
        {
            Ok(ns.Write(z * 16, Blocks(1, 1)));
        }
        Is(NvmeStatus.TooManyActiveZones, ns.Write(3 * 16, Blocks(1, 1)));
        Assert.Equal(ZoneState.Closed, ns.GetZone(0).State);
    }

    [Fact]
    public void LimitsAboveTheZoneCountAreAccepted()
    {
        // 16 zones of 64 MiB with the default limits 16/32, as `zns serve --size 1G` uses them.
        var g = ZoneGeometry.Create(new NamespaceOptions { ZoneSize = 64L << 20, MaxOpen = 16, MaxActive = 32 }, 1L << 30);
        Assert.Equal(16u, g.ZoneCount);
        Assert.Equal(32u, g.MaxActive);
        Assert.Equal(16u, g.MaxOpen);
    }

    [Fact]
    public void SizesAreTruncatedToWholeBlocks()
    {
        var g = ZoneGeometry.Create(new NamespaceOptions().WithQemuOptions("logical_block_size=4096,zoned.zone_size=8292,zoned.zone_capacity=6000"), 1L << 20);
        Assert.Equal(2ul, g.ZoneSizeLbas);
        Assert.Equal(1ul, g.ZoneCapacityLbas);
        Assert.Equal(128u, g.ZoneCount);
    }

    [Theory]
    [InlineData(1024)]
    [InlineData(8192)]
    public void OtherPowerOfTwoBlockSizesWork(int bs)
    {
        var options = new NamespaceOptions { LogicalBlockSize = bs, ZoneSize = 16L * bs };
        using var ns = ZonedNamespace.CreateInMemory(4 * 16L * bs, options);
        Ok(ns.Write(16, Blocks(2, 7, bs)));
        var back = new byte[2 * bs];
        Ok(ns.Read(16, back));
        Assert.All(back, b => Assert.Equal(7, b));
    }

    [Fact]
    public void ShutdownEmptiesClosedZonesWithoutData()
    {
        using var ns = Ram(Small());
        Ok(ns.ZoneManagementSend(0, ZoneSendAction.Open, false));
        Ok(ns.ZoneManagementSend(0, ZoneSendAction.Close, false));
        Ok(ns.Write(16, Blocks(1, 1)));
        Ok(ns.ZoneManagementSend(16, ZoneSendAction.Close, false));
        Ok(ns.ZoneManagementSend(32, ZoneSendAction.SetDescriptorExtension, false, new byte[64]));
        Ok(ns.ZoneManagementSend(48, ZoneSendAction.Open, false));
        ns.Shutdown();
        Assert.Equal(ZoneState.Empty, ns.GetZone(0).State);
        Assert.Equal(ZoneState.Closed, ns.GetZone(1).State);
        Assert.Equal(ZoneState.Closed, ns.GetZone(2).State);
        Assert.Equal(ZoneState.Empty, ns.GetZone(3).State);
        Assert.Equal(2u, ns.ActiveZoneCount);
    }

    [Fact]
    public void OpenAllWalksClosedZonesInTheOrderTheyClosed()
    {
        using var ns = Ram(Small(maxOpen: 2));
        foreach (uint z in new uint[] { 3, 1, 2 })
        {
            Ok(ns.Write(z * 16, Blocks(1, 1)));
            Ok(ns.ZoneManagementSend(z * 16, ZoneSendAction.Close, false));
        }
        Is(NvmeStatus.TooManyOpenZones, ns.ZoneManagementSend(0, ZoneSendAction.Open, true));
        Assert.Equal(ZoneState.ExplicitlyOpened, ns.GetZone(3).State);
        Assert.Equal(ZoneState.ExplicitlyOpened, ns.GetZone(1).State);
        Assert.Equal(ZoneState.Closed, ns.GetZone(2).State);
    }

    [Fact]
    public void CloseAllClosesImplicitThenExplicitZones()
    {
        using var ns = Ram(Small(maxOpen: 2));
        Ok(ns.ZoneManagementSend(2 * 16, ZoneSendAction.Open, false));  // explicitly opened first
        Ok(ns.Write(5 * 16, Blocks(1, 1)));                              // implicitly opened second
        Ok(ns.ZoneManagementSend(0, ZoneSendAction.Close, true));       // closed in the order 5, 2
        Ok(ns.ZoneManagementSend(7 * 16, ZoneSendAction.Open, false));
        Is(NvmeStatus.TooManyOpenZones, ns.ZoneManagementSend(0, ZoneSendAction.Open, true));
        Assert.Equal(ZoneState.ExplicitlyOpened, ns.GetZone(5).State);
        Assert.Equal(ZoneState.Closed, ns.GetZone(2).State);
    }

    [Fact]
    public void MetadataOptionsTakeQemusTypes()
    {
        // ms is a uint16, the others uint8; mset and pil are on for any value but 0, as in QEMU.
        var o = new NamespaceOptions().WithQemuOptions("ms=16,mset=2,pi=1,pil=7,pif=2");
        Assert.Equal(((ushort)16, true, (byte)1, true, (byte)2), (o.MetadataSize, o.MetadataExtended, o.PiType, o.PiFirst, o.Pif));
        Assert.Equal("ms", Assert.Throws<OptionException>(() => new NamespaceOptions().With("ms", "65536")).Option);
        Assert.Equal("pi", Assert.Throws<OptionException>(() => new NamespaceOptions().With("pi", "256")).Option);
        Assert.Equal(new NamespaceOptions(), new NamespaceOptions().With("ms", "0"));
    }

    [Fact]
    public void IdentityOptionsParse()
    {
        var o = new NamespaceOptions().WithQemuOptions("uuid=6b3f1c1e-0d7a-4c1e-9d0a-0123456789ab,nguid=00112233-4455-6677-8899-aabbccddeeff,eui64=0x0011223344556677,nsid=5,mssrl=16,mcl=64,msrc=3,vsl=4");
        Assert.Equal(Guid.Parse("6b3f1c1e-0d7a-4c1e-9d0a-0123456789ab"), o.Uuid);
        Assert.Equal(Convert.FromHexString("00112233445566778899aabbccddeeff"), o.Nguid!.Value.ToArray());
        Assert.Equal(0x0011223344556677ul, o.Eui64);
        Assert.Equal((5u, (ushort)16, 64u, (byte)3, (byte)4), (o.Nsid, o.Mssrl, o.Mcl, o.Msrc, o.Vsl));
        Assert.Throws<OptionException>(() => new NamespaceOptions().With("nguid", "xyz"));
    }
}

/// <summary>Copy, Verify and Compare with QEMU's checks, order and results.</summary>
public class CopyVerifyCompareTests
{
    // Copy's zone rule statuses carry no DNR in QEMU.
    private static void NoDnr(NvmeStatus expected, NvmeStatus actual) =>
        Assert.True(expected == actual, $"expected {expected}, got {actual}");

    private static void Ok(NvmeStatus s) => Assert.True(s.IsSuccess, $"expected success, got {s}");

    private static void Is(NvmeStatus expected, NvmeStatus actual) =>
        Assert.True(expected.WithDnr() == actual, $"expected {expected.WithDnr()}, got {actual}");

    private static byte[] Ranges(params (ulong Slba, int Blocks)[] ranges)
    {
        var d = new byte[ranges.Length * ZonedNamespace.CopyRangeFormat0Size];
        for (int i = 0; i < ranges.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(i * 32 + 8), ranges[i].Slba);
            BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(i * 32 + 16), (ushort)(ranges[i].Blocks - 1));
        }
        return d;
    }

    private static NvmeStatus Copy(ZonedNamespace ns, ulong sdlba, out uint failed, params (ulong, int)[] ranges) =>
        ns.Copy(sdlba, 0, ranges.Length, Ranges(ranges), out failed);

    [Fact]
    public void CopyWritesRangesInOrderAndAdvancesTheWritePointer()
    {
        using var ns = Ram(Small());
        Ok(ns.Write(0, Blocks(2, 0xA1)));
        Ok(ns.Write(2, Blocks(3, 0xB2)));
        Ok(Copy(ns, 16, out uint failed, (2, 3), (0, 2)));
        Assert.Equal(0u, failed);
        var zone = ns.GetZone(1);
        Assert.Equal((ZoneState.ImplicitlyOpened, 21ul), (zone.State, zone.WritePointer));
        var back = new byte[5 * 512];
        Ok(ns.Read(16, back));
        Assert.All(back.AsSpan(0, 3 * 512).ToArray(), b => Assert.Equal(0xB2, b));
        Assert.All(back.AsSpan(3 * 512).ToArray(), b => Assert.Equal(0xA1, b));
    }

    [Fact]
    public void CopyReportsTheFailingRangeAndKeepsTheRangesBefore()
    {
        using var ns = Ram(Small());
        Ok(ns.Write(0, Blocks(12, 0x5A)));
        // Destination zone 1 has capacity 12: 8 + 4 fill it, so the third range finds it full.
        NoDnr(NvmeStatus.ZoneIsFull, Copy(ns, 16, out uint failed, (0, 8), (0, 4), (0, 1)));
        Assert.Equal(2u, failed);
        Assert.Equal(ZoneState.Full, ns.GetZone(1).State);
        NoDnr(NvmeStatus.ZoneBoundaryError, Copy(ns, 48, out failed, (0, 8), (0, 5)));
        Assert.Equal(1u, failed);
        Assert.Equal(56ul, ns.GetZone(3).WritePointer);
        NoDnr(NvmeStatus.ZoneInvalidWrite, Copy(ns, 33, out failed, (0, 1)));
        Assert.Equal(0u, failed);
        Is(NvmeStatus.LbaOutOfRange, Copy(ns, 32, out failed, (0, 1), (127, 2)));
        Assert.Equal(1u, failed);
        Assert.Equal(33ul, ns.GetZone(2).WritePointer);
    }

    [Fact]
    public void CopySourceFollowsZoneReadRules()
    {
        using var ns = Ram(Small());
        NoDnr(NvmeStatus.ZoneBoundaryError, Copy(ns, 32, out uint failed, (15, 2)));
        Assert.Equal(0u, failed);
        using var cross = Ram(Small(crossRead: true));
        Ok(Copy(cross, 32, out _, (15, 2)));
        // Unwritten source blocks copy as zeros.
        var back = new byte[2 * 512];
        Ok(cross.Read(32, back));
        Assert.All(back, b => Assert.Equal(0, b));
    }

    [Fact]
    public void CopyLimits()
    {
        using var ns = Ram(Small() with { Mssrl = 4, Mcl = 6, Msrc = 1 });
        Is(NvmeStatus.CommandSizeLimitExceeded, Copy(ns, 16, out _, (0, 1), (0, 1), (0, 1)));
        Assert.Equal(ZoneState.Empty, ns.GetZone(1).State);
        // MCL: the destination zone is opened first and stays open, as in QEMU.
        Is(NvmeStatus.CommandSizeLimitExceeded, Copy(ns, 16, out _, (0, 4), (0, 3)));
        Assert.Equal(ZoneState.ImplicitlyOpened, ns.GetZone(1).State);
        Is(NvmeStatus.CommandSizeLimitExceeded, Copy(ns, 16, out uint failed, (0, 1), (0, 5)));
        Assert.Equal(1u, failed);
        Assert.Equal(17ul, ns.GetZone(1).WritePointer);
    }

    [Fact]
    public void CopyFormatsAndDestinationState()
    {
        using var ns = Ram(Small());
        byte[] one = Ranges((0, 1));
        Is(NvmeStatus.InvalidFormat, ns.Copy(16, 1, 1, Ranges((0, 1)).Concat(new byte[8]).ToArray(), out _));
        Is(NvmeStatus.InvalidField, ns.Copy(16, 2, 1, one, out _));
        Is(NvmeStatus.InvalidField, ns.Copy(16, 3, 1, one, out _));
        Is(NvmeStatus.LbaOutOfRange, ns.Copy(128, 0, 1, one, out _));
        Ok(ns.ZoneManagementSend(16, ZoneSendAction.Finish, false));
        // A full destination fails the open, before any range is looked at.
        NoDnr(NvmeStatus.InvalidZoneStateTransition, ns.Copy(16, 0, 1, one, out _));
    }

    [Fact]
    public void CopyOnConventionalNamespace()
    {
        using var ns = ZonedNamespace.CreateInMemory(64 * 512, new NamespaceOptions { LogicalBlockSize = 512, Zoned = false });
        Ok(ns.Write(3, Blocks(2, 9)));
        Ok(Copy(ns, 40, out _, (3, 2)));
        var back = new byte[1024];
        Ok(ns.Read(40, back));
        Assert.All(back, b => Assert.Equal(9, b));
    }

    [Fact]
    public void VerifyHasNoZoneChecks()
    {
        using var ns = Ram(Small() with { Vsl = 0 });
        Ok(ns.Verify(10, 8));                                   // crosses a zone boundary, unwritten
        Is(NvmeStatus.InvalidField, ns.Verify(0, 9));           // 9 × 512 > 4 KiB
        Is(NvmeStatus.LbaOutOfRange, ns.Verify(127, 2));
    }

    [Fact]
    public void CompareMatchesDataAndZerosAboveTheWritePointer()
    {
        using var ns = Ram(Small());
        Ok(ns.Write(0, Blocks(2, 0x3C)));
        Ok(ns.Compare(0, Blocks(2, 0x3C)));
        Ok(ns.Compare(2, Blocks(4, 0)));
        var mixed = Blocks(3, 0x3C);
        mixed[^1] = 1;
        Is(NvmeStatus.CompareFailure, ns.Compare(0, mixed));
        Is(NvmeStatus.LbaOutOfRange, ns.Compare(127, Blocks(2, 0)));
        Assert.Equal(2, NvmeStatus.CompareFailure.Sct);
        Assert.Equal(0x85, NvmeStatus.CompareFailure.Sc);
    }
}

/// <summary>Zone Random Write Area: allocation, window writes, implicit and explicit flush, limits, restart.</summary>
public class ZrwaTests
{
    private static void Ok(NvmeStatus s) => Assert.True(s.IsSuccess, $"expected success, got {s}");

    private static void Is(NvmeStatus expected, NvmeStatus actual) =>
        Assert.True(expected.WithDnr() == actual, $"expected {expected.WithDnr()}, got {actual}");

    // ZRWAS 4 blocks, flush granularity 2 blocks.
    private static NamespaceOptions Zrwa(uint numzrwa = 0) => Small() with { Zrwas = 4 * 512, Zrwafg = 2 * 512, NumZrwa = numzrwa };

    private static NvmeStatus OpenZrwa(ZonedNamespace ns, uint zone) =>
        ns.ZoneManagementSend(zone * 16, ZoneSendAction.Open, false, zsaso: true);

    [Fact]
    public void OpenWithZrwaAllowsWritesAnywhereInTheWindow()
    {
        using var ns = Ram(Zrwa());
        Ok(OpenZrwa(ns, 1));
        var z = ns.GetZone(1);
        Assert.Equal(ZoneState.ExplicitlyOpened, z.State);
        Assert.True((z.Attributes & ZoneAttributes.ZrwaValid) != 0);
        Ok(ns.Write(16 + 2, Blocks(1, 0x77)));       // inside the first ZRWAS blocks: no flush
        Assert.Equal(16ul, ns.GetZone(1).WritePointer);
        Ok(ns.Write(16, Blocks(1, 0x66)));           // rewrite below: allowed in the window
        var back = new byte[3 * 512];
        Ok(ns.Read(16, back));                       // window data is readable
        Assert.Equal(0x66, back[0]);
        Assert.Equal(0x77, back[2 * 512]);
        Is(NvmeStatus.ZoneInvalidWrite, ns.Write(16 + 7, Blocks(2, 1))); // past 2 × ZRWAS
    }

    [Fact]
    public void WritingPastTheWindowFlushesImplicitlyInGranules()
    {
        using var ns = Ram(Zrwa());
        Ok(OpenZrwa(ns, 0));
        Ok(ns.Write(4, Blocks(1, 1)));               // ends 1 block past ZRWAS: flush 1 → rounded to 2
        Assert.Equal(2ul, ns.GetZone(0).WritePointer);
        Ok(ns.Write(6, Blocks(4, 1)));               // last 9, window ends 5: 4 blocks flushed
        Assert.Equal(6ul, ns.GetZone(0).WritePointer);
    }

    [Fact]
    public void ExplicitFlush()
    {
        using var ns = Ram(Zrwa());
        Is(NvmeStatus.InvalidField, ns.ZoneManagementSend(3, ZoneSendAction.FlushZrwa, false));   // no ZRWA
        Ok(OpenZrwa(ns, 0));
        Ok(ns.Write(0, Blocks(4, 2)));
        Is(NvmeStatus.InvalidField, ns.ZoneManagementSend(2, ZoneSendAction.FlushZrwa, false));   // 3 blocks
        Is(NvmeStatus.ZoneBoundaryError, ns.ZoneManagementSend(5, ZoneSendAction.FlushZrwa, false));
        Ok(ns.ZoneManagementSend(3, ZoneSendAction.FlushZrwa, false));
        Assert.Equal(4ul, ns.GetZone(0).WritePointer);
        Is(NvmeStatus.ZoneBoundaryError, ns.ZoneManagementSend(3, ZoneSendAction.FlushZrwa, false)); // below the write pointer
        Is(NvmeStatus.InvalidField, ns.ZoneManagementSend(0, ZoneSendAction.FlushZrwa, true));
        // Flushing to the capacity makes the zone full and releases the ZRWA.
        Ok(ns.Write(4, Blocks(4, 2)));
        Ok(ns.Write(8, Blocks(4, 2)));
        Ok(ns.ZoneManagementSend(11, ZoneSendAction.FlushZrwa, false));
        Assert.Equal(ZoneState.Full, ns.GetZone(0).State);
        Assert.True((ns.GetZone(0).Attributes & ZoneAttributes.ZrwaValid) == 0);
    }

    [Fact]
    public void ResourcesAndRefusals()
    {
        using var ns = Ram(Zrwa(numzrwa: 1));
        Ok(OpenZrwa(ns, 0));
        Is(NvmeStatus.ZrwaResourcesUnavailable, OpenZrwa(ns, 1));
        Assert.Equal(ZoneState.Empty, ns.GetZone(1).State);
        Is(NvmeStatus.InvalidZoneOperation, ns.Append(0, Blocks(1, 1), out _));
        Ok(ns.ZoneManagementSend(0, ZoneSendAction.Reset, false));          // frees the resource
        Ok(ns.Write(16, Blocks(1, 1)));
        Is(NvmeStatus.ZrwaResourcesUnavailable, OpenZrwa(ns, 1));           // wp 17 not on the 2-block granule
        Ok(ns.Write(17, Blocks(1, 1)));
        Ok(OpenZrwa(ns, 1));
        Ok(ns.ZoneManagementSend(16, ZoneSendAction.Finish, false));        // frees it too
        Ok(OpenZrwa(ns, 2));
        using var plain = Ram(Small());
        Is(NvmeStatus.InvalidZoneOperation, OpenZrwa(plain, 0));
        Is(NvmeStatus.InvalidZoneOperation, plain.ZoneManagementSend(3, ZoneSendAction.FlushZrwa, false));
    }

    [Fact]
    public void RestartClosesTheWindow()
    {
        using var dir = new TempDir();
        string path = dir.File("z.raw");
        FileBackstore.Create(path, 8 * 16 * 512, preallocate: false);
        using (var ns = ZonedNamespace.OpenFile(path, Zrwa(numzrwa: 1)))
        {
            Ok(OpenZrwa(ns, 0));
            Ok(ns.Write(0, Blocks(6, 4)));           // 2 blocks committed by the implicit flush, 4 in the window
            Assert.Equal(2ul, ns.GetZone(0).WritePointer);
        }
        using (var ns = ZonedNamespace.OpenFile(path, Zrwa(numzrwa: 1)))
        {
            var z = ns.GetZone(0);
            Assert.Equal((ZoneState.Closed, 2ul, ZoneAttributes.None), (z.State, z.WritePointer, z.Attributes & ZoneAttributes.ZrwaValid));
            var back = new byte[3 * 512];
            Ok(ns.Read(0, back));
            Assert.Equal(4, back[512]);
            Assert.Equal(0, back[2 * 512]);          // uncommitted window data is gone
            Ok(OpenZrwa(ns, 1));                     // the resource is free again
        }
    }
}

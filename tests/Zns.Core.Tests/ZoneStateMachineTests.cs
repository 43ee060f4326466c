using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Zones;
using static Zns.Core.Tests.TestNamespaces;

namespace Zns.Core.Tests;

public class ZoneStateMachineTests
{
    private const int Bs = 512;
    private static ulong Z(uint zone) => zone * 16ul;

    private static void AssertStatus(NvmeStatus expected, NvmeStatus actual)
    {
        Assert.True(expected.WithDnr() == actual, $"expected {expected.WithDnr()}, got {actual}");
    }

    private static void Ok(NvmeStatus s) => Assert.True(s.IsSuccess, $"expected success, got {s}");

    [Fact]
    public void WriteAtWritePointerImplicitlyOpensAndAdvances()
    {
        using var ns = Ram(Small());
        Ok(ns.Write(Z(1), Blocks(2, 0xAA)));
        var z = ns.GetZone(1);
        Assert.Equal(ZoneState.ImplicitlyOpened, z.State);
        Assert.Equal(Z(1) + 2, z.WritePointer);
        Assert.Equal(1u, ns.OpenZoneCount);
        Assert.Equal(1u, ns.ActiveZoneCount);
    }

    [Fact]
    public void WriteNotAtWritePointerIsZoneInvalidWrite()
    {
        using var ns = Ram(Small());
        AssertStatus(NvmeStatus.ZoneInvalidWrite, ns.Write(Z(1) + 1, Blocks(1, 1)));
        Ok(ns.Write(Z(1), Blocks(1, 1)));
        AssertStatus(NvmeStatus.ZoneInvalidWrite, ns.Write(Z(1), Blocks(1, 1)));
        Assert.Equal(Z(1) + 1, ns.GetZone(1).WritePointer);
    }

    [Fact]
    public void WritePastCapacityIsZoneBoundaryErrorAndReachingCapacityMakesFull()
    {
        using var ns = Ram(Small(maxOpen: 2, maxActive: 2));
        AssertStatus(NvmeStatus.ZoneBoundaryError, ns.Write(Z(0), Blocks(13, 1)));
        Assert.Equal(ZoneState.Empty, ns.GetZone(0).State);
        Ok(ns.Write(Z(0), Blocks(12, 1)));
        Assert.Equal(ZoneState.Full, ns.GetZone(0).State);
        Assert.Equal(0u, ns.OpenZoneCount);
        Assert.Equal(0u, ns.ActiveZoneCount);
        AssertStatus(NvmeStatus.ZoneIsFull, ns.Write(Z(0) + 12, Blocks(1, 1)));
        AssertStatus(NvmeStatus.ZoneIsFull, ns.Append(Z(0), Blocks(1, 1), out _));
    }

    [Fact]
    public void WriteCrossingIntoNextZoneIsBoundaryError()
    {
        using var ns = Ram(Small() with { ZoneCapacity = 0 });
        Ok(ns.Write(Z(0), Blocks(15, 1)));
        AssertStatus(NvmeStatus.ZoneBoundaryError, ns.Write(Z(0) + 15, Blocks(2, 1)));
    }

    [Fact]
    public void OutOfRangeIsLbaOutOfRangeAndMdtsIsInvalidField()
    {
        using var ns = Ram(Small());
        AssertStatus(NvmeStatus.LbaOutOfRange, ns.Write(8 * 16, Blocks(1, 1)));
        AssertStatus(NvmeStatus.LbaOutOfRange, ns.Read(8 * 16 - 1, new byte[2 * Bs]));
        AssertStatus(NvmeStatus.LbaOutOfRange, ns.Read(ulong.MaxValue, new byte[Bs]));
        using var big = ZonedNamespace.CreateInMemory(64L << 20, new NamespaceOptions { ZoneSize = 16L << 20 });
        AssertStatus(NvmeStatus.InvalidField, big.Write(0, new byte[(512 * 1024) + 4096]));
        AssertStatus(NvmeStatus.InvalidField, big.Read(0, new byte[(512 * 1024) + 4096]));
        AssertStatus(NvmeStatus.InvalidField, big.Write(0, new byte[100]));
    }

    [Fact]
    public void AppendReturnsAssignedLbaAndChecksZoneStartAndZasl()
    {
        using var ns = Ram(Small());
        Ok(ns.Append(Z(2), Blocks(3, 1), out ulong a1));
        Ok(ns.Append(Z(2), Blocks(2, 2), out ulong a2));
        Assert.Equal(Z(2), a1);
        Assert.Equal(Z(2) + 3, a2);
        AssertStatus(NvmeStatus.InvalidField, ns.Append(Z(2) + 1, Blocks(1, 1), out _));
        AssertStatus(NvmeStatus.ZoneBoundaryError, ns.Append(Z(2), Blocks(8, 1), out _));

        using var limited = ZonedNamespace.CreateInMemory(64L << 20, new NamespaceOptions { ZoneSize = 16L << 20, Zasl = 1 });
        AssertStatus(NvmeStatus.InvalidField, limited.Append(0, new byte[3 * 4096], out _));
        Ok(limited.Append(0, new byte[2 * 4096], out _));
    }

    [Fact]
    public void ReadsBelowWritePointerReturnDataAndAboveReturnZeros()
    {
        using var ns = Ram(Small());
        Ok(ns.Write(Z(3), Blocks(2, 0x5A)));
        var buf = new byte[4 * Bs];
        Array.Fill(buf, (byte)0xFF);
        Ok(ns.Read(Z(3), buf));
        Assert.All(buf[..(2 * Bs)], b => Assert.Equal(0x5A, b));
        Assert.All(buf[(2 * Bs)..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void ResetMakesOldDataReadAsZeros()
    {
        using var ns = Ram(Small());
        Ok(ns.Write(Z(0), Blocks(4, 0x77)));
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Reset, false));
        Assert.Equal(ZoneState.Empty, ns.GetZone(0).State);
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Finish, false));
        var buf = new byte[4 * Bs];
        Ok(ns.Read(Z(0), buf));
        Assert.All(buf, b => Assert.Equal(0, b));
    }

    [Fact]
    public void ReadAcrossZoneBoundaryNeedsCrossRead()
    {
        using var ns = Ram(Small());
        AssertStatus(NvmeStatus.ZoneBoundaryError, ns.Read(Z(0) + 15, new byte[2 * Bs]));
        using var cross = Ram(Small(crossRead: true));
        Ok(cross.Write(Z(1), Blocks(1, 9)));
        var buf = new byte[2 * Bs];
        Ok(cross.Read(Z(0) + 15, buf));
        Assert.All(buf[..Bs], b => Assert.Equal(0, b));
        Assert.All(buf[Bs..], b => Assert.Equal(9, b));
    }

    [Fact]
    public void OpenCloseFinishResetTransitions()
    {
        using var ns = Ram(Small());
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Open, false));
        Assert.Equal(ZoneState.ExplicitlyOpened, ns.GetZone(0).State);
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Open, false)); // open of an open zone is a no-op
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Close, false));
        Assert.Equal(ZoneState.Closed, ns.GetZone(0).State);
        Assert.Equal(0u, ns.OpenZoneCount);
        Assert.Equal(1u, ns.ActiveZoneCount);
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Close, false)); // close of closed is a no-op
        Ok(ns.Write(Z(0), Blocks(1, 1)));
        Assert.Equal(ZoneState.ImplicitlyOpened, ns.GetZone(0).State);
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Open, false));
        Assert.Equal(ZoneState.ExplicitlyOpened, ns.GetZone(0).State);
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Finish, false));
        Assert.Equal(ZoneState.Full, ns.GetZone(0).State);
        Assert.Equal(0u, ns.ActiveZoneCount);
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Finish, false)); // finish of full is a no-op
        AssertStatus(NvmeStatus.InvalidZoneStateTransition, ns.ZoneManagementSend(Z(0), ZoneSendAction.Open, false));
        AssertStatus(NvmeStatus.InvalidZoneStateTransition, ns.ZoneManagementSend(Z(0), ZoneSendAction.Close, false));
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Reset, false));
        Assert.Equal(ZoneState.Empty, ns.GetZone(0).State);
        Assert.Equal(Z(0), ns.GetZone(0).WritePointer);
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Reset, false)); // reset of empty is a no-op
        AssertStatus(NvmeStatus.InvalidZoneStateTransition, ns.ZoneManagementSend(Z(0), ZoneSendAction.Close, false));
        Ok(ns.ZoneManagementSend(Z(1), ZoneSendAction.Finish, false)); // finish of empty
        Assert.Equal(ZoneState.Full, ns.GetZone(1).State);
    }

    [Fact]
    public void OfflineOnlyFromReadOnlyAndUnknownActionsAreInvalidField()
    {
        using var ns = Ram(Small());
        AssertStatus(NvmeStatus.InvalidZoneStateTransition, ns.ZoneManagementSend(Z(0), ZoneSendAction.Offline, false));
        Ok(ns.ZoneManagementSend(0, ZoneSendAction.Offline, true)); // no read-only zones: nothing to do
        AssertStatus(NvmeStatus.InvalidField, ns.ZoneManagementSend(Z(0), (ZoneSendAction)0x09, false));
        AssertStatus(NvmeStatus.InvalidField, ns.ZoneManagementSend(Z(0) + 1, ZoneSendAction.Open, false));
        AssertStatus(NvmeStatus.LbaOutOfRange, ns.ZoneManagementSend(8 * 16, ZoneSendAction.Open, false));
        AssertStatus(NvmeStatus.InvalidZoneOperation, ns.ZoneManagementSend(Z(0), ZoneSendAction.Open, false, zsaso: true));
        AssertStatus(NvmeStatus.InvalidZoneOperation, ns.ZoneManagementSend(Z(0), ZoneSendAction.FlushZrwa, false));
        AssertStatus(NvmeStatus.InvalidField, ns.ZoneManagementSend(Z(0), ZoneSendAction.FlushZrwa, true));
    }

    [Fact]
    public void TooManyActiveAndTooManyOpen()
    {
        using var ns = Ram(Small(maxOpen: 2, maxActive: 3, autoTransition: false));
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Open, false));
        Ok(ns.Write(Z(1), Blocks(1, 1)));
        AssertStatus(NvmeStatus.TooManyOpenZones, ns.Write(Z(2), Blocks(1, 1)));
        AssertStatus(NvmeStatus.TooManyOpenZones, ns.ZoneManagementSend(Z(2), ZoneSendAction.Open, false));
        Ok(ns.ZoneManagementSend(Z(1), ZoneSendAction.Close, false));
        Ok(ns.Write(Z(2), Blocks(1, 1)));
        AssertStatus(NvmeStatus.TooManyActiveZones, ns.Write(Z(3), Blocks(1, 1)));
        Assert.Equal(ZoneState.Empty, ns.GetZone(3).State);
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Finish, false));
        Ok(ns.ZoneManagementSend(Z(3), ZoneSendAction.Open, false));
    }

    [Fact]
    public void AutoTransitionClosesOldestImplicitlyOpenedZone()
    {
        using var ns = Ram(Small(maxOpen: 2, maxActive: 4));
        Ok(ns.Write(Z(0), Blocks(1, 1)));
        Ok(ns.Write(Z(1), Blocks(1, 1)));
        Ok(ns.Write(Z(2), Blocks(1, 1)));
        Assert.Equal(ZoneState.Closed, ns.GetZone(0).State);
        Assert.Equal(ZoneState.ImplicitlyOpened, ns.GetZone(1).State);
        Assert.Equal(ZoneState.ImplicitlyOpened, ns.GetZone(2).State);
        // Explicitly opened zones are never closed automatically.
        Ok(ns.ZoneManagementSend(Z(1), ZoneSendAction.Open, false));
        Ok(ns.ZoneManagementSend(Z(3), ZoneSendAction.Open, false));
        Assert.Equal(ZoneState.Closed, ns.GetZone(2).State);
        AssertStatus(NvmeStatus.TooManyOpenZones, ns.Write(Z(0) + 1, Blocks(1, 1)));
        // Active limit reached: closing an implicitly opened zone cannot make room for an Empty zone.
        using var tight = Ram(Small(maxOpen: 2, maxActive: 2));
        Ok(tight.Write(Z(0), Blocks(1, 1)));
        Ok(tight.Write(Z(1), Blocks(1, 1)));
        AssertStatus(NvmeStatus.TooManyActiveZones, tight.Write(Z(2), Blocks(1, 1)));
        Assert.Equal(ZoneState.Closed, tight.GetZone(0).State); // QEMU closes before it checks
    }

    [Fact]
    public void SelectAllAppliesPerActionMasks()
    {
        using var ns = Ram(Small());
        Ok(ns.Write(Z(0), Blocks(1, 1)));                               // IO
        Ok(ns.ZoneManagementSend(Z(1), ZoneSendAction.Open, false));    // EO
        Ok(ns.Write(Z(2), Blocks(1, 1)));
        Ok(ns.ZoneManagementSend(Z(2), ZoneSendAction.Close, false));   // C
        Ok(ns.ZoneManagementSend(Z(3), ZoneSendAction.Finish, false));  // F
        Ok(ns.ZoneManagementSend(0, ZoneSendAction.Close, true));
        Assert.Equal([ZoneState.Closed, ZoneState.Closed, ZoneState.Closed, ZoneState.Full, ZoneState.Empty],
            Enumerable.Range(0, 5).Select(i => ns.GetZone((uint)i).State));
        Ok(ns.ZoneManagementSend(0, ZoneSendAction.Open, true));
        Assert.Equal([ZoneState.ExplicitlyOpened, ZoneState.ExplicitlyOpened, ZoneState.ExplicitlyOpened, ZoneState.Full, ZoneState.Empty],
            Enumerable.Range(0, 5).Select(i => ns.GetZone((uint)i).State));
        Ok(ns.ZoneManagementSend(0, ZoneSendAction.Finish, true));
        Assert.Equal([ZoneState.Full, ZoneState.Full, ZoneState.Full, ZoneState.Full, ZoneState.Empty],
            Enumerable.Range(0, 5).Select(i => ns.GetZone((uint)i).State));
        Ok(ns.ZoneManagementSend(12345, ZoneSendAction.Reset, true)); // SLBA is ignored with Select All
        Assert.All(Enumerable.Range(0, 8), i => Assert.Equal(ZoneState.Empty, ns.GetZone((uint)i).State));
        AssertStatus(NvmeStatus.InvalidField, ns.ZoneManagementSend(0, ZoneSendAction.SetDescriptorExtension, true, new byte[64]));
    }

    [Fact]
    public void WriteZeroesFollowsWritePointerRules()
    {
        using var ns = Ram(Small());
        AssertStatus(NvmeStatus.ZoneInvalidWrite, ns.WriteZeroes(Z(0) + 1, 1));
        Ok(ns.WriteZeroes(Z(0), 4));
        Assert.Equal(Z(0) + 4, ns.GetZone(0).WritePointer);
        Assert.Equal(ZoneState.ImplicitlyOpened, ns.GetZone(0).State);
    }

    [Fact]
    public async Task ConcurrentAppendsToOneZoneGetDistinctDenseLbas()
    {
        var options = new NamespaceOptions { LogicalBlockSize = 512, ZoneSize = 1 << 20 };
        using var ns = ZonedNamespace.CreateInMemory(4 << 20, options);
        const int PerTask = 250;
        var lbas = new System.Collections.Concurrent.ConcurrentBag<ulong>();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            var data = new byte[Bs];
            for (int i = 0; i < PerTask; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(data, (ulong)(t * 1000 + i));
                Ok(ns.Append(2048, data, out ulong lba));
                lbas.Add(lba);
            }
        })));
        var sorted = lbas.OrderBy(x => x).ToArray();
        Assert.Equal(Enumerable.Range(0, 8 * PerTask).Select(i => 2048ul + (ulong)i), sorted);
        Assert.Equal(2048ul + 8 * PerTask, ns.GetZone(1).WritePointer);
        // Every block holds exactly one task's data: the data of an append is where its ALBA says.
        var seen = new HashSet<ulong>();
        var block = new byte[Bs];
        foreach (ulong lba in sorted)
        {
            Ok(ns.Read(lba, block));
            Assert.True(seen.Add(BinaryPrimitives.ReadUInt64LittleEndian(block)));
        }
    }

    [Fact]
    public async Task ParallelWritersOnDifferentZonesAllLand()
    {
        var options = new NamespaceOptions { LogicalBlockSize = 4096, ZoneSize = 1 << 20 };
        using var ns = ZonedNamespace.CreateInMemory(16 << 20, options);
        await Task.WhenAll(Enumerable.Range(0, 16).Select(z => Task.Run(() =>
        {
            var data = new byte[4096];
            for (int i = 0; i < 256; i++)
            {
                data[0] = (byte)z;
                data[1] = (byte)i;
                Ok(ns.Write((ulong)(z * 256 + i), data));
            }
        })));
        var counts = ns.CountZones();
        Assert.Equal(16u, counts.Full);
        var block = new byte[4096];
        Ok(ns.Read(5 * 256 + 77, block));
        Assert.Equal((5, 77), (block[0], block[1]));
    }
}

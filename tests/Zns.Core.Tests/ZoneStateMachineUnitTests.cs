using Zns.Nvme;
using Zns.Core.Zones;
using static Zns.Core.Tests.TestNamespaces;

namespace Zns.Core.Tests;

/// <summary>
/// The zone state machine on its own: no backstore, no locks, no namespace around it. Geometry: 8 zones of 16
/// blocks, capacity 12 (<see cref="TestNamespaces.Small"/>).
/// </summary>
public class ZoneStateMachineUnitTests
{
    private static ZoneStateMachine Machine(NamespaceOptions options) => new(ZoneGeometry.Create(options, 8 * options.ZoneSize));

    private static ulong Z(uint zone) => zone * 16ul;

    private static void Ok(NvmeStatus s) => Assert.True(s.IsSuccess, $"expected success, got {s}");

    [Fact]
    public void CountsFollowEveryTransition()
    {
        var m = Machine(Small());
        Ok(m.Open(0, implicitly: true));
        Ok(m.Open(1, implicitly: false));
        Assert.Equal((2u, 2u), (m.OpenCount, m.ActiveCount));
        Ok(m.Close(0));
        Assert.Equal((1u, 2u), (m.OpenCount, m.ActiveCount));
        Ok(m.Finish(0));
        Assert.Equal((1u, 1u), (m.OpenCount, m.ActiveCount));
        Ok(m.Reset(1, out ulong released));
        Assert.Equal(Z(1), released);
        Assert.Equal((0u, 0u), (m.OpenCount, m.ActiveCount));
        Assert.Equal(ZoneState.Full, m.StateOf(0));
        Assert.Equal(ZoneState.Empty, m.StateOf(1));
        Assert.Equal(new ZoneStateCounts(7, 0, 0, 0, 1, 0, 0), m.CountZones());
    }

    [Fact]
    public void AtTheOpenLimitAnImplicitOpenClosesTheOldestImplicitlyOpenedZone()
    {
        var m = Machine(Small(maxOpen: 2));
        Ok(m.Open(3, implicitly: true));
        Ok(m.Open(1, implicitly: true));
        Ok(m.Open(5, implicitly: true));
        Assert.Equal(ZoneState.Closed, m.StateOf(3));
        Assert.Equal([1u, 5u], m.ListOrder(ZoneStateMachine.ImplicitList));
        Assert.Equal([3u], m.ListOrder(ZoneStateMachine.ClosedList));
        Assert.Equal((2u, 3u), (m.OpenCount, m.ActiveCount));
    }

    [Fact]
    public void ExplicitlyOpenedZonesAreNeverAutoClosed()
    {
        var m = Machine(Small(maxOpen: 1));
        Ok(m.Open(0, implicitly: false));
        Assert.Equal(NvmeStatus.TooManyOpenZones, m.Open(1, implicitly: true));
        Assert.Equal(ZoneState.ExplicitlyOpened, m.StateOf(0));
        Assert.Equal(ZoneState.Empty, m.StateOf(1));
    }

    [Fact]
    public void WithoutAutoTransitionTheOpenLimitRefuses()
    {
        var m = Machine(Small(maxOpen: 1, autoTransition: false));
        Ok(m.Open(0, implicitly: true));
        Assert.Equal(NvmeStatus.TooManyOpenZones, m.Open(1, implicitly: true));
        Assert.Equal(ZoneState.ImplicitlyOpened, m.StateOf(0));
    }

    [Fact]
    public void DescriptorExtensionTakesAnActiveResource()
    {
        var m = Machine(Small(maxActive: 1));
        byte[] ext = Enumerable.Repeat((byte)7, 64).ToArray();
        Ok(m.SetDescriptorExtension(2, ext));
        Assert.Equal(ZoneState.Closed, m.StateOf(2));
        Assert.Equal(ext, m.ExtensionOf(2).ToArray());
        Assert.Equal(NvmeStatus.TooManyActiveZones, m.Open(0, implicitly: true));
        // Reopening the closed zone needs no new active resource.
        Ok(m.Open(2, implicitly: false));
        Ok(m.Reset(2, out _));
        Assert.All(m.ExtensionOf(2).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(ZoneAttributes.None, m.Snapshot(2).Attributes);
    }

    [Fact]
    public void WriteKeepsStateOnlyForOpenZonesBelowCapacity()
    {
        var m = Machine(Small());
        Assert.False(m.WriteKeepsState(0, Z(0), 1)); // Empty: the write opens it
        Ok(m.Open(0, implicitly: true));
        Assert.True(m.WriteKeepsState(0, Z(0), 11));
        Assert.False(m.WriteKeepsState(0, Z(0), 12)); // reaches the capacity: the write finishes it
        Ok(m.Close(0));
        Assert.False(m.WriteKeepsState(0, Z(0), 1)); // Closed: the write reopens it
    }

    [Fact]
    public void WriteKeepsStateIsFalseForAZoneWithARandomWriteArea()
    {
        var m = Machine(Small() with { Zrwas = 4 * 512, Zrwafg = 2 * 512 });
        Ok(m.OpenWithZrwa(0));
        Assert.True(m.HasZrwa(0));
        Assert.False(m.WriteKeepsState(0, Z(0), 1));
    }

    [Fact]
    public void CompleteWriteAdvancesAndFinishesAtCapacity()
    {
        var m = Machine(Small());
        Ok(m.Open(4, implicitly: true));
        Ok(m.CheckWrite(4, Z(4), 5));
        m.CompleteWrite(4, Z(4), 5);
        Assert.Equal(Z(4) + 5, m.WritePointerOf(4));
        Assert.Equal(Z(4) + 5, m.DataEnd(4));
        Assert.Equal(NvmeStatus.ZoneInvalidWrite, m.CheckWrite(4, Z(4), 1));
        Assert.Equal(NvmeStatus.ZoneBoundaryError, m.CheckWrite(4, Z(4) + 5, 8));
        m.CompleteWrite(4, Z(4) + 5, 7);
        Assert.Equal(ZoneState.Full, m.StateOf(4));
        Assert.Equal((0u, 0u), (m.OpenCount, m.ActiveCount));
        Assert.Equal(NvmeStatus.ZoneIsFull, m.CheckWrite(4, Z(4) + 12, 1));
    }

    [Fact]
    public void RestoreAppliesThePowerCycleRuleAndRejectsImpossibleRecords()
    {
        var m = Machine(Small());
        var records = new ZoneRecord[8];
        for (uint i = 0; i < 8; i++)
        {
            records[i] = new ZoneRecord { WritePointer = Z(i), State = ZoneState.Empty };
        }
        records[1] = new ZoneRecord { WritePointer = Z(1) + 3, State = ZoneState.ImplicitlyOpened };
        records[2] = new ZoneRecord { WritePointer = Z(2), State = ZoneState.ExplicitlyOpened };
        records[3] = new ZoneRecord { WritePointer = Z(3) + 12, State = ZoneState.Full };
        records[4] = new ZoneRecord { WritePointer = Z(4) + 2, State = ZoneState.Closed, Attributes = ZoneAttributes.ZrwaValid };
        m.Restore(records, new byte[8 * 64]);
        Assert.Equal(ZoneState.Closed, m.StateOf(1));
        Assert.Equal(ZoneState.Empty, m.StateOf(2));
        Assert.Equal(ZoneState.Full, m.StateOf(3));
        Assert.Equal(ZoneState.Closed, m.StateOf(4));
        Assert.False(m.HasZrwa(4)); // a restart closes every ZRWA
        Assert.Equal((0u, 2u), (m.OpenCount, m.ActiveCount));

        records[5] = new ZoneRecord { WritePointer = Z(5) + 13, State = ZoneState.Closed };
        Assert.Throws<InvalidDataException>(() => Machine(Small()).Restore(records, new byte[8 * 64]));
    }

    [Fact]
    public void ShutdownClosesOpenZonesWithDataAndEmptiesTheRest()
    {
        var m = Machine(Small());
        Ok(m.Open(0, implicitly: true));
        m.CompleteWrite(0, Z(0), 2);
        Ok(m.Open(1, implicitly: false));
        Ok(m.Open(2, implicitly: true));
        m.CompleteWrite(2, Z(2), 1);
        Ok(m.Open(3, implicitly: false));
        Ok(m.Close(3));
        m.Shutdown();
        Assert.Equal(ZoneState.Closed, m.StateOf(0));
        Assert.Equal(ZoneState.Empty, m.StateOf(1));
        Assert.Equal(ZoneState.Closed, m.StateOf(2));
        Assert.Equal(ZoneState.Empty, m.StateOf(3)); // closed without data or extension
        Assert.Equal((0u, 2u), (m.OpenCount, m.ActiveCount));
        // Each zone closed by the shutdown went to the head of the closed list, in walk order.
        Assert.Equal([2u, 0u], m.ListOrder(ZoneStateMachine.ClosedList));
    }

    [Fact]
    public void WalkListsFollowsListOrderAndStopsAtTheFirstFailure()
    {
        var m = Machine(Small(maxOpen: 2, autoTransition: false));
        foreach (uint zi in (uint[])[6, 2, 4])
        {
            Ok(m.Open(zi, implicitly: false));
            Ok(m.Close(zi));
        }
        var seen = new List<uint>();
        var status = m.WalkLists(zi =>
        {
            seen.Add(zi);
            return m.Open(zi, implicitly: false);
        }, [ZoneStateMachine.ClosedList]);
        Assert.Equal(NvmeStatus.TooManyOpenZones, status);
        Assert.Equal([6u, 2u, 4u], seen);
        Assert.Equal(ZoneState.Closed, m.StateOf(4));
    }

    [Fact]
    public void ControllerChangesReportUnchangedWhenTheZoneAlreadyIsAsAsked()
    {
        var m = Machine(Small());
        Ok(m.Open(0, implicitly: true));
        Ok(m.MakeReadOnly(0));
        Assert.Equal((0u, 0u), (m.OpenCount, m.ActiveCount));
        Assert.Equal(ZoneStateMachine.Unchanged, m.MakeReadOnly(0));
        Ok(m.MakeOffline(0));
        Assert.Equal(NvmeStatus.InvalidZoneStateTransition, m.MakeReadOnly(0));
        Ok(m.Repair(0, out _));
        Assert.Equal(ZoneState.Empty, m.StateOf(0));
        Ok(m.FinishByController(0));
        Assert.Equal(ZoneState.Full, m.StateOf(0));
        Assert.Equal(ZoneStateMachine.Unchanged, m.FinishByController(0));
        Assert.Equal(ZoneAttributes.FinishedByController, m.Snapshot(0).Attributes);
    }
}

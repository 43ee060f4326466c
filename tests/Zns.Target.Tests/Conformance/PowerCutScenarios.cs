using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Target.Controller;
using static Zns.Target.Tests.Conformance.Conformance;
using static Zns.Target.Tests.Conformance.ConformanceTarget;

namespace Zns.Target.Tests.Conformance;

/// <summary>
/// Power cuts of the subsystem through every front end: the host loses its controller, sets it up again once power
/// is back, and reads back what the policy kept: flushed and FUA data, not the rest (zeros, write pointers moved
/// back), on the zoned and the conventional namespace.
/// </summary>
public sealed class PowerCutConformance
{
    private static readonly Dictionary<string, Func<FrontEnd, Task>> Scenarios = new()
    {
        [nameof(KeepNoneDropsWhatWasNotFlushed)] = KeepNoneDropsWhatWasNotFlushed,
        [nameof(KeepAllKeepsEverythingAndPowerCyclesZones)] = KeepAllKeepsEverythingAndPowerCyclesZones,
    };

    public static TheoryData<string, FrontEndKind> Runs => Conformance.Runs(Scenarios.Keys);
    public static TheoryData<string> Names => new(Scenarios.Keys);

    [Theory, MemberData(nameof(Runs))]
    public Task Run(string scenario, FrontEndKind kind) => RunAsync(kind, Scenarios[scenario]);

    [Theory, MemberData(nameof(Names))]
    public Task Parity(string scenario) => ParityAsync(Scenarios[scenario]);

    private static SubmissionQueueEntry Flush(uint nsid) => Sqe.Create(IoOpcode.Flush, nsid);

    private static SubmissionQueueEntry Fua(SubmissionQueueEntry sqe)
    {
        sqe.SetCdw(12, sqe.Cdw12 | 1u << 30);
        return sqe;
    }

    private static async Task KeepNoneDropsWhatWasNotFlushed(FrontEnd fe)
    {
        // Zone 0: 4 blocks flushed, 2 more not. Zone 1: 2 blocks with FUA, 1 more not.
        byte[] flushed = await WriteOkAsync(fe, 0, 4, 1);
        Ok(await fe.IoAsync(Flush(ZonedNsid)));
        await WriteOkAsync(fe, 4, 2, 2);
        byte[] fua = Blocks(2, 3);
        Ok(await fe.IoAsync(Fua(Write(ZoneStart(1), 2)), fua));
        await WriteOkAsync(fe, ZoneStart(1) + 2, 1, 4);
        // Conventional: block 0 flushed, then overwritten; block 1 written, never flushed.
        byte[] convFlushed = await WriteOkAsync(fe, 0, 1, 5, ConventionalNsid);
        Ok(await fe.IoAsync(Flush(ConventionalNsid)));
        await WriteOkAsync(fe, 0, 2, 6, ConventionalNsid);

        SubsystemPowerCut cut = fe.Target.Subsystem.CutPower(null, new PowerCutPolicy(PowerCutKeep.None, false, 0), offMs: 50, "conformance");
        Assert.True(fe.Target.Subsystem.IsPoweredOff);
        var (_, zoned) = Assert.Single(cut.Namespaces, n => n.Nsid == ZonedNsid);
        Assert.Equal([(0u, 6ul, 4ul, 4ul, 2ul), (1u, ZoneStart(1) + 3, ZoneStart(1) + 2, ZoneStart(1) + 2, 1ul)],
            zoned.Zones.Select(z => (z.Zone, z.WritePointerBefore, z.DurableWritePointer, z.WritePointerAfter, z.BlocksDropped)));
        Assert.Equal(2ul, Assert.Single(cut.Namespaces, n => n.Nsid == ConventionalNsid).Report.BlocksDropped);

        await fe.ReconnectAsync();
        Assert.False(fe.Target.Subsystem.IsPoweredOff);

        Assert.Equal((ZoneState.Closed, 4ul), Pick(await ZoneAsync(fe, 0)));
        await ReadsAsync(fe, 0, [.. flushed, .. new byte[2 * BlockSize]]);
        Assert.Equal((ZoneState.Closed, ZoneStart(1) + 2), Pick(await ZoneAsync(fe, 1)));
        await ReadsAsync(fe, ZoneStart(1), [.. fua, .. new byte[BlockSize]]);
        await ReadsAsync(fe, 0, [.. convFlushed, .. new byte[BlockSize]], ConventionalNsid);

        // The host writes on at the restored write pointer; a write at its old idea of it is refused.
        Fails(await fe.IoAsync(Write(6, 1), Blocks(1, 7)), NvmeStatus.ZoneInvalidWrite);
        byte[] more = await WriteOkAsync(fe, 4, 1, 8);
        await ReadsAsync(fe, 0, [.. flushed, .. more]);
    }

    private static async Task KeepAllKeepsEverythingAndPowerCyclesZones(FrontEnd fe)
    {
        byte[] data = await WriteOkAsync(fe, 0, 3, 11);
        Ok(await fe.IoAsync(ZoneSend(2, ZoneSendAction.Open)));

        SubsystemPowerCut cut = fe.Target.Subsystem.CutPower(ZonedNsid, new PowerCutPolicy(PowerCutKeep.All, false, 0), offMs: 0, "conformance");
        Assert.Equal(0ul, Assert.Single(cut.Namespaces).Report.BlocksDropped);
        Assert.Equal(3ul, Assert.Single(cut.Namespaces).Report.BlocksKept);

        await fe.ReconnectAsync();
        Assert.Equal((ZoneState.Closed, 3ul), Pick(await ZoneAsync(fe, 0)));
        Assert.Equal(ZoneState.Empty, (await ZoneAsync(fe, 2)).State);
        await ReadsAsync(fe, 0, data);
        Assert.Equal(cut, fe.Target.Subsystem.PowerCuts[^1]);
    }

    private static (ZoneState, ulong) Pick((ZoneState State, ulong WritePointer, ZoneAttributes _) z) => (z.State, z.WritePointer);
}

/// <summary>
/// Cuts armed by a scenario, over the fabric front ends (where the command that meets the cut fails at once with its
/// dropped connection; over PCIe it simply never completes, which only a timeout shows).
/// </summary>
public sealed class ArmedPowerCutTests
{
    public static TheoryData<FrontEndKind> FabricKinds => new(FrontEndKind.Tcp, FrontEndKind.Loop);

    private static async Task LostAsync(Func<Task<Completion>> command)
    {
        try
        {
            Completion c = await command();
            Assert.False(c.Status.IsSuccess, $"{c}: completed successfully across a power cut");
        }
        catch (Exception e) when (e is InvalidOperationException or Xunit.Sdk.XunitException)
        {
            // The connection went with the power.
        }
    }

    [Theory, MemberData(nameof(FabricKinds))]
    public Task At_the_nth_command_that_command_is_not_executed(FrontEndKind kind) => RunAsync(kind, async fe =>
    {
        fe.Target.Subsystem.ArmPowerCut(new PowerCutArm(null, new PowerCutPolicy(PowerCutKeep.None, false, 0), 0, AtCommand: 3, AfterFlushes: null));
        byte[] first = await WriteOkAsync(fe, 0, 1, 1);
        Ok(await fe.IoAsync(Sqe.Create(IoOpcode.Flush, ZonedNsid)));
        await LostAsync(() => fe.IoAsync(Write(1, 1), Blocks(1, 2)));
        await fe.Target.Subsystem.PoweredOn.WaitAsync(Conformance.Timeout);
        var cut = Assert.Single(fe.Target.Subsystem.PowerCuts);
        Assert.Equal("at command 3", cut.Trigger);
        Assert.Null(fe.Target.Subsystem.ArmedPowerCut);

        await fe.ReconnectAsync();
        Assert.Equal(1ul, (await ZoneAsync(fe, 0)).WritePointer);
        await ReadsAsync(fe, 0, [.. first, .. new byte[BlockSize]]);
    });

    [Theory, MemberData(nameof(FabricKinds))]
    public Task After_the_nth_flush_its_data_is_kept_and_later_writes_are_not(FrontEndKind kind) => RunAsync(kind, async fe =>
    {
        fe.Target.Subsystem.ArmPowerCut(new PowerCutArm(ZonedNsid, new PowerCutPolicy(PowerCutKeep.None, false, 0), 20, AtCommand: null, AfterFlushes: 2));
        byte[] a = await WriteOkAsync(fe, 0, 2, 3);
        Ok(await fe.IoAsync(Sqe.Create(IoOpcode.Flush, ZonedNsid)));
        byte[] b = await WriteOkAsync(fe, 2, 2, 4);
        await LostAsync(() => fe.IoAsync(Sqe.Create(IoOpcode.Flush, ZonedNsid)));
        await fe.Target.Subsystem.PoweredOn.WaitAsync(Conformance.Timeout);
        Assert.Equal("after flush 2", Assert.Single(fe.Target.Subsystem.PowerCuts).Trigger);

        await fe.ReconnectAsync();
        Assert.Equal(4ul, (await ZoneAsync(fe, 0)).WritePointer);
        await ReadsAsync(fe, 0, [.. a, .. b]);
    });

    [Fact]
    public Task A_pcie_function_reads_as_not_ready_while_off_and_returns_fatal_for_the_host_to_reset() => RunAsync(FrontEndKind.Pcie, async fe =>
    {
        var pcie = (PcieFrontEnd)fe;
        await WriteOkAsync(fe, 0, 2, 5);
        var off = System.Diagnostics.Stopwatch.StartNew();
        fe.Target.Subsystem.CutPower(null, new PowerCutPolicy(PowerCutKeep.None, false, 0), offMs: 300, "test");
        // Off: not all ones (Linux would take the device for removed), not ready.
        Assert.Equal(0u, pcie.Csts);
        await fe.Target.Subsystem.PoweredOn.WaitAsync(Conformance.Timeout);
        Assert.True(off.ElapsedMilliseconds >= 250, $"power came back after {off.ElapsedMilliseconds} ms");
        // Back: a new controller with CSTS.CFS (and RDY = 0) until the host resets it.
        Assert.Equal(2u, pcie.Csts);
        await fe.ReconnectAsync();
        Assert.Equal(1u, pcie.Csts);
        await ReadsAsync(fe, 0, new byte[2 * BlockSize]);
        Assert.Equal(0ul, (await ZoneAsync(fe, 0)).WritePointer);
    });

    [Fact]
    public Task A_pcie_doorbell_rung_while_off_is_dropped() => RunAsync(FrontEndKind.Pcie, async fe =>
    {
        var pcie = (PcieFrontEnd)fe;
        byte[] kept = await WriteOkAsync(fe, 0, 2, 6);
        Ok(await fe.IoAsync(Sqe.Create(IoOpcode.Flush, ZonedNsid)));
        fe.Target.Subsystem.CutPower(null, new PowerCutPolicy(PowerCutKeep.None, false, 0), offMs: 100, "test");
        // What Linux's timeout handler does while the registers read zeros: an Abort on the admin queue, a retry on
        // the I/O queue. The controller that comes back must start from empty queues, not fetch up to these tails.
        pcie.RingDoorbell(0, 5);
        pcie.RingDoorbell(2, 3);
        await fe.Target.Subsystem.PoweredOn.WaitAsync(Conformance.Timeout);
        await pcie.ReconnectAsync(settle: TimeSpan.FromMilliseconds(100));
        Assert.Equal(2ul, (await ZoneAsync(fe, 0)).WritePointer);
        await ReadsAsync(fe, 0, kept);
    });

    [Fact]
    public void Bad_requests_are_refused_naming_the_field()
    {
        using var host = new ConformanceTarget(TargetSpec.Default);
        NvmeSubsystem s = host.Target.Subsystem;
        var none = new PowerCutPolicy(PowerCutKeep.None, false, 0);
        Assert.StartsWith("nsid:", Assert.Throws<ArgumentException>(() => s.CutPower(9, none, 0, "t")).Message);
        Assert.StartsWith("off-ms:", Assert.Throws<ArgumentException>(() => s.CutPower(null, none, -1, "t")).Message);
        Assert.StartsWith("torn:", Assert.Throws<ArgumentException>(() => s.CutPower(null, none with { Torn = true }, 0, "t")).Message);
        Assert.StartsWith("at-command:", Assert.Throws<ArgumentException>(() => s.ArmPowerCut(new PowerCutArm(null, none, 0, null, null))).Message);
        Assert.StartsWith("at-command:", Assert.Throws<ArgumentException>(() => s.ArmPowerCut(new PowerCutArm(null, none, 0, 0, null))).Message);
        Assert.StartsWith("after-flushes:", Assert.Throws<ArgumentException>(() => s.ArmPowerCut(new PowerCutArm(null, none, 0, null, -2))).Message);
        Assert.Empty(s.PowerCuts);
        Assert.False(s.IsPoweredOff);
        Assert.False(host.Target.Faults.Armed);
    }
}

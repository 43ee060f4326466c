using Zns.Core.Faults;
using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Protocol;
using static Zns.Target.Tests.Conformance.Conformance;
using static Zns.Target.Tests.Conformance.ConformanceTarget;

namespace Zns.Target.Tests.Conformance;

/// <summary>
/// Every fault kind of the target's <see cref="FaultPlan"/> armed, through every front end: the statuses are the
/// injected ones, and every block is read back afterwards, so a fault that lets the wrong data land is caught, not
/// only one with the wrong status.
/// </summary>
public sealed class FaultConformance
{
    private static readonly Dictionary<string, Func<FrontEnd, Task>> Scenarios = new()
    {
        [nameof(DelayedWritesInBatches)] = DelayedWritesInBatches,
        [nameof(MediaErrors)] = MediaErrors,
        [nameof(TransientFailures)] = TransientFailures,
    };

    public static TheoryData<string, FrontEndKind> Runs => Conformance.Runs(Scenarios.Keys);
    public static TheoryData<string> Names => new(Scenarios.Keys);

    [Theory, MemberData(nameof(Runs))]
    public Task Run(string scenario, FrontEndKind kind) => RunAsync(kind, Scenarios[scenario]);

    [Theory, MemberData(nameof(Names))]
    public Task Parity(string scenario) => ParityAsync(Scenarios[scenario]);

    private static readonly TimeSpan Latency = TimeSpan.FromMilliseconds(100);

    /// <summary>The injected latency runs on .NET timers, which may fire a tick early: 90 % of it is the lower bound.</summary>
    private static readonly TimeSpan AtLeast = Latency * 0.9;

    /// <summary>
    /// Writes delayed by a latency rule, sent back to back as a host with a deep queue sends them: three writes to
    /// three zones in one batch (one receive over TCP, where they share one receive buffer; over the loop each lent
    /// from its one receive buffer, overwritten once the controller releases it), and while they wait,
    /// a second batch of writes (the next receive). Each write must land its own data; then the reads, delayed
    /// too, return every block.
    /// </summary>
    private static async Task DelayedWritesInBatches(FrontEnd fe)
    {
        fe.Target.Faults.Add(new LatencyRule(IoOpcode.Write, LatencyDistribution.Fixed, Latency.TotalMicroseconds));
        // In-capsule over TCP (2 blocks = 8 KiB), PRP1 + PRP2 over PCIe.
        Command WriteOf(uint zone, ulong offset, int seed) => new(Write(ZoneStart(zone) + offset, 2), Blocks(2, seed));
        Command[] first = [WriteOf(0, 0, 1), WriteOf(1, 0, 2), WriteOf(2, 0, 3)];
        // The second batch continues zones 0 and 1 at the write pointers the first batch leaves: writes must stay in order.
        Command[] second = [WriteOf(3, 0, 4), WriteOf(0, 2, 5), WriteOf(1, 2, 6)];
        Completion[][] done = await fe.IoBatchesAsync(first, second);
        Assert.All(done.SelectMany(b => b), Ok);
        Assert.True(done[0][0].Elapsed >= AtLeast, $"{fe.Kind}: the first write took {done[0][0].Elapsed.TotalMilliseconds} ms");

        fe.Target.Faults.Add(new LatencyRule(IoOpcode.Read, LatencyDistribution.Fixed, Latency.TotalMicroseconds));
        (uint Zone, byte[] Data)[] expected =
        [
            (0, [.. Blocks(2, 1), .. Blocks(2, 5)]),
            (1, [.. Blocks(2, 2), .. Blocks(2, 6)]),
            (2, Blocks(2, 3)),
            (3, Blocks(2, 4)),
        ];
        Completion[] reads = (await fe.IoBatchesAsync([.. expected.Select(e => new Command(Read(ZoneStart(e.Zone), e.Data.Length / BlockSize), DataInLength: e.Data.Length))]))[0];
        foreach (var (read, (zone, data)) in reads.Zip(expected))
        {
            Ok(read);
            AssertData(data, read.Data, $"{fe.Kind}: zone {zone} read back after delayed writes");
            Assert.True(read.Elapsed >= AtLeast, $"{fe.Kind}: a delayed read took {read.Elapsed.TotalMilliseconds} ms");
        }
        fe.Target.Faults.Clear();
        Assert.Equal(4UL, (await ZoneAsync(fe, 0)).WritePointer);
    }

    private static async Task MediaErrors(FrontEnd fe)
    {
        byte[] data = await WriteOkAsync(fe, 0, 8, 10);
        // A read error on LBAs 3-4, once: a read beside the range works, one over it fails without DNR, the retry works.
        fe.Target.Faults.Add(new MediaErrorRule(ZonedNsid, 3, 2, MediaAccess.Read, new FaultTrigger(Times: 1)));
        await ReadsAsync(fe, 0, data[..(3 * BlockSize)]);
        Fails(await fe.IoAsync(Read(2, 2), dataInLength: 2 * BlockSize), NvmeStatus.UnrecoveredReadError, dnr: false);
        await ReadsAsync(fe, 0, data);
        Assert.False(fe.Target.Faults.Armed);

        // A write error over zone 1, with DNR, until removed: writes and appends fail and the write pointer stays.
        MediaErrorRule rule = fe.Target.Faults.Add(new MediaErrorRule(ZonedNsid, ZoneStart(1), ZoneLbas, MediaAccess.Write, FaultTrigger.Always, Dnr: true));
        Fails(await fe.IoAsync(Write(ZoneStart(1), 2), Blocks(2, 11)), NvmeStatus.WriteFault);
        Fails(await fe.IoAsync(Append(ZoneStart(1), 1), Blocks(1, 11)), NvmeStatus.WriteFault);
        var zone = await ZoneAsync(fe, 1);
        Assert.Equal((ZoneState.Empty, ZoneStart(1)), (zone.State, zone.WritePointer));
        await ReadsAsync(fe, ZoneStart(1), new byte[2 * BlockSize]);
        byte[] outside = await WriteOkAsync(fe, 8, 1, 12);
        Assert.True(fe.Target.Faults.Remove(rule.Id));
        byte[] after = await WriteOkAsync(fe, ZoneStart(1), 2, 13);
        await ReadsAsync(fe, ZoneStart(1), after);
        await ReadsAsync(fe, 0, [.. data, .. outside]);
    }

    private static async Task TransientFailures(FrontEnd fe)
    {
        // Two writes fail with Namespace Not Ready (no DNR), the third lands; the failed ones wrote nothing.
        fe.Target.Faults.Add(new TransientRule(IoOpcode.Write, ZonedNsid, NvmeStatus.NamespaceNotReady, new FaultTrigger(Times: 2)));
        Fails(await fe.IoAsync(Write(0, 1), Blocks(1, 20)), NvmeStatus.NamespaceNotReady, dnr: false);
        Fails(await fe.IoAsync(Write(0, 1), Blocks(1, 21)), NvmeStatus.NamespaceNotReady, dnr: false);
        byte[] data = await WriteOkAsync(fe, 0, 1, 22);
        Assert.Equal(1UL, (await ZoneAsync(fe, 0)).WritePointer);

        // A read aborted once (Command Abort Requested), then read again; an append refused once.
        fe.Target.Faults.Add(new TransientRule(IoOpcode.Read, null, NvmeStatus.AbortRequested, new FaultTrigger(Times: 1)));
        Fails(await fe.IoAsync(Read(0, 1), dataInLength: BlockSize), NvmeStatus.AbortRequested, dnr: false);
        await ReadsAsync(fe, 0, data);
        fe.Target.Faults.Add(new TransientRule(IoOpcode.ZoneAppend, null, NvmeStatus.NamespaceNotReady, new FaultTrigger(Times: 1)));
        Fails(await fe.IoAsync(Append(0, 1), Blocks(1, 23)), NvmeStatus.NamespaceNotReady, dnr: false);
        Completion appended = await fe.IoAsync(Append(0, 1), Blocks(1, 24));
        Ok(appended);
        Assert.Equal(1UL, appended.Result);
        await ReadsAsync(fe, 0, [.. data, .. Blocks(1, 24)]);
        Assert.False(fe.Target.Faults.Armed);
    }
}

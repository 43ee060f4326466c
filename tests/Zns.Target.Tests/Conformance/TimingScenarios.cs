using Zns.Nvme;
using Zns.Core.Timing;
using Zns.Core.Zones;
using static Zns.Target.Tests.Conformance.Conformance;
using static Zns.Target.Tests.Conformance.ConformanceTarget;

namespace Zns.Target.Tests.Conformance;

/// <summary>
/// The timing model on: completions are held back for the model's time through every front end, while statuses,
/// results and data stay exactly those without it. Only lower bounds are asserted (the machine may be slow).
/// </summary>
public sealed class TimingConformance
{
    private static readonly Dictionary<string, Func<FrontEnd, Task>> Scenarios = new()
    {
        [nameof(TimedCommands)] = TimedCommands,
    };

    public static TheoryData<string, FrontEndKind> Runs => Conformance.Runs(Scenarios.Keys);
    public static TheoryData<string> Names => new(Scenarios.Keys);

    [Theory, MemberData(nameof(Runs))]
    public Task Run(string scenario, FrontEndKind kind) => RunAsync(kind, Scenarios[scenario]);

    [Theory, MemberData(nameof(Names))]
    public Task Parity(string scenario) => ParityAsync(Scenarios[scenario]);

    private const int DelayMs = 40;

    private static void Delayed(Completion c, FrontEnd fe) =>
        Assert.True(c.Elapsed >= TimeSpan.FromMilliseconds(DelayMs - 1), $"{fe.Kind}: {c} completed after {c.Elapsed.TotalMilliseconds:F1} ms");

    private static async Task TimedCommands(FrontEnd fe)
    {
        fe.Target.Subsystem.SetTiming(ZonedNsid, new NamespaceOptions().WithQemuOptions(
            $"timing=fixed,timing.read_us={DelayMs * 1000},timing.write_us={DelayMs * 1000},timing.append_us={DelayMs * 1000},timing.reset_ms={DelayMs}").Timing);
        Assert.Equal(TimingMode.Fixed, fe.Target.Subsystem.GetTiming(ZonedNsid).Mode);

        byte[] data = Blocks(3, 1);
        Completion write = await fe.IoAsync(Write(0, 3), data);
        Ok(write);
        Delayed(write, fe);
        Completion append = await fe.IoAsync(Append(ZoneStart(1), 1), Blocks(1, 2));
        Ok(append);
        Assert.Equal(ZoneStart(1), append.Result);
        Delayed(append, fe);

        // Outstanding together, each held back, none changed.
        Completion[] reads = (await fe.IoBatchesAsync(
            [new Command(Read(0, 3), DataInLength: 3 * BlockSize), new Command(Read(ZoneStart(1), 1), DataInLength: BlockSize), new Command(Read(3, 1), DataInLength: BlockSize)]))[0];
        Assert.All(reads, Ok);
        Assert.All(reads, r => Delayed(r, fe));
        AssertData(data, reads[0].Data, $"{fe.Kind}: timed read");
        AssertData(Blocks(1, 2), reads[1].Data, $"{fe.Kind}: timed read of the appended block");
        AssertData(new byte[BlockSize], reads[2].Data, $"{fe.Kind}: timed read past the write pointer");

        // A failing command keeps its status (and is not held back: only lower bounds are checked here).
        Fails(await fe.IoAsync(Write(5, 1), Blocks(1, 3)), NvmeStatus.ZoneInvalidWrite);
        Fails(await fe.IoAsync(Read(ZoneLbas - 1, 2), dataInLength: 2 * BlockSize), NvmeStatus.ZoneBoundaryError);
        Fails(await fe.IoAsync(Compare(0, 3), Blocks(3, 4)), NvmeStatus.CompareFailure);

        Completion reset = await fe.IoAsync(ZoneSend(0, ZoneSendAction.Reset));
        Ok(reset);
        Delayed(reset, fe);
        Assert.Equal((ZoneState.Empty, 0UL), await ZoneStateAsync(fe, 0));
        Completion zeros = await fe.IoAsync(Read(0, 3), dataInLength: 3 * BlockSize);
        Ok(zeros);
        AssertData(new byte[3 * BlockSize], zeros.Data, $"{fe.Kind}: timed read after reset");

        fe.Target.Subsystem.SetTiming(ZonedNsid, TimingOptions.Off);
        await ReadsAsync(fe, ZoneStart(1), Blocks(1, 2));
    }

    private static async Task<(ZoneState, ulong)> ZoneStateAsync(FrontEnd fe, uint zone)
    {
        var z = await ZoneAsync(fe, zone);
        return (z.State, z.WritePointer);
    }
}

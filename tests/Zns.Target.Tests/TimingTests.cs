using System.Diagnostics;
using Zns.Core.Timing;
using Zns.Core.Zones;
using Zns.TestKit;

namespace Zns.Target.Tests;

/// <summary>
/// Timed completions over NVMe/TCP: a namespace's timing set at run time holds completions back for at least the
/// model's time, keeps data and statuses exact, and overlaps outstanding commands instead of serializing them.
/// Only lower bounds (and one generous upper bound) are asserted; speed figures live in bench/.
/// </summary>
public class TimingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static TimingOptions Fixed(string list) => new NamespaceOptions().WithQemuOptions("timing=fixed," + list).Timing;

    [Fact]
    public async Task Zone_reset_and_read_take_at_least_the_configured_time()
    {
        await using var loop = ZnsLoopback.Start();
        await using var host = await loop.ConnectHostAsync();
        var data = ZnsLoopback.Pattern(2 * ZnsLoopback.BlockSize, 9);
        Assert.True((await host.Io.WriteAsync(1, 0, 2, data, Ct)).Status.IsSuccess);

        loop.Target.Subsystem.SetTiming(1, Fixed("timing.reset_ms=60,timing.read_us=30000"));
        Assert.Equal(TimingMode.Fixed, loop.Target.Subsystem.GetTiming(1).Mode);

        var block = new byte[data.Length];
        var sw = Stopwatch.StartNew();
        Assert.True((await host.Io.ReadAsync(1, 0, 2, block, Ct)).Status.IsSuccess);
        Assert.True(sw.ElapsedMilliseconds >= 29, $"read took {sw.ElapsedMilliseconds} ms");
        Assert.Equal(data, block);

        sw.Restart();
        Assert.True((await host.Io.ZoneManagementSendAsync(1, 0, (byte)ZoneSendAction.Reset, cancellationToken: Ct)).Status.IsSuccess);
        Assert.True(sw.ElapsedMilliseconds >= 59, $"reset took {sw.ElapsedMilliseconds} ms");
        Assert.Equal(ZoneState.Empty, loop.Namespace.GetZone(0).State);
    }

    [Fact]
    public async Task A_failing_command_is_not_held_back_and_keeps_its_status()
    {
        await using var loop = ZnsLoopback.Start();
        await using var host = await loop.ConnectHostAsync();
        loop.Target.Subsystem.SetTiming(1, Fixed("timing.latency_us=2000000"));
        // A write off the write pointer fails at once with the ZNS status, not after 2 s.
        var sw = Stopwatch.StartNew();
        var cqe = await host.Io.WriteAsync(1, 5, 1, new byte[ZnsLoopback.BlockSize], Ct);
        Assert.Equal(Zns.Nvme.NvmeStatus.ZoneInvalidWrite.WithDnr(), cqe.Status);
        Assert.True(sw.ElapsedMilliseconds < 1500, $"took {sw.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task Outstanding_commands_overlap_and_timing_can_be_turned_off_again()
    {
        await using var loop = ZnsLoopback.Start();
        await using var host = await loop.ConnectHostAsync();
        loop.Target.Subsystem.SetTiming(1, Fixed("timing.read_us=100000"));
        var buffers = Enumerable.Range(0, 16).Select(_ => new byte[ZnsLoopback.BlockSize]).ToArray();
        var sw = Stopwatch.StartNew();
        var results = await Task.WhenAll(buffers.Select((b, i) => host.Io.ReadAsync(1, (ulong)i * loop.ZoneLbas, 1, b, Ct)));
        Assert.All(results, r => Assert.True(r.Status.IsSuccess));
        Assert.True(sw.ElapsedMilliseconds >= 99, $"took {sw.ElapsedMilliseconds} ms");
        // 16 reads of 100 ms each, in flight together: far less than 1.6 s if they overlap.
        Assert.True(sw.ElapsedMilliseconds < 1200, $"16 timed reads took {sw.ElapsedMilliseconds} ms");

        loop.Target.Subsystem.SetTiming(1, TimingOptions.Off);
        Assert.False(loop.Target.Subsystem.GetTiming(1).Enabled);
        Assert.Throws<ArgumentOutOfRangeException>(() => loop.Target.Subsystem.SetTiming(2, TimingOptions.Off));
    }
}

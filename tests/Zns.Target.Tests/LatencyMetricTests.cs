using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Timing;
using Zns.Core.Zones;
using Zns.Target.Metrics;
using Zns.Target.Controller;
using Zns.Target.Tests.Pcie;

namespace Zns.Target.Tests;

/// <summary>
/// The latency histogram (<c>zns.io.duration</c>) counts from a command's arrival to the moment its completion is
/// posted, so with a timing model on it includes the modelled delay, over NVMe/TCP and over the PCIe queues that
/// vfio-user drives.
/// </summary>
public sealed class LatencyMetricTests
{
    private const int LatencyUs = 20_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static TimingOptions Fixed(string list) => new NamespaceOptions().WithQemuOptions("timing=fixed," + list).Timing;

    /// <summary>Collects the latencies one target records, by operation tag (other targets in the process are ignored).</summary>
    private sealed class LatencyRecorder : IDisposable
    {
        private readonly MeterListener _listener = new();

        public LatencyRecorder(NvmeTarget target)
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == TargetMetrics.MeterName && ReferenceEquals(instrument.Meter.Scope, target) && instrument.Name == "zns.io.duration")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<double>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "op")
                    {
                        Seconds.Enqueue(((string)tag.Value!, value));
                    }
                }
            });
            _listener.Start();
        }

        public ConcurrentQueue<(string Op, double Seconds)> Seconds { get; } = new();

        public void Dispose() => _listener.Dispose();
    }

    [Fact]
    public async Task Over_tcp_with_fixed_timing_every_observed_latency_includes_the_modelled_delay()
    {
        await using var loop = ZnsLoopback.Start();
        await using var host = await loop.ConnectHostAsync();
        using var recorder = new LatencyRecorder(loop.Target);
        loop.Target.Subsystem.SetTiming(1, Fixed($"timing.latency_us={LatencyUs}"));

        var data = ZnsLoopback.Pattern(ZnsLoopback.BlockSize, 3);
        for (int i = 0; i < 3; i++)
        {
            Assert.True((await host.Io.WriteAsync(1, (ulong)i, 1, data, Ct)).Status.IsSuccess);
        }
        Assert.True((await host.Io.ZoneAppendAsync(1, 0, 1, data, Ct)).Status.IsSuccess);
        var block = new byte[ZnsLoopback.BlockSize];
        for (int i = 0; i < 3; i++)
        {
            Assert.True((await host.Io.ReadAsync(1, (ulong)i, 1, block, Ct)).Status.IsSuccess);
        }

        AssertAtLeast(recorder, ("write", 3), ("append", 1), ("read", 3));

        // With timing off again the same commands are recorded at their real, much shorter, latency.
        loop.Target.Subsystem.SetTiming(1, new TimingOptions());
        recorder.Seconds.Clear();
        Assert.True((await host.Io.ReadAsync(1, 0, 1, block, Ct)).Status.IsSuccess);
        Assert.Single(recorder.Seconds, s => s.Op == "read");
    }

    [Fact]
    public void Over_pcie_queues_with_fixed_timing_every_observed_latency_includes_the_modelled_delay()
    {
        using var f = new PcieFixture();
        using var recorder = new LatencyRecorder(f.Target);
        f.EnableWithIoQueue();
        f.Target.Subsystem.SetTiming(1, Fixed($"timing.latency_us={LatencyUs}"));
        ulong page = f.Ram.Alloc(4096);
        f.Ram.Span(page, 4096).Fill(7);
        for (int i = 0; i < 2; i++)
        {
            Assert.True(f.Driver.ReadWrite(IoOpcode.Write, 1, (ulong)i, [page], 1).IsSuccess);
        }
        for (int i = 0; i < 2; i++)
        {
            Assert.True(f.Driver.ReadWrite(IoOpcode.Read, 1, (ulong)i, [page], 1).IsSuccess);
        }
        AssertAtLeast(recorder, ("write", 2), ("read", 2));
    }

    private static void AssertAtLeast(LatencyRecorder recorder, params (string Op, int Count)[] expected)
    {
        // The last completion's measurement is taken just before it is posted; give it a moment to land.
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (DateTime.UtcNow < deadline && expected.Any(e => recorder.Seconds.Count(s => s.Op == e.Op) < e.Count))
        {
            Thread.Sleep(10);
        }
        foreach (var (op, count) in expected)
        {
            double[] seen = [.. recorder.Seconds.Where(s => s.Op == op).Select(s => s.Seconds)];
            Assert.True(seen.Length == count, $"{op}: {seen.Length} latencies recorded, expected {count}");
            Assert.All(seen, s => Assert.True(s >= LatencyUs / 1e6, $"{op} latency {s * 1e6:0} us < {LatencyUs} us"));
        }
    }
}

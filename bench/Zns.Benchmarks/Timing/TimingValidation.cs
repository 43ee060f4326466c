using System.Diagnostics;
using System.Globalization;
using System.Net;
using Zns.Core.Timing;
using Zns.Core.Zones;
using Zns.Target;
using Zns.Target.Controller;
using Zns.Target.Tcp;
using Zns.TestKit;

namespace Zns.Benchmarks.Timing;

/// <summary>
/// <c>timing</c> mode: every quantity the ZN540 dataset measures, three ways side by side: the dataset's figure
/// (from the committed zn540.json), the <c>timing=zn540</c> model driven by a virtual clock (closed-loop, exactly
/// the dataset's job shapes: N jobs of one zone each, QD per job), and a live run through NVMe/TCP in this process
/// (the TestKit initiator against an <see cref="NvmeTarget"/> on 127.0.0.1), once with timing off (the floor this
/// machine's stack adds) and once with <c>timing=zn540</c>.
/// </summary>
internal static class TimingValidation
{
    private const int Block = 4096;
    private const long Ms = 1_000_000;

    private sealed record Quantity(string Name, string Unit, double Dataset, string Source, Func<double> Model, Func<Live, Task<double>>? Measure);

    public static async Task<int> RunAsync(string[] args)
    {
        double seconds = 2;
        bool live = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--model-only": live = false; break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; usage: timing [--seconds N] [--model-only]");
                    return 2;
            }
        }
        var geometry = ZoneGeometry.Create(Zn540Preset.Geometry, 16L * Zn540Preset.Geometry.ZoneSize);
        var quantities = Quantities(geometry, seconds);
        Live? target = live ? Live.Start(16L * Zn540Preset.Geometry.ZoneSize) : null;
        Console.WriteLine($"zn540 timing validation: dataset {Zn540Preset.Document.RootElement.GetProperty("source").GetProperty("repository").GetString()} " +
                          $"@ {Zn540Preset.Document.RootElement.GetProperty("source").GetProperty("commit").GetString()![..12]}; live runs {seconds} s each over NVMe/TCP on 127.0.0.1");
        var (median, p99) = await SchedulerLateness();
        Console.WriteLine($"completion scheduler on this machine: a completion due in 200 µs is late by {median:0} µs (median), {p99:0} µs (p99); load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        Console.WriteLine();
        Console.WriteLine("| quantity | unit | dataset | model | model/dataset | zns live (zn540) | live/dataset | live floor (timing off) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        try
        {
            foreach (var q in quantities)
            {
                double model = q.Model();
                string liveText = "", ratioText = "", floorText = "";
                if (target is not null && q.Measure is not null)
                {
                    target.SetTiming(TimingOptions.Off);
                    double floor = await q.Measure(target);
                    target.SetTiming(TimingOptions.Zn540);
                    double measured = await q.Measure(target);
                    liveText = F(measured);
                    ratioText = $"{measured / q.Dataset:0.00}×";
                    floorText = F(floor);
                }
                Console.WriteLine($"| {q.Name} | {q.Unit} | {F(q.Dataset)} | {F(model)} | {model / q.Dataset:0.00}× | {liveText} | {ratioText} | {floorText} |");
            }
        }
        finally
        {
            if (target is not null)
            {
                await target.DisposeAsync();
            }
        }
        Console.WriteLine();
        foreach (var q in quantities)
        {
            Console.WriteLine($"  {q.Name}: {q.Source}");
        }
        return 0;
    }

    /// <summary>How late the scheduler releases work on this machine (the part of every live figure that is not the model).</summary>
    private static async Task<(double Median, double P99)> SchedulerLateness()
    {
        var late = new List<double>();
        var probe = new Probe();
        for (int i = 0; i < 500; i++)
        {
            long due = CompletionScheduler.Now + 200_000;
            probe.Arm();
            CompletionScheduler.Shared.Schedule(due, probe);
            long fired = await probe.Task;
            late.Add((fired - due) / 1000.0);
        }
        late.Sort();
        return (late[late.Count / 2], late[late.Count * 99 / 100]);
    }

    private sealed class Probe : IThreadPoolWorkItem
    {
        private TaskCompletionSource<long> _tcs = new();

        public Task<long> Task => _tcs.Task;

        public void Arm() => _tcs = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Execute() => _tcs.SetResult(CompletionScheduler.Now);
    }

    private static string F(double v) => v >= 100 ? v.ToString("0", CultureInfo.InvariantCulture) : v.ToString("0.0#", CultureInfo.InvariantCulture);

    private static List<Quantity> Quantities(ZoneGeometry g, double seconds)
    {
        ulong cap = g.ZoneCapacityLbas;
        var list = new List<Quantity>
        {
            new("4 KiB random read latency, QD1", "µs", Zn540Preset.Measured("read_4k_qd1_lat_us"), Zn540Preset.Source("read_4k_qd1_lat_us"),
                () => Simulated(g, jobs: 1, qd: 1, Op.Read, 1).MeanLatencyUs,
                t => t.Run(jobs: 1, qd: 1, Op.Read, 1, seconds).ContinueWith(r => r.Result.MeanLatencyUs)),
        };
        foreach (int zones in new[] { 1, 2, 4, 8, 14 })
        {
            string p = zones.ToString(CultureInfo.InvariantCulture);
            list.Add(new($"4 KiB sequential write, {zones} zone{(zones > 1 ? "s" : "")} × QD1", "MB/s", Zn540Preset.Measured("write_4k_zones_mbps", p), Zn540Preset.Source("write_4k_zones_mbps"),
                () => Simulated(g, zones, 1, Op.Write, 1).MBps,
                zones > 4 ? null : t => t.Run(zones, 1, Op.Write, 1, seconds).ContinueWith(r => r.Result.MBps)));
        }
        list.Add(new("128 KiB sequential write, 1 zone × QD1", "MB/s", Zn540Preset.Measured("write_128k_zones_mbps", "1"), Zn540Preset.Source("write_128k_zones_mbps"),
            () => Simulated(g, 1, 1, Op.Write, 32).MBps, t => t.Run(1, 1, Op.Write, 32, seconds).ContinueWith(r => r.Result.MBps)));
        foreach (int qd in new[] { 1, 4, 32 })
        {
            string p = qd.ToString(CultureInfo.InvariantCulture);
            list.Add(new($"4 KiB append, 1 zone × QD{qd}", "MB/s", Zn540Preset.Measured("append_4k_1zone_qd_mbps", p), Zn540Preset.Source("append_4k_1zone_qd_mbps"),
                () => Simulated(g, 1, qd, Op.Append, 1).MBps, t => t.Run(1, qd, Op.Append, 1, seconds).ContinueWith(r => r.Result.MBps)));
        }
        list.Add(new("4 KiB append, 2 zones × QD32", "MB/s", Zn540Preset.Measured("append_4k_2zone_qd32_mbps"), Zn540Preset.Source("append_4k_2zone_qd32_mbps"),
            () => Simulated(g, 2, 32, Op.Append, 1).MBps, t => t.Run(2, 32, Op.Append, 1, seconds).ContinueWith(r => r.Result.MBps)));
        list.Add(new("4 KiB append, 14 zones × QD1", "MB/s", Zn540Preset.Measured("append_4k_14zone_qd1_mbps"), Zn540Preset.Source("append_4k_14zone_qd1_mbps"),
            () => Simulated(g, 14, 1, Op.Append, 1).MBps, null));
        list.Add(new("128 KiB append, 1 zone × QD1", "MB/s", Zn540Preset.Measured("append_128k_1zone_qd1_mbps"), Zn540Preset.Source("append_128k_1zone_qd1_mbps"),
            () => Simulated(g, 1, 1, Op.Append, 32).MBps, t => t.Run(1, 1, Op.Append, 32, seconds).ContinueWith(r => r.Result.MBps)));
        list.Add(new("reset of a full zone", "ms", Zn540Preset.Measured("reset_us_by_written_lbas", "275712") / 1000, Zn540Preset.Source("reset_us_by_written_lbas"),
            () => new TimingModel(TimingOptions.Zn540, g).Reset(0, 0, cap, empty: false) / 1e6, t => t.Reset(written: cap)));
        list.Add(new("reset of a half-written zone", "ms", Zn540Preset.Measured("reset_us_by_written_lbas", "137856") / 1000, Zn540Preset.Source("reset_us_by_written_lbas"),
            () => new TimingModel(TimingOptions.Zn540, g).Reset(0, 0, 137856, empty: false) / 1e6, t => t.Reset(written: 137856)));
        list.Add(new("finish, 1 block written", "ms", Zn540Preset.Measured("finish_us_by_written_lbas", "1") / 1000, Zn540Preset.Source("finish_us_by_written_lbas"),
            () => new TimingModel(TimingOptions.Zn540, g).Finish(0, 0, 1, empty: false) / 1e6, t => t.Finish(written: 1)));
        list.Add(new("finish, half written", "ms", Zn540Preset.Measured("finish_us_by_written_lbas", "137856") / 1000, Zn540Preset.Source("finish_us_by_written_lbas"),
            () => new TimingModel(TimingOptions.Zn540, g).Finish(0, 0, 137856, empty: false) / 1e6, t => t.Finish(written: 137856)));
        list.Add(new("finish, 1 block left", "ms", Zn540Preset.Measured("finish_us_by_written_lbas", "275711") / 1000, Zn540Preset.Source("finish_us_by_written_lbas"),
            () => new TimingModel(TimingOptions.Zn540, g).Finish(0, 0, cap - 1, empty: false) / 1e6, t => t.Finish(written: cap - 1)));
        list.Add(new("4 KiB read issued during a full-zone reset", "ms", Zn540Preset.Measured("read_during_reset_us") / 1000, Zn540Preset.Source("read_during_reset_us"),
            () =>
            {
                var m = new TimingModel(TimingOptions.Zn540, g);
                m.Reset(0, 0, cap, empty: false);
                return m.Read(1000, g.ZoneSizeLbas + 17, 1) / 1e6;
            },
            t => t.ReadDuringReset()));
        return list;
    }

    internal enum Op { Read, Write, Append }

    internal readonly record struct Result(long Ops, long Bytes, double Seconds, double LatencySumUs)
    {
        public double MBps => Bytes / Seconds / 1e6;
        public double MeanLatencyUs => LatencySumUs / Ops;
    }

    /// <summary>The dataset's job shape on the model with a virtual clock: <paramref name="jobs"/> jobs of one zone each, <paramref name="qd"/> outstanding per job, each issued the instant an earlier one completes.</summary>
    private static Result Simulated(ZoneGeometry g, int jobs, int qd, Op op, uint blocks, long durationNs = 500 * Ms)
    {
        var m = new TimingModel(TimingOptions.Zn540, g);
        var next = new ulong[jobs];
        var rng = new Random(1);
        var due = new PriorityQueue<(int Job, long Issued), long>();
        long Issue(int job, long now) => op switch
        {
            Op.Read => m.Read(now, (ulong)rng.NextInt64(0, (long)g.ZoneCapacityLbas), blocks),
            Op.Write => m.Write(now, (ulong)job * g.ZoneSizeLbas + (next[job] += blocks) - blocks, blocks),
            _ => m.Append(now, (ulong)job * g.ZoneSizeLbas, blocks),
        };
        for (int j = 0; j < jobs; j++)
        {
            for (int k = 0; k < qd; k++)
            {
                due.Enqueue((j, 0), Issue(j, 0));
            }
        }
        long ops = 0, now = 0;
        double latency = 0;
        while (now < durationNs)
        {
            due.TryDequeue(out var slot, out now);
            ops++;
            latency += (now - slot.Issued) / 1000.0;
            due.Enqueue((slot.Job, now), Issue(slot.Job, now));
        }
        return new Result(ops, ops * ((long)blocks << 12), now / 1e9, latency);
    }

    /// <summary>An in-process target with one RAM namespace of ZN540 zones, and the host side that measures it.</summary>
    internal sealed class Live : IAsyncDisposable
    {
        private readonly ZonedNamespace _ns;
        private readonly NvmeTarget _target;
        private readonly NvmeTcpListener _listener;
        private uint _nextZone;

        private Live(long size)
        {
            _ns = ZonedNamespace.CreateInMemory(size, Zn540Preset.Geometry with { MaxOpen = 0, MaxActive = 0 });
            _target = new NvmeTarget(new TargetOptions(), [_ns]);
            _listener = new NvmeTcpListener(new TargetTransportOptions { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) }, _target);
            _listener.Start();
            _target.SetListenerAddress(_listener.LocalEndPoint);
        }

        public static Live Start(long size) => new(size);

        public void SetTiming(TimingOptions timing) => _target.Subsystem.SetTiming(1, timing);

        private ulong ZoneLbas => _ns.Geometry.ZoneSizeLbas;

        /// <summary>A zone nobody used yet in this run (reset first so its memory goes back).</summary>
        private uint FreshZone()
        {
            uint z = _nextZone++ % _ns.Geometry.ZoneCount;
            _ns.ZoneManagementSend(_ns.Geometry.ZoneStart(z), ZoneSendAction.Reset, selectAll: false);
            return z;
        }

        private async Task<(NvmeTcpInitiator Admin, NvmeTcpInitiator Io)> ConnectAsync()
        {
            const string host = "nqn.2014-08.org.nvmexpress:uuid:0000000a-0000-4000-8000-00000000000a";
            var admin = await NvmeTcpInitiator.ConnectAsync(_listener.LocalEndPoint);
            var c = await admin.ConnectAdminQueueAsync(_target.Subsystem.Nqn, host, Guid.Parse(host[^36..]));
            await admin.PropertySetAsync(0x14, 0x00460061);
            var io = await NvmeTcpInitiator.ConnectAsync(_listener.LocalEndPoint);
            c = await io.ConnectIoQueueAsync(1, admin.ControllerId, _target.Subsystem.Nqn, host, Guid.Parse(host[^36..]));
            if (!c.Status.IsSuccess)
            {
                throw new InvalidOperationException($"connect: {c.Status}");
            }
            return (admin, io);
        }

        public async Task<Result> Run(int jobs, int qd, Op op, int blocks, double seconds)
        {
            var zones = Enumerable.Range(0, jobs).Select(_ => FreshZone()).ToArray();
            if (op == Op.Read)
            {
                // Random reads need data: fill part of the zone through the API (no timing there).
                Prepare(_ns.Geometry.ZoneStart(zones[0]), 64 * 256);
            }
            var conns = new List<(NvmeTcpInitiator, NvmeTcpInitiator)>();
            for (int j = 0; j < jobs; j++)
            {
                conns.Add(await ConnectAsync());
            }
            var deadline = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
            long ops = 0;
            double latency = 0;
            var sw = Stopwatch.StartNew();
            var tasks = new List<Task>();
            for (int j = 0; j < jobs; j++)
            {
                var io = conns[j].Item2;
                ulong start = _ns.Geometry.ZoneStart(zones[j]);
                ulong next = start;
                var rng = new Random(j);
                var writeLock = new SemaphoreSlim(1);
                for (int k = 0; k < qd; k++)
                {
                    var buffer = new byte[blocks * Block];
                    tasks.Add(Task.Run(async () =>
                    {
                        while (Stopwatch.GetTimestamp() < deadline)
                        {
                            long t0 = Stopwatch.GetTimestamp();
                            var cqe = op switch
                            {
                                Op.Read => await io.ReadAsync(1, start + (ulong)rng.Next(0, 64 * 256), blocks, buffer),
                                Op.Append => await io.ZoneAppendAsync(1, start, blocks, buffer),
                                _ => await io.WriteAsync(1, Interlocked.Add(ref next, (ulong)blocks) - (ulong)blocks, blocks, buffer),
                            };
                            if (!cqe.Status.IsSuccess)
                            {
                                throw new InvalidOperationException($"{op}: {cqe.Status}");
                            }
                            double us = (Stopwatch.GetTimestamp() - t0) * 1e6 / Stopwatch.Frequency;
                            lock (conns)
                            {
                                ops++;
                                latency += us;
                            }
                        }
                    }));
                }
            }
            await Task.WhenAll(tasks);
            double elapsed = sw.Elapsed.TotalSeconds;
            foreach (var (a, io) in conns)
            {
                await io.DisposeAsync();
                await a.DisposeAsync();
            }
            foreach (uint z in zones)
            {
                _ns.ZoneManagementSend(_ns.Geometry.ZoneStart(z), ZoneSendAction.Reset, selectAll: false);
            }
            return new Result(ops, ops * blocks * Block, elapsed, latency);
        }

        /// <summary>Mean over 3 resets of a zone holding <paramref name="written"/> blocks (written as one write, then the rest is as the drive had it).</summary>
        public async Task<double> Reset(ulong written) => await ZoneAction(written, ZoneSendAction.Reset, 3);

        public async Task<double> Finish(ulong written) => await ZoneAction(written, ZoneSendAction.Finish, written < 100_000 ? 1 : 2);

        private async Task<double> ZoneAction(ulong written, ZoneSendAction action, int samples)
        {
            var (admin, io) = await ConnectAsync();
            double total = 0;
            for (int i = 0; i < samples; i++)
            {
                ulong zslba = _ns.Geometry.ZoneStart(FreshZone());
                Prepare(zslba, written);
                // Preparing a zone can write a gigabyte into new RAM chunks; collect now so that the collections it
                // causes do not land inside the timed action.
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);
                GC.WaitForPendingFinalizers();
                var sw = Stopwatch.StartNew();
                var cqe = await io.ZoneManagementSendAsync(1, zslba, (byte)action);
                total += sw.Elapsed.TotalMilliseconds;
                if (!cqe.Status.IsSuccess)
                {
                    throw new InvalidOperationException($"{action}: {cqe.Status}");
                }
                _ns.ZoneManagementSend(zslba, ZoneSendAction.Reset, selectAll: false);
            }
            await io.DisposeAsync();
            await admin.DisposeAsync();
            return total / samples;
        }

        /// <summary>A zone with <paramref name="written"/> blocks: a full zone is made with Finish (no memory), otherwise the blocks are written (zeros).</summary>
        private void Prepare(ulong zslba, ulong written)
        {
            if (written >= _ns.Geometry.ZoneCapacityLbas)
            {
                _ns.ZoneManagementSend(zslba, ZoneSendAction.Finish, selectAll: false);
                return;
            }
            // Chunks of MDTS (512 KiB); the API enforces it like the wire does.
            var chunk = new byte[_ns.Geometry.MaxTransferBytes];
            ulong done = 0;
            while (done < written)
            {
                int n = (int)Math.Min((ulong)(chunk.Length / Block), written - done);
                var status = _ns.Write(zslba + done, chunk.AsSpan(0, n * Block));
                if (!status.IsSuccess)
                {
                    throw new InvalidOperationException($"prepare write at {zslba + done}: {status}");
                }
                done += (ulong)n;
            }
        }

        /// <summary>A QD1 read of another zone sent right after a full-zone reset: mean of 3.</summary>
        public async Task<double> ReadDuringReset()
        {
            var (admin, io) = await ConnectAsync();
            var (admin2, io2) = await ConnectAsync();
            var buffer = new byte[Block];
            double total = 0;
            for (int i = 0; i < 3; i++)
            {
                ulong zslba = _ns.Geometry.ZoneStart(FreshZone());
                Prepare(zslba, ulong.MaxValue);
                ulong other = _ns.Geometry.ZoneStart(FreshZone());
                var reset = io.ZoneManagementSendAsync(1, zslba, (byte)ZoneSendAction.Reset);
                var sw = Stopwatch.StartNew();
                await io2.ReadAsync(1, other, 1, buffer);
                total += sw.Elapsed.TotalMilliseconds;
                await reset;
            }
            await io.DisposeAsync();
            await admin.DisposeAsync();
            await io2.DisposeAsync();
            await admin2.DisposeAsync();
            return total / 3;
        }

        public async ValueTask DisposeAsync()
        {
            await _listener.DisposeAsync();
            _target.Dispose();
            _ns.Dispose();
        }
    }
}

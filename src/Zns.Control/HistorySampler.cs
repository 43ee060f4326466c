using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Target.Metrics;

namespace Zns.Control;

/// <summary>
/// The live history behind <c>GET /api/history</c>: once a second (<see cref="Tick"/>) it reads the target's running
/// totals and latency buckets, turns the difference from the previous tick into per-second rates and percentiles,
/// counts zones per condition, and keeps the last <see cref="Capacity"/> samples per namespace and for all of them
/// in fixed rings. Nothing is added to the I/O path: the counters are the target's own lock-free ones.
/// </summary>
public sealed class HistorySampler : IAsyncDisposable
{
    public const int Capacity = 600;
    public const int IntervalMs = 1000;

    private readonly NvmeTarget _target;
    private readonly int _namespaces;
    private readonly Sample[][] _rings; // [0] all namespaces, [nsid] one
    private readonly HistoryCounters[] _previous;
    private readonly long[] _previousLatency;
    private readonly long[] _latency;
    private readonly long[] _delta;
    private readonly long[] _deltaAll;
    private readonly Lock _lock = new();
    private long _previousT = -1;
    private int _head;
    private int _count;
    private CancellationTokenSource? _stop;
    private Task? _loop;

    public HistorySampler(NvmeTarget target)
    {
        _target = target;
        _namespaces = target.Subsystem.Namespaces.Count;
        _rings = [.. Enumerable.Range(0, _namespaces + 1).Select(_ => new Sample[Capacity])];
        _previous = new HistoryCounters[_namespaces];
        _previousLatency = new long[_namespaces * LatencyHistogram.Buckets];
        _latency = new long[LatencyHistogram.Buckets];
        _delta = new long[LatencyHistogram.Buckets];
        _deltaAll = new long[LatencyHistogram.Buckets];
    }

    /// <summary>One second of one namespace (or of all): rates per second, latency percentiles in µs, zones per condition.</summary>
    public readonly record struct Sample(
        long UnixMs, double ReadIops, double WriteIops, double ReadMBps, double WriteMBps, double P50Us, double P99Us, double P999Us,
        double ResetsPerSec, double FinishesPerSec, ZoneStateCounts Zones);

    /// <summary>Ticks every second on the system clock until disposed (the endpoint starts this; tests call <see cref="Tick"/>).</summary>
    public void Start()
    {
        if (_loop is not null)
        {
            return;
        }
        _stop = new CancellationTokenSource();
        Tick(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        _loop = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(IntervalMs));
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                {
                    Tick(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
    }

    /// <summary>
    /// Takes one sample at <paramref name="unixMs"/>: the counts since the previous tick divided by the time between
    /// them. The first tick only sets the baseline.
    /// </summary>
    public void Tick(long unixMs)
    {
        lock (_lock)
        {
            bool baseline = _previousT < 0;
            long elapsedMs = unixMs - _previousT;
            if (!baseline && elapsedMs <= 0)
            {
                return;
            }
            double perSecond = baseline ? 0 : 1000.0 / elapsedMs;
            Array.Clear(_deltaAll);
            long totalAll = 0;
            double rIops = 0, wIops = 0, rBytes = 0, wBytes = 0, resets = 0, finishes = 0;
            uint e = 0, io = 0, eo = 0, c = 0, f = 0, ro = 0, off = 0;
            int slot = _head;
            for (uint nsid = 1; nsid <= _namespaces; nsid++)
            {
                HistoryCounters now = _target.Metrics.Counters(nsid);
                HistoryCounters was = _previous[nsid - 1];
                _previous[nsid - 1] = now;
                _target.Metrics.CopyLatencyCounts(nsid, _latency);
                Span<long> previous = _previousLatency.AsSpan((int)(nsid - 1) * LatencyHistogram.Buckets, LatencyHistogram.Buckets);
                long total = 0;
                for (int i = 0; i < _latency.Length; i++)
                {
                    _delta[i] = _latency[i] - previous[i];
                    _deltaAll[i] += _delta[i];
                    total += _delta[i];
                }
                _latency.CopyTo(previous);
                totalAll += total;
                if (baseline)
                {
                    continue;
                }
                ZonedNamespace ns = _target.Subsystem.Namespaces[(int)nsid - 1];
                ZoneStateCounts zones = ns.IsZoned ? ns.CountZones() : default;
                var s = new Sample(unixMs,
                    (now.Reads - was.Reads) * perSecond, (now.Writes - was.Writes) * perSecond,
                    (now.ReadBytes - was.ReadBytes) * perSecond / 1e6, (now.WrittenBytes - was.WrittenBytes) * perSecond / 1e6,
                    LatencyHistogram.Percentile(_delta, total, 0.50), LatencyHistogram.Percentile(_delta, total, 0.99),
                    LatencyHistogram.Percentile(_delta, total, 0.999),
                    (now.Resets - was.Resets) * perSecond, (now.Finishes - was.Finishes) * perSecond, zones);
                _rings[nsid][slot] = s;
                rIops += s.ReadIops; wIops += s.WriteIops; rBytes += s.ReadMBps; wBytes += s.WriteMBps;
                resets += s.ResetsPerSec; finishes += s.FinishesPerSec;
                e += zones.Empty; io += zones.ImplicitlyOpened; eo += zones.ExplicitlyOpened; c += zones.Closed;
                f += zones.Full; ro += zones.ReadOnly; off += zones.Offline;
            }
            _previousT = unixMs;
            if (baseline)
            {
                return;
            }
            _rings[0][slot] = new Sample(unixMs, rIops, wIops, rBytes, wBytes,
                LatencyHistogram.Percentile(_deltaAll, totalAll, 0.50), LatencyHistogram.Percentile(_deltaAll, totalAll, 0.99),
                LatencyHistogram.Percentile(_deltaAll, totalAll, 0.999), resets, finishes,
                new ZoneStateCounts(e, io, eo, c, f, ro, off));
            _head = (_head + 1) % Capacity;
            _count = Math.Min(_count + 1, Capacity);
        }
    }

    /// <summary>The samples of the last <paramref name="seconds"/> seconds before the newest one, oldest first; <paramref name="nsid"/> null for all namespaces.</summary>
    public Sample[] Samples(uint? nsid, int seconds)
    {
        lock (_lock)
        {
            Sample[] ring = _rings[nsid ?? 0];
            if (_count == 0)
            {
                return [];
            }
            long newest = ring[(_head - 1 + Capacity) % Capacity].UnixMs;
            var list = new List<Sample>(Math.Min(_count, seconds + 1));
            for (int i = 0; i < _count; i++)
            {
                Sample s = ring[(_head - _count + i + Capacity) % Capacity];
                if (s.UnixMs > newest - (long)seconds * 1000)
                {
                    list.Add(s);
                }
            }
            return [.. list];
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop is not null)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            if (_loop is not null)
            {
                await _loop.ConfigureAwait(false);
            }
            _stop.Dispose();
        }
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;

namespace Zns.Target.Metrics;

/// <summary>
/// The target's instruments on the <see cref="MeterName"/> meter: I/O commands, bytes, latency and errors per
/// namespace and operation; zones per condition, open/active counts, controllers, queues and connections as gauges
/// read at collection time; and per-zone read/write command counts for the zone map.
/// </summary>
/// <remarks>
/// Recording a command allocates nothing: the tag values are strings built once per namespace and operation (and
/// once per distinct error status), and the instruments take tags by reference.
/// </remarks>
public sealed class TargetMetrics : IDisposable
{
    /// <summary>The meter name to subscribe to (OpenTelemetry <c>AddMeter("Zns")</c>, <c>dotnet-counters</c>).</summary>
    public const string MeterName = "Zns";

    private static readonly string[] OperationNames = ["read", "write", "append", "write_zeroes", "flush", "dsm", "zone_send", "zone_receive", "other"];
    private static readonly double[] LatencyBuckets =
        [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
    private static readonly ConcurrentDictionary<ushort, KeyValuePair<string, object?>> StatusTags = new();

    private readonly NvmeTarget _target;
    private readonly Meter _meter;
    private readonly Counter<long> _ops;
    private readonly Counter<long> _bytes;
    private readonly Counter<long> _errors;
    private readonly Histogram<double> _latency;
    private readonly KeyValuePair<string, object?>[] _nsTags;
    private readonly KeyValuePair<string, object?>[] _opTags;
    private readonly ZoneActivity?[] _activity;
    private readonly long[] _commandCounts;
    private readonly long[] _byteCounts;
    private readonly ConcurrentDictionary<string, StrongBox<long>>[] _errorCounts;
    private readonly long[] _historyCounts;
    private readonly long[] _latencyCounts;
    private ZoneRecent?[]? _recent;

    internal TargetMetrics(NvmeTarget target)
    {
        _target = target;
        // The target as the meter's scope, so a listener can tell this target's instruments from another's in the
        // same process.
        _meter = new Meter(new MeterOptions(MeterName) { Scope = target });
        _ops = _meter.CreateCounter<long>("zns.io.commands", "{command}", "I/O commands completed, by namespace and operation");
        _bytes = _meter.CreateCounter<long>("zns.io.bytes", "By", "Data moved by successful reads, writes and appends");
        _errors = _meter.CreateCounter<long>("zns.io.errors", "{command}", "I/O commands that completed with an error, by NVMe status");
        _latency = _meter.CreateHistogram("zns.io.duration", "s", "Time from command arrival to completion",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        var namespaces = target.Subsystem.Namespaces;
        _nsTags = new KeyValuePair<string, object?>[namespaces.Count];
        _activity = new ZoneActivity?[namespaces.Count];
        for (int i = 0; i < namespaces.Count; i++)
        {
            _nsTags[i] = new("nsid", (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
            _activity[i] = namespaces[i].IsZoned ? new ZoneActivity(namespaces[i].Geometry.ZoneCount) : null;
        }
        _commandCounts = new long[namespaces.Count * OperationNames.Length];
        _byteCounts = new long[namespaces.Count * OperationNames.Length];
        _errorCounts = [.. namespaces.Select(_ => new ConcurrentDictionary<string, StrongBox<long>>())];
        _opTags = [.. OperationNames.Select(o => new KeyValuePair<string, object?>("op", o))];
        _historyCounts = new long[namespaces.Count * HistoryCounters.Fields];
        _latencyCounts = new long[namespaces.Count * LatencyHistogram.Buckets];

        _meter.CreateObservableGauge("zns.zones", ObserveZones, "{zone}", "Zones per condition");
        _meter.CreateObservableGauge("zns.zones.open", () => ObservePerNamespace(ns => (int)ns.OpenZoneCount), "{zone}", "Open zones (implicitly + explicitly)");
        _meter.CreateObservableGauge("zns.zones.active", () => ObservePerNamespace(ns => (int)ns.ActiveZoneCount), "{zone}", "Active zones (open + closed)");
        _meter.CreateObservableGauge("zns.controllers", () => target.Subsystem.ControllerCount, "{controller}", "Live controllers of the NVM subsystem");
        _meter.CreateObservableGauge("zns.queues", () => target.Subsystem.IoQueueCount, "{queue}", "Connected I/O queues");
        _meter.CreateObservableGauge("zns.connections", () => ConnectionCount?.Invoke() ?? 0, "{connection}", "Open NVMe/TCP connections");
    }

    /// <summary>Where the connection gauge reads from (the transport's listener), set by whoever owns it.</summary>
    public Func<int>? ConnectionCount { get; set; }

    /// <summary>Per-zone command counts of a zoned namespace, or null for a conventional one.</summary>
    public ZoneActivity? Activity(uint nsid) => nsid - 1 < (uint)_activity.Length ? _activity[nsid - 1] : null;

    /// <summary>
    /// Starts keeping the last commands of each zone (<see cref="Recent"/>); the management endpoint turns this on,
    /// so a target without one spends nothing on it.
    /// </summary>
    public void EnableZoneRecent()
    {
        if (_recent is not null)
        {
            return;
        }
        var namespaces = _target.Subsystem.Namespaces;
        Interlocked.CompareExchange(ref _recent,
            [.. namespaces.Select(ns => ns.IsZoned ? new ZoneRecent(ns.Geometry.ZoneCount) : null)], null);
    }

    /// <summary>The last commands per zone of a zoned namespace, or null (conventional, or not enabled).</summary>
    public ZoneRecent? Recent(uint nsid) => _recent is { } r && nsid - 1 < (uint)r.Length ? r[nsid - 1] : null;

    /// <summary>The running totals the history sampler reads each second (reads, writes, bytes, resets, finishes).</summary>
    public HistoryCounters Counters(uint nsid)
    {
        int b = (int)(nsid - 1) * HistoryCounters.Fields;
        return new HistoryCounters(Volatile.Read(ref _historyCounts[b]), Volatile.Read(ref _historyCounts[b + 1]),
            Volatile.Read(ref _historyCounts[b + 2]), Volatile.Read(ref _historyCounts[b + 3]),
            Volatile.Read(ref _historyCounts[b + 4]), Volatile.Read(ref _historyCounts[b + 5]));
    }

    /// <summary>Copies the latency bucket counts of one namespace (all I/O opcodes, <see cref="LatencyHistogram"/>) into <paramref name="into"/>.</summary>
    public void CopyLatencyCounts(uint nsid, Span<long> into)
    {
        int b = (int)(nsid - 1) * LatencyHistogram.Buckets;
        for (int i = 0; i < LatencyHistogram.Buckets; i++)
        {
            into[i] = Volatile.Read(ref _latencyCounts[b + i]);
        }
    }

    /// <summary>
    /// Counts one executed I/O command (as <see cref="Count(uint, byte, ulong, int, NvmeStatus)"/>) plus what the
    /// live history and the per-zone rings need from its submission entry: block counts of Write Zeroes and Copy,
    /// the Zone Management Send action.
    /// </summary>
    internal void Count(uint nsid, in SubmissionQueueEntry sqe, ReadOnlySpan<byte> data, NvmeStatus status)
    {
        byte opcode = sqe.Opcode;
        ulong slba = sqe.Cdw10_11;
        Count(nsid, opcode, slba, data.Length, status);
        if (nsid - 1 >= (uint)_nsTags.Length)
        {
            return;
        }
        ZonedNamespace ns = _target.Subsystem.Namespaces[(int)nsid - 1];
        uint blocks = opcode switch
        {
            IoOpcode.Read or IoOpcode.Write or IoOpcode.ZoneAppend or IoOpcode.WriteZeroes or IoOpcode.Compare or IoOpcode.Verify => (sqe.Cdw12 & 0xFFFF) + 1,
            IoOpcode.Copy => CopyBlocks(sqe.Cdw12, data),
            _ => 0,
        };
        int h = (int)(nsid - 1) * HistoryCounters.Fields;
        switch (opcode)
        {
            case IoOpcode.Read:
                Interlocked.Increment(ref _historyCounts[h]);
                if (status.IsSuccess)
                {
                    Interlocked.Add(ref _historyCounts[h + 1], data.Length);
                }
                break;
            case IoOpcode.Write or IoOpcode.ZoneAppend or IoOpcode.WriteZeroes or IoOpcode.Copy:
                Interlocked.Increment(ref _historyCounts[h + 2]);
                if (status.IsSuccess)
                {
                    Interlocked.Add(ref _historyCounts[h + 3], opcode is IoOpcode.Write or IoOpcode.ZoneAppend
                        ? data.Length : (long)blocks << ns.Geometry.BlockShift);
                }
                break;
            case IoOpcode.ZoneManagementSend when status.IsSuccess:
                if ((byte)sqe.Cdw13 == 0x04)
                {
                    Interlocked.Increment(ref _historyCounts[h + 4]);
                }
                else if ((byte)sqe.Cdw13 == 0x02)
                {
                    Interlocked.Increment(ref _historyCounts[h + 5]);
                }
                break;
        }
        if (_recent is { } recent && recent[nsid - 1] is { } ring && slba < ns.Geometry.NamespaceSizeLbas)
        {
            int op = ZoneRecent.OperationCode(opcode, sqe.Cdw13);
            if (op >= 0)
            {
                ring.Record(ns.Geometry.ZoneOf(slba), op, slba, blocks, status);
            }
        }
    }

    /// <summary>Blocks a Copy writes: the NLB (bytes 17:16, 0's based) of each source range, 32-byte entries in formats 0h and 2h, 40-byte in 1h and 3h.</summary>
    private static uint CopyBlocks(uint cdw12, ReadOnlySpan<byte> ranges)
    {
        int count = (int)(cdw12 & 0xFF) + 1;
        int size = ((cdw12 >> 8) & 0xF) is 1 or 3 ? 40 : 32;
        uint blocks = 0;
        for (int i = 0; i < count && (i + 1) * size <= ranges.Length; i++)
        {
            blocks += (uint)System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(ranges[(i * size + 16)..]) + 1;
        }
        return blocks;
    }

    /// <summary>Records one completed I/O command posted now: its counts and its latency from <paramref name="startTimestamp"/>.</summary>
    internal void Complete(uint nsid, byte opcode, ulong slba, int bytes, NvmeStatus status, long startTimestamp)
    {
        Count(nsid, opcode, slba, bytes, status);
        RecordLatency(nsid, opcode, startTimestamp);
    }

    /// <summary>
    /// Records the latency of a command whose completion is posted now, <paramref name="startTimestamp"/> being its
    /// arrival (a <see cref="Stopwatch"/> timestamp). A timed completion calls this when the scheduler releases it,
    /// so the histogram includes the modelled delay.
    /// </summary>
    internal void RecordLatency(uint nsid, byte opcode, long startTimestamp)
    {
        if (nsid - 1 < (uint)_nsTags.Length)
        {
            long elapsed = Stopwatch.GetTimestamp() - startTimestamp;
            _latency.Record((double)elapsed / Stopwatch.Frequency, _nsTags[nsid - 1], _opTags[OperationIndex(opcode)]);
            LatencyHistogram.Record(_latencyCounts, (int)(nsid - 1) * LatencyHistogram.Buckets, elapsed);
        }
    }

    /// <summary>Counts one executed I/O command (commands, bytes, errors, per-zone activity), not its latency.</summary>
    internal void Count(uint nsid, byte opcode, ulong slba, int bytes, NvmeStatus status)
    {
        if (nsid - 1 >= (uint)_nsTags.Length)
        {
            return;
        }
        int op = OperationIndex(opcode);
        ref readonly var ns = ref _nsTags[nsid - 1];
        ref readonly var opTag = ref _opTags[op];
        int slot = (int)(nsid - 1) * OperationNames.Length + op;
        _ops.Add(1, ns, opTag);
        Interlocked.Increment(ref _commandCounts[slot]);
        if (status.IsSuccess)
        {
            if (bytes > 0 && op <= 2)
            {
                _bytes.Add(bytes, ns, opTag);
                Interlocked.Add(ref _byteCounts[slot], bytes);
            }
        }
        else
        {
            var tag = StatusTag(status);
            _errors.Add(1, ns, opTag, tag);
            Interlocked.Increment(ref _errorCounts[nsid - 1].GetOrAdd((string)tag.Value!, static _ => new StrongBox<long>()).Value);
        }
        if (op <= 2 && _activity[nsid - 1] is { } activity)
        {
            ZonedNamespace zns = _target.Subsystem.Namespaces[(int)nsid - 1];
            if (slba < zns.Geometry.NamespaceSizeLbas)
            {
                activity.Count(zns.Geometry.ZoneOf(slba), op != 0);
            }
        }
    }

    /// <summary>Commands completed and bytes moved for one namespace and opcode since the target started.</summary>
    public (long Commands, long Bytes) Totals(uint nsid, byte opcode)
    {
        int slot = (int)(nsid - 1) * OperationNames.Length + OperationIndex(opcode);
        return (Volatile.Read(ref _commandCounts[slot]), Volatile.Read(ref _byteCounts[slot]));
    }

    /// <summary>Error completions of one namespace by status name.</summary>
    public Dictionary<string, long> Errors(uint nsid) =>
        _errorCounts[nsid - 1].ToDictionary(e => e.Key, e => Volatile.Read(ref e.Value.Value));

    private static int OperationIndex(byte opcode) => opcode switch
    {
        IoOpcode.Read => 0,
        IoOpcode.Write => 1,
        IoOpcode.ZoneAppend => 2,
        IoOpcode.WriteZeroes => 3,
        IoOpcode.Flush => 4,
        IoOpcode.DatasetManagement => 5,
        IoOpcode.ZoneManagementSend => 6,
        IoOpcode.ZoneManagementReceive => 7,
        _ => 8,
    };

    private static KeyValuePair<string, object?> StatusTag(NvmeStatus status) =>
        StatusTags.GetOrAdd((ushort)(status.Value & 0x7FF), static v => new("status", StatusName(new NvmeStatus(v))));

    /// <summary>A short stable name for a status, e.g. <c>zone_is_offline</c> or <c>sct1_sc0xbc</c>.</summary>
    public static string StatusName(NvmeStatus status)
    {
        NvmeStatus s = status.WithoutDnr();
        return s == NvmeStatus.UnrecoveredReadError ? "unrecovered_read_error"
            : s == NvmeStatus.WriteFault ? "write_fault"
            : s == NvmeStatus.ZoneIsOffline ? "zone_is_offline"
            : s == NvmeStatus.ZoneIsReadOnly ? "zone_is_read_only"
            : s == NvmeStatus.ZoneIsFull ? "zone_is_full"
            : s == NvmeStatus.ZoneInvalidWrite ? "zone_invalid_write"
            : s == NvmeStatus.ZoneBoundaryError ? "zone_boundary_error"
            : s == NvmeStatus.TooManyOpenZones ? "too_many_open_zones"
            : s == NvmeStatus.TooManyActiveZones ? "too_many_active_zones"
            : s == NvmeStatus.InvalidZoneStateTransition ? "invalid_zone_state_transition"
            : s == NvmeStatus.NamespaceNotReady ? "namespace_not_ready"
            : s == NvmeStatus.NamespaceWriteProtected ? "namespace_write_protected"
            : s == NvmeStatus.AbortRequested ? "command_abort_requested"
            : s == NvmeStatus.InvalidField ? "invalid_field"
            : s == NvmeStatus.LbaOutOfRange ? "lba_out_of_range"
            : s == NvmeStatus.InternalError ? "internal_error"
            : $"sct{s.Sct}_sc0x{s.Sc:x2}";
    }

    private IEnumerable<Measurement<int>> ObserveZones()
    {
        var namespaces = _target.Subsystem.Namespaces;
        for (int i = 0; i < namespaces.Count; i++)
        {
            if (!namespaces[i].IsZoned)
            {
                continue;
            }
            ZoneStateCounts c = namespaces[i].CountZones();
            var ns = _nsTags[i];
            yield return new((int)c.Empty, ns, new("condition", "empty"));
            yield return new((int)c.ImplicitlyOpened, ns, new("condition", "implicitly_opened"));
            yield return new((int)c.ExplicitlyOpened, ns, new("condition", "explicitly_opened"));
            yield return new((int)c.Closed, ns, new("condition", "closed"));
            yield return new((int)c.Full, ns, new("condition", "full"));
            yield return new((int)c.ReadOnly, ns, new("condition", "read_only"));
            yield return new((int)c.Offline, ns, new("condition", "offline"));
        }
    }

    private IEnumerable<Measurement<int>> ObservePerNamespace(Func<ZonedNamespace, int> value)
    {
        var namespaces = _target.Subsystem.Namespaces;
        for (int i = 0; i < namespaces.Count; i++)
        {
            if (namespaces[i].IsZoned)
            {
                yield return new(value(namespaces[i]), _nsTags[i]);
            }
        }
    }

    public void Dispose() => _meter.Dispose();
}

/// <summary>
/// Running totals of one namespace for the live history: reads and their bytes; writes (Write, Zone Append, Write
/// Zeroes, Copy) and the bytes they wrote; successful Zone Management Send Reset and Finish commands (Select All
/// counting once).
/// </summary>
public readonly record struct HistoryCounters(long Reads, long ReadBytes, long Writes, long WrittenBytes, long Resets, long Finishes)
{
    internal const int Fields = 6;
}

/// <summary>Read and write command counts per zone (writes include appends), for the zone map.</summary>
public sealed class ZoneActivity(uint zones)
{
    private readonly long[] _reads = new long[zones];
    private readonly long[] _writes = new long[zones];

    internal void Count(uint zone, bool write) => Interlocked.Increment(ref (write ? _writes : _reads)[zone]);

    public long Reads(uint zone) => Volatile.Read(ref _reads[zone]);
    public long Writes(uint zone) => Volatile.Read(ref _writes[zone]);
}

using System.Diagnostics;
using Zns.Nvme;

namespace Zns.Target.Metrics;

/// <summary>One command that touched a zone, as <see cref="ZoneRecent.Read"/> returns it.</summary>
public readonly record struct RecentCommand(long UnixMs, string Operation, ulong Slba, uint Blocks, string Status);

/// <summary>
/// The last <see cref="Depth"/> commands that touched each zone of a namespace: a ring of fixed-size structs per
/// zone, allocated the first time the zone is touched (so memory is bounded by the zones in use, 16 × 32 bytes
/// each) and then reused; recording takes no lock and allocates nothing. A reader copies each entry between two
/// reads of its sequence number and drops the one being overwritten meanwhile.
/// </summary>
public sealed class ZoneRecent
{
    public const int Depth = 16;

    /// <summary>Operation names by code (see <see cref="OperationCode"/>).</summary>
    private static readonly string[] Names =
        ["read", "write", "append", "write_zeroes", "copy", "compare", "verify", "open", "close", "finish", "reset", "offline", "set_zde", "flush_zrwa", "zone_send"];

    private readonly Entry[]?[] _rings;
    private readonly long[] _sequence;
    private readonly long _baseTimestamp = Stopwatch.GetTimestamp();
    private readonly long _baseUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public ZoneRecent(uint zones)
    {
        _rings = new Entry[]?[zones];
        _sequence = new long[zones];
    }

    private struct Entry
    {
        public long Sequence;
        public long Timestamp;
        public ulong Slba;
        public uint Blocks;
        public ushort Status;
        public byte Operation;
    }

    /// <summary>The operation code of a command for the ring, or -1 for commands that touch no single zone.</summary>
    internal static int OperationCode(byte opcode, uint cdw13) => opcode switch
    {
        IoOpcode.Read => 0,
        IoOpcode.Write => 1,
        IoOpcode.ZoneAppend => 2,
        IoOpcode.WriteZeroes => 3,
        IoOpcode.Copy => 4,
        IoOpcode.Compare => 5,
        IoOpcode.Verify => 6,
        IoOpcode.ZoneManagementSend when (cdw13 & (1u << 8)) != 0 => -1, // Select All
        IoOpcode.ZoneManagementSend => (byte)cdw13 switch
        {
            0x01 => 8,
            0x02 => 9,
            0x03 => 7,
            0x04 => 10,
            0x05 => 11,
            0x10 => 12,
            0x11 => 13,
            _ => 14,
        },
        _ => -1,
    };

    internal void Record(uint zone, int operation, ulong slba, uint blocks, NvmeStatus status)
    {
        Entry[] ring = _rings[zone] ?? Allocate(zone);
        long seq = Interlocked.Increment(ref _sequence[zone]);
        ref Entry e = ref ring[(int)(seq % Depth)];
        Volatile.Write(ref e.Sequence, 0);
        e.Timestamp = Stopwatch.GetTimestamp();
        e.Slba = slba;
        e.Blocks = blocks;
        e.Status = (ushort)(status.Value & 0x7FF);
        e.Operation = (byte)operation;
        Volatile.Write(ref e.Sequence, seq);
    }

    private Entry[] Allocate(uint zone)
    {
        Interlocked.CompareExchange(ref _rings[zone], new Entry[Depth], null);
        return _rings[zone]!;
    }

    /// <summary>The commands recorded for <paramref name="zone"/>, oldest first.</summary>
    public RecentCommand[] Read(uint zone)
    {
        if (zone >= (uint)_rings.Length || Volatile.Read(ref _rings[zone]) is not { } ring)
        {
            return [];
        }
        var list = new List<(long Seq, RecentCommand Command)>(Depth);
        for (int i = 0; i < Depth; i++)
        {
            ref Entry e = ref ring[i];
            long seq = Volatile.Read(ref e.Sequence);
            if (seq == 0)
            {
                continue;
            }
            Entry copy = e;
            if (Volatile.Read(ref e.Sequence) != seq)
            {
                continue;
            }
            long unixMs = _baseUnixMs + (long)((copy.Timestamp - _baseTimestamp) * 1000.0 / Stopwatch.Frequency);
            var status = new NvmeStatus(copy.Status);
            list.Add((seq, new RecentCommand(unixMs, Names[copy.Operation], copy.Slba, copy.Blocks,
                status.IsSuccess ? "success" : TargetMetrics.StatusName(status))));
        }
        list.Sort((a, b) => a.Seq.CompareTo(b.Seq));
        return [.. list.Select(x => x.Command)];
    }
}

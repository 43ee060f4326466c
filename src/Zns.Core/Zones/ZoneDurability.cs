namespace Zns.Core.Zones;

/// <summary>
/// What of each zone is durable: the write pointer at the last Flush, FUA write or durable zone action covering the
/// zone, and where each write completed since then ended, so a power cut that keeps part of a zone's unflushed data
/// cuts it at a write boundary, as a drive whose cache persists writes in order would.
/// </summary>
/// <remarks>
/// Preallocated: a write records its end in a fixed number of slots per zone and allocates nothing. A zone with more
/// unflushed writes than slots stops recording (its cut then falls at any block between the durable write pointer and
/// the write pointer). The slot count shrinks as the zone count grows, so the record stays within about 4 MiB.
/// Not synchronized: the caller holds the zone's lock.
/// </remarks>
internal sealed class ZoneDurability
{
    private const int MaxRecordEntries = 1 << 19;
    private const int MaxEndsPerZone = 64;
    private const int MinEndsPerZone = 2;

    private readonly ulong[] _durable;
    private readonly ulong[] _ends;
    private readonly int[] _count;
    private readonly bool[] _overflowed;

    /// <summary>Every zone durable at its start.</summary>
    public ZoneDurability(ZoneGeometry geometry, int endsPerZone = 0)
    {
        uint zones = geometry.ZoneCount;
        EndsPerZone = endsPerZone > 0 ? endsPerZone : (int)Math.Clamp(MaxRecordEntries / Math.Max(1u, zones), MinEndsPerZone, MaxEndsPerZone);
        _durable = new ulong[zones];
        _ends = new ulong[(long)zones * EndsPerZone];
        _count = new int[zones];
        _overflowed = new bool[zones];
        for (uint zi = 0; zi < zones; zi++)
        {
            _durable[zi] = geometry.ZoneStart(zi);
        }
    }

    /// <summary>How many unflushed write ends a zone records before it falls back to block granularity.</summary>
    public int EndsPerZone { get; }

    /// <summary>Zone <paramref name="zi"/>'s durable write pointer.</summary>
    public ulong Durable(uint zi) => Volatile.Read(ref _durable[zi]);

    /// <summary>The ends of the writes recorded since the zone was last durable, oldest first.</summary>
    public ReadOnlySpan<ulong> Ends(uint zi) => _ends.AsSpan((int)(zi * EndsPerZone), _count[zi]);

    /// <summary>Whether the zone had more unflushed writes than it could record.</summary>
    public bool Overflowed(uint zi) => _overflowed[zi];

    /// <summary>A completed write moved zone <paramref name="zi"/>'s write pointer to <paramref name="end"/>.</summary>
    public void Completed(uint zi, ulong end)
    {
        int n = _count[zi];
        if (_overflowed[zi] || (n > 0 && _ends[zi * EndsPerZone + n - 1] >= end) || end <= _durable[zi])
        {
            return;
        }
        if (n == EndsPerZone)
        {
            _overflowed[zi] = true;
            return;
        }
        _ends[zi * EndsPerZone + n] = end;
        _count[zi] = n + 1;
    }

    /// <summary>Everything of zone <paramref name="zi"/> below <paramref name="writePointer"/> is durable.</summary>
    public void MarkDurable(uint zi, ulong writePointer)
    {
        Volatile.Write(ref _durable[zi], writePointer);
        _count[zi] = 0;
        _overflowed[zi] = false;
    }

    /// <summary>Whether zone <paramref name="zi"/> has nothing recorded past <paramref name="writePointer"/>.</summary>
    public bool IsDurableAt(uint zi, ulong writePointer) => _durable[zi] == writePointer && _count[zi] == 0 && !_overflowed[zi];

    /// <summary>
    /// Where a power cut with <paramref name="policy"/> leaves zone <paramref name="zi"/>'s write pointer, between
    /// its durable write pointer and <paramref name="writePointer"/>. Random draws come from <paramref name="random"/>
    /// only when there is something to choose, in a fixed order, so a seed reproduces the cut.
    /// </summary>
    public ulong KeptWritePointer(uint zi, ulong writePointer, PowerCutPolicy policy, Random random, out bool torn)
    {
        torn = false;
        ulong durable = _durable[zi];
        if (writePointer <= durable)
        {
            return writePointer;
        }
        switch (policy.Keep)
        {
            case PowerCutKeep.All:
                return writePointer;
            case PowerCutKeep.None:
                return durable;
        }
        if (_overflowed[zi])
        {
            // The write boundaries are not known: any block boundary.
            return durable + (ulong)random.NextInt64(0, (long)(writePointer - durable) + 1);
        }
        ReadOnlySpan<ulong> ends = Ends(zi);
        int kept = random.Next(0, ends.Length + 1);
        if (kept == 0)
        {
            return durable;
        }
        ulong end = ends[kept - 1];
        ulong start = kept >= 2 ? ends[kept - 2] : durable;
        if (policy.Torn && end - start >= 2)
        {
            // The last kept write keeps at least one block and loses at least one.
            torn = true;
            return start + (ulong)random.NextInt64(1, (long)(end - start));
        }
        return end;
    }
}

using Zns.Core.Faults;
using Zns.Core.Zones;
using Zns.Target.Metrics;

namespace Zns.Control;

/// <summary>
/// The zone map's view of one namespace, one row of <see cref="Fields"/> numbers per zone, and what changed since
/// the last look. A look copies the zone table into buffers kept across looks, so a viewer of a namespace with tens
/// of thousands of zones costs a copy and a compare per interval, and allocates only the rows it sends.
/// </summary>
internal sealed class ZoneMapSnapshot
{
    /// <summary>A row: zone, state, write pointer fill in ‰ of capacity, attribute bits, reads, writes, media fault 0/1.</summary>
    public const int Fields = 7;

    private readonly ZonedNamespace _ns;
    private readonly uint _nsid;
    private readonly ZoneActivity? _activity;
    private readonly FaultPlan _faults;
    private readonly ZoneInfo[] _zones;
    private readonly bool[] _media;
    private long[] _previous;
    private long[] _current;
    private bool _first = true;

    public ZoneMapSnapshot(ZonedNamespace ns, uint nsid, ZoneActivity? activity, FaultPlan faults)
    {
        _ns = ns;
        _nsid = nsid;
        _activity = activity;
        _faults = faults;
        uint count = ns.Geometry.ZoneCount;
        _zones = new ZoneInfo[count];
        _media = new bool[count];
        _previous = new long[count * Fields];
        _current = new long[count * Fields];
    }

    public uint ZoneCount => (uint)_zones.Length;

    /// <summary>The rows that changed since the last call (every row on the first call).</summary>
    public long[][] Changed()
    {
        _ns.CopyZones(_zones);
        MarkMediaFaults();
        for (int i = 0; i < _zones.Length; i++)
        {
            ref readonly ZoneInfo z = ref _zones[i];
            Span<long> row = _current.AsSpan(i * Fields, Fields);
            row[0] = z.Index;
            row[1] = (long)z.State;
            row[2] = z.Capacity == 0 ? 0 : (long)((z.WritePointer - z.StartLba) * 1000 / z.Capacity);
            row[3] = (long)z.Attributes;
            row[4] = _activity?.Reads(z.Index) ?? 0;
            row[5] = _activity?.Writes(z.Index) ?? 0;
            row[6] = _media[i] ? 1 : 0;
        }
        var changed = new List<long[]>();
        for (int i = 0; i < _zones.Length; i++)
        {
            ReadOnlySpan<long> row = _current.AsSpan(i * Fields, Fields);
            if (_first || !row.SequenceEqual(_previous.AsSpan(i * Fields, Fields)))
            {
                changed.Add(row.ToArray());
            }
        }
        (_previous, _current) = (_current, _previous);
        _first = false;
        return [.. changed];
    }

    private void MarkMediaFaults()
    {
        Array.Clear(_media);
        ZoneGeometry g = _ns.Geometry;
        foreach (MediaErrorRule r in _faults.MediaErrors)
        {
            if (r.Nsid != _nsid || r.Blocks == 0 || r.FirstLba >= g.NamespaceSizeLbas)
            {
                continue;
            }
            ulong last = Math.Min(r.FirstLba + r.Blocks - 1, g.NamespaceSizeLbas - 1);
            for (uint z = g.ZoneOf(r.FirstLba); z <= g.ZoneOf(last); z++)
            {
                _media[z] = true;
            }
        }
    }
}

using Zns.Core.Zones;

namespace Zns.Core.Timing;

/// <summary>
/// When each command of one namespace completes, as pure arithmetic over times in nanoseconds given by the caller
/// (so a virtual clock tests it exactly). Every method takes the submission time and returns the completion time.
/// </summary>
/// <remarks>
/// <para>The device has <see cref="TimingOptions.Channels"/> parallel units; zone z is striped page by page over
/// <see cref="TimingOptions.ZoneWidth"/> consecutive units starting at unit (z × width) mod channels. A unit is busy
/// for a read's <c>read_busy_us</c> or a page's <c>program_us</c>; a reset or finish occupies all of its zone's units
/// for its whole duration, so reads that need them wait.</para>
/// <para>Writes and appends land in a per-zone write buffer and complete after <c>write_us</c> (or <c>append_us</c>)
/// plus their transfer time, unless the buffer is full of pages still being programmed, the controller is still busy
/// with earlier commands (<c>write_cmd_us</c>/<c>append_cmd_us</c> each, device-wide) or the device's write
/// bandwidth ceiling is reached. Reads have their own bandwidth ceiling.</para>
/// <para>In <see cref="TimingMode.Fixed"/> every command takes its opcode's latency and nothing queues.</para>
/// <para>Thread-safe (one short lock); allocates only the first time a zone is written (its buffer ring).</para>
/// </remarks>
public sealed class TimingModel
{
    private readonly Lock _lock = new();
    private readonly TimingOptions _o;
    private readonly bool _fixed;
    private readonly int _blockShift;
    private readonly ulong _zoneLbas;
    private readonly ulong _capacityLbas;
    private readonly int _width;
    private readonly int _channels;
    private readonly long _pageBytes;
    private readonly long[] _unitFree;
    private readonly ZoneBuffer?[] _zones;
    private readonly int _bufferPages;
    private long _controllerFree;
    private long _readPipeFree;
    private long _writePipeFree;

    public TimingModel(TimingOptions options, ZoneGeometry geometry)
    {
        options.Validate();
        _o = options;
        _fixed = options.Mode == TimingMode.Fixed;
        _blockShift = geometry.BlockShift;
        // A conventional namespace is one region striped over every unit.
        _zoneLbas = geometry.Zoned ? geometry.ZoneSizeLbas : Math.Max(1, geometry.NamespaceSizeLbas);
        _capacityLbas = geometry.Zoned ? geometry.ZoneCapacityLbas : _zoneLbas;
        _channels = options.Channels;
        _width = geometry.Zoned ? options.ZoneWidth : options.Channels;
        _pageBytes = (long)options.PageKib << 10;
        _unitFree = new long[_channels];
        _zones = new ZoneBuffer?[geometry.Zoned ? geometry.ZoneCount : 1];
        _bufferPages = Math.Max(1, (int)(((long)options.WriteBufferKib << 10) / _pageBytes));
    }

    public TimingOptions Options => _o;

    /// <summary>A read of <paramref name="blocks"/> blocks at <paramref name="slba"/>.</summary>
    public long Read(long now, ulong slba, uint blocks)
    {
        long bytes = (long)blocks << _blockShift;
        if (_fixed)
        {
            return now + Us(_o.ReadUs);
        }
        uint zone = ZoneOf(slba);
        long offset = (long)((slba - (ulong)zone * _zoneLbas) << _blockShift);
        long firstPage = offset / _pageBytes;
        long pages = (offset + bytes - 1) / _pageBytes - firstPage + 1;
        // Pages beyond the zone's width come back to the same units; each unit then reads several.
        int units = (int)Math.Min(pages, _width);
        long perUnit = (pages + _width - 1) / _width;
        long busy = Us(_o.ReadBusyUs) * perUnit;
        long after = Math.Max(0, Us(_o.ReadUs) - Us(_o.ReadBusyUs)) + Transfer(Math.Max(0, bytes - 4096), _o.XferMbps);
        lock (_lock)
        {
            long done = now;
            for (int k = 0; k < units; k++)
            {
                int u = Unit(zone, firstPage + k);
                long start = Math.Max(now, _unitFree[u]);
                _unitFree[u] = start + busy;
                done = Math.Max(done, start + busy);
            }
            _readPipeFree = Math.Max(now, _readPipeFree) + Transfer(bytes, _o.ReadMbps);
            return Math.Max(done + after, _readPipeFree);
        }
    }

    /// <summary>A write of <paramref name="blocks"/> blocks at <paramref name="slba"/> (at the zone's write pointer).</summary>
    public long Write(long now, ulong slba, uint blocks) => Program(now, slba, blocks, _o.WriteUs, _o.WriteCmdUs);

    /// <summary>A Zone Append of <paramref name="blocks"/> blocks to the zone holding <paramref name="lba"/>.</summary>
    public long Append(long now, ulong lba, uint blocks) => Program(now, lba, blocks, _o.AppendUs, _o.AppendCmdUs);

    /// <summary>Zone Reset of the zone holding <paramref name="lba"/> with <paramref name="writtenLbas"/> blocks written; a reset of an Empty zone does no media work.</summary>
    public long Reset(long now, ulong lba, ulong writtenLbas, bool empty)
    {
        long duration = empty ? Us(_o.MgmtUs) : ResetDuration(writtenLbas);
        return _fixed || empty ? now + duration : Occupy(now, ZoneOf(lba), duration, resetBuffer: true);
    }

    /// <summary>Zone Finish of the zone holding <paramref name="lba"/> with <paramref name="writtenLbas"/> written; the rest of its capacity is padded.</summary>
    public long Finish(long now, ulong lba, ulong writtenLbas, bool empty)
    {
        if (_fixed || empty)
        {
            return now + (empty && !_fixed ? Us(_o.MgmtUs) : Us(_o.FinishMs * 1000));
        }
        long pad = (long)((_capacityLbas - Math.Min(writtenLbas, _capacityLbas)) << _blockShift);
        long duration = Us(_o.FinishMs * 1000) + Transfer(pad, _o.FinishPadMbps);
        return Occupy(now, ZoneOf(lba), duration, resetBuffer: false);
    }

    /// <summary>Select All reset or finish: the zones' durations add up (the drive works through them in turn) and every unit is occupied.</summary>
    public long AllZones(long now, long totalDurationNs)
    {
        if (_fixed)
        {
            return now + totalDurationNs;
        }
        lock (_lock)
        {
            long start = now;
            foreach (long free in _unitFree)
            {
                start = Math.Max(start, free);
            }
            long end = start + totalDurationNs;
            Array.Fill(_unitFree, end);
            Array.Clear(_zones);
            return end;
        }
    }

    /// <summary>How long one zone's reset takes with <paramref name="writtenLbas"/> blocks written (the reset curve).</summary>
    public long ResetDuration(ulong writtenLbas)
    {
        var curve = _o.ResetCurve;
        if (curve.IsEmpty)
        {
            return 0;
        }
        double kib = (double)(writtenLbas << _blockShift) / 1024;
        if (kib <= curve[0].Kib)
        {
            return Us(curve[0].Us);
        }
        for (int i = 1; i < curve.Length; i++)
        {
            if (kib <= curve[i].Kib)
            {
                var (x0, y0) = curve[i - 1];
                var (x1, y1) = curve[i];
                return Us(y0 + (y1 - y0) * (kib - x0) / (x1 - x0));
            }
        }
        return Us(curve[^1].Us);
    }

    /// <summary>How long one zone's finish takes (for Select All).</summary>
    public long FinishDuration(ulong writtenLbas, bool empty) =>
        empty ? Us(_o.MgmtUs) : Us(_o.FinishMs * 1000) + Transfer((long)((_capacityLbas - Math.Min(writtenLbas, _capacityLbas)) << _blockShift), _o.FinishPadMbps);

    public long Open(long now) => now + Us(_o.OpenUs);

    public long Close(long now) => now + Us(_o.CloseUs);

    /// <summary>Flush, Zone Management Receive and zone actions without media work.</summary>
    public long Other(long now) => now + Us(_o.MgmtUs);

    private long Program(long now, ulong lba, uint blocks, double latencyUs, double commandUs)
    {
        long bytes = (long)blocks << _blockShift;
        long ack = now + Us(latencyUs) + Transfer(bytes, _o.XferMbps);
        if (_fixed)
        {
            return now + Us(latencyUs);
        }
        uint zone = ZoneOf(lba);
        lock (_lock)
        {
            _controllerFree = Math.Max(now, _controllerFree) + Us(commandUs);
            _writePipeFree = Math.Max(now, _writePipeFree) + Transfer(bytes, _o.WriteMbps);
            long done = Math.Max(ack, Math.Max(_controllerFree, _writePipeFree));
            if (_o.ProgramUs > 0)
            {
                done = Math.Max(done, Buffer(now, zone, bytes));
            }
            return done;
        }
    }

    /// <summary>Adds the bytes to the zone's buffer, programs every page it completes, and returns when the data has room in the buffer.</summary>
    private long Buffer(long now, uint zone, long bytes)
    {
        ZoneBuffer b = _zones[zone] ??= new ZoneBuffer(_bufferPages);
        long room = now;
        b.Filled += bytes;
        long program = Us(_o.ProgramUs);
        while (b.Filled >= _pageBytes)
        {
            b.Filled -= _pageBytes;
            int u = Unit(zone, b.NextPage);
            // The slot being reused holds the page programmed bufferPages pages ago: its data leaves the buffer then.
            ref long slot = ref b.ProgramEnd[b.NextPage % _bufferPages];
            room = Math.Max(room, slot);
            long start = Math.Max(now, _unitFree[u]);
            _unitFree[u] = start + program;
            slot = start + program;
            b.NextPage++;
        }
        return room;
    }

    private long Occupy(long now, uint zone, long duration, bool resetBuffer)
    {
        lock (_lock)
        {
            long start = now;
            for (int k = 0; k < _width; k++)
            {
                start = Math.Max(start, _unitFree[Unit(zone, k)]);
            }
            long end = start + duration;
            for (int k = 0; k < _width; k++)
            {
                _unitFree[Unit(zone, k)] = end;
            }
            if (resetBuffer && _zones[zone] is { } b)
            {
                b.Clear();
            }
            return end;
        }
    }

    private uint ZoneOf(ulong lba) => (uint)Math.Min(lba / _zoneLbas, (ulong)_zones.Length - 1);

    private int Unit(uint zone, long page) => (int)(((long)zone * _width + page % _width) % _channels);

    private static long Us(double us) => (long)(us * 1000);

    /// <summary>Nanoseconds to move <paramref name="bytes"/> at <paramref name="mbps"/> MB/s; 0 when the rate is 0 (unlimited).</summary>
    private static long Transfer(long bytes, double mbps) => mbps > 0 ? (long)(bytes * 1000 / mbps) : 0;

    private sealed class ZoneBuffer(int pages)
    {
        public readonly long[] ProgramEnd = new long[pages];
        public long Filled;
        public long NextPage;

        public void Clear()
        {
            Array.Clear(ProgramEnd);
            Filled = 0;
            NextPage = 0;
        }
    }
}

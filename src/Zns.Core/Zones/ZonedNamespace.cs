using System.Buffers.Binary;
using System.Diagnostics;
using Zns.Core.Nvme;
using Zns.Core.Storage;

namespace Zns.Core.Zones;

/// <summary>How <see cref="ZonedNamespace.OpenFile"/> treats the zone state file.</summary>
public enum StateMode
{
    /// <summary>Load zone state from the state file (creating it if missing) and persist every commit.</summary>
    Persistent,
    /// <summary>Like QEMU: every zone starts Empty and nothing is persisted.</summary>
    Ephemeral,
    /// <summary>Discard the stored zone state and geometry (all zones Empty, data zeroed) and persist from now on.</summary>
    Reformat,
}

/// <summary>
/// A namespace of the NVMe Zoned Namespace command set (or a conventional NVM namespace), with QEMU's behaviour:
/// every command returns an <see cref="NvmeStatus"/> equal to what QEMU's emulated ZNS device returns, and device
/// errors never throw.
/// </summary>
/// <remarks>
/// <para>Concurrency: writes, appends and zone management on one zone are serialized by that zone's lock (so appends
/// to one zone get distinct, dense LBAs and writes complete in order), writes to different zones run in parallel, and
/// every zone state and write pointer change happens under one short state lock, never held across I/O. The write
/// pointer advances only after the data is in the backstore, so a reader or a commit never sees a write pointer
/// ahead of data.</para>
/// <para>Durability contract: after <see cref="Flush"/>, or a write with FUA, the data of every write completed before
/// it and the zone state are durable. A Zone Reset is committed before its data is released. After a crash the
/// namespace reopens at the last commit: write pointers never point past data that reached the disk, and no flushed
/// write is lost. Reopening is a power cycle: open zones become Closed (Empty if nothing was written), as QEMU does
/// at shutdown.</para>
/// <para>Reads never return stale data: blocks at or above the write pointer (and past where a Finish left the data)
/// read as zeros.</para>
/// </remarks>
public sealed partial class ZonedNamespace : IDisposable
{
    private readonly IBackstore _backstore;
    private readonly ZoneStateFile? _stateFile;
    private readonly ZoneRecord[] _zones;
    private readonly byte[] _extensions;
    private readonly object[] _zoneLocks;
    private readonly Lock _stateLock = new();
    private readonly Lock _commitLock = new();

    // Implicitly opened, explicitly opened and closed zones, each in the order they entered that state, oldest
    // first, as QEMU's lists: the auto-close victim is the head of the implicit list, and Select All walks these
    // lists (so which zones an Open All reaches before a limit matches). Intrusive lists: a state change allocates
    // nothing. A zone is on at most one list.
    private readonly int[] _next;
    private readonly int[] _prev;
    private readonly int[] _head = [-1, -1, -1];
    private readonly int[] _tail = [-1, -1, -1];
    private const int ImplicitList = 0, ExplicitList = 1, ClosedList = 2;

    // ZRWA: resources not allocated to a zone, and for each zone with a ZRWA the end of the data written into its
    // window (reads return data up to there, not just up to the write pointer).
    private uint _zrwaFree;
    private readonly ulong[] _zrwaDataEnd;

    private uint _openCount;
    private uint _activeCount;
    private long _changes;
    private long _writesAheadOfWritePointer;
    private long _committedChanges;
    private bool _disposed;

    private ZonedNamespace(NamespaceOptions options, ZoneGeometry geometry, IBackstore backstore, ZoneStateFile? stateFile, Guid uuid)
    {
        Options = options;
        Geometry = geometry;
        _backstore = backstore;
        _stateFile = stateFile;
        Uuid = uuid;
        _zones = new ZoneRecord[geometry.ZoneCount];
        _extensions = new byte[(long)geometry.ZoneCount * geometry.DescriptorExtensionSize];
        _zoneLocks = new object[geometry.ZoneCount];
        _next = new int[geometry.ZoneCount];
        _prev = new int[geometry.ZoneCount];
        _zrwaDataEnd = new ulong[geometry.ZrwaSupported ? geometry.ZoneCount : 0];
        _zrwaFree = geometry.ZrwaResources;
        for (uint i = 0; i < geometry.ZoneCount; i++)
        {
            _zoneLocks[i] = new object();
            _zones[i] = new ZoneRecord { WritePointer = geometry.ZoneStart(i), State = ZoneState.Empty };
            _next[i] = _prev[i] = -1;
        }
    }

    /// <summary>The options the namespace was opened with.</summary>
    public NamespaceOptions Options { get; }

    /// <summary>Derived geometry.</summary>
    public ZoneGeometry Geometry { get; }

    /// <summary>Whether this is a zoned namespace.</summary>
    public bool IsZoned => Geometry.Zoned;

    /// <summary>A stable identifier (persisted in the state file; random for RAM and ephemeral namespaces).</summary>
    public Guid Uuid { get; }

    /// <summary>The state file path, or null when nothing is persisted.</summary>
    public string? StatePath => _stateFile?.Path;

    /// <summary>Currently open zones (implicitly + explicitly).</summary>
    public uint OpenZoneCount { get { lock (_stateLock) { return _openCount; } } }

    /// <summary>Currently active zones (open + closed).</summary>
    public uint ActiveZoneCount { get { lock (_stateLock) { return _activeCount; } } }

    /// <summary>Creates a namespace on a RAM backstore of <paramref name="sizeBytes"/> bytes.</summary>
    public static ZonedNamespace CreateInMemory(long sizeBytes, NamespaceOptions options, Guid? uuid = null)
    {
        var geometry = ZoneGeometry.Create(options, sizeBytes);
        return new ZonedNamespace(options, geometry, new MemoryBackstore(geometry.UsedBytes), null, uuid ?? Guid.NewGuid());
    }

    /// <summary>
    /// The options stored in a backstore's state file, or null if it has none. Callers start from these so a user
    /// does not have to repeat the geometry on every run.
    /// </summary>
    public static NamespaceOptions? ReadStoredOptions(string backstorePath) =>
        ZoneStateFile.TryLoad(ZoneStateFile.PathFor(backstorePath))?.Options;

    /// <summary>
    /// Opens a raw backstore file (QEMU layout) with its zone state file <c>FILE.zns</c>. Throws
    /// <see cref="OptionException"/> for invalid options or a geometry that differs from the stored one
    /// (unless <see cref="StateMode.Reformat"/>), <see cref="IOException"/> for file errors.
    /// </summary>
    public static ZonedNamespace OpenFile(string path, NamespaceOptions options, StateMode mode = StateMode.Persistent)
    {
        var backstore = FileBackstore.Open(path);
        try
        {
            var geometry = ZoneGeometry.Create(options, backstore.Length);
            string statePath = ZoneStateFile.PathFor(path);
            if (mode == StateMode.Ephemeral)
            {
                return new ZonedNamespace(options, geometry, backstore, null, Guid.NewGuid());
            }
            var loaded = mode == StateMode.Persistent ? ZoneStateFile.TryLoad(statePath) : null;
            if (loaded is not null)
            {
                CheckSameGeometry(loaded, geometry);
            }
            var stateFile = ZoneStateFile.OpenForCommits(statePath, geometry, loaded?.Sequence ?? 0);
            var ns = new ZonedNamespace(options, geometry, backstore, stateFile, loaded?.Uuid ?? Guid.NewGuid());
            if (loaded is not null)
            {
                ns.Restore(loaded);
            }
            else if (mode == StateMode.Reformat)
            {
                backstore.Zero(0, backstore.Length);
            }
            ns.Commit(force: true);
            return ns;
        }
        catch
        {
            backstore.Dispose();
            throw;
        }
    }

    private static void CheckSameGeometry(ZoneStateFile.Loaded loaded, ZoneGeometry want)
    {
        var s = loaded.Options;
        var have = ZoneGeometry.Create(s, loaded.BackstoreLength);
        string? differs =
            have.BlockSize != want.BlockSize ? "logical_block_size" :
            have.Zoned != want.Zoned ? "zoned" :
            want.Zoned && have.ZoneSizeLbas != want.ZoneSizeLbas ? "zoned.zone_size" :
            want.Zoned && have.ZoneCapacityLbas != want.ZoneCapacityLbas ? "zoned.zone_capacity" :
            want.Zoned && have.MaxOpen != want.MaxOpen ? "zoned.max_open" :
            want.Zoned && have.MaxActive != want.MaxActive ? "zoned.max_active" :
            want.Zoned && have.DescriptorExtensionSize != want.DescriptorExtensionSize ? "zoned.descr_ext_size" :
            have.NamespaceSizeLbas != want.NamespaceSizeLbas || have.ZoneCount != want.ZoneCount ? "size" : null;
        if (differs is not null)
        {
            throw new OptionException(differs,
                $"differs from the geometry stored in the zone state file (stored: {ZoneStateFile.Describe(s)}, " +
                $"max_open={s.MaxOpen}, max_active={s.MaxActive}, descr_ext_size={s.DescriptorExtensionSize}, size={loaded.BackstoreLength}); " +
                "use the stored geometry or reformat");
        }
    }

    // Reopening is a power cycle: QEMU's shutdown rule turns open zones into Closed, or Empty if nothing was written.
    private void Restore(ZoneStateFile.Loaded loaded)
    {
        loaded.Extensions.CopyTo(_extensions, 0);
        lock (_stateLock)
        {
            for (uint i = 0; i < _zones.Length; i++)
            {
                var r = loaded.Zones[i];
                ulong start = Geometry.ZoneStart(i);
                if (r.WritePointer < start || r.WritePointer > start + Geometry.ZoneCapacityLbas || !Enum.IsDefined(r.State))
                {
                    throw new InvalidDataException($"zone state file: zone {i} has an invalid record (state {r.State}, wp {r.WritePointer})");
                }
                // A restart closes every Zone Random Write Area: data past the write pointer is not committed.
                _zones[i] = new ZoneRecord { WritePointer = r.WritePointer, State = ZoneState.Empty, Attributes = r.Attributes & ~ZoneAttributes.ZrwaValid };
                ZoneState target = r.State switch
                {
                    ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed => PowerCycleState(i),
                    _ => r.State,
                };
                SetState(i, target);
            }
        }
    }

    private ZoneState PowerCycleState(uint zone) =>
        _zones[zone].WritePointer != Geometry.ZoneStart(zone) || (_zones[zone].Attributes & ZoneAttributes.DescriptorExtensionValid) != 0
            ? ZoneState.Closed : ZoneState.Empty;

    /// <summary>
    /// The zones of a backstore file as its state file last committed them, without opening the namespace (so a
    /// running server is not disturbed). Null when the file has no state file (every zone would start Empty).
    /// </summary>
    public static (ZoneGeometry Geometry, ZoneInfo[] Zones)? ReadStoredZones(string backstorePath)
    {
        var loaded = ZoneStateFile.TryLoad(ZoneStateFile.PathFor(backstorePath));
        if (loaded is null)
        {
            return null;
        }
        var g = ZoneGeometry.Create(loaded.Options, loaded.BackstoreLength);
        if (g.ZoneCount != loaded.Zones.Length)
        {
            throw new InvalidDataException($"{backstorePath}.zns: zone count does not match its geometry");
        }
        var zones = new ZoneInfo[g.ZoneCount];
        for (uint i = 0; i < zones.Length; i++)
        {
            var r = loaded.Zones[i];
            zones[i] = new ZoneInfo(i, g.ZoneStart(i), g.ZoneCapacityLbas, r.WritePointer, r.State, r.Attributes);
        }
        return (g, zones);
    }

    /// <summary>
    /// Commits the state exactly as it is (open zones stay open in the state file; the next open applies the power
    /// cycle rule) and releases the files. For tools that change zones offline, like <c>zns open</c>.
    /// </summary>
    public void Detach()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        try
        {
            Interlocked.Increment(ref _changes);
            Commit(force: true);
        }
        finally
        {
            _stateFile?.Dispose();
            _backstore.Dispose();
        }
    }

    /// <summary>A snapshot of zone <paramref name="index"/>.</summary>
    public ZoneInfo GetZone(uint index)
    {
        lock (_stateLock)
        {
            var z = _zones[index];
            return new ZoneInfo(index, Geometry.ZoneStart(index), Geometry.ZoneCapacityLbas, z.WritePointer, z.State, z.Attributes);
        }
    }

    /// <summary>The descriptor extension of a zone (empty when the namespace has none).</summary>
    public byte[] GetDescriptorExtension(uint index)
    {
        lock (_stateLock)
        {
            return _extensions.AsSpan((int)(index * Geometry.DescriptorExtensionSize), Geometry.DescriptorExtensionSize).ToArray();
        }
    }

    /// <summary>How many zones are in each state.</summary>
    public ZoneStateCounts CountZones()
    {
        Span<uint> n = stackalloc uint[16];
        lock (_stateLock)
        {
            foreach (var z in _zones)
            {
                n[(int)z.State]++;
            }
        }
        return new ZoneStateCounts(n[1], n[2], n[3], n[4], n[0xE], n[0xD], n[0xF]);
    }

    // ---------------------------------------------------------------- I/O commands

    /// <summary>Read: fills <paramref name="destination"/> (a whole number of blocks) starting at <paramref name="slba"/>.</summary>
    public NvmeStatus Read(ulong slba, Span<byte> destination)
    {
        var status = CheckTransfer(destination.Length, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(destination.Length); }
        if (status.IsSuccess) { status = CheckBounds(slba, nlb); }
        if (status.IsSuccess && IsZoned) { status = CheckZoneRead(slba, nlb); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return ReadData(slba, destination);
    }

    // No checks: per zone, data below where the zone's data ends comes from the backstore, the rest is zeros.
    private NvmeStatus ReadData(ulong slba, Span<byte> destination)
    {
        if (!IsZoned)
        {
            return TryRead(Geometry.ByteOffset(slba), destination) ? NvmeStatus.Success : NvmeStatus.UnrecoveredReadError;
        }
        ulong lba = slba;
        int shift = Geometry.BlockShift;
        while (!destination.IsEmpty)
        {
            uint zi = Geometry.ZoneOf(lba);
            ulong zoneEnd = Geometry.ZoneStart(zi) + Geometry.ZoneSizeLbas;
            int segment = (int)Math.Min((ulong)destination.Length >> shift, zoneEnd - lba);
            ulong dataEnd;
            lock (_stateLock)
            {
                dataEnd = DataEnd(zi);
            }
            int valid = lba >= dataEnd ? 0 : (int)Math.Min((ulong)segment, dataEnd - lba);
            if (valid > 0)
            {
                if (!TryRead(Geometry.ByteOffset(lba), destination[..(valid << shift)]))
                {
                    return NvmeStatus.UnrecoveredReadError;
                }
            }
            destination.Slice(valid << shift, (segment - valid) << shift).Clear();
            destination = destination[(segment << shift)..];
            lba += (ulong)segment;
        }
        return NvmeStatus.Success;
    }

    /// <summary>Write: <paramref name="data"/> (a whole number of blocks) at <paramref name="slba"/>, which must be the zone's write pointer.</summary>
    public NvmeStatus Write(ulong slba, ReadOnlySpan<byte> data, bool fua = false)
    {
        var status = CheckTransfer(data.Length, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(data.Length); }
        if (status.IsSuccess) { status = CheckBounds(slba, nlb); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return WriteAt(slba, nlb, data, zeroes: false, fua, append: false, out _);
    }

    /// <summary>Write Zeroes: <paramref name="blockCount"/> zero blocks at <paramref name="slba"/> (write pointer rules apply).</summary>
    public NvmeStatus WriteZeroes(ulong slba, uint blockCount, bool fua = false)
    {
        if (blockCount == 0)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        var status = CheckBounds(slba, blockCount);
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return WriteAt(slba, blockCount, default, zeroes: true, fua, append: false, out _);
    }

    /// <summary>
    /// Zone Append: writes <paramref name="data"/> at the write pointer of the zone starting at
    /// <paramref name="zslba"/> and returns the LBA it landed at in <paramref name="assignedLba"/> (ALBA).
    /// </summary>
    public NvmeStatus Append(ulong zslba, ReadOnlySpan<byte> data, out ulong assignedLba, bool fua = false)
    {
        assignedLba = 0;
        if (!IsZoned)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        var status = CheckTransfer(data.Length, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(data.Length); }
        if (status.IsSuccess) { status = CheckBounds(zslba, nlb); }
        if (status.IsSuccess && HasZrwa(Geometry.ZoneOf(zslba))) { status = NvmeStatus.InvalidZoneOperation; }
        if (status.IsSuccess && zslba % Geometry.ZoneSizeLbas != 0) { status = NvmeStatus.InvalidField; }
        if (status.IsSuccess && data.Length > Geometry.ZoneAppendLimitBytes) { status = NvmeStatus.InvalidField; }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return WriteAt(zslba, nlb, data, zeroes: false, fua, append: true, out assignedLba);
    }

    /// <summary>
    /// Writes refused with Zone Invalid Write because their SLBA lay ahead of the zone's write pointer: what a host
    /// that reorders the writes of one zone causes (Linux before 6.10 with I/O scheduler none over several I/O
    /// queues). A write behind the write pointer is a different bug and not counted.
    /// </summary>
    public long WritesAheadOfWritePointer => Interlocked.Read(ref _writesAheadOfWritePointer);

    /// <summary>Flush: makes every completed write and the zone state durable.</summary>
    public NvmeStatus Flush()
    {
        try
        {
            Commit(force: false);
            return NvmeStatus.Success;
        }
        catch (IOException)
        {
            // QEMU's status for a failed flush of the backing file; no DNR: it may succeed once space is freed.
            return NvmeStatus.WriteFault;
        }
    }

    /// <summary>Dataset Management deallocate: the range reads as zeros afterwards; write pointers do not move.</summary>
    public NvmeStatus Deallocate(ulong slba, uint blockCount)
    {
        var status = CheckBounds(slba, blockCount);
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        if (blockCount == 0)
        {
            return NvmeStatus.Success;
        }
        // On a zoned namespace only whole blocks below the write pointer are data; the rest already reads as zeros.
        return TryZero(Geometry.ByteOffset(slba), (long)blockCount << Geometry.BlockShift) ? NvmeStatus.Success : NvmeStatus.InternalError;
    }

    /// <summary>Size of one Copy source range entry of format 0 (Source Range Entries Copy Descriptor Format 0h).</summary>
    public const int CopyRangeFormat0Size = 32;

    /// <summary>Copy descriptor formats this namespace accepts (OCFS): format 0 and 1 (1 carries 64-bit PI fields).</summary>
    public const ushort CopyFormatsSupported = 0x3;

    /// <summary>
    /// Copy (Simple Copy): copies <paramref name="rangeCount"/> source ranges of descriptor format
    /// <paramref name="format"/> (read from <paramref name="ranges"/>) to consecutive LBAs from
    /// <paramref name="sdlba"/>, with QEMU's checks in QEMU's order. Each range is checked and written on its own:
    /// a failing range leaves the ones before it written (the write pointer advanced over them) and its index in
    /// <paramref name="failedRange"/> (CQE DW0).
    /// </summary>
    public NvmeStatus Copy(ulong sdlba, byte format, int rangeCount, ReadOnlySpan<byte> ranges, out uint failedRange)
    {
        failedRange = 0;
        // Without protection information only format 0 describes ranges; format 1 is for 64-bit guard PI.
        NvmeStatus status =
            format > 3 || (CopyFormatsSupported & (1 << format)) == 0 ? NvmeStatus.InvalidField :
            rangeCount > Geometry.Msrc + 1 ? NvmeStatus.CommandSizeLimitExceeded :
            format != 0 ? NvmeStatus.InvalidFormat :
            ranges.Length < rangeCount * CopyRangeFormat0Size ? NvmeStatus.DataSglLengthInvalid :
            NvmeStatus.Success;
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        if (!IsZoned)
        {
            status = CheckCopyLength(rangeCount, ranges);
            return status.IsSuccess ? CopyRanges(uint.MaxValue, sdlba, rangeCount, ranges, out failedRange) : status.WithDnr();
        }
        if (sdlba >= Geometry.NamespaceSizeLbas)
        {
            return NvmeStatus.LbaOutOfRange.WithDnr();
        }
        uint dz = Geometry.ZoneOf(sdlba);
        lock (_zoneLocks[dz])
        {
            // QEMU opens the destination zone before the length check: a Command Size Limit leaves it open. Its
            // zone state errors carry no DNR in Copy (resource limits do).
            lock (_stateLock)
            {
                status = Open(dz, implicitly: true);
            }
            if (!status.IsSuccess)
            {
                return status == NvmeStatus.InvalidZoneStateTransition ? status : status.WithDnr();
            }
            Interlocked.Increment(ref _changes);
            status = CheckCopyLength(rangeCount, ranges);
            return status.IsSuccess ? CopyRanges(dz, sdlba, rangeCount, ranges, out failedRange) : status.WithDnr();
        }
    }

    private NvmeStatus CheckCopyLength(int rangeCount, ReadOnlySpan<byte> ranges)
    {
        ulong total = 0;
        for (int i = 0; i < rangeCount; i++)
        {
            total += CopyRangeBlocks(ranges, i);
        }
        return total > Geometry.Mcl ? NvmeStatus.CommandSizeLimitExceeded : NvmeStatus.Success;
    }

    // Format 0 entry: bytes 8..15 SLBA, 16..17 NLB (0's based).
    private static ulong CopyRangeStart(ReadOnlySpan<byte> ranges, int i) =>
        BinaryPrimitives.ReadUInt64LittleEndian(ranges[(i * CopyRangeFormat0Size + 8)..]);

    private static uint CopyRangeBlocks(ReadOnlySpan<byte> ranges, int i) =>
        BinaryPrimitives.ReadUInt16LittleEndian(ranges[(i * CopyRangeFormat0Size + 16)..]) + 1u;

    // Per range (QEMU's nvme_do_copy / nvme_copy_in_completed_cb): MSSRL, source bounds and zone read rules, read,
    // destination bounds and zone write rules against the destination zone, write, advance. Caller holds the
    // destination zone's lock (zoned).
    private NvmeStatus CopyRanges(uint dz, ulong dlba, int rangeCount, ReadOnlySpan<byte> ranges, out uint failedRange)
    {
        int shift = Geometry.BlockShift;
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Geometry.Mssrl << shift);
        try
        {
            for (int i = 0; i < rangeCount; i++)
            {
                failedRange = (uint)i;
                ulong slba = CopyRangeStart(ranges, i);
                uint nlb = CopyRangeBlocks(ranges, i);
                NvmeStatus status =
                    nlb > Geometry.Mssrl ? NvmeStatus.CommandSizeLimitExceeded.WithDnr() :
                    CheckBounds(slba, nlb) is { IsSuccess: false } b ? b.WithDnr() :
                    IsZoned ? CheckZoneRead(slba, nlb) : NvmeStatus.Success;
                // Zone rule statuses of Copy carry no DNR in QEMU (nvme_check_zone_read/_write return them bare).
                if (!status.IsSuccess)
                {
                    return status;
                }
                Span<byte> data = buffer.AsSpan(0, (int)nlb << shift);
                status = ReadData(slba, data);
                if (!status.IsSuccess)
                {
                    return status;
                }
                status = CheckBounds(dlba, nlb);
                if (!status.IsSuccess)
                {
                    return status.WithDnr();
                }
                if (IsZoned)
                {
                    lock (_stateLock)
                    {
                        status = CheckZoneWrite(dz, dlba, nlb);
                    }
                    if (!status.IsSuccess)
                    {
                        return status;
                    }
                }
                if (!TryWrite(Geometry.ByteOffset(dlba), data))
                {
                    return NvmeStatus.WriteFault;
                }
                if (IsZoned)
                {
                    lock (_stateLock)
                    {
                        CompleteZonedWrite(dz, dlba, nlb);
                    }
                }
                Interlocked.Increment(ref _changes);
                dlba += nlb;
            }
            failedRange = 0;
            return NvmeStatus.Success;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Verify: reads <paramref name="blockCount"/> blocks from <paramref name="slba"/> and returns no data. QEMU's
    /// checks only: the Verify Size Limit (Invalid Field) and bounds; no zone rules (Offline zones and zone
    /// boundaries are not checked).
    /// </summary>
    public NvmeStatus Verify(ulong slba, uint blockCount)
    {
        NvmeStatus status =
            ((long)blockCount << Geometry.BlockShift) > Geometry.VerifyLimitBytes ? NvmeStatus.InvalidField :
            CheckBounds(slba, blockCount);
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return ReadChunks(slba, blockCount, default);
    }

    /// <summary>
    /// Compare: <paramref name="data"/> against the blocks at <paramref name="slba"/>; Compare Failure (with DNR)
    /// when they differ. QEMU's checks: MDTS, bounds, no zone rules. Unwritten blocks compare as zeros.
    /// </summary>
    public NvmeStatus Compare(ulong slba, ReadOnlySpan<byte> data)
    {
        var status = CheckTransfer(data.Length, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(data.Length); }
        if (status.IsSuccess) { status = CheckBounds(slba, nlb); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return ReadChunks(slba, nlb, data);
    }

    // Reads blocks in pieces of at most 64 KiB; compares them with `expected` unless it is empty.
    private NvmeStatus ReadChunks(ulong slba, uint blockCount, ReadOnlySpan<byte> expected)
    {
        int shift = Geometry.BlockShift;
        int chunkBlocks = Math.Max(1, (64 << 10) >> shift);
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(chunkBlocks << shift);
        try
        {
            for (uint done = 0; done < blockCount;)
            {
                int n = (int)Math.Min((uint)chunkBlocks, blockCount - done);
                Span<byte> chunk = buffer.AsSpan(0, n << shift);
                NvmeStatus status = ReadData(slba + done, chunk);
                if (!status.IsSuccess)
                {
                    return status;
                }
                if (!expected.IsEmpty && !chunk.SequenceEqual(expected.Slice((int)done << shift, n << shift)))
                {
                    return NvmeStatus.CompareFailure.WithDnr();
                }
                done += (uint)n;
            }
            return NvmeStatus.Success;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private NvmeStatus WriteAt(ulong slba, uint nlb, ReadOnlySpan<byte> data, bool zeroes, bool fua, bool append, out ulong assignedLba)
    {
        assignedLba = slba;
        if (!IsZoned)
        {
            var s = WriteData(slba, nlb, data, zeroes);
            Interlocked.Increment(ref _changes);
            return s.IsSuccess && fua ? Flush() : s;
        }

        uint zi = Geometry.ZoneOf(slba);
        lock (_zoneLocks[zi])
        {
            NvmeStatus status;
            lock (_stateLock)
            {
                ref var z = ref _zones[zi];
                if (append)
                {
                    slba = z.WritePointer;
                    assignedLba = slba;
                }
                status = CheckZoneWrite(zi, slba, nlb);
                if (status.IsSuccess)
                {
                    status = Open(zi, implicitly: true);
                }
                else if (status == NvmeStatus.ZoneInvalidWrite && slba > z.WritePointer)
                {
                    Interlocked.Increment(ref _writesAheadOfWritePointer);
                }
            }
            if (!status.IsSuccess)
            {
                return status.WithDnr();
            }

            status = WriteData(slba, nlb, data, zeroes);
            if (!status.IsSuccess)
            {
                // The write pointer stays where it was: the data is not known to be there.
                return status;
            }
            lock (_stateLock)
            {
                CompleteZonedWrite(zi, slba, nlb);
            }
        }
        Interlocked.Increment(ref _changes);
        return fua ? Flush() : NvmeStatus.Success;
    }

    private NvmeStatus WriteData(ulong slba, uint nlb, ReadOnlySpan<byte> data, bool zeroes)
    {
        long offset = Geometry.ByteOffset(slba);
        bool ok = zeroes ? TryZero(offset, (long)nlb << Geometry.BlockShift) : TryWrite(offset, data);
        return ok ? NvmeStatus.Success : NvmeStatus.WriteFault;
    }

    // Backstore failures become NVMe statuses (QEMU: Unrecovered Read Error, Write Fault), never exceptions.
    private bool TryRead(long offset, Span<byte> destination)
    {
        try { _backstore.Read(offset, destination); return true; }
        catch (IOException) { return false; }
    }

    private bool TryWrite(long offset, ReadOnlySpan<byte> data)
    {
        try { _backstore.Write(offset, data); return true; }
        catch (IOException) { return false; }
    }

    private bool TryZero(long offset, long length)
    {
        try { _backstore.Zero(offset, length); return true; }
        catch (IOException) { return false; }
    }

    // ---------------------------------------------------------------- checks (each one rule, QEMU's order)

    private NvmeStatus CheckTransfer(int bytes, out uint nlb)
    {
        nlb = (uint)(bytes >> Geometry.BlockShift);
        if (bytes <= 0 || (bytes & (Geometry.BlockSize - 1)) != 0)
        {
            return NvmeStatus.InvalidField;
        }
        return NvmeStatus.Success;
    }

    private NvmeStatus CheckMdts(long bytes) =>
        bytes > Geometry.MaxTransferBytes ? NvmeStatus.InvalidField : NvmeStatus.Success;

    private NvmeStatus CheckBounds(ulong slba, ulong nlb) =>
        ulong.MaxValue - slba < nlb || slba + nlb > Geometry.NamespaceSizeLbas ? NvmeStatus.LbaOutOfRange : NvmeStatus.Success;

    private static NvmeStatus CheckStateForWrite(ZoneState state) => state switch
    {
        ZoneState.Empty or ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed => NvmeStatus.Success,
        ZoneState.Full => NvmeStatus.ZoneIsFull,
        ZoneState.Offline => NvmeStatus.ZoneIsOffline,
        ZoneState.ReadOnly => NvmeStatus.ZoneIsReadOnly,
        _ => throw new UnreachableException(),
    };

    private static NvmeStatus CheckStateForRead(ZoneState state) =>
        state == ZoneState.Offline ? NvmeStatus.ZoneIsOffline : NvmeStatus.Success;

    // State, then write pointer, then the write boundary (zone start + capacity).
    private NvmeStatus CheckZoneWrite(uint zi, ulong slba, uint nlb)
    {
        ref var z = ref _zones[zi];
        var status = CheckStateForWrite(z.State);
        if (!status.IsSuccess)
        {
            return status;
        }
        if ((z.Attributes & ZoneAttributes.ZrwaValid) != 0)
        {
            // Anywhere in the window: the write pointer up to twice the ZRWA size (QEMU's nvme_check_zone_write).
            if (slba < z.WritePointer || slba + nlb > z.WritePointer + 2 * Geometry.ZrwaSizeLbas)
            {
                return NvmeStatus.ZoneInvalidWrite;
            }
        }
        else if (slba != z.WritePointer)
        {
            return NvmeStatus.ZoneInvalidWrite;
        }
        if (slba + nlb > Geometry.ZoneStart(zi) + Geometry.ZoneCapacityLbas)
        {
            return NvmeStatus.ZoneBoundaryError;
        }
        return NvmeStatus.Success;
    }

    private NvmeStatus CheckZoneRead(ulong slba, uint nlb)
    {
        ulong end = slba + nlb;
        uint zi = Geometry.ZoneOf(slba);
        lock (_stateLock)
        {
            var status = CheckStateForRead(_zones[zi].State);
            if (!status.IsSuccess || end <= Geometry.ZoneStart(zi) + Geometry.ZoneSizeLbas)
            {
                return status;
            }
            if (!Geometry.CrossRead)
            {
                return NvmeStatus.ZoneBoundaryError;
            }
            do
            {
                zi++;
                status = CheckStateForRead(_zones[zi].State);
            }
            while (status.IsSuccess && end > Geometry.ZoneStart(zi) + Geometry.ZoneSizeLbas);
            return status;
        }
    }

    // ---------------------------------------------------------------- resource accounting (the one place counts change)

    /// <summary>
    /// Moves a zone to <paramref name="to"/>, keeping the open/active counts and the implicitly-opened order in
    /// step. Callers have already checked the limits. Caller holds the state lock.
    /// </summary>
    private void SetState(uint zi, ZoneState to)
    {
        ref var z = ref _zones[zi];
        ZoneState from = z.State;
        if (from == to)
        {
            return;
        }
        if (IsOpen(from)) { _openCount--; }
        if (IsActive(from)) { _activeCount--; }
        if (ListOf(from) is int fromList) { Unlink(fromList, zi); }
        z.State = to;
        if (IsOpen(to)) { _openCount++; }
        if (IsActive(to)) { _activeCount++; }
        if (ListOf(to) is int toList) { Link(toList, zi); }
        Debug.Assert(_openCount <= _activeCount, "open zones are a subset of active zones");
        Debug.Assert(Geometry.MaxOpen == 0 || _openCount <= Geometry.MaxOpen, "open limit");
        Debug.Assert(Geometry.MaxActive == 0 || _activeCount <= Geometry.MaxActive, "active limit");
    }

    private static bool IsOpen(ZoneState s) => s is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened;
    private static bool IsActive(ZoneState s) => s is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed;

    private static int? ListOf(ZoneState s) => s switch
    {
        ZoneState.ImplicitlyOpened => ImplicitList,
        ZoneState.ExplicitlyOpened => ExplicitList,
        ZoneState.Closed => ClosedList,
        _ => null,
    };

    private void Link(int list, uint zi, bool atHead = false)
    {
        if (atHead && _head[list] >= 0)
        {
            _next[zi] = _head[list];
            _prev[zi] = -1;
            _prev[_head[list]] = (int)zi;
            _head[list] = (int)zi;
            return;
        }
        _prev[zi] = _tail[list];
        _next[zi] = -1;
        if (_tail[list] >= 0) { _next[_tail[list]] = (int)zi; } else { _head[list] = (int)zi; }
        _tail[list] = (int)zi;
    }

    private void Unlink(int list, uint zi)
    {
        int p = _prev[zi], n = _next[zi];
        if (p >= 0) { _next[p] = n; } else { _head[list] = n; }
        if (n >= 0) { _prev[n] = p; } else { _tail[list] = p; }
        _prev[zi] = _next[zi] = -1;
    }

    private NvmeStatus CheckResources(uint addActive, uint addOpen, uint addZrwa = 0)
    {
        if (addZrwa > _zrwaFree)
        {
            if (Geometry.MaxActive != 0 && _activeCount + addActive > Geometry.MaxActive) { return NvmeStatus.TooManyActiveZones; }
            if (Geometry.MaxOpen != 0 && _openCount + addOpen > Geometry.MaxOpen) { return NvmeStatus.TooManyOpenZones; }
            return NvmeStatus.ZrwaResourcesUnavailable;
        }
        if (Geometry.MaxActive != 0 && _activeCount + addActive > Geometry.MaxActive)
        {
            return NvmeStatus.TooManyActiveZones;
        }
        if (Geometry.MaxOpen != 0 && _openCount + addOpen > Geometry.MaxOpen)
        {
            return NvmeStatus.TooManyOpenZones;
        }
        return NvmeStatus.Success;
    }

    // QEMU's auto transition: at the open limit, close the oldest implicitly opened zone to make room.
    private void AutoClose()
    {
        if (Geometry.AutoTransition && Geometry.MaxOpen != 0 && _openCount == Geometry.MaxOpen && _head[ImplicitList] >= 0)
        {
            SetState((uint)_head[ImplicitList], ZoneState.Closed);
        }
    }

    /// <summary>
    /// Open for a write (implicit) or for Open Zone (explicit), with a ZRWA allocated when <paramref name="zrwa"/>
    /// (Open with ZSASO). Caller holds the state lock.
    /// </summary>
    private NvmeStatus Open(uint zi, bool implicitly, bool zrwa = false)
    {
        ZoneState state = _zones[zi].State;
        // A zone that already has a ZRWA keeps it and needs no second resource.
        uint addZrwa = zrwa && !HasZrwaLocked(zi) ? 1u : 0u;
        switch (state)
        {
            case ZoneState.Empty:
            case ZoneState.Closed:
            {
                AutoClose();
                var status = CheckResources(state == ZoneState.Empty ? 1u : 0u, 1, addZrwa);
                if (!status.IsSuccess)
                {
                    return status;
                }
                SetState(zi, implicitly ? ZoneState.ImplicitlyOpened : ZoneState.ExplicitlyOpened);
                break;
            }
            case ZoneState.ImplicitlyOpened:
            case ZoneState.ExplicitlyOpened:
            {
                var status = CheckResources(0, 0, addZrwa);
                if (!status.IsSuccess)
                {
                    return status;
                }
                if (!implicitly)
                {
                    SetState(zi, ZoneState.ExplicitlyOpened);
                }
                break;
            }
            default:
                return NvmeStatus.InvalidZoneStateTransition;
        }
        if (addZrwa != 0)
        {
            _zrwaFree--;
            _zones[zi].Attributes |= ZoneAttributes.ZrwaValid;
            _zrwaDataEnd[zi] = _zones[zi].WritePointer;
        }
        return NvmeStatus.Success;
    }

    // Open Zone with ZSASO (QEMU's nvme_open_zone): ZRWA support first, then a write pointer on the flush
    // granularity (else ZRWA Resources Unavailable), then the ordinary open with the resource.
    private NvmeStatus OpenWithZrwa(uint zi)
    {
        if (!Geometry.ZrwaSupported)
        {
            return NvmeStatus.InvalidZoneOperation;
        }
        if (_zones[zi].WritePointer % Geometry.ZrwaFlushGranularityLbas != 0)
        {
            return NvmeStatus.ZrwaResourcesUnavailable;
        }
        return Open(zi, implicitly: false, zrwa: true);
    }

    private bool HasZrwaLocked(uint zi) => (_zones[zi].Attributes & ZoneAttributes.ZrwaValid) != 0;

    private bool HasZrwa(uint zi)
    {
        if (!Geometry.ZrwaSupported)
        {
            return false;
        }
        lock (_stateLock)
        {
            return HasZrwaLocked(zi);
        }
    }

    // Where a zone's readable data ends: the write pointer, or past it what was written into the ZRWA window.
    // A zone finished while it had a ZRWA keeps its window data readable until reset.
    private ulong DataEnd(uint zi) =>
        Geometry.ZrwaSupported ? Math.Max(_zones[zi].WritePointer, _zrwaDataEnd[zi]) : _zones[zi].WritePointer;

    private void ReleaseZrwa(uint zi)
    {
        if (HasZrwaLocked(zi))
        {
            _zones[zi].Attributes &= ~ZoneAttributes.ZrwaValid;
            _zrwaFree++;
        }
    }

    // After the data of a write is in the backstore: advance the write pointer, or for a zone with a ZRWA, flush
    // implicitly when the write ended past the first ZRWAS blocks of the window, rounded up to the flush
    // granularity (QEMU's nvme_zoned_zrwa_implicit_flush).
    private void CompleteZonedWrite(uint zi, ulong slba, uint nlb)
    {
        if (!HasZrwaLocked(zi))
        {
            AdvanceWritePointer(zi, nlb);
            return;
        }
        ulong end = slba + nlb;
        _zrwaDataEnd[zi] = Math.Max(_zrwaDataEnd[zi], end);
        ulong windowLast = _zones[zi].WritePointer + Geometry.ZrwaSizeLbas - 1;
        ulong last = end - 1;
        if (last > windowLast)
        {
            ulong fg = Geometry.ZrwaFlushGranularityLbas;
            AdvanceWritePointer(zi, (last - windowLast + fg - 1) / fg * fg);
        }
    }

    // ZSA 11h: commit the window up to and including ELBA (QEMU's nvme_zone_mgmt_send_zrwa_flush).
    private NvmeStatus FlushZrwa(uint zi, ulong elba)
    {
        if (!Geometry.ZrwaSupported)
        {
            return NvmeStatus.InvalidZoneOperation;
        }
        if (!HasZrwaLocked(zi))
        {
            return NvmeStatus.InvalidField;
        }
        ulong wp = _zones[zi].WritePointer;
        if (elba < wp || elba > wp + Geometry.ZrwaSizeLbas)
        {
            return NvmeStatus.ZoneBoundaryError;
        }
        ulong nlb = elba - wp + 1;
        if (nlb % Geometry.ZrwaFlushGranularityLbas != 0)
        {
            return NvmeStatus.InvalidField;
        }
        var status = Open(zi, implicitly: true);
        if (!status.IsSuccess)
        {
            return status;
        }
        AdvanceWritePointer(zi, nlb);
        return NvmeStatus.Success;
    }

    private void AdvanceWritePointer(uint zi, ulong nlb)
    {
        ref var z = ref _zones[zi];
        ulong boundary = Geometry.ZoneStart(zi) + Geometry.ZoneCapacityLbas;
        // A ZRWA flush rounded up to the granularity may reach past the capacity; the zone is then full.
        z.WritePointer = Math.Min(z.WritePointer + nlb, boundary);
        if (z.WritePointer == boundary)
        {
            Finish(zi);
        }
    }

    private NvmeStatus Close(uint zi)
    {
        switch (_zones[zi].State)
        {
            case ZoneState.ImplicitlyOpened:
            case ZoneState.ExplicitlyOpened:
                SetState(zi, ZoneState.Closed);
                return NvmeStatus.Success;
            case ZoneState.Closed:
                return NvmeStatus.Success;
            default:
                return NvmeStatus.InvalidZoneStateTransition;
        }
    }

    // Finish needs no resources (QEMU does not check): it only releases them.
    private NvmeStatus Finish(uint zi)
    {
        switch (_zones[zi].State)
        {
            case ZoneState.Full:
                return NvmeStatus.Success;
            case ZoneState.Empty:
            case ZoneState.ImplicitlyOpened:
            case ZoneState.ExplicitlyOpened:
            case ZoneState.Closed:
                // The write pointer stays where the data ends (window data of a ZRWA included), so reads past it
                // keep returning zeros.
                // The write pointer stays where QEMU keeps it (Zone Append's ALBA on the full zone shows it).
                ReleaseZrwa(zi);
                SetState(zi, ZoneState.Full);
                _zones[zi].Attributes &= ~ZoneAttributes.FinishRecommended; // a Full zone has nothing left to finish
                return NvmeStatus.Success;
            default:
                return NvmeStatus.InvalidZoneStateTransition;
        }
    }

    private NvmeStatus Reset(uint zi, out ulong releasedEnd)
    {
        ref var z = ref _zones[zi];
        releasedEnd = 0;
        switch (z.State)
        {
            case ZoneState.Empty:
                return NvmeStatus.Success;
            case ZoneState.ImplicitlyOpened:
            case ZoneState.ExplicitlyOpened:
            case ZoneState.Closed:
            case ZoneState.Full:
                releasedEnd = DataEnd(zi);
                ReleaseZrwa(zi);
                if (Geometry.ZrwaSupported)
                {
                    _zrwaDataEnd[zi] = 0;
                }
                SetState(zi, ZoneState.Empty);
                z.WritePointer = Geometry.ZoneStart(zi);
                z.Attributes = ZoneAttributes.None;
                ExtensionOf(zi).Clear();
                return NvmeStatus.Success;
            default:
                return NvmeStatus.InvalidZoneStateTransition;
        }
    }

    private NvmeStatus Offline(uint zi)
    {
        switch (_zones[zi].State)
        {
            case ZoneState.ReadOnly:
                SetState(zi, ZoneState.Offline);
                return NvmeStatus.Success;
            case ZoneState.Offline:
                return NvmeStatus.Success;
            default:
                return NvmeStatus.InvalidZoneStateTransition;
        }
    }

    private NvmeStatus SetDescriptorExtension(uint zi, ReadOnlySpan<byte> extension)
    {
        if (_zones[zi].State != ZoneState.Empty)
        {
            return NvmeStatus.InvalidZoneStateTransition;
        }
        var status = CheckResources(1, 0);
        if (!status.IsSuccess)
        {
            return status;
        }
        extension.CopyTo(ExtensionOf(zi));
        _zones[zi].Attributes |= ZoneAttributes.DescriptorExtensionValid;
        SetState(zi, ZoneState.Closed);
        return NvmeStatus.Success;
    }

    private Span<byte> ExtensionOf(uint zi) =>
        _extensions.AsSpan((int)(zi * Geometry.DescriptorExtensionSize), Geometry.DescriptorExtensionSize);

    // ---------------------------------------------------------------- Zone Management Send / Receive

    /// <summary>
    /// Zone Management Send. <paramref name="slba"/> must be a zone start unless <paramref name="selectAll"/>.
    /// Select All applies Open to Closed zones, Close to open zones, Finish to open and Closed zones, Reset to open,
    /// Closed and Full zones, Offline to Read Only zones; processing stops at the first failing zone.
    /// <paramref name="extension"/> is the data of Set Zone Descriptor Extension; <paramref name="zsaso"/> is the
    /// Zone Send Action Specific Option (ZRWA allocation for Open).
    /// </summary>
    public NvmeStatus ZoneManagementSend(ulong slba, ZoneSendAction action, bool selectAll, ReadOnlySpan<byte> extension = default, bool zsaso = false)
    {
        if (!IsZoned)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        if (selectAll)
        {
            slba = 0;
        }
        else if (slba >= Geometry.NamespaceSizeLbas)
        {
            return NvmeStatus.LbaOutOfRange.WithDnr();
        }
        uint zi = Geometry.ZoneOf(slba);
        if (slba != Geometry.ZoneStart(zi) && action != ZoneSendAction.FlushZrwa)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }

        NvmeStatus status;
        switch (action)
        {
            case ZoneSendAction.Open:
            {
                Func<uint, NvmeStatus> open = zsaso ? OpenWithZrwa : z => Open(z, implicitly: false);
                // QEMU walks the closed zones in the order they closed (zones auto-closed meanwhile join the walk).
                status = selectAll ? WalkLists(open, ClosedList) : OneZone(zi, open);
                break;
            }
            case ZoneSendAction.Close:
                status = selectAll ? WalkLists(Close, ImplicitList, ExplicitList) : OneZone(zi, Close);
                break;
            case ZoneSendAction.Finish:
                status = selectAll ? WalkLists(Finish, ClosedList, ImplicitList, ExplicitList) : OneZone(zi, Finish);
                break;
            case ZoneSendAction.Reset:
                status = ResetZones(zi, selectAll);
                break;
            case ZoneSendAction.Offline:
                status = selectAll ? ForEachZone(s => s == ZoneState.ReadOnly, Offline) : OneZone(zi, Offline);
                break;
            case ZoneSendAction.SetDescriptorExtension:
                if (selectAll || Geometry.DescriptorExtensionSize == 0 || extension.Length != Geometry.DescriptorExtensionSize)
                {
                    return NvmeStatus.InvalidField.WithDnr();
                }
                lock (_zoneLocks[zi])
                {
                    lock (_stateLock)
                    {
                        status = SetDescriptorExtension(zi, extension);
                    }
                }
                break;
            case ZoneSendAction.FlushZrwa:
                // SLBA is the last LBA to commit; Select All has no meaning here (Invalid Field, as QEMU).
                status = selectAll ? NvmeStatus.InvalidField : OneZone(zi, z => FlushZrwa(z, slba));
                break;
            default:
                status = NvmeStatus.InvalidField;
                break;
        }
        if (status.IsSuccess)
        {
            Interlocked.Increment(ref _changes);
            return status;
        }
        return status.WithDnr();
    }

    private NvmeStatus OneZone(uint zi, Func<uint, NvmeStatus> op)
    {
        lock (_zoneLocks[zi])
        {
            lock (_stateLock)
            {
                return op(zi);
            }
        }
    }

    // Select All over QEMU's state lists, in their order. Every zone lock is taken (index order, as Reset does)
    // so no write is between its checks and its write pointer update while zones change state under it. The next
    // zone is taken before the current one is processed, as QEMU's QTAILQ_FOREACH_SAFE does.
    private NvmeStatus WalkLists(Func<uint, NvmeStatus> op, params int[] lists)
    {
        int taken = 0;
        try
        {
            for (; taken < _zoneLocks.Length; taken++)
            {
                Monitor.Enter(_zoneLocks[taken]);
            }
            lock (_stateLock)
            {
                foreach (int list in lists)
                {
                    for (int zi = _head[list]; zi >= 0;)
                    {
                        int next = _next[zi];
                        var status = op((uint)zi);
                        if (!status.IsSuccess)
                        {
                            return status;
                        }
                        zi = next;
                    }
                }
            }
            return NvmeStatus.Success;
        }
        finally
        {
            while (taken > 0)
            {
                Monitor.Exit(_zoneLocks[--taken]);
            }
        }
    }

    private NvmeStatus ForEachZone(Func<ZoneState, bool> selected, Func<uint, NvmeStatus> op)
    {
        for (uint zi = 0; zi < _zones.Length; zi++)
        {
            lock (_zoneLocks[zi])
            {
                lock (_stateLock)
                {
                    if (!selected(_zones[zi].State))
                    {
                        continue;
                    }
                    var status = op(zi);
                    if (!status.IsSuccess)
                    {
                        return status;
                    }
                }
            }
        }
        return NvmeStatus.Success;
    }

    // A reset is committed before its blocks are released, so a crash can never show an old write pointer over
    // released (zeroed) data. The zone locks stay held until the blocks are released, so no new write can land in
    // between and be zeroed.
    private NvmeStatus ResetZones(uint first, bool all)
    {
        uint from = all ? 0 : first;
        uint to = all ? (uint)_zones.Length : first + 1;
        Span<ulong> releasedEnd = all ? new ulong[_zones.Length] : stackalloc ulong[1];
        int taken = 0;
        try
        {
            for (uint zi = from; zi < to; zi++)
            {
                Monitor.Enter(_zoneLocks[zi]);
                taken++;
            }
            bool any = false;
            lock (_stateLock)
            {
                for (uint zi = from; zi < to; zi++)
                {
                    ZoneState s = _zones[zi].State;
                    if (all && s is not (ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed or ZoneState.Full))
                    {
                        continue;
                    }
                    var status = Reset(zi, out releasedEnd[(int)(zi - from)]);
                    if (!status.IsSuccess)
                    {
                        return status;
                    }
                    any |= s != ZoneState.Empty;
                }
            }
            if (!any)
            {
                return NvmeStatus.Success;
            }
            Interlocked.Increment(ref _changes);
            try
            {
                Commit(force: false);
                for (uint zi = from; zi < to; zi++)
                {
                    ulong start = Geometry.ZoneStart(zi);
                    ulong end = releasedEnd[(int)(zi - from)];
                    if (end > start)
                    {
                        _backstore.Discard(Geometry.ByteOffset(start), Geometry.ByteOffset(end) - Geometry.ByteOffset(start));
                    }
                }
            }
            catch (IOException)
            {
                return NvmeStatus.InternalError;
            }
            return NvmeStatus.Success;
        }
        finally
        {
            for (uint zi = from; taken > 0; zi++, taken--)
            {
                Monitor.Exit(_zoneLocks[zi]);
            }
        }
    }

    /// <summary>Size of one report entry in bytes for a receive action.</summary>
    public int ReportEntrySize(ZoneReceiveAction action) =>
        ZoneDescriptorSize + (action == ZoneReceiveAction.ExtendedReport ? Geometry.DescriptorExtensionSize : 0);

    /// <summary>
    /// Zone Management Receive: fills the whole <paramref name="buffer"/> with a report header (Number of Zones)
    /// and zone descriptors starting at the zone holding <paramref name="slba"/>, filtered by
    /// <paramref name="zrasf"/>. With <paramref name="partial"/> the count is the number of descriptors that fit,
    /// otherwise every matching zone to the end of the namespace.
    /// </summary>
    public NvmeStatus ZoneManagementReceive(ulong slba, byte zra, byte zrasf, bool partial, Span<byte> buffer)
    {
        if (!IsZoned)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        NvmeStatus status =
            slba >= Geometry.NamespaceSizeLbas ? NvmeStatus.LbaOutOfRange :
            zra > (byte)ZoneReceiveAction.ExtendedReport ? NvmeStatus.InvalidField :
            zra == (byte)ZoneReceiveAction.ExtendedReport && Geometry.DescriptorExtensionSize == 0 ? NvmeStatus.InvalidField :
            zrasf > (byte)ZoneReportFilter.Offline ? NvmeStatus.InvalidField :
            buffer.Length < 64 ? NvmeStatus.InvalidField :
            CheckMdts(buffer.Length);
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }

        var filter = (ZoneReportFilter)zrasf;
        int entrySize = ReportEntrySize((ZoneReceiveAction)zra);
        ulong maxZones = (ulong)(buffer.Length - 64) / (ulong)entrySize;
        uint first = Geometry.ZoneOf(slba);
        buffer.Clear();
        lock (_stateLock)
        {
            ulong count = 0;
            for (uint zi = first; zi < _zones.Length; zi++)
            {
                if (partial && count >= maxZones)
                {
                    break;
                }
                if (Matches(filter, _zones[zi].State))
                {
                    count++;
                }
            }
            BinaryPrimitives.WriteUInt64LittleEndian(buffer, count);
            var p = buffer[64..];
            ulong placed = 0;
            for (uint zi = first; zi < _zones.Length && placed < maxZones; zi++)
            {
                ref var z = ref _zones[zi];
                if (!Matches(filter, z.State))
                {
                    continue;
                }
                WriteDescriptor(p, zi, z);
                if (zra == (byte)ZoneReceiveAction.ExtendedReport)
                {
                    ExtensionOf(zi).CopyTo(p[64..]);
                }
                p = p[entrySize..];
                placed++;
            }
        }
        return NvmeStatus.Success;
    }

    private static bool Matches(ZoneReportFilter filter, ZoneState state) => filter switch
    {
        ZoneReportFilter.All => true,
        ZoneReportFilter.Empty => state == ZoneState.Empty,
        ZoneReportFilter.ImplicitlyOpened => state == ZoneState.ImplicitlyOpened,
        ZoneReportFilter.ExplicitlyOpened => state == ZoneState.ExplicitlyOpened,
        ZoneReportFilter.Closed => state == ZoneState.Closed,
        ZoneReportFilter.Full => state == ZoneState.Full,
        ZoneReportFilter.ReadOnly => state == ZoneState.ReadOnly,
        ZoneReportFilter.Offline => state == ZoneState.Offline,
        _ => false,
    };

    /// <summary>Size of a Zone Descriptor.</summary>
    public const int ZoneDescriptorSize = 64;

    // Zone Descriptor: ZT (bits 3:0) at 0, ZS (bits 7:4) at 1, ZA at 2, ZCAP at 8, ZSLBA at 16, WP at 24.
    private void WriteDescriptor(Span<byte> d, uint zi, in ZoneRecord z)
    {
        const byte SequentialWriteRequired = 0x2;
        d[0] = SequentialWriteRequired;
        d[1] = (byte)((byte)z.State << 4);
        d[2] = (byte)z.Attributes;
        BinaryPrimitives.WriteUInt64LittleEndian(d[8..], Geometry.ZoneCapacityLbas);
        BinaryPrimitives.WriteUInt64LittleEndian(d[16..], Geometry.ZoneStart(zi));
        bool wpValid = z.State is not (ZoneState.Full or ZoneState.ReadOnly or ZoneState.Offline);
        BinaryPrimitives.WriteUInt64LittleEndian(d[24..], wpValid ? z.WritePointer : ulong.MaxValue);
    }

    // ---------------------------------------------------------------- persistence

    /// <summary>
    /// Writes the zone state as a new commit after making the data durable. The state is captured first, so every
    /// write pointer in the commit covers only data that the data flush that follows makes durable.
    /// </summary>
    private void Commit(bool force)
    {
        lock (_commitLock)
        {
            long changes = Interlocked.Read(ref _changes);
            if (!force && changes == _committedChanges)
            {
                return;
            }
            if (_stateFile is null)
            {
                _backstore.Flush();
                _committedChanges = changes;
                return;
            }
            lock (_stateLock)
            {
                _stateFile.Encode(Geometry, _backstore.Length, Uuid, _zones, _extensions);
            }
            _backstore.Flush();
            _stateFile.Commit(ZoneStateFile.UsedBytes(Geometry));
            _committedChanges = changes;
        }
    }

    /// <summary>
    /// Clean shutdown: open zones become Closed (Empty if nothing was written), as QEMU does at controller
    /// shutdown, and the state is committed. Idempotent.
    /// </summary>
    public void Shutdown()
    {
        lock (_stateLock)
        {
            // QEMU's nvme_zoned_ns_shutdown: closed, implicitly and explicitly opened zones in list order; each
            // becomes Closed (put at the head of the closed list, keeping its ZRWA) or, without data or extension,
            // Empty.
            var order = new List<uint>();
            foreach (int list in (ReadOnlySpan<int>)[ClosedList, ImplicitList, ExplicitList])
            {
                for (int zi = _head[list]; zi >= 0; zi = _next[zi])
                {
                    order.Add((uint)zi);
                }
            }
            foreach (uint zi in order)
            {
                ZoneState target = PowerCycleState(zi);
                if (target == ZoneState.Empty)
                {
                    ReleaseZrwa(zi);
                }
                SetState(zi, target);
                if (target == ZoneState.Closed)
                {
                    Unlink(ClosedList, zi);
                    Link(ClosedList, zi, atHead: true);
                }
            }
        }
        Interlocked.Increment(ref _changes);
        Commit(force: true);
    }

    /// <summary>Shuts down cleanly and releases the files.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        try
        {
            Shutdown();
        }
        finally
        {
            _stateFile?.Dispose();
            _backstore.Dispose();
        }
    }
}

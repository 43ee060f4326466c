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

    // Implicitly opened zones in the order they were opened, oldest first: the auto-close victim is the head,
    // as in QEMU. An intrusive list so opening a zone allocates nothing.
    private readonly int[] _impNext;
    private readonly int[] _impPrev;
    private int _impHead = -1;
    private int _impTail = -1;

    private uint _openCount;
    private uint _activeCount;
    private long _changes;
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
        _impNext = new int[geometry.ZoneCount];
        _impPrev = new int[geometry.ZoneCount];
        for (uint i = 0; i < geometry.ZoneCount; i++)
        {
            _zoneLocks[i] = new object();
            _zones[i] = new ZoneRecord { WritePointer = geometry.ZoneStart(i), State = ZoneState.Empty };
            _impNext[i] = _impPrev[i] = -1;
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
                CheckSameGeometry(loaded, options, backstore.Length);
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

    private static void CheckSameGeometry(ZoneStateFile.Loaded loaded, NamespaceOptions options, long length)
    {
        var s = loaded.Options;
        long cap = options.ZoneCapacity == 0 ? options.ZoneSize : options.ZoneCapacity;
        long storedCap = s.ZoneCapacity == 0 ? s.ZoneSize : s.ZoneCapacity;
        string? differs =
            s.LogicalBlockSize != options.LogicalBlockSize ? "logical_block_size" :
            s.Zoned != options.Zoned ? "zoned" :
            options.Zoned && s.ZoneSize != options.ZoneSize ? "zoned.zone_size" :
            options.Zoned && storedCap != cap ? "zoned.zone_capacity" :
            options.Zoned && s.MaxOpen != options.MaxOpen ? "zoned.max_open" :
            options.Zoned && s.MaxActive != options.MaxActive ? "zoned.max_active" :
            options.Zoned && s.DescriptorExtensionSize != options.DescriptorExtensionSize ? "zoned.descr_ext_size" :
            loaded.BackstoreLength != length ? "size" : null;
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
                _zones[i] = new ZoneRecord { WritePointer = r.WritePointer, State = ZoneState.Empty, Attributes = r.Attributes };
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
        if (!IsZoned)
        {
            return TryRead(Geometry.ByteOffset(slba), destination) ? NvmeStatus.Success : NvmeStatus.UnrecoveredReadError;
        }
        // Per zone: data below the write pointer comes from the backstore, the rest is zeros.
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
                dataEnd = _zones[zi].WritePointer;
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
        if (status.IsSuccess && zslba % Geometry.ZoneSizeLbas != 0) { status = NvmeStatus.InvalidField; }
        if (status.IsSuccess && data.Length > Geometry.ZoneAppendLimitBytes) { status = NvmeStatus.InvalidField; }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return WriteAt(zslba, nlb, data, zeroes: false, fua, append: true, out assignedLba);
    }

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
            return NvmeStatus.InternalError;
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
                AdvanceWritePointer(zi, nlb);
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
        if (slba != z.WritePointer)
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
        if (from == ZoneState.ImplicitlyOpened) { UnlinkImplicit(zi); }
        z.State = to;
        if (IsOpen(to)) { _openCount++; }
        if (IsActive(to)) { _activeCount++; }
        if (to == ZoneState.ImplicitlyOpened) { LinkImplicit(zi); }
        Debug.Assert(_openCount <= _activeCount, "open zones are a subset of active zones");
        Debug.Assert(Geometry.MaxOpen == 0 || _openCount <= Geometry.MaxOpen, "open limit");
        Debug.Assert(Geometry.MaxActive == 0 || _activeCount <= Geometry.MaxActive, "active limit");
    }

    private static bool IsOpen(ZoneState s) => s is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened;
    private static bool IsActive(ZoneState s) => s is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed;

    private void LinkImplicit(uint zi)
    {
        _impPrev[zi] = _impTail;
        _impNext[zi] = -1;
        if (_impTail >= 0) { _impNext[_impTail] = (int)zi; } else { _impHead = (int)zi; }
        _impTail = (int)zi;
    }

    private void UnlinkImplicit(uint zi)
    {
        int p = _impPrev[zi], n = _impNext[zi];
        if (p >= 0) { _impNext[p] = n; } else { _impHead = n; }
        if (n >= 0) { _impPrev[n] = p; } else { _impTail = p; }
        _impPrev[zi] = _impNext[zi] = -1;
    }

    private NvmeStatus CheckResources(uint addActive, uint addOpen)
    {
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
        if (Geometry.AutoTransition && Geometry.MaxOpen != 0 && _openCount == Geometry.MaxOpen && _impHead >= 0)
        {
            SetState((uint)_impHead, ZoneState.Closed);
        }
    }

    /// <summary>Open for a write (implicit) or for Open Zone (explicit). Caller holds the state lock.</summary>
    private NvmeStatus Open(uint zi, bool implicitly)
    {
        ZoneState state = _zones[zi].State;
        switch (state)
        {
            case ZoneState.Empty:
            case ZoneState.Closed:
            {
                AutoClose();
                var status = CheckResources(state == ZoneState.Empty ? 1u : 0u, 1);
                if (!status.IsSuccess)
                {
                    return status;
                }
                SetState(zi, implicitly ? ZoneState.ImplicitlyOpened : ZoneState.ExplicitlyOpened);
                return NvmeStatus.Success;
            }
            case ZoneState.ImplicitlyOpened:
                if (!implicitly)
                {
                    SetState(zi, ZoneState.ExplicitlyOpened);
                }
                return NvmeStatus.Success;
            case ZoneState.ExplicitlyOpened:
                return NvmeStatus.Success;
            default:
                return NvmeStatus.InvalidZoneStateTransition;
        }
    }

    private void AdvanceWritePointer(uint zi, uint nlb)
    {
        ref var z = ref _zones[zi];
        z.WritePointer += nlb;
        if (z.WritePointer == Geometry.ZoneStart(zi) + Geometry.ZoneCapacityLbas)
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
                // The write pointer stays where the data ends, so reads past it keep returning zeros.
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
                releasedEnd = z.WritePointer;
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
                if (zsaso)
                {
                    // No Zone Random Write Area support (OZCS.ZRWASUP = 0).
                    return NvmeStatus.InvalidZoneOperation.WithDnr();
                }
                status = selectAll ? ForEachZone(s => s == ZoneState.Closed, z => Open(z, implicitly: false)) : OneZone(zi, z => Open(z, implicitly: false));
                break;
            case ZoneSendAction.Close:
                status = selectAll ? ForEachZone(IsOpen, Close) : OneZone(zi, Close);
                break;
            case ZoneSendAction.Finish:
                status = selectAll ? ForEachZone(IsActive, Finish) : OneZone(zi, Finish);
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
                // No ZRWA: QEMU answers Invalid Field for Select All, Invalid Zone Operation otherwise.
                status = selectAll ? NvmeStatus.InvalidField : NvmeStatus.InvalidZoneOperation;
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
                        _backstore.Zero(Geometry.ByteOffset(start), Geometry.ByteOffset(end) - Geometry.ByteOffset(start));
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
            for (uint zi = 0; zi < _zones.Length; zi++)
            {
                if (IsOpen(_zones[zi].State))
                {
                    SetState(zi, PowerCycleState(zi));
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

using System.Buffers.Binary;
using Zns.Nvme;
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
/// errors never throw. This class holds the command entry points and the locking; the zone rules are in
/// <see cref="ZoneStateMachine"/>, the files in <see cref="NamespaceStore"/>.
/// </summary>
/// <remarks>
/// <para>Concurrency: writes, appends and zone management on one zone are serialized by that zone's lock (so appends
/// to one zone get distinct, dense LBAs and writes complete in order), writes to different zones run in parallel, and
/// every zone state change happens under one short state lock, never held across I/O. A write that changes nothing
/// but its zone's write pointer (see <see cref="ZoneStateMachine.WriteKeepsState"/>) takes only its zone lock. The
/// write pointer advances only after the data is in the backstore, so a reader or a commit never sees a write
/// pointer ahead of data.</para>
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
    private readonly NamespaceStore _store;
    private readonly IBackstore _backstore;
    private readonly ZoneStateMachine _zones;
    private readonly object[] _zoneLocks;
    private readonly Lock _stateLock = new();
    private readonly Lock _commitLock = new();

    private long _changes;
    private long _writesAheadOfWritePointer;
    private long _committedChanges;
    private bool _disposed;

    private ZonedNamespace(NamespaceOptions options, NamespaceStore store, Guid uuid)
    {
        Options = options;
        Geometry = store.Geometry;
        _store = store;
        _backstore = store.Backstore;
        Uuid = uuid;
        _zones = new ZoneStateMachine(Geometry);
        _zoneLocks = new object[Geometry.ZoneCount];
        for (uint i = 0; i < Geometry.ZoneCount; i++)
        {
            _zoneLocks[i] = new object();
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
    public string? StatePath => _store.StatePath;

    /// <summary>Currently open zones (implicitly + explicitly).</summary>
    public uint OpenZoneCount { get { lock (_stateLock) { return _zones.OpenCount; } } }

    /// <summary>Currently active zones (open + closed).</summary>
    public uint ActiveZoneCount { get { lock (_stateLock) { return _zones.ActiveCount; } } }

    /// <summary>Creates a namespace on a RAM backstore of <paramref name="sizeBytes"/> bytes.</summary>
    public static ZonedNamespace CreateInMemory(long sizeBytes, NamespaceOptions options, Guid? uuid = null) =>
        new(options, NamespaceStore.InMemory(options, sizeBytes), uuid ?? Guid.NewGuid());

    /// <summary>
    /// The options stored in a backstore's state file, or null if it has none. Callers start from these so a user
    /// does not have to repeat the geometry on every run.
    /// </summary>
    public static NamespaceOptions? ReadStoredOptions(string backstorePath) => NamespaceStore.ReadStoredOptions(backstorePath);

    /// <summary>
    /// The options a backstore's state file keeps, each as <see cref="KeptOption.All"/> names it, or null if it has
    /// no state file.
    /// </summary>
    public static KeptNamespaceOptions? ReadKeptOptions(string backstorePath) => NamespaceStore.ReadKeptOptions(backstorePath);

    /// <summary>
    /// Opens a raw backstore file (QEMU layout) with its zone state file <c>FILE.zns</c>. Throws
    /// <see cref="OptionException"/> for invalid options or one that differs from the value the state file keeps where
    /// <see cref="KeptOption.Rule"/> refuses that (unless <see cref="StateMode.Reformat"/>), <see cref="IOException"/>
    /// for file errors. A null <see cref="NamespaceOptions.Uuid"/> stands for the kept UUID.
    /// </summary>
    public static ZonedNamespace OpenFile(string path, NamespaceOptions options, StateMode mode = StateMode.Persistent)
    {
        var store = NamespaceStore.OpenFile(path, options, mode, out var loaded);
        try
        {
            var ns = new ZonedNamespace(options, store, store.Kept?.Uuid ?? options.Uuid ?? Guid.NewGuid());
            if (mode == StateMode.Ephemeral)
            {
                return ns;
            }
            if (loaded is not null)
            {
                lock (ns._stateLock)
                {
                    ns._zones.Restore(loaded.Zones, loaded.Extensions);
                }
                ns._writeProtected = loaded.WriteProtected;
            }
            ns.Commit(force: true);
            return ns;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The zones of a backstore file as its state file last committed them, without opening the namespace (so a
    /// running server is not disturbed). Null when the file has no state file (every zone would start Empty).
    /// </summary>
    public static (ZoneGeometry Geometry, ZoneInfo[] Zones)? ReadStoredZones(string backstorePath) =>
        NamespaceStore.ReadStoredZones(backstorePath);

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
            _store.Dispose();
        }
    }

    /// <summary>A snapshot of zone <paramref name="index"/>.</summary>
    public ZoneInfo GetZone(uint index)
    {
        lock (_stateLock)
        {
            return _zones.Snapshot(index);
        }
    }

    /// <summary>The descriptor extension of a zone (empty when the namespace has none).</summary>
    public byte[] GetDescriptorExtension(uint index)
    {
        lock (_stateLock)
        {
            return _zones.ExtensionOf(index).ToArray();
        }
    }

    /// <summary>How many zones are in each state.</summary>
    public ZoneStateCounts CountZones()
    {
        lock (_stateLock)
        {
            return _zones.CountZones();
        }
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

    /// <summary>
    /// Copy descriptor formats the controller reports (OCFS): 0h and 1h, and 2h and 3h (source NSID per range) once
    /// the host enables them through Host Behavior Support (CDFE), as QEMU does. 1h and 3h carry 64-bit PI fields,
    /// so without protection information they answer Invalid Format.
    /// </summary>
    public const ushort CopyFormatsSupported = 0xF;

    /// <summary>
    /// Copy (Simple Copy): copies <paramref name="rangeCount"/> source ranges of descriptor format
    /// <paramref name="format"/> (read from <paramref name="ranges"/>) to consecutive LBAs from
    /// <paramref name="sdlba"/>, with QEMU's checks in QEMU's order. Each range is checked and written on its own:
    /// a failing range leaves the ones before it written (the write pointer advanced over them) and its index in
    /// <paramref name="failedRange"/> (CQE DW0).
    /// </summary>
    public NvmeStatus Copy(ulong sdlba, byte format, int rangeCount, ReadOnlySpan<byte> ranges, out uint failedRange) =>
        Copy(sdlba, format, rangeCount, ranges, CopyContext.SameNamespace, out failedRange);

    /// <summary>Copy through a controller: <paramref name="context"/> says which formats are enabled and where a format 2h entry's namespace comes from.</summary>
    public NvmeStatus Copy(ulong sdlba, byte format, int rangeCount, ReadOnlySpan<byte> ranges, in CopyContext context, out uint failedRange)
    {
        failedRange = 0;
        // Without protection information only formats 0 and 2 describe ranges; 1 and 3 are for 64-bit guard PI.
        NvmeStatus status =
            format > 3 || (CopyFormatsSupported & context.EnabledFormats & (1 << format)) == 0 ? NvmeStatus.InvalidField :
            rangeCount > Geometry.Msrc + 1 ? NvmeStatus.CommandSizeLimitExceeded :
            format is not (0 or 2) ? NvmeStatus.InvalidFormat :
            ranges.Length < rangeCount * CopyRangeFormat0Size ? NvmeStatus.DataSglLengthInvalid :
            NvmeStatus.Success;
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        if (!IsZoned)
        {
            status = CheckCopyLength(rangeCount, ranges, out ulong total);
            return status.IsSuccess ? CopyRanges(uint.MaxValue, sdlba, format, rangeCount, ranges, context, total, out failedRange) : status.WithDnr();
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
            status = CheckCopyLength(rangeCount, ranges, out ulong total);
            return status.IsSuccess ? CopyRanges(dz, sdlba, format, rangeCount, ranges, context, total, out failedRange) : status.WithDnr();
        }
    }

    private NvmeStatus CheckCopyLength(int rangeCount, ReadOnlySpan<byte> ranges, out ulong total)
    {
        total = 0;
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
    private NvmeStatus CopyRanges(uint dz, ulong dlba, byte format, int rangeCount, ReadOnlySpan<byte> ranges, in CopyContext context,
        ulong totalBlocks, out uint failedRange)
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
                NvmeStatus status = CopySource(context, format, ranges, i, slba, nlb, dlba, totalBlocks, out ZonedNamespace source);
                if (!status.IsSuccess)
                {
                    return status;
                }
                status =
                    nlb > source.Geometry.Mssrl ? NvmeStatus.CommandSizeLimitExceeded.WithDnr() :
                    source.CheckBounds(slba, nlb) is { IsSuccess: false } b ? b.WithDnr() :
                    source.IsZoned ? source.CheckZoneRead(slba, nlb) : NvmeStatus.Success;
                // Zone rule statuses of Copy carry no DNR in QEMU (nvme_check_zone_read/_write return them bare).
                if (!status.IsSuccess)
                {
                    return status;
                }
                Span<byte> data = CopyBuffer(ref buffer, (int)nlb << shift);
                status = source.ReadData(slba, data);
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
                if ((IsZoned && !ZeroZrwaGap(dz, dlba)) || !TryWrite(Geometry.ByteOffset(dlba), data))
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
            if (append)
            {
                // Only commands holding this zone's lock move its write pointer.
                slba = _zones.WritePointerOf(zi);
                assignedLba = slba;
            }
            // A write that changes nothing but its write pointer takes no state lock (WriteKeepsState says why).
            bool keepsState = _zones.WriteKeepsState(zi, slba, nlb);
            NvmeStatus status;
            if (keepsState)
            {
                status = CheckZoneWrite(zi, slba, nlb);
            }
            else
            {
                lock (_stateLock)
                {
                    status = CheckZoneWrite(zi, slba, nlb);
                    if (status.IsSuccess)
                    {
                        status = Open(zi, implicitly: true);
                    }
                }
            }
            if (!status.IsSuccess)
            {
                if (status == NvmeStatus.ZoneInvalidWrite && slba > _zones.WritePointerOf(zi))
                {
                    Interlocked.Increment(ref _writesAheadOfWritePointer);
                }
                return status.WithDnr();
            }

            status = ZeroZrwaGap(zi, slba) ? WriteData(slba, nlb, data, zeroes) : NvmeStatus.WriteFault;
            if (!status.IsSuccess)
            {
                // The write pointer stays where it was: the data is not known to be there.
                return status;
            }
            if (keepsState)
            {
                CompleteZonedWrite(zi, slba, nlb);
            }
            else
            {
                lock (_stateLock)
                {
                    CompleteZonedWrite(zi, slba, nlb);
                }
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

    // The zone rules a command checks or applies; the caller holds the state lock unless it says otherwise.
    private NvmeStatus CheckZoneWrite(uint zi, ulong slba, uint nlb) => _zones.CheckWrite(zi, slba, nlb);

    private NvmeStatus Open(uint zi, bool implicitly) => _zones.Open(zi, implicitly);

    private void CompleteZonedWrite(uint zi, ulong slba, uint nlb) => _zones.CompleteWrite(zi, slba, nlb);

    private ulong DataEnd(uint zi) => _zones.DataEnd(zi);

    // Takes the state lock.
    private NvmeStatus CheckZoneRead(ulong slba, uint nlb)
    {
        lock (_stateLock)
        {
            return _zones.CheckRead(slba, nlb);
        }
    }

    // Takes the state lock.
    private bool HasZrwa(uint zi)
    {
        if (!Geometry.ZrwaSupported)
        {
            return false;
        }
        lock (_stateLock)
        {
            return _zones.HasZrwa(zi);
        }
    }

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
                Func<uint, NvmeStatus> open = zsaso ? _zones.OpenWithZrwa : z => _zones.Open(z, implicitly: false);
                // QEMU walks the closed zones in the order they closed (zones auto-closed meanwhile join the walk).
                status = selectAll ? WalkLists(open, ZoneStateMachine.ClosedList) : OneZone(zi, open);
                break;
            }
            case ZoneSendAction.Close:
                status = selectAll ? WalkLists(_zones.Close, ZoneStateMachine.ImplicitList, ZoneStateMachine.ExplicitList) : OneZone(zi, _zones.Close);
                break;
            case ZoneSendAction.Finish:
                status = selectAll ? WalkLists(_zones.Finish, ZoneStateMachine.ClosedList, ZoneStateMachine.ImplicitList, ZoneStateMachine.ExplicitList) : OneZone(zi, _zones.Finish);
                break;
            case ZoneSendAction.Reset:
                status = ResetZones(zi, selectAll);
                break;
            case ZoneSendAction.Offline:
                status = selectAll ? ForEachZone(s => s == ZoneState.ReadOnly, _zones.Offline) : OneZone(zi, _zones.Offline);
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
                        status = _zones.SetDescriptorExtension(zi, extension);
                    }
                }
                break;
            case ZoneSendAction.FlushZrwa:
                // SLBA is the last LBA to commit; Select All has no meaning here (Invalid Field, as QEMU).
                status = selectAll ? NvmeStatus.InvalidField : OneZone(zi, z => _zones.FlushZrwa(z, slba));
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
    // so no write is between its checks and its write pointer update while zones change state under it.
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
                return _zones.WalkLists(op, lists);
            }
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
        for (uint zi = 0; zi < _zones.ZoneCount; zi++)
        {
            lock (_zoneLocks[zi])
            {
                lock (_stateLock)
                {
                    if (!selected(_zones.StateOf(zi)))
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
        uint to = all ? _zones.ZoneCount : first + 1;
        Span<ulong> releasedEnd = all ? new ulong[_zones.ZoneCount] : stackalloc ulong[1];
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
                    ZoneState s = _zones.StateOf(zi);
                    if (all && s is not (ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed or ZoneState.Full))
                    {
                        continue;
                    }
                    var status = _zones.Reset(zi, out releasedEnd[(int)(zi - from)]);
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

    /// <summary>
    /// Zone report: visits, under one state lock and in zone order, the zones from the one holding
    /// <paramref name="slba"/> to the end of the namespace whose state <paramref name="filter"/> selects, until the
    /// visitor returns false. The caller has checked that <paramref name="slba"/> is in the namespace (the command's
    /// checks and its wire encoding are the controller's: Zone Management Receive in Zns.Target).
    /// </summary>
    public void ReportZones<TVisitor>(ulong slba, ZoneReportFilter filter, ref TVisitor visitor)
        where TVisitor : IZoneReportVisitor, allows ref struct
    {
        lock (_stateLock)
        {
            for (uint zi = Geometry.ZoneOf(slba); zi < _zones.ZoneCount; zi++)
            {
                if (Matches(filter, _zones.StateOf(zi)) && !visitor.Visit(_zones.Snapshot(zi), _zones.ExtensionOf(zi)))
                {
                    return;
                }
            }
        }
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
            if (_store.Persistent)
            {
                lock (_stateLock)
                {
                    _store.Capture(_zones, WriteProtected);
                }
            }
            _store.Commit();
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
            _zones.Shutdown();
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
            _store.Dispose();
        }
    }
}

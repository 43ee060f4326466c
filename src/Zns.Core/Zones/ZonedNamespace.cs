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
        if (Geometry.Zoned)
        {
            _durability = new ZoneDurability(Geometry);
        }
        else
        {
            // Room for the default undo area, and at least for one write of the largest transfer.
            int blocks = Math.Max(ConventionalUndoLog.DefaultBytes, Geometry.MaxTransferBytes) >> Geometry.BlockShift;
            _undo = new ConventionalUndoLog(Geometry.BlockSize, (int)Math.Min((ulong)blocks, Geometry.NamespaceSizeLbas));
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
                ns.MarkRestoredDurable();
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
            _cutLock.Dispose();
        }
    }
}

using Zns.Core.Zones;

namespace Zns.Core.Storage;

/// <summary>
/// Where a namespace keeps its data and zone state: the backstore and, when persistent, the zone state file beside
/// it. Opens and checks them, and commits zone state after the data it covers is durable.
/// </summary>
/// <remarks>No locks: <see cref="ZonedNamespace"/> serializes commits and captures the zone state under its state lock.</remarks>
internal sealed class NamespaceStore : IDisposable
{
    private readonly ZoneStateFile? _stateFile;

    private NamespaceStore(IBackstore backstore, ZoneStateFile? stateFile, ZoneGeometry geometry, KeptNamespaceOptions? kept = null)
    {
        Backstore = backstore;
        _stateFile = stateFile;
        Geometry = geometry;
        Kept = kept;
    }

    /// <summary>The data.</summary>
    public IBackstore Backstore { get; }

    /// <summary>The geometry the store was opened with.</summary>
    public ZoneGeometry Geometry { get; }

    /// <summary>The state file path, or null when nothing is persisted.</summary>
    public string? StatePath => _stateFile?.Path;

    /// <summary>What every commit writes as the namespace's options, or null when nothing is persisted.</summary>
    public KeptNamespaceOptions? Kept { get; }

    /// <summary>A RAM backstore of <paramref name="sizeBytes"/> bytes; nothing persisted.</summary>
    public static NamespaceStore InMemory(NamespaceOptions options, long sizeBytes)
    {
        var geometry = ZoneGeometry.Create(options, sizeBytes);
        return new NamespaceStore(new MemoryBackstore(geometry.UsedBytes), null, geometry);
    }

    /// <summary>
    /// Opens a raw backstore file with its zone state file <c>FILE.zns</c>; <paramref name="loaded"/> is the stored
    /// state to restore, if any. Throws <see cref="OptionException"/> for invalid options or one whose value differs
    /// from the kept one where <see cref="KeptOption.Rule"/> refuses that (unless <see cref="StateMode.Reformat"/>,
    /// which zeroes the data), <see cref="IOException"/> for file errors.
    /// </summary>
    public static NamespaceStore OpenFile(string path, NamespaceOptions options, StateMode mode, out ZoneStateFile.Loaded? loaded)
    {
        loaded = null;
        var backstore = FileBackstore.Open(path);
        try
        {
            var geometry = ZoneGeometry.Create(options, backstore.Length);
            if (mode == StateMode.Ephemeral)
            {
                return new NamespaceStore(backstore, null, geometry);
            }
            string statePath = ZoneStateFile.PathFor(path);
            loaded = mode == StateMode.Persistent ? ZoneStateFile.TryLoad(statePath) : null;
            // No uuid option means the kept UUID, or a new one for a new namespace.
            var given = KeptNamespaceOptions.From(options, geometry, options.Uuid ?? loaded?.Kept.Uuid ?? Guid.NewGuid());
            KeptNamespaceOptions kept = given;
            if (loaded is not null)
            {
                CheckKept(loaded, given, geometry, backstore.Length);
                kept = KeptOption.AfterOpen(loaded.Kept, given);
            }
            var stateFile = ZoneStateFile.OpenForCommits(statePath, geometry, loaded?.Sequence ?? 0);
            if (loaded is null && mode == StateMode.Reformat)
            {
                backstore.Zero(0, backstore.Length);
            }
            return new NamespaceStore(backstore, stateFile, geometry, kept);
        }
        catch
        {
            backstore.Dispose();
            throw;
        }
    }

    private static void CheckKept(ZoneStateFile.Loaded loaded, KeptNamespaceOptions given, ZoneGeometry want, long backstoreLength)
    {
        if (KeptOption.FindRefused(loaded.Kept, given) is var (option, kept, value))
        {
            throw new OptionException(option.Name,
                $"the zone state file keeps {option.Name}={kept}, {option.Name}={value} given: leave the option out to use the kept value, " +
                "or reformat (which discards the data)");
        }
        // Same options, different file: a backstore that grew or shrank by whole zones since.
        var have = ZoneGeometry.Create(loaded.Kept.ToOptions(), loaded.BackstoreLength);
        if (have.NamespaceSizeLbas != want.NamespaceSizeLbas || have.ZoneCount != want.ZoneCount)
        {
            throw new OptionException("size",
                $"the zone state file was written for a backstore of {loaded.BackstoreLength} bytes ({have.ZoneCount} zones), " +
                $"this one has {backstoreLength} bytes ({want.ZoneCount} zones): restore the file's size, or reformat (which discards the data)");
        }
    }

    /// <summary>The options stored in a backstore's state file, or null if it has none.</summary>
    public static NamespaceOptions? ReadStoredOptions(string backstorePath) =>
        ZoneStateFile.TryLoad(ZoneStateFile.PathFor(backstorePath))?.Kept.ToOptions();

    /// <summary>The options kept in a backstore's state file, or null if it has none.</summary>
    public static KeptNamespaceOptions? ReadKeptOptions(string backstorePath) =>
        ZoneStateFile.TryLoad(ZoneStateFile.PathFor(backstorePath))?.Kept;

    /// <summary>
    /// The zones of a backstore file as its state file last committed them, without opening the backstore. Null
    /// when the file has no state file.
    /// </summary>
    public static (ZoneGeometry Geometry, ZoneInfo[] Zones)? ReadStoredZones(string backstorePath)
    {
        var loaded = ZoneStateFile.TryLoad(ZoneStateFile.PathFor(backstorePath));
        if (loaded is null)
        {
            return null;
        }
        var g = ZoneGeometry.Create(loaded.Kept.ToOptions(), loaded.BackstoreLength);
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

    /// <summary>Whether commits write a state file (otherwise a commit only flushes the data).</summary>
    public bool Persistent => _stateFile is not null;

    /// <summary>
    /// Captures the zone state for the next <see cref="Commit"/>. The caller holds the lock that keeps
    /// <paramref name="zones"/> still.
    /// </summary>
    public void Capture(ZoneStateMachine zones, bool writeProtected) =>
        _stateFile?.Encode(Kept!, Backstore.Length, zones.Records, zones.Extensions, writeProtected);

    /// <summary>
    /// Makes the data durable, then writes the captured zone state as the next commit. The state was captured
    /// first, so every write pointer in the commit covers only data this flush makes durable.
    /// </summary>
    public void Commit()
    {
        Backstore.Flush();
        _stateFile?.Commit(ZoneStateFile.UsedBytes(Geometry));
    }

    /// <summary>Releases the files.</summary>
    public void Dispose()
    {
        try
        {
            _stateFile?.Dispose();
        }
        finally
        {
            Backstore.Dispose();
        }
    }
}

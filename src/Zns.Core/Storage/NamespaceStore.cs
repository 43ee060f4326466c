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

    private NamespaceStore(IBackstore backstore, ZoneStateFile? stateFile, ZoneGeometry geometry)
    {
        Backstore = backstore;
        _stateFile = stateFile;
        Geometry = geometry;
    }

    /// <summary>The data.</summary>
    public IBackstore Backstore { get; }

    /// <summary>The geometry the store was opened with.</summary>
    public ZoneGeometry Geometry { get; }

    /// <summary>The state file path, or null when nothing is persisted.</summary>
    public string? StatePath => _stateFile?.Path;

    /// <summary>A RAM backstore of <paramref name="sizeBytes"/> bytes; nothing persisted.</summary>
    public static NamespaceStore InMemory(NamespaceOptions options, long sizeBytes)
    {
        var geometry = ZoneGeometry.Create(options, sizeBytes);
        return new NamespaceStore(new MemoryBackstore(geometry.UsedBytes), null, geometry);
    }

    /// <summary>
    /// Opens a raw backstore file with its zone state file <c>FILE.zns</c>; <paramref name="loaded"/> is the stored
    /// state to restore, if any. Throws <see cref="OptionException"/> for invalid options or a geometry that differs
    /// from the stored one (unless <see cref="StateMode.Reformat"/>, which zeroes the data), <see cref="IOException"/>
    /// for file errors.
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
            if (loaded is not null)
            {
                CheckSameGeometry(loaded, geometry);
            }
            var stateFile = ZoneStateFile.OpenForCommits(statePath, geometry, loaded?.Sequence ?? 0);
            if (loaded is null && mode == StateMode.Reformat)
            {
                backstore.Zero(0, backstore.Length);
            }
            return new NamespaceStore(backstore, stateFile, geometry);
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

    /// <summary>The options stored in a backstore's state file, or null if it has none.</summary>
    public static NamespaceOptions? ReadStoredOptions(string backstorePath) =>
        ZoneStateFile.TryLoad(ZoneStateFile.PathFor(backstorePath))?.Options;

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

    /// <summary>Whether commits write a state file (otherwise a commit only flushes the data).</summary>
    public bool Persistent => _stateFile is not null;

    /// <summary>
    /// Captures the zone state for the next <see cref="Commit"/>. The caller holds the lock that keeps
    /// <paramref name="zones"/> still.
    /// </summary>
    public void Capture(Guid uuid, ZoneStateMachine zones, bool writeProtected) =>
        _stateFile?.Encode(Geometry, Backstore.Length, uuid, zones.Records, zones.Extensions, writeProtected);

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

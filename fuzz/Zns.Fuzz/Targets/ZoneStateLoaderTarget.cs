using Zns.Core.Zones;
using static Zns.Fuzz.FuzzFailureException;

namespace Zns.Fuzz;

/// <summary>
/// The zone state file loader (<c>FILE.zns</c>) over arbitrary bytes: it either reports the file as invalid
/// (<see cref="InvalidDataException"/>, or <see cref="OptionException"/> for a stored geometry that does not
/// validate) or returns zones whose start LBAs and capacities agree with the geometry it returns.
/// </summary>
public sealed class ZoneStateLoaderTarget : IFuzzTarget
{
    private static readonly string Directory = Path.Combine(Path.GetTempPath(), $"zns-fuzz-{Environment.ProcessId}");

    /// <inheritdoc/>
    public static string Name => "zone-state-loader";

    /// <inheritdoc/>
    public static void Fuzz(ReadOnlySpan<byte> input)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string backstore = Path.Combine(Directory, $"ns-{Environment.CurrentManagedThreadId}");
        File.WriteAllBytes(backstore + ".zns", input.ToArray());
        (ZoneGeometry Geometry, ZoneInfo[] Zones)? stored;
        try
        {
            stored = ZonedNamespace.ReadStoredZones(backstore);
        }
        catch (Exception e) when (e is InvalidDataException or OptionException)
        {
            return;
        }
        Check(stored is not null, "an existing state file loaded as absent", input);
        var (g, zones) = stored!.Value;
        Check(zones.Length == g.ZoneCount, "zone count differs from the geometry", input);
        for (uint i = 0; i < zones.Length; i++)
        {
            Check(zones[i].Index == i && zones[i].StartLba == g.ZoneStart(i) && zones[i].Capacity == g.ZoneCapacityLbas,
                $"zone {i} does not match the geometry", input);
        }
    }
}

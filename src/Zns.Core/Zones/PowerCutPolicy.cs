namespace Zns.Core.Zones;

/// <summary>What a power cut keeps of the data that was not durable (see docs/persistence.md).</summary>
public enum PowerCutKeep
{
    /// <summary>Drops every write that no Flush or FUA covered: write pointers go back to their durable point.</summary>
    None,
    /// <summary>Keeps everything (the cut is only a power cycle).</summary>
    All,
    /// <summary>
    /// Keeps a random prefix of each zone's unflushed writes (at write boundaries), and a random subset of a
    /// conventional namespace's unflushed blocks.
    /// </summary>
    Random,
}

/// <summary>
/// How a power cut treats data that was not durable. <paramref name="Torn"/> (with <see cref="PowerCutKeep.Random"/>
/// only) cuts the last kept write of a zone at a block boundary. <paramref name="Seed"/> makes the cut reproducible:
/// callers seed the <see cref="Random"/> they pass to <see cref="ZonedNamespace.CutPower"/> with it.
/// </summary>
public sealed record PowerCutPolicy(PowerCutKeep Keep, bool Torn, ulong Seed)
{
    /// <summary>Keeps nothing that was not flushed (seed 0).</summary>
    public static PowerCutPolicy DropUnflushed { get; } = new(PowerCutKeep.None, false, 0);

    /// <summary>The policy's problem, naming the field, or null when it is valid.</summary>
    public string? Validate() =>
        !Enum.IsDefined(Keep) ? $"keep: unknown policy {(int)Keep} (none, all or random)" :
        Torn && Keep != PowerCutKeep.Random ? "torn: needs keep random (a torn write is a partly kept one)" :
        null;

    /// <summary>A <see cref="Random"/> seeded from <see cref="Seed"/> (the same seed gives the same cut).</summary>
    public Random CreateRandom() => new(unchecked((int)(Seed ^ (Seed >> 32))));

    /// <summary>Parses a keep policy name (none, all, random; case-insensitive), or null for anything else.</summary>
    public static PowerCutKeep? ParseKeep(string? value) => value?.ToLowerInvariant() switch
    {
        "none" => PowerCutKeep.None,
        "all" => PowerCutKeep.All,
        "random" => PowerCutKeep.Random,
        _ => null,
    };

    /// <summary>The policy's name on the command line and in the control API.</summary>
    public static string KeepName(PowerCutKeep keep) => keep switch
    {
        PowerCutKeep.None => "none",
        PowerCutKeep.All => "all",
        PowerCutKeep.Random => "random",
        _ => ((int)keep).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>What a power cut did to one zone that held data that was not durable.</summary>
/// <param name="Zone">Zone index.</param>
/// <param name="WritePointerBefore">The write pointer when power was cut.</param>
/// <param name="DurableWritePointer">Where the last Flush, FUA write or durable zone action left it.</param>
/// <param name="WritePointerAfter">The write pointer after the cut (between the two above).</param>
/// <param name="BlocksDropped">Blocks that read as zeros after the cut (ZRWA window data past the write pointer included).</param>
/// <param name="Torn">Whether the last kept write was cut at a block boundary.</param>
/// <param name="BlockGranularity">Whether the zone had more unflushed writes than are recorded, so the cut fell at any block.</param>
/// <param name="StateBefore">The zone state when power was cut.</param>
/// <param name="StateAfter">The zone state after the power cycle.</param>
public sealed record ZonePowerCut(
    uint Zone, ulong WritePointerBefore, ulong DurableWritePointer, ulong WritePointerAfter, ulong BlocksDropped,
    bool Torn, bool BlockGranularity, ZoneState StateBefore, ZoneState StateAfter);

/// <summary>What a power cut dropped in one namespace.</summary>
/// <param name="Policy">The policy applied.</param>
/// <param name="Zones">Zoned namespace: each zone that held data that was not durable, in zone order.</param>
/// <param name="BlocksDropped">Blocks whose unflushed data was dropped (zones: summed; conventional: restored to their flushed contents).</param>
/// <param name="BlocksKept">Unflushed blocks the policy kept.</param>
public sealed record NamespacePowerCutReport(PowerCutPolicy Policy, IReadOnlyList<ZonePowerCut> Zones, ulong BlocksDropped, ulong BlocksKept);

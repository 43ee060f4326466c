using System.Globalization;

namespace Zns.Core.Zones;

/// <summary>What a value given when a namespace is served does when it differs from the one its state file keeps.</summary>
public enum ServeTimeRule
{
    /// <summary>
    /// Refused, naming the option, the kept value and the given one: the option describes the namespace (a property
    /// of QEMU's <c>-device nvme-ns</c>), so a host would see a different device behind the same data.
    /// </summary>
    Refused,

    /// <summary>
    /// The given value applies to that run and the kept one stays: the option is a limit or behaviour of the
    /// controller in front of the namespace (a property of QEMU's <c>-device nvme</c>), not of the data.
    /// </summary>
    ServeValueApplies,
}

/// <summary>
/// One field of <see cref="KeptNamespaceOptions"/>: its QEMU name, the state file format that first kept it, the
/// rule for a different value at serve time, and its value as an option would spell it (the form compared, printed
/// by <c>zns info</c> and named in messages). <see cref="All"/> lists every field.
/// </summary>
public sealed class KeptOption
{
    private readonly Func<KeptNamespaceOptions, string> _value;
    private readonly Func<KeptNamespaceOptions, KeptNamespaceOptions, KeptNamespaceOptions> _copy;

    private KeptOption(string name, ServeTimeRule rule, int since, Func<KeptNamespaceOptions, string> value,
        Func<KeptNamespaceOptions, KeptNamespaceOptions, KeptNamespaceOptions> copy)
    {
        Name = name;
        Rule = rule;
        Since = since;
        _value = value;
        _copy = copy;
    }

    /// <summary>The QEMU name (<c>-o NAME=VALUE</c>).</summary>
    public string Name { get; }

    /// <summary>What a different value at serve time does.</summary>
    public ServeTimeRule Rule { get; }

    /// <summary>The first state file format that keeps it.</summary>
    public int Since { get; }

    /// <summary>Whether it applies only to zoned namespaces (a conventional namespace keeps none of these).</summary>
    public bool ZonedOnly => Name.StartsWith("zoned.", StringComparison.Ordinal);

    /// <summary>The value as an option would spell it, or null where it does not apply (a zone option of a conventional namespace).</summary>
    public string? ValueOf(KeptNamespaceOptions kept) => ZonedOnly && !kept.Zoned ? null : _value(kept);

    /// <summary>Every kept option, in the order <c>zns info</c> lists them and conflicts are looked for.</summary>
    public static IReadOnlyList<KeptOption> All { get; } =
    [
        new("logical_block_size", ServeTimeRule.Refused, 1, k => Number(k.LogicalBlockSize), (to, from) => to with { LogicalBlockSize = from.LogicalBlockSize }),
        new("zoned", ServeTimeRule.Refused, 1, k => OnOff(k.Zoned), (to, from) => to with { Zoned = from.Zoned }),
        new("zoned.zone_size", ServeTimeRule.Refused, 1, k => Size(k.ZoneSize), (to, from) => to with { ZoneSize = from.ZoneSize }),
        new("zoned.zone_capacity", ServeTimeRule.Refused, 1, k => Size(k.ZoneCapacity), (to, from) => to with { ZoneCapacity = from.ZoneCapacity }),
        new("zoned.max_open", ServeTimeRule.Refused, 1, k => Number(k.MaxOpen), (to, from) => to with { MaxOpen = from.MaxOpen }),
        new("zoned.max_active", ServeTimeRule.Refused, 1, k => Number(k.MaxActive), (to, from) => to with { MaxActive = from.MaxActive }),
        new("zoned.descr_ext_size", ServeTimeRule.Refused, 1, k => Number(k.DescriptorExtensionSize), (to, from) => to with { DescriptorExtensionSize = from.DescriptorExtensionSize }),
        new("zoned.cross_read", ServeTimeRule.Refused, 1, k => OnOff(k.CrossRead), (to, from) => to with { CrossRead = from.CrossRead }),
        new("zoned.zrwas", ServeTimeRule.Refused, 2, k => Size(k.Zrwas), (to, from) => to with { Zrwas = from.Zrwas }),
        // -1 means one block: compared and shown as the bytes it stands for.
        new("zoned.zrwafg", ServeTimeRule.Refused, 2, k => Size(k.Zrwafg == -1 ? k.LogicalBlockSize : k.Zrwafg), (to, from) => to with { Zrwafg = from.Zrwafg }),
        new("zoned.numzrwa", ServeTimeRule.Refused, 2, k => Number(k.NumZrwa), (to, from) => to with { NumZrwa = from.NumZrwa }),
        new("mssrl", ServeTimeRule.Refused, 2, k => Number(k.Mssrl), (to, from) => to with { Mssrl = from.Mssrl }),
        new("mcl", ServeTimeRule.Refused, 2, k => Number(k.Mcl), (to, from) => to with { Mcl = from.Mcl }),
        new("msrc", ServeTimeRule.Refused, 2, k => Number(k.Msrc), (to, from) => to with { Msrc = from.Msrc }),
        new("uuid", ServeTimeRule.Refused, 1, k => k.Uuid.ToString("D"), (to, from) => to with { Uuid = from.Uuid }),
        new("nguid", ServeTimeRule.Refused, 2, k => k.Nguid is { } n ? n.ToString("x32", CultureInfo.InvariantCulture) : "none (the UUID's bytes)", (to, from) => to with { Nguid = from.Nguid }),
        new("eui64", ServeTimeRule.Refused, 2, k => "0x" + k.Eui64.ToString("x16", CultureInfo.InvariantCulture), (to, from) => to with { Eui64 = from.Eui64 }),
        // The LBA format: the metadata's place in the backstore and every stored PI tuple depend on it. Format 3 is the
        // first with fields for them, but every older file is known to hold 0 (nothing else was accepted), which is
        // what it decodes to: kept since format 1, so that a value given for an older file is compared, not adopted.
        new("ms", ServeTimeRule.Refused, 1, k => Number(k.MetadataSize), (to, from) => to with { MetadataSize = from.MetadataSize }),
        new("mset", ServeTimeRule.Refused, 1, k => k.MetadataExtended ? "1" : "0", (to, from) => to with { MetadataExtended = from.MetadataExtended }),
        new("pi", ServeTimeRule.Refused, 1, k => Number(k.PiType), (to, from) => to with { PiType = from.PiType }),
        new("pil", ServeTimeRule.Refused, 1, k => k.PiFirst ? "1" : "0", (to, from) => to with { PiFirst = from.PiFirst }),
        new("pif", ServeTimeRule.Refused, 1, k => Number(k.Pif), (to, from) => to with { Pif = from.Pif }),
        new("mdts", ServeTimeRule.ServeValueApplies, 1, k => Number(k.Mdts), (to, from) => to with { Mdts = from.Mdts }),
        new("zoned.zasl", ServeTimeRule.ServeValueApplies, 1, k => Number(k.Zasl), (to, from) => to with { Zasl = from.Zasl }),
        new("vsl", ServeTimeRule.ServeValueApplies, 2, k => Number(k.Vsl), (to, from) => to with { Vsl = from.Vsl }),
        new("zoned.auto_transition", ServeTimeRule.ServeValueApplies, 1, k => OnOff(k.AutoTransition), (to, from) => to with { AutoTransition = from.AutoTransition }),
    ];

    /// <summary>
    /// The first option kept in <paramref name="kept"/> whose rule refuses the value in <paramref name="given"/>, with
    /// both values; null when the namespace may be served with <paramref name="given"/>.
    /// </summary>
    public static (KeptOption Option, string Kept, string Given)? FindRefused(KeptNamespaceOptions kept, KeptNamespaceOptions given)
    {
        foreach (KeptOption option in All)
        {
            if (option.Rule == ServeTimeRule.Refused && kept.Keeps(option)
                && option.ValueOf(kept) is { } k && option.ValueOf(given) is { } g && k != g)
            {
                return (option, k, g);
            }
        }
        return null;
    }

    /// <summary>
    /// What a namespace kept as <paramref name="kept"/> keeps after it is opened with <paramref name="given"/> (which
    /// <see cref="FindRefused"/> accepted): the kept values, and the given ones of the options an older format did not
    /// keep yet. A serve-time value of a <see cref="ServeTimeRule.ServeValueApplies"/> option is not kept.
    /// </summary>
    public static KeptNamespaceOptions AfterOpen(KeptNamespaceOptions kept, KeptNamespaceOptions given)
    {
        var result = kept;
        foreach (KeptOption option in All)
        {
            if (!kept.Keeps(option))
            {
                result = option._copy(result, given);
            }
        }
        return result with { Format = KeptNamespaceOptions.CurrentFormat };
    }

    /// <summary>
    /// Why an option <see cref="NamespaceOptions.With"/> takes is not kept in the state file, for a command that
    /// creates a namespace to refuse it by name; null when it is kept (or takes only the value every namespace has).
    /// <paramref name="options"/> are the options being created (a conventional namespace keeps no zone option).
    /// </summary>
    public static string? WhyNotKept(string name, NamespaceOptions options)
    {
        if (name == "timing" || name.StartsWith("timing.", StringComparison.Ordinal))
        {
            return "the timing is a run-time option, not kept in the zone state file: give it when serving the namespace";
        }
        return name switch
        {
            "nsid" => "the namespace ID is given out when the namespace is served (in FILE order), not kept in the zone state file: give it when serving the namespace",
            "physical_block_size" => "a hint zns does not use (the logical block size decides the layout), so there is nothing to keep: leave it out",
            _ when !options.Zoned && Find(name) is { ZonedOnly: true } zoneOption =>
                $"a conventional namespace (zoned=off) has no zones, so it keeps no {zoneOption.Name}: leave it out or create a zoned namespace",
            _ => null,
        };
    }

    /// <summary>The kept option a name (QEMU's, or a zone option without its <c>zoned.</c> prefix) stands for, or null.</summary>
    public static KeptOption? Find(string name)
    {
        foreach (KeptOption option in All)
        {
            if (option.Name == name || (option.ZonedOnly && option.Name.AsSpan("zoned.".Length).SequenceEqual(name)))
            {
                return option;
            }
        }
        return null;
    }

    private static string Number<T>(T value) where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);

    private static string OnOff(bool value) => value ? "on" : "off";

    private static readonly (int Shift, string Suffix)[] SizeSuffixes = [(40, "T"), (30, "G"), (20, "M"), (10, "K")];

    // As an option would spell it: the largest K/M/G/T suffix that divides the size exactly.
    private static string Size(long bytes)
    {
        foreach (var (shift, suffix) in SizeSuffixes)
        {
            if (bytes != 0 && bytes % (1L << shift) == 0)
            {
                return Number(bytes >> shift) + suffix;
            }
        }
        return Number(bytes);
    }
}

using System.Globalization;
using Zns.Core.Timing;

namespace Zns.Core.Zones;

/// <summary>
/// The configuration of one namespace, with QEMU's option names and meanings (<c>-device nvme-ns</c> and the
/// controller's <c>zoned.zasl</c>/<c>mdts</c>). Immutable; <see cref="ZoneGeometry.Create"/> validates it against a
/// backstore size.
/// </summary>
public sealed record NamespaceOptions
{
    /// <summary><c>logical_block_size</c>: 512 or 4096 bytes.</summary>
    public int LogicalBlockSize { get; init; } = 4096;

    /// <summary><c>zoned</c>: a zoned namespace (ZNS command set) or a conventional NVM namespace.</summary>
    public bool Zoned { get; init; } = true;

    /// <summary><c>zoned.zone_size</c> in bytes.</summary>
    public long ZoneSize { get; init; } = 128L << 20;

    /// <summary><c>zoned.zone_capacity</c> in bytes; 0 means the zone size.</summary>
    public long ZoneCapacity { get; init; }

    /// <summary><c>zoned.max_open</c>: open zone limit; 0 means no limit.</summary>
    public uint MaxOpen { get; init; }

    /// <summary><c>zoned.max_active</c>: active zone limit; 0 means no limit.</summary>
    public uint MaxActive { get; init; }

    /// <summary><c>zoned.zasl</c>: Zone Append Size Limit as a power of two of 4 KiB pages; 0 means MDTS.</summary>
    public byte Zasl { get; init; }

    /// <summary><c>zoned.descr_ext_size</c>: zone descriptor extension size in bytes (multiple of 64).</summary>
    public int DescriptorExtensionSize { get; init; }

    /// <summary><c>zoned.cross_read</c>: reads may cross zone boundaries (OZCS.RAZB).</summary>
    public bool CrossRead { get; init; }

    /// <summary><c>zoned.auto_transition</c>: close an implicitly opened zone when the open limit is reached.</summary>
    public bool AutoTransition { get; init; } = true;

    /// <summary><c>mdts</c>: Maximum Data Transfer Size as a power of two of 4 KiB pages (QEMU's default 7 = 512 KiB).</summary>
    public byte Mdts { get; init; } = 7;

    /// <summary>
    /// <c>physical_block_size</c> as given, or null. zns reports no preferred write granularity (NPWG, NOWS), so a host
    /// takes the logical block size as the physical one: only that value is honoured, any other is refused.
    /// </summary>
    public int? PhysicalBlockSize { get; init; }

    /// <summary><c>timing</c> and <c>timing.*</c>: how completions are timed. A run-time property: not stored with the geometry.</summary>
    public TimingOptions Timing { get; init; } = TimingOptions.Off;
    /// <summary><c>vsl</c>: Verify Size Limit as a power of two of 4 KiB pages (QEMU's default 7 = 512 KiB).</summary>
    public byte Vsl { get; init; } = 7;

    /// <summary><c>zoned.zrwas</c>: Zone Random Write Area size in bytes; 0 = no ZRWA support.</summary>
    public long Zrwas { get; init; }

    /// <summary><c>zoned.zrwafg</c>: ZRWA flush granularity in bytes; -1 = one logical block.</summary>
    public long Zrwafg { get; init; } = -1;

    /// <summary><c>zoned.numzrwa</c>: ZRWA resources; 0 = one per zone (and NUMZRWA reports 0, as QEMU does).</summary>
    public uint NumZrwa { get; init; }

    /// <summary><c>mssrl</c>: Maximum Single Source Range Length of Copy, in logical blocks.</summary>
    public ushort Mssrl { get; init; } = 128;

    /// <summary><c>mcl</c>: Maximum Copy Length, in logical blocks.</summary>
    public uint Mcl { get; init; } = 128;

    /// <summary><c>msrc</c>: Maximum Source Range Count of Copy, 0's based.</summary>
    public byte Msrc { get; init; } = 127;

    /// <summary><c>uuid</c>: the namespace UUID; null = generated once and kept in the zone state file.</summary>
    public Guid? Uuid { get; init; }

    /// <summary><c>nguid</c>: the namespace NGUID (16 bytes); null = the UUID's bytes.</summary>
    public ReadOnlyMemory<byte>? Nguid { get; init; }

    /// <summary><c>eui64</c>: the IEEE Extended Unique Identifier; 0 = none reported.</summary>
    public ulong Eui64 { get; init; }

    /// <summary><c>ms</c>: metadata bytes per logical block; 0 = none.</summary>
    public ushort MetadataSize { get; init; }

    /// <summary><c>mset</c>: the metadata follows each block's data in the data buffer (extended LBA), else it has a buffer of its own.</summary>
    public bool MetadataExtended { get; init; }

    /// <summary><c>pi</c>: end-to-end protection type 1, 2 or 3; 0 = none.</summary>
    public byte PiType { get; init; }

    /// <summary><c>pil</c>: the protection information is the first bytes of the metadata, else the last.</summary>
    public bool PiFirst { get; init; }

    /// <summary><c>pif</c>: the protection information format, 0 = 16-bit guard (CRC-16), 2 = 64-bit guard (CRC-64).</summary>
    public byte Pif { get; init; }

    /// <summary><c>nsid</c>: the namespace ID; 0 = the next free one in command-line order.</summary>
    public uint Nsid { get; init; }

    /// <summary>The memory page size MDTS and ZASL are expressed in (CAP.MPSMIN = 4 KiB).</summary>
    public const int PageSize = 4096;

    /// <summary>Bytes an MDTS (or ZASL) value allows: 2^value pages; 0 means no limit (<see cref="int.MaxValue"/>).</summary>
    public static int TransferLimitBytes(byte mdts) => mdts == 0 ? int.MaxValue : PageSize << mdts;

    /// <summary>
    /// Applies QEMU-style <c>key=value</c> pairs separated by commas
    /// (<c>zoned.zone_size=64M,zoned.zone_capacity=62M,logical_block_size=4096</c>). Sizes take K/M/G/T suffixes
    /// (powers of 1024). Throws <see cref="OptionException"/> naming the bad option.
    /// </summary>
    public NamespaceOptions WithQemuOptions(string list)
    {
        var result = this;
        foreach (var item in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = item.IndexOf('=');
            if (eq <= 0)
            {
                throw new OptionException(item, $"expected key=value, got '{item}'");
            }
            result = result.With(item[..eq], item[(eq + 1)..]);
        }
        return result;
    }

    /// <summary>Sets one option by its QEMU name (with or without the <c>zoned.</c> prefix for zone options).</summary>
    public NamespaceOptions With(string key, string value)
    {
        string name = key.Trim();
        return name switch
        {
            "physical_block_size" => this with { PhysicalBlockSize = checked((int)ParseSize(name, value)) },
            "logical_block_size" => this with { LogicalBlockSize = checked((int)ParseSize(name, value)) },
            "zoned" => this with { Zoned = ParseBool(name, value) },
            "zoned.zone_size" or "zone_size" => this with { ZoneSize = ParseSize(name, value) },
            "zoned.zone_capacity" or "zone_capacity" => this with { ZoneCapacity = ParseSize(name, value) },
            "zoned.max_open" or "max_open" => this with { MaxOpen = ParseUInt(name, value) },
            "zoned.max_active" or "max_active" => this with { MaxActive = ParseUInt(name, value) },
            "zoned.zasl" or "zasl" => this with { Zasl = ParseByte(name, value) },
            "zoned.descr_ext_size" or "descr_ext_size" => this with { DescriptorExtensionSize = checked((int)ParseSize(name, value)) },
            "zoned.cross_read" or "cross_read" => this with { CrossRead = ParseBool(name, value) },
            "zoned.auto_transition" or "auto_transition" => this with { AutoTransition = ParseBool(name, value) },
            "mdts" => this with { Mdts = ParseByte(name, value) },
            _ when name == "timing" || name.StartsWith("timing.", StringComparison.Ordinal) => this with { Timing = Timing.With(name, value) },
            "vsl" => this with { Vsl = ParseByte(name, value) },
            "zoned.zrwas" or "zrwas" => this with { Zrwas = ParseSize(name, value) },
            "zoned.zrwafg" or "zrwafg" => this with { Zrwafg = ParseSize(name, value) },
            "zoned.numzrwa" or "numzrwa" => this with { NumZrwa = ParseUInt(name, value) },
            "mssrl" => this with { Mssrl = checked((ushort)ParseUInt(name, value)) },
            "mcl" => this with { Mcl = ParseUInt(name, value) },
            "msrc" => this with { Msrc = ParseByte(name, value) },
            "uuid" => this with { Uuid = ParseUuid(name, value) },
            "nguid" => this with { Nguid = ParseNguid(name, value) },
            "eui64" => this with { Eui64 = ParseHex64(name, value) },
            "nsid" => this with { Nsid = ParseUInt(name, value) },
            // QEMU's types: ms a uint16, the others uint8 where any value but 0 turns mset and pil on.
            "ms" => this with { MetadataSize = checked((ushort)ParseUInt16(name, value)) },
            "mset" => this with { MetadataExtended = ParseByte(name, value) != 0 },
            "pi" => this with { PiType = ParseByte(name, value) },
            "pil" => this with { PiFirst = ParseByte(name, value) != 0 },
            "pif" => this with { Pif = ParseByte(name, value) },
            _ => throw new OptionException(name, $"unknown option '{name}'"),
        };
    }

    /// <summary>Parses a byte size with an optional K/M/G/T suffix (powers of 1024) and optional trailing B.</summary>
    public static long ParseSize(string option, string text)
    {
        string s = text.Trim();
        if (s.EndsWith('B') || s.EndsWith('b'))
        {
            s = s[..^1];
        }
        int shift = 0;
        if (s.Length > 0)
        {
            switch (char.ToUpperInvariant(s[^1]))
            {
                case 'K': shift = 10; break;
                case 'M': shift = 20; break;
                case 'G': shift = 30; break;
                case 'T': shift = 40; break;
            }
        }
        if (shift != 0)
        {
            s = s[..^1];
        }
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n < 0 || n > (long.MaxValue >> shift))
        {
            throw new OptionException(option, $"invalid size '{text}' (use a number with an optional K, M, G or T suffix)");
        }
        return n << shift;
    }

    private static bool ParseBool(string option, string text) => text.Trim().ToLowerInvariant() switch
    {
        "on" or "true" or "yes" or "1" => true,
        "off" or "false" or "no" or "0" => false,
        _ => throw new OptionException(option, $"invalid boolean '{text}' (use on or off)"),
    };

    private static uint ParseUInt(string option, string text) =>
        uint.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out uint v)
            ? v : throw new OptionException(option, $"invalid number '{text}'");

    private static ushort ParseUInt16(string option, string text) =>
        ushort.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out ushort v)
            ? v : throw new OptionException(option, $"invalid number '{text}' (0 to 65535)");

    private static Guid ParseUuid(string option, string text) =>
        Guid.TryParse(text.Trim(), out Guid g) ? g : throw new OptionException(option, $"invalid UUID '{text}'");

    // QEMU's nguid property: 32 hex digits, optionally with dashes.
    private static ReadOnlyMemory<byte> ParseNguid(string option, string text)
    {
        string hex = text.Trim().Replace("-", "", StringComparison.Ordinal);
        try
        {
            return hex.Length == 32 ? Convert.FromHexString(hex) : throw new FormatException();
        }
        catch (FormatException)
        {
            throw new OptionException(option, $"invalid NGUID '{text}' (32 hex digits)");
        }
    }

    private static ulong ParseHex64(string option, string text)
    {
        string s = text.Trim();
        bool hex = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        return ulong.TryParse(hex ? s[2..] : s, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out ulong v)
            ? v : throw new OptionException(option, $"invalid number '{text}'");
    }

    private static byte ParseByte(string option, string text) =>
        byte.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out byte v)
            ? v : throw new OptionException(option, $"invalid number '{text}'");
}

/// <summary>A configuration error, naming the option at fault.</summary>
public sealed class OptionException(string option, string reason) : Exception($"{option}: {reason}")
{
    /// <summary>The option's name.</summary>
    public string Option { get; } = option;

    /// <summary>What is wrong with it, without the option's name.</summary>
    public string Reason { get; } = reason;
}

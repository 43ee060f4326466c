using Spectre.Console;
using Zns.Nvme;
using Zns.Core.Zones;

namespace Zns.Cli;

/// <summary>Text formats: blkzone's report line, geometry summaries, status names.</summary>
internal static class Output
{
    // util-linux's condition abbreviations, indexed by the zone condition (= ZNS zone state) value.
    private static readonly string[] Conditions = ["nw", "em", "oi", "oe", "cl", "x5", "x6", "x7", "x8", "x9", "xA", "xB", "xC", "ro", "fu", "of"];

    /// <summary>
    /// One zone as <c>blkzone report</c> prints it for an NVMe zoned namespace: 512-byte sectors, the write
    /// pointer relative to the zone start, and for Full zones the end of the zone (the Linux host ignores the
    /// device's write pointer of a Full zone).
    /// </summary>
    public static string BlkzoneLine(ZoneGeometry g, ZoneInfo z) => BlkzoneLine(g.BlockShift, g.ZoneSizeLbas, z);

    /// <summary>The same line from a block size (as a shift) and a zone size, as a running server reports them.</summary>
    public static string BlkzoneLine(int blockShift, ulong zoneSizeLbas, ZoneInfo z)
    {
        int shift = blockShift - 9;
        ulong start = z.StartLba << shift;
        ulong len = zoneSizeLbas << shift;
        ulong cap = z.Capacity << shift;
        ulong wp = z.State == ZoneState.Full ? start + len
            : z.WritePointerValid ? z.WritePointer << shift
            : ulong.MaxValue << shift;
        int cond = (int)z.State;
        return $"  start: 0x{start:x9}, len 0x{len:x6}, cap 0x{cap:x6}, wptr 0x{wp - start:x6} reset:0 non-seq:0, zcond:{cond,2}({Conditions[cond & 15]}) [type: 2(SEQ_WRITE_REQUIRED)]";
    }

    public static string Summary(ZoneGeometry g) => g.Zoned
        ? $"{g.ZoneCount} zones of {Bytes((long)g.ZoneSizeLbas * g.BlockSize)} (capacity {Bytes((long)g.ZoneCapacityLbas * g.BlockSize)}), " +
          $"{g.BlockSize}-byte blocks, max open {Limit(g.MaxOpen)}, max active {Limit(g.MaxActive)}, zone append limit {Bytes(g.ZoneAppendLimitBytes)}"
        : $"conventional namespace of {Bytes(g.UsedBytes)}, {g.BlockSize}-byte blocks";

    private static string Limit(uint v) => v == 0 ? "unlimited" : v.ToString();

    public static string Bytes(long b) =>
        b % (1L << 30) == 0 && b >= 1L << 30 ? $"{b >> 30} GiB" :
        b % (1L << 20) == 0 && b >= 1L << 20 ? $"{b >> 20} MiB" :
        b % 1024 == 0 && b >= 1024 ? $"{b >> 10} KiB" : $"{b} B";

    public static void Info(string path, ZoneGeometry g, ZoneInfo[] zones, KeptNamespaceOptions? kept)
    {
        var table = new Table().AddColumn("property").AddColumn("value");
        table.AddRow("file", Markup.Escape(path));
        table.AddRow("zone state", kept is not null ? Markup.Escape($"{path}.zns (format {kept.Format})") : "none (all zones Empty)");
        table.AddRow("namespace", $"{g.NamespaceSizeLbas} blocks of {g.BlockSize} B ({Bytes(g.UsedBytes)})");
        if (g.Zoned)
        {
            table.AddRow("zones", g.ZoneCount.ToString());
            table.AddRow("zone size", $"{Bytes((long)g.ZoneSizeLbas * g.BlockSize)} (0x{g.ZoneSizeLbas:x} blocks){(g.ZoneSizeIsPowerOfTwo ? "" : " - not a power of two: Linux will not attach it")}");
            table.AddRow("zone capacity", $"{Bytes((long)g.ZoneCapacityLbas * g.BlockSize)} (0x{g.ZoneCapacityLbas:x} blocks)");
            table.AddRow("max open / max active", $"{Limit(g.MaxOpen)} / {Limit(g.MaxActive)}");
            table.AddRow("zone append limit", $"{Bytes(g.ZoneAppendLimitBytes)} (zasl {g.Zasl})");
            table.AddRow("max transfer", $"{Bytes(g.MaxTransferBytes)} (mdts {g.Mdts})");
            table.AddRow("descriptor extension", $"{g.DescriptorExtensionSize} B");
            table.AddRow("cross read / auto transition", $"{(g.CrossRead ? "on" : "off")} / {(g.AutoTransition ? "on" : "off")}");
            foreach (var state in Enum.GetValues<ZoneState>())
            {
                table.AddRow($"zones {state}", zones.Count(z => z.State == state).ToString());
            }
        }
        else
        {
            table.AddRow("zoned", "off (conventional)");
        }
        AnsiConsole.Write(table);
        if (kept is not null)
        {
            KeptOptions(Console.Out, path, kept);
        }
    }

    /// <summary>
    /// Every option the state file keeps, one <c>name=value</c> line each (the spelling <c>-o</c> takes), grouped by
    /// what a different value at serve time does.
    /// </summary>
    private static void KeptOptions(TextWriter stdout, string path, KeptNamespaceOptions kept)
    {
        foreach (var (rule, heading) in (ReadOnlySpan<(ServeTimeRule, string)>)
                 [(ServeTimeRule.Refused, "a different value at serve time is refused"),
                  (ServeTimeRule.ServeValueApplies, "a value given at serve time applies to that run, and this one stays")])
        {
            stdout.WriteLine($"kept in {path}.zns ({heading}):");
            foreach (KeptOption option in KeptOption.All)
            {
                if (option.Rule == rule && option.ValueOf(kept) is { } value)
                {
                    stdout.WriteLine(kept.Keeps(option)
                        ? $"  {option.Name}={value}"
                        : $"  {option.Name}={value} (the default: this format {kept.Format} state file does not keep it yet; the next open keeps the value it is given)");
                }
            }
        }
    }

    public static string StatusName(NvmeStatus s) => (s.Sct, s.Sc) switch
    {
        (0, 0x02) => "Invalid Field in Command",
        (0, 0x80) => "LBA Out of Range",
        (1, 0xB6) => "Invalid Zone Operation Request",
        (1, 0xB8) => "Zone Boundary Error",
        (1, 0xB9) => "Zone Is Full",
        (1, 0xBA) => "Zone Is Read Only",
        (1, 0xBB) => "Zone Is Offline",
        (1, 0xBC) => "Zone Invalid Write",
        (1, 0xBD) => "Too Many Active Zones",
        (1, 0xBE) => "Too Many Open Zones",
        (1, 0xBF) => "Invalid Zone State Transition",
        _ => "error",
    };
}

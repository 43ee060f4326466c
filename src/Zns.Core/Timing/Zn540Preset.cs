using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using Zns.Core.Zones;

namespace Zns.Core.Timing;

/// <summary>
/// The Western Digital ZN540 as measured by stonet-research/NVMeBenchmarks: timing parameters and the drive's own
/// geometry, both read from the embedded <c>zn540.json</c> (the one place these figures live; README.md beside it
/// explains each derivation).
/// </summary>
public static class Zn540Preset
{
    private static readonly Lazy<JsonDocument> LazyDocument = new(Load);
    private static readonly Lazy<TimingOptions> LazyTiming = new(ReadTiming);

    /// <summary>The whole data file: <c>source</c>, <c>geometry</c>, <c>measured</c> (with where each came from) and <c>parameters</c>.</summary>
    public static JsonDocument Document => LazyDocument.Value;

    /// <summary>The <c>timing=zn540</c> parameters.</summary>
    public static TimingOptions Timing => LazyTiming.Value;

    /// <summary>The drive's geometry as it reports it: 2 GiB zones of 1077 MiB capacity, 904 zones, 14 open/active.</summary>
    public static NamespaceOptions Geometry
    {
        get
        {
            JsonElement g = Document.RootElement.GetProperty("geometry");
            int lba = g.GetProperty("lba_size").GetInt32();
            return new NamespaceOptions
            {
                LogicalBlockSize = lba,
                ZoneSize = g.GetProperty("zone_size_lbas").GetInt64() * lba,
                ZoneCapacity = g.GetProperty("zone_capacity_lbas").GetInt64() * lba,
                MaxOpen = g.GetProperty("max_open").GetUInt32(),
                MaxActive = g.GetProperty("max_active").GetUInt32(),
            };
        }
    }

    /// <summary>Backstore size of the whole drive (zones × zone size).</summary>
    public static long Size
    {
        get
        {
            JsonElement g = Document.RootElement.GetProperty("geometry");
            return g.GetProperty("zones").GetInt64() * g.GetProperty("zone_size_lbas").GetInt64() * g.GetProperty("lba_size").GetInt64();
        }
    }

    /// <summary>A measured figure by name (<c>measured.NAME.value</c>), optionally one point of a series.</summary>
    public static double Measured(string name, string? point = null)
    {
        JsonElement v = Document.RootElement.GetProperty("measured").GetProperty(name).GetProperty("value");
        return point is null ? v.GetDouble() : v.GetProperty(point).GetDouble();
    }

    /// <summary>Where a measured figure came from (file in the dataset repository).</summary>
    public static string Source(string name) =>
        Document.RootElement.GetProperty("measured").GetProperty(name).GetProperty("from").GetString()!;

    private static JsonDocument Load()
    {
        using Stream s = typeof(Zn540Preset).Assembly.GetManifestResourceStream("Zns.Core.Timing.zn540.json")
            ?? throw new InvalidOperationException("zn540.json is not embedded");
        return JsonDocument.Parse(s);
    }

    private static TimingOptions ReadTiming()
    {
        JsonElement p = Document.RootElement.GetProperty("parameters");
        double D(string n) => p.GetProperty(n).GetDouble();
        int I(string n) => p.GetProperty(n).GetInt32();
        var curve = ImmutableArray.CreateBuilder<(double, double)>();
        foreach (JsonProperty point in p.GetProperty("reset_curve_kib_us").EnumerateObject())
        {
            curve.Add((double.Parse(point.Name, CultureInfo.InvariantCulture), point.Value.GetDouble()));
        }
        curve.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return new TimingOptions
        {
            Mode = TimingMode.Zn540,
            ReadUs = D("read_us"), ReadBusyUs = D("read_busy_us"), Channels = I("channels"), ZoneWidth = I("zone_width"),
            ReadMbps = D("read_mbps"), WriteUs = D("write_us"), AppendUs = D("append_us"), XferMbps = D("xfer_mbps"),
            WriteCmdUs = D("write_cmd_us"), AppendCmdUs = D("append_cmd_us"), WriteMbps = D("write_mbps"),
            PageKib = I("page_kib"), ProgramUs = D("program_us"), WriteBufferKib = I("write_buffer_kib"),
            OpenUs = D("open_us"), CloseUs = D("close_us"), MgmtUs = D("mgmt_us"), FinishMs = D("finish_ms"),
            FinishPadMbps = D("finish_pad_mbps"), ResetCurve = curve.ToImmutable(),
        };
    }
}

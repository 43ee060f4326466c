using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;
using Zns.Control;

namespace Zns.Cli;

/// <summary>Draws one <see cref="TopFrame"/>: throughput and latency with sparklines, zones per condition with bars, zone events, faults.</summary>
internal static class TopView
{
    /// <summary>Seconds of history the sparklines show.</summary>
    public const int Seconds = 60;

    /// <summary>Columns of a frame printed to a file or pipe (a terminal uses its own width).</summary>
    public const int Width = 110;

    private const string Blocks = "▁▂▃▄▅▆▇█";
    private const int BarWidth = 40;

    public static IRenderable Render(TopFrame f, bool live = false)
    {
        HistorySampleDto[] samples = f.History.Samples;
        HistorySampleDto? last = samples.Length > 0 ? samples[^1] : null;
        var header = new Markup(
            $"[bold]zns top[/]  {Markup.Escape(f.Control)}  {(f.Nsid is { } n ? $"nsid {n}" : "all namespaces")}  {f.At:HH:mm:ss}   " +
            $"controllers {f.Stats.Controllers}  queues {f.Stats.Queues}  connections {f.Stats.Connections}" +
            (last is null ? "   [yellow](no sample yet)[/]" : ""));

        var io = new Table().Border(TableBorder.Rounded).Title("throughput")
            .AddColumn("").AddColumn(new TableColumn("IOPS").RightAligned()).AddColumn(new TableColumn("MB/s").RightAligned())
            .AddColumn($"IOPS, last {Seconds} s");
        io.AddRow("read", Number(last?.ReadIops), Number(last?.ReadMBps, "0.00"), Spark(samples, s => s.ReadIops));
        io.AddRow("write", Number(last?.WriteIops), Number(last?.WriteMBps, "0.00"), Spark(samples, s => s.WriteIops));

        var latency = new Table().Border(TableBorder.Rounded).Title("latency (µs)")
            .AddColumn(new TableColumn("p50").RightAligned()).AddColumn(new TableColumn("p99").RightAligned())
            .AddColumn(new TableColumn("p99.9").RightAligned()).AddColumn($"p99, last {Seconds} s");
        latency.AddRow(Number(last?.P50Us, "0.0"), Number(last?.P99Us, "0.0"), Number(last?.P999Us, "0.0"), Spark(samples, s => s.P99Us));

        ZoneCountsDto z = last?.Zones ?? new ZoneCountsDto(0, 0, 0, 0, 0, 0, 0);
        (string Name, uint Count, string Color)[] conditions =
        [
            ("empty", z.Empty, "grey"), ("implicitly open", z.ImplicitlyOpen, "green"), ("explicitly open", z.ExplicitlyOpen, "lime"),
            ("closed", z.Closed, "yellow"), ("full", z.Full, "blue"), ("read only", z.ReadOnly, "darkorange"), ("offline", z.Offline, "red"),
        ];
        long total = conditions.Sum(c => (long)c.Count);
        var zones = new Table().Border(TableBorder.Rounded).Title($"zones ({total})")
            .AddColumn("condition").AddColumn(new TableColumn("zones").RightAligned()).AddColumn("");
        foreach (var c in conditions)
        {
            zones.AddRow(c.Name, c.Count.ToString(CultureInfo.InvariantCulture), $"[{c.Color}]{Bar(c.Count, total)}[/]");
        }

        var events = new Table().Border(TableBorder.Rounded).Title("zone resets and finishes")
            .AddColumn("").AddColumn(new TableColumn("per s").RightAligned()).AddColumn($"last {Seconds} s");
        events.AddRow("resets", Number(last?.ResetsPerSec), Spark(samples, s => s.ResetsPerSec));
        events.AddRow("finishes", Number(last?.FinishesPerSec), Spark(samples, s => s.FinishesPerSec));

        IRenderable[] parts = [header, io, latency, zones, events, Faults(f.Faults)];
        return new Rows(live ? [.. parts, new Markup("[grey]q quits[/]")] : parts);
    }

    private static IRenderable Faults(FaultsDto faults)
    {
        var lines = new List<string>();
        lines.AddRange(faults.MediaErrors.Select(m =>
            $"media error #{m.Id}: nsid {m.Nsid} lba {m.Lba} blocks {m.Blocks} on {m.On}{Trigger(m.Times, m.Probability)} fired {m.Fired ?? 0}"));
        lines.AddRange(faults.Latency.Select(l =>
            $"latency #{l.Id}: {l.Opcode ?? "all I/O"} {l.Distribution ?? "fixed"} " +
            string.Join(" ", new (string, double?)[] { ("us", l.Us), ("mean", l.MeanUs), ("min", l.MinUs), ("max", l.MaxUs), ("stddev", l.StdDevUs) }
                .Where(p => p.Item2 is not null).Select(p => $"{p.Item1} {p.Item2!.Value.ToString(CultureInfo.InvariantCulture)}"))));
        lines.AddRange(faults.Transient.Select(t =>
            $"transient #{t.Id}: {t.Status} on {t.Opcode ?? "all I/O"}{(t.Nsid is { } n ? $" nsid {n}" : "")}{Trigger(t.Times, t.Probability)} fired {t.Fired ?? 0}"));
        if (faults.FatalControllers > 0)
        {
            lines.Add($"controller fatal status: {faults.FatalControllers} controller(s)");
        }
        string text = lines.Count == 0 ? "[grey]none armed[/]" : string.Join("\n", lines.Select(l => $"[red]{Markup.Escape(l)}[/]"));
        return new Panel(new Markup(text)).Header("faults").Border(BoxBorder.Rounded).Expand();
    }

    private static string Trigger(int? times, double? probability) =>
        (times is { } t ? $", {t} time(s)" : "") + (probability is { } p ? $", p={p.ToString(CultureInfo.InvariantCulture)}" : "");

    private static string Number(double? value, string format = "0.#") =>
        value is { } v ? v.ToString(v >= 10000 ? "#,0" : format, CultureInfo.InvariantCulture) : "-";

    /// <summary>The last <see cref="Seconds"/> samples as block characters scaled to their maximum (the lowest block for 0), right-aligned.</summary>
    public static string Spark(IReadOnlyList<HistorySampleDto> samples, Func<HistorySampleDto, double> value)
    {
        int n = Math.Min(Seconds, samples.Count);
        double max = 0;
        for (int i = samples.Count - n; i < samples.Count; i++)
        {
            max = Math.Max(max, value(samples[i]));
        }
        var chars = new char[Seconds];
        Array.Fill(chars, ' ');
        for (int i = 0; i < n; i++)
        {
            double v = value(samples[samples.Count - n + i]);
            chars[Seconds - n + i] = v <= 0 || max <= 0 ? Blocks[0] : Blocks[1 + (int)Math.Min(6, Math.Floor(v / max * 7))];
        }
        return new string(chars);
    }

    /// <summary>A bar of full blocks, <paramref name="count"/> of <paramref name="total"/> over <see cref="BarWidth"/> columns (at least one block when not 0).</summary>
    public static string Bar(long count, long total)
    {
        if (count <= 0 || total <= 0)
        {
            return "";
        }
        int width = (int)Math.Max(1, Math.Round((double)count / total * BarWidth));
        return new string('█', width);
    }
}

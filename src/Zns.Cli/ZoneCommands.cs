using System.CommandLine;
using Spectre.Console;
using Zns.Core.Storage;
using Zns.Core.Timing;
using Zns.Core.Zones;

namespace Zns.Cli;

/// <summary>create, report, capacity, info, and the blkzone-like zone actions.</summary>
internal static class ZoneCommands
{
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "Backstore file to create (raw, QEMU layout)" };
        var size = new Option<string>("--size", "-s") { Description = "Backstore size with K/M/G/T suffix, e.g. 32G (required unless --preset gives it)" };
        var preset = new Option<string>("--preset") { Description = "Start from a real drive's geometry: zn540 (WD ZN540: 2 GiB zones, 1077 MiB capacity, 904 zones, 14 open/active; other options override it)" };
        var prealloc = new Option<bool>("--preallocate") { Description = "Allocate every block (like dd) instead of a sparse file (like truncate)" };
        var geometry = new GeometryOptions();
        var cmd = new Command("create", "Create a backstore file and its zone state (FILE.zns)") { file, size, prealloc, preset };
        geometry.AddTo(cmd);
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            var baseline = r.GetValue(preset) switch
            {
                null => new NamespaceOptions(),
                "zn540" => Zn540Preset.Geometry,
                var other => throw new UsageException($"--preset: unknown preset '{other}' (known: zn540)"),
            };
            string? sizeText = r.GetValue(size) ?? (r.GetValue(preset) is null ? null : Zn540Preset.Size.ToString(System.Globalization.CultureInfo.InvariantCulture));
            long bytes = sizeText is null ? throw new UsageException("--size: required (e.g. --size 32G), or give --preset") : ParseSize("--size", sizeText);
            var options = geometry.Apply(r, baseline);
            // Whatever create takes, the state file keeps: an option it could not keep is refused, not dropped.
            foreach (var (name, givenAs) in geometry.Given(r))
            {
                if (KeptOption.WhyNotKept(name, options) is { } why)
                {
                    throw new UsageException($"{givenAs}: {why}");
                }
            }
            var g = Validate(options, bytes);
            if (File.Exists(path))
            {
                throw new UsageException($"{path} already exists");
            }
            if (r.GetValue(prealloc))
            {
                AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"allocating {path}", maxValue: bytes);
                        FileBackstore.Create(path, bytes, preallocate: true, new Progress<long>(done => task.Value = done));
                        task.Value = bytes;
                    });
            }
            else
            {
                FileBackstore.Create(path, bytes, preallocate: false);
            }
            using (ZonedNamespace.OpenFile(path, options)) { }
            Console.WriteLine($"{path}: {Output.Summary(g)}");
            return 0;
        });
        return cmd;
    }

    /// <summary>Validates before anything is written; warns where Linux would refuse the namespace.</summary>
    public static ZoneGeometry Validate(NamespaceOptions options, long bytes)
    {
        ZoneGeometry g;
        try
        {
            options.Timing.Validate();
            g = ZoneGeometry.Create(options, bytes);
        }
        catch (OptionException e)
        {
            throw new UsageException($"{GeometryOptions.Describe(e.Option)}: {e.Reason}");
        }
        if (g.Zoned && !g.ZoneSizeIsPowerOfTwo)
        {
            Console.Error.WriteLine($"zns: warning: zone size {(long)g.ZoneSizeLbas * g.BlockSize} bytes is not a power of two: Linux will not attach this namespace");
        }
        return g;
    }

    public static long ParseSize(string option, string text)
    {
        try
        {
            return NamespaceOptions.ParseSize(option, text);
        }
        catch (OptionException e)
        {
            throw new UsageException(e.Message);
        }
    }

    private static (ZoneGeometry Geometry, ZoneInfo[] Zones) Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new UsageException($"{path}: no such file");
        }
        var stored = ZonedNamespace.ReadStoredZones(path);
        if (stored is not null)
        {
            return stored.Value;
        }
        // No state file (a plain raw image): every zone would start Empty, with the default geometry.
        var g = Validate(new NamespaceOptions(), new FileInfo(path).Length);
        var zones = new ZoneInfo[g.ZoneCount];
        for (uint i = 0; i < zones.Length; i++)
        {
            zones[i] = new ZoneInfo(i, g.ZoneStart(i), g.ZoneCapacityLbas, g.ZoneStart(i), ZoneState.Empty, ZoneAttributes.None);
        }
        return (g, zones);
    }

    private static (Argument<string> File, Option<string> Offset, Option<string> Count) RangeArgs(string what) =>
        (new Argument<string>("FILE") { Description = "Backstore file" },
         new Option<string>("--offset", "-o") { Description = $"Start sector (512-byte units) of the first zone to {what} (default 0)" },
         new Option<string>("--count", "-c") { Description = $"Number of zones to {what} (default: to the end)" });

    private static (uint First, uint Count) ZoneRange(ZoneGeometry g, ParseResult r, Option<string> offset, Option<string> count)
    {
        int shift = g.BlockShift - 9;
        ulong sector = ParseNumber("--offset", r.GetValue(offset) ?? "0");
        ulong zoneSectors = g.ZoneSizeLbas << shift;
        if (sector >= g.NamespaceSizeLbas << shift)
        {
            throw new UsageException($"--offset: {sector} is beyond the end of the namespace ({g.NamespaceSizeLbas << shift} sectors)");
        }
        uint first = (uint)(sector / zoneSectors);
        ulong n = r.GetValue(count) is { } c ? ParseNumber("--count", c) : g.ZoneCount - first;
        return (first, (uint)Math.Min(n, g.ZoneCount - first));
    }

    private static ulong ParseNumber(string option, string text)
    {
        string t = text.Trim();
        bool hex = t.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        if (ulong.TryParse(hex ? t[2..] : t, hex ? System.Globalization.NumberStyles.HexNumber : System.Globalization.NumberStyles.None, null, out ulong v))
        {
            return v;
        }
        throw new UsageException($"{option}: invalid number '{text}'");
    }

    public static Command Report()
    {
        var (file, offset, count) = RangeArgs("report");
        var cmd = new Command("report", "Print the zones as `blkzone report` does") { file, offset, count };
        cmd.SetAction(r =>
        {
            var (g, zones) = Load(r.GetValue(file)!);
            RequireZoned(g);
            var (first, n) = ZoneRange(g, r, offset, count);
            var stdout = Console.Out;
            for (uint i = first; i < first + n; i++)
            {
                stdout.WriteLine(Output.BlkzoneLine(g, zones[i]));
            }
            return 0;
        });
        return cmd;
    }

    public static Command Capacity()
    {
        var (file, offset, count) = RangeArgs("sum");
        var cmd = new Command("capacity", "Print the sum of zone capacities in 512-byte sectors, as `blkzone capacity` does") { file, offset, count };
        cmd.SetAction(r =>
        {
            var (g, zones) = Load(r.GetValue(file)!);
            RequireZoned(g);
            var (first, n) = ZoneRange(g, r, offset, count);
            ulong sum = n * (g.ZoneCapacityLbas << (g.BlockShift - 9));
            Console.WriteLine($"0x{sum:x9}");
            return 0;
        });
        return cmd;
    }

    public static Command Info()
    {
        var file = new Argument<string>("FILE") { Description = "Backstore file" };
        var cmd = new Command("info", "Show geometry, limits, how many zones are in each state, and every option the zone state file keeps") { file };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            var (g, zones) = Load(path);
            Output.Info(path, g, zones, ZonedNamespace.ReadKeptOptions(path));
            return 0;
        });
        return cmd;
    }

    public static Command Action(string name, ZoneSendAction action, string help)
    {
        var (file, offset, count) = RangeArgs(name);
        var all = new Option<bool>("--all", "-a") { Description = "Apply to all zones with Select All (the NVMe semantics: only zones in the states the action selects)" };
        var cmd = new Command(name, help) { file, offset, count, all };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            if (!File.Exists(path))
            {
                throw new UsageException($"{path}: no such file");
            }
            var stored = ZonedNamespace.ReadStoredOptions(path) ?? new NamespaceOptions();
            using var ns = OpenForChange(path, stored);
            RequireZoned(ns.Geometry);
            try
            {
                if (r.GetValue(all))
                {
                    if (r.GetValue(offset) is not null || r.GetValue(count) is not null)
                    {
                        throw new UsageException("--all: cannot be combined with --offset or --count");
                    }
                    Check(ns.ZoneManagementSend(0, action, selectAll: true), name, "all zones");
                }
                else
                {
                    var (first, n) = ZoneRange(ns.Geometry, r, offset, count);
                    ulong sector = ParseNumber("--offset", r.GetValue(offset) ?? "0");
                    ulong zoneSectors = ns.Geometry.ZoneSizeLbas << (ns.Geometry.BlockShift - 9);
                    if (sector % zoneSectors != 0)
                    {
                        throw new UsageException($"--offset: {sector} is not aligned to the zone size ({zoneSectors} sectors)");
                    }
                    for (uint i = first; i < first + n; i++)
                    {
                        Check(ns.ZoneManagementSend(ns.Geometry.ZoneStart(i), action, selectAll: false), name, $"zone {i} (sector 0x{ns.Geometry.ZoneStart(i) << (ns.Geometry.BlockShift - 9):x})");
                    }
                }
            }
            finally
            {
                ns.Detach();
            }
            return 0;
        });
        return cmd;
    }

    private static ZonedNamespace OpenForChange(string path, NamespaceOptions options)
    {
        try
        {
            return ZonedNamespace.OpenFile(path, options);
        }
        catch (NamespaceInUseException)
        {
            throw new UsageException($"{path}: in use by another zns process (stop `zns serve` first)");
        }
    }

    private static void Check(Zns.Nvme.NvmeStatus status, string action, string what)
    {
        if (!status.IsSuccess)
        {
            throw new ZoneActionException($"{action} {what} failed: {Output.StatusName(status)} ({status})");
        }
    }

    private static void RequireZoned(ZoneGeometry g)
    {
        if (!g.Zoned)
        {
            throw new UsageException("not a zoned namespace (zoned=off)");
        }
    }
}

/// <summary>A zone action the device refused: exit code 1.</summary>
internal sealed class ZoneActionException(string message) : Exception(message);

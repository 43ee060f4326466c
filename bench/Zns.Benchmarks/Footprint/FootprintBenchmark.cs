using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Zns.Benchmarks.Target;

namespace Zns.Benchmarks.Footprint;

/// <summary>
/// <c>footprint</c> mode: start-up time and memory of <c>zns serve</c> for several builds of the <c>zns</c> executable
/// (the JIT build and the NativeAOT build; bench/footprint/footprint.sh publishes both), side by side in one run.
/// Each start runs <c>zns serve ram:1G,zoned.zone_size=16M</c> on 127.0.0.1:0 with its control endpoint, the builds
/// alternating; the time is from starting the process to its listening line and to its last banner line (the control
/// endpoint up), the idle RSS is read after it has sat for a while. Under load the C NVMe/TCP client
/// (bench/client/zns-bench-client.c) writes and then reads 4 KiB blocks at QD 8, and the RSS is sampled throughout.
/// </summary>
internal static partial class FootprintBenchmark
{
    private const string Nqn = "nqn.2026-01.io.zns:subsys";
    private const int QueueDepth = 8;
    private static readonly string[] ServeArgs = ["serve", "ram:1G,zoned.zone_size=16M", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"];

    private sealed record Build(string Name, string Path);

    private sealed record Start(double ListenMs, double ReadyMs, long IdleRssKiB);

    private sealed record Load(string Kind, double OpsPerSecond, double TargetMicrosPerIo, long PeakRssKiB);

    public static async Task<int> RunAsync(string[] args)
    {
        var builds = new List<Build>();
        int starts = 7, rounds = 2;
        double idleSeconds = 2, loadSeconds = 4;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--build" when i + 1 < args.Length && args[i + 1].Split('=', 2) is [var name, var path]:
                    builds.Add(new Build(name, System.IO.Path.GetFullPath(path)));
                    i++;
                    break;
                case "--starts": starts = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--idle-seconds": idleSeconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--load-seconds": loadSeconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; usage: footprint --build NAME=PATH [--build NAME=PATH ...] [--starts 7] [--rounds 2] [--idle-seconds 2] [--load-seconds 4]");
                    return 2;
            }
        }
        if (builds.Count == 0)
        {
            Console.Error.WriteLine("footprint: give at least one --build NAME=PATH (a zns executable)");
            return 2;
        }
        string client = NativeClient.Build();
        string work = Directory.CreateTempSubdirectory("zns-footprint-").FullName;
        try
        {
            var startResults = builds.ToDictionary(b => b, _ => new List<Start>());
            for (int i = 0; i < starts; i++)
            {
                foreach (var b in Alternate(builds, i))
                {
                    startResults[b].Add(await StartOnceAsync(b, work, idleSeconds));
                }
            }
            var loadResults = builds.ToDictionary(b => b, _ => new List<Load>());
            for (int i = 0; i < rounds; i++)
            {
                foreach (var b in Alternate(builds, i))
                {
                    loadResults[b].AddRange(await LoadOnceAsync(b, work, client, loadSeconds));
                }
            }
            Print(builds, startResults, loadResults, starts, rounds, idleSeconds, loadSeconds);
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static IEnumerable<Build> Alternate(List<Build> builds, int i) => i % 2 == 0 ? builds : Enumerable.Reverse(builds);

    private static async Task<Start> StartOnceAsync(Build b, string work, double idleSeconds)
    {
        var sw = Stopwatch.StartNew();
        using var server = Serve(b, work);
        try
        {
            var (listen, ready, _) = await WaitForBannerAsync(server, sw);
            await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
            return new Start(listen, ready, Rss(server.Id).Rss);
        }
        finally
        {
            await StopAsync(server);
        }
    }

    private static async Task<List<Load>> LoadOnceAsync(Build b, string work, string client, double seconds)
    {
        using var server = Serve(b, work);
        var results = new List<Load>();
        try
        {
            var (_, _, port) = await WaitForBannerAsync(server, Stopwatch.StartNew());
            foreach (string kind in new[] { "Write", "Read" })
            {
                results.Add(await DriveAsync(server, client, port, kind, seconds));
            }
            return results;
        }
        finally
        {
            await StopAsync(server);
        }
    }

    private static async Task<Load> DriveAsync(Process server, string client, int port, string kind, double seconds)
    {
        var psi = new ProcessStartInfo(client, ["nvme", port.ToString(CultureInfo.InvariantCulture), Nqn, "1",
            seconds.ToString(CultureInfo.InvariantCulture), kind, "4096", QueueDepth.ToString(CultureInfo.InvariantCulture), "1"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var c = Process.Start(psi)!;
        var stderr = c.StandardError.ReadToEndAsync();
        long peak = 0;
        TimeSpan cpu0 = default;
        using var sampling = new CancellationTokenSource();
        Task? sampler = null;
        long ops = 0;
        double window = 0;
        while (await c.StandardOutput.ReadLineAsync() is { } line)
        {
            if (line == "START")
            {
                cpu0 = Cpu(server.Id);
                sampler = Task.Run(async () =>
                {
                    while (!sampling.IsCancellationRequested)
                    {
                        peak = Math.Max(peak, Rss(server.Id).Rss);
                        await Task.Delay(100, CancellationToken.None);
                    }
                });
            }
            else if (line.StartsWith("END ", StringComparison.Ordinal))
            {
                TimeSpan cpu1 = Cpu(server.Id);
                await sampling.CancelAsync();
                await sampler!;
                string[] p = line.Split(' ');
                ops = long.Parse(p[1], CultureInfo.InvariantCulture);
                window = double.Parse(p[2], CultureInfo.InvariantCulture);
                await c.WaitForExitAsync();
                if (c.ExitCode != 0 || ops == 0)
                {
                    break;
                }
                return new Load(kind, ops / window, (cpu1 - cpu0).TotalMicroseconds / ops, Math.Max(peak, Rss(server.Id).Rss));
            }
        }
        await c.WaitForExitAsync();
        throw new InvalidOperationException($"the C client ({kind}) failed with exit code {c.ExitCode} after {ops} I/Os: {await stderr}");
    }

    private static Process Serve(Build b, string work)
    {
        var psi = new ProcessStartInfo(b.Path, ServeArgs)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = work,
        };
        return Process.Start(psi)!;
    }

    // Milliseconds to "zns: serving ... on ADDR:PORT" and to "press Ctrl-C to stop" (after the control endpoint).
    private static async Task<(double ListenMs, double ReadyMs, int Port)> WaitForBannerAsync(Process server, Stopwatch sw)
    {
        double listen = 0;
        int port = 0;
        while (await server.StandardOutput.ReadLineAsync() is { } line)
        {
            if (ServingLine().Match(line) is { Success: true } m)
            {
                listen = sw.Elapsed.TotalMilliseconds;
                port = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("press Ctrl-C", StringComparison.Ordinal) && port != 0)
            {
                double ready = sw.Elapsed.TotalMilliseconds;
                _ = server.StandardOutput.ReadToEndAsync();
                _ = server.StandardError.ReadToEndAsync();
                return (listen, ready, port);
            }
        }
        throw new InvalidOperationException($"zns serve exited: {await server.StandardError.ReadToEndAsync()}");
    }

    private static async Task StopAsync(Process server)
    {
        if (!server.HasExited)
        {
            using var kill = Process.Start("kill", ["-TERM", server.Id.ToString(CultureInfo.InvariantCulture)])!;
            await kill.WaitForExitAsync();
        }
        await server.WaitForExitAsync();
    }

    private static (long Rss, long Peak) Rss(int pid)
    {
        long rss = 0, hwm = 0;
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                rss = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                hwm = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        return (rss, hwm);
    }

    private static TimeSpan Cpu(int pid)
    {
        using var p = Process.GetProcessById(pid);
        return p.TotalProcessorTime;
    }

    private static double Median(IEnumerable<double> values)
    {
        double[] v = [.. values.Order()];
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static void Print(List<Build> builds, Dictionary<Build, List<Start>> starts, Dictionary<Build, List<Load>> loads,
        int startCount, int rounds, double idleSeconds, double loadSeconds)
    {
        Console.WriteLine($"footprint: zns serve {string.Join(' ', ServeArgs[1..])}; {startCount} starts per build, alternating; " +
            $"idle RSS after {idleSeconds:0.#} s; load: C client 4 KiB Write then Read, QD {QueueDepth}, 1 connection, {loadSeconds:0.#} s each, {rounds} rounds");
        Console.WriteLine($".NET {Environment.Version}, {Environment.ProcessorCount} CPUs, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]} at the end");
        foreach (var b in builds)
        {
            Console.WriteLine($"  {b.Name}: {b.Path} ({new FileInfo(b.Path).Length / 1024.0 / 1024:0.0} MiB)");
        }
        Console.WriteLine();
        string[] kinds = ["Write", "Read"];
        var header = new List<string> { "build", "to listening ms", "to ready ms", "idle RSS MiB" };
        foreach (string k in kinds)
        {
            header.AddRange([$"{k} RSS MiB", $"{k} kIOPS", $"{k} target us/IO"]);
        }
        var rows = new List<string[]> { header.ToArray() };
        foreach (var b in builds)
        {
            var s = starts[b];
            var row = new List<string>
            {
                b.Name,
                Median(s.Select(x => x.ListenMs)).ToString("0", CultureInfo.InvariantCulture),
                Median(s.Select(x => x.ReadyMs)).ToString("0", CultureInfo.InvariantCulture),
                (Median(s.Select(x => (double)x.IdleRssKiB)) / 1024).ToString("0.0", CultureInfo.InvariantCulture),
            };
            foreach (string k in kinds)
            {
                var l = loads[b].Where(x => x.Kind == k).ToList();
                row.Add((l.Max(x => x.PeakRssKiB) / 1024.0).ToString("0.0", CultureInfo.InvariantCulture));
                row.Add((Median(l.Select(x => x.OpsPerSecond)) / 1000).ToString("0.0", CultureInfo.InvariantCulture));
                row.Add(Median(l.Select(x => x.TargetMicrosPerIo)).ToString("0.0", CultureInfo.InvariantCulture));
            }
            rows.Add(row.ToArray());
        }
        int[] widths = [.. Enumerable.Range(0, header.Count).Select(c => rows.Max(r => r[c].Length))];
        foreach (var r in rows)
        {
            Console.WriteLine(string.Join("  ", r.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))));
        }
        if (builds.Count == 2)
        {
            Console.WriteLine();
            var (a, z) = (builds[0], builds[1]);
            Console.WriteLine($"{z.Name}/{a.Name}: to listening {Median(starts[z].Select(x => x.ListenMs)) / Median(starts[a].Select(x => x.ListenMs)):0.00}, " +
                $"to ready {Median(starts[z].Select(x => x.ReadyMs)) / Median(starts[a].Select(x => x.ReadyMs)):0.00}, " +
                $"idle RSS {Median(starts[z].Select(x => (double)x.IdleRssKiB)) / Median(starts[a].Select(x => (double)x.IdleRssKiB)):0.00}, " +
                string.Join(", ", kinds.Select(k => $"{k} RSS {loads[z].Where(x => x.Kind == k).Max(x => x.PeakRssKiB) / (double)loads[a].Where(x => x.Kind == k).Max(x => x.PeakRssKiB):0.00}")));
        }
        Console.WriteLine($"RSS under load includes the RAM backstore written: the client's {QueueDepth} writers each fill their own 16 MiB zone, " +
            $"{QueueDepth * 16} MiB in all, the same for every build.");
    }

    [GeneratedRegex(@"serving \d+ namespaces? on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ServingLine();
}

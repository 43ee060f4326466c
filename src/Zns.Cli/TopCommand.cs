using System.CommandLine;
using System.Text;
using Spectre.Console;
using Zns.Control;

namespace Zns.Cli;

/// <summary>
/// <c>zns top</c>: a terminal view of a running <c>zns serve</c> refreshed each second from <c>/api/history</c>,
/// <c>/api/stats</c> and <c>/api/faults</c>; <c>q</c> quits, <c>--once</c> prints one frame.
/// </summary>
internal static class TopCommand
{
    public static readonly TimeSpan Refresh = TimeSpan.FromSeconds(1);

    public static Command Create()
    {
        var nsid = new Option<uint?>("--nsid", "-n") { Description = "One namespace (default: all of them summed)" };
        var once = new Option<bool>("--once") { Description = "Print one frame and exit" };
        var cmd = new Command("top", "A live view of a running zns serve: IOPS, MB/s, latency percentiles, zones per condition, resets, faults (q quits)") { nsid, once };
        var endpoint = ControlCommands.AddEndpoint(cmd);
        cmd.SetAction(async (r, ct) =>
        {
            using var client = endpoint.Client(r);
            string shown = r.GetValue(endpoint.Control)!;
            uint? ns = r.GetValue(nsid);
            Console.OutputEncoding = Encoding.UTF8;
            TopFrame frame = await FetchAsync(client, shown, ns, ct);
            if (r.GetValue(once))
            {
                var console = AnsiConsole.Create(new AnsiConsoleSettings
                {
                    Out = new AnsiConsoleOutput(Console.Out),
                    Ansi = Console.IsOutputRedirected ? AnsiSupport.No : AnsiSupport.Detect,
                    ColorSystem = Console.IsOutputRedirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
                });
                console.Profile.Capabilities.Unicode = true;
                if (Console.IsOutputRedirected)
                {
                    console.Profile.Width = TopView.Width;
                }
                console.Write(TopView.Render(frame));
                return 0;
            }
            AnsiConsole.Profile.Capabilities.Unicode = true;
            await AnsiConsole.Live(TopView.Render(frame, live: true)).AutoClear(false).Overflow(VerticalOverflow.Crop).StartAsync(async live =>
            {
                while (!ct.IsCancellationRequested)
                {
                    var until = DateTime.UtcNow + Refresh;
                    while (DateTime.UtcNow < until)
                    {
                        if (QuitPressed())
                        {
                            return;
                        }
                        await Task.Delay(50, ct);
                    }
                    frame = await FetchAsync(client, shown, ns, ct);
                    live.UpdateTarget(TopView.Render(frame, live: true));
                }
            });
            return 0;
        });
        return cmd;
    }

    private static bool QuitPressed()
    {
        if (Console.IsInputRedirected)
        {
            return false;
        }
        while (Console.KeyAvailable)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.KeyChar is 'q' or 'Q' || (key.Key == ConsoleKey.C && key.Modifiers.HasFlag(ConsoleModifiers.Control)))
            {
                return true;
            }
        }
        return false;
    }

    private static async Task<TopFrame> FetchAsync(ControlClient client, string shown, uint? nsid, CancellationToken ct)
    {
        string query = nsid is { } n ? $"api/history?seconds={TopView.Seconds}&nsid={n}" : $"api/history?seconds={TopView.Seconds}";
        var history = await client.GetAsync(query, ControlJson.Default.HistoryDto, ct);
        var stats = await client.GetAsync("api/stats", ControlJson.Default.StatsDto, ct);
        var faults = await client.GetAsync("api/faults", ControlJson.Default.FaultsDto, ct);
        return new TopFrame(shown, nsid, DateTimeOffset.Now, history, stats, faults);
    }
}

/// <summary>What one frame of <c>zns top</c> shows.</summary>
internal sealed record TopFrame(string Control, uint? Nsid, DateTimeOffset At, HistoryDto History, StatsDto Stats, FaultsDto Faults);

using System.Text.Json;
using System.Text.RegularExpressions;
using static Zns.Control.Tests.ControlFixture;

namespace Zns.Control.Tests;

/// <summary>/metrics in Prometheus text, /api/stats, the zone map page and its event stream.</summary>
public sealed class MetricsAndMapTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static double Sample(string metrics, string pattern)
    {
        var m = Regex.Match(metrics, "^" + pattern + @" ([0-9.e+-]+)", RegexOptions.Multiline);
        Assert.True(m.Success, $"no sample matching {pattern}");
        return double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Metrics_CountIo_Errors_Zones_AndConnections()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        for (int i = 0; i < 5; i++)
        {
            Assert.True((await f.Io.WriteAsync(1, (ulong)i, 1, Pattern(BlockSize, 1), Ct)).Status.IsSuccess);
        }
        Assert.True((await f.Io.ReadAsync(1, 0, 2, new byte[2 * BlockSize], Ct)).Status.IsSuccess);
        await f.OkAsync(HttpMethod.Post, "api/namespaces/1/zones/9/offline");
        Assert.False((await f.Io.ReadAsync(1, 9 * ZoneLbas, 1, new byte[BlockSize], Ct)).Status.IsSuccess);

        string metrics = await f.OkAsync(HttpMethod.Get, "metrics");
        Assert.Contains("# TYPE zns_io_duration_seconds histogram", metrics);
        Assert.True(Sample(metrics, @"zns_io_commands_total\{[^}]*nsid=""1""[^}]*op=""write""[^}]*\}") >= 5);
        Assert.True(Sample(metrics, @"zns_io_bytes_total\{[^}]*nsid=""1""[^}]*op=""write""[^}]*\}") >= 5 * BlockSize);
        Assert.True(Sample(metrics, @"zns_io_errors_total\{[^}]*status=""zone_is_offline""[^}]*\}") >= 1);
        Assert.True(Sample(metrics, @"zns_io_duration_seconds_count\{[^}]*op=""read""[^}]*\}") >= 2);
        Assert.Equal(1, Sample(metrics, @"zns_zones\{[^}]*condition=""offline""[^}]*nsid=""1""[^}]*\}"));
        Assert.True(Sample(metrics, @"zns_connections\{[^}]*\}") >= 2);

        using var stats = JsonDocument.Parse(await f.OkAsync(HttpMethod.Get, "api/stats"));
        var ns = stats.RootElement.GetProperty("namespaces")[0];
        Assert.Equal(5, ns.GetProperty("writes").GetInt64());
        Assert.Equal(5 * BlockSize, ns.GetProperty("writtenBytes").GetInt64());
        Assert.Equal(2, ns.GetProperty("reads").GetInt64());
        Assert.Equal(1, ns.GetProperty("errors").GetProperty("zone_is_offline").GetInt64());
        Assert.Equal(1, stats.RootElement.GetProperty("queues").GetInt32());
        Assert.Equal(1, ns.GetProperty("conditions").GetProperty("offline").GetInt32());
    }

    [Fact]
    public async Task MapPage_IsServed_AndItsStreamSendsAFullSnapshotThenChangedZones()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        string page = await f.OkAsync(HttpMethod.Get, "");
        Assert.Contains("zns zone map", page);
        Assert.Contains("EventSource", page);

        using var stream = await f.Http.GetStreamAsync("api/namespaces/1/map", Ct);
        using var reader = new StreamReader(stream);
        async Task<JsonElement> NextAsync()
        {
            string? line;
            while ((line = await reader.ReadLineAsync(Ct)) is not null && !line.StartsWith("data: ", StringComparison.Ordinal))
            {
            }
            Assert.NotNull(line);
            return JsonDocument.Parse(line[6..]).RootElement;
        }
        var first = await NextAsync();
        Assert.True(first.GetProperty("full").GetBoolean());
        Assert.Equal(16, first.GetProperty("cells").GetArrayLength());

        Assert.True((await f.Io.WriteAsync(1, 4 * ZoneLbas, 32, Pattern(32 * BlockSize, 1), Ct)).Status.IsSuccess);
        var next = await NextAsync();
        Assert.False(next.GetProperty("full").GetBoolean());
        var cell = next.GetProperty("cells")[0];
        Assert.Equal(4, cell[0].GetInt32());
        Assert.Equal(2, cell[1].GetInt32());      // implicitly opened
        Assert.Equal(125, cell[2].GetInt32());    // an eighth written
        Assert.Equal(1, cell[5].GetInt32());      // one write command
    }
}

using System.Text.Json;
using Zns.Core.Zones;
using static Zns.Control.Tests.ControlFixture;

namespace Zns.Control.Tests;

/// <summary>The zone map stream of a namespace with thousands of zones: a compact first snapshot, then only the zones that changed.</summary>
public sealed class LargeMapTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_4096_zone_namespace_streams_a_compact_snapshot_then_only_changed_zones()
    {
        // 64 GiB of RAM backstore in 16 MiB zones: sparse, nothing is allocated until written.
        var ns = ZonedNamespace.CreateInMemory(64L << 30, new NamespaceOptions { ZoneSize = 16 << 20, Mdts = 5 });
        await using var f = await StartAsync(ns: ns);
        await f.ConnectAsync();
        const int Zones = 4096;
        const ulong LargeZoneLbas = (16 << 20) / BlockSize;

        using var stream = await f.Http.GetStreamAsync("api/namespaces/1/map", Ct);
        using var reader = new StreamReader(stream);
        async Task<(JsonElement Update, int Bytes)> NextAsync()
        {
            string? line;
            while ((line = await reader.ReadLineAsync(Ct)) is not null && !line.StartsWith("data: ", StringComparison.Ordinal))
            {
            }
            Assert.NotNull(line);
            return (JsonDocument.Parse(line[6..]).RootElement, line.Length);
        }

        var (first, bytes) = await NextAsync();
        Assert.True(first.GetProperty("full").GetBoolean());
        Assert.Equal(Zones, first.GetProperty("zones").GetInt32());
        Assert.Equal(Zones, first.GetProperty("cells").GetArrayLength());
        Assert.True(bytes < Zones * 32, $"full snapshot {bytes} bytes for {Zones} zones");

        Assert.True((await f.Io.WriteAsync(1, 4000 * LargeZoneLbas, 8, Pattern(8 * BlockSize, 1), Ct)).Status.IsSuccess);
        var (next, _) = await NextAsync();
        Assert.False(next.GetProperty("full").GetBoolean());
        var cells = next.GetProperty("cells");
        Assert.Equal(1, cells.GetArrayLength());
        Assert.Equal(4000, cells[0][0].GetInt32());
        Assert.Equal(2, cells[0][1].GetInt32());  // implicitly opened
        Assert.Equal(1, cells[0][2].GetInt32());  // 8 of 4096 blocks: 1 ‰
        Assert.Equal(1, cells[0][5].GetInt32());  // one write command

        // A media error over the last 3 zones marks exactly those.
        await f.OkAsync(HttpMethod.Post, "api/faults", $$"""{"mediaErrors":[{"lba":{{(Zones - 3) * (long)LargeZoneLbas}},"blocks":{{3 * LargeZoneLbas}},"on":"read"}]}""");
        (next, _) = await NextAsync();
        cells = next.GetProperty("cells");
        Assert.Equal([Zones - 3, Zones - 2, Zones - 1], cells.EnumerateArray().Select(c => c[0].GetInt32()));
        Assert.All(cells.EnumerateArray(), c => Assert.Equal(1, c[6].GetInt32()));
    }

    [Fact]
    public async Task Updates_of_many_zones_are_spaced_by_the_rate_bound()
    {
        // 65,536 zones: every update that changes all of them holds the next one back for about a second.
        var ns = ZonedNamespace.CreateInMemory(1L << 40, new NamespaceOptions { ZoneSize = 16 << 20 });
        await using var f = await StartAsync(ns: ns);
        const int Zones = 65536;
        using var stream = await f.Http.GetStreamAsync("api/namespaces/1/map", Ct);
        using var reader = new StreamReader(stream);
        // Each update's arrival time is taken when its line has been read, before the (slow) parse of 65,536 cells,
        // so the time between two arrivals is not shortened by the client's own work on the first.
        async Task<(int Cells, long ArrivedAt)> NextAsync()
        {
            string? line;
            while ((line = await reader.ReadLineAsync(Ct)) is not null && !line.StartsWith("data: ", StringComparison.Ordinal))
            {
            }
            long arrivedAt = System.Diagnostics.Stopwatch.GetTimestamp();
            Assert.NotNull(line);
            return (JsonDocument.Parse(line[6..]).RootElement.GetProperty("cells").GetArrayLength(), arrivedAt);
        }

        Assert.Equal(Zones, (await NextAsync()).Cells);
        await f.OkAsync(HttpMethod.Post, "api/faults", $$"""{"mediaErrors":[{"lba":0,"blocks":{{ns.Geometry.NamespaceSizeLbas}},"on":"read"}]}""");
        var first = await NextAsync();
        Assert.Equal(Zones, first.Cells);
        await f.OkAsync(HttpMethod.Delete, "api/faults");
        var second = await NextAsync();
        Assert.Equal(Zones, second.Cells);
        double seconds = System.Diagnostics.Stopwatch.GetElapsedTime(first.ArrivedAt, second.ArrivedAt).TotalSeconds;
        double bound = (double)Zones / ControlRoutes.MapRowsPerSecond - ControlRoutes.MapInterval.TotalSeconds;
        // The server's wait starts when the first update is flushed; the client may finish reading that update's
        // buffered tail somewhat later, hence the margin (without the bound the next update would come after one
        // MapInterval, 0.25 s, well below bound - margin).
        Assert.True(seconds >= bound - 0.15, $"next update of every zone after {seconds:0.00} s, bound {bound:0.00} s");
    }
}

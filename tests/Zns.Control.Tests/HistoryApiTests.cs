using System.Net;
using System.Text.Json;
using Zns.Core.Zones;
using Zns.Nvme;
using static Zns.Control.Tests.ControlFixture;

namespace Zns.Control.Tests;

/// <summary><c>GET /api/history</c> (ticked by hand, no waiting) and the zone detail's recent commands and descriptor extension.</summary>
public sealed class HistoryApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<JsonElement> JsonAsync(ControlFixture f, string path) =>
        JsonDocument.Parse(await f.OkAsync(HttpMethod.Get, path)).RootElement;

    [Fact]
    public async Task History_has_one_sample_per_tick_with_the_rates_percentiles_and_zone_counts_of_what_was_done()
    {
        await using var f = await StartAsync(historyTimer: false);
        await f.ConnectAsync();
        const long T0 = 1_700_000_000_000;
        f.Service.Sampler.Tick(T0); // the baseline

        for (int i = 0; i < 5; i++)
        {
            Assert.True((await f.Io.WriteAsync(1, (ulong)i, 1, Pattern(BlockSize, 1), Ct)).Status.IsSuccess);
        }
        for (int i = 0; i < 3; i++)
        {
            Assert.True((await f.Io.ReadAsync(1, 0, 2, new byte[2 * BlockSize], Ct)).Status.IsSuccess);
        }
        Assert.True((await f.Io.ZoneAppendAsync(1, 3 * ZoneLbas, 4, Pattern(4 * BlockSize, 2), Ct)).Status.IsSuccess);
        f.Service.Sampler.Tick(T0 + 1000);

        Assert.True((await f.Io.ZoneManagementSendAsync(1, 2 * ZoneLbas, (byte)ZoneSendAction.Finish, cancellationToken: Ct)).Status.IsSuccess);
        Assert.True((await f.Io.ZoneManagementSendAsync(1, 0, (byte)ZoneSendAction.Reset, cancellationToken: Ct)).Status.IsSuccess);
        f.Service.Sampler.Tick(T0 + 2000);
        // Two seconds without a tick: the rates are per second of the time between ticks.
        for (int i = 0; i < 4; i++)
        {
            Assert.True((await f.Io.WriteAsync(1, ZoneLbas + (ulong)i, 1, Pattern(BlockSize, 3), Ct)).Status.IsSuccess);
        }
        f.Service.Sampler.Tick(T0 + 4000);

        string raw = await f.OkAsync(HttpMethod.Get, "api/history");
        Assert.StartsWith("{\"intervalMs\":1000,\"nsid\":null,\"samples\":[{\"t\":", raw);
        var all = JsonDocument.Parse(raw).RootElement;
        var samples = all.GetProperty("samples");
        Assert.Equal(3, samples.GetArrayLength());
        var s0 = samples[0];
        Assert.Equal(
            ["t", "readIops", "writeIops", "readMBps", "writeMBps", "p50Us", "p99Us", "p999Us", "resetsPerSec", "finishesPerSec", "zones"],
            s0.EnumerateObject().Select(p => p.Name).ToArray());
        Assert.Equal(
            ["empty", "implicitlyOpen", "explicitlyOpen", "closed", "full", "readOnly", "offline"],
            s0.GetProperty("zones").EnumerateObject().Select(p => p.Name).ToArray());
        Assert.Equal(T0 + 1000, s0.GetProperty("t").GetInt64());
        Assert.Equal(3, s0.GetProperty("readIops").GetDouble());
        Assert.Equal(6, s0.GetProperty("writeIops").GetDouble()); // 5 writes and an append
        Assert.Equal(3 * 2 * BlockSize / 1e6, s0.GetProperty("readMBps").GetDouble(), 9);
        Assert.Equal(9 * BlockSize / 1e6, s0.GetProperty("writeMBps").GetDouble(), 9);
        double p50 = s0.GetProperty("p50Us").GetDouble(), p99 = s0.GetProperty("p99Us").GetDouble(), p999 = s0.GetProperty("p999Us").GetDouble();
        Assert.True(p50 > 0 && p50 <= p99 && p99 <= p999, $"p50 {p50} p99 {p99} p99.9 {p999}");
        Assert.Equal(0, s0.GetProperty("resetsPerSec").GetDouble());
        var z0 = s0.GetProperty("zones");
        Assert.Equal(2, z0.GetProperty("implicitlyOpen").GetInt32());
        Assert.Equal(14, z0.GetProperty("empty").GetInt32());

        var s1 = samples[1];
        Assert.Equal(0, s1.GetProperty("writeIops").GetDouble());
        Assert.Equal(0, s1.GetProperty("readIops").GetDouble());
        Assert.Equal(1, s1.GetProperty("resetsPerSec").GetDouble());
        Assert.Equal(1, s1.GetProperty("finishesPerSec").GetDouble());
        Assert.True(s1.GetProperty("p50Us").GetDouble() > 0); // the two zone commands
        var z1 = s1.GetProperty("zones");
        Assert.Equal(1, z1.GetProperty("implicitlyOpen").GetInt32()); // zone 3
        Assert.Equal(1, z1.GetProperty("full").GetInt32());           // zone 2
        Assert.Equal(14, z1.GetProperty("empty").GetInt32());         // zone 0 reset

        var s2 = samples[2];
        Assert.Equal(T0 + 4000, s2.GetProperty("t").GetInt64());
        Assert.Equal(2, s2.GetProperty("writeIops").GetDouble());
        Assert.Equal(0, s2.GetProperty("resetsPerSec").GetDouble());
        // Every write of the window, once: rate × seconds of its sample.
        long previous = T0;
        double writes = 0;
        foreach (var s in samples.EnumerateArray())
        {
            long t = s.GetProperty("t").GetInt64();
            writes += s.GetProperty("writeIops").GetDouble() * (t - previous) / 1000.0;
            previous = t;
        }
        Assert.Equal(10, writes);

        var one = await JsonAsync(f, "api/history?nsid=1&seconds=2");
        Assert.Equal(1, one.GetProperty("nsid").GetInt32());
        Assert.Equal(1, one.GetProperty("samples").GetArrayLength()); // the sample at T0+2000 is 2 s older than the newest
        Assert.Equal(T0 + 4000, one.GetProperty("samples")[0].GetProperty("t").GetInt64());
        var perNs = await JsonAsync(f, "api/history?nsid=1");
        Assert.Equal(all.GetProperty("samples").ToString(), perNs.GetProperty("samples").ToString());
    }

    [Fact]
    public async Task History_without_a_tick_is_empty_and_the_endpoint_ticks_by_itself()
    {
        await using (var f = await StartAsync(historyTimer: false))
        {
            var h = await JsonAsync(f, "api/history");
            Assert.Equal(0, h.GetProperty("samples").GetArrayLength());
        }
        await using var live = await StartAsync();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        JsonElement samples;
        do
        {
            await Task.Delay(200, Ct);
            samples = (await JsonAsync(live, "api/history?seconds=600")).GetProperty("samples");
        }
        while (samples.GetArrayLength() == 0 && DateTime.UtcNow < deadline);
        Assert.True(samples.GetArrayLength() > 0, "no sample after 10 s");
        long t = samples[0].GetProperty("t").GetInt64();
        Assert.InRange(t, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 15_000, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        Assert.Equal(16, samples[0].GetProperty("zones").GetProperty("empty").GetInt32());
    }

    [Theory]
    [InlineData("seconds=0", "seconds:")]
    [InlineData("seconds=601", "seconds:")]
    [InlineData("seconds=abc", "seconds:")]
    [InlineData("seconds=-5", "seconds:")]
    [InlineData("seconds=", "seconds:")]
    [InlineData("seconds=10&seconds=20", "seconds:")]
    [InlineData("nsid=0", "nsid:")]
    [InlineData("nsid=2", "nsid:")]
    [InlineData("nsid=one", "nsid:")]
    public async Task History_refuses_bad_query_values_naming_the_field(string query, string field)
    {
        await using var f = await StartAsync(historyTimer: false);
        var (status, body) = await f.SendAsync(HttpMethod.Get, "api/history?" + query);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.StartsWith(field, ErrorOf(body));
    }

    [Fact]
    public async Task Zone_lists_its_recent_commands_in_order_with_their_statuses()
    {
        await using var f = await StartAsync(historyTimer: false);
        await f.ConnectAsync();
        long before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.True((await f.Io.WriteAsync(1, 0, 2, Pattern(2 * BlockSize, 1), Ct)).Status.IsSuccess);
        Assert.True((await f.Io.ReadAsync(1, 1, 1, new byte[BlockSize], Ct)).Status.IsSuccess);
        Assert.True((await f.Io.ZoneAppendAsync(1, 0, 3, Pattern(3 * BlockSize, 2), Ct)).Status.IsSuccess);
        Assert.False((await f.Io.WriteAsync(1, 10, 1, Pattern(BlockSize, 3), Ct)).Status.IsSuccess); // not at the write pointer
        Assert.True((await f.Io.ZoneManagementSendAsync(1, 0, (byte)ZoneSendAction.Reset, cancellationToken: Ct)).Status.IsSuccess);
        Assert.True((await f.Io.WriteAsync(1, ZoneLbas, 1, Pattern(BlockSize, 4), Ct)).Status.IsSuccess); // zone 1
        long after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        var zone = await JsonAsync(f, "api/namespaces/1/zones/0");
        Assert.Equal(JsonValueKind.Null, zone.GetProperty("descriptorExtension").ValueKind);
        var recent = zone.GetProperty("recent").EnumerateArray().ToArray();
        Assert.Equal(["write", "read", "append", "write", "reset"], recent.Select(r => r.GetProperty("op").GetString()).ToArray());
        Assert.Equal(["success", "success", "success", "zone_invalid_write", "success"], recent.Select(r => r.GetProperty("status").GetString()).ToArray());
        Assert.Equal([0ul, 1, 0, 10, 0], recent.Select(r => r.GetProperty("slba").GetUInt64()).ToArray());
        Assert.Equal([2u, 1, 3, 1, 0], recent.Select(r => r.GetProperty("blocks").GetUInt32()).ToArray());
        Assert.Equal(["t", "op", "slba", "blocks", "status"], recent[0].EnumerateObject().Select(p => p.Name).ToArray());
        long[] times = [.. recent.Select(r => r.GetProperty("t").GetInt64())];
        Assert.All(times, t => Assert.InRange(t, before - 50, after + 50));
        Assert.Equal(times.Order(), times);

        var z1 = (await JsonAsync(f, "api/namespaces/1/zones/1")).GetProperty("recent");
        Assert.Equal(1, z1.GetArrayLength());
        Assert.Equal(0, (await JsonAsync(f, "api/namespaces/1/zones/2")).GetProperty("recent").GetArrayLength());

        // The ring keeps the last 16.
        for (int i = 0; i < 20; i++)
        {
            Assert.True((await f.Io.WriteAsync(1, 2 * ZoneLbas + (ulong)i, 1, Pattern(BlockSize, 5), Ct)).Status.IsSuccess);
        }
        var z2 = (await JsonAsync(f, "api/namespaces/1/zones/2")).GetProperty("recent").EnumerateArray().ToArray();
        Assert.Equal(16, z2.Length);
        Assert.Equal(Enumerable.Range(4, 16).Select(i => 2 * ZoneLbas + (ulong)i), z2.Select(r => r.GetProperty("slba").GetUInt64()));
    }

    [Fact]
    public async Task Zone_shows_its_descriptor_extension_in_hex()
    {
        var ns = ZonedNamespace.CreateInMemory(16 << 20, new NamespaceOptions { ZoneSize = 1 << 20, Mdts = 5, DescriptorExtensionSize = 64 });
        await using var f = await StartAsync(ns: ns, historyTimer: false);
        await f.ConnectAsync();
        Assert.Equal(new string('0', 128), (await JsonAsync(f, "api/namespaces/1/zones/3")).GetProperty("descriptorExtension").GetString());
        byte[] extension = Pattern(64, 9);
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(IoOpcode.ZoneManagementSend);
        sqe.SetNamespaceId(1);
        sqe.SetCdw10_11(3 * ZoneLbas);
        sqe.SetCdw(13, (uint)ZoneSendAction.SetDescriptorExtension);
        Assert.True((await f.Io.SubmitAsync(sqe, extension, cancellationToken: Ct)).Status.IsSuccess);
        var zone = await JsonAsync(f, "api/namespaces/1/zones/3");
        Assert.Equal(Convert.ToHexStringLower(extension), zone.GetProperty("descriptorExtension").GetString());
        Assert.Equal("set_zde", zone.GetProperty("recent")[0].GetProperty("op").GetString());
    }
}

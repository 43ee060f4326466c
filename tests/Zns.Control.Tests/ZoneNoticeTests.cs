using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using static Zns.Control.Tests.ControlFixture;

namespace Zns.Control.Tests;

/// <summary>Zone attributes, the Changed Zone List (LID BFh) and the Zone Descriptor Changed event.</summary>
public sealed class ZoneNoticeTests
{
    private const byte ChangedZoneList = 0xBF;
    private const byte ZonedCsi = 2;
    private const uint ZoneDescriptorChangedEvent = 0x00BF_EF02;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(ushort Count, ulong[] Ids)> ReadChangedZonesAsync(ControlFixture f, bool rae = false)
    {
        var page = new byte[4096];
        var c = await f.Admin.SubmitAsync(GetLogPage(ChangedZoneList, 4096, 1, ZonedCsi, rae), readBuffer: page, cancellationToken: Ct);
        Assert.True(c.Status.IsSuccess, c.Status.ToString());
        ushort n = BinaryPrimitives.ReadUInt16LittleEndian(page);
        int listed = n == 0xFFFF ? 0 : n;
        return (n, [.. Enumerable.Range(0, listed).Select(i => BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(8 + 8 * i)))]);
    }

    [Fact]
    public async Task ZoneChanges_CompleteTheEnabledAer_AndAreListedOnceInTheChangedZoneList()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        Assert.True((await f.Admin.SetFeaturesAsync(0x0B, 1u << 27, Ct)).Status.IsSuccess);
        var aer = f.Admin.SubmitAsync(AdminCommand(AdminOpcode.AsyncEventRequest), cancellationToken: Ct);
        await Task.Delay(100, Ct);
        Assert.False(aer.IsCompleted);

        await f.OkAsync(HttpMethod.Post, "api/namespaces/1/zones/3/offline");
        var done = await aer.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.True(done.Status.IsSuccess);
        Assert.Equal(ZoneDescriptorChangedEvent, (uint)done.Result);

        // Masked until the log is read: a second change queues no second event yet.
        var aer2 = f.Admin.SubmitAsync(AdminCommand(AdminOpcode.AsyncEventRequest), cancellationToken: Ct);
        await f.OkAsync(HttpMethod.Post, "api/namespaces/1/zones/5/readonly");
        await Task.Delay(200, Ct);
        Assert.False(aer2.IsCompleted);

        var (n, ids) = await ReadChangedZonesAsync(f, rae: true);
        Assert.Equal(2, n);
        Assert.Equal(new ulong[] { 3 * ZoneLbas, 5 * ZoneLbas }, ids);
        Assert.Equal(2, (await ReadChangedZonesAsync(f)).Count);
        Assert.Equal(0, (await ReadChangedZonesAsync(f)).Count);

        // Read without RAE: unmasked, so the next change completes the parked AER.
        await f.OkAsync(HttpMethod.Post, "api/namespaces/1/zones/6/finish");
        Assert.Equal(ZoneDescriptorChangedEvent, (uint)(await aer2.WaitAsync(TimeSpan.FromSeconds(10), Ct)).Result);
        Assert.Equal(new ulong[] { 6 * ZoneLbas }, (await ReadChangedZonesAsync(f)).Ids);
        var z = f.Namespace.GetZone(6);
        Assert.Equal(ZoneState.Full, z.State);
        Assert.Equal(ZoneAttributes.FinishedByController, z.Attributes);
    }

    [Fact]
    public async Task WithoutAec27_TheListFillsButNoEventIsSent()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        var aer = f.Admin.SubmitAsync(AdminCommand(AdminOpcode.AsyncEventRequest), cancellationToken: Ct);
        await f.OkAsync(HttpMethod.Post, "api/namespaces/1/zones/2/offline");
        await Task.Delay(200, Ct);
        Assert.False(aer.IsCompleted);
        Assert.Equal(new ulong[] { 2 * ZoneLbas }, (await ReadChangedZonesAsync(f)).Ids);
    }

    [Fact]
    public async Task MoreThan511ChangedZones_ReportFFFFh()
    {
        var ns = ZonedNamespace.CreateInMemory(1024L << 20, new NamespaceOptions { ZoneSize = 1 << 20 });
        await using var f = await StartAsync(ns: ns);
        await f.ConnectAsync();
        for (uint z = 0; z < 512; z++)
        {
            Assert.True(ns.MakeZoneOffline(z).IsSuccess);
        }
        var (n, ids) = await ReadChangedZonesAsync(f);
        Assert.Equal(0xFFFF, n);
        Assert.Empty(ids);
        Assert.Equal(0, (await ReadChangedZonesAsync(f)).Count);
        Assert.True(ns.MakeZoneOffline(600).IsSuccess);
        Assert.Equal(new ulong[] { 600UL * 256 }, (await ReadChangedZonesAsync(f)).Ids);
    }

    [Fact]
    public async Task Recommendations_FromTheApi_ShowInTheReport_AndAResetClearsThem()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        Assert.True((await f.Io.WriteAsync(1, 0, 1, Pattern(BlockSize, 1), Ct)).Status.IsSuccess);
        await f.OkAsync(HttpMethod.Post, "api/namespaces/1/zones/0/finish-recommended");
        string body = await f.OkAsync(HttpMethod.Post, "api/namespaces/1/zones/0/reset-recommended");
        Assert.Contains("\"attributes\":[\"fzr\",\"rzr\"]", body);
        var report = new byte[64 + 64];
        Assert.True((await f.Io.ZoneManagementReceiveAsync(1, 0, report, cancellationToken: Ct)).Status.IsSuccess);
        Assert.Equal(0x06, report[64 + 2]);
        var (s, _) = await f.SendAsync(HttpMethod.Post, "api/namespaces/1/zones/1/finish-recommended");
        Assert.Equal(System.Net.HttpStatusCode.Conflict, s);

        Assert.True((await f.Io.ZoneManagementSendAsync(1, 0, (byte)ZoneSendAction.Reset, cancellationToken: Ct)).Status.IsSuccess);
        Assert.Equal(ZoneAttributes.None, f.Namespace.GetZone(0).Attributes);
        Assert.Equal(new ulong[] { 0UL }, (await ReadChangedZonesAsync(f)).Ids);
    }

    [Fact]
    public async Task HealthPolicy_SetsFzrAfterTheDelay_ThenFinishesTheZoneAfterFrl_AndIdentifyReportsTheLimits()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        await f.OkAsync(HttpMethod.Put, "api/namespaces/1/health", """{"finishRecommendedAfterMs":200,"resetRecommendedAfterMs":200,"frl":1,"rrl":7}""");
        var id = new byte[4096];
        var sqe = AdminCommand(AdminOpcode.Identify, 1);
        sqe.SetCdw(10, 0x05);
        sqe.SetCdw(11, (uint)ZonedCsi << 24);
        Assert.True((await f.Admin.SubmitAsync(sqe, readBuffer: id, cancellationToken: Ct)).Status.IsSuccess);
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(12)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(16)));

        Assert.True((await f.Io.WriteAsync(1, 0, 1, Pattern(BlockSize, 1), Ct)).Status.IsSuccess);
        await WaitForAsync(() => (f.Namespace.GetZone(0).Attributes & ZoneAttributes.FinishRecommended) != 0, "FZR");
        Assert.Equal(ZoneState.ImplicitlyOpened, f.Namespace.GetZone(0).State);
        await WaitForAsync(() => f.Namespace.GetZone(0).State == ZoneState.Full, "finished by the controller after FRL");
        Assert.True((f.Namespace.GetZone(0).Attributes & ZoneAttributes.FinishedByController) != 0);
        Assert.True((f.Namespace.GetZone(0).Attributes & ZoneAttributes.FinishRecommended) == 0);
        await WaitForAsync(() => (f.Namespace.GetZone(0).Attributes & ZoneAttributes.ResetRecommended) != 0, "RZR on the Full zone");
        var (_, ids) = await ReadChangedZonesAsync(f);
        Assert.Equal(new ulong[] { 0UL }, ids);

        var (s, b) = await f.SendAsync(HttpMethod.Put, "api/namespaces/1/health", """{"frl":-1}""");
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, s);
        Assert.StartsWith("frl:", ErrorOf(b));
    }

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(50, Ct);
        }
    }
}

using System.Net;
using System.Text.Json;
using Zns.Nvme;
using Zns.Core.Zones;
using static Zns.Control.Tests.ControlFixture;

namespace Zns.Control.Tests;

/// <summary>Zones made Read Only / Offline through the API, seen by a host over NVMe/TCP.</summary>
public sealed class ZoneFaultApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OfflineZone_FailsEveryAccessWithZoneIsOffline_AndTheReportShowsIt()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        Assert.True((await f.Io.WriteAsync(1, 2 * ZoneLbas, 2, Pattern(2 * BlockSize, 1), Ct)).Status.IsSuccess);

        string body = await f.OkAsync(HttpMethod.Post, "api/namespaces/1/zones/2/offline");
        using (var doc = JsonDocument.Parse(body))
        {
            Assert.Equal("offline", doc.RootElement.GetProperty("condition").GetString());
            Assert.Equal(15, doc.RootElement.GetProperty("state").GetInt32());
        }
        var read = await f.Io.ReadAsync(1, 2 * ZoneLbas, 1, new byte[BlockSize], Ct);
        Assert.Equal(NvmeStatus.ZoneIsOffline.WithDnr(), read.Status);
        var write = await f.Io.WriteAsync(1, 2 * ZoneLbas + 2, 1, Pattern(BlockSize, 2), Ct);
        Assert.Equal(NvmeStatus.ZoneIsOffline.WithDnr(), write.Status);

        var report = new byte[64 + 16 * 64];
        Assert.True((await f.Io.ZoneManagementReceiveAsync(1, 0, report, cancellationToken: Ct)).Status.IsSuccess);
        Assert.Equal(0xF0, report[64 + 2 * 64 + 1]);
        Assert.Equal(0u, f.Namespace.ActiveZoneCount);
    }

    [Fact]
    public async Task ReadOnlyZone_ReadsItsDataButRefusesWrites_UntilRepaired()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        byte[] data = Pattern(2 * BlockSize, 3);
        Assert.True((await f.Io.WriteAsync(1, ZoneLbas, 2, data, Ct)).Status.IsSuccess);
        Assert.Equal(1u, f.Namespace.OpenZoneCount);

        await f.OkAsync(HttpMethod.Post, "api/namespaces/1/zones/1/readonly");
        Assert.Equal(0u, f.Namespace.OpenZoneCount);
        var buffer = new byte[2 * BlockSize];
        Assert.True((await f.Io.ReadAsync(1, ZoneLbas, 2, buffer, Ct)).Status.IsSuccess);
        Assert.Equal(data, buffer);
        Assert.Equal(NvmeStatus.ZoneIsReadOnly.WithDnr(), (await f.Io.WriteAsync(1, ZoneLbas + 2, 1, Pattern(BlockSize, 4), Ct)).Status);
        // The host's own Offline Zone is valid from Read Only (ZSRO → ZSO).
        Assert.True((await f.Io.ZoneManagementSendAsync(1, ZoneLbas, (byte)ZoneSendAction.Offline, cancellationToken: Ct)).Status.IsSuccess);
        Assert.Equal(ZoneState.Offline, f.Namespace.GetZone(1).State);

        await f.OkAsync(HttpMethod.Post, "api/namespaces/1/zones/1/repair");
        var z = f.Namespace.GetZone(1);
        Assert.Equal(ZoneState.Empty, z.State);
        Assert.Equal(ZoneLbas, z.WritePointer);
        Assert.True((await f.Io.WriteAsync(1, ZoneLbas, 1, Pattern(BlockSize, 5), Ct)).Status.IsSuccess);
    }

    [Fact]
    public async Task BadZoneRequests_Get4xxNamingTheField()
    {
        await using var f = await StartAsync();
        var (s, b) = await f.SendAsync(HttpMethod.Post, "api/namespaces/1/zones/16/offline");
        Assert.Equal(HttpStatusCode.NotFound, s);
        Assert.StartsWith("zone:", ErrorOf(b));
        (s, b) = await f.SendAsync(HttpMethod.Post, "api/namespaces/2/zones/0/offline");
        Assert.Equal(HttpStatusCode.NotFound, s);
        Assert.StartsWith("nsid:", ErrorOf(b));
        (s, b) = await f.SendAsync(HttpMethod.Post, "api/namespaces/1/zones/x/offline");
        Assert.Equal(HttpStatusCode.BadRequest, s);
        Assert.StartsWith("zone:", ErrorOf(b));
        (s, b) = await f.SendAsync(HttpMethod.Post, "api/namespaces/1/zones/0/explode");
        Assert.Equal(HttpStatusCode.BadRequest, s);
        Assert.StartsWith("action:", ErrorOf(b));
        await f.OkAsync(HttpMethod.Post, "api/namespaces/1/zones/0/offline");
        (s, b) = await f.SendAsync(HttpMethod.Post, "api/namespaces/1/zones/0/readonly");
        Assert.Equal(HttpStatusCode.Conflict, s);
        Assert.Contains("offline", ErrorOf(b));
        (s, b) = await f.SendAsync(HttpMethod.Post, "api/namespaces/1/zones/3/repair");
        Assert.Equal(HttpStatusCode.Conflict, s);
    }

    [Fact]
    public async Task ZoneConditions_SurviveARestart_AndAreClearedOnlyByRepair()
    {
        string dir = Path.Combine(Path.GetTempPath(), "zns-control-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "z.raw");
            Zns.Core.Storage.FileBackstore.Create(path, 16 << 20, preallocate: false);
            var options = new NamespaceOptions { ZoneSize = 1 << 20 };
            using (var ns = ZonedNamespace.OpenFile(path, options))
            {
                Assert.True(ns.MakeZoneOffline(4).IsSuccess);
                Assert.True(ns.MakeZoneReadOnly(5).IsSuccess);
                Assert.False(ns.SetZoneRecommendation(5, ZoneAttributes.ResetRecommended).IsSuccess);
            }
            using (var ns = ZonedNamespace.OpenFile(path, options))
            {
                Assert.Equal(ZoneState.Offline, ns.GetZone(4).State);
                Assert.Equal(ZoneState.ReadOnly, ns.GetZone(5).State);
                // A host reset does not clear them.
                Assert.Equal(NvmeStatus.InvalidZoneStateTransition.WithDnr(), ns.ZoneManagementSend(4 * 256, ZoneSendAction.Reset, false));
                Assert.True(ns.RepairZone(4).IsSuccess);
            }
            using (var ns = ZonedNamespace.OpenFile(path, options))
            {
                Assert.Equal(ZoneState.Empty, ns.GetZone(4).State);
                Assert.Equal(ZoneState.ReadOnly, ns.GetZone(5).State);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

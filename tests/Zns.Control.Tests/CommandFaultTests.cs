using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Zns.Nvme;
using static Zns.Control.Tests.ControlFixture;

namespace Zns.Control.Tests;

/// <summary>Media errors, transient failures, latency, dropped connections and Controller Fatal Status, armed through the API.</summary>
public sealed class CommandFaultTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task MediaErrorOnce_FailsOneReadWithUnrecoveredReadError_ThenIsSpent()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        Assert.True((await f.Io.WriteAsync(1, 0, 8, Pattern(8 * BlockSize, 1), Ct)).Status.IsSuccess);
        await f.OkAsync(HttpMethod.Post, "api/faults", """{"mediaErrors":[{"lba":4,"blocks":2,"on":"read","times":1}]}""");
        Assert.True(f.Target.Faults.Armed);

        Assert.True((await f.Io.ReadAsync(1, 0, 4, new byte[4 * BlockSize], Ct)).Status.IsSuccess, "a read beside the range");
        var failed = await f.Io.ReadAsync(1, 3, 2, new byte[2 * BlockSize], Ct);
        Assert.Equal(NvmeStatus.UnrecoveredReadError, failed.Status);
        Assert.False(failed.Status.Dnr);
        var buffer = new byte[2 * BlockSize];
        Assert.True((await f.Io.ReadAsync(1, 3, 2, buffer, Ct)).Status.IsSuccess, "the retry succeeds");
        Assert.Equal(Pattern(8 * BlockSize, 1).AsSpan(3 * BlockSize, 2 * BlockSize).ToArray(), buffer);
        Assert.False(f.Target.Faults.Armed);
        Assert.Contains("\"mediaErrors\":[]", await f.OkAsync(HttpMethod.Get, "api/faults"));
    }

    [Fact]
    public async Task MediaErrorAlways_FailsWritesWithWriteFault_AndTheWritePointerStays_UntilCleared()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        string armed = await f.OkAsync(HttpMethod.Post, "api/faults", """{"mediaErrors":[{"lba":256,"blocks":256,"on":"write","dnr":true}]}""");
        int id = JsonDocument.Parse(armed).RootElement.GetProperty("mediaErrors")[0].GetProperty("id").GetInt32();
        for (int i = 0; i < 3; i++)
        {
            var c = await f.Io.WriteAsync(1, 256, 1, Pattern(BlockSize, 2), Ct);
            Assert.Equal(NvmeStatus.WriteFault.WithDnr(), c.Status);
        }
        var append = await f.Io.ZoneAppendAsync(1, 256, 1, Pattern(BlockSize, 2), Ct);
        Assert.Equal(NvmeStatus.WriteFault.WithDnr(), append.Status);
        Assert.Equal(256UL, f.Namespace.GetZone(1).WritePointer);
        Assert.True((await f.Io.WriteAsync(1, 0, 1, Pattern(BlockSize, 2), Ct)).Status.IsSuccess, "zone 0 is outside the range");
        Assert.Contains("\"mediaFault\":true", await f.OkAsync(HttpMethod.Get, "api/namespaces/1/zones/1"));

        string listed = await f.OkAsync(HttpMethod.Get, "api/faults");
        Assert.Equal(4, JsonDocument.Parse(listed).RootElement.GetProperty("mediaErrors")[0].GetProperty("fired").GetInt32());
        await f.OkAsync(HttpMethod.Delete, $"api/faults/{id}");
        Assert.True((await f.Io.WriteAsync(1, 256, 1, Pattern(BlockSize, 2), Ct)).Status.IsSuccess);
        var (s, b) = await f.SendAsync(HttpMethod.Delete, $"api/faults/{id}");
        Assert.Equal(HttpStatusCode.NotFound, s);
        Assert.StartsWith("id:", ErrorOf(b));
    }

    [Fact]
    public async Task MediaErrorWithProbability_FailsSomeReadsAndNotOthers()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        Assert.True((await f.Io.WriteAsync(1, 0, 1, Pattern(BlockSize, 1), Ct)).Status.IsSuccess);
        await f.OkAsync(HttpMethod.Post, "api/faults", """{"seed":7,"mediaErrors":[{"lba":0,"on":"read","probability":0.5}]}""");
        int failures = 0;
        for (int i = 0; i < 60; i++)
        {
            if (!(await f.Io.ReadAsync(1, 0, 1, new byte[BlockSize], Ct)).Status.IsSuccess)
            {
                failures++;
            }
        }
        Assert.InRange(failures, 10, 50);
    }

    [Fact]
    public async Task TransientFailures_HaveNoDnr_AndStopAfterTheirCount()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        await f.OkAsync(HttpMethod.Post, "api/faults",
            """{"transient":[{"opcode":"write","status":"namespace-not-ready","times":2},{"opcode":"read","status":"command-aborted","times":1}]}""");
        var w1 = await f.Io.WriteAsync(1, 0, 1, Pattern(BlockSize, 1), Ct);
        var w2 = await f.Io.WriteAsync(1, 0, 1, Pattern(BlockSize, 1), Ct);
        Assert.Equal(NvmeStatus.NamespaceNotReady, w1.Status);
        Assert.Equal(NvmeStatus.NamespaceNotReady, w2.Status);
        Assert.True((await f.Io.WriteAsync(1, 0, 1, Pattern(BlockSize, 1), Ct)).Status.IsSuccess);
        Assert.Equal(NvmeStatus.AbortRequested, (await f.Io.ReadAsync(1, 0, 1, new byte[BlockSize], Ct)).Status);
        Assert.True((await f.Io.ReadAsync(1, 0, 1, new byte[BlockSize], Ct)).Status.IsSuccess);
        Assert.Equal(1UL, f.Namespace.GetZone(0).WritePointer);
    }

    [Fact]
    public async Task Latency_DelaysTheOpcode_AndKeepsWritesInOrder()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        await f.OkAsync(HttpMethod.Post, "api/faults", """{"latency":[{"opcode":"write","distribution":"uniform","minUs":20000,"maxUs":60000}]}""");
        var sw = Stopwatch.StartNew();
        // Eight writes in flight to one zone, each at the write pointer the previous one leaves: any reordering fails one.
        var writes = Enumerable.Range(0, 8).Select(i => f.Io.WriteAsync(1, (ulong)i, 1, Pattern(BlockSize, (byte)i), Ct)).ToArray();
        var results = await Task.WhenAll(writes);
        Assert.All(results, c => Assert.True(c.Status.IsSuccess, c.Status.ToString()));
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(20), $"{sw.Elapsed}");
        Assert.Equal(8UL, f.Namespace.GetZone(0).WritePointer);

        sw.Restart();
        Assert.True((await f.Io.ReadAsync(1, 0, 1, new byte[BlockSize], Ct)).Status.IsSuccess);
        Assert.True(sw.Elapsed < TimeSpan.FromMilliseconds(1000), "reads are not delayed by a write rule");
    }

    [Fact]
    public async Task DropConnections_ClosesTheIoQueue_AndTheControllerLives()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        string body = await f.OkAsync(HttpMethod.Post, "api/faults/drop-connections", "{}");
        Assert.Contains("\"controllers\":1", body);
        await f.Io.Closed.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(1UL, (await f.Admin.PropertyGetAsync(0x1C, false, Ct)).Result & 1); // CSTS.RDY: the admin queue still answers
        Assert.Equal(1, f.Target.Subsystem.ControllerCount);
    }

    [Fact]
    public async Task ControllerFatal_SetsCfs_StallsCommands_AndANewControllerIsHealthy()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        Assert.Contains("\"controllers\":1", await f.OkAsync(HttpMethod.Post, "api/faults/controller-fatal", """{"then":"stall"}"""));
        Assert.Contains("\"fatalControllers\":1", await f.OkAsync(HttpMethod.Get, "api/faults"));
        var stalled = f.Io.ReadAsync(1, 0, 1, new byte[BlockSize], Ct);
        await Task.Delay(300, Ct);
        Assert.False(stalled.IsCompleted, "commands of a fatal controller are held");

        // Tearing the controller down (as the host's error recovery does) releases it; the next one is healthy.
        await f.OkAsync(HttpMethod.Post, "api/faults/drop-connections", """{"admin":true}""");
        await f.Admin.Closed.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        var released = await Record.ExceptionAsync(() => stalled.WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.False(released is TimeoutException, "the held command is released when its connection goes");
        await using var again = await StartHostAsync(f);
        Assert.True((await again.ReadAsync(1, 0, 1, new byte[BlockSize], Ct)).Status.IsSuccess);
        Assert.False(f.Target.Faults.Armed);

        var (s, b) = await f.SendAsync(HttpMethod.Post, "api/faults/controller-fatal", """{"then":"explode"}""");
        Assert.Equal(HttpStatusCode.BadRequest, s);
        Assert.StartsWith("then:", ErrorOf(b));
    }

    private static async Task<Zns.TestKit.NvmeTcpInitiator> StartHostAsync(ControlFixture f)
    {
        var admin = await Zns.TestKit.NvmeTcpInitiator.ConnectAsync(f.Listener.LocalEndPoint);
        string host = "nqn.2014-08.org.nvmexpress:uuid:0000000b-0000-4000-8000-00000000000b";
        var c = await admin.ConnectAdminQueueAsync(f.Target.Subsystem.Nqn, host, Guid.Parse(host[^36..]));
        Assert.True(c.Status.IsSuccess);
        Assert.True((await admin.PropertySetAsync(0x14, 0x00460061)).Status.IsSuccess);
        var io = await Zns.TestKit.NvmeTcpInitiator.ConnectAsync(f.Listener.LocalEndPoint);
        Assert.True((await io.ConnectIoQueueAsync(1, admin.ControllerId, f.Target.Subsystem.Nqn, host, Guid.Parse(host[^36..]))).Status.IsSuccess);
        return io;
    }

    [Fact]
    public async Task BadScenarios_Get400NamingTheField_AndArmNothing()
    {
        await using var f = await StartAsync();
        (string Json, string Field)[] cases =
        [
            ("""{"mediaErrors":[{"blocks":1}]}""", "mediaErrors[0].lba"),
            ("""{"mediaErrors":[{"lba":99999999}]}""", "mediaErrors[0].lba"),
            ("""{"mediaErrors":[{"lba":1,"on":"sideways"}]}""", "mediaErrors[0].on"),
            ("""{"mediaErrors":[{"lba":1,"times":0}]}""", "mediaErrors[0].times"),
            ("""{"mediaErrors":[{"lba":1,"probability":1.5}]}""", "mediaErrors[0].probability"),
            ("""{"mediaErrors":[{"lba":1,"nsid":9}]}""", "mediaErrors[0].nsid"),
            ("""{"mediaErrors":[{"lba":"one"}]}""", "mediaErrors[0].lba"),
            ("""{"latency":[{"opcode":"teleport","us":5}]}""", "latency[0].opcode"),
            ("""{"latency":[{"distribution":"uniform","minUs":5}]}""", "latency[0].maxUs"),
            ("""{"latency":[{"us":-1}]}""", "latency[0].us"),
            ("""{"transient":[{"status":"on-fire"}]}""", "transient[0].status"),
            ("""{"zones":[{"zone":99,"condition":"offline"}]}""", "zones[0].zone"),
            ("""{"zones":[{"zone":1,"condition":"broken"}]}""", "zones[0].condition"),
            ("""{"unknown":1}""", "unknown"),
            ("""{"mediaErrors":[{"lba":1}],"latency":[{"us":"x"}]}""", "latency[0].us"),
            ("not json", "body"),
            ("", "body"),
        ];
        foreach (var (json, field) in cases)
        {
            var (s, b) = await f.SendAsync(HttpMethod.Post, "api/faults", json);
            Assert.True(s == HttpStatusCode.BadRequest || s == HttpStatusCode.NotFound, $"{json}: {(int)s}");
            Assert.StartsWith(field + ":", ErrorOf(b));
        }
        Assert.False(f.Target.Faults.Armed);
        Assert.Equal(16u, f.Namespace.CountZones().Empty);
    }

    [Fact]
    public async Task Token_IsRequiredBeyondLoopback_AndEnforcedWhenSet()
    {
        var target = new Zns.Target.Controller.NvmeTarget(new Zns.Target.Controller.TargetOptions(), []);
        await Assert.ThrowsAsync<ArgumentException>(() => ControlServer.StartAsync(
            new ControlAddress(new IPEndPoint(IPAddress.Any, 0), null), null, new ControlService(target)));

        await using var f = await StartAsync(token: "s3cret");
        using var anonymous = new HttpClient { BaseAddress = f.Http.BaseAddress };
        using var response = await anonymous.GetAsync("api/namespaces", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.StartsWith("authorization:", ErrorOf(await response.Content.ReadAsStringAsync(Ct)));
        using var wrong = await anonymous.GetAsync("metrics?token=nope", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        await f.OkAsync(HttpMethod.Get, "api/namespaces");
        using var query = await anonymous.GetAsync("api/namespaces?token=s3cret", Ct);
        Assert.Equal(HttpStatusCode.OK, query.StatusCode);
    }

    [Fact]
    public async Task BusyPort_IsAnIOException()
    {
        await using var f = await StartAsync();
        var uri = new Uri(f.Server.Address);
        var again = ControlAddress.TryParse($"127.0.0.1:{uri.Port}", out _)!;
        await Assert.ThrowsAsync<IOException>(() => ControlServer.StartAsync(again, null, new ControlService(f.Target)));
    }
}

/// <summary>The media-error fault of protection information: POST /api/faults/corrupt-pi damages a stored tag.</summary>
public sealed class CorruptPiFaultTests
{
    private static ProtectionFields Checks(ulong reftag, byte prinfo = ProtectionFields.CheckMask) => new(prinfo, false, reftag, 0, 0);

    [Fact]
    public async Task CorruptedGuardAndReferenceTagFailTheirChecks_UnwrittenBlocksAreSkipped_BadFieldsAreNamed()
    {
        var options = new Zns.Core.Zones.NamespaceOptions { ZoneSize = 1 << 20, Mdts = 5, MetadataSize = 8, PiType = 1, MetadataExtended = true };
        var ns = Zns.Core.Zones.ZonedNamespace.CreateInMemory(16 * ((1 << 20) / 4096) * (4096 + 8), options);
        await using var f = await StartAsync(ns: ns);
        Assert.True(ns.Write(0, new byte[2 * 4096], [], new ProtectionFields(ProtectionFields.PractBit, false, 0, 0, 0)).IsSuccess);

        Assert.Contains("\"blocks\":1", await f.OkAsync(HttpMethod.Post, "api/faults/corrupt-pi", """{"nsid":1,"lba":0,"field":"guard"}"""));
        var host = new byte[4096 + 8];
        Assert.Equal(NvmeStatus.EndToEndGuardCheckError, ns.Read(0, host, [], Checks(0, ProtectionFields.CheckGuard)));
        // Blocks 2 and 3 are above the write pointer: only block 1 holds PI to damage.
        Assert.Contains("\"blocks\":1", await f.OkAsync(HttpMethod.Post, "api/faults/corrupt-pi", """{"lba":1,"blocks":3,"field":"reftag"}"""));
        Assert.True(ns.Read(1, host, [], Checks(1, ProtectionFields.CheckGuard)).IsSuccess, "the guard of block 1 is intact");
        Assert.Equal(NvmeStatus.EndToEndReferenceTagCheckError, ns.Read(1, host, [], Checks(1, ProtectionFields.CheckReferenceTag)));

        var (status, body) = await f.SendAsync(HttpMethod.Post, "api/faults/corrupt-pi", """{"lba":0,"field":"apptag"}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("field", body);
        (status, body) = await f.SendAsync(HttpMethod.Post, "api/faults/corrupt-pi", """{"lba":999999,"field":"guard"}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("lba", body);
    }

    [Fact]
    public async Task ANamespaceWithoutPiIsRefused()
    {
        await using var f = await StartAsync();
        var (status, body) = await f.SendAsync(HttpMethod.Post, "api/faults/corrupt-pi", """{"lba":0,"field":"guard"}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("no protection information", body);
    }
}

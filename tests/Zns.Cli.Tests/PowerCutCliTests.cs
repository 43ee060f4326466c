using System.Diagnostics;
using System.Net;
using Zns.TestKit;

namespace Zns.Cli.Tests;

/// <summary>
/// <c>zns fault power-cut</c> and <c>zns fault power-cuts</c> against a running <c>zns serve</c> with a host attached
/// over NVMe/TCP: what was not flushed is gone when the host reconnects; every bad value is refused naming it.
/// </summary>
public sealed class PowerCutCliTests
{
    private const string Nqn = "nqn.2026-01.io.zns:subsys";
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:7b0c6a8e-0000-4000-8000-00000000c2c2";
    private static readonly Guid HostId = Guid.Parse("7b0c6a8e-0000-4000-8000-00000000c2c2");

    private static async Task<(NvmeTcpInitiator Admin, NvmeTcpInitiator Io)> ConnectAsync(IPEndPoint endPoint, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var admin = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            var connect = await admin.ConnectAdminQueueAsync(Nqn, HostNqn, HostId, sqSize: 31, cancellationToken: ct);
            if (connect.Status.IsSuccess)
            {
                Assert.True((await admin.PropertySetAsync(0x14, 0x00460061, cancellationToken: ct)).Status.IsSuccess);
                var io = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
                Assert.True((await io.ConnectIoQueueAsync(1, admin.ControllerId, Nqn, HostNqn, HostId, sqSize: 31, ct)).Status.IsSuccess);
                return (admin, io);
            }
            await admin.DisposeAsync();
            Assert.True(DateTime.UtcNow < deadline, $"Connect refused until the deadline ({connect.Status})");
            await Task.Delay(20, ct);
        }
    }

    [Fact]
    public async Task A_power_cut_drops_unflushed_writes_and_the_host_reconnects()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        using var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"))!;
        try
        {
            var (endPoint, control) = await CliRunner.WaitForControlAsync(server, ct);
            var (admin, io) = await ConnectAsync(endPoint, ct);
            var flushed = new byte[2 * 4096];
            new Random(1).NextBytes(flushed);
            Assert.True((await io.WriteAsync(1, 0, 2, flushed, ct)).Status.IsSuccess);
            var flush = default(Zns.Nvme.SubmissionQueueEntry);
            flush.SetOpcode(0x00);
            flush.SetNamespaceId(1);
            Assert.True((await io.SubmitAsync(flush, cancellationToken: ct)).Status.IsSuccess);
            var lost = new byte[3 * 4096];
            new Random(2).NextBytes(lost);
            Assert.True((await io.WriteAsync(1, 2, 3, lost, ct)).Status.IsSuccess);

            var cut = await Control(dir, "fault", "power-cut", "--keep", "none", "--seed", "5", "--off-ms", "200", "--control", control);
            Assert.True(cut.Exit == 0, cut.Err);
            Assert.Contains("\"trigger\": \"control API\"", cut.Out);
            Assert.Contains("\"writePointerBefore\": 5,", cut.Out);
            Assert.Contains("\"durableWritePointer\": 2,", cut.Out);
            Assert.Contains("\"writePointerAfter\": 2,", cut.Out);
            Assert.Contains("\"seed\": 5,", cut.Out);
            await io.DisposeAsync();
            await admin.DisposeAsync();

            (admin, io) = await ConnectAsync(endPoint, ct);
            var buffer = new byte[5 * 4096];
            Assert.True((await io.ReadAsync(1, 0, 5, buffer, ct)).Status.IsSuccess);
            Assert.Equal(flushed, buffer[..(2 * 4096)]);
            Assert.Equal(new byte[3 * 4096], buffer[(2 * 4096)..]);
            var zones = await Control(dir, "zones", "--control", control);
            Assert.StartsWith("  start: 0x000000000, len 0x004000, cap 0x004000, wptr 0x000010 reset:0 non-seq:0, zcond: 4(cl)", zones.Out);
            var history = await Control(dir, "fault", "power-cuts", "--control", control);
            Assert.Contains("\"sequence\": 1,", history.Out);
            Assert.Contains("\"poweredOff\": false", history.Out);
            await io.DisposeAsync();
            await admin.DisposeAsync();

            // Bad values: one line naming the field, nothing cut.
            var unknownNsid = await Control(dir, "fault", "power-cut", "--nsid", "9", "--control", control);
            Assert.Equal((1, "zns: powerCut.nsid: 9 is not a namespace (1..1)\n"), (unknownNsid.Exit, unknownNsid.Err));
            Assert.DoesNotContain("\"sequence\": 2", (await Control(dir, "fault", "power-cuts", "--control", control)).Out);
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync(ct);
        }
    }

    [Theory]
    [InlineData("zns: --keep: 'maybe' is not none, all or random\n", "--keep", "maybe")]
    [InlineData("zns: --torn: needs --keep random (a torn write is a partly kept one)\n", "--torn")]
    [InlineData("zns: --torn: needs --keep random (a torn write is a partly kept one)\n", "--keep", "all", "--torn")]
    [InlineData("zns: --off-ms: '-5' is not a whole number from 0 to 3600000\n", "--off-ms", "-5")]
    [InlineData("zns: --off-ms: '3600001' is not a whole number from 0 to 3600000\n", "--off-ms", "3600001")]
    [InlineData("zns: --nsid: '0' is not a whole number from 1 to 4294967295\n", "--nsid", "0")]
    [InlineData("zns: --seed: 'x' is not a number\n", "--seed", "x")]
    [InlineData("zns: --at-command: '0' is not a whole number from 1 to 9223372036854775807\n", "--at-command", "0")]
    [InlineData("zns: --at-command: give --at-command or --after-flushes, not both\n", "--at-command", "3", "--after-flushes", "1")]
    public async Task Bad_options_are_refused_naming_the_option(string error, params string[] options)
    {
        using var dir = new TempDir();
        // No server: the options are checked before anything is sent.
        var result = await Control(dir, ["fault", "power-cut", .. options, "--control", "127.0.0.1:9"]);
        Assert.Equal((2, error), (result.Exit, result.Err));
    }

    [Fact]
    public async Task A_faults_file_arms_a_power_cut_and_a_bad_one_is_refused_at_start()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "bad.json"), """{"powerCut": {"keep": "some", "atCommand": 5}}""");
        var bad = await Control(dir, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--faults", "bad.json");
        Assert.Equal(2, bad.Exit);
        Assert.Contains("powerCut.keep: 'some' is not none, all or random", bad.Err);
        File.WriteAllText(Path.Combine(dir.Path, "nocount.json"), """{"powerCut": {"keep": "none"}}""");
        var noCount = await Control(dir, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--faults", "nocount.json");
        Assert.Equal(2, noCount.Exit);
        Assert.Contains("powerCut.atCommand: a scenario's power cut needs atCommand or afterFlushes", noCount.Err);

        File.WriteAllText(Path.Combine(dir.Path, "cut.json"), """{"powerCut": {"keep": "random", "torn": true, "seed": 9, "afterFlushes": 2}}""");
        using var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--faults", "cut.json"))!;
        try
        {
            var (_, control) = await CliRunner.WaitForControlAsync(server, ct);
            var armed = await Control(dir, "fault", "power-cuts", "--control", control);
            Assert.Contains("\"afterFlushes\": 2", armed.Out);
            Assert.Contains("\"keep\": \"random\"", armed.Out);
            Assert.Equal(0, (await Control(dir, "fault", "clear", "--control", control)).Exit);
            Assert.DoesNotContain("afterFlushes", (await Control(dir, "fault", "power-cuts", "--control", control)).Out);
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync(ct);
        }
    }

    private static Task<(int Exit, string Out, string Err)> Control(TempDir dir, params string[] args) => CliRunner.RunAsync(dir.Path, args);
}

using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Zns.Nvme;
using Zns.TestKit;

namespace Zns.Cli.Tests;

/// <summary>
/// <c>zns zones</c>, <c>zns zone</c>, <c>zns fault</c> and <c>zns stats</c> against a running <c>zns serve</c>'s
/// control endpoint, checked against what a host sees over NVMe/TCP at the same time, and the endpoint's
/// <c>/metrics</c> and zone map page.
/// </summary>
public sealed class ControlCliTests
{
    private const string Nqn = "nqn.2026-01.io.zns:subsys";
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:7b0c6a8e-0000-4000-8000-00000000c1c1";
    private static readonly Guid HostId = Guid.Parse("7b0c6a8e-0000-4000-8000-00000000c1c1");

    [Fact]
    public async Task ControlCommandsSeeAndChangeTheZonesAHostUses()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        using var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"))!;
        try
        {
            var (endPoint, control) = await CliRunner.WaitForControlAsync(server, ct);
            await using var admin = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            Assert.True((await admin.ConnectAdminQueueAsync(Nqn, HostNqn, HostId, sqSize: 31, cancellationToken: ct)).Status.IsSuccess);
            Assert.True((await admin.PropertySetAsync(0x14, 0x00460061, cancellationToken: ct)).Status.IsSuccess);
            await using var io = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            Assert.True((await io.ConnectIoQueueAsync(1, admin.ControllerId, Nqn, HostNqn, HostId, sqSize: 31, ct)).Status.IsSuccess);
            var data = new byte[2 * 4096];
            new Random(7).NextBytes(data);
            Assert.True((await io.WriteAsync(1, 0, 2, data, ct)).Status.IsSuccess);

            var zones = await Control(dir, "zones", "--control", control);
            Assert.Equal(0, zones.Exit);
            string[] lines = zones.Out.TrimEnd('\n').Split('\n');
            Assert.Equal(8, lines.Length);
            Assert.Equal("  start: 0x000000000, len 0x004000, cap 0x004000, wptr 0x000010 reset:0 non-seq:0, zcond: 2(oi) [type: 2(SEQ_WRITE_REQUIRED)]", lines[0]);

            // A media error armed from the command line fails the host's read of that block, and only that block.
            Assert.Equal(0, (await Control(dir, "fault", "media", "--lba", "1", "--on", "read", "--control", control)).Exit);
            var list = await Control(dir, "fault", "list", "--control", control);
            Assert.Matches("\"lba\": 1,", list.Out);
            var buffer = new byte[4096];
            Assert.True((await io.ReadAsync(1, 0, 1, buffer, ct)).Status.IsSuccess);
            Assert.Equal(data[..4096], buffer);
            Assert.Equal(NvmeStatus.UnrecoveredReadError, (await io.ReadAsync(1, 1, 1, buffer, ct)).Status.WithoutDnr());
            var stats = await Control(dir, "stats", "--control", control);
            Assert.Equal(0, stats.Exit);
            Assert.Contains("nsid 1: reads 2 (4 KiB), writes 1, appends 0 (8 KiB written), other 0\n", stats.Out); // the failed read moved no data
            Assert.Contains("  errors: unrecovered_read_error 1\n", stats.Out);
            // The same counts on /metrics (OpenTelemetry's Prometheus exporter), and the zone map page.
            using var http = new HttpClient { BaseAddress = new Uri($"http://{control}/") };
            string metrics = await http.GetStringAsync("metrics", ct);
            Assert.Matches(@"(?m)^zns_connections\{[^}]*\} 2$", metrics);
            Assert.Matches(@"(?m)^zns_io_errors_total\{[^}]*unrecovered_read_error[^}]*\} 1( |$)", metrics);
            Assert.StartsWith("<!doctype html>", await http.GetStringAsync("", ct), StringComparison.OrdinalIgnoreCase);
            Assert.Equal(0, (await Control(dir, "fault", "clear", "--control", control)).Exit);
            Assert.True((await io.ReadAsync(1, 1, 1, buffer, ct)).Status.IsSuccess);
            Assert.Equal(data[4096..], buffer);

            // A zone taken offline by the control endpoint refuses the host's write.
            var offline = await Control(dir, "zone", "offline", "2", "--control", control);
            Assert.Equal(0, offline.Exit);
            Assert.Contains("zcond:15(of)", offline.Out);
            Assert.Equal(NvmeStatus.ZoneIsOffline, (await io.WriteAsync(1, 2 * 2048, 1, buffer, ct)).Status.WithoutDnr());
            Assert.Contains("offline 1", (await Control(dir, "stats", "--control", control)).Out);

            var badAction = await Control(dir, "zone", "bogus", "1", "--control", control);
            Assert.Equal(2, badAction.Exit);
            Assert.StartsWith("zns: ", badAction.Err);
            var pastEnd = await Control(dir, "zone", "offline", "99", "--control", control);
            Assert.Equal(1, pastEnd.Exit);
            Assert.Equal("zns: zone: 99 is past the last zone (7)\n", pastEnd.Err);
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync(ct);
        }
    }

    private static Task<(int Exit, string Out, string Err)> Control(TempDir dir, params string[] args) => CliRunner.RunAsync(dir.Path, args);
}

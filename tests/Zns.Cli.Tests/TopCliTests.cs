using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Zns.TestKit;

namespace Zns.Cli.Tests;

/// <summary><c>zns top --once</c> against a running <c>zns serve</c> while a host writes to it.</summary>
public sealed class TopCliTests
{
    private const string Nqn = "nqn.2026-01.io.zns:subsys";
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:7b0c6a8e-0000-4000-8000-00000000c2c2";
    private static readonly Guid HostId = Guid.Parse("7b0c6a8e-0000-4000-8000-00000000c2c2");

    [Fact]
    public async Task Top_once_shows_the_figures_of_a_host_writing()
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
            using var http = new HttpClient { BaseAddress = new Uri($"http://{control}/") };
            // Zone 5 full, a media error armed, then a host writing zone 0 until the frame is printed.
            (await http.PostAsync("api/namespaces/1/zones/5/finish", null, ct)).EnsureSuccessStatusCode();
            Assert.Equal(0, (await CliRunner.RunAsync(dir.Path, "fault", "media", "--lba", "4096", "--on", "read", "--control", control)).Exit);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var data = new byte[4096];
            var writer = Task.Run(async () =>
            {
                for (ulong lba = 0; !stop.IsCancellationRequested && lba < 2048; lba++)
                {
                    Assert.True((await io.WriteAsync(1, lba, 1, data, ct)).Status.IsSuccess);
                    await Task.Delay(2, ct);
                }
            }, ct);
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (true)
            {
                using var h = JsonDocument.Parse(await http.GetStringAsync("api/history?seconds=5", ct));
                var samples = h.RootElement.GetProperty("samples");
                if (samples.GetArrayLength() > 0 && samples[samples.GetArrayLength() - 1].GetProperty("writeIops").GetDouble() > 0)
                {
                    break;
                }
                Assert.True(DateTime.UtcNow < deadline, "no write in the history after 15 s");
                await Task.Delay(200, ct);
            }
            var top = await CliRunner.RunAsync(dir.Path, "top", "--once", "--control", control);
            await stop.CancelAsync();
            await writer;
            Assert.True(top.Exit == 0, top.Err);
            Assert.Contains($"zns top  {control}  all namespaces", top.Out);
            Assert.Contains("controllers 1  queues 1  connections 2", top.Out);
            Assert.True(Regex.IsMatch(top.Out, @"│ write\s+│\s+[1-9][0-9,.]*\s+│\s+[0-9.]+\s+│\s*[▁▂▃▄▅▆▇█ ]*[▂▃▄▅▆▇█][▁▂▃▄▅▆▇█ ]*│"), top.Out);
            Assert.True(Regex.IsMatch(top.Out, @"│\s+p50 │\s+p99 │\s+p99.9 │"), top.Out);
            Assert.True(Regex.IsMatch(top.Out, @"│ implicitly open\s+│\s+1 │ █+"), top.Out);
            Assert.True(Regex.IsMatch(top.Out, @"│ full\s+│\s+1 │ █+"), top.Out);
            Assert.True(Regex.IsMatch(top.Out, @"│ empty\s+│\s+6 │ █+"), top.Out);
            Assert.Contains("media error #1: nsid 1 lba 4096 blocks 1 on read", top.Out);
            Assert.DoesNotContain("q quits", top.Out);

            var bad = await CliRunner.RunAsync(dir.Path, "top", "--once", "--nsid", "7", "--control", control);
            Assert.Equal(1, bad.Exit);
            Assert.StartsWith("zns: nsid: '7' is not a namespace", bad.Err);
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync(ct);
        }
    }

    [Fact]
    public async Task Top_names_an_endpoint_that_does_not_answer_in_one_line()
    {
        using var dir = new TempDir();
        var top = await CliRunner.RunAsync(dir.Path, "top", "--once", "--control", "127.0.0.1:1");
        Assert.Equal(1, top.Exit);
        Assert.Equal("", top.Out);
        Assert.Matches(@"^zns: no zns serve is answering on 127\.0\.0\.1:1 [^\n]*\n$", top.Err);
    }
}

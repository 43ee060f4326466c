using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Zns.Cli.Tests;

public class CliTests
{
    private const string Seed = "zoned.zone_size=64M,zoned.zone_capacity=62M,zoned.max_open=16,zoned.max_active=32";

    [Fact]
    public async Task SeedExampleReportsLikeBlkzone()
    {
        using var dir = new TempDir();
        var create = await CliRunner.RunAsync(dir.Path, "create", "zns.raw", "--size", "32G", "-o", Seed);
        Assert.Equal(0, create.Exit);
        Assert.Contains("512 zones of 64 MiB (capacity 62 MiB)", create.Out);
        Assert.Equal(32L << 30, new FileInfo(Path.Combine(dir.Path, "zns.raw")).Length);

        var report = await CliRunner.RunAsync(dir.Path, "report", "zns.raw");
        Assert.Equal(0, report.Exit);
        var lines = report.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(512, lines.Length);
        Assert.Equal("  start: 0x000000000, len 0x020000, cap 0x01f000, wptr 0x000000 reset:0 non-seq:0, zcond: 1(em) [type: 2(SEQ_WRITE_REQUIRED)]", lines[0]);
        Assert.Equal("  start: 0x003fe0000, len 0x020000, cap 0x01f000, wptr 0x000000 reset:0 non-seq:0, zcond: 1(em) [type: 2(SEQ_WRITE_REQUIRED)]", lines[511]);

        var capacity = await CliRunner.RunAsync(dir.Path, "capacity", "zns.raw");
        Assert.Equal("0x003e00000\n", capacity.Out);

        var some = await CliRunner.RunAsync(dir.Path, "report", "zns.raw", "-o", "0x40000", "-c", "2");
        Assert.Equal(2, some.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.StartsWith("  start: 0x000040000,", some.Out);
    }

    [Fact]
    public async Task ZoneActionsPersistAndShowInReport()
    {
        using var dir = new TempDir();
        Assert.Equal(0, (await CliRunner.RunAsync(dir.Path, "create", "z.raw", "--size", "64M", "--zone-size", "8M", "--max-open", "2")).Exit);
        Assert.Equal(0, (await CliRunner.RunAsync(dir.Path, "finish", "z.raw", "-o", "0x4000", "-c", "2")).Exit);
        Assert.Equal(0, (await CliRunner.RunAsync(dir.Path, "open", "z.raw", "-o", "0", "-c", "1")).Exit);
        var report = (await CliRunner.RunAsync(dir.Path, "report", "z.raw")).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("zcond: 3(oe)", report[0]);
        Assert.Contains("wptr 0x004000 reset:0 non-seq:0, zcond:14(fu)", report[1]);
        Assert.Contains("zcond:14(fu)", report[2]);
        Assert.Contains("zcond: 1(em)", report[3]);

        var tooMany = await CliRunner.RunAsync(dir.Path, "open", "z.raw", "-o", "0x10000");
        Assert.Equal(1, tooMany.Exit);
        Assert.Contains("Too Many Open Zones", tooMany.Err);

        Assert.Equal(0, (await CliRunner.RunAsync(dir.Path, "reset", "z.raw", "--all")).Exit);
        var after = (await CliRunner.RunAsync(dir.Path, "report", "z.raw")).Out;
        Assert.DoesNotContain("(fu)", after);
        Assert.Equal(8, Regex.Matches(after, @"zcond: 1\(em\)").Count);

        var mixed = await CliRunner.RunAsync(dir.Path, "reset", "z.raw", "--all", "-o", "0");
        Assert.Equal(2, mixed.Exit);
        Assert.Contains("--all", mixed.Err);

        var unaligned = await CliRunner.RunAsync(dir.Path, "reset", "z.raw", "-o", "5");
        Assert.Equal(2, unaligned.Exit);
        Assert.Contains("--offset", unaligned.Err);
    }

    [Theory]
    [InlineData("--zone-capacity", "128M", "--zone-capacity")]
    [InlineData("-o", "zoned.max_open=8,zoned.max_active=4", "zoned.max_open")]
    [InlineData("-o", "zoned.zone_capacity=65M", "zoned.zone_capacity")]
    [InlineData("--logical-block-size", "1000", "--logical-block-size")]
    [InlineData("-o", "zoned.frobnicate=1", "zoned.frobnicate")]
    public async Task BadOptionsGiveOneLineNamingTheOptionAndExit2WithoutWritingAnything(string flag, string value, string named)
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, "create", "bad.raw", "--size", "512M", "--zone-size", "64M", flag, value);
        Assert.Equal(2, r.Exit);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(named, r.Err);
        Assert.False(File.Exists(Path.Combine(dir.Path, "bad.raw")));
    }

    [Theory]
    [InlineData("--max-connections", "0")]
    [InlineData("--max-connections", "-3")]
    [InlineData("--max-connections", "many")]
    [InlineData("--receive-poll", "-5")]
    [InlineData("--receive-poll", "soon")]
    [InlineData("--receive-poll", "1000001")]
    public async Task ServeRejectsABadNumberWithOneLineNamingTheOption_AndExit2(string option, string value)
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, "serve", "ram:512M", "--listen", "127.0.0.1:0", option, value);
        Assert.Equal(2, r.Exit);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"zns: {option}", r.Err);
        Assert.Empty(r.Out);
    }

    [Fact]
    public async Task NonPowerOfTwoZoneSizeIsWarned()
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, "create", "odd.raw", "--size", "1G", "--zone-size", "96M");
        Assert.Equal(0, r.Exit);
        Assert.Contains("not a power of two: Linux will not attach", r.Err);
    }

    [Theory]
    [InlineData("report")]
    [InlineData("frobnicate")]
    [InlineData("create", "x.raw")]
    [InlineData("serve", "--listen", "nonsense")]
    [InlineData("serve", "--ephemeral", "--reformat")]
    [InlineData("serve", "ram:12Q")]
    [InlineData("serve", "missing.raw")]
    [InlineData("serve", "ram:64M,zoned.bogus=1")]
    public async Task UsageErrorsExit2(params string[] args)
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, args);
        Assert.Equal(2, r.Exit);
        Assert.StartsWith("zns: ", r.Err);
    }

    [Fact]
    public async Task ServePrintsConnectLinesAndStopsCleanlyOnSigterm()
    {
        using var dir = new TempDir();
        using var p = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "--listen", "127.0.0.1:0"))!;
        var ct = TestContext.Current.CancellationToken;
        var output = new System.Text.StringBuilder();
        string? line;
        while ((line = await p.StandardOutput.ReadLineAsync(ct)) is not null)
        {
            output.AppendLine(line);
            if (line.StartsWith("press Ctrl-C", StringComparison.Ordinal))
            {
                break;
            }
        }
        string text = output.ToString();
        Assert.Contains("subsystem NQN: nqn.2026-01.io.zns:subsys", text);
        Assert.Matches(@"nvme discover -t tcp -a 127\.0\.0\.1 -s \d+", text);
        Assert.Matches(@"nvme connect -t tcp -a 127\.0\.0\.1 -s \d+ -n nqn\.2026-01\.io\.zns:subsys", text);
        Assert.Contains("512 zones of 64 MiB (capacity 62 MiB)", text);
        Assert.Equal(32L << 30, new FileInfo(Path.Combine(dir.Path, "zns.raw")).Length);

        Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
        await p.WaitForExitAsync(ct);
        Assert.Equal(0, p.ExitCode);
        Assert.True(File.Exists(Path.Combine(dir.Path, "zns.raw.zns")));
        var capacity = await CliRunner.RunAsync(dir.Path, "capacity", "zns.raw");
        Assert.Equal("0x003e00000\n", capacity.Out);
    }

    [Fact]
    public async Task ListeningBeyondLoopbackWithoutAllowListWarns()
    {
        using var dir = new TempDir();
        using var p = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "0.0.0.0:0"))!;
        var ct = TestContext.Current.CancellationToken;
        string? line;
        while ((line = await p.StandardOutput.ReadLineAsync(ct)) is not null && !line.StartsWith("press Ctrl-C", StringComparison.Ordinal))
        {
        }
        Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
        string err = await p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        Assert.Contains("warning: listening on 0.0.0.0:", err);
        Assert.Contains("without --allow-host", err);

        using var allowed = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "0.0.0.0:0", "--control", "off", "--allow-host", "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000aa"))!;
        while ((line = await allowed.StandardOutput.ReadLineAsync(ct)) is not null && !line.StartsWith("press Ctrl-C", StringComparison.Ordinal))
        {
        }
        Process.Start("kill", ["-TERM", allowed.Id.ToString()])!.WaitForExit();
        string err2 = await allowed.StandardError.ReadToEndAsync(ct);
        await allowed.WaitForExitAsync(ct);
        Assert.DoesNotContain("warning", err2);
        Assert.Equal(0, allowed.ExitCode);
    }

    [Fact]
    public async Task ZoneActionsAreRefusedWhileServeHasTheFile()
    {
        using var dir = new TempDir();
        Assert.Equal(0, (await CliRunner.RunAsync(dir.Path, "create", "busy.raw", "--size", "64M", "--zone-size", "8M")).Exit);
        using var p = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "busy.raw", "--listen", "127.0.0.1:0"))!;
        var ct = TestContext.Current.CancellationToken;
        string? line;
        while ((line = await p.StandardOutput.ReadLineAsync(ct)) is not null && !line.StartsWith("press Ctrl-C", StringComparison.Ordinal))
        {
        }
        var reset = await CliRunner.RunAsync(dir.Path, "reset", "busy.raw", "--all");
        Assert.Equal(2, reset.Exit);
        Assert.Equal("zns: busy.raw: in use by another zns process (stop `zns serve` first)\n", reset.Err);
        Assert.Equal(0, (await CliRunner.RunAsync(dir.Path, "report", "busy.raw")).Exit); // readers may look
        Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
        await p.WaitForExitAsync(ct);
        Assert.Equal(0, p.ExitCode);
    }
}

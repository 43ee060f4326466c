namespace Zns.Cli.Tests;

/// <summary>An argument that looks like an option and is not one is refused, not taken for a FILE.</summary>
public class UnknownOptionTests
{
    [Fact]
    public async Task Serve_WithAnUnknownOption_IsAOneLineUsageError_AndCreatesNothing()
    {
        using var dir = new TempDir();
        var serve = await CliRunner.RunAsync(dir.Path, "serve", "--size", "4G", "--no-such-flag", "VALUE");
        Assert.Equal(2, serve.Exit);
        string error = Assert.Single(serve.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--no-such-flag", error);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public async Task AFileThatStartsWithADash_IsAcceptedAfterDoubleDash()
    {
        using var dir = new TempDir();
        var refused = await CliRunner.RunAsync(dir.Path, "create", "--size", "64M", "--zone-size", "8M", "-odd.raw");
        Assert.Equal(2, refused.Exit);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));

        var create = await CliRunner.RunAsync(dir.Path, "create", "--size", "64M", "--zone-size", "8M", "--", "-odd.raw");
        Assert.Equal(0, create.Exit);
        Assert.True(File.Exists(Path.Combine(dir.Path, "-odd.raw")));
        var report = await CliRunner.RunAsync(dir.Path, "report", "--", "-odd.raw");
        Assert.Equal(0, report.Exit);
        Assert.Equal(8, report.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }
}

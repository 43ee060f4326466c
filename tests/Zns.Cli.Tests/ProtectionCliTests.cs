namespace Zns.Cli.Tests;

/// <summary>QEMU's metadata and PI options on the command line: kept by create, shown by info, bad values named.</summary>
public class ProtectionCliTests
{
    [Fact]
    public async Task CreateKeepsTheMetadataOptions_AndInfoShowsThem()
    {
        using var dir = new TempDir();
        var created = await CliRunner.RunAsync(dir.Path, "create", "pi.raw", "--size", "64M", "--zone-size", "8M", "-o", "ms=16,mset=1,pi=1,pil=1,pif=2");
        Assert.True(created.Exit == 0, created.Err);
        var info = await CliRunner.RunAsync(dir.Path, "info", "pi.raw");
        Assert.True(info.Exit == 0, info.Err);
        var lines = info.Out.Split('\n', StringSplitOptions.TrimEntries);
        foreach (string kept in new[] { "ms=16", "mset=1", "pi=1", "pil=1", "pif=2" })
        {
            Assert.Contains(kept, lines);
        }
    }

    [Theory]
    [InlineData("pi=4", "zns: pi: invalid 'pi' value")]
    [InlineData("pi=1,pif=2,ms=8", "zns: ms: at least 16 bytes of metadata required to enable protection information")]
    [InlineData("pi=1,ms=16,pif=3", "zns: pif: invalid 'pif'")]
    // A value that does not parse is named with its flag; one the namespace refuses, by the option alone (as for every option).
    [InlineData("ms=70000", "zns: -o ms: invalid number '70000'")]
    public async Task ABadValueIsRefusedNamingTheOption_AndNothingIsWritten(string list, string message)
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, "create", "x.raw", "--size", "64M", "--zone-size", "8M", "-o", list);
        Assert.Equal(2, r.Exit);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith(message, r.Err);
        Assert.False(File.Exists(Path.Combine(dir.Path, "x.raw")));
    }
}

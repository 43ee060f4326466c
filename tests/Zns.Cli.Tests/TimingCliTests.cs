namespace Zns.Cli.Tests;

/// <summary>The zn540 geometry preset and the timing options on the command line.</summary>
public class TimingCliTests
{
    [Fact]
    public async Task Create_with_the_zn540_preset_takes_the_drives_geometry()
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, "create", "d.raw", "--preset", "zn540", "--size", "8G");
        Assert.Equal(0, r.Exit);
        Assert.Contains("4 zones of 2 GiB (capacity 1077 MiB)", r.Out);
        Assert.Contains("max open 14, max active 14", r.Out);
    }

    [Theory]
    [InlineData("ram:64M,zoned.zone_size=8M,timing=slow", "timing")]
    [InlineData("ram:64M,zoned.zone_size=8M,timing.read_us=5", "timing.read_us")]
    [InlineData("ram:64M,zoned.zone_size=8M,timing=zn540,timing.zone_width=64", "timing.zone_width")]
    public async Task Bad_timing_options_are_refused_naming_the_option(string spec, string option)
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, "serve", spec, "--listen", "127.0.0.1:0");
        Assert.Equal(2, r.Exit);
        Assert.Contains(option, r.Err);
    }

    [Fact]
    public async Task Unknown_preset_is_a_usage_error()
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, "create", "d.raw", "--preset", "zn999");
        Assert.Equal(2, r.Exit);
        Assert.Contains("--preset", r.Err);
    }
}

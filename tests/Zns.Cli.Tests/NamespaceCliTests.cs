using System.Diagnostics;

namespace Zns.Cli.Tests;

/// <summary><c>zns namespace list|write-protect</c> against a running <c>zns serve</c>.</summary>
public sealed class NamespaceCliTests
{
    [Fact]
    public async Task WriteProtect_OnAndOff_IsShownByList_AndBadValuesNameTheField()
    {
        using var dir = new TempDir();
        string socket = Path.Combine(dir.Path, "control.sock");
        string control = "unix:" + socket;
        using var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0", "--control", control))!;
        try
        {
            var ct = TestContext.Current.CancellationToken;
            await CliRunner.WaitForListenAsync(server, ct);
            for (int i = 0; i < 100 && !File.Exists(socket); i++)
            {
                await Task.Delay(100, ct);
            }

            var on = await CliRunner.RunAsync(dir.Path, "namespace", "write-protect", "on", "--control", control);
            Assert.True(on.Exit == 0, on.Err);
            Assert.Equal("nsid 1: zoned, 8 zones, 64 MiB, write protected", on.Out.Trim());
            var list = await CliRunner.RunAsync(dir.Path, "namespace", "list", "--control", control);
            Assert.Equal(0, list.Exit);
            Assert.Equal("nsid 1: zoned, 8 zones, 64 MiB, write protected", list.Out.Trim());

            var bad = await CliRunner.RunAsync(dir.Path, "namespace", "write-protect", "maybe", "--control", control);
            Assert.Equal(2, bad.Exit);
            Assert.Equal("zns: STATE: 'maybe' is not on or off", bad.Err.Trim());
            var zero = await CliRunner.RunAsync(dir.Path, "namespace", "write-protect", "off", "--nsid", "0", "--control", control);
            Assert.Equal(2, zero.Exit);
            Assert.StartsWith("zns: --nsid: 0 is not a namespace", zero.Err.Trim());
            var absent = await CliRunner.RunAsync(dir.Path, "namespace", "write-protect", "off", "--nsid", "5", "--control", control);
            Assert.Equal(1, absent.Exit);
            Assert.Equal("zns: nsid: '5' is not a namespace (1..1)", absent.Err.Trim());
            // None of the refused requests lifted the protection.
            Assert.Contains("write protected", (await CliRunner.RunAsync(dir.Path, "namespace", "list", "--control", control)).Out);

            var off = await CliRunner.RunAsync(dir.Path, "namespace", "write-protect", "off", "--control", control);
            Assert.Equal(0, off.Exit);
            Assert.Equal("nsid 1: zoned, 8 zones, 64 MiB, writable", off.Out.Trim());
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync(CancellationToken.None);
        }
    }
}

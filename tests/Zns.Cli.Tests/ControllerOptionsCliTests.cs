using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Zns.Nvme;
using Zns.TestKit;

namespace Zns.Cli.Tests;

/// <summary>
/// QEMU's controller options <c>mqes</c>, <c>max_ioqpairs</c> and <c>aerl</c> on <c>zns serve</c>: what a host
/// connecting over NVMe/TCP sees of them, and the one-line refusal of a bad value.
/// </summary>
public sealed class ControllerOptionsCliTests
{
    private const string Nqn = "nqn.2026-01.io.zns:subsys";
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:7b0c6a8e-0000-4000-8000-00000000c0df";
    private static readonly Guid HostId = Guid.Parse("7b0c6a8e-0000-4000-8000-00000000c0df");

    [Theory]
    [InlineData("-o", "mqes=255,max_ioqpairs=2,aerl=7")]
    [InlineData("--mqes", "255", "--max-ioqpairs", "2", "--aerl", "7")]
    public async Task TheHostSeesTheOptionsInCapIdentifyNumberOfQueuesAndConnect(params string[] options)
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        using var server = Process.Start(CliRunner.StartInfo(dir.Path, ["serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0", "--control", "off", .. options]))!;
        try
        {
            var endPoint = await CliRunner.WaitForListenAsync(server, ct);
            await using var admin = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            Assert.True((await admin.ConnectAdminQueueAsync(Nqn, HostNqn, HostId, sqSize: 31, cancellationToken: ct)).Status.IsSuccess);

            var cap = await admin.PropertyGetAsync(0x0, eightBytes: true, ct);
            Assert.Equal(255UL, cap.Result & 0xFFFF); // CAP.MQES
            Assert.True((await admin.PropertySetAsync(0x14, 0x00460061, cancellationToken: ct)).Status.IsSuccess);

            var id = new byte[4096];
            Assert.True((await admin.IdentifyAsync(0x01, 0, id, cancellationToken: ct)).Status.IsSuccess);
            Assert.Equal(7, id[259]);                                                    // AERL
            Assert.Equal(256, BinaryPrimitives.ReadUInt16LittleEndian(id.AsSpan(514)));  // MAXCMD = MQES + 1

            var queues = await admin.SetFeaturesAsync(0x07, 0x003F_003F, ct);            // ask for 64 + 64
            Assert.True(queues.Status.IsSuccess);
            Assert.Equal(0x0001_0001UL, queues.Result & 0xFFFF_FFFF);                    // granted 2 + 2 (0's based)

            await using (var tooDeep = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct))
            {
                var refused = await tooDeep.ConnectIoQueueAsync(1, admin.ControllerId, Nqn, HostNqn, HostId, sqSize: 256, ct);
                Assert.Equal(NvmeStatus.ConnectInvalidParameters.WithDnr(), refused.Status);
                Assert.Equal(44UL, refused.Result & 0xFFFF_FFFF); // the SQE offset of SQSIZE
            }
            await using (var third = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct))
            {
                var refused = await third.ConnectIoQueueAsync(3, admin.ControllerId, Nqn, HostNqn, HostId, sqSize: 31, ct);
                Assert.Equal(NvmeStatus.ConnectInvalidParameters.WithDnr(), refused.Status);
            }
            await using var io = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            Assert.True((await io.ConnectIoQueueAsync(2, admin.ControllerId, Nqn, HostNqn, HostId, sqSize: 255, ct)).Status.IsSuccess);

            // The whole queue may be in flight at once: 256 reads outstanding on the connection (more than the
            // transport's default of 128 per connection, which follows MQES).
            var reads = Enumerable.Range(0, 256).Select(i => io.ReadAsync(1, (ulong)i, 1, new byte[4096], ct)).ToArray();
            foreach (var done in await Task.WhenAll(reads))
            {
                Assert.True(done.Status.IsSuccess, done.Status.ToString());
            }
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync(ct);
        }
    }

    [Theory]
    [InlineData("-o", "mqes=0", "zns: -o mqes: '0': mqes must be between 1 and 65535")]
    [InlineData("--mqes", "65536", "zns: --mqes: '65536': mqes must be between 1 and 65535")]
    [InlineData("-o", "zoned.zone_size=8M,max_ioqpairs=0", "zns: -o max_ioqpairs: '0': max_ioqpairs must be between 1 and 65535")]
    [InlineData("--max-ioqpairs", "65536", "zns: --max-ioqpairs: '65536': max_ioqpairs must be between 1 and 65535")]
    [InlineData("-o", "aerl=256", "zns: -o aerl: '256': aerl must be between 0 and 255")]
    [InlineData("--aerl", "-1", "zns: --aerl: '-1': aerl must be between 0 and 255")]
    public async Task ABadValueIsOneLineNamingTheOption_Exit2(string flag, string value, string message)
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0", "--control", "off", flag, value);
        Assert.Equal(2, r.Exit);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith(message, r.Err);
        Assert.Empty(r.Out);
    }

    [Fact]
    public async Task AControllerOptionInOneNamespacesListIsRefusedSayingWhereItGoes()
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, "serve", "ram:64M,zoned.zone_size=8M,mqes=63", "--listen", "127.0.0.1:0", "--control", "off");
        Assert.Equal(2, r.Exit);
        Assert.Equal("zns: ram:64M,zoned.zone_size=8M,mqes=63: mqes is a controller option (QEMU: -device nvme,mqes=...): " +
                     "give it to every namespace at once with -o mqes=N or --mqes N\n", r.Err);
    }

    [Fact]
    public async Task CreateDoesNotTakeControllerOptions()
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, "create", "x.raw", "--size", "64M", "--zone-size", "8M", "-o", "mqes=63");
        Assert.Equal(2, r.Exit);
        Assert.Contains("unknown option 'mqes'", r.Err);
        Assert.False(File.Exists(Path.Combine(dir.Path, "x.raw")));
    }
}

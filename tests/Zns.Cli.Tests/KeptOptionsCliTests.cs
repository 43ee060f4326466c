using Zns.Nvme;
using System.Buffers.Binary;
using System.Diagnostics;
using Zns.Protocol;
using Zns.TestKit;

namespace Zns.Cli.Tests;

/// <summary>
/// What <c>zns create</c> is given is what <c>zns serve FILE</c> serves: the options are kept in the zone state file,
/// <c>zns info</c> lists them, a different value at serve time follows its option's rule, and an option create
/// could not keep is refused.
/// </summary>
public sealed class KeptOptionsCliTests
{
    private const string Nqn = "nqn.2026-01.io.zns:subsys";
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:7b0c6a8e-0000-4000-8000-00000000c0de";
    private static readonly Guid HostId = Guid.Parse("7b0c6a8e-0000-4000-8000-00000000c0de");

    private const string ZrwaCopyVsl =
        "zoned.zone_size=8M,zoned.max_active=8,zoned.zrwas=64K,zoned.zrwafg=16K,zoned.numzrwa=4,mssrl=16,mcl=64,msrc=3,vsl=4,eui64=0x0011223344556677";

    private static async Task CreateAsync(TempDir dir)
    {
        var create = await CliRunner.RunAsync(dir.Path, "create", "z.raw", "--size", "64M", "-o", ZrwaCopyVsl);
        Assert.True(create.Exit == 0, create.Err);
    }

    [Fact]
    public async Task CreateWithZrwaCopyAndVslOptions_InfoShowsThemKept()
    {
        using var dir = new TempDir();
        await CreateAsync(dir);

        var info = await CliRunner.RunAsync(dir.Path, "info", "z.raw");
        Assert.True(info.Exit == 0, info.Err);
        var lines = info.Out.Split('\n', StringSplitOptions.TrimEntries);
        foreach (string kept in new[]
                 {
                     "zoned.zone_size=8M", "zoned.max_active=8", "zoned.zrwas=64K", "zoned.zrwafg=16K", "zoned.numzrwa=4",
                     "mssrl=16", "mcl=64", "msrc=3", "vsl=4", "eui64=0x0011223344556677", "mdts=7",
                 })
        {
            Assert.Contains(kept, lines);
        }
        Assert.Contains("kept in z.raw.zns (a different value at serve time is refused):", lines);
        Assert.Contains(lines, l => l.StartsWith("uuid=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ServeWithoutOptions_ServesTheKeptZrwaAndCopyLimits_AndAnOpenWithZrwaSucceeds()
    {
        using var dir = new TempDir();
        await CreateAsync(dir);
        await ServeAsync(dir, [], async (admin, io, ct) =>
        {
            var zns = new byte[4096];
            Assert.True((await admin.IdentifyAsync(0x05, 1, zns, csi: 0x02, cancellationToken: ct)).Status.IsSuccess);
            Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(zns.AsSpan(2)) & 2);        // OZCS.ZRWASUP
            Assert.Equal(4u, BinaryPrimitives.ReadUInt32LittleEndian(zns.AsSpan(44)));           // NUMZRWA
            Assert.Equal(4, BinaryPrimitives.ReadUInt16LittleEndian(zns.AsSpan(48)));            // ZRWAFG: 16 KiB in 4 KiB blocks
            Assert.Equal(16, BinaryPrimitives.ReadUInt16LittleEndian(zns.AsSpan(50)));           // ZRWAS: 64 KiB

            var id = new byte[4096];
            Assert.True((await admin.IdentifyAsync(0x00, 1, id, cancellationToken: ct)).Status.IsSuccess);
            Assert.Equal((16, 64u, 3), (BinaryPrimitives.ReadUInt16LittleEndian(id.AsSpan(74)), BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(76)), id[80])); // MSSRL, MCL, MSRC
            Assert.Equal(0x0011223344556677UL, BinaryPrimitives.ReadUInt64BigEndian(id.AsSpan(120)));                                                          // EUI64
            Assert.Equal(4, await VslAsync(admin, ct));

            var open = await OpenWithZrwaAsync(io, ct);
            Assert.True(open.Status.IsSuccess, open.Status.ToString());
        });
    }

    [Fact]
    public async Task AControllerOptionGivenAtServeTimeAppliesToThatRun_AndInfoStillShowsTheKeptValue()
    {
        using var dir = new TempDir();
        await CreateAsync(dir);
        await ServeAsync(dir, ["-o", "vsl=2"], async (admin, io, ct) =>
        {
            Assert.Equal(2, await VslAsync(admin, ct));
            Assert.True((await OpenWithZrwaAsync(io, ct)).Status.IsSuccess); // the kept ZRWA is still served
        });
        var info = await CliRunner.RunAsync(dir.Path, "info", "z.raw");
        Assert.Contains("vsl=4", info.Out.Split('\n', StringSplitOptions.TrimEntries));
    }

    [Theory]
    [InlineData("-o", "zoned.zrwas=32K", "zns: z.raw: zoned.zrwas: the zone state file keeps zoned.zrwas=64K, zoned.zrwas=32K given")]
    [InlineData("-o", "zoned.numzrwa=2", "zns: z.raw: zoned.numzrwa: the zone state file keeps zoned.numzrwa=4, zoned.numzrwa=2 given")]
    [InlineData("-o", "mcl=32", "zns: z.raw: mcl: the zone state file keeps mcl=64, mcl=32 given")]
    [InlineData("--max-active", "16", "zns: z.raw: --max-active (zoned.max_active): the zone state file keeps zoned.max_active=8, zoned.max_active=16 given")]
    public async Task ADifferentValueAtServeTime_IsRefusedInOneLineNamingTheOptionAndBothValues_Exit2(string flag, string value, string message)
    {
        using var dir = new TempDir();
        await CreateAsync(dir);
        var ct = TestContext.Current.CancellationToken;
        using var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "z.raw", "--listen", "127.0.0.1:0", "--control", "off", flag, value))!;
        var stdout = server.StandardOutput.ReadToEndAsync(ct);
        var stderr = server.StandardError.ReadToEndAsync(ct);
        // A server that took the value would serve until stopped: give it a minute to refuse instead.
        using (var refusal = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            refusal.CancelAfter(TimeSpan.FromMinutes(1));
            try
            {
                await server.WaitForExitAsync(refusal.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                server.Kill();
                await server.WaitForExitAsync(ct);
                Assert.Fail($"zns serve {flag} {value} served instead of refusing: {await stdout}");
            }
        }
        Assert.Equal(2, server.ExitCode);
        string err = await stderr;
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith(message, err);
        Assert.Empty(await stdout);
    }

    [Theory]
    [InlineData("-o", "timing=zn540", "zns: -o timing: the timing is a run-time option, not kept")]
    [InlineData("-o", "zoned.zone_size=8M,timing=fixed,timing.latency_us=5", "zns: -o timing: the timing is a run-time option, not kept")]
    [InlineData("-o", "nsid=2", "zns: -o nsid: the namespace ID is given out when the namespace is served")]
    [InlineData("-o", "physical_block_size=4096", "zns: -o physical_block_size: a hint zns does not use")]
    [InlineData("--zoned", "off", "zns: --zone-size: a conventional namespace (zoned=off) has no zones, so it keeps no zoned.zone_size")]
    public async Task AnOptionCreateCannotKeep_IsRefusedNamingIt_AndNothingIsWritten(string flag, string value, string message)
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, "create", "x.raw", "--size", "64M", "--zone-size", "8M", flag, value);
        Assert.Equal(2, r.Exit);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith(message, r.Err);
        Assert.False(File.Exists(Path.Combine(dir.Path, "x.raw")));
    }

    /// <summary>Serves z.raw, connects an admin and an I/O queue, runs <paramref name="check"/>, then stops the server.</summary>
    private static async Task ServeAsync(TempDir dir, string[] options,
        Func<NvmeTcpInitiator, NvmeTcpInitiator, CancellationToken, Task> check)
    {
        var ct = TestContext.Current.CancellationToken;
        using var server = Process.Start(CliRunner.StartInfo(dir.Path, ["serve", "z.raw", "--listen", "127.0.0.1:0", "--control", "off", .. options]))!;
        try
        {
            var endPoint = await CliRunner.WaitForListenAsync(server, ct);
            await using var admin = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            Assert.True((await admin.ConnectAdminQueueAsync(Nqn, HostNqn, HostId, sqSize: 31, cancellationToken: ct)).Status.IsSuccess);
            Assert.True((await admin.PropertySetAsync(0x14, 0x00460061, cancellationToken: ct)).Status.IsSuccess); // CC.EN, I/O queue entry sizes
            await using var io = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            Assert.True((await io.ConnectIoQueueAsync(1, admin.ControllerId, Nqn, HostNqn, HostId, sqSize: 31, ct)).Status.IsSuccess);
            await check(admin, io, ct);
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync(ct);
        }
    }

    /// <summary>VSL from the NVM command set's Identify Controller (CNS 06h, CSI 00h), byte 0.</summary>
    private static async Task<byte> VslAsync(NvmeTcpInitiator admin, CancellationToken ct)
    {
        var nvm = new byte[4096];
        Assert.True((await admin.IdentifyAsync(0x06, 0, nvm, csi: 0x00, cancellationToken: ct)).Status.IsSuccess);
        return nvm[0];
    }

    /// <summary>Zone Management Send Open of zone 0 with ZSASO (CDW13 bit 9): allocate a Zone Random Write Area.</summary>
    private static Task<CompletionQueueEntry> OpenWithZrwaAsync(NvmeTcpInitiator io, CancellationToken ct)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(IoOpcode.ZoneManagementSend);
        sqe.SetNamespaceId(1);
        sqe.SetCdw10_11(0);
        sqe.SetCdw(13, 0x03 | 1u << 9);
        return io.SubmitAsync(sqe, cancellationToken: ct);
    }
}

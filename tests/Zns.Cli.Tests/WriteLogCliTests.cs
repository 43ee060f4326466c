using System.Diagnostics;
using System.Net;
using Zns.Nvme;
using Zns.TestKit;

namespace Zns.Cli.Tests;

/// <summary>
/// <c>zns serve --write-log</c> and <c>zns replay</c> as a user runs them: a host writes over NVMe/TCP, the log lists
/// what it did, a replay rebuilds a crash point that <c>zns serve</c> then serves, and every bad input is one line.
/// </summary>
public sealed class WriteLogCliTests
{
    private const int Bs = 4096;
    private const int ZoneBlocks = 64;
    private const string Nqn = "nqn.2026-01.io.zns:subsys";
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:7b0c6a8e-0000-4000-8000-00000000beef";
    private static readonly Guid HostId = Guid.Parse("7b0c6a8e-0000-4000-8000-00000000beef");

    private static async Task<(NvmeTcpInitiator Admin, NvmeTcpInitiator Io)> ConnectAsync(IPEndPoint endPoint, CancellationToken ct)
    {
        var admin = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
        Assert.True((await admin.ConnectAdminQueueAsync(Nqn, HostNqn, HostId, keepAliveTimeoutMs: 30000, cancellationToken: ct)).Status.IsSuccess);
        Assert.True((await admin.PropertySetAsync(0x14, 0x00460061, cancellationToken: ct)).Status.IsSuccess);
        var io = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
        Assert.True((await io.ConnectIoQueueAsync(1, admin.ControllerId, Nqn, HostNqn, HostId, cancellationToken: ct)).Status.IsSuccess);
        return (admin, io);
    }

    private static byte[] Data(int blocks, byte fill) => Enumerable.Repeat(fill, blocks * Bs).ToArray();

    private static async Task StopAsync(Process server, CancellationToken ct)
    {
        Process.Start("kill", ["-TERM", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
        await server.WaitForExitAsync(ct);
        Assert.Equal(0, server.ExitCode);
    }

    /// <summary>Serves a new 8-zone backstore with a write log in DIR/logs; the host writes, appends, flushes and resets.</summary>
    private static async Task LogAStreamAsync(TempDir dir, CancellationToken ct)
    {
        var create = await CliRunner.RunAsync(dir.Path, "create", "live.raw", "--size", $"{8 * ZoneBlocks * Bs}", "--zone-size", $"{ZoneBlocks * Bs}");
        Assert.Equal(0, create.Exit);
        using var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "live.raw", "--listen", "127.0.0.1:0", "--control", "off", "--write-log", "logs"))!;
        var endPoint = await CliRunner.WaitForListenAsync(server, ct);
        var (admin, io) = await ConnectAsync(endPoint, ct);
        await using (admin)
        await using (io)
        {
            Assert.True((await io.WriteAsync(1, 0, 4, Data(4, 0xA1), ct)).Status.IsSuccess);                          // 0
            Assert.Equal(ZoneBlocks, (long)(await io.ZoneAppendAsync(1, ZoneBlocks, 2, Data(2, 0xB2), ct)).Result); // 1
            Assert.True((await io.SubmitAsync(NvmeTcpInitiator.IoCommand(IoOpcode.Flush, 1, 0, 1), cancellationToken: ct)).Status.IsSuccess); // 2
            Assert.True((await io.WriteAsync(1, 4, 2, Data(2, 0xC3), ct)).Status.IsSuccess);                          // 3
            Assert.False((await io.WriteAsync(1, 10, 1, Data(1, 0xEE), ct)).Status.IsSuccess);                        // refused: not logged
            Assert.True((await io.ZoneManagementSendAsync(1, ZoneBlocks, 0x04, cancellationToken: ct)).Status.IsSuccess); // 4 reset zone 1
            Assert.True((await io.SubmitAsync(NvmeTcpInitiator.IoCommand(IoOpcode.Flush, 1, 0, 1), cancellationToken: ct)).Status.IsSuccess); // 5
            Assert.True((await io.WriteAsync(1, 2 * ZoneBlocks, 3, Data(3, 0xD4), ct)).Status.IsSuccess);             // 6
        }
        await StopAsync(server, ct);
    }

    [Fact]
    public async Task ServeLogsTheHostsCommandsAndReplayListsThem()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await LogAStreamAsync(dir, ct);
        var list = await CliRunner.RunAsync(dir.Path, "replay", "logs", "--list");
        Assert.Equal(0, list.Exit);
        Assert.Equal("", list.Err);
        string[] lines = list.Out.TrimEnd().Split('\n');
        Assert.StartsWith("logs/ns1.wlog: nsid 1, 2 MiB, zoned, zone size 256 KiB, capacity 256 KiB, 4096-byte blocks, uuid ", lines[0]);
        Assert.Equal(
        [
            "   ENTRY  KIND          NSID           LBA    ZONE  BLOCKS  NOTE",
            "       0  write            1             0       0       4",
            "       1  append           1            64       1       2",
            "       2  FLUSH 1          1             -       -       -",
            "       3  write            1             4       0       2",
            "       4  zone-reset       1            64       1       -",
            "       5  FLUSH 2          1             -       -       -",
            "       6  write            1           128       2       3",
            "7 entries, 2 flushes",
        ], lines[1..]);
    }

    [Fact]
    public async Task ReplayRebuildsACrashPointThatServeServes()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await LogAStreamAsync(dir, ct);
        var to = await CliRunner.RunAsync(dir.Path, "replay", "logs", "--to", "3", "--image", "at3.raw");
        Assert.Equal((0, ""), (to.Exit, to.Err));
        Assert.Equal("zns: at3.raw: rebuilt after entry 3 (entry 3); serve it with: zns serve at3.raw\n", to.Out);
        var flush = await CliRunner.RunAsync(dir.Path, "replay", "logs", "--flush", "1", "--image", "f1.raw", "--keep", "none");
        Assert.Equal((0, ""), (flush.Exit, flush.Err));
        var cut = await CliRunner.RunAsync(dir.Path, "replay", "logs", "--to", "3", "--image", "cut.raw", "--keep", "none");
        Assert.Equal((0, ""), (cut.Exit, cut.Err));

        // After entry 3: zone 0 holds 4 blocks of A1 then 2 of C3; zone 1 the appended 2 blocks (not yet reset).
        using (var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "at3.raw", "--listen", "127.0.0.1:0", "--control", "off"))!)
        {
            var (admin, io) = await ConnectAsync(await CliRunner.WaitForListenAsync(server, ct), ct);
            await using (admin)
            await using (io)
            {
                var buffer = new byte[7 * Bs];
                Assert.True((await io.ReadAsync(1, 0, 7, buffer, ct)).Status.IsSuccess);
                Assert.Equal([.. Data(4, 0xA1), .. Data(2, 0xC3), .. new byte[Bs]], buffer);
                var appended = new byte[2 * Bs];
                Assert.True((await io.ReadAsync(1, ZoneBlocks, 2, appended, ct)).Status.IsSuccess);
                Assert.Equal(Data(2, 0xB2), appended);
            }
            await StopAsync(server, ct);
        }
        // The same point with --keep none: the 2 blocks written after flush 1 are gone, zone 0's write pointer back at 4.
        var report = await CliRunner.RunAsync(dir.Path, "report", "cut.raw");
        Assert.Equal(0, report.Exit);
        Assert.Contains("start: 0x000000000, len 0x000200, cap 0x000200, wptr 0x000020 ", report.Out);
        Assert.Equal(Data(4, 0xA1).Concat(new byte[2 * Bs]), File.ReadAllBytes(Path.Combine(dir.Path, "cut.raw")).AsSpan(0, 6 * Bs).ToArray());
        Assert.Contains("start: 0x000000200, len 0x000200, cap 0x000200, wptr 0x000010 ", (await CliRunner.RunAsync(dir.Path, "report", "f1.raw")).Out);
    }

    [Fact]
    public async Task BadInputGetsOneLineAndLosesNothing()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await LogAStreamAsync(dir, ct);
        byte[] log = File.ReadAllBytes(Path.Combine(dir.Path, "logs", "ns1.wlog"));

        async Task Refused(string expected, params string[] args)
        {
            var r = await CliRunner.RunAsync(dir.Path, args);
            Assert.Equal((2, "", $"zns: {expected}\n"), (r.Exit, r.Out, r.Err));
        }
        await Refused("--keep: 'most' is not none, all or random", "replay", "logs", "--to", "1", "--image", "x.raw", "--keep", "most");
        await Refused("--to 7: the log's entries are 0..6", "replay", "logs", "--to", "7", "--image", "x.raw");
        await Refused("--flush 3: the log has 2 flushes", "replay", "logs", "--flush", "3", "--image", "x.raw");
        await Refused("--to: 'last' is not a whole number ≥ 0", "replay", "logs", "--to", "last", "--image", "x.raw");
        await Refused("--to: needs --image FILE", "replay", "logs", "--to", "1");
        await Refused("replay: give one of --list, --to ENTRY or --flush N", "replay", "logs", "--to", "1", "--flush", "1", "--image", "x.raw");
        await Refused("--torn: needs --keep random (a torn write is a partly kept one)", "replay", "logs", "--to", "1", "--image", "x.raw", "--keep", "none", "--torn");
        await Refused("nowhere: no such write log directory", "replay", "nowhere", "--list");
        await Refused("--nsid 2: logs holds no log of namespace 2", "replay", "logs", "--nsid", "2", "--list");
        await Refused("--image live.raw: already exists; replay writes a new image: remove it (and live.raw.zns) first", "replay", "logs", "--to", "1", "--image", "live.raw");
        Assert.False(File.Exists(Path.Combine(dir.Path, "x.raw")));

        // serve: the log directory cannot be made, a log is already there, a bound below 1M.
        await Refused("--write-log live.raw/logs: cannot create the directory: " + CreateDirectoryError(Path.Combine(dir.Path, "live.raw", "logs")),
            "serve", "live.raw", "--listen", "127.0.0.1:0", "--control", "off", "--write-log", "live.raw/logs");
        await Refused("--write-log: logs/ns1.wlog: a write log is already there; replay or move it, or choose another directory",
            "serve", "live.raw", "--listen", "127.0.0.1:0", "--control", "off", "--write-log", "logs");
        await Refused("--write-log-size: 64K is below the least, 1M",
            "serve", "live.raw", "--listen", "127.0.0.1:0", "--control", "off", "--write-log", "other", "--write-log-size", "64K");
        await Refused("--write-log: other/ns1.wlog: namespace 1 is not empty (zone 0 is Closed); a replay starts from an empty namespace: reset its zones or reformat it first",
            "serve", "live.raw", "--listen", "127.0.0.1:0", "--control", "off", "--write-log", "other");
        Assert.Equal(log, File.ReadAllBytes(Path.Combine(dir.Path, "logs", "ns1.wlog")));

        // A damaged entry: --list shows the good ones and says where it stopped; replay before it works, past it is refused.
        using (var reader = Core.Recording.WriteLogReader.Open(Path.Combine(dir.Path, "logs", "ns1.wlog")))
        {
            var entries = reader.ReadAll();
            log[entries[3].Offset + 60] ^= 1;
            File.WriteAllBytes(Path.Combine(dir.Path, "logs", "ns1.wlog"), log);
            var list = await CliRunner.RunAsync(dir.Path, "replay", "logs", "--list");
            Assert.Equal(0, list.Exit);
            Assert.EndsWith("3 entries, 1 flushes\n", list.Out);
            Assert.Equal($"zns: warning: logs/ns1.wlog: entry 3 at byte {entries[3].Offset} is damaged (CRC mismatch); the 3 entries before it are good\n", list.Err);
            var before = await CliRunner.RunAsync(dir.Path, "replay", "logs", "--flush", "1", "--image", "ok.raw");
            Assert.Equal(0, before.Exit);
            Assert.Equal($"zns: warning: logs/ns1.wlog: entry 3 at byte {entries[3].Offset} is damaged (CRC mismatch); the entries before it are good\n", before.Err);
            await Refused($"--to 3: the log's entries are 0..2 (entry 3 at byte {entries[3].Offset} is damaged (CRC mismatch); entries after it cannot be replayed)",
                "replay", "logs", "--to", "3", "--image", "x.raw");
        }
    }

    [Fact]
    public async Task TheCrashPointScriptRebuildsEachPointAndRunsTheCheckOnIt()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await LogAStreamAsync(dir, ct);
        string script = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "tools", "replay-crash-points.sh");
        string zns = CliRunner.ZnsExecutable ?? $"dotnet {CliRunner.ZnsDll}";
        async Task<(int Exit, string Out)> RunAsync(params string[] args)
        {
            var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir.Path };
            psi.ArgumentList.Add(script);
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }
            psi.Environment["ZNS"] = zns;
            using var p = Process.Start(psi)!;
            string output = await p.StandardOutput.ReadToEndAsync(ct);
            await p.WaitForExitAsync(ct);
            return (p.ExitCode, output);
        }

        // The check saves each image's zone 0 report line; it fails on the point after flush 2.
        string check = "$ZNS report \"$1\" | head -n 1 > \"$(basename \"$1\").txt\"; [ \"$ZNS_POINT\" != '--flush 2' ]";
        var flushes = await RunAsync("logs", "--every-flush", "--check", check, "--work", "work", "--keep", "none");
        Assert.Equal(1, flushes.Exit);
        string[] lines = flushes.Out.TrimEnd().Split('\n');
        Assert.Equal("1..2", lines[0]);
        Assert.Equal("ok 1 - --flush 1 --keep none", lines[1]);
        Assert.StartsWith("not ok 2 - --flush 2 --keep none: check failed; rebuild it with: zns replay logs --flush 2 --image FILE --keep none", lines[2]);
        // After flush 1 zone 0 holds 4 blocks (32 sectors); after flush 2, 6 (48).
        Assert.Contains("wptr 0x000020 ", File.ReadAllText(Path.Combine(dir.Path, "point-1.raw.txt")));
        Assert.Contains("wptr 0x000030 ", File.ReadAllText(Path.Combine(dir.Path, "point-2.raw.txt")));
        Assert.False(File.Exists(Path.Combine(dir.Path, "work", "point-1.raw")));

        var spread = await RunAsync("logs", "--count", "3", "--check", "test -s \"$ZNS_IMAGE\" && test -s \"$1.zns\"", "--keep", "random", "--torn", "--seed", "5");
        Assert.Equal((0, "1..3\nok 1 - --to 2 --keep random --seed 5 --torn\nok 2 - --to 4 --keep random --seed 6 --torn\nok 3 - --to 6 --keep random --seed 7 --torn\n"), spread);

        var bad = await RunAsync("logs", "--count", "3", "--check", "true", "--keep", "most");
        Assert.Equal(2, bad.Exit);
    }

    [Fact]
    public async Task AFullLogStopsWithItsReasonInTheControlApiAndTheDeviceGoesOn()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        using var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "ram:8M,zoned.zone_size=2M", "--listen", "127.0.0.1:0",
            "--control", "127.0.0.1:0", "--write-log", "logs", "--write-log-size", "1M"))!;
        var (endPoint, control) = await CliRunner.WaitForControlAsync(server, ct);
        using var http = new HttpClient { BaseAddress = new Uri($"http://{control}/") };
        var (admin, io) = await ConnectAsync(endPoint, ct);
        await using (admin)
        await using (io)
        {
            Assert.Contains("\"writeLog\":{\"path\":\"logs/ns1.wlog\",\"entries\":0,\"flushes\":0,\"bytes\":4096,\"maxBytes\":1048576,\"dropped\":0}",
                await http.GetStringAsync("api/namespaces", ct));
            // 10 writes of 128 KiB: the eighth no longer fits in 1 MiB.
            for (int i = 0; i < 10; i++)
            {
                Assert.True((await io.WriteAsync(1, (ulong)(i * 32), 32, Data(32, (byte)i), ct)).Status.IsSuccess);
            }
            string json = await http.GetStringAsync("api/namespaces", ct);
            Assert.Contains("\"entries\":8,\"flushes\":0,", json);
            Assert.Contains("\"dropped\":3,\"stopped\":\"logs/ns1.wlog: write log full (", json);
            Assert.Contains("entries 0..6 are kept; nothing after them is recorded, the namespace goes on serving", json);
            var back = new byte[32 * Bs];
            Assert.True((await io.ReadAsync(1, 9 * 32, 32, back, ct)).Status.IsSuccess);
            Assert.Equal(Data(32, 9), back);
        }
        await StopAsync(server, ct);
        var list = await CliRunner.RunAsync(dir.Path, "replay", "logs", "--list");
        Assert.Contains("       7  LOG FULL         1             -       -       -\n8 entries, 0 flushes; the log filled up: nothing after the last entry was recorded\n", list.Out);
    }

    private static string CreateDirectoryError(string path)
    {
        try
        {
            Directory.CreateDirectory(path);
            return "";
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }
}

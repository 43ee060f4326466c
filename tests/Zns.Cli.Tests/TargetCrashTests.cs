using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Zns.Nvme;
using Zns.Protocol;
using Zns.TestKit;

namespace Zns.Cli.Tests;

/// <summary>
/// Crash safety under load: an NVMe/TCP host (the test initiator) writes, appends, resets and flushes across many
/// zones while <c>zns serve</c> is killed with SIGKILL at random instants. After every kill the target is restarted
/// and the persistence contract is checked over the wire: every block below a write pointer holds data the host
/// wrote there, no flushed (or FUA) write is lost, zones come back Empty, Closed or Full.
/// </summary>
public class TargetCrashTests
{
    private static readonly int Cycles = int.TryParse(Environment.GetEnvironmentVariable("ZNS_TARGET_CRASH_CYCLES"), out int n) ? n : 12;
    private const int Zones = 32;
    private const int ZoneBlocks = 64;      // 256 KiB zones of 4 KiB blocks
    private const int CapacityBlocks = 48;
    private const int Bs = 4096;
    private const string Nqn = "nqn.2026-01.io.zns:subsys";
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:7b0c6a8e-0000-4000-8000-00000000c0de";
    private static readonly Guid HostId = Guid.Parse("7b0c6a8e-0000-4000-8000-00000000c0de");

    private sealed class ZoneModel
    {
        public ulong Gen;
        public int Wp;            // relative; what the host knows completed
        public bool Full;
        public ulong FlushedGen;  // last durable point
        public int FlushedWp;
        public bool ResetSinceFlush;
    }

    [Fact]
    public async Task SigkillOfTheTargetUnderLoadKeepsTheContract()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var create = await CliRunner.RunAsync(dir.Path, "create", "crash.raw", "--size", $"{Zones * ZoneBlocks * Bs}",
            "--zone-size", $"{ZoneBlocks * Bs}", "--zone-capacity", $"{CapacityBlocks * Bs}");
        Assert.Equal(0, create.Exit);
        var rng = new Random(4242);
        var zones = Enumerable.Range(0, Zones).Select(_ => new ZoneModel()).ToArray();
        int totalOps = 0, totalDurable = 0;

        for (int cycle = 1; cycle <= Cycles; cycle++)
        {
            using var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "crash.raw", "--listen", "127.0.0.1:0"))!;
            var endPoint = await CliRunner.WaitForListenAsync(server, ct);
            await using var admin = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            Assert.True((await admin.ConnectAdminQueueAsync(Nqn, HostNqn, HostId, keepAliveTimeoutMs: 30000, cancellationToken: ct)).Status.IsSuccess);
            Assert.True((await admin.PropertySetAsync(0x14, 0x00460061, cancellationToken: ct)).Status.IsSuccess);
            await using var io = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            Assert.True((await io.ConnectIoQueueAsync(1, admin.ControllerId, Nqn, HostNqn, HostId, cancellationToken: ct)).Status.IsSuccess);

            await CheckAsync(io, zones, cycle, ct);

            // Load until the kill: the writer stops at the first command the dead target cannot answer.
            ulong nextGen = ((ulong)cycle << 32) + 1;
            using var killAt = new CancellationTokenSource(TimeSpan.FromMilliseconds(rng.Next(100, 700)));
            var writer = Task.Run(async () =>
            {
                var data = new byte[4 * Bs];
                while (true)
                {
                    int z = rng.Next(Zones);
                    var m = zones[z];
                    ulong zslba = (ulong)(z * ZoneBlocks);
                    int op = rng.Next(100);
                    CompletionQueueEntry c;
                    if (op < 4)
                    {
                        m.ResetSinceFlush = true; // from here on, the reset may or may not be durable
                        c = await io.ZoneManagementSendAsync(1, zslba, 0x04, cancellationToken: ct);
                        if (!c.Status.IsSuccess) { throw new InvalidOperationException($"reset: {c.Status}"); }
                        m.Gen = nextGen++; m.Wp = 0; m.Full = false;
                        m.FlushedGen = m.Gen; m.FlushedWp = 0; m.ResetSinceFlush = false; // a completed reset is durable
                    }
                    else if (op < 12)
                    {
                        c = await io.SubmitAsync(NvmeTcpInitiator.IoCommand(IoOpcode.Flush, 1, 0, 1), cancellationToken: ct);
                        if (!c.Status.IsSuccess) { throw new InvalidOperationException($"flush: {c.Status}"); }
                        foreach (var zm in zones) { zm.FlushedGen = zm.Gen; zm.FlushedWp = zm.Wp; zm.ResetSinceFlush = false; }
                        Interlocked.Increment(ref totalDurable);
                    }
                    else if (!m.Full)
                    {
                        if (m.Gen == 0) { m.Gen = nextGen++; m.FlushedGen = m.Gen; }
                        int nlb = Math.Min(CapacityBlocks - m.Wp, 1 + rng.Next(4));
                        for (int i = 0; i < nlb; i++)
                        {
                            Fill(data.AsSpan(i * Bs, Bs), z, zslba + (ulong)(m.Wp + i), m.Gen);
                        }
                        bool append = op >= 60, fua = op < 16;
                        var sqe = NvmeTcpInitiator.IoCommand(append ? IoOpcode.ZoneAppend : IoOpcode.Write, 1, append ? zslba : zslba + (ulong)m.Wp, nlb);
                        if (fua) { sqe.SetCdw(12, sqe.Cdw12 | (1u << 30)); }
                        c = await io.SubmitAsync(sqe, data.AsMemory(0, nlb * Bs), cancellationToken: ct);
                        if (!c.Status.IsSuccess) { throw new InvalidOperationException($"write: {c.Status}"); }
                        if (append && c.Result != zslba + (ulong)m.Wp) { throw new InvalidOperationException($"append landed at {c.Result}, expected {zslba + (ulong)m.Wp}"); }
                        m.Wp += nlb;
                        m.Full = m.Wp == CapacityBlocks;
                        if (fua) { m.FlushedGen = m.Gen; m.FlushedWp = m.Wp; m.ResetSinceFlush = false; Interlocked.Increment(ref totalDurable); }
                    }
                    Interlocked.Increment(ref totalOps);
                }
            }, ct);
            try
            {
                await Task.Delay(Timeout.Infinite, killAt.Token);
            }
            catch (OperationCanceledException) when (killAt.IsCancellationRequested)
            {
            }
            server.Kill(); // SIGKILL
            await server.WaitForExitAsync(ct);
            var error = await Record.ExceptionAsync(() => writer);
            Assert.True(error is not InvalidOperationException ioe || !ioe.Message.StartsWith("append landed", StringComparison.Ordinal), error?.Message);
        }

        // One last restart to check the state the final kill left.
        using (var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "crash.raw", "--listen", "127.0.0.1:0"))!)
        {
            var endPoint = await CliRunner.WaitForListenAsync(server, ct);
            await using var admin = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            await admin.ConnectAdminQueueAsync(Nqn, HostNqn, HostId, keepAliveTimeoutMs: 30000, cancellationToken: ct);
            await admin.PropertySetAsync(0x14, 0x00460061, cancellationToken: ct);
            await using var io = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            await io.ConnectIoQueueAsync(1, admin.ControllerId, Nqn, HostNqn, HostId, cancellationToken: ct);
            await CheckAsync(io, zones, Cycles + 1, ct);
            server.Kill();
        }
        Assert.True(totalOps > Cycles * 5, $"only {totalOps} operations in {Cycles} cycles");
        Assert.True(totalDurable > Cycles, $"only {totalDurable} durability points in {Cycles} cycles");
    }

    private static void Fill(Span<byte> block, int zone, ulong lba, ulong gen)
    {
        block.Fill((byte)(lba + gen));
        BinaryPrimitives.WriteUInt32LittleEndian(block, 0x5A4E5332);
        BinaryPrimitives.WriteUInt32LittleEndian(block[4..], (uint)zone);
        BinaryPrimitives.WriteUInt64LittleEndian(block[8..], lba);
        BinaryPrimitives.WriteUInt64LittleEndian(block[16..], gen);
    }

    /// <summary>Checks the recovered zones over the wire and makes the host's model match them.</summary>
    private static async Task CheckAsync(NvmeTcpInitiator io, ZoneModel[] zones, int cycle, CancellationToken ct)
    {
        var report = new byte[64 + Zones * 64];
        Assert.True((await io.ZoneManagementReceiveAsync(1, 0, report, cancellationToken: ct)).Status.IsSuccess);
        Assert.Equal((ulong)Zones, BinaryPrimitives.ReadUInt64LittleEndian(report));
        var block = new byte[Bs];
        for (int z = 0; z < Zones; z++)
        {
            var d = report.AsSpan(64 + z * 64, 64);
            int state = d[1] >> 4;
            ulong zslba = (ulong)(z * ZoneBlocks);
            Assert.Equal(zslba, BinaryPrimitives.ReadUInt64LittleEndian(d[16..]));
            string where = $"cycle {cycle}, zone {z} (state {state:x})";
            Assert.True(state is 0x1 or 0x4 or 0xE, $"{where}: after a restart zones are Empty, Closed or Full");
            ulong wpLba = BinaryPrimitives.ReadUInt64LittleEndian(d[24..]);
            int written;
            if (state == 0xE)
            {
                // Full: the data ends where the host's model says or later; find it by reading.
                written = 0;
                while (written < CapacityBlocks)
                {
                    Assert.True((await io.ReadAsync(1, zslba + (ulong)written, 1, block, ct)).Status.IsSuccess);
                    if (BinaryPrimitives.ReadUInt32LittleEndian(block) != 0x5A4E5332) { break; }
                    written++;
                }
            }
            else
            {
                written = (int)(wpLba - zslba);
                Assert.True(state != 0x1 || written == 0, $"{where}: empty zone with write pointer +{written}");
            }
            ulong? gen = null;
            for (int i = 0; i < written; i++)
            {
                ulong lba = zslba + (ulong)i;
                Assert.True((await io.ReadAsync(1, lba, 1, block, ct)).Status.IsSuccess);
                Assert.True(BinaryPrimitives.ReadUInt32LittleEndian(block) == 0x5A4E5332, $"{where}: block {lba} below the write pointer holds no written data");
                Assert.Equal((uint)z, BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(4)));
                Assert.Equal(lba, BinaryPrimitives.ReadUInt64LittleEndian(block.AsSpan(8)));
                ulong g = BinaryPrimitives.ReadUInt64LittleEndian(block.AsSpan(16));
                gen ??= g;
                Assert.True(gen == g, $"{where}: block {lba} from generation {g}, zone from {gen}");
            }
            var m = zones[z];
            if (gen is { } recovered && recovered == m.FlushedGen)
            {
                Assert.True(written >= m.FlushedWp, $"{where}: +{m.FlushedWp} blocks were durable, +{written} came back");
            }
            else if (gen is { } newer)
            {
                Assert.True(newer > m.FlushedGen && m.ResetSinceFlush, $"{where}: data of generation {newer}, durable was {m.FlushedGen} and no reset followed");
            }
            else
            {
                Assert.True(m.FlushedWp == 0 || m.ResetSinceFlush, $"{where}: empty, but +{m.FlushedWp} blocks were durable");
            }
            // The host continues from what the target recovered.
            m.Gen = gen ?? 0; m.Wp = written; m.Full = state == 0xE;
            m.FlushedGen = m.Gen; m.FlushedWp = written; m.ResetSinceFlush = false;
            if (m.Full && m.Wp < CapacityBlocks)
            {
                m.Wp = CapacityBlocks;
            }
        }
    }
}

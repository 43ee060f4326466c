using System.Buffers.Binary;
using System.Diagnostics;
using Zns.Core.Storage;
using Zns.Core.Zones;

namespace Zns.Core.Tests;

/// <summary>
/// Kills a writer process with SIGKILL at random instants, reopens the namespace after each kill and checks the
/// persistence contract: every block below a write pointer holds data the writer wrote there (never zeros or stale
/// data), no flushed write is lost, zones come back Empty/Closed/Full (a restart is a power cycle).
/// </summary>
public class CrashTests
{
    private static readonly int Cycles = int.TryParse(Environment.GetEnvironmentVariable("ZNS_CRASH_CYCLES"), out int n) ? n : 25;

    [Fact]
    public async Task SigkillAtRandomInstantsKeepsTheContract()
    {
        using var dir = new TempDir();
        string path = dir.File("crash.raw");
        FileBackstore.Create(path, CrashGeometry.Size, preallocate: false);
        string writer = Path.Combine(AppContext.BaseDirectory, "Zns.CrashWriter.dll");
        var rng = new Random(12345);
        int totalFlushes = 0;
        for (int cycle = 1; cycle <= Cycles; cycle++)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { writer, path, rng.Next().ToString(), cycle.ToString() })
            {
                psi.ArgumentList.Add(a);
            }
            using var p = Process.Start(psi)!;
            var lines = new List<string>();
            var ct = TestContext.Current.CancellationToken;
            var stderr = p.StandardError.ReadToEndAsync(ct);
            var reader = Task.Run(() =>
            {
                string? line;
                while ((line = p.StandardOutput.ReadLine()) is not null)
                {
                    lock (lines) { lines.Add(line); }
                }
            }, ct);
            // Wait until the writer is running (first F line), then let it work for a random time.
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed < TimeSpan.FromSeconds(30))
            {
                lock (lines) { if (lines.Count > 0) { break; } }
                if (p.HasExited) { break; }
                await Task.Delay(5, ct);
            }
            Assert.False(p.HasExited, "writer exited early: " + (p.HasExited ? await stderr : ""));
            await Task.Delay(rng.Next(20, 400), ct);
            p.Kill(); // SIGKILL
            await p.WaitForExitAsync(ct);
            await reader;
            string[] log;
            lock (lines) { log = lines.ToArray(); }
            totalFlushes += log.Count(l => l.StartsWith('F'));
            Check(path, log, cycle);
        }
        Assert.True(totalFlushes > Cycles, $"the writer flushed only {totalFlushes} times in {Cycles} cycles");
    }

    private static void Check(string path, string[] log, int cycle)
    {
        // The last complete durability point, and the zones with a reset issued after it.
        int lastF = Array.FindLastIndex(log, l => l.StartsWith("F ") && l.Split(' ').Length == 33);
        Assert.True(lastF >= 0, $"cycle {cycle}: no durability point in the log");
        var flushed = log[lastF].Split(' ').Skip(1).Select(t => t.Split(':')).ToDictionary(t => uint.Parse(t[0]), t => (Gen: ulong.Parse(t[1]), Wp: ulong.Parse(t[2])));
        var resetAfter = log.Skip(lastF + 1).Where(l => l.StartsWith("r ")).Select(l => uint.Parse(l[2..])).ToHashSet();

        using var ns = ZonedNamespace.OpenFile(path, CrashGeometry.Options);
        var g = ns.Geometry;
        var block = new byte[g.BlockSize];
        for (uint z = 0; z < g.ZoneCount; z++)
        {
            var info = ns.GetZone(z);
            string where = $"cycle {cycle}, zone {z} ({info.State}, wp +{info.WritePointer - info.StartLba})";
            Assert.Contains(info.State, new[] { ZoneState.Empty, ZoneState.Closed, ZoneState.Full });
            if (info.State == ZoneState.Empty)
            {
                Assert.Equal(info.StartLba, info.WritePointer);
            }
            ulong written = info.WritePointer - info.StartLba;
            ulong? gen = null;
            for (ulong i = 0; i < written; i++)
            {
                ulong lba = info.StartLba + i;
                Assert.True(ns.Read(lba, block).IsSuccess);
                Assert.True(BinaryPrimitives.ReadUInt32LittleEndian(block) == 0x5A4E5331, $"{where}: block {lba} below the write pointer holds no written data");
                Assert.Equal(z, BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(4)));
                Assert.Equal(lba, BinaryPrimitives.ReadUInt64LittleEndian(block.AsSpan(8)));
                ulong g2 = BinaryPrimitives.ReadUInt64LittleEndian(block.AsSpan(16));
                gen ??= g2;
                Assert.True(gen == g2, $"{where}: block {lba} is from generation {g2}, the zone from {gen}");
                Assert.All(block[24..], b => Assert.Equal((byte)(lba + g2), b));
            }
            var f = flushed[z];
            bool resetSinceFlush = resetAfter.Contains(z);
            if (gen == f.Gen)
            {
                Assert.True(written >= f.Wp, $"{where}: flushed write pointer was +{f.Wp}: a flushed write was lost");
            }
            else if (gen is not null)
            {
                Assert.True(gen > f.Gen && resetSinceFlush, $"{where}: data of generation {gen} but {f.Gen} was flushed and no reset followed");
            }
            else
            {
                Assert.True(f.Wp == 0 || resetSinceFlush, $"{where}: empty, but +{f.Wp} blocks were flushed and no reset followed");
            }
            if (info.WritePointer < info.StartLba + g.ZoneSizeLbas)
            {
                Assert.True(ns.Read(info.WritePointer, block).IsSuccess);
                Assert.All(block, b => Assert.Equal(0, b));
            }
        }
    }
}

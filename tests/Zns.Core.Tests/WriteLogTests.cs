using System.Buffers.Binary;
using Zns.Core.Recording;
using Zns.Core.Zones;
using Zns.Nvme;

namespace Zns.Core.Tests;

/// <summary>
/// The write log: what each command records, the file format read back (CRC, torn tail, size bound), and replay:
/// an image rebuilt at a point has the zones and data the live namespace had at that point.
/// </summary>
public sealed class WriteLogTests
{
    private const int Bs = 512;

    private static NamespaceOptions Options() => TestNamespaces.Small() with { Zrwas = 4 * Bs, NumZrwa = 2, Mssrl = 4, Mcl = 8, Msrc = 3 };

    /// <summary>The zones and every block of a namespace, as a host reads them.</summary>
    private static (ZoneInfo[] Zones, byte[] Data, byte[][] Extensions) Capture(ZonedNamespace ns)
    {
        var zones = new ZoneInfo[ns.Geometry.ZoneCount];
        var exts = new byte[zones.Length][];
        for (uint i = 0; i < zones.Length; i++)
        {
            zones[i] = ns.GetZone(i);
            exts[i] = ns.GetDescriptorExtension(i);
        }
        byte[] data = new byte[(int)ns.Geometry.NamespaceSizeLbas * Bs];
        for (ulong lba = 0; lba < ns.Geometry.NamespaceSizeLbas; lba += 8)
        {
            Assert.Equal(NvmeStatus.Success, ns.Read(lba, data.AsSpan((int)lba * Bs, 8 * Bs)));
        }
        return (zones, data, exts);
    }

    private static void AssertSame((ZoneInfo[] Zones, byte[] Data, byte[][] Extensions) expected, ZonedNamespace ns)
    {
        var actual = Capture(ns);
        Assert.Equal(expected.Zones, actual.Zones);
        Assert.Equal(expected.Extensions, actual.Extensions);
        Assert.True(expected.Data.AsSpan().SequenceEqual(actual.Data), "data differs");
    }

    private static byte[] Copy0(params (ulong Slba, ushort Nlb)[] ranges)
    {
        byte[] d = new byte[ranges.Length * ZonedNamespace.CopyRangeFormat0Size];
        for (int i = 0; i < ranges.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(i * 32 + 8), ranges[i].Slba);
            BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(i * 32 + 16), (ushort)(ranges[i].Nlb - 1));
        }
        return d;
    }

    /// <summary>
    /// A command stream over every kind of entry; after each command the live state is captured, so a replay to
    /// any entry can be compared with what the namespace was then. Returns the captures by entry index.
    /// </summary>
    private static Dictionary<long, (ZoneInfo[], byte[], byte[][])> RunStream(ZonedNamespace ns, WriteLog log)
    {
        var at = new Dictionary<long, (ZoneInfo[], byte[], byte[][])>();
        void Step(NvmeStatus status)
        {
            Assert.Equal(NvmeStatus.Success, status);
            log.Drain();
            at[log.Entries - 1] = Capture(ns);
        }
        Step(ns.Write(0, TestNamespaces.Blocks(3, 0xA1)));
        Step(ns.Append(16, TestNamespaces.Blocks(2, 0xB2), out ulong alba));
        Assert.Equal(16UL, alba);
        Step(ns.Append(16, TestNamespaces.Blocks(1, 0xB3), out alba, fua: true));
        Assert.Equal(18UL, alba);
        Step(ns.Flush());
        Step(ns.WriteZeroes(3, 2));
        Step(ns.Copy(19, 0, 2, Copy0((0, 2), (16, 3)), out _));
        Step(ns.Deallocate(1, 1));
        Step(ns.ZoneManagementSend(32, ZoneSendAction.Open, selectAll: false));
        Step(ns.ZoneManagementSend(80, ZoneSendAction.SetDescriptorExtension, false, Enumerable.Range(0, 64).Select(i => (byte)i).ToArray()));
        Step(ns.ZoneManagementSend(0, ZoneSendAction.Close, selectAll: true));
        Step(ns.ZoneManagementSend(48, ZoneSendAction.Open, selectAll: false, zsaso: true));
        Step(ns.Write(50, TestNamespaces.Blocks(2, 0xC4)));
        Step(ns.ZoneManagementSend(51, ZoneSendAction.FlushZrwa, selectAll: false));
        Step(ns.ZoneManagementSend(16, ZoneSendAction.Finish, selectAll: false));
        Step(ns.Flush());
        Step(ns.ZoneManagementSend(16, ZoneSendAction.Reset, selectAll: false));
        Step(ns.Write(64, TestNamespaces.Blocks(12, 0xD5)));
        Step(ns.ZoneManagementSend(0, ZoneSendAction.Reset, selectAll: true));
        Step(ns.Append(0, TestNamespaces.Blocks(4, 0xE6), out _));
        return at;
    }

    [Fact]
    public void EveryCommandIsRecordedInOrderWithItsFields()
    {
        using var dir = new TempDir();
        using var ns = TestNamespaces.Ram(Options());
        string path = WriteLogFormat.PathFor(dir.Path, 1);
        using (var log = WriteLog.Create(path, 1, ns))
        {
            RunStream(ns, log);
        }
        using var reader = WriteLogReader.Open(path);
        Assert.Equal(1u, reader.Nsid);
        Assert.Equal(ns.Uuid, reader.Kept.Uuid);
        Assert.Equal(Options().ZoneCapacity, reader.Kept.ZoneCapacity);
        var e = reader.ReadAll();
        Assert.Null(reader.Damage);
        string[] want =
        [
            "Write lba 0 blocks 3", "Append lba 16 blocks 2", "Append lba 18 blocks 1 fua", "flush 1", "WriteZeroes lba 3 blocks 2",
            "Copy lba 19 blocks 2", "Copy lba 21 blocks 3", "Deallocate lba 1 blocks 1", "zone Open lba 32", "zone SetDescriptorExtension lba 80",
            "zone Close select-all", "zone Open lba 48 zrwa", "Write lba 50 blocks 2", "zone FlushZrwa lba 51", "zone Finish lba 16", "flush 2",
            "zone Reset lba 16", "Write lba 64 blocks 12", "zone Reset select-all", "Append lba 0 blocks 4",
        ];
        Assert.Equal(want, e.Select(x => WriteLogReplay.Describe(in x)));
        Assert.Equal(Enumerable.Range(0, want.Length).Select(i => (long)i), e.Select(x => x.Index));
    }

    /// <summary><see cref="RunStream"/> into a new log in <paramref name="dir"/>; the log's path and the captures.</summary>
    private static (string Path, Dictionary<long, (ZoneInfo[], byte[], byte[][])> At) LoggedStream(TempDir dir, ZonedNamespace ns)
    {
        string path = WriteLogFormat.PathFor(dir.Path, 1);
        using var log = WriteLog.Create(path, 1, ns);
        return (path, RunStream(ns, log));
    }

    [Fact]
    public void ReplayToEveryEntryRebuildsTheLiveStateOfThatPoint()
    {
        using var dir = new TempDir();
        using var ns = TestNamespaces.Ram(Options());
        var (path, at) = LoggedStream(dir, ns);
        foreach ((long index, var live) in at)
        {
            string image = dir.File($"at{index}.raw");
            var result = WriteLogReplay.Rebuild(path, image, new ReplayTarget(index, null));
            Assert.Equal(index, result.LastEntry);
            Assert.Null(result.Warning);
            // The stored zones are exact (open zones still open) ...
            var stored = ZonedNamespace.ReadStoredZones(image)!.Value.Zones;
            Assert.Equal(live.Item1, stored);
            // ... and so is the backstore: what the live namespace read then (a ZRWA's uncommitted blocks included,
            // which serving the image drops with the power cycle).
            Assert.True(live.Item2.AsSpan().SequenceEqual(File.ReadAllBytes(image)), $"data differs after entry {index}");
            using var replayed = ZonedNamespace.OpenFile(image, ZonedNamespace.ReadStoredOptions(image)!);
            Assert.Equal(ns.Uuid, replayed.Uuid);
            Assert.Equal(live.Item3, Capture(replayed).Extensions);
        }
    }

    [Fact]
    public void ReplayToAFlushStopsAfterThatFlushAndRefusesTargetsPastTheEnd()
    {
        using var dir = new TempDir();
        using var ns = TestNamespaces.Ram(Options());
        var (path, at) = LoggedStream(dir, ns);
        var r = WriteLogReplay.Rebuild(path, dir.File("f2.raw"), new ReplayTarget(null, 2));
        Assert.Equal(15, r.LastEntry);
        Assert.Equal(at[15].Item1, ZonedNamespace.ReadStoredZones(dir.File("f2.raw"))!.Value.Zones);
        var r0 = WriteLogReplay.Rebuild(path, dir.File("f0.raw"), new ReplayTarget(null, 0));
        Assert.Equal(-1, r0.LastEntry);
        Assert.All(ZonedNamespace.ReadStoredZones(dir.File("f0.raw"))!.Value.Zones, z => Assert.Equal(ZoneState.Empty, z.State));

        var past = Assert.Throws<WriteLogException>(() => WriteLogReplay.Rebuild(path, dir.File("x.raw"), new ReplayTarget(null, 3)));
        Assert.Equal("--flush 3: the log has 2 flushes", past.Message);
        var pastEntry = Assert.Throws<WriteLogException>(() => WriteLogReplay.Rebuild(path, dir.File("x.raw"), new ReplayTarget(20, null)));
        Assert.Equal("--to 20: the log's entries are 0..19", pastEntry.Message);
        Assert.False(File.Exists(dir.File("x.raw")));
        var exists = Assert.Throws<WriteLogException>(() => WriteLogReplay.Rebuild(path, dir.File("f2.raw"), new ReplayTarget(1, null)));
        Assert.Contains("already exists", exists.Message);
    }

    [Fact]
    public void ADamagedEntryEndsTheGoodEntriesAndReplayStopsBeforeIt()
    {
        using var dir = new TempDir();
        using var ns = TestNamespaces.Ram(Options());
        string path = WriteLogFormat.PathFor(dir.Path, 1);
        Dictionary<long, (ZoneInfo[], byte[], byte[][])> at;
        List<WriteLogEntry> entries;
        using (var log = WriteLog.Create(path, 1, ns))
        {
            at = RunStream(ns, log);
        }
        using (var reader = WriteLogReader.Open(path))
        {
            entries = reader.ReadAll();
        }
        // One bit of entry 5's data (the first Copy range) flipped.
        using (var f = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite))
        {
            byte[] b = new byte[1];
            long offset = entries[5].Offset + WriteLogFormat.EntryHeaderSize + 100;
            RandomAccess.Read(f, b, offset);
            b[0] ^= 0x10;
            RandomAccess.Write(f, b, offset);
        }
        using (var reader = WriteLogReader.Open(path))
        {
            Assert.Equal(5, reader.ReadAll().Count);
            Assert.Equal($"entry 5 at byte {entries[5].Offset} is damaged (CRC mismatch)", reader.Damage);
        }
        var r = WriteLogReplay.Rebuild(path, dir.File("a.raw"), new ReplayTarget(4, null));
        Assert.Equal($"{path}: entry 5 at byte {entries[5].Offset} is damaged (CRC mismatch); the entries before it are good", r.Warning);
        Assert.Equal(at[4].Item1, ZonedNamespace.ReadStoredZones(dir.File("a.raw"))!.Value.Zones);
        var past = Assert.Throws<WriteLogException>(() => WriteLogReplay.Rebuild(path, dir.File("b.raw"), new ReplayTarget(5, null)));
        Assert.Equal($"--to 5: the log's entries are 0..4 (entry 5 at byte {entries[5].Offset} is damaged (CRC mismatch); entries after it cannot be replayed)", past.Message);
        var pastFlush = Assert.Throws<WriteLogException>(() => WriteLogReplay.Rebuild(path, dir.File("b.raw"), new ReplayTarget(null, 2)));
        Assert.StartsWith("--flush 2: the log has 1 flush (entry 5", pastFlush.Message);
    }

    [Fact]
    public void ATornTailIsFoundAndTheEntriesBeforeItReplay()
    {
        using var dir = new TempDir();
        using var ns = TestNamespaces.Ram(Options());
        string path = WriteLogFormat.PathFor(dir.Path, 1);
        using (var log = WriteLog.Create(path, 1, ns))
        {
            RunStream(ns, log);
        }
        long length = new FileInfo(path).Length;
        // The last entry (an append of 4 blocks) cut in its data, as a killed process leaves it.
        using (var f = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite))
        {
            RandomAccess.SetLength(f, length - 1000);
        }
        using var reader = WriteLogReader.Open(path);
        Assert.Equal(19, reader.ReadAll().Count);
        Assert.StartsWith("entry 19 at byte ", reader.Damage);
        Assert.EndsWith("is torn or damaged (length 2096, 1096 bytes left)", reader.Damage);
    }

    [Fact]
    public void AFullLogStopsWithAMarkerKeepsWhatItRecordedAndTheNamespaceGoesOn()
    {
        using var dir = new TempDir();
        var options = TestNamespaces.Small() with { ZoneSize = 4096 * 512, ZoneCapacity = 4096 * 512 };
        using var ns = ZonedNamespace.CreateInMemory(2 * options.ZoneSize, options);
        string path = WriteLogFormat.PathFor(dir.Path, 1);
        var told = new List<string>();
        int written = 0;
        using (var log = WriteLog.Create(path, 1, ns, WriteLogFormat.MinMaxBytes, told.Add))
        {
            byte[] data = TestNamespaces.Blocks(8, 0x5A);
            // 8 blocks = 4144 bytes an entry: the 1 MiB bound holds about 250 of them.
            for (ulong lba = 0; lba < 400 * 8; lba += 8)
            {
                Assert.Equal(NvmeStatus.Success, ns.Write(lba, data));
                written++;
            }
            Assert.Equal(NvmeStatus.Success, ns.Flush());
            Assert.NotNull(log.StopReason);
            Assert.True(log.Bytes <= WriteLogFormat.MinMaxBytes);
            Assert.Equal(written + 1 - (log.Entries - 1), log.Dropped);
            Assert.Single(told);
            Assert.Equal(log.StopReason, told[0]);
            Assert.Contains("write log full", told[0]);
            Assert.Contains("the namespace goes on serving", told[0]);
        }
        Assert.True(new FileInfo(path).Length <= WriteLogFormat.MinMaxBytes);
        using var reader = WriteLogReader.Open(path);
        var entries = reader.ReadAll();
        Assert.True(reader.ReachedFull);
        Assert.Null(reader.Damage);
        Assert.Equal(WriteLogKind.Full, entries[^1].Kind);
        Assert.All(entries[..^1], e => Assert.Equal(WriteLogKind.Write, e.Kind));
        Assert.True(entries.Count > 200);
        // The namespace kept every write.
        Assert.Equal(400UL * 8, ns.GetZone(0).WritePointer);
        var r = WriteLogReplay.Rebuild(path, dir.File("img.raw"), new ReplayTarget(entries.Count - 2, null));
        Assert.Equal((ulong)(entries.Count - 1) * 8, ZonedNamespace.ReadStoredZones(dir.File("img.raw"))!.Value.Zones[0].WritePointer);
        Assert.Null(r.Warning);
    }

    [Fact]
    public void BadPlacesAndStatesAreRefusedWithOneLine()
    {
        using var dir = new TempDir();
        using var ns = TestNamespaces.Ram(Options());
        string path = WriteLogFormat.PathFor(dir.Path, 1);
        var small = Assert.Throws<WriteLogException>(() => WriteLog.Create(path, 1, ns, 4096));
        Assert.Equal($"{path}: a size bound of 4096 bytes is below the least, 1048576 (1 MiB)", small.Message);
        var missing = Assert.Throws<WriteLogException>(() => WriteLog.Create(Path.Combine(dir.Path, "no", "ns1.wlog"), 1, ns));
        Assert.StartsWith($"{Path.Combine(dir.Path, "no", "ns1.wlog")}: cannot create the write log: ", missing.Message);
        File.WriteAllText(path, "kept");
        var there = Assert.Throws<WriteLogException>(() => WriteLog.Create(path, 1, ns));
        Assert.Equal($"{path}: a write log is already there; replay or move it, or choose another directory", there.Message);
        Assert.Equal("kept", File.ReadAllText(path));
        var notLog = Assert.Throws<WriteLogException>(() => WriteLogReader.Open(path));
        Assert.Equal($"{path}: not a zns write log (no ZNSWRLOG header)", notLog.Message);
        File.Delete(path);
        Assert.Equal(NvmeStatus.Success, ns.Write(32, TestNamespaces.Blocks(1, 1)));
        var notEmpty = Assert.Throws<WriteLogException>(() => WriteLog.Create(path, 1, ns));
        Assert.Equal($"{path}: namespace 1 is not empty (zone 2 is ImplicitlyOpened); a replay starts from an empty namespace: reset its zones or reformat it first", notEmpty.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void ANamespaceWithMetadataIsRefused_TheLogKeepsNoMetadata()
    {
        using var dir = new TempDir();
        using var ns = TestNamespaces.Ram(TestNamespaces.Small() with { MetadataSize = 8, PiType = 1 });
        string path = WriteLogFormat.PathFor(dir.Path, 1);
        var e = Assert.Throws<WriteLogException>(() => WriteLog.Create(path, 1, ns));
        Assert.Equal($"{path}: namespace 1 has 8 bytes of metadata per block (ms), which a write log does not record; serve it without --write-log", e.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void RecordingAllocatesNothingPerWrite()
    {
        using var dir = new TempDir();
        var options = TestNamespaces.Small() with { ZoneSize = 4096 * 512, ZoneCapacity = 4096 * 512 };
        using var ns = ZonedNamespace.CreateInMemory(2 * options.ZoneSize, options);
        using var log = WriteLog.Create(WriteLogFormat.PathFor(dir.Path, 1), 1, ns);
        byte[] data = TestNamespaces.Blocks(8, 0x11);
        for (ulong lba = 0; lba < 64; lba += 8)
        {
            ns.Write(lba, data);
        }
        ns.Append(4096, data, out _);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong lba = 64; lba < 2048; lba += 8)
        {
            ns.Write(lba, data);
            ns.Append(4096, data, out _);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(8 + 1 + 2 * 248, log.Entries);
    }
}

/// <summary>Replay with a crash after the point, and the log's end at a live power cut.</summary>
public sealed class WriteLogCrashTests
{
    private static NamespaceOptions Options() => TestNamespaces.Small();

    private static string Stream(TempDir dir, ZonedNamespace ns)
    {
        string path = WriteLogFormat.PathFor(dir.Path, 1);
        using var log = WriteLog.Create(path, 1, ns);
        Assert.Equal(NvmeStatus.Success, ns.Write(0, TestNamespaces.Blocks(3, 0x11)));
        Assert.Equal(NvmeStatus.Success, ns.Write(16, TestNamespaces.Blocks(2, 0x22)));
        Assert.Equal(NvmeStatus.Success, ns.Flush());
        Assert.Equal(NvmeStatus.Success, ns.Write(3, TestNamespaces.Blocks(4, 0x33)));
        Assert.Equal(NvmeStatus.Success, ns.Write(18, TestNamespaces.Blocks(1, 0x44), fua: true));
        Assert.Equal(NvmeStatus.Success, ns.Write(32, TestNamespaces.Blocks(5, 0x55)));
        return path;
    }

    [Fact]
    public void KeepNoneDropsWhatNoFlushOrFuaCoveredAtThePoint()
    {
        using var dir = new TempDir();
        using var ns = TestNamespaces.Ram(Options());
        string path = Stream(dir, ns);
        var policy = new PowerCutPolicy(PowerCutKeep.None, false, 0);
        WriteLogReplay.Rebuild(path, dir.File("none.raw"), new ReplayTarget(5, null), n => n.CutPower(policy, policy.CreateRandom()));
        var zones = ZonedNamespace.ReadStoredZones(dir.File("none.raw"))!.Value.Zones;
        // Zone 0: flushed at 3, the 4 blocks after are gone. Zone 1: FUA made 19 durable. Zone 2: nothing flushed.
        Assert.Equal((3UL, ZoneState.Closed), (zones[0].WritePointer, zones[0].State));
        Assert.Equal((19UL, ZoneState.Closed), (zones[1].WritePointer, zones[1].State));
        Assert.Equal((32UL, ZoneState.Empty), (zones[2].WritePointer, zones[2].State));
        byte[] image = File.ReadAllBytes(dir.File("none.raw"));
        Assert.All(image.AsSpan(3 * 512, 4 * 512).ToArray(), b => Assert.Equal(0, b));
        Assert.All(image.AsSpan(32 * 512, 5 * 512).ToArray(), b => Assert.Equal(0, b));
        Assert.All(image.AsSpan(18 * 512, 512).ToArray(), b => Assert.Equal(0x44, b));

        // The same point kept whole: exactly the live state.
        WriteLogReplay.Rebuild(path, dir.File("all.raw"), new ReplayTarget(5, null));
        Assert.Equal(7UL, ZonedNamespace.ReadStoredZones(dir.File("all.raw"))!.Value.Zones[0].WritePointer);
    }

    [Fact]
    public void KeepRandomIsReproducibleBySeedAndKeepsAPrefix()
    {
        using var dir = new TempDir();
        using var ns = TestNamespaces.Ram(Options());
        string path = Stream(dir, ns);
        byte[] Cut(string name, ulong seed)
        {
            var policy = new PowerCutPolicy(PowerCutKeep.Random, true, seed);
            WriteLogReplay.Rebuild(path, dir.File(name), new ReplayTarget(5, null), n => n.CutPower(policy, policy.CreateRandom()));
            var z = ZonedNamespace.ReadStoredZones(dir.File(name))!.Value.Zones;
            Assert.InRange(z[0].WritePointer, 3UL, 7UL);
            Assert.InRange(z[2].WritePointer, 32UL, 37UL);
            return [.. File.ReadAllBytes(dir.File(name)), .. File.ReadAllBytes(dir.File(name) + ".zns").AsSpan(0, 256 + 8 * 16)[16..]];
        }
        var a = Cut("a.raw", 7);
        var b = Cut("b.raw", 7);
        Assert.Equal(a, b);
        var distinct = new HashSet<string>(Enumerable.Range(0, 12).Select(s => Convert.ToHexString(Cut($"s{s}.raw", (ulong)s + 100))));
        Assert.True(distinct.Count > 1, "every seed cut the same way");
    }

    [Fact]
    public void ALivePowerCutEndsTheLogWithAMarkerAndEarlierPointsStillReplay()
    {
        using var dir = new TempDir();
        using var ns = TestNamespaces.Ram(Options());
        string path = WriteLogFormat.PathFor(dir.Path, 1);
        var told = new List<string>();
        using (var log = WriteLog.Create(path, 1, ns, stopped: told.Add))
        {
            Assert.Equal(NvmeStatus.Success, ns.Write(0, TestNamespaces.Blocks(3, 0x11)));
            Assert.Equal(NvmeStatus.Success, ns.Flush());
            ns.CutPower(new PowerCutPolicy(PowerCutKeep.None, false, 0), new Random(0));
            Assert.Equal(NvmeStatus.Success, ns.Write(3, TestNamespaces.Blocks(1, 0x22)));
            Assert.Equal(1, log.Dropped);
        }
        Assert.Equal($"{path}: write log stopped at a power cut: entries 0..1 are kept and replay to any point before the cut; nothing after it is recorded, the namespace goes on serving", Assert.Single(told));
        using var reader = WriteLogReader.Open(path);
        Assert.Equal(["Write lba 0 blocks 3", "flush 1", "power cut: the log stopped here"], reader.ReadAll().Select(e => WriteLogReplay.Describe(in e)));
        Assert.Null(reader.Damage);
        WriteLogReplay.Rebuild(path, dir.File("x.raw"), new ReplayTarget(null, 1));
        Assert.Equal(3UL, ZonedNamespace.ReadStoredZones(dir.File("x.raw"))!.Value.Zones[0].WritePointer);
    }
}

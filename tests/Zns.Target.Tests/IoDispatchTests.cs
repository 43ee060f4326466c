using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests;

public sealed class IoDispatchTests
{
    private const int Bs = 4096;

    private static (TestHost Host, IQueueHandler Io) Connected(params NamespaceOptions[] namespaces)
    {
        var host = new TestHost(null, namespaces);
        var (_, _, io, _, _) = host.ConnectAll();
        return (host, io);
    }

    private static ulong ZoneLbas(TestHost host) => host.Namespaces[0].Geometry.ZoneSizeLbas;

    [Fact]
    public void WriteThenRead_RoundTrips()
    {
        var (host, io) = Connected();
        using (host)
        {
            byte[] data = new byte[4 * Bs];
            Random.Shared.NextBytes(data);
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 4, cdw12Flags: 1u << 30), data));
            byte[] back = new byte[4 * Bs];
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Read, 1, 0, 4), back));
            Assert.Equal(data, back);
        }
    }

    [Fact]
    public void ZoneStatusesPassThroughUnchanged()
    {
        var (host, io) = Connected();
        using (host)
        {
            byte[] block = new byte[Bs];
            // Not at the write pointer.
            Assert.Equal(NvmeStatus.ZoneInvalidWrite.WithDnr(), Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 5, 1), block).Status);
            // Past the namespace.
            ulong end = host.Namespaces[0].Geometry.NamespaceSizeLbas;
            Assert.Equal(NvmeStatus.LbaOutOfRange.WithDnr(), Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, end, 1), block).Status);
            // Finish then write: Zone Is Full.
            Ok(Run(io, Sqe.ZoneSend(1, 0, ZoneSendAction.Finish)));
            Assert.Equal(NvmeStatus.ZoneIsFull.WithDnr(), Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 1), block).Status);
            // Close of a full zone: Invalid Zone State Transition.
            Assert.Equal(NvmeStatus.InvalidZoneStateTransition.WithDnr(), Run(io, Sqe.ZoneSend(1, 0, ZoneSendAction.Close)).Status);
            // Reset all.
            Ok(Run(io, Sqe.ZoneSend(1, 0, ZoneSendAction.Reset, selectAll: true)));
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 1), block));
        }
    }

    [Fact]
    public void ZoneAppend_ReturnsAlbaInResult()
    {
        var (host, io) = Connected();
        using (host)
        {
            ulong zone1 = ZoneLbas(host);
            byte[] data = new byte[2 * Bs];
            CompletionQueueEntry first = Run(io, Sqe.ReadWrite(IoOpcode.ZoneAppend, 1, zone1, 2), data);
            Ok(first);
            Assert.Equal(zone1, first.Result);
            CompletionQueueEntry second = Run(io, Sqe.ReadWrite(IoOpcode.ZoneAppend, 1, zone1, 2), data);
            Assert.Equal(zone1 + 2, second.Result);
            // Not a zone start: Invalid Field from the core.
            Assert.Equal(NvmeStatus.InvalidField.WithDnr(), Run(io, Sqe.ReadWrite(IoOpcode.ZoneAppend, 1, zone1 + 1, 2), data).Status);
        }
    }

    [Fact]
    public void ZoneReport_ShowsStateAndWritePointer()
    {
        var (host, io) = Connected();
        using (host)
        {
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 3), new byte[3 * Bs]));
            Ok(Run(io, Sqe.ZoneSend(1, ZoneLbas(host), ZoneSendAction.Open)));
            byte[] report = new byte[64 + 2 * 64];
            Ok(Run(io, Sqe.ZoneReceive(1, 0, report.Length, partial: true), report));
            Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(report));
            Assert.Equal(0x20, report[64 + 1]);                                               // implicitly opened
            Assert.Equal(3UL, BinaryPrimitives.ReadUInt64LittleEndian(report.AsSpan(64 + 24)));  // WP
            Assert.Equal(0x30, report[128 + 1]);                                              // explicitly opened
            // Filter: only explicitly opened zones, from the start.
            byte[] filtered = new byte[128];
            Ok(Run(io, Sqe.ZoneReceive(1, 0, filtered.Length, zrasf: 3, partial: false), filtered));
            Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(filtered));
            // Invalid filter is judged by the core.
            Assert.Equal(NvmeStatus.InvalidField.WithDnr(), Run(io, Sqe.ZoneReceive(1, 0, 128, zrasf: 9), new byte[128]).Status);
        }
    }

    [Fact]
    public void DataLengthMustMatchNlb()
    {
        var (host, io) = Connected();
        using (host)
        {
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 2), new byte[Bs]), NvmeStatus.DataSglLengthInvalid);
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.Read, 1, 0, 1), new byte[2 * Bs]), NvmeStatus.DataSglLengthInvalid);
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.ZoneAppend, 1, 0, 1), new byte[512]), NvmeStatus.DataSglLengthInvalid);
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.WriteZeroes, 1, 0, 1), new byte[Bs]), NvmeStatus.DataSglLengthInvalid);
            Fails(Run(io, Sqe.ZoneReceive(1, 0, 128), new byte[64]), NvmeStatus.DataSglLengthInvalid);
            Fails(Run(io, Sqe.ZoneSend(1, 0, ZoneSendAction.Reset), new byte[64]), NvmeStatus.DataSglLengthInvalid);
            Fails(Run(io, Sqe.Create(IoOpcode.Flush, 1), new byte[4]), NvmeStatus.DataSglLengthInvalid);
        }
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(3u)]
    [InlineData(0xFFFFFFFEu)]
    public void InvalidNsid_IsInvalidNamespace(uint nsid)
    {
        var (host, io) = Connected();
        using (host)
        {
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.Read, nsid, 0, 1), new byte[Bs]), NvmeStatus.InvalidNamespace);
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.Write, nsid, 0, 1), new byte[Bs]), NvmeStatus.InvalidNamespace);
            Fails(Run(io, Sqe.ZoneSend(nsid, 0, ZoneSendAction.Open)), NvmeStatus.InvalidNamespace);
        }
    }

    [Fact]
    public void ZoneOpcodesOnConventionalNamespace_AreInvalidOpcode()
    {
        var (host, io) = Connected(new NamespaceOptions { ZoneSize = 4L << 20 }, new NamespaceOptions { Zoned = false, LogicalBlockSize = 512 });
        using (host)
        {
            Fails(Run(io, Sqe.ZoneSend(2, 0, ZoneSendAction.Open)), NvmeStatus.InvalidOpcode);
            Fails(Run(io, Sqe.ZoneReceive(2, 0, 128), new byte[128]), NvmeStatus.InvalidOpcode);
            Fails(Run(io, Sqe.ReadWrite(IoOpcode.ZoneAppend, 2, 0, 1), new byte[512]), NvmeStatus.InvalidOpcode);
            // Conventional writes anywhere, 512-byte blocks.
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 2, 77, 2), new byte[1024]));
            Fails(Run(io, Sqe.Create(0x04, 2)), NvmeStatus.InvalidOpcode);
        }
    }

    [Fact]
    public void WriteZeroesFlushAndDeallocate()
    {
        var (host, io) = Connected(new NamespaceOptions { Zoned = false });
        using (host)
        {
            byte[] data = new byte[2 * Bs];
            data.AsSpan().Fill(0x5A);
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 10, 2), data));
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.WriteZeroes, 1, 10, 1)));
            Ok(Run(io, Sqe.Create(IoOpcode.Flush, 1)));
            Ok(Run(io, Sqe.Create(IoOpcode.Flush, uint.MaxValue)));

            byte[] back = new byte[2 * Bs];
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Read, 1, 10, 2), back));
            Assert.All(back[..Bs], b => Assert.Equal(0, b));
            Assert.All(back[Bs..], b => Assert.Equal(0x5A, b));

            // DSM deallocate of LBA 11 (one range: attributes, NLB, SLBA).
            SubmissionQueueEntry dsm = Sqe.Create(IoOpcode.DatasetManagement, 1);
            dsm.SetCdw(10, 0);
            dsm.SetCdw(11, 1u << 2);
            byte[] range = new byte[16];
            BinaryPrimitives.WriteUInt32LittleEndian(range.AsSpan(4), 1);
            BinaryPrimitives.WriteUInt64LittleEndian(range.AsSpan(8), 11);
            Ok(Run(io, dsm, range));
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Read, 1, 10, 2), back));
            Assert.All(back, b => Assert.Equal(0, b));
            Fails(Run(io, dsm, new byte[8]), NvmeStatus.DataSglLengthInvalid);
        }
    }

    /// <summary>A DSM range list at SLBA 0 for <paramref name="ranges"/>, padded to <paramref name="bufferBytes"/>.</summary>
    private static byte[] DsmRanges(int bufferBytes, params (ulong Slba, uint Nlb)[] ranges)
    {
        byte[] buffer = new byte[bufferBytes];
        for (int i = 0; i < ranges.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(i * 16 + 4), ranges[i].Nlb);
            BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(i * 16 + 8), ranges[i].Slba);
        }
        return buffer;
    }

    private static SubmissionQueueEntry Deallocate(int ranges)
    {
        SubmissionQueueEntry dsm = Sqe.Create(IoOpcode.DatasetManagement, 1);
        dsm.SetCdw(10, (uint)(ranges - 1));
        dsm.SetCdw(11, 1u << 2);
        return dsm;
    }

    [Fact]
    public void Dsm_AcceptsTheWholePageLinuxSends_AndDeallocatesOnlyTheRangesNamed()
    {
        var (host, io) = Connected(new NamespaceOptions { Zoned = false });
        using (host)
        {
            byte[] data = new byte[4 * Bs];
            data.AsSpan().Fill(0x77);
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 20, 4), data));
            // Two ranges (LBA 20 and 22) in a 4096-byte buffer whose third slot, beyond NR, names LBA 21.
            byte[] page = DsmRanges(4096, (20, 1), (22, 1), (21, 1));
            Ok(Run(io, Deallocate(2), page));
            byte[] back = new byte[4 * Bs];
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Read, 1, 20, 4), back));
            Assert.All(back[..Bs], b => Assert.Equal(0, b));
            Assert.All(back[Bs..(2 * Bs)], b => Assert.Equal(0x77, b));
            Assert.All(back[(2 * Bs)..(3 * Bs)], b => Assert.Equal(0, b));
            Assert.All(back[(3 * Bs)..], b => Assert.Equal(0x77, b));
            // 256 ranges exactly fill the page; one byte short of the ranges named is refused.
            Ok(Run(io, Deallocate(256), new byte[4096]));
            Fails(Run(io, Deallocate(2), new byte[31]), NvmeStatus.DataSglLengthInvalid);
        }
    }

    [Fact]
    public void Dsm_SkipsRangesOutsideTheNamespace_WithSuccess()
    {
        var (host, io) = Connected(new NamespaceOptions { Zoned = false });
        using (host)
        {
            ulong end = host.Namespaces[0].Geometry.NamespaceSizeLbas;
            byte[] data = new byte[Bs];
            data.AsSpan().Fill(0x33);
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 5, 1), data));
            // Past the end, straddling the end, SLBA + NLB overflowing 64 bits, then a valid one: all succeed, only
            // the valid one deallocates.
            byte[] page = DsmRanges(4096, (end, 1), (end - 1, 2), (ulong.MaxValue, 2), (5, 1));
            Ok(Run(io, Deallocate(4), page));
            byte[] back = new byte[Bs];
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Read, 1, 5, 1), back));
            Assert.All(back, b => Assert.Equal(0, b));
        }
    }

    [Fact]
    public async Task ReadsCompleteAsynchronouslyAndOverlap()
    {
        var (host, io) = Connected();
        using (host)
        {
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 1), new byte[Bs]));
            var reads = new List<Task<CompletionQueueEntry>>();
            for (int i = 0; i < 64; i++)
            {
                reads.Add(io.ExecuteAsync(Sqe.ReadWrite(IoOpcode.Read, 1, 0, 1), new byte[Bs]).AsTask());
            }
            CompletionQueueEntry[] results = await Task.WhenAll(reads).WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
            Assert.All(results, Ok);
            Assert.Equal(64, results.Select(r => r.CommandId).Distinct().Count());
        }
    }

    [Fact]
    public async Task SynchronousDispatch_DoesNotAllocate()
    {
        var (host, io) = Connected();
        using (host)
        {
            SubmissionQueueEntry write = Sqe.ReadWrite(IoOpcode.Write, 1, 0, 1);
            SubmissionQueueEntry read = Sqe.ReadWrite(IoOpcode.Read, 1, 0, 1);
            Memory<byte> block = new byte[Bs];
            // Warm up: JIT, the read pool.
            ulong lba = 0;
            for (int i = 0; i < 8; i++, lba++)
            {
                write.SetCdw10_11(lba);
                await io.ExecuteAsync(write, block);
                await io.ExecuteAsync(read, block);
            }
            // A steady per-write allocation shows in every round; the runtime's own one-off work (a method promoted
            // to its optimised tier while the round runs, on a loaded machine) shows in one round only.
            var rounds = new List<long>();
            for (int round = 0; round < 3 && (rounds.Count == 0 || rounds[^1] != 0); round++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < 32; i++, lba++)
                {
                    write.SetCdw10_11(lba);
                    ValueTask<CompletionQueueEntry> vt = io.ExecuteAsync(write, block);
                    Assert.True(vt.IsCompletedSuccessfully);
                    Ok(Completed(vt));
                }
                rounds.Add(GC.GetAllocatedBytesForCurrentThread() - before);
            }
            Assert.True(rounds[^1] == 0, $"32 writes allocated {string.Join(", then ", rounds)} bytes");
        }
    }

    [Fact]
    public async Task MetadataDispatch_DoesNotAllocateOnceWarm()
    {
        // PRACT with PI checks on an extended-LBA namespace: the per-command buffers come from the shared pool.
        var (host, io) = Connected(new NamespaceOptions { ZoneSize = 4L << 20, MetadataSize = 8, PiType = 1, MetadataExtended = true });
        using (host)
        {
            const uint prinfo = (uint)(ProtectionFields.PractBit | ProtectionFields.CheckMask) << 26;
            SubmissionQueueEntry write = Sqe.ReadWrite(IoOpcode.Write, 1, 0, 1, prinfo);
            SubmissionQueueEntry read = Sqe.ReadWrite(IoOpcode.Read, 1, 0, 1, prinfo);
            Memory<byte> block = new byte[Bs];
            for (int i = 0; i < 8; i++)
            {
                write.SetCdw10_11((ulong)i);
                write.SetCdw(14, (uint)i);
                Ok(await io.ExecuteAsync(write, block));
                read.SetCdw10_11((ulong)i);
                read.SetCdw(14, (uint)i);
                Ok(await io.ExecuteAsync(read, block));
            }
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 8; i < 40; i++)
            {
                write.SetCdw10_11((ulong)i);
                write.SetCdw(14, (uint)i);
                ValueTask<CompletionQueueEntry> vt = io.ExecuteAsync(write, block);
                Assert.True(vt.IsCompletedSuccessfully);
                Ok(Completed(vt));
                read.SetCdw10_11((ulong)i);
                read.SetCdw(14, (uint)i);
                vt = io.ExecuteAsync(read, block);
                Assert.True(vt.IsCompletedSuccessfully);
                Ok(Completed(vt));
            }
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }

    [Fact]
    public void VolatileWriteCacheDisabled_StillWrites()
    {
        // A file-backed namespace, so the stored zone state shows what is durable.
        string dir = Directory.CreateTempSubdirectory("zns-wce-").FullName;
        try
        {
            string path = Path.Combine(dir, "wce.raw");
            Zns.Core.Storage.FileBackstore.Create(path, TestHost.NamespaceBytes, preallocate: false);
            using var host = TestHost.Over(ZonedNamespace.OpenFile(path, new NamespaceOptions { ZoneSize = 4L << 20 }));
            var (admin, _, io, _, _) = host.ConnectAll();

            // Write cache on (the default): the write is done, its write pointer not yet stored.
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 1), new byte[Bs]));
            Assert.Equal(0UL, StoredWritePointer(path));

            // Write cache off: every write is written through, as with FUA.
            Ok(Run(admin, Sqe.SetFeatures(FeatureId.VolatileWriteCache, 0)));
            Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 1, 1), new byte[Bs]));
            Assert.Equal(2UL, StoredWritePointer(path));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static ulong StoredWritePointer(string path) =>
        ZonedNamespace.ReadStoredZones(path)!.Value.Zones[0].WritePointer;
}

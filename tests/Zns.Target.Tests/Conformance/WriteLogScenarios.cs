using System.Buffers.Binary;
using Zns.Core.Recording;
using Zns.Core.Zones;
using Zns.Nvme;
using static Zns.Target.Tests.Conformance.Conformance;
using static Zns.Target.Tests.Conformance.ConformanceTarget;

namespace Zns.Target.Tests.Conformance;

/// <summary>
/// The write log behind every front end: a host's command stream (writes, a batch of appends, FUA, Write Zeroes,
/// Copy, deallocate, zone actions with Select All and a ZRWA flush, flushes, and commands refused) is recorded as
/// what it changed, appends with the LBAs the host got back; a replay of the log rebuilds the zones and the data the
/// host reads back.
/// </summary>
public sealed class WriteLogConformance
{
    public static TheoryData<FrontEndKind> Kinds => new(Conformance.Kinds);

    [Theory, MemberData(nameof(Kinds))]
    public async Task ACommandStreamIsLoggedAndReplaysToWhatTheHostReads(FrontEndKind kind)
    {
        string dir = Path.Combine(Path.GetTempPath(), "zns-wlog-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            await using FrontEnd fe = await StartAsync(kind);
            string zonedLog = WriteLogFormat.PathFor(dir, ZonedNsid), convLog = WriteLogFormat.PathFor(dir, ConventionalNsid);
            List<string> want;
            using (WriteLog.Create(zonedLog, ZonedNsid, fe.Host.Namespaces[0]))
            using (WriteLog.Create(convLog, ConventionalNsid, fe.Host.Namespaces[1]))
            {
                want = await StreamAsync(fe);
            }
            using (var reader = WriteLogReader.Open(zonedLog))
            {
                Assert.Equal(want, reader.ReadAll().Select(e => WriteLogReplay.Describe(in e)));
                Assert.Null(reader.Damage);
            }
            using (var reader = WriteLogReader.Open(convLog))
            {
                Assert.Equal(["Write lba 10 blocks 4", "Deallocate lba 11 blocks 2", "flush 1"], reader.ReadAll().Select(e => WriteLogReplay.Describe(in e)));
            }

            string image = Path.Combine(dir, "zoned.raw");
            WriteLogReplay.Rebuild(zonedLog, image, new ReplayTarget(want.Count - 1, null));
            var stored = ZonedNamespace.ReadStoredZones(image)!.Value.Zones;
            for (uint z = 0; z < ZoneCount; z++)
            {
                var (state, wp, _) = await ZoneAsync(fe, z);
                Assert.Equal((state, wp), (stored[z].State, stored[z].WritePointer));
            }
            // Read back in pieces of MDTS, none across a zone boundary.
            for (ulong lba = 0; lba < ZoneLbas * ZoneCount; lba += MdtsBlocks)
            {
                await ReadsAsync(fe, lba, await ImageBlocksAsync(image, lba, MdtsBlocks));
            }

            string conventional = Path.Combine(dir, "conv.raw");
            WriteLogReplay.Rebuild(convLog, conventional, new ReplayTarget(null, 1));
            await ReadsAsync(fe, 8, await ImageBlocksAsync(conventional, 8, 8), ConventionalNsid);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<byte[]> ImageBlocksAsync(string image, ulong slba, int blocks)
    {
        byte[] all = await File.ReadAllBytesAsync(image);
        return all.AsSpan((int)slba * BlockSize, blocks * BlockSize).ToArray();
    }

    /// <summary>Runs the stream; returns the entries the zoned namespace's log should hold.</summary>
    private static async Task<List<string>> StreamAsync(FrontEnd fe)
    {
        var want = new List<string>();
        await WriteOkAsync(fe, 0, 3, 1);
        want.Add("Write lba 0 blocks 3");
        // Three appends in one batch: each is recorded at the LBA its completion returned.
        var appends = (await fe.IoBatchesAsync([
            new Command(Append(ZoneStart(1), 1), Blocks(1, 2)),
            new Command(Append(ZoneStart(1), 2), Blocks(2, 3)),
            new Command(Append(ZoneStart(1), 1), Blocks(1, 4)),
        ]))[0];
        int[] sizes = [1, 2, 1];
        for (int i = 0; i < 3; i++)
        {
            Ok(appends[i]);
            want.Add($"Append lba {appends[i].Result} blocks {sizes[i]}");
        }
        Assert.Equal([32UL, 33UL, 35UL], appends.Select(a => a.Result));
        Ok(await fe.IoAsync(Zns.Target.Tests.Sqe.ReadWrite(IoOpcode.Write, ZonedNsid, 3, 2, 1u << 30), Blocks(2, 5)));
        want.Add("Write lba 3 blocks 2 fua");
        Ok(await fe.IoAsync(Zns.Target.Tests.Sqe.Create(IoOpcode.Flush, ZonedNsid)));
        want.Add("flush 1");
        Ok(await fe.IoAsync(Zns.Target.Tests.Sqe.ReadWrite(IoOpcode.WriteZeroes, ZonedNsid, 5, 2)));
        want.Add("WriteZeroes lba 5 blocks 2");
        // Refused: not at the write pointer, and past the namespace. Neither changes anything; neither is logged.
        Fails(await fe.IoAsync(Write(20, 1), Blocks(1, 6)), NvmeStatus.ZoneInvalidWrite);
        Fails(await fe.IoAsync(Zns.Target.Tests.Sqe.ReadWrite(IoOpcode.WriteZeroes, ZonedNsid, ZoneLbas * ZoneCount, 1)), NvmeStatus.LbaOutOfRange);
        Ok(await fe.IoAsync(Copy(ZoneStart(2), 2, 0), CopyRanges((0, 0, 2), (0, ZoneStart(1), 3))));
        want.Add($"Copy lba {ZoneStart(2)} blocks 2");
        want.Add($"Copy lba {ZoneStart(2) + 2} blocks 3");
        Ok(await fe.IoAsync(Dsm(ZonedNsid), DsmRange(1, 1)));
        want.Add("Deallocate lba 1 blocks 1");
        Ok(await fe.IoAsync(ZoneSend(3, ZoneSendAction.Open, zrwa: true)));
        want.Add($"zone Open lba {ZoneStart(3)} zrwa");
        await WriteOkAsync(fe, ZoneStart(3), 2, 7);
        want.Add($"Write lba {ZoneStart(3)} blocks 2");
        Ok(await fe.IoAsync(Zns.Target.Tests.Sqe.ZoneSend(ZonedNsid, ZoneStart(3) + 1, ZoneSendAction.FlushZrwa)));
        want.Add($"zone FlushZrwa lba {ZoneStart(3) + 1}");
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Close, selectAll: true)));
        want.Add("zone Close select-all");
        Ok(await fe.IoAsync(ZoneSend(1, ZoneSendAction.Finish)));
        want.Add($"zone Finish lba {ZoneStart(1)}");
        Fails(await fe.IoAsync(ZoneSend(1, ZoneSendAction.Open)), NvmeStatus.InvalidZoneStateTransition);
        Ok(await fe.IoAsync(ZoneSend(1, ZoneSendAction.Reset)));
        want.Add($"zone Reset lba {ZoneStart(1)}");
        await WriteOkAsync(fe, 10, 4, 8, ConventionalNsid);
        Ok(await fe.IoAsync(Dsm(ConventionalNsid), DsmRange(11, 2)));
        // A broadcast flush: one entry in each namespace's log.
        Ok(await fe.IoAsync(Zns.Target.Tests.Sqe.Create(IoOpcode.Flush, uint.MaxValue)));
        want.Add("flush 2");
        return want;
    }

    private static SubmissionQueueEntry Dsm(uint nsid)
    {
        SubmissionQueueEntry sqe = Zns.Target.Tests.Sqe.Create(IoOpcode.DatasetManagement, nsid);
        sqe.SetCdw(11, 1u << 2);
        return sqe;
    }

    private static byte[] DsmRange(ulong slba, uint blocks)
    {
        byte[] d = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(4), blocks);
        BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(8), slba);
        return d;
    }
}

using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Protocol;
using Zns.Nvme.Layouts;
using static Zns.Target.Tests.Conformance.Conformance;
using static Zns.Target.Tests.Conformance.ConformanceTarget;

namespace Zns.Target.Tests.Conformance;

/// <summary>
/// Every command that carries data, in either direction, through every front end: the same statuses, DW0/DW1 and
/// data. Over NVMe/TCP writes of up to 2 blocks travel in-capsule and larger ones through R2T; over PCIe buffers of
/// one page use PRP1, two pages PRP2, more a PRP list; over the loop writes of up to 4 blocks are lent from its
/// receive buffer and larger ones handed over as the command's own.
/// </summary>
public sealed class DataCommandConformance
{
    private static readonly Dictionary<string, (Func<FrontEnd, Task> Run, TargetSpec Spec)> Scenarios = new()
    {
        [nameof(WriteAndRead)] = (WriteAndRead, TargetSpec.Default),
        [nameof(ZoneAppend)] = (ZoneAppend, TargetSpec.Default),
        [nameof(ZoneAppendAbove4G)] = (ZoneAppendAbove4G, new TargetSpec { LargeNamespace = true }),
        [nameof(CompareMatchAndMismatch)] = (CompareMatchAndMismatch, TargetSpec.Default),
        [nameof(CopyFormats0And1)] = (CopyFormats0And1, TargetSpec.Default),
        [nameof(CopyFormats2And3AfterHostBehaviorSupport)] = (CopyFormats2And3AfterHostBehaviorSupport, TargetSpec.Default),
        [nameof(TimestampFeature)] = (TimestampFeature, TargetSpec.Default),
        [nameof(ZoneDescriptorExtension)] = (ZoneDescriptorExtension, TargetSpec.Default),
        [nameof(DatasetManagementDeallocate)] = (DatasetManagementDeallocate, TargetSpec.Default),
        [nameof(ZoneReports)] = (ZoneReports, TargetSpec.Default),
        [nameof(IdentifyStructures)] = (IdentifyStructures, TargetSpec.Default),
        [nameof(LogPages)] = (LogPages, TargetSpec.Default),
    };

    public static TheoryData<string, FrontEndKind> Runs => Conformance.Runs(Scenarios.Keys);
    public static TheoryData<string> Names => new(Scenarios.Keys);

    [Theory, MemberData(nameof(Runs))]
    public Task Run(string scenario, FrontEndKind kind) => RunAsync(kind, Scenarios[scenario].Run, Scenarios[scenario].Spec);

    [Theory, MemberData(nameof(Names))]
    public Task Parity(string scenario) => ParityAsync(Scenarios[scenario].Run, Scenarios[scenario].Spec);

    // ---- Write, Read ----------------------------------------------------------------------------------------------

    private static async Task WriteAndRead(FrontEnd fe)
    {
        // 1 and 2 blocks: in-capsule / PRP1, PRP1+PRP2. 3 and 16 blocks (MDTS): R2T with 1 and 4 H2CData PDUs / PRP lists.
        byte[] a = await WriteOkAsync(fe, 0, 1, 1);
        byte[] b = await WriteOkAsync(fe, 1, 2, 2);
        byte[] c = await WriteOkAsync(fe, 3, 3, 3);
        byte[] d = await WriteOkAsync(fe, 6, 16, 4);
        byte[] all = [.. a, .. b, .. c, .. d];
        var zone = await ZoneAsync(fe, 0);
        Assert.Equal((ZoneState.ImplicitlyOpened, 22UL), (zone.State, zone.WritePointer));

        await ReadsAsync(fe, 0, all[..(16 * BlockSize)]);
        await ReadsAsync(fe, 16, all[(16 * BlockSize)..]);
        await ReadsAsync(fe, 5, all[(5 * BlockSize)..(6 * BlockSize)]);
        // Past the write pointer a zone reads as zeros.
        await ReadsAsync(fe, 20, [.. all[(20 * BlockSize)..], .. new byte[2 * BlockSize]]);

        // The conventional namespace: writes anywhere.
        byte[] e = await WriteOkAsync(fe, 100, 5, 5, ConventionalNsid);
        await ReadsAsync(fe, 99, [.. new byte[BlockSize], .. e], ConventionalNsid);
    }

    // ---- Zone Append ----------------------------------------------------------------------------------------------

    private static async Task ZoneAppend(FrontEnd fe)
    {
        ulong zone1 = ZoneStart(1);
        byte[] one = Blocks(1, 10), four = Blocks(ZaslBlocks, 11);
        Completion first = await fe.IoAsync(Append(zone1, 1), one);
        Ok(first);
        Assert.Equal(zone1, first.Result);
        // ZASL exactly (16 KiB: R2T over TCP, a PRP list over PCIe).
        Completion second = await fe.IoAsync(Append(zone1, ZaslBlocks), four);
        Ok(second);
        Assert.Equal(zone1 + 1, second.Result);
        // Above ZASL, and not at a zone start: Invalid Field.
        Fails(await fe.IoAsync(Append(zone1, ZaslBlocks + 1), Blocks(ZaslBlocks + 1, 12)), NvmeStatus.InvalidField);
        Fails(await fe.IoAsync(Append(zone1 + 1, 1), one), NvmeStatus.InvalidField);
        await ReadsAsync(fe, zone1, [.. one, .. four]);

        // Several appends in one batch: each gets its own ALBA, in arrival order.
        Completion[] batch = (await fe.IoBatchesAsync([.. Enumerable.Range(0, 4).Select(i => new Command(Append(ZoneStart(2), 1), Blocks(1, 20 + i)))]))[0];
        Assert.All(batch, Ok);
        Assert.Equal(Enumerable.Range(0, 4).Select(i => ZoneStart(2) + (ulong)i), batch.Select(c => c.Result));
        await ReadsAsync(fe, ZoneStart(2), [.. Enumerable.Range(0, 4).SelectMany(i => Blocks(1, 20 + i))]);
    }

    /// <summary>An ALBA of 2^32 and more: DW1 carries its high half.</summary>
    private static async Task ZoneAppendAbove4G(FrontEnd fe)
    {
        const ulong zone = 1UL << 32;
        byte[] data = Pattern(8 * 512, 30);
        Completion first = await fe.IoAsync(Append(zone, 8, LargeNsid), data);
        Ok(first);
        Assert.Equal(zone, first.Result);
        Completion second = await fe.IoAsync(Append(zone, 8, LargeNsid), data);
        Ok(second);
        Assert.Equal(zone + 8, second.Result);
        await ReadsAsync(fe, zone, [.. data, .. data], LargeNsid);
    }

    // ---- Compare --------------------------------------------------------------------------------------------------

    private static async Task CompareMatchAndMismatch(FrontEnd fe)
    {
        byte[] data = await WriteOkAsync(fe, 0, MdtsBlocks, 40);
        Ok(await fe.IoAsync(Compare(0, MdtsBlocks), data));
        Ok(await fe.IoAsync(Compare(2, 2), data[(2 * BlockSize)..(4 * BlockSize)]));
        byte[] changed = [.. data];
        changed[^1] ^= 0xFF;
        Fails(await fe.IoAsync(Compare(0, MdtsBlocks), changed), NvmeStatus.CompareFailure);
        changed = data[..BlockSize];
        changed[7] ^= 1;
        Fails(await fe.IoAsync(Compare(0, 1), changed), NvmeStatus.CompareFailure);
        // Blocks never written compare as zeros.
        Ok(await fe.IoAsync(Compare(MdtsBlocks, 2), new byte[2 * BlockSize]));
        Fails(await fe.IoAsync(Compare(MdtsBlocks, 1), Blocks(1, 41)), NvmeStatus.CompareFailure);
    }

    // ---- Copy -----------------------------------------------------------------------------------------------------

    private static async Task CopyFormats0And1(FrontEnd fe)
    {
        byte[] source = await WriteOkAsync(fe, 0, 6, 50);
        ulong dest = ZoneStart(2);
        Completion copied = await fe.IoAsync(Copy(dest, 2, 0), CopyRanges((0, 0, 2), (0, 4, 2)));
        Ok(copied);
        Assert.Equal(0UL, copied.Result);
        await ReadsAsync(fe, dest, [.. source[..(2 * BlockSize)], .. source[(4 * BlockSize)..(6 * BlockSize)]]);

        // The third range is out of range: the first two are copied, DW0 names the failing one.
        Completion failed = await fe.IoAsync(Copy(dest + 4, 3, 0), CopyRanges((0, 1, 1), (0, 2, 1), (0, 100_000, 1)));
        Fails(failed, NvmeStatus.LbaOutOfRange);
        Assert.Equal(2UL, failed.Result);
        Assert.Equal(dest + 6, (await ZoneAsync(fe, 2)).WritePointer);
        await ReadsAsync(fe, dest + 4, source[BlockSize..(3 * BlockSize)]);

        // Limits: a range over MSSRL, more ranges than MSRC, more blocks than MCL.
        Fails(await fe.IoAsync(Copy(dest + 6, 1, 0), CopyRanges((0, 0, Mssrl + 1))), NvmeStatus.CommandSizeLimitExceeded);
        Fails(await fe.IoAsync(Copy(dest + 6, MaxCopyRanges + 1, 0), CopyRanges([.. Enumerable.Repeat((0u, 0UL, 1), MaxCopyRanges + 1)])),
            NvmeStatus.CommandSizeLimitExceeded);
        Fails(await fe.IoAsync(Copy(dest + 6, 3, 0), CopyRanges((0, 0, Mssrl), (0, 0, Mssrl), (0, 0, 1))), NvmeStatus.CommandSizeLimitExceeded);
        // Zone rules at the destination: not at the write pointer (QEMU's Copy carries no DNR for zone rules).
        Fails(await fe.IoAsync(Copy(dest + 10, 1, 0), CopyRanges((0, 0, 1))), NvmeStatus.ZoneInvalidWrite, dnr: false);

        // Format 1h (40-byte entries with 64-bit PI fields): the namespace has no protection information.
        Fails(await fe.IoAsync(Copy(dest + 6, 1, 1), new byte[40]), NvmeStatus.InvalidFormat);
        Assert.Equal(dest + 6, (await ZoneAsync(fe, 2)).WritePointer);
    }

    private const byte HostBehaviorFid = 0x16, TimestampFid = 0x0E;

    private static byte[] HostBehavior(ushort cdfe)
    {
        var data = new byte[HostBehaviorLayout.Size];
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(HostBehaviorLayout.CdfeOffset), cdfe);
        return data;
    }

    private static async Task CopyFormats2And3AfterHostBehaviorSupport(FrontEnd fe)
    {
        byte[] id = await IdentifyControllerAsync(fe);
        Assert.Equal(0xF, BinaryPrimitives.ReadUInt16LittleEndian(id.AsSpan(IdentifyControllerLayout.Ocfs)));

        // Disabled until Host Behavior Support enables them (CDFE).
        Fails(await fe.IoAsync(Copy(0, 1, 2), CopyRanges((ConventionalNsid, 0, 1))), NvmeStatus.InvalidField);
        Completion current = await fe.AdminAsync(Sqe.GetFeatures(HostBehaviorFid), dataInLength: HostBehaviorLayout.Size);
        Ok(current);
        Assert.Equal(new byte[HostBehaviorLayout.Size], current.Data);

        Ok(await fe.AdminAsync(Sqe.SetFeatures(HostBehaviorFid, 0), HostBehavior(0xC)));
        current = await fe.AdminAsync(Sqe.GetFeatures(HostBehaviorFid), dataInLength: HostBehaviorLayout.Size);
        Ok(current);
        Assert.Equal(HostBehavior(0xC), current.Data);
        // Supported capabilities (SEL 011b) come in DW0 alone: the command data table gives no transfer, so the host
        // describes no buffer (one it described would be undefined: NVMe/TCP zero-fills it, PCIe leaves it untouched).
        Completion capabilities = await fe.AdminAsync(Sqe.GetFeatures(HostBehaviorFid, sel: 3));
        Ok(capabilities);
        Assert.Equal(0x4UL, capabilities.Result);
        SubmissionQueueEntry save = Sqe.SetFeatures(HostBehaviorFid, 0);
        save.SetCdw(10, HostBehaviorFid | 0x8000_0000u);
        Fails(await fe.AdminAsync(save, HostBehavior(0xC)), NvmeStatus.FeatureIdNotSaveable);

        // Format 2h: two blocks of the conventional namespace, then one of the destination namespace itself.
        byte[] source = await WriteOkAsync(fe, 100, 4, 60, ConventionalNsid);
        byte[] own = await WriteOkAsync(fe, 0, 1, 61);
        ulong dest = ZoneStart(1);
        Completion copied = await fe.IoAsync(Copy(dest, 2, 2), CopyRanges((ConventionalNsid, 101, 2), (ZonedNsid, 0, 1)));
        Ok(copied);
        await ReadsAsync(fe, dest, [.. source[BlockSize..(3 * BlockSize)], .. own]);
        // An empty namespace slot: Invalid Field, DW0 the range.
        Completion bad = await fe.IoAsync(Copy(dest + 3, 2, 2), CopyRanges((ConventionalNsid, 100, 1), (9, 0, 1)));
        Fails(bad, NvmeStatus.InvalidField);
        Assert.Equal(1UL, bad.Result);
        // A source range of the destination namespace that ends inside the blocks being copied to.
        Fails(await fe.IoAsync(Copy(dest + 4, 1, 2), CopyRanges((ZonedNsid, dest + 2, 3))), NvmeStatus.OverlappingIoRange);
        // Format 3h: 40-byte entries with PI fields, Invalid Format without protection information.
        Fails(await fe.IoAsync(Copy(dest + 4, 1, 3), new byte[40]), NvmeStatus.InvalidFormat);
        Assert.Equal(dest + 4, (await ZoneAsync(fe, 1)).WritePointer);
    }

    // ---- Set/Get Features with data -------------------------------------------------------------------------------

    private static async Task TimestampFeature(FrontEnd fe)
    {
        const ulong timestamp = 0x0000_0123_4567_89AB;
        byte[] set = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(set, timestamp);
        Ok(await fe.AdminAsync(Sqe.SetFeatures(TimestampFid, 0), set));
        Completion get = await fe.AdminAsync(Sqe.GetFeatures(TimestampFid), dataInLength: 8);
        Ok(get);
        // The clock is frozen: exactly the value set, with Timestamp Origin 001b (set by a host).
        Assert.Equal(timestamp | 1UL << 49, BinaryPrimitives.ReadUInt64LittleEndian(get.Data));
        Completion capabilities = await fe.AdminAsync(Sqe.GetFeatures(TimestampFid, sel: 3), dataInLength: 8);
        Ok(capabilities);
        Assert.Equal(0x4UL, capabilities.Result);
        SubmissionQueueEntry save = Sqe.SetFeatures(TimestampFid, 0);
        save.SetCdw(10, TimestampFid | 0x8000_0000u);
        Fails(await fe.AdminAsync(save, set), NvmeStatus.FeatureIdNotSaveable);
    }

    // ---- Zone Management Send / Receive ---------------------------------------------------------------------------

    private static SubmissionQueueEntry Report(ulong slba, int bytes, ZoneReceiveAction zra = ZoneReceiveAction.Report,
        ZoneReportFilter filter = ZoneReportFilter.All, bool partial = false) =>
        Sqe.ZoneReceive(ZonedNsid, slba, bytes, (byte)zra, (byte)filter, partial);

    private static async Task<byte[]> ReportOkAsync(FrontEnd fe, SubmissionQueueEntry sqe, int bytes)
    {
        Completion c = await fe.IoAsync(sqe, dataInLength: bytes);
        Ok(c);
        return c.Data;
    }

    /// <summary>The same report as the core itself makes it.</summary>
    private static byte[] CoreReport(FrontEnd fe, ulong slba, int bytes, ZoneReceiveAction zra = ZoneReceiveAction.Report,
        ZoneReportFilter filter = ZoneReportFilter.All, bool partial = false)
    {
        var report = new byte[bytes];
        Assert.True(fe.Zns.ZoneManagementReceive(slba, (byte)zra, (byte)filter, partial, report).IsSuccess);
        return report;
    }

    private static async Task ZoneDescriptorExtension(FrontEnd fe)
    {
        byte[] extension = Pattern(ExtensionSize, 70);
        Ok(await fe.IoAsync(ZoneSend(3, ZoneSendAction.SetDescriptorExtension), extension));
        var (state, _, attributes) = await ZoneAsync(fe, 3);
        Assert.Equal(ZoneState.Closed, state);
        Assert.Equal(ZoneAttributes.DescriptorExtensionValid, attributes);
        // Only an Empty zone takes an extension; Select All is not allowed.
        Fails(await fe.IoAsync(ZoneSend(3, ZoneSendAction.SetDescriptorExtension), extension), NvmeStatus.InvalidZoneStateTransition);
        Fails(await fe.IoAsync(ZoneSend(4, ZoneSendAction.SetDescriptorExtension, selectAll: true), extension), NvmeStatus.InvalidField);

        const int entry = 64 + ExtensionSize, full = 64 + (int)ZoneCount * entry;
        byte[] report = await ReportOkAsync(fe, Report(0, full, ZoneReceiveAction.ExtendedReport), full);
        Assert.Equal(ZoneCount, BinaryPrimitives.ReadUInt64LittleEndian(report));
        Assert.Equal(extension, report.AsSpan(64 + 3 * entry + 64, ExtensionSize).ToArray());
        Assert.Equal(CoreReport(fe, 0, full, ZoneReceiveAction.ExtendedReport), report);
        // A partial extended report with room for one entry, starting inside zone 3.
        report = await ReportOkAsync(fe, Report(ZoneStart(3) + 5, 64 + entry, ZoneReceiveAction.ExtendedReport, partial: true), 64 + entry);
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(report));
        Assert.Equal(extension, report.AsSpan(128, ExtensionSize).ToArray());

        // Reset clears the extension.
        Ok(await fe.IoAsync(ZoneSend(3, ZoneSendAction.Reset)));
        report = await ReportOkAsync(fe, Report(ZoneStart(3), 64 + entry, ZoneReceiveAction.ExtendedReport, partial: true), 64 + entry);
        Assert.Equal(new byte[ExtensionSize], report.AsSpan(128, ExtensionSize).ToArray());
        Assert.Equal((byte)ZoneState.Empty << 4, report[65]);
    }

    private static async Task ZoneReports(FrontEnd fe)
    {
        // Zone 0 implicitly opened, 1 explicitly opened, 2 closed, 3 full, the rest empty.
        await WriteOkAsync(fe, 0, 2, 80);
        Ok(await fe.IoAsync(ZoneSend(1, ZoneSendAction.Open)));
        await WriteOkAsync(fe, ZoneStart(2), 1, 81);
        Ok(await fe.IoAsync(ZoneSend(2, ZoneSendAction.Close)));
        Ok(await fe.IoAsync(ZoneSend(3, ZoneSendAction.Finish)));

        const int full = 64 + (int)ZoneCount * 64;
        byte[] report = await ReportOkAsync(fe, Report(0, full), full);
        Assert.Equal(ZoneCount, BinaryPrimitives.ReadUInt64LittleEndian(report));
        Assert.Equal(CoreReport(fe, 0, full), report);
        Assert.Equal(ZoneCapacityLbas, BinaryPrimitives.ReadUInt64LittleEndian(report.AsSpan(64 + 8)));
        Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(report.AsSpan(64 + 24)));
        Assert.Equal(ulong.MaxValue, BinaryPrimitives.ReadUInt64LittleEndian(report.AsSpan(64 + 3 * 64 + 24))); // a full zone's WP

        // Two descriptors' room: all matching zones counted, or only the ones that fit (partial).
        byte[] small = await ReportOkAsync(fe, Report(0, 192), 192);
        Assert.Equal(ZoneCount, BinaryPrimitives.ReadUInt64LittleEndian(small));
        Assert.Equal(report[64..192], small[64..]);
        small = await ReportOkAsync(fe, Report(0, 192, partial: true), 192);
        Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(small));

        // Filters, and a start inside a zone.
        foreach (var (filter, count) in new[] { (ZoneReportFilter.Empty, 12UL), (ZoneReportFilter.ImplicitlyOpened, 1UL),
            (ZoneReportFilter.ExplicitlyOpened, 1UL), (ZoneReportFilter.Closed, 1UL), (ZoneReportFilter.Full, 1UL), (ZoneReportFilter.Offline, 0UL) })
        {
            byte[] filtered = await ReportOkAsync(fe, Report(0, full, filter: filter), full);
            Assert.Equal(count, BinaryPrimitives.ReadUInt64LittleEndian(filtered));
            Assert.Equal(CoreReport(fe, 0, full, filter: filter), filtered);
        }
        byte[] tail = await ReportOkAsync(fe, Report(ZoneStart(5) + 3, 1024), 1024);
        Assert.Equal(ZoneCount - 5, BinaryPrimitives.ReadUInt64LittleEndian(tail));
        Assert.Equal(ZoneStart(5), BinaryPrimitives.ReadUInt64LittleEndian(tail.AsSpan(64 + 16)));

        // Out of range, reserved ZRA and ZRASF, a buffer smaller than the header, a transfer above MDTS.
        Fails(await fe.IoAsync(Report(ZoneCount * ZoneLbas, 1024), dataInLength: 1024), NvmeStatus.LbaOutOfRange);
        Fails(await fe.IoAsync(Report(0, 1024, (ZoneReceiveAction)2), dataInLength: 1024), NvmeStatus.InvalidField);
        Fails(await fe.IoAsync(Report(0, 1024, filter: (ZoneReportFilter)8), dataInLength: 1024), NvmeStatus.InvalidField);
        Fails(await fe.IoAsync(Report(0, 32), dataInLength: 32), NvmeStatus.InvalidField);
        Fails(await fe.IoAsync(Report(0, MdtsBlocks * BlockSize + 64), dataInLength: MdtsBlocks * BlockSize + 64), NvmeStatus.InvalidField);
    }

    // ---- Dataset Management ---------------------------------------------------------------------------------------

    private static byte[] DsmRanges(params (ulong Slba, uint Blocks)[] ranges)
    {
        var d = new byte[ranges.Length * 16];
        for (int i = 0; i < ranges.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(i * 16 + 4), ranges[i].Blocks);
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(i * 16 + 8), ranges[i].Slba);
        }
        return d;
    }

    private static SubmissionQueueEntry Dsm(int ranges, bool deallocate, uint nsid = ZonedNsid)
    {
        SubmissionQueueEntry sqe = Sqe.Create(IoOpcode.DatasetManagement, nsid);
        sqe.SetCdw(10, (uint)(ranges - 1));
        sqe.SetCdw(11, deallocate ? 1u << 2 : 0);
        return sqe;
    }

    private static async Task DatasetManagementDeallocate(FrontEnd fe)
    {
        byte[] data = await WriteOkAsync(fe, 0, 8, 90);
        // Without AD the ranges are hints only.
        Ok(await fe.IoAsync(Dsm(1, deallocate: false), DsmRanges((0, 8))));
        await ReadsAsync(fe, 0, data);
        Ok(await fe.IoAsync(Dsm(2, deallocate: true), DsmRanges((2, 2), (6, 1))));
        byte[] expected = [.. data];
        Array.Clear(expected, 2 * BlockSize, 2 * BlockSize);
        Array.Clear(expected, 6 * BlockSize, BlockSize);
        await ReadsAsync(fe, 0, expected);
        Assert.Equal(8UL, (await ZoneAsync(fe, 0)).WritePointer);

        byte[] conventional = await WriteOkAsync(fe, 10, 4, 91, ConventionalNsid);
        Ok(await fe.IoAsync(Dsm(1, deallocate: true, ConventionalNsid), DsmRanges((11, 2))));
        Array.Clear(conventional, BlockSize, 2 * BlockSize);
        await ReadsAsync(fe, 10, conventional, ConventionalNsid);
    }

    // ---- Identify, Get Log Page -----------------------------------------------------------------------------------

    /// <summary>
    /// Identify Controller, checked for the fields a transport sets differently (from its traits), which are then
    /// cleared so the rest compares: OACS bit 8 (Doorbell Buffer Config, PCIe only), SGLS, and the fabrics fields
    /// IOCCSZ to OFCS (reserved on PCIe; IOCCSZ from each fabric's in-capsule length).
    /// </summary>
    private static async Task<byte[]> IdentifyControllerAsync(FrontEnd fe)
    {
        byte[] id = await IdentifyOkAsync(fe, IdentifyCns.Controller);
        ushort oacs = BinaryPrimitives.ReadUInt16LittleEndian(id.AsSpan(IdentifyControllerLayout.Oacs));
        uint sgls = BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(IdentifyControllerLayout.Sgls));
        uint ioccsz = BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(IdentifyControllerLayout.Ioccsz));
        switch (fe.Kind)
        {
            case FrontEndKind.Pcie:
                Assert.Equal(1 << 8, oacs & 1 << 8);
                Assert.Equal(Zns.Target.Pcie.SglWalker.SupportedSgls, sgls);
                Assert.Equal(0u, ioccsz);
                break;
            case FrontEndKind.Tcp:
                Assert.Equal(0, oacs & 1 << 8);
                Assert.Equal(IdentifyControllerLayout.FabricSgls, sgls);
                Assert.Equal((uint)(64 + TcpFrontEnd.Transport.MaxInCapsuleDataLength) / 16, ioccsz);
                break;
            default:
                Assert.Equal(FrontEndKind.Loop, fe.Kind);
                Assert.Equal(0, oacs & 1 << 8);
                Assert.Equal(LoopFrontEnd.Traits.Sgls, sgls);
                Assert.Equal((uint)(64 + LoopFrontEnd.InCapsuleDataLength) / 16, ioccsz);
                break;
        }
        BinaryPrimitives.WriteUInt16LittleEndian(id.AsSpan(IdentifyControllerLayout.Oacs), (ushort)(oacs & ~(1 << 8)));
        id.AsSpan(IdentifyControllerLayout.Sgls, 4).Clear();
        id.AsSpan(IdentifyControllerLayout.Ioccsz, IdentifyControllerLayout.Psd0 - IdentifyControllerLayout.Ioccsz).Clear();
        return id;
    }

    private static async Task<byte[]> IdentifyOkAsync(FrontEnd fe, byte cns, uint nsid = 0, byte csi = 0)
    {
        Completion c = await fe.AdminAsync(Sqe.Identify(cns, nsid, csi), dataInLength: IdentifyCns.DataSize);
        Ok(c);
        return c.Data;
    }

    private static async Task IdentifyStructures(FrontEnd fe)
    {
        byte[] controller = await IdentifyControllerAsync(fe);
        Assert.Equal(4, controller[IdentifyControllerLayout.Mdts]);
        Assert.Equal("zns", Text(controller, IdentifyControllerLayout.Mn, 40));
        Assert.Equal(fe.Target.Subsystem.Nqn, Text(controller, IdentifyControllerLayout.Subnqn, 256));

        byte[] ns = await IdentifyOkAsync(fe, IdentifyCns.Namespace, ZonedNsid);
        Assert.Equal(ZoneCount * ZoneLbas, BinaryPrimitives.ReadUInt64LittleEndian(ns));
        Assert.Equal(Mssrl, BinaryPrimitives.ReadUInt16LittleEndian(ns.AsSpan(IdentifyNamespaceLayout.Mssrl)));
        Assert.Equal(12, ns[IdentifyNamespaceLayout.Lbaf0 + 2]); // LBADS: 4 KiB
        await IdentifyOkAsync(fe, IdentifyCns.Namespace, ConventionalNsid);
        Assert.Equal(new byte[IdentifyCns.DataSize], await IdentifyOkAsync(fe, IdentifyCns.Namespace, 9)); // an empty slot

        byte[] zns = await IdentifyOkAsync(fe, IdentifyCns.IoCommandSetNamespace, ZonedNsid, Csi.Zoned);
        Assert.Equal((uint)MaxActive - 1, BinaryPrimitives.ReadUInt32LittleEndian(zns.AsSpan(IdentifyZonedNamespaceLayout.Mar)));
        Assert.Equal((uint)MaxOpen - 1, BinaryPrimitives.ReadUInt32LittleEndian(zns.AsSpan(IdentifyZonedNamespaceLayout.Mor)));
        Assert.Equal(ZoneLbas, BinaryPrimitives.ReadUInt64LittleEndian(zns.AsSpan(IdentifyZonedNamespaceLayout.Lbafe0)));
        Assert.Equal(ExtensionSize / 64, zns[IdentifyZonedNamespaceLayout.Lbafe0 + 8]);
        Assert.Equal((ushort)ZrwaLbas, BinaryPrimitives.ReadUInt16LittleEndian(zns.AsSpan(IdentifyZonedNamespaceLayout.Zrwas)));
        byte[] znsController = await IdentifyOkAsync(fe, IdentifyCns.IoCommandSetController, 0, Csi.Zoned);
        Assert.Equal(2, znsController[0]); // ZASL
        await IdentifyOkAsync(fe, IdentifyCns.IoCommandSetController, 0, Csi.Nvm);
        byte[] active = await IdentifyOkAsync(fe, IdentifyCns.ActiveNamespaceList);
        Assert.Equal([1u, 2u, 0u], [.. Enumerable.Range(0, 3).Select(i => BinaryPrimitives.ReadUInt32LittleEndian(active.AsSpan(4 * i)))]);
        await IdentifyOkAsync(fe, IdentifyCns.IoCommandSetActiveNamespaceList, 0, Csi.Zoned);
        await IdentifyOkAsync(fe, IdentifyCns.NamespaceDescriptorList, ZonedNsid);
        await IdentifyOkAsync(fe, IdentifyCns.IoCommandSetIndependentNamespace, ZonedNsid);
        await IdentifyOkAsync(fe, IdentifyCns.IoCommandSetVector);

        Fails(await fe.AdminAsync(Sqe.Identify(IdentifyCns.Namespace, 0), dataInLength: 4096), NvmeStatus.InvalidNamespace);
        Fails(await fe.AdminAsync(Sqe.Identify(IdentifyCns.IoCommandSetNamespace, ConventionalNsid, Csi.Zoned), dataInLength: 4096), NvmeStatus.InvalidField);
        Fails(await fe.AdminAsync(Sqe.Identify(0x55), dataInLength: 4096), NvmeStatus.InvalidField);
    }

    private static async Task<byte[]> LogOkAsync(FrontEnd fe, byte lid, int bytes, uint nsid = 0, byte csi = 0, ulong offset = 0, bool rae = false)
    {
        Completion c = await fe.AdminAsync(Sqe.GetLogPage(lid, bytes, nsid, csi, offset, rae), dataInLength: bytes);
        Ok(c);
        return c.Data;
    }

    private static async Task LogPages(FrontEnd fe)
    {
        await WriteOkAsync(fe, 0, 3, 100);
        await ReadsAsync(fe, 0, Blocks(3, 100));
        byte[] smart = await LogOkAsync(fe, LogPageId.SmartHealth, 512, uint.MaxValue);
        // Data Units Written/Read (thousands of 512-byte units, rounded up) and host write/read commands.
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(smart.AsSpan(48)));
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(smart.AsSpan(32)));
        Assert.Equal(smart[8..24], await LogOkAsync(fe, LogPageId.SmartHealth, 16, uint.MaxValue, offset: 8));
        await LogOkAsync(fe, LogPageId.SmartHealth, 512, ZonedNsid);
        Assert.Equal(new byte[64], await LogOkAsync(fe, LogPageId.ErrorInformation, 64));
        await LogOkAsync(fe, LogPageId.FirmwareSlot, 512);
        await LogOkAsync(fe, LogPageId.ChangedNamespaceList, 4096);
        byte[] effects = await LogOkAsync(fe, LogPageId.CommandsSupportedAndEffects, 4096, csi: Csi.Zoned);
        Assert.NotEqual(0u, BinaryPrimitives.ReadUInt32LittleEndian(effects.AsSpan(1024 + 4 * IoOpcode.ZoneAppend)) & 1); // CSUPP
        Assert.NotEqual(0u, BinaryPrimitives.ReadUInt32LittleEndian(effects.AsSpan(1024 + 4 * IoOpcode.Copy)) & 1);
        byte[] changedZones = await LogOkAsync(fe, LogPageId.ChangedZoneList, 4096, ZonedNsid, Csi.Zoned);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(changedZones));

        Fails(await fe.AdminAsync(Sqe.GetLogPage(LogPageId.Discovery, 1024), dataInLength: 1024), NvmeStatus.InvalidField);
        Fails(await fe.AdminAsync(Sqe.GetLogPage(LogPageId.SmartHealth, 64, uint.MaxValue, offset: 512), dataInLength: 64), NvmeStatus.InvalidField);
        Fails(await fe.AdminAsync(Sqe.GetLogPage(LogPageId.SmartHealth, 64, 7), dataInLength: 64), NvmeStatus.InvalidNamespace);
        Fails(await fe.AdminAsync(Sqe.GetLogPage(LogPageId.ChangedZoneList, 4096, ConventionalNsid, Csi.Zoned), dataInLength: 4096), NvmeStatus.InvalidField);
    }
}

using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Protocol;
using Zns.Nvme.Layouts;
using static Zns.Target.Tests.Conformance.Conformance;
using static Zns.Target.Tests.Conformance.ConformanceTarget;

namespace Zns.Target.Tests.Conformance;

/// <summary>
/// Every status the zone core answers (ZoneStateMachine and ZonedNamespace: write pointer, zone state, boundaries,
/// open and active limits, state transitions, ZRWA) and the dispatch checks in front of it, through every front end.
/// </summary>
public sealed class ZoneErrorConformance
{
    private static readonly Dictionary<string, Func<FrontEnd, Task>> Scenarios = new()
    {
        [nameof(WritePointerAndBoundaries)] = WritePointerAndBoundaries,
        [nameof(FullZone)] = FullZone,
        [nameof(CommandChecks)] = CommandChecks,
        [nameof(StateTransitions)] = StateTransitions,
        [nameof(OpenAndActiveLimits)] = OpenAndActiveLimits,
        [nameof(ReadOnlyAndOfflineZones)] = ReadOnlyAndOfflineZones,
        [nameof(ZoneRandomWriteArea)] = ZoneRandomWriteArea,
    };

    public static TheoryData<string, FrontEndKind> Runs => Conformance.Runs(Scenarios.Keys);
    public static TheoryData<string> Names => new(Scenarios.Keys);

    [Theory, MemberData(nameof(Runs))]
    public Task Run(string scenario, FrontEndKind kind) => RunAsync(kind, Scenarios[scenario]);

    [Theory, MemberData(nameof(Names))]
    public Task Parity(string scenario) => ParityAsync(Scenarios[scenario]);

    private static async Task WritePointerAndBoundaries(FrontEnd fe)
    {
        // Ahead of the write pointer, then behind it: Zone Invalid Write.
        Fails(await fe.IoAsync(Write(1, 1), Blocks(1, 1)), NvmeStatus.ZoneInvalidWrite);
        byte[] first = await WriteOkAsync(fe, 0, 1, 2);
        Fails(await fe.IoAsync(Write(0, 1), Blocks(1, 3)), NvmeStatus.ZoneInvalidWrite);
        byte[] more = await WriteOkAsync(fe, 1, MdtsBlocks, 4);
        // Past the zone capacity (24 of 32 blocks): Zone Boundary Error, nothing written; the same for an append.
        Fails(await fe.IoAsync(Write(17, 8), Blocks(8, 5)), NvmeStatus.ZoneBoundaryError);
        Assert.Equal(17UL, (await ZoneAsync(fe, 0)).WritePointer);
        byte[] last = await WriteOkAsync(fe, 17, ZaslBlocks, 6);
        Fails(await fe.IoAsync(Append(0, ZaslBlocks), Blocks(ZaslBlocks, 7)), NvmeStatus.ZoneBoundaryError);
        Assert.Equal(21UL, (await ZoneAsync(fe, 0)).WritePointer);
        // A read across the zone boundary (no cross-zone reads): Zone Boundary Error; up to the boundary it works.
        Fails(await fe.IoAsync(Read(ZoneLbas - 1, 2), dataInLength: 2 * BlockSize), NvmeStatus.ZoneBoundaryError);
        await ReadsAsync(fe, 0, [.. first, .. more[..(15 * BlockSize)]]);
        await ReadsAsync(fe, 16, [.. more[(15 * BlockSize)..], .. last, .. new byte[3 * BlockSize]]);
        // Zone rules of Copy carry no DNR (as QEMU's): a destination behind the write pointer.
        Fails(await fe.IoAsync(Copy(10, 1, 0), CopyRanges((0, 0, 1))), NvmeStatus.ZoneInvalidWrite, dnr: false);
    }

    private static async Task FullZone(FrontEnd fe)
    {
        await WriteOkAsync(fe, 0, MdtsBlocks, 10);
        await WriteOkAsync(fe, MdtsBlocks, (int)ZoneCapacityLbas - MdtsBlocks, 11);
        var zone = await ZoneAsync(fe, 0);
        Assert.Equal(ZoneState.Full, zone.State);
        Assert.Equal(ulong.MaxValue, zone.WritePointer);
        Fails(await fe.IoAsync(Write(ZoneCapacityLbas, 1), Blocks(1, 12)), NvmeStatus.ZoneIsFull);
        Fails(await fe.IoAsync(Append(0, 1), Blocks(1, 12)), NvmeStatus.ZoneIsFull);
        // A finished zone is full too, and Copy into it cannot open it.
        Ok(await fe.IoAsync(ZoneSend(1, ZoneSendAction.Finish)));
        Fails(await fe.IoAsync(Write(ZoneStart(1), 1), Blocks(1, 13)), NvmeStatus.ZoneIsFull);
        Fails(await fe.IoAsync(Copy(ZoneStart(1), 1, 0), CopyRanges((0, 0, 1))), NvmeStatus.InvalidZoneStateTransition, dnr: false);
        // Reset makes it writable again from the zone start.
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Reset)));
        byte[] again = await WriteOkAsync(fe, 0, 1, 14);
        await ReadsAsync(fe, 0, [.. again, .. new byte[BlockSize]]);
    }

    private static async Task CommandChecks(FrontEnd fe)
    {
        ulong end = ZoneCount * ZoneLbas;
        Fails(await fe.IoAsync(Write(end, 1), Blocks(1, 20)), NvmeStatus.LbaOutOfRange);
        Fails(await fe.IoAsync(Read(end - 1, 2), dataInLength: 2 * BlockSize), NvmeStatus.LbaOutOfRange);
        Fails(await fe.IoAsync(Append(end, 1), Blocks(1, 20)), NvmeStatus.LbaOutOfRange);
        // Above MDTS (16 blocks): Invalid Field.
        Fails(await fe.IoAsync(Read(0, MdtsBlocks + 1), dataInLength: (MdtsBlocks + 1) * BlockSize), NvmeStatus.InvalidField);
        Fails(await fe.IoAsync(Write(0, MdtsBlocks + 1), Blocks(MdtsBlocks + 1, 21)), NvmeStatus.InvalidField);
        // No such namespace; zone commands on the conventional namespace; an opcode nobody implements.
        Fails(await fe.IoAsync(Write(0, 1, 5), Blocks(1, 22)), NvmeStatus.InvalidNamespace);
        Fails(await fe.IoAsync(Read(0, 1, 5), dataInLength: BlockSize), NvmeStatus.InvalidNamespace);
        Fails(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Open, nsid: ConventionalNsid)), NvmeStatus.InvalidOpcode);
        Fails(await fe.IoAsync(Sqe.ZoneReceive(ConventionalNsid, 0, 1024), dataInLength: 1024), NvmeStatus.InvalidOpcode);
        Fails(await fe.IoAsync(Append(0, 1, ConventionalNsid), Blocks(1, 23)), NvmeStatus.InvalidOpcode);
        Fails(await fe.IoAsync(Sqe.Create(0x80, ZonedNsid)), NvmeStatus.InvalidOpcode);
        Fails(await fe.AdminAsync(Sqe.Create(0xC0)), NvmeStatus.InvalidOpcode);
        // Verify: within its limit, above it.
        Ok(await fe.IoAsync(Sqe.ReadWrite(IoOpcode.Verify, ZonedNsid, 0, 8)));
        Fails(await fe.IoAsync(Sqe.ReadWrite(IoOpcode.Verify, ZonedNsid, 0, 129)), NvmeStatus.InvalidField);
        Assert.Equal(0UL, (await ZoneAsync(fe, 0)).WritePointer);
    }

    private static async Task StateTransitions(FrontEnd fe)
    {
        // From Empty: Close and Offline are invalid, Finish is allowed.
        Fails(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Close)), NvmeStatus.InvalidZoneStateTransition);
        Fails(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Offline)), NvmeStatus.InvalidZoneStateTransition);
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Finish)));
        // From Full: Open and Close are invalid, Finish again is fine, Reset empties it.
        Fails(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Open)), NvmeStatus.InvalidZoneStateTransition);
        Fails(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Close)), NvmeStatus.InvalidZoneStateTransition);
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Finish)));
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Reset)));
        Assert.Equal(ZoneState.Empty, (await ZoneAsync(fe, 0)).State);
        // Open, Close, Open again (explicitly).
        Ok(await fe.IoAsync(ZoneSend(1, ZoneSendAction.Open)));
        Ok(await fe.IoAsync(ZoneSend(1, ZoneSendAction.Close)));
        Assert.Equal(ZoneState.Closed, (await ZoneAsync(fe, 1)).State);
        Ok(await fe.IoAsync(ZoneSend(1, ZoneSendAction.Open)));
        Assert.Equal(ZoneState.ExplicitlyOpened, (await ZoneAsync(fe, 1)).State);
        // Not a zone start, a reserved action, past the namespace.
        SubmissionQueueEntry inside = Sqe.ZoneSend(ZonedNsid, ZoneStart(2) + 1, ZoneSendAction.Open);
        Fails(await fe.IoAsync(inside), NvmeStatus.InvalidField);
        Fails(await fe.IoAsync(ZoneSend(2, (ZoneSendAction)0x20)), NvmeStatus.InvalidField);
        Fails(await fe.IoAsync(ZoneSend((uint)ZoneCount, ZoneSendAction.Open)), NvmeStatus.LbaOutOfRange);
        // Select All: Close every open zone, Finish every closed one.
        await WriteOkAsync(fe, ZoneStart(2), 1, 30);
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Close, selectAll: true)));
        Assert.Equal(ZoneState.Closed, (await ZoneAsync(fe, 2)).State);
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Finish, selectAll: true)));
        Assert.Equal(ZoneState.Full, (await ZoneAsync(fe, 1)).State);
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Reset, selectAll: true)));
        Assert.Equal(ZoneState.Empty, (await ZoneAsync(fe, 2)).State);
    }

    private static async Task OpenAndActiveLimits(FrontEnd fe)
    {
        // Three explicitly opened zones (the open limit): a fourth Open, or a write opening a fourth zone, is refused.
        for (uint z = 0; z < MaxOpen; z++)
        {
            Ok(await fe.IoAsync(ZoneSend(z, ZoneSendAction.Open)));
        }
        Fails(await fe.IoAsync(ZoneSend(3, ZoneSendAction.Open)), NvmeStatus.TooManyOpenZones);
        Fails(await fe.IoAsync(Write(ZoneStart(3), 1), Blocks(1, 40)), NvmeStatus.TooManyOpenZones);
        Fails(await fe.IoAsync(Append(ZoneStart(3), 1), Blocks(1, 40)), NvmeStatus.TooManyOpenZones);
        // Zone 0 closed, zone 3 implicitly opened: four active zones (the active limit).
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Close)));
        await WriteOkAsync(fe, ZoneStart(3), 1, 41);
        // A fifth active zone: by write (which first auto-closes implicitly opened zone 3, as QEMU does), by Open,
        // by Set Zone Descriptor Extension.
        Fails(await fe.IoAsync(Write(ZoneStart(4), 1), Blocks(1, 42)), NvmeStatus.TooManyActiveZones);
        Assert.Equal(ZoneState.Closed, (await ZoneAsync(fe, 3)).State);
        Fails(await fe.IoAsync(ZoneSend(4, ZoneSendAction.Open)), NvmeStatus.TooManyActiveZones);
        Fails(await fe.IoAsync(ZoneSend(4, ZoneSendAction.SetDescriptorExtension), Pattern(ExtensionSize, 43)), NvmeStatus.TooManyActiveZones);
        // Opening a closed zone takes an open resource only: zone 0 fits (the auto-close freed one), zone 3 then not.
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Open)));
        Fails(await fe.IoAsync(ZoneSend(3, ZoneSendAction.Open)), NvmeStatus.TooManyOpenZones);
        // Finishing releases an active resource.
        Ok(await fe.IoAsync(ZoneSend(1, ZoneSendAction.Finish)));
        await WriteOkAsync(fe, ZoneStart(4), 1, 44);
        Assert.Equal(MaxActive, (int)fe.Zns.ActiveZoneCount);
    }

    private static async Task ReadOnlyAndOfflineZones(FrontEnd fe)
    {
        byte[] data = await WriteOkAsync(fe, ZoneStart(5), 2, 50);
        // The controller makes zone 5 Read Only (the health API): no writes, reads still work.
        Assert.True(fe.Zns.MakeZoneReadOnly(5).IsSuccess);
        var zone = await ZoneAsync(fe, 5);
        Assert.Equal((ZoneState.ReadOnly, ulong.MaxValue), (zone.State, zone.WritePointer));
        Fails(await fe.IoAsync(Write(ZoneStart(5) + 2, 1), Blocks(1, 51)), NvmeStatus.ZoneIsReadOnly);
        Fails(await fe.IoAsync(Append(ZoneStart(5), 1), Blocks(1, 51)), NvmeStatus.ZoneIsReadOnly);
        await ReadsAsync(fe, ZoneStart(5), data);
        Fails(await fe.IoAsync(ZoneSend(5, ZoneSendAction.Reset)), NvmeStatus.InvalidZoneStateTransition);
        Fails(await fe.IoAsync(ZoneSend(5, ZoneSendAction.Open)), NvmeStatus.InvalidZoneStateTransition);
        // The host takes a Read Only zone offline: nothing is readable any more.
        Ok(await fe.IoAsync(ZoneSend(5, ZoneSendAction.Offline)));
        Fails(await fe.IoAsync(Read(ZoneStart(5), 1), dataInLength: BlockSize), NvmeStatus.ZoneIsOffline);
        Fails(await fe.IoAsync(Write(ZoneStart(5), 1), Blocks(1, 52)), NvmeStatus.ZoneIsOffline);
        Fails(await fe.IoAsync(ZoneSend(5, ZoneSendAction.Finish)), NvmeStatus.InvalidZoneStateTransition);
        // The controller takes an open zone offline.
        await WriteOkAsync(fe, ZoneStart(6), 1, 53);
        Assert.True(fe.Zns.MakeZoneOffline(6).IsSuccess);
        Fails(await fe.IoAsync(Read(ZoneStart(6), 1), dataInLength: BlockSize), NvmeStatus.ZoneIsOffline);
        Fails(await fe.IoAsync(Append(ZoneStart(6), 1), Blocks(1, 54)), NvmeStatus.ZoneIsOffline);
        // The host learns of both from the Changed Zone List (controller changes only).
        Completion log = await fe.AdminAsync(Sqe.GetLogPage(LogPageId.ChangedZoneList, 4096, ZonedNsid, Csi.Zoned), dataInLength: 4096);
        Ok(log);
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(log.Data));
        Assert.Equal([ZoneStart(5), ZoneStart(6)], new[] { BinaryPrimitives.ReadUInt64LittleEndian(log.Data.AsSpan(8)), BinaryPrimitives.ReadUInt64LittleEndian(log.Data.AsSpan(16)) });
        // Zones in a report filtered by state.
        Completion offline = await fe.IoAsync(Sqe.ZoneReceive(ZonedNsid, 0, 1024, zrasf: (byte)ZoneReportFilter.Offline), dataInLength: 1024);
        Ok(offline);
        Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(offline.Data));
    }

    private static async Task ZoneRandomWriteArea(FrontEnd fe)
    {
        // Open with ZSASO allocates a ZRWA: writes anywhere in the window of twice ZRWAS (8 blocks) from the write pointer.
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Open, zrwa: true)));
        Assert.Equal(ZoneAttributes.ZrwaValid, (await ZoneAsync(fe, 0)).Attributes);
        byte[] b2 = await WriteOkAsync(fe, 2, 1, 60);
        byte[] b0 = await WriteOkAsync(fe, 0, 1, 61);
        Assert.Equal(0UL, (await ZoneAsync(fe, 0)).WritePointer);
        Fails(await fe.IoAsync(Write(2 * ZrwaLbas, 1), Blocks(1, 62)), NvmeStatus.ZoneInvalidWrite);
        Fails(await fe.IoAsync(Append(0, 1), Blocks(1, 63)), NvmeStatus.InvalidZoneOperation);
        // Explicit flush: up to the window's end only; it commits up to and including ELBA.
        Fails(await fe.IoAsync(Sqe.ZoneSend(ZonedNsid, ZrwaLbas + 1, ZoneSendAction.FlushZrwa)), NvmeStatus.ZoneBoundaryError);
        Ok(await fe.IoAsync(Sqe.ZoneSend(ZonedNsid, 2, ZoneSendAction.FlushZrwa)));
        Assert.Equal(3UL, (await ZoneAsync(fe, 0)).WritePointer);
        await ReadsAsync(fe, 0, [.. b0, .. new byte[BlockSize], .. b2]);
        // A write past the first ZRWAS blocks of the window flushes implicitly.
        await WriteOkAsync(fe, 3 + ZrwaLbas, 1, 64);
        Assert.Equal(4UL, (await ZoneAsync(fe, 0)).WritePointer);
        // Two resources: the third zone opened with a ZRWA gets ZRWA Resources Unavailable.
        Ok(await fe.IoAsync(ZoneSend(1, ZoneSendAction.Open, zrwa: true)));
        Fails(await fe.IoAsync(ZoneSend(2, ZoneSendAction.Open, zrwa: true)), NvmeStatus.ZrwaResourcesUnavailable);
        // A flush of a zone without a ZRWA; Select All with a flush.
        await WriteOkAsync(fe, ZoneStart(3), 1, 65);
        Fails(await fe.IoAsync(Sqe.ZoneSend(ZonedNsid, ZoneStart(3), ZoneSendAction.FlushZrwa)), NvmeStatus.InvalidField);
        Fails(await fe.IoAsync(ZoneSend(0, ZoneSendAction.FlushZrwa, selectAll: true)), NvmeStatus.InvalidField);
        // Reset releases the resource.
        Ok(await fe.IoAsync(ZoneSend(0, ZoneSendAction.Reset)));
        Ok(await fe.IoAsync(ZoneSend(2, ZoneSendAction.Open, zrwa: true)));
    }
}

using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Storage;

namespace Zns.Core.Zones;

/// <summary>Zone Management Send (one zone or Select All) and Zone Management Receive (reports).</summary>
public sealed partial class ZonedNamespace
{
    // ---------------------------------------------------------------- Zone Management Send / Receive

    /// <summary>
    /// Zone Management Send. <paramref name="slba"/> must be a zone start unless <paramref name="selectAll"/>.
    /// Select All applies Open to Closed zones, Close to open zones, Finish to open and Closed zones, Reset to open,
    /// Closed and Full zones, Offline to Read Only zones; processing stops at the first failing zone.
    /// <paramref name="extension"/> is the data of Set Zone Descriptor Extension; <paramref name="zsaso"/> is the
    /// Zone Send Action Specific Option (ZRWA allocation for Open).
    /// </summary>
    public NvmeStatus ZoneManagementSend(ulong slba, ZoneSendAction action, bool selectAll, ReadOnlySpan<byte> extension = default, bool zsaso = false)
    {
        if (!IsZoned)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        if (selectAll)
        {
            slba = 0;
        }
        else if (slba >= Geometry.NamespaceSizeLbas)
        {
            return NvmeStatus.LbaOutOfRange.WithDnr();
        }
        uint zi = Geometry.ZoneOf(slba);
        if (slba != Geometry.ZoneStart(zi) && action != ZoneSendAction.FlushZrwa)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }

        NvmeStatus status;
        switch (action)
        {
            case ZoneSendAction.Open:
            {
                Func<uint, NvmeStatus> open = zsaso ? _zones.OpenWithZrwa : z => _zones.Open(z, implicitly: false);
                // QEMU walks the closed zones in the order they closed (zones auto-closed meanwhile join the walk).
                status = selectAll ? WalkLists(open, action, zsaso, ZoneStateMachine.ClosedList) : OneZone(zi, open, action, slba, zsaso);
                break;
            }
            case ZoneSendAction.Close:
                status = selectAll ? WalkLists(_zones.Close, action, false, ZoneStateMachine.ImplicitList, ZoneStateMachine.ExplicitList) : OneZone(zi, _zones.Close, action, slba);
                break;
            case ZoneSendAction.Finish:
                status = selectAll ? WalkLists(FinishDurably, action, false, ZoneStateMachine.ClosedList, ZoneStateMachine.ImplicitList, ZoneStateMachine.ExplicitList) : OneZone(zi, FinishDurably, action, slba);
                // Durable when it completes: a power cut never hands back as writable a zone the host was told is full.
                if (status.IsSuccess)
                {
                    status = CommitNow();
                }
                break;
            case ZoneSendAction.Reset:
                status = ResetZones(zi, selectAll);
                break;
            case ZoneSendAction.Offline:
                if (selectAll)
                {
                    // Only Read Only zones are taken Offline, and no write reaches them: no zone lock needs to order the entry.
                    status = ForEachZone(s => s == ZoneState.ReadOnly, _zones.Offline);
                    RecordZoneAction(action, 0, selectAll: true, zsaso: false, status: status);
                }
                else
                {
                    status = OneZone(zi, _zones.Offline, action, slba);
                }
                break;
            case ZoneSendAction.SetDescriptorExtension:
                if (selectAll || Geometry.DescriptorExtensionSize == 0 || extension.Length != Geometry.DescriptorExtensionSize)
                {
                    return NvmeStatus.InvalidField.WithDnr();
                }
                lock (_zoneLocks[zi])
                {
                    lock (_stateLock)
                    {
                        status = _zones.SetDescriptorExtension(zi, extension);
                    }
                    if (status.IsSuccess)
                    {
                        RecordZoneAction(action, slba, selectAll: false, zsaso: false, extension);
                    }
                }
                break;
            case ZoneSendAction.FlushZrwa:
                // SLBA is the last LBA to commit; Select All has no meaning here (Invalid Field, as QEMU).
                status = selectAll ? NvmeStatus.InvalidField : OneZone(zi, z => CommitZrwa(z, slba), action, slba);
                break;
            default:
                status = NvmeStatus.InvalidField;
                break;
        }
        if (status.IsSuccess)
        {
            Interlocked.Increment(ref _changes);
            return status;
        }
        return status.WithDnr();
    }

    // Finish makes the zone durable at its write pointer (the caller commits). Caller holds the zone lock.
    private NvmeStatus FinishDurably(uint zi)
    {
        var status = _zones.Finish(zi);
        if (status.IsSuccess)
        {
            MarkZoneDurable(zi);
        }
        return status;
    }

    // An explicit ZRWA flush moves the write pointer like a completed write: durable only at the next Flush or FUA.
    private NvmeStatus CommitZrwa(uint zi, ulong elba)
    {
        var status = _zones.FlushZrwa(zi, elba);
        if (status.IsSuccess)
        {
            RecordWrite(zi);
        }
        return status;
    }

    private NvmeStatus OneZone(uint zi, Func<uint, NvmeStatus> op, ZoneSendAction action, ulong slba, bool zsaso = false)
    {
        lock (_zoneLocks[zi])
        {
            NvmeStatus status;
            lock (_stateLock)
            {
                status = op(zi);
            }
            if (status.IsSuccess)
            {
                RecordZoneAction(action, slba, selectAll: false, zsaso);
            }
            return status;
        }
    }

    // Select All over QEMU's state lists, in their order. Every zone lock is taken (index order, as Reset does)
    // so no write is between its checks and its write pointer update while zones change state under it.
    // A Select All that stops at a failing zone has changed the zones before it: it is recorded with its status.
    private NvmeStatus WalkLists(Func<uint, NvmeStatus> op, ZoneSendAction action, bool zsaso, params int[] lists)
    {
        int taken = 0;
        try
        {
            for (; taken < _zoneLocks.Length; taken++)
            {
                Monitor.Enter(_zoneLocks[taken]);
            }
            NvmeStatus status;
            lock (_stateLock)
            {
                status = _zones.WalkLists(op, lists);
            }
            RecordZoneAction(action, 0, selectAll: true, zsaso, status: status);
            return status;
        }
        finally
        {
            while (taken > 0)
            {
                Monitor.Exit(_zoneLocks[--taken]);
            }
        }
    }

    private NvmeStatus ForEachZone(Func<ZoneState, bool> selected, Func<uint, NvmeStatus> op)
    {
        for (uint zi = 0; zi < _zones.ZoneCount; zi++)
        {
            lock (_zoneLocks[zi])
            {
                lock (_stateLock)
                {
                    if (!selected(_zones.StateOf(zi)))
                    {
                        continue;
                    }
                    var status = op(zi);
                    if (!status.IsSuccess)
                    {
                        return status;
                    }
                }
            }
        }
        return NvmeStatus.Success;
    }

    // A reset is committed before its blocks are released, so a crash can never show an old write pointer over
    // released (zeroed) data. The zone locks stay held until the blocks are released, so no new write can land in
    // between and be zeroed.
    private NvmeStatus ResetZones(uint first, bool all)
    {
        uint from = all ? 0 : first;
        uint to = all ? _zones.ZoneCount : first + 1;
        Span<ulong> releasedEnd = all ? new ulong[_zones.ZoneCount] : stackalloc ulong[1];
        int taken = 0;
        try
        {
            for (uint zi = from; zi < to; zi++)
            {
                Monitor.Enter(_zoneLocks[zi]);
                taken++;
            }
            bool any = false;
            lock (_stateLock)
            {
                for (uint zi = from; zi < to; zi++)
                {
                    ZoneState s = _zones.StateOf(zi);
                    if (all && s is not (ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed or ZoneState.Full))
                    {
                        continue;
                    }
                    var status = _zones.Reset(zi, out releasedEnd[(int)(zi - from)]);
                    if (!status.IsSuccess)
                    {
                        if (all)
                        {
                            RecordZoneAction(ZoneSendAction.Reset, 0, selectAll: true, zsaso: false, status: status);
                        }
                        return status;
                    }
                    // Durable when it completes (committed below, before its blocks are released).
                    MarkZoneDurable(zi);
                    any |= s != ZoneState.Empty;
                }
            }
            RecordZoneAction(ZoneSendAction.Reset, all ? 0 : Geometry.ZoneStart(first), all, zsaso: false);
            if (!any)
            {
                return NvmeStatus.Success;
            }
            Interlocked.Increment(ref _changes);
            try
            {
                Commit(force: false);
                for (uint zi = from; zi < to; zi++)
                {
                    ulong start = Geometry.ZoneStart(zi);
                    ulong end = releasedEnd[(int)(zi - from)];
                    if (end > start)
                    {
                        _backstore.Discard(Geometry.ByteOffset(start), Geometry.ByteOffset(end) - Geometry.ByteOffset(start));
                    }
                }
            }
            catch (IOException)
            {
                return NvmeStatus.InternalError;
            }
            return NvmeStatus.Success;
        }
        finally
        {
            for (uint zi = from; taken > 0; zi++, taken--)
            {
                Monitor.Exit(_zoneLocks[zi]);
            }
        }
    }

    /// <summary>
    /// Zone report: visits, under one state lock and in zone order, the zones from the one holding
    /// <paramref name="slba"/> to the end of the namespace whose state <paramref name="filter"/> selects, until the
    /// visitor returns false. The caller has checked that <paramref name="slba"/> is in the namespace (the command's
    /// checks and its wire encoding are the controller's: Zone Management Receive in Zns.Target).
    /// </summary>
    public void ReportZones<TVisitor>(ulong slba, ZoneReportFilter filter, ref TVisitor visitor)
        where TVisitor : IZoneReportVisitor, allows ref struct
    {
        lock (_stateLock)
        {
            for (uint zi = Geometry.ZoneOf(slba); zi < _zones.ZoneCount; zi++)
            {
                if (Matches(filter, _zones.StateOf(zi)) && !visitor.Visit(_zones.Snapshot(zi), _zones.ExtensionOf(zi)))
                {
                    return;
                }
            }
        }
    }

    private static bool Matches(ZoneReportFilter filter, ZoneState state) => filter switch
    {
        ZoneReportFilter.All => true,
        ZoneReportFilter.Empty => state == ZoneState.Empty,
        ZoneReportFilter.ImplicitlyOpened => state == ZoneState.ImplicitlyOpened,
        ZoneReportFilter.ExplicitlyOpened => state == ZoneState.ExplicitlyOpened,
        ZoneReportFilter.Closed => state == ZoneState.Closed,
        ZoneReportFilter.Full => state == ZoneState.Full,
        ZoneReportFilter.ReadOnly => state == ZoneState.ReadOnly,
        ZoneReportFilter.Offline => state == ZoneState.Offline,
        _ => false,
    };
}

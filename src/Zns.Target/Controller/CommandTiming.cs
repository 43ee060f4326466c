using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Timing;
using Zns.Core.Zones;

namespace Zns.Target.Controller;

/// <summary>
/// Maps I/O commands onto a namespace's <see cref="TimingModel"/>: what a zone looked like before a zone action
/// (its duration depends on the data in it) and when a completed command may be posted.
/// </summary>
internal static class CommandTiming
{
    /// <summary>What a Zone Management Send needs from before it ran: the zone's written blocks, or the sum of the durations of the zones a Select All touches.</summary>
    public readonly record struct Before(ulong WrittenLbas, bool Empty, long SelectAllNs);

    public static Before Capture(TimingModel timing, in SubmissionQueueEntry sqe, ZonedNamespace ns)
    {
        if (sqe.Opcode != IoOpcode.ZoneManagementSend || !ns.IsZoned)
        {
            return default;
        }
        var action = (ZoneSendAction)(byte)sqe.Cdw13;
        if (action is not (ZoneSendAction.Reset or ZoneSendAction.Finish))
        {
            return default;
        }
        ZoneGeometry g = ns.Geometry;
        if ((sqe.Cdw13 & (1u << 8)) != 0)
        {
            // Select All: Reset takes open, Closed and Full zones; Finish takes open and Closed zones.
            long total = 0;
            for (uint z = 0; z < g.ZoneCount; z++)
            {
                ZoneInfo zone = ns.GetZone(z);
                bool selected = action == ZoneSendAction.Reset
                    ? zone.State is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed or ZoneState.Full
                    : zone.State is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed;
                if (selected)
                {
                    ulong written = Written(zone);
                    total += action == ZoneSendAction.Reset ? timing.ResetDuration(written) : timing.FinishDuration(written, empty: false);
                }
            }
            return new Before(0, false, total);
        }
        ulong slba = sqe.Cdw10_11;
        if (slba >= g.NamespaceSizeLbas)
        {
            return default;
        }
        ZoneInfo info = ns.GetZone(g.ZoneOf(slba));
        return new Before(Written(info), info.State == ZoneState.Empty, 0);
    }

    /// <summary>When the command, submitted at <paramref name="now"/> and finished with <paramref name="cqe"/>, may complete.</summary>
    public static long Due(TimingModel timing, long now, in SubmissionQueueEntry sqe, in Before before, in CompletionQueueEntry cqe)
    {
        if (!cqe.Status.IsSuccess)
        {
            return 0;
        }
        uint blocks = (sqe.Cdw12 & 0xFFFF) + 1;
        switch (sqe.Opcode)
        {
            case IoOpcode.Read:
                return timing.Read(now, sqe.Cdw10_11, blocks);
            case IoOpcode.Write:
                return timing.Write(now, sqe.Cdw10_11, blocks);
            case IoOpcode.ZoneAppend:
                return timing.Append(now, sqe.Cdw10_11, blocks);
            case IoOpcode.ZoneManagementSend:
                bool selectAll = (sqe.Cdw13 & (1u << 8)) != 0;
                return (ZoneSendAction)(byte)sqe.Cdw13 switch
                {
                    ZoneSendAction.Open => timing.Open(now),
                    ZoneSendAction.Close => timing.Close(now),
                    ZoneSendAction.Reset when selectAll => timing.AllZones(now, before.SelectAllNs),
                    ZoneSendAction.Finish when selectAll => timing.AllZones(now, before.SelectAllNs),
                    ZoneSendAction.Reset => timing.Reset(now, sqe.Cdw10_11, before.WrittenLbas, before.Empty),
                    ZoneSendAction.Finish => timing.Finish(now, sqe.Cdw10_11, before.WrittenLbas, before.Empty),
                    _ => timing.Other(now),
                };
            default:
                return timing.Other(now);
        }
    }

    /// <summary>Blocks holding data: up to the write pointer, or the whole capacity of a Full zone (what a Finish left is not known).</summary>
    private static ulong Written(in ZoneInfo zone) => zone.State switch
    {
        ZoneState.Empty => 0,
        ZoneState.Full => zone.Capacity,
        _ => zone.WritePointer - zone.StartLba,
    };
}

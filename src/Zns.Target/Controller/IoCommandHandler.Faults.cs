using System.Diagnostics;
using Zns.Core.Faults;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Execution;

namespace Zns.Target.Controller;

/// <summary>
/// I/O dispatch while faults are armed: transient failures and media errors complete the command at once, without
/// touching the zone core; injected latency delays it. Delayed commands other than reads stay in arrival order
/// (the host may rely on the controller not reordering writes), so each waits for the one before it as well as for
/// its own deadline.
/// </summary>
internal sealed partial class IoCommandHandler
{
    private Task _orderedTail = Task.CompletedTask;

    public ValueTask<CompletionQueueEntry> ExecuteWithFaults(in SubmissionQueueEntry sqe, HostData data, CompletionQueueEntry cqe)
    {
        long arrival = Stopwatch.GetTimestamp();
        FaultPlan plan = _subsystem.Target.Faults;
        byte opcode = sqe.Opcode;
        uint nsid = sqe.NamespaceId;
        if (_subsystem.IsPoweredOff)
        {
            return HeldByPowerCut(cqe);
        }
        PowerCutStep cut = _subsystem.CountForPowerCut(opcode, out PowerCutArm? fired);
        if (cut == PowerCutStep.Before)
        {
            return HeldByPowerCut(cqe);
        }
        if (cut == PowerCutStep.After)
        {
            return CutAfter(Execute(in sqe, data.Memory, cqe, arrival), fired!, cqe);
        }
        if (IsKnownIoOpcode(opcode) && _subsystem.GetNamespace(nsid) is { } info)
        {
            bool fails = plan.TryTransient(nsid, opcode, out NvmeStatus status);
            if (!fails && MediaRange(in sqe, info.Namespace, out bool write, out ulong slba, out ulong nlb))
            {
                fails = plan.TryMediaError(nsid, write, slba, nlb, out status);
            }
            if (fails)
            {
                cqe.Status = status;
                _metrics.Complete(nsid, opcode, sqe.Cdw10_11, 0, status, arrival);
                return new ValueTask<CompletionQueueEntry>(cqe);
            }
        }
        TimeSpan delay = plan.Latency(opcode);
        bool ordered = opcode != IoOpcode.Read;
        if (delay <= TimeSpan.Zero && (!ordered || _orderedTail.IsCompleted))
        {
            return Execute(in sqe, data.Memory, cqe, arrival);
        }
        // The command completes after the handler returned: data lent by the transport (an NVMe/TCP receive buffer)
        // moves on to the next command then, so the delayed command keeps its own copy.
        return Delayed(sqe, data.Detach(), cqe, arrival, delay, ordered);
    }

    // A command that meets a power cut is not executed and never completes for the host: it is held until the cut has
    // dropped the connections (then answered as aborted, an answer no host receives; a PCIe function deletes its
    // queues only once their commands are done, so it must not wait for power to come back).
    private async ValueTask<CompletionQueueEntry> HeldByPowerCut(CompletionQueueEntry cqe)
    {
        await _subsystem.ControllersGone.ConfigureAwait(false);
        cqe.Status = NvmeStatus.CommandInterruptedOrAbortedSqDeletion;
        return cqe;
    }

    // An armed cut that fires after this command (a Flush): its effect is durable, then power fails before its
    // completion reaches the host.
    private async ValueTask<CompletionQueueEntry> CutAfter(ValueTask<CompletionQueueEntry> command, PowerCutArm arm, CompletionQueueEntry cqe)
    {
        await command.ConfigureAwait(false);
        _subsystem.FireArmed(arm);
        return await HeldByPowerCut(cqe).ConfigureAwait(false);
    }

    private async ValueTask<CompletionQueueEntry> Delayed(SubmissionQueueEntry sqe, DetachedHostData data, CompletionQueueEntry cqe, long arrival, TimeSpan delay, bool ordered)
    {
        Task previous = Task.CompletedTask;
        TaskCompletionSource? done = null;
        if (ordered)
        {
            previous = _orderedTail;
            done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _orderedTail = done.Task;
        }
        try
        {
            await previous.ConfigureAwait(false);
            // Timers may fire a little early; the injected latency is a minimum.
            for (TimeSpan left = delay - Stopwatch.GetElapsedTime(arrival); left > TimeSpan.Zero; left = delay - Stopwatch.GetElapsedTime(arrival))
            {
                await Task.Delay(left < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : left).ConfigureAwait(false);
            }
            return await Execute(in sqe, data.Memory, cqe, arrival).ConfigureAwait(false);
        }
        finally
        {
            done?.TrySetResult();
            data.Dispose();
        }
    }

    /// <summary>The LBAs a data command touches: reads, writes and Write Zeroes at SLBA; an append at its zone's write pointer.</summary>
    private static bool MediaRange(in SubmissionQueueEntry sqe, ZonedNamespace ns, out bool write, out ulong slba, out ulong nlb)
    {
        slba = sqe.Cdw10_11;
        nlb = ReadWriteBlocks(in sqe);
        switch (sqe.Opcode)
        {
            case IoOpcode.Read:
                write = false;
                return true;
            case IoOpcode.Write:
            case IoOpcode.WriteZeroes:
                write = true;
                return true;
            case IoOpcode.ZoneAppend when ns.IsZoned && slba < ns.Geometry.NamespaceSizeLbas:
                write = true;
                slba = ns.GetZone(ns.Geometry.ZoneOf(slba)).WritePointer;
                return true;
            default:
                write = false;
                return false;
        }
    }
}

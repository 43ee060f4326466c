using Zns.Nvme;
using Zns.Protocol;
using Zns.Nvme.Layouts;
using static Zns.Nvme.Layouts.ControllerProperties;

namespace Zns.Target.Controller;

/// <summary>What a controller does after an injected Controller Fatal Status.</summary>
public enum FatalBehavior
{
    /// <summary>CSTS.CFS = 1 and every command (Keep Alive included) is held without completion.</summary>
    Stall,
    /// <summary>CSTS.CFS = 1 and every connection of the controller is dropped.</summary>
    Drop,
}

/// <summary>Changed Zone List (LID BFh), the Zone Descriptor Changed event, and injected controller failures.</summary>
internal sealed partial class NvmeController
{
    /// <summary>AER completion DW0 for Zone Descriptor Changed: type 2 (notice), info EFh, log page BFh.</summary>
    internal const uint ZoneDescriptorChangedEvent = 0x2 | (0xEF << 8) | (LogPageId.ChangedZoneList << 16);

    // Per NSID: the ZSLBAs changed since the host last read the log (null value: overflowed).
    private readonly Dictionary<uint, SortedSet<ulong>?> _changedZones = [];
    private bool _zoneNoticeMasked;
    private volatile bool _fatal;
    private TaskCompletionSource<bool>? _stalled;

    /// <summary>CSTS.CFS was injected: commands are stalled (or the connections already dropped).</summary>
    public bool IsFatal => _fatal;

    /// <summary>A zone of namespace <paramref name="nsid"/> changed on the controller's own account.</summary>
    public void OnZoneChanged(uint nsid, ulong zslba)
    {
        PendingAer? aer = null;
        lock (_lock)
        {
            if (_destroyed)
            {
                return;
            }
            if (!_changedZones.TryGetValue(nsid, out SortedSet<ulong>? set))
            {
                _changedZones[nsid] = set = [];
            }
            if (set is not null)
            {
                set.Add(zslba);
                if (set.Count > ChangedZoneListLayout.MaxEntries)
                {
                    _changedZones[nsid] = null;
                }
            }
            // Masked until the host reads log page BFh without RAE, as for the other notices.
            aer = RaiseNoticeLocked(IdentifyControllerLayout.OaesZoneDescriptorChanged, ref _zoneNoticeMasked, ZoneDescriptorChangedEvent);
        }
        aer?.Completion.TrySetResult(aer.Complete(NvmeStatus.Success, ZoneDescriptorChangedEvent));
    }

    /// <summary>Writes the Changed Zone List of <paramref name="nsid"/>; clears it (and unmasks the event) unless RAE.</summary>
    public void ReadChangedZones(uint nsid, bool retainAsyncEvent, Span<byte> page)
    {
        lock (_lock)
        {
            bool known = _changedZones.TryGetValue(nsid, out SortedSet<ulong>? set);
            ulong[] ids = set is null ? [] : [.. set];
            ChangedZoneListLayout.Write(page, ids, overflow: known && set is null);
            if (!retainAsyncEvent)
            {
                _changedZones.Remove(nsid);
                _zoneNoticeMasked = false;
            }
        }
    }

    /// <summary>Sets CSTS.CFS and stalls or drops everything this controller is doing.</summary>
    public void InjectFatal(FatalBehavior behavior)
    {
        List<SubmissionQueue>? drop = null;
        lock (_lock)
        {
            if (_destroyed || _fatal)
            {
                return;
            }
            _csts |= CstsFatal;
            _fatal = true;
            _stalled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            Subsystem.Target.Faults.ArmExternal();
            if (behavior == FatalBehavior.Drop)
            {
                drop = DetachIoQueuesLocked();
            }
        }
        AbortAll(drop, "injected controller fatal status");
        if (drop is not null)
        {
            AdminTransport.Abort("injected controller fatal status");
        }
    }

    /// <summary>A command that arrives while fatal: held until the controller goes away, then completed as aborted.</summary>
    public async ValueTask<CompletionQueueEntry> Stall(CompletionQueueEntry cqe)
    {
        Task<bool> stalled;
        lock (_lock)
        {
            stalled = _stalled?.Task ?? Task.FromResult(true);
        }
        await stalled.ConfigureAwait(false);
        cqe.Status = NvmeStatus.CommandInterruptedOrAbortedSqDeletion;
        return cqe;
    }

    /// <summary>Drops the connections of this controller's queues (I/O only, or the admin queue too).</summary>
    public void DropConnections(bool includeAdmin)
    {
        List<SubmissionQueue> queues;
        lock (_lock)
        {
            if (_destroyed)
            {
                return;
            }
            queues = [.. _ioQueues.OfType<SubmissionQueue>()];
        }
        AbortAll(queues, "injected connection drop");
        if (includeAdmin)
        {
            AdminTransport.Abort("injected connection drop");
        }
    }

    /// <summary>Releases what a fatal injection holds (called when the controller is destroyed).</summary>
    private void ReleaseFatal()
    {
        TaskCompletionSource<bool>? stalled;
        lock (_lock)
        {
            if (!_fatal)
            {
                return;
            }
            _fatal = false;
            stalled = _stalled;
            _stalled = null;
        }
        if (stalled is null)
        {
            // A fatal condition the transport reported (SetFatal) armed no fault injection.
            return;
        }
        Subsystem.Target.Faults.Disarm();
        stalled.TrySetResult(true);
    }

    /// <summary>Live I/O queues (for metrics).</summary>
    public int IoQueueCount
    {
        get { lock (_lock) { return _ioQueues.Count(q => q is not null); } }
    }
}

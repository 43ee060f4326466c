using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Zns.Nvme;

namespace Zns.Target.Pcie;

/// <summary>Completion posting: CQ entries in guest memory, MSI-X vectors, Interrupt Coalescing.</summary>
internal sealed partial class PcieQueuePoller
{
    /// <summary>
    /// Posts a command's completion: copies read data out, writes the CQE with the current phase (its last dword
    /// last, so the host never sees the phase flip before the entry), and raises the vector now or, on the poller,
    /// once per pass.
    /// </summary>
    internal void Complete(CommandSlot slot, CompletionQueueEntry cqe, bool fromPoller)
    {
        PcieSubmissionQueue sq = slot.Queue;
        PcieCompletionQueue cq = sq.Cq;
        slot.FinishData(cqe.Status.IsSuccess);
        if (slot.Pin >= 0)
        {
            Memory.Exit(slot.Pin);
            slot.Pin = -1;
        }
        bool raise = false, wakePoller = false;
        int pin = Memory.Enter();
        try
        {
            lock (cq.Lock)
            {
                cq.Reserved--;
                if (!cq.Deleted)
                {
                    raise = PostLocked(cq, in cqe);
                    if (raise && _coalescing.Applies(cq.Vector))
                    {
                        raise = CoalesceLocked(cq);
                        wakePoller = !raise && !fromPoller;
                    }
                }
            }
        }
        finally
        {
            Memory.Exit(pin);
        }
        sq.ReturnSlot(slot);
        Interlocked.Increment(ref _completed);
        if (wakePoller)
        {
            // The poller fires the vector when the aggregation time is up.
            _wake.Set();
        }
        if (raise)
        {
            if (fromPoller)
            {
                cq.InterruptPending = true;
            }
            else
            {
                _msix.Raise(cq.Vector);
            }
        }
    }

    private unsafe bool PostLocked(PcieCompletionQueue cq, in CompletionQueueEntry cqe)
    {
        if (!Memory.TryTranslate(cq.Base + (ulong)cq.Tail * CqeSize, CqeSize, write: true, out byte* p))
        {
            SetFatalLocked($"completion queue {cq.Id} entry {cq.Tail} is outside guest memory");
            return false;
        }
        Span<byte> entry = stackalloc byte[CqeSize];
        cqe.Write(entry);
        uint last = BinaryPrimitives.ReadUInt32LittleEndian(entry[12..]) | (cq.Phase ? 1u << 16 : 0);
        entry[..12].CopyTo(new Span<byte>(p, 12));
        Volatile.Write(ref *(uint*)(p + 12), last);
        cq.Tail++;
        if (cq.Tail == cq.Entries)
        {
            cq.Tail = 0;
            cq.Phase = !cq.Phase;
        }
        return cq.InterruptsEnabled;
    }

    private void RaiseIfPending(PcieCompletionQueue cq)
    {
        if (cq.Coalesced > 0)
        {
            lock (cq.Lock)
            {
                if (cq.Coalesced > 0 && Clock.GetElapsedTime(cq.FirstCoalescedAt) >= _coalescing.Time)
                {
                    cq.Coalesced = 0;
                    cq.InterruptPending = true;
                }
            }
        }
        if (cq.InterruptPending)
        {
            cq.InterruptPending = false;
            _msix.Raise(cq.Vector);
        }
    }

    /// <summary>A completion under Interrupt Coalescing: true when it makes THR + 1 waiting, so the vector fires now.</summary>
    private bool CoalesceLocked(PcieCompletionQueue cq)
    {
        if (cq.Coalesced++ == 0)
        {
            cq.FirstCoalescedAt = Clock.GetTimestamp();
        }
        if (cq.Coalesced < _coalescing.Threshold)
        {
            return false;
        }
        cq.Coalesced = 0;
        return true;
    }

    /// <summary>Whether completions wait for their aggregation time (the poller must not sleep past it).</summary>
    private bool AnyCoalescedLocked()
    {
        foreach (PcieCompletionQueue? cq in _ioCq)
        {
            if (cq is { Coalesced: > 0 })
            {
                return true;
            }
        }
        return false;
    }
}

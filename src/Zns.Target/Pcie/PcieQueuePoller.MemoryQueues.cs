using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Target.Controller;

namespace Zns.Target.Pcie;

/// <summary>
/// The memory-queue operations of the PCIe function's queues, which the shared admin command handler calls after it parsed
/// and checked Create/Delete I/O Queue, Doorbell Buffer Config and the interrupt features: what is checked here
/// depends on guest memory, doorbells and MSI-X vectors (NVMe Base 2.0 §5.4-5.8).
/// </summary>
internal sealed partial class PcieQueuePoller : IMemoryQueueOperations
{
    /// <summary>Queue memory must be page aligned (the offset of PRP1 must be 0) and lie in mapped guest memory.</summary>
    private unsafe NvmeStatus CheckQueueMemory(ulong address, int entries, int entrySize, bool write)
    {
        if ((address & (PrpWalker.PageSize - 1)) != 0)
        {
            return NvmeStatus.PrpOffsetInvalid.WithDnr();
        }
        int pin = Memory.Enter();
        try
        {
            return Memory.TryTranslate(address, entries * entrySize, write, out _) ? NvmeStatus.Success : NvmeStatus.InvalidField.WithDnr();
        }
        finally
        {
            Memory.Exit(pin);
        }
    }

    IQueueTransport IMemoryQueueOperations.QueueTransport(ushort queueId) => new PcieQueueTransport(this, queueId);

    NvmeStatus IMemoryQueueOperations.EnableAdminQueue(ulong submissionQueueBase, int submissionQueueEntries,
        ulong completionQueueBase, int completionQueueEntries, SubmissionQueue adminQueue)
    {
        lock (Lock)
        {
            var acq = new PcieCompletionQueue(0, completionQueueBase, completionQueueEntries, interruptsEnabled: true, vector: 0) { SubmissionQueues = 1 };
            _ioCq[0] = acq;
            _ioSq[0] = new PcieSubmissionQueue(0, submissionQueueBase, submissionQueueEntries, acq, adminQueue, _target.Options.MaxAdminDataLength);
            // A new admin queue starts empty (head = tail = 0) whatever was rung before it existed, as the I/O
            // queues do when created.
            Volatile.Write(ref _doorbells[0], 0);
            Volatile.Write(ref _doorbells[1], 0);
            _logger.Enabled(Name, adminQueue.Controller.Cntlid, submissionQueueEntries, completionQueueEntries);
        }
        _wake.Set();
        return NvmeStatus.Success;
    }

    void IMemoryQueueOperations.DeleteAllQueues(string reason)
    {
        lock (Lock)
        {
            DeleteAllQueuesLocked(reason);
        }
    }

    NvmeStatus IMemoryQueueOperations.CreateCompletionQueue(ushort queueId, ulong baseAddress, int entries, bool interruptsEnabled, int vector)
    {
        lock (Lock)
        {
            if (_ioCq[queueId] is not null)
            {
                return NvmeStatus.InvalidQueueIdentifier.WithDnr();
            }
            if (interruptsEnabled && vector >= _msix.VectorCount)
            {
                return NvmeStatus.InvalidInterruptVector.WithDnr();
            }
            NvmeStatus memory = CheckQueueMemory(baseAddress, entries, CqeSize, write: true);
            if (!memory.IsSuccess)
            {
                return memory;
            }
            _ioCq[queueId] = new PcieCompletionQueue(queueId, baseAddress, entries, interruptsEnabled, vector);
            Volatile.Write(ref _doorbells[2 * queueId + 1], 0);
            _logger.QueueCreated(Name, "completion", queueId, entries);
            return NvmeStatus.Success;
        }
    }

    NvmeStatus IMemoryQueueOperations.CreateSubmissionQueue(ushort queueId, ulong baseAddress, int entries, ushort completionQueueId, SubmissionQueue queue)
    {
        lock (Lock)
        {
            if (_ioSq[queueId] is not null)
            {
                return NvmeStatus.InvalidQueueIdentifier.WithDnr();
            }
            if (_ioCq[completionQueueId] is not { } cq)
            {
                return NvmeStatus.CompletionQueueInvalid.WithDnr();
            }
            NvmeStatus memory = CheckQueueMemory(baseAddress, entries, SubmissionQueueEntry.Size, write: false);
            if (!memory.IsSuccess)
            {
                return memory;
            }
            lock (cq.Lock)
            {
                cq.SubmissionQueues++;
            }
            Volatile.Write(ref _doorbells[2 * queueId], 0);
            _ioSq[queueId] = new PcieSubmissionQueue(queueId, baseAddress, entries, cq, queue, _target.Subsystem.MaxIoDataLength);
            _logger.QueueCreated(Name, "submission", queueId, entries);
            return NvmeStatus.Success;
        }
    }

    NvmeStatus IMemoryQueueOperations.DeleteSubmissionQueue(ushort queueId)
    {
        lock (Lock)
        {
            if (_ioSq[queueId] is not { } sq)
            {
                return NvmeStatus.InvalidQueueIdentifier.WithDnr();
            }
            // Commands already fetched complete (to the still existing CQ) before the deletion does.
            sq.Deleted = true;
            WaitForOutstanding(sq);
            _ioSq[queueId] = null;
            lock (sq.Cq.Lock)
            {
                sq.Cq.SubmissionQueues--;
            }
            sq.Handler.Dispose();
            return NvmeStatus.Success;
        }
    }

    NvmeStatus IMemoryQueueOperations.DeleteCompletionQueue(ushort queueId)
    {
        lock (Lock)
        {
            if (_ioCq[queueId] is not { } cq)
            {
                return NvmeStatus.InvalidQueueIdentifier.WithDnr();
            }
            lock (cq.Lock)
            {
                if (cq.SubmissionQueues != 0)
                {
                    return NvmeStatus.InvalidQueueDeletion.WithDnr();
                }
                cq.Deleted = true;
            }
            _ioCq[queueId] = null;
            return NvmeStatus.Success;
        }
    }

    /// <summary>
    /// The shadow doorbell buffer and the EventIdx buffer, each one page, page aligned. Later tails and heads of I/O
    /// queues come from the shadow buffer (the admin queue keeps its registers, as the Linux driver expects).
    /// </summary>
    unsafe NvmeStatus IMemoryQueueOperations.ConfigureDoorbellBuffer(ulong shadowDoorbells, ulong eventIndexes)
    {
        if (((shadowDoorbells | eventIndexes) & (PrpWalker.PageSize - 1)) != 0)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        lock (Lock)
        {
            int pin = Memory.Enter();
            try
            {
                if (!Memory.TryTranslate(shadowDoorbells, PrpWalker.PageSize, write: false, out _) ||
                    !Memory.TryTranslate(eventIndexes, PrpWalker.PageSize, write: true, out _))
                {
                    return NvmeStatus.InvalidField.WithDnr();
                }
            }
            finally
            {
                Memory.Exit(pin);
            }
            _shadowBase = shadowDoorbells;
            _eventIdxBase = eventIndexes;
            _dbbufEnabled = true;
            return NvmeStatus.Success;
        }
    }

    NvmeStatus IMemoryQueueOperations.SetInterruptFeature(byte featureId, uint value)
    {
        if (featureId == FeatureId.InterruptCoalescing)
        {
            _coalescing.Set(value);
            return NvmeStatus.Success;
        }
        return _coalescing.SetVector(value) ? NvmeStatus.Success : NvmeStatus.InvalidField.WithDnr();
    }

    NvmeStatus IMemoryQueueOperations.GetInterruptFeature(byte featureId, uint cdw11, bool current, out uint value)
    {
        if (featureId == FeatureId.InterruptCoalescing)
        {
            value = current ? _coalescing.Value : 0;
            return NvmeStatus.Success;
        }
        return _coalescing.TryGetVector(cdw11, current, out value) ? NvmeStatus.Success : NvmeStatus.InvalidField.WithDnr();
    }
}

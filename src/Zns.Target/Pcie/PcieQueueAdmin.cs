using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;

namespace Zns.Target.Pcie;

/// <summary>
/// The admin commands that only a memory-based controller has: Create/Delete I/O Completion/Submission Queue and
/// Doorbell Buffer Config (NVMe Base 2.0 §5.4-5.7, §5.8), plus the Identify Controller fields that differ from the
/// fabric controller (OACS Doorbell Buffer Config, SGLS for memory: byte-aligned SGLs with Bit Buckets).
/// </summary>
public sealed partial class NvmePcieFunction
{
    /// <summary>OACS bit 8: Doorbell Buffer Config supported.</summary>
    internal const ushort OacsDoorbellBufferConfig = 1 << 8;

    /// <summary>Runs a queue-management command; false when the opcode is not one (the shared handler takes it).</summary>
    private bool TryExecuteQueueAdmin(in SubmissionQueueEntry sqe, ref CompletionQueueEntry cqe)
    {
        switch (sqe.Opcode)
        {
            case AdminOpcode.CreateIoCompletionQueue:
                cqe.Status = CreateCompletionQueue(in sqe);
                return true;
            case AdminOpcode.CreateIoSubmissionQueue:
                cqe.Status = CreateSubmissionQueue(in sqe);
                return true;
            case AdminOpcode.DeleteIoCompletionQueue:
                cqe.Status = DeleteCompletionQueue(in sqe);
                return true;
            case AdminOpcode.DeleteIoSubmissionQueue:
                cqe.Status = DeleteSubmissionQueue(in sqe);
                return true;
            case AdminOpcode.DoorbellBufferConfig:
                cqe.Status = DoorbellBufferConfig(in sqe);
                return true;
            case AdminOpcode.SetFeatures or AdminOpcode.GetFeatures when (byte)sqe.Cdw10 is InterruptCoalescingFeature or InterruptVectorFeature:
                cqe.Status = InterruptFeature(in sqe, out uint result);
                cqe.Result = result;
                return true;
            default:
                return false;
        }
    }

    private int MaxQueueEntries => _target.Options.MaxQueueEntries;

    private const byte InterruptCoalescingFeature = 0x08, InterruptVectorFeature = 0x09;

    /// <summary>Set/Get Features 08h and 09h, which only a PCIe controller has (not saveable, changeable).</summary>
    private NvmeStatus InterruptFeature(in SubmissionQueueEntry sqe, out uint result)
    {
        result = 0;
        byte fid = (byte)sqe.Cdw10;
        if (sqe.Opcode == AdminOpcode.SetFeatures)
        {
            if ((sqe.Cdw10 & 0x8000_0000) != 0)
            {
                return NvmeStatus.FeatureIdNotSaveable.WithDnr();
            }
            if (fid == InterruptCoalescingFeature)
            {
                _coalescing.Set(sqe.Cdw11);
                return NvmeStatus.Success;
            }
            return _coalescing.SetVector(sqe.Cdw11) ? NvmeStatus.Success : NvmeStatus.InvalidField.WithDnr();
        }
        uint sel = (sqe.Cdw10 >> 8) & 0x7;
        if (sel > 3)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        if (sel == 3)
        {
            result = 0x4; // changeable, not saveable, not namespace specific
            return NvmeStatus.Success;
        }
        bool current = sel == 0;
        if (fid == InterruptCoalescingFeature)
        {
            result = current ? _coalescing.Value : 0;
            return NvmeStatus.Success;
        }
        return _coalescing.TryGetVector(sqe.Cdw11, current, out result) ? NvmeStatus.Success : NvmeStatus.InvalidField.WithDnr();
    }

    private static ushort QueueId(in SubmissionQueueEntry sqe) => (ushort)sqe.Cdw10;

    private static int QueueEntries(in SubmissionQueueEntry sqe) => (int)(sqe.Cdw10 >> 16) + 1;

    private static ulong QueueBase(in SubmissionQueueEntry sqe) => sqe.SglAddress;

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

    private NvmeStatus CreateCompletionQueue(in SubmissionQueueEntry sqe)
    {
        ushort qid = QueueId(in sqe);
        int entries = QueueEntries(in sqe);
        bool contiguous = (sqe.Cdw11 & 1) != 0, interrupts = (sqe.Cdw11 & 2) != 0;
        int vector = (int)(sqe.Cdw11 >> 16);
        if (qid == 0 || qid > MaxIoQueues || _ioCq[qid] is not null)
        {
            return NvmeStatus.InvalidQueueIdentifier.WithDnr();
        }
        if (entries < 2 || entries > MaxQueueEntries)
        {
            return NvmeStatus.InvalidQueueSize.WithDnr();
        }
        if (!contiguous)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        if (interrupts && vector >= _msix.VectorCount)
        {
            return NvmeStatus.InvalidInterruptVector.WithDnr();
        }
        NvmeStatus memory = CheckQueueMemory(QueueBase(in sqe), entries, CqeSize, write: true);
        if (!memory.IsSuccess)
        {
            return memory;
        }
        _ioCq[qid] = new PcieCompletionQueue(qid, QueueBase(in sqe), entries, interrupts, vector);
        Volatile.Write(ref _doorbells[2 * qid + 1], 0);
        _logger.QueueCreated(Name, "completion", qid, entries);
        return NvmeStatus.Success;
    }

    private NvmeStatus CreateSubmissionQueue(in SubmissionQueueEntry sqe)
    {
        ushort qid = QueueId(in sqe);
        int entries = QueueEntries(in sqe);
        bool contiguous = (sqe.Cdw11 & 1) != 0;
        ushort cqid = (ushort)(sqe.Cdw11 >> 16);
        if (qid == 0 || qid > MaxIoQueues || _ioSq[qid] is not null)
        {
            return NvmeStatus.InvalidQueueIdentifier.WithDnr();
        }
        if (cqid == 0 || cqid > MaxIoQueues || _ioCq[cqid] is null)
        {
            return NvmeStatus.CompletionQueueInvalid.WithDnr();
        }
        if (entries < 2 || entries > MaxQueueEntries)
        {
            return NvmeStatus.InvalidQueueSize.WithDnr();
        }
        if (!contiguous)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        NvmeStatus memory = CheckQueueMemory(QueueBase(in sqe), entries, SubmissionQueueEntry.Size, write: false);
        if (!memory.IsSuccess)
        {
            return memory;
        }
        NvmeController controller = _controller!;
        var handler = new SubmissionQueue(controller, qid, entries, new PcieQueueTransport(this, qid));
        NvmeStatus attached = controller.AttachIoQueue(qid, handler);
        if (!attached.IsSuccess)
        {
            return attached;
        }
        PcieCompletionQueue cq = _ioCq[cqid]!;
        lock (cq.Lock)
        {
            cq.SubmissionQueues++;
        }
        Volatile.Write(ref _doorbells[2 * qid], 0);
        _ioSq[qid] = new PcieSubmissionQueue(qid, QueueBase(in sqe), entries, cq, handler, _target.Subsystem.MaxIoDataLength);
        _logger.QueueCreated(Name, "submission", qid, entries);
        return NvmeStatus.Success;
    }

    private NvmeStatus DeleteSubmissionQueue(in SubmissionQueueEntry sqe)
    {
        ushort qid = QueueId(in sqe);
        if (qid == 0 || qid > MaxIoQueues || _ioSq[qid] is not { } sq)
        {
            return NvmeStatus.InvalidQueueIdentifier.WithDnr();
        }
        // Commands already fetched complete (to the still existing CQ) before the deletion does.
        sq.Deleted = true;
        WaitForOutstanding(sq);
        _ioSq[qid] = null;
        lock (sq.Cq.Lock)
        {
            sq.Cq.SubmissionQueues--;
        }
        sq.Handler.Dispose();
        return NvmeStatus.Success;
    }

    private NvmeStatus DeleteCompletionQueue(in SubmissionQueueEntry sqe)
    {
        ushort qid = QueueId(in sqe);
        if (qid == 0 || qid > MaxIoQueues || _ioCq[qid] is not { } cq)
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
        _ioCq[qid] = null;
        return NvmeStatus.Success;
    }

    /// <summary>
    /// PRP1: the shadow doorbell buffer, PRP2: the EventIdx buffer; each one page, page aligned. Later tails and
    /// heads of I/O queues come from the shadow buffer (the admin queue keeps its registers, as the Linux driver
    /// expects).
    /// </summary>
    private unsafe NvmeStatus DoorbellBufferConfig(in SubmissionQueueEntry sqe)
    {
        ulong shadow = Prp1(in sqe), eventIdx = Prp2(in sqe);
        if (((shadow | eventIdx) & (PrpWalker.PageSize - 1)) != 0)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        int pin = Memory.Enter();
        try
        {
            if (!Memory.TryTranslate(shadow, PrpWalker.PageSize, write: false, out _) ||
                !Memory.TryTranslate(eventIdx, PrpWalker.PageSize, write: true, out _))
            {
                return NvmeStatus.InvalidField.WithDnr();
            }
        }
        finally
        {
            Memory.Exit(pin);
        }
        _shadowBase = shadow;
        _eventIdxBase = eventIdx;
        _dbbufEnabled = true;
        return NvmeStatus.Success;
    }
}

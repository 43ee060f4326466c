using System.Buffers.Binary;
using Zns.Nvme;

namespace Zns.Target.Controller;

/// <summary>
/// The admin commands of a memory-based controller (NVMe Base 2.0 §5.4-5.8): Create/Delete I/O Completion/Submission
/// Queue, Doorbell Buffer Config and the interrupt features 08h/09h. The command is parsed and checked here (queue IDs
/// against the controller's limit, sizes against CAP.MQES, PC); what depends on host memory, doorbells and interrupt
/// vectors is the transport's (<see cref="IMemoryQueueOperations"/>). A fabric has none of them: Invalid Opcode, and
/// Invalid Field for the features.
/// </summary>
internal sealed partial class AdminCommandHandler
{
    private IMemoryQueueOperations? MemoryQueues => controller.AdminTransport.MemoryQueues;

    private static ushort QueueId(in SubmissionQueueEntry sqe) => (ushort)sqe.Cdw10;

    /// <summary>QSIZE is 0's based.</summary>
    private static int QueueEntries(in SubmissionQueueEntry sqe) => (int)(sqe.Cdw10 >> 16) + 1;

    private static ulong Prp1(in SubmissionQueueEntry sqe) => sqe.SglAddress;

    private static ulong Prp2(in SubmissionQueueEntry sqe) => BinaryPrimitives.ReadUInt64LittleEndian(sqe.Sgl1[8..]);

    private bool IsIoQueueId(ushort qid) => qid != 0 && qid <= controller.MaxIoQueues;

    /// <summary>CAP.MQES bounds every I/O queue; a queue has at least 2 entries.</summary>
    private bool IsValidQueueSize(int entries) => entries >= 2 && entries <= controller.Options.MaxQueueEntries;

    private NvmeStatus CreateCompletionQueue(in SubmissionQueueEntry sqe)
    {
        if (MemoryQueues is not { } queues)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        ushort qid = QueueId(in sqe);
        int entries = QueueEntries(in sqe);
        bool contiguous = (sqe.Cdw11 & 1) != 0, interrupts = (sqe.Cdw11 & 2) != 0;
        int vector = (int)(sqe.Cdw11 >> 16);
        if (!IsIoQueueId(qid))
        {
            return NvmeStatus.InvalidQueueIdentifier.WithDnr();
        }
        if (!IsValidQueueSize(entries))
        {
            return NvmeStatus.InvalidQueueSize.WithDnr();
        }
        if (!contiguous)
        {
            // CAP.CQR = 1: queues must be physically contiguous.
            return NvmeStatus.InvalidField.WithDnr();
        }
        return queues.CreateCompletionQueue(qid, Prp1(in sqe), entries, interrupts, vector);
    }

    private NvmeStatus CreateSubmissionQueue(in SubmissionQueueEntry sqe)
    {
        if (MemoryQueues is not { } queues)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        ushort qid = QueueId(in sqe);
        int entries = QueueEntries(in sqe);
        bool contiguous = (sqe.Cdw11 & 1) != 0;
        ushort cqid = (ushort)(sqe.Cdw11 >> 16);
        if (!IsIoQueueId(qid) || controller.HasIoQueue(qid))
        {
            return NvmeStatus.InvalidQueueIdentifier.WithDnr();
        }
        if (!IsIoQueueId(cqid))
        {
            return NvmeStatus.CompletionQueueInvalid.WithDnr();
        }
        if (!IsValidQueueSize(entries))
        {
            return NvmeStatus.InvalidQueueSize.WithDnr();
        }
        if (!contiguous)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        // The controller's side of the queue exists first, so that the transport can fetch into it at once.
        var queue = new SubmissionQueue(controller, qid, entries, queues.QueueTransport(qid));
        NvmeStatus attached = controller.AttachIoQueue(qid, queue);
        if (!attached.IsSuccess)
        {
            return attached;
        }
        NvmeStatus created = queues.CreateSubmissionQueue(qid, Prp1(in sqe), entries, cqid, queue);
        if (!created.IsSuccess)
        {
            // Nothing was created: Number of Queues stays settable.
            queue.Dispose();
            return created;
        }
        controller.OnIoQueueCreated();
        return created;
    }

    private NvmeStatus DeleteSubmissionQueue(in SubmissionQueueEntry sqe)
    {
        if (MemoryQueues is not { } queues)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        ushort qid = QueueId(in sqe);
        return IsIoQueueId(qid) ? queues.DeleteSubmissionQueue(qid) : NvmeStatus.InvalidQueueIdentifier.WithDnr();
    }

    private NvmeStatus DeleteCompletionQueue(in SubmissionQueueEntry sqe)
    {
        if (MemoryQueues is not { } queues)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        ushort qid = QueueId(in sqe);
        return IsIoQueueId(qid) ? queues.DeleteCompletionQueue(qid) : NvmeStatus.InvalidQueueIdentifier.WithDnr();
    }

    /// <summary>Doorbell Buffer Config: PRP1 the shadow doorbells, PRP2 the EventIdx buffer.</summary>
    private NvmeStatus DoorbellBufferConfig(in SubmissionQueueEntry sqe) =>
        MemoryQueues is { } queues
            ? queues.ConfigureDoorbellBuffer(Prp1(in sqe), Prp2(in sqe))
            : NvmeStatus.InvalidOpcode.WithDnr();

    private static bool IsInterruptFeature(byte fid) =>
        fid is FeatureId.InterruptCoalescing or FeatureId.InterruptVectorConfiguration;

    /// <summary>
    /// Get Features 08h/09h (SEL already checked, at most 3): capabilities are "changeable" (bit 2), neither saveable
    /// nor namespace specific; current and default values are the transport's.
    /// </summary>
    private NvmeStatus GetInterruptFeature(IMemoryQueueOperations queues, in SubmissionQueueEntry sqe, uint sel, ref ulong result)
    {
        if (sel == 3)
        {
            result = 0x4;
            return NvmeStatus.Success;
        }
        NvmeStatus status = queues.GetInterruptFeature((byte)sqe.Cdw10, sqe.Cdw11, current: sel == 0, out uint value);
        result = value;
        return status;
    }
}

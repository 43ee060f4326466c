using Zns.Nvme;

namespace Zns.Target.Controller;

/// <summary>
/// What only a memory-based transport can do, called by the controller after it parsed and checked the admin command
/// (as nvmet's PCI target ops): queue memory, doorbells and interrupts belong to the transport; queue IDs, sizes,
/// features and statuses that do not depend on host memory are the controller's.
/// </summary>
public interface IMemoryQueueOperations
{
    /// <summary>
    /// CC.EN went 0 → 1: set up the admin queue pair from ASQ/ACQ with the sizes from AQA, and start fetching from
    /// <paramref name="adminQueue"/>. A status other than success makes the controller report CSTS.CFS.
    /// </summary>
    NvmeStatus EnableAdminQueue(ulong submissionQueueBase, int submissionQueueEntries, ulong completionQueueBase,
        int completionQueueEntries, SubmissionQueue adminQueue);

    /// <summary>
    /// Controller reset or shutdown: stop fetching, wait (bounded) for commands already fetched, delete every queue.
    /// Called without controller locks held.
    /// </summary>
    void DeleteAllQueues(string reason);

    /// <summary>The transport side of queue <paramref name="queueId"/> (what stopping that queue stops), for its <see cref="SubmissionQueue"/>.</summary>
    IQueueTransport QueueTransport(ushort queueId);

    /// <summary>Create I/O Completion Queue: memory, interrupt vector and the queue's existence are the transport's to check.</summary>
    NvmeStatus CreateCompletionQueue(ushort queueId, ulong baseAddress, int entries, bool interruptsEnabled, int vector);

    /// <summary>Create I/O Submission Queue for <paramref name="queue"/>, completing to <paramref name="completionQueueId"/>.</summary>
    NvmeStatus CreateSubmissionQueue(ushort queueId, ulong baseAddress, int entries, ushort completionQueueId, SubmissionQueue queue);

    /// <summary>Delete I/O Submission Queue: commands already fetched complete first.</summary>
    NvmeStatus DeleteSubmissionQueue(ushort queueId);

    /// <summary>Delete I/O Completion Queue: Invalid Queue Deletion while a submission queue still completes to it.</summary>
    NvmeStatus DeleteCompletionQueue(ushort queueId);

    /// <summary>Doorbell Buffer Config: shadow doorbells at PRP1, EventIdx at PRP2.</summary>
    NvmeStatus ConfigureDoorbellBuffer(ulong shadowDoorbells, ulong eventIndexes);

    /// <summary>Set Features Interrupt Coalescing (08h) or Interrupt Vector Configuration (09h).</summary>
    NvmeStatus SetInterruptFeature(byte featureId, uint value);

    /// <summary>Get Features 08h or 09h; <paramref name="current"/> false for the default.</summary>
    NvmeStatus GetInterruptFeature(byte featureId, uint cdw11, bool current, out uint value);
}

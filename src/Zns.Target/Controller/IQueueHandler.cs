using Zns.Nvme;
using Zns.Target.Execution;

namespace Zns.Target.Controller;

/// <summary>
/// The controller side of one queue, as a transport drives it: every command of the queue goes through
/// <see cref="ExecuteAsync"/> (or <see cref="Refuse"/> when the transport itself found it bad), in submission order.
/// </summary>
/// <remarks>
/// Contract with the transport:
/// <list type="bullet">
/// <item>The transport takes each command's data direction and length from <see cref="TransferOf"/> (the one
/// command data table). A fabric checks its SGL form and refuses lengths above <see cref="MaxDataLength"/> with
/// Invalid Field in Command before buffering anything; a memory-based transport maps exactly the table's length.</item>
/// <item>Commands run in the order they were submitted, after all host-to-controller data is in <c>data</c>. The
/// handler completes synchronously (keeping per-queue order, as zone writes need) or later.</item>
/// <item>For controller-to-host commands <c>data</c> has the transfer's length and stays valid until the command
/// completes; on success the handler has written every byte, on error none is sent.</item>
/// <item><see cref="HostData.IsBorrowed"/> data is valid only until ExecuteAsync returns; a handler that completes
/// later detaches it first (<see cref="HostData.Detach"/>).</item>
/// <item>The returned CQE is posted as is: CID, SQID, SQHD, status and result are the controller's.</item>
/// <item>The transport never lets more than <see cref="QueueDepth"/> commands be outstanding.</item>
/// </list>
/// </remarks>
public interface IQueueHandler : IDisposable
{
    /// <summary>SQID of this queue (0 until a fabric queue is connected).</summary>
    ushort QueueId { get; }

    /// <summary>Largest data length in bytes a single command on this queue may carry right now (MDTS).</summary>
    int MaxDataLength { get; }

    /// <summary>
    /// Most commands the host may have outstanding on this queue right now: the queue's entries, and 1 on a fabric
    /// queue before Connect (the Connect itself).
    /// </summary>
    int QueueDepth { get; }

    /// <summary>Direction and length of a command's data on this queue.</summary>
    DataTransfer TransferOf(in SubmissionQueueEntry command);

    /// <summary>Executes one command.</summary>
    ValueTask<CompletionQueueEntry> ExecuteAsync(in SubmissionQueueEntry command, HostData data);

    /// <summary>Consumes a command the transport refused with <paramref name="status"/> and returns its completion.</summary>
    CompletionQueueEntry Refuse(in SubmissionQueueEntry command, NvmeStatus status);
}

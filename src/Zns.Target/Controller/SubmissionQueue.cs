using Zns.Nvme;
using Zns.Target.Execution;

namespace Zns.Target.Controller;

/// <summary>
/// One submission queue of a controller, on any transport: its SQ head, the gates every command passes (controller
/// ready, fused operations) and dispatch to the admin or I/O command handler. A fabric queue gets one when its
/// Connect succeeds; a memory-based transport when CC.EN or Create I/O Submission Queue makes the queue.
/// </summary>
/// <remarks>
/// Commands arrive one at a time per queue (the transport keeps submission order), so the head needs no lock;
/// cross-queue state lives in <see cref="NvmeController"/>.
/// </remarks>
public sealed partial class SubmissionQueue : IQueueHandler
{
    private readonly NvmeController _controller;
    private readonly AdminCommandHandler? _admin;
    private readonly IoCommandHandler? _io;
    private readonly IQueueTransport _transport;
    private int _head;
    private int _disposed;

    internal SubmissionQueue(NvmeController controller, ushort queueId, int entries, IQueueTransport transport, int consumed = 0)
    {
        _controller = controller;
        _transport = transport;
        QueueId = queueId;
        Entries = entries;
        _head = consumed % entries;
        if (queueId == 0)
        {
            _admin = new AdminCommandHandler(controller);
        }
        else
        {
            _io = new IoCommandHandler(controller, queueId, entries);
        }
    }

    /// <inheritdoc/>
    public ushort QueueId { get; }

    /// <summary>Entries of the queue (SQSIZE + 1, or QSIZE + 1).</summary>
    public int Entries { get; }

    /// <summary>SQHD: the next entry the controller consumes. A memory-based transport fetches from here.</summary>
    public int Head => Volatile.Read(ref _head);

    internal NvmeController Controller => _controller;

    internal IQueueTransport Transport => _transport;

    /// <inheritdoc/>
    public int MaxDataLength => QueueId == 0 ? _controller.Options.MaxAdminDataLength : _controller.Subsystem.MaxIoDataLength;

    /// <inheritdoc/>
    public int QueueDepth => Entries;

    /// <inheritdoc/>
    /// <remarks>Fabrics commands move nothing here: they are Invalid Opcode on a queue that reaches this class.</remarks>
    public DataTransfer TransferOf(in SubmissionQueueEntry command) =>
        command.Opcode == AdminOpcode.Fabrics ? DataTransfer.None
        : QueueId == 0 ? CommandData.Admin(in command, _controller.Traits.IsMemoryBased)
        : CommandData.Io(in command, _controller.DataFormat(command.NamespaceId));

    /// <inheritdoc/>
    public ValueTask<CompletionQueueEntry> ExecuteAsync(in SubmissionQueueEntry command, HostData data)
    {
        CompletionQueueEntry cqe = Consume(in command);
        return Execute(in command, data, cqe);
    }

    /// <inheritdoc/>
    public CompletionQueueEntry Refuse(in SubmissionQueueEntry command, NvmeStatus status)
    {
        CompletionQueueEntry cqe = Consume(in command);
        cqe.Status = status;
        return cqe;
    }

    /// <summary>
    /// The controller consumes an entry when the command arrives, so the head advances modulo the queue size before
    /// the command runs, and its completion carries the new head.
    /// </summary>
    internal CompletionQueueEntry Consume(in SubmissionQueueEntry command)
    {
        int head = (_head + 1) % Entries;
        Volatile.Write(ref _head, head);
        return new CompletionQueueEntry { CommandId = command.CommandId, SqId = QueueId, SqHead = (ushort)head };
    }

    /// <summary>The gates and dispatch of a command whose entry was consumed (<paramref name="cqe"/> carries CID, SQID, SQHD).</summary>
    internal ValueTask<CompletionQueueEntry> Execute(in SubmissionQueueEntry command, HostData data, CompletionQueueEntry cqe)
    {
        if (command.Opcode == AdminOpcode.Fabrics)
        {
            // Fabrics commands exist only on a fabric, whose queue answers them before they get here.
            cqe.Status = NvmeStatus.InvalidOpcode.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        NvmeController controller = _controller;
        controller.Touch();
        if (!controller.IsReady)
        {
            // Only Fabrics commands are processed while CC.EN = 0 or CSTS.RDY = 0 (NVMe Base §3.5.1, nvmet).
            cqe.Status = NvmeStatus.CommandSequenceError.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        if ((command.Flags & 0x3) != 0)
        {
            // Fused operations (Compare and Write) are not supported (FUSES = 0).
            cqe.Status = NvmeStatus.InvalidField.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        if (controller.Subsystem.Target.Faults.Armed)
        {
            return ExecuteWithFaults(in command, data, cqe, controller);
        }
        return _admin is not null ? _admin.Execute(in command, data, cqe) : _io!.Execute(in command, data, cqe);
    }

    /// <summary>Stops the queue on its transport (controller reset, shutdown, teardown).</summary>
    internal void Abort(string reason) => _transport.Abort(reason);

    /// <summary>An I/O queue leaves its controller; the admin queue's controller is destroyed by its owner.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        if (QueueId != 0)
        {
            _controller.DetachIoQueue(QueueId, this);
        }
    }
}

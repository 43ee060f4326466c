using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Nvme.Layouts;
using Zns.Target.Controller;
using Zns.Target.Execution;
using Zns.Target.Fabrics.Auth;

namespace Zns.Target.Fabrics;

/// <summary>
/// The controller side of one fabric queue (one NVMe/TCP connection): the Fabrics commands (Connect, Property
/// Get/Set, Disconnect, Authentication Send/Receive) and the authentication gate; once Connect made the queue, its
/// <see cref="SubmissionQueue"/> takes every other command.
/// </summary>
/// <remarks>
/// <see cref="ExecuteAsync"/> is called sequentially per queue by the transport, so the queue's own fields need no
/// locking; cross-queue state lives in <see cref="NvmeController"/>.
/// </remarks>
internal sealed class FabricsQueue : IQueueHandler
{
    /// <summary>Before Connect only Fabrics commands are valid; Connect data (1024 bytes) comes in-capsule, within what the host puts in-capsule on an admin queue.</summary>
    internal const int PreConnectMaxDataLength = Protocol.NvmeTcp.HostAdminInCapsuleDataLength;

    /// <summary>SQSIZE (0's based) the admin queue may always have: the 32 entries of Linux's NVME_AQ_DEPTH.</summary>
    internal const int AdminQueueMinimumSqSize = 31;

    private readonly NvmeTarget _target;
    private readonly IQueueTransport _transport;
    private NvmeController? _controller;
    private SubmissionQueue? _queue;
    private QueueAuthentication? _auth;
    private bool _connected;
    private int _disposed;

    public FabricsQueue(NvmeTarget target, IQueueTransport transport)
    {
        _target = target;
        _transport = transport;
    }

    /// <inheritdoc/>
    public ushort QueueId => _queue?.QueueId ?? 0;

    /// <inheritdoc/>
    public int MaxDataLength => _connected && _queue is { } q ? q.MaxDataLength : PreConnectMaxDataLength;

    /// <inheritdoc/>
    /// <remarks>SQSIZE + 1 stays in force after a Fabrics Disconnect: the commands still outstanding were admitted
    /// under it, and the connection closes soon after.</remarks>
    public int QueueDepth => _queue?.Entries ?? 1;

    /// <inheritdoc/>
    public DataTransfer TransferOf(in SubmissionQueueEntry command) =>
        command.Opcode == AdminOpcode.Fabrics || _queue is null ? CommandData.Admin(in command, memoryBased: false) : _queue.TransferOf(in command);

    /// <inheritdoc/>
    public CompletionQueueEntry Refuse(in SubmissionQueueEntry command, NvmeStatus status)
    {
        if (_queue is { } queue)
        {
            return queue.Refuse(in command, status);
        }
        return new CompletionQueueEntry { CommandId = command.CommandId, Status = status };
    }

    /// <inheritdoc/>
    public ValueTask<CompletionQueueEntry> ExecuteAsync(in SubmissionQueueEntry command, HostData data)
    {
        // Before Connect the size is unknown and SQHD is 0; after it every command consumes an entry.
        CompletionQueueEntry cqe = _queue is { } q ? q.Consume(in command) : new CompletionQueueEntry { CommandId = command.CommandId };
        if (command.Opcode == AdminOpcode.Fabrics)
        {
            ExecuteFabrics(in command, data.Span, ref cqe);
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        if (!_connected || _queue is null)
        {
            // NVMe-oF 1.1 §3.3: a command other than Connect on a queue that is not yet connected is a Command
            // Sequence Error. (nvmet answers Invalid Opcode; the specification's status is the more precise one and
            // the Linux host never does this.)
            cqe.Status = NvmeStatus.CommandSequenceError.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        if (_auth is { IsAuthenticated: false })
        {
            // NVMe Base 2.0 §8.13: until the queue is authenticated only Connect and Authentication Send/Receive run.
            _controller!.Touch();
            cqe.Status = NvmeStatus.AuthenticationRequired.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        return _queue.Execute(in command, data, cqe);
    }

    private void ExecuteFabrics(in SubmissionQueueEntry sqe, Span<byte> data, ref CompletionQueueEntry cqe)
    {
        byte fctype = sqe.FabricsCommandType;
        if (fctype == FabricsCommandType.Connect)
        {
            Connect(in sqe, data, ref cqe);
            return;
        }
        NvmeController? controller = _controller;
        if (!_connected || controller is null)
        {
            cqe.Status = NvmeStatus.CommandSequenceError.WithDnr();
            return;
        }
        controller.Touch();
        if (fctype is FabricsCommandType.AuthenticationSend or FabricsCommandType.AuthenticationReceive)
        {
            cqe.Status = ConnectAuthentication.Execute(_auth, in sqe, data);
            return;
        }
        if (_auth is { IsAuthenticated: false })
        {
            cqe.Status = NvmeStatus.AuthenticationRequired.WithDnr();
            return;
        }
        switch (fctype)
        {
            case FabricsCommandType.PropertyGet when QueueId == 0:
                if (controller.TryGetProperty(PropertyCommandLayout.Offset(in sqe), PropertyCommandLayout.Size(in sqe), out ulong value))
                {
                    cqe.Result = value;
                }
                else
                {
                    cqe.Status = NvmeStatus.InvalidField.WithDnr();
                }
                return;
            case FabricsCommandType.PropertySet when QueueId == 0:
                cqe.Status = controller.SetProperty(PropertyCommandLayout.Offset(in sqe), PropertyCommandLayout.Size(in sqe), PropertyCommandLayout.Value(in sqe));
                return;
            case FabricsCommandType.Disconnect:
                if (QueueId == 0)
                {
                    // Disconnect deletes I/O queues only; the admin queue goes with its connection.
                    cqe.Status = NvmeStatus.DisconnectInvalidQueueType.WithDnr();
                    return;
                }
                // The response still goes out on this connection; later commands see an unconnected queue.
                controller.DetachIoQueue(QueueId, _queue!);
                _connected = false;
                return;
            default:
                // Property Get/Set on an I/O queue and unknown types.
                cqe.Status = NvmeStatus.InvalidOpcode.WithDnr();
                return;
        }
    }

    private void Connect(in SubmissionQueueEntry sqe, ReadOnlySpan<byte> data, ref CompletionQueueEntry cqe)
    {
        ushort qid = ConnectCommandLayout.Qid(in sqe);
        cqe.SqId = qid;
        if (_connected || _controller is not null)
        {
            cqe.Status = NvmeStatus.CommandSequenceError.WithDnr();
            return;
        }
        if (data.Length != ConnectDataLayout.Size)
        {
            cqe.Status = NvmeStatus.DataSglLengthInvalid.WithDnr();
            return;
        }
        string subNqn = ConnectDataLayout.SubNqn(data);
        string hostNqn = ConnectDataLayout.HostNqn(data);
        if (ConnectCommandLayout.Recfmt(in sqe) != 0)
        {
            Reject(ref cqe, NvmeStatus.ConnectIncompatibleFormat, 0, "unsupported RECFMT", subNqn, hostNqn, qid);
            return;
        }
        NvmeSubsystem? subsystem = _target.FindSubsystem(subNqn);
        if (subsystem is null)
        {
            Reject(ref cqe, NvmeStatus.ConnectInvalidParameters, ConnectDataLayout.InvalidParameterInData(ConnectDataLayout.SubNqnOffset),
                "unknown subsystem", subNqn, hostNqn, qid);
            return;
        }
        if (!_target.IsHostAllowed(subsystem, hostNqn))
        {
            ConnectAuthentication.RecordUnknownHost(_target, subsystem, _transport.RemoteEndPoint);
            Reject(ref cqe, NvmeStatus.ConnectInvalidHost, ConnectDataLayout.InvalidParameterInData(ConnectDataLayout.HostNqnOffset),
                "host not allowed", subNqn, hostNqn, qid);
            return;
        }
        if (ConnectAuthentication.IsRateLimited(_target, subsystem, hostNqn, _transport.RemoteEndPoint))
        {
            Reject(ref cqe, NvmeStatus.ConnectControllerBusy, 0, "too many failed authentication attempts from this address", subNqn, hostNqn, qid);
            return;
        }
        ushort sqSize = ConnectCommandLayout.SqSize(in sqe);
        // CAP.MQES bounds I/O queues only (NVMe over Fabrics: "applies to only the I/O Submission Queues"); the
        // admin queue may always have the 32 entries Linux gives it (NVME_AQ_DEPTH), however small MQES is.
        int mqes = qid == 0 ? Math.Max(_target.Options.MaxQueueEntries - 1, AdminQueueMinimumSqSize) : _target.Options.MaxQueueEntries - 1;
        if (sqSize == 0 || sqSize > mqes)
        {
            Reject(ref cqe, NvmeStatus.ConnectInvalidParameters, ConnectDataLayout.InvalidParameterInSqe(ConnectCommandLayout.SqSizeOffset),
                $"SQSIZE {sqSize} outside 1..{mqes}", subNqn, hostNqn, qid);
            return;
        }
        ushort cntlid = ConnectDataLayout.Cntlid(data);
        if (subsystem.IsPoweredOff)
        {
            // Retryable (no DNR): a host keeps reconnecting until power is back, as it does to an unreachable target.
            cqe.Status = NvmeStatus.ConnectControllerBusy;
            _target.Logger.ConnectRejected(_transport.RemoteEndPoint, cqe.Status.ToString(), "power is off", subNqn, hostNqn, qid);
            return;
        }
        if (qid == 0)
        {
            ConnectAdmin(ref cqe, subsystem, cntlid, sqSize, ConnectCommandLayout.Kato(in sqe), ConnectDataLayout.HostId(data), subNqn, hostNqn);
        }
        else
        {
            ConnectIo(ref cqe, subsystem, qid, cntlid, sqSize, subNqn, hostNqn);
        }
    }

    private void ConnectAdmin(ref CompletionQueueEntry cqe, NvmeSubsystem subsystem, ushort cntlid, ushort sqSize, uint kato,
        Guid hostId, string subNqn, string hostNqn)
    {
        if (cntlid != 0xFFFF)
        {
            // Only the dynamic controller model: the admin Connect must ask for "any controller".
            Reject(ref cqe, NvmeStatus.ConnectInvalidParameters, ConnectDataLayout.InvalidParameterInData(ConnectDataLayout.CntlidOffset),
                $"CNTLID {cntlid:x4} instead of FFFFh on an admin queue", subNqn, hostNqn, 0);
            return;
        }
        NvmeController? controller = subsystem.CreateController(id => new NvmeController(subsystem, id, hostNqn, hostId, kato, _transport));
        if (controller is null)
        {
            Reject(ref cqe, NvmeStatus.ConnectControllerBusy, 0, "no free controller ID", subNqn, hostNqn, 0);
            return;
        }
        _controller = controller;
        InstallQueue(new SubmissionQueue(controller, 0, sqSize + 1, _transport, consumed: 1), ref cqe);
        RequireAuthentication(subsystem, hostNqn, 0, ref cqe);
        if (_auth is null)
        {
            controller.StartKeepAlive();
        }
        else
        {
            // Hosts send no Keep Alive before the admin queue is authenticated (Linux starts them with the controller),
            // so the timer starts then; until that the authentication timeout guards the queue.
            _auth.FirstAuthenticated = controller.StartKeepAlive;
        }
        _target.Logger.ControllerCreated(controller.Cntlid, subNqn, hostNqn, _transport.RemoteEndPoint, kato);
    }

    private void ConnectIo(ref CompletionQueueEntry cqe, NvmeSubsystem subsystem, ushort qid, ushort cntlid, ushort sqSize,
        string subNqn, string hostNqn)
    {
        if (subsystem.IsDiscovery || qid > _target.Options.MaxIoQueues)
        {
            Reject(ref cqe, NvmeStatus.ConnectInvalidParameters, ConnectDataLayout.InvalidParameterInSqe(ConnectCommandLayout.QidOffset),
                $"QID {qid} not available", subNqn, hostNqn, qid);
            return;
        }
        if (!subsystem.TryGetController(cntlid, out NvmeController controller) || controller.HostNqn != hostNqn || controller.IsDestroyed)
        {
            Reject(ref cqe, NvmeStatus.ConnectInvalidParameters, ConnectDataLayout.InvalidParameterInData(ConnectDataLayout.CntlidOffset),
                $"no controller {cntlid} for this host", subNqn, hostNqn, qid);
            return;
        }
        // The Connect command itself was the first entry consumed.
        var queue = new SubmissionQueue(controller, qid, sqSize + 1, _transport, consumed: 1);
        NvmeStatus status = controller.AttachIoQueue(qid, queue);
        if (!status.IsSuccess)
        {
            Reject(ref cqe, status, 0, "queue already connected or controller not enabled", subNqn, hostNqn, qid);
            return;
        }
        _controller = controller;
        controller.OnIoQueueCreated();
        InstallQueue(queue, ref cqe);
        RequireAuthentication(subsystem, hostNqn, qid, ref cqe);
        controller.Touch();
        _target.Logger.IoQueueConnected(qid, sqSize, controller.Cntlid, _transport.RemoteEndPoint);
    }

    private void InstallQueue(SubmissionQueue queue, ref CompletionQueueEntry cqe)
    {
        _queue = queue;
        _connected = true;
        cqe.SqId = queue.QueueId;
        cqe.SqHead = (ushort)queue.Head;
        // DW0: CNTLID in bits 15:0; AUTHREQ (bits 17:16) is added by RequireAuthentication.
        cqe.Result = _controller!.Cntlid;
        _transport.OnQueueConnected(queue.QueueId);
    }

    /// <summary>A host with a key must authenticate every queue, the I/O queues too: AUTHREQ.ATR in the response.</summary>
    private void RequireAuthentication(NvmeSubsystem subsystem, string hostNqn, ushort qid, ref CompletionQueueEntry cqe)
    {
        _auth = ConnectAuthentication.Begin(_target, subsystem, hostNqn, qid, _transport);
        if (_auth is not null)
        {
            cqe.Result |= QueueAuthentication.AuthenticationTransactionRequired;
        }
    }

    private void Reject(ref CompletionQueueEntry cqe, NvmeStatus status, uint result, string reason, string subNqn, string hostNqn, ushort qid)
    {
        cqe.Status = status.WithDnr();
        cqe.Result = result;
        _target.Logger.ConnectRejected(_transport.RemoteEndPoint, cqe.Status.ToString(), reason, subNqn, hostNqn, qid);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _auth?.Dispose();
        NvmeController? controller = _controller;
        if (controller is null)
        {
            return;
        }
        _target.Logger.QueueDisconnected(QueueId, controller.Cntlid, _transport.RemoteEndPoint);
        if (QueueId == 0)
        {
            // The admin queue is the controller's lifeline: without it the host cannot reach the controller again.
            controller.Destroy("admin queue disconnected");
        }
        else
        {
            _queue?.Dispose();
        }
    }
}

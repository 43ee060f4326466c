using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Fabrics.Auth;
using Zns.Nvme.Layouts;

namespace Zns.Target.Controller;

/// <summary>
/// The NVMe side of one queue (one NVMe/TCP connection): Fabrics commands, the Connect state machine and SQ head
/// accounting, then admin or I/O dispatch once the queue belongs to a controller.
/// </summary>
/// <remarks>
/// <see cref="ExecuteAsync"/> is called sequentially per queue by the transport, so the queue's own fields need no
/// locking; cross-queue state lives in <see cref="NvmeController"/>.
/// </remarks>
internal sealed partial class QueueHandler : IQueueHandler
{
    /// <summary>Before Connect only Fabrics commands are valid; Connect data (1024 bytes) comes in-capsule, within what the host puts in-capsule on an admin queue.</summary>
    internal const int PreConnectMaxDataLength = NvmeTcp.HostAdminInCapsuleDataLength;

    /// <summary>SQSIZE (0's based) the admin queue may always have: the 32 entries of Linux's NVME_AQ_DEPTH.</summary>
    internal const int AdminQueueMinimumSqSize = 31;

    private readonly NvmeTarget _target;
    private readonly IQueueTransport _transport;
    private NvmeController? _controller;
    private AdminCommandHandler? _admin;
    private IoCommandHandler? _io;
    private QueueAuthentication? _auth;
    private ushort _qid;
    private int _entries;
    private ushort _head;
    private bool _connected;
    private int _disposed;

    public QueueHandler(NvmeTarget target, IQueueTransport transport)
    {
        _target = target;
        _transport = transport;
    }

    /// <inheritdoc/>
    public int MaxDataLength
    {
        get
        {
            NvmeController? c = _controller;
            if (!_connected || c is null)
            {
                return PreConnectMaxDataLength;
            }
            return _qid == 0 ? _target.Options.MaxAdminDataLength : c.Subsystem.MaxIoDataLength;
        }
    }

    /// <inheritdoc/>
    /// <remarks>SQSIZE + 1 stays in force after a Fabrics Disconnect: the commands still outstanding were admitted
    /// under it, and the connection closes soon after.</remarks>
    public int QueueDepth => _entries == 0 ? 1 : _entries;

    /// <inheritdoc/>
    public ValueTask<CompletionQueueEntry> ExecuteAsync(SubmissionQueueEntry command, Memory<byte> data)
    {
        var cqe = new CompletionQueueEntry { CommandId = command.CommandId, SqId = _qid, SqHead = AdvanceHead() };
        if (command.Opcode == AdminOpcode.Fabrics)
        {
            ExecuteFabrics(in command, data.Span, ref cqe);
            return new ValueTask<CompletionQueueEntry>(cqe);
        }

        NvmeController? controller = _controller;
        if (!_connected || controller is null)
        {
            // NVMe-oF 1.1 §3.3: a command other than Connect on a queue that is not yet connected is a Command
            // Sequence Error. (nvmet answers Invalid Opcode; the specification's status is the more precise one and
            // the Linux host never does this.)
            cqe.Status = NvmeStatus.CommandSequenceError.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        controller.Touch();
        if (_auth is { IsAuthenticated: false })
        {
            // NVMe Base 2.0 §8.13: until the queue is authenticated only Connect and Authentication Send/Receive run.
            cqe.Status = NvmeStatus.AuthenticationRequired.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
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
        if (_target.Faults.Armed)
        {
            return ExecuteWithFaults(in command, data, cqe, controller);
        }
        return _qid == 0 ? _admin!.Execute(in command, data, cqe) : _io!.Execute(in command, data, cqe);
    }

    /// <summary>
    /// SQHD: the controller consumes an entry when the command arrives, so the head advances modulo the queue size
    /// (SQSIZE + 1) before the command runs. Before Connect the size is unknown and SQHD is 0.
    /// </summary>
    private ushort AdvanceHead()
    {
        if (_entries == 0)
        {
            return 0;
        }
        _head = (ushort)((_head + 1) % _entries);
        return _head;
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
            case FabricsCommandType.PropertyGet when _qid == 0:
                if (controller.TryGetProperty(PropertyCommandLayout.Offset(in sqe), PropertyCommandLayout.Size(in sqe), out ulong value))
                {
                    cqe.Result = value;
                }
                else
                {
                    cqe.Status = NvmeStatus.InvalidField.WithDnr();
                }
                return;
            case FabricsCommandType.PropertySet when _qid == 0:
                cqe.Status = controller.SetProperty(PropertyCommandLayout.Offset(in sqe), PropertyCommandLayout.Size(in sqe), PropertyCommandLayout.Value(in sqe));
                return;
            case FabricsCommandType.Disconnect:
                if (_qid == 0)
                {
                    // Disconnect deletes I/O queues only; the admin queue goes with its connection.
                    cqe.Status = NvmeStatus.DisconnectInvalidQueueType.WithDnr();
                    return;
                }
                // The response still goes out on this connection; later commands see an unconnected queue.
                controller.DetachIoQueue(_qid, this);
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
        NvmeController? controller = subsystem.CreateController(id => new NvmeController(subsystem, id, hostNqn, hostId, kato, this));
        if (controller is null)
        {
            Reject(ref cqe, NvmeStatus.ConnectControllerBusy, 0, "no free controller ID", subNqn, hostNqn, 0);
            return;
        }
        _controller = controller;
        _admin = new AdminCommandHandler(controller);
        InstallQueue(0, sqSize, ref cqe);
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
        NvmeStatus status = controller.AttachIoQueue(qid, this);
        if (!status.IsSuccess)
        {
            Reject(ref cqe, status, 0, "queue already connected or controller not enabled", subNqn, hostNqn, qid);
            return;
        }
        _controller = controller;
        _io = new IoCommandHandler(controller, qid, sqSize + 1);
        InstallQueue(qid, sqSize, ref cqe);
        RequireAuthentication(subsystem, hostNqn, qid, ref cqe);
        controller.Touch();
        _target.Logger.IoQueueConnected(qid, sqSize, controller.Cntlid, _transport.RemoteEndPoint);
    }

    private void InstallQueue(ushort qid, ushort sqSize, ref CompletionQueueEntry cqe)
    {
        _qid = qid;
        _entries = sqSize + 1;
        // The Connect command itself was the first entry consumed.
        _head = (ushort)(1 % _entries);
        _connected = true;
        cqe.SqId = qid;
        cqe.SqHead = _head;
        // DW0: CNTLID in bits 15:0; AUTHREQ (bits 17:16) is added by RequireAuthentication.
        cqe.Result = _controller!.Cntlid;
        _transport.OnQueueConnected(qid);
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

    /// <summary>In-capsule data bytes this queue's transport accepts per command (IOCCSZ source).</summary>
    internal int InCapsuleDataLength => _transport.InCapsuleDataLength;

    /// <summary>
    /// Binds this queue to <paramref name="controller"/> without a Fabrics Connect: on a memory-based (PCIe)
    /// transport the admin queue exists once CC.EN = 1 and an I/O queue once Create I/O Submission Queue succeeds.
    /// Admin and I/O dispatch are then the same as for a connected fabric queue.
    /// </summary>
    internal void BindToController(NvmeController controller, ushort qid, int entries)
    {
        _controller = controller;
        _qid = qid;
        _entries = entries;
        _head = 0;
        if (qid == 0)
        {
            _admin = new AdminCommandHandler(controller);
        }
        else
        {
            _io = new IoCommandHandler(controller, qid, entries);
        }
        _connected = true;
    }

    /// <summary>Closes this queue's connection (controller reset, shutdown, teardown).</summary>
    internal void AbortConnection(string reason) => _transport.Abort(reason);

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
        _target.Logger.QueueDisconnected(_qid, controller.Cntlid, _transport.RemoteEndPoint);
        if (_qid == 0)
        {
            // The admin queue is the controller's lifeline: without it the host cannot reach the controller again.
            controller.Destroy("admin queue disconnected");
        }
        else
        {
            controller.DetachIoQueue(_qid, this);
        }
    }
}

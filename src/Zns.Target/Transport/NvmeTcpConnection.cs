using Zns.Core;
using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Zns.Core.Nvme;
using Zns.Protocol;

namespace Zns.Target.Transport;

/// <summary>
/// One NVMe/TCP connection (one NVMe queue) on the controller side: ICReq/ICResp, command capsules with in-capsule
/// or R2T-solicited data, C2HData/CapsuleResp, digests, and C2HTermReq on broken PDUs.
/// </summary>
/// <remarks>
/// Three loops per connection:
/// <list type="bullet">
/// <item>receive: socket → <see cref="Pipe"/>; the pipe's pause threshold gives back-pressure (a host that sends
/// faster than commands are parsed stops being read).</item>
/// <item>process: parses whole PDUs out of the pipe, validates them, gathers command data, and calls
/// <see cref="IQueueHandler.ExecuteAsync"/> in capsule arrival order.</item>
/// <item>send: the only writer to the socket. R2Ts, C2HData and CapsuleResps are queued to it as work items and
/// coalesced into one buffer, so one PDU's bytes are never interleaved with another's and small responses under
/// load share a send call.</item>
/// </list>
/// Command state lives in pooled <see cref="CommandContext"/> objects whose index doubles as the R2T transfer tag;
/// data buffers come from <see cref="ArrayPool{T}"/>, and a context keeps a small one (up to 16 KiB) for its next command. Steady-state I/O allocates nothing unless the handler completes
/// asynchronously with a <see cref="Task"/>-backed <see cref="ValueTask{T}"/>.
/// </remarks>
internal sealed class NvmeTcpConnection : IQueueTransport
{
    private const int SendBufferSize = TargetTransportOptions.SendBufferMemory;
    private const int MinReceiveBufferSize = 16 * 1024;

    private readonly Socket _socket;
    private readonly TargetTransportOptions _options;
    private readonly IQueueHandlerFactory _factory;
    private readonly ILogger _logger;
    private readonly Pipe _input;
    private readonly Channel<Outbound> _outbound;
    private readonly CancellationTokenSource _closing = new();
    private readonly object _contextLock = new();
    private readonly List<CommandContext> _contexts = new();
    private readonly Stack<CommandContext> _freeContexts = new();
    private readonly Queue<CommandContext> _arrivalOrder = new();
    private readonly Queue<CommandContext> _bufferWaiters = new();
    private int _inUse;
    private long _bufferedBytes;
    private int _waitingForBuffer;
    private byte[] _sendBuffer = [];
    private int _sendCount;

    private IQueueHandler? _handler;
    private DigestOptions _digests;
    private bool _initialized;
    private volatile bool _queueConnected;
    private ushort _queueId;
    private int _aborted;
    private string _closeReason = "connection closed";
    private byte[]? _termReq;

    public NvmeTcpConnection(Socket socket, TargetTransportOptions options, IQueueHandlerFactory factory, ILogger logger)
    {
        _socket = socket;
        _options = options;
        _factory = factory;
        _logger = logger;
        RemoteEndPoint = socket.RemoteEndPoint?.ToString() ?? "(unknown)";

        // The parser needs a whole PDU buffered before it hands it over, so the pipe must be able to hold the
        // largest legal PDU (header + padding + data + digests) or the reader would wait for bytes the paused
        // writer never delivers.
        long pause = options.ReceivePauseThreshold;
        _input = new Pipe(new PipeOptions(
            pauseWriterThreshold: pause,
            resumeWriterThreshold: pause / 2,
            minimumSegmentSize: MinReceiveBufferSize,
            useSynchronizationContext: false));
        _outbound = Channel.CreateUnbounded<Outbound>(new UnboundedChannelOptions
        {
            SingleReader = true,
            SingleWriter = false,
            AllowSynchronousContinuations = false,
        });
    }

    /// <inheritdoc/>
    public string RemoteEndPoint { get; }

    /// <summary>Parser settings for the current connection state.</summary>
    private PduParserOptions ParserOptions => new(PduDirection.HostToController, _initialized, _digests,
        _options.MaxInCapsuleDataLength, _options.MaxH2CData);

    /// <inheritdoc/>
    public void Abort(string reason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
            return;
        _closeReason = reason;
        _outbound.Writer.TryComplete();
        try { _closing.Cancel(); } catch (ObjectDisposedException) { }
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        _socket.Dispose();
    }

    private bool IsAborted => Volatile.Read(ref _aborted) != 0;

    /// <summary>Serves the connection until it closes. Never throws.</summary>
    public async Task RunAsync()
    {
        Task receive = Task.CompletedTask;
        Task send = Task.CompletedTask;
        CancellationTokenRegistration icTimeout = default;
        var icTimer = new CancellationTokenSource(_options.InitializationTimeout);
        try
        {
            // A connection must complete ICReq and a successful Fabrics Connect within the initialization timeout;
            // after that the controller's keep-alive timer watches it. This bounds how long a silent, half-open or
            // stalled connection holds its resources.
            icTimeout = icTimer.Token.Register(static s =>
            {
                var c = (NvmeTcpConnection)s!;
                if (!c._queueConnected)
                    c.Abort(c._initialized ? "no Fabrics Connect within the initialization timeout" : "no ICReq within the initialization timeout");
            }, this);
            receive = ReceiveLoopAsync();
            send = SendLoopAsync();
            await ProcessLoopAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException && IsAborted)
        {
        }
        catch (Exception e)
        {
            TransportLog.UnexpectedFailure(_logger, RemoteEndPoint, e);
        }
        finally
        {
            await icTimeout.DisposeAsync().ConfigureAwait(false);
            icTimer.Dispose();
            if (_termReq is not null)
                await LingerAfterTermReqAsync(send).ConfigureAwait(false);
            Abort(_closeReason);
            await SafeAwait(receive).ConfigureAwait(false);
            await SafeAwait(send).ConfigureAwait(false);
            await _input.Reader.CompleteAsync().ConfigureAwait(false);
            try { _handler?.Dispose(); }
            catch (Exception e) { TransportLog.UnexpectedFailure(_logger, RemoteEndPoint, e); }
            ReleaseAfterClose();
            TransportLog.Closed(_logger, RemoteEndPoint, _closeReason);
        }
    }

    private static async Task SafeAwait(Task task)
    {
        try { await task.ConfigureAwait(false); }
        catch { /* loop failures were logged or are the expected result of Abort */ }
    }

    // ---------------------------------------------------------------- receive

    private async Task ReceiveLoopAsync()
    {
        var writer = _input.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                // Wait for data before taking a buffer, so an idle connection holds no receive segment (as Kestrel
                // does); a zero-byte receive completes when bytes are available or the peer closed.
                await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, _closing.Token).ConfigureAwait(false);
                var memory = writer.GetMemory(MinReceiveBufferSize);
                int received = await _socket.ReceiveAsync(memory, SocketFlags.None, _closing.Token).ConfigureAwait(false);
                if (received == 0)
                    break;
                writer.Advance(received);
                var flush = await writer.FlushAsync(_closing.Token).ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled)
                    break;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Connection reset or Abort: the process loop sees the end of the stream.
        }
        catch (Exception e)
        {
            error = e;
        }
        await writer.CompleteAsync(error).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- process

    private async Task ProcessLoopAsync()
    {
        var reader = _input.Reader;
        while (true)
        {
            var result = await reader.ReadAsync(_closing.Token).ConfigureAwait(false);
            var buffer = result.Buffer;
            bool stop = false;
            try
            {
                // A released data buffer cancels the pending read (see Release), so commands waiting for buffer space
                // get it here even when the host sends nothing.
                if (_bufferWaiters.Count > 0)
                {
                    stop = !GrantBuffers();
                    if (!stop)
                        DispatchReady();
                }
                while (!stop)
                {
                    var options = ParserOptions;
                    var status = PduParser.TryParse(buffer, options, out var pdu, out var error);
                    if (status == PduParseStatus.NeedMoreData)
                        break;
                    if (status == PduParseStatus.Fatal)
                    {
                        Terminate(error, buffer);
                        return;
                    }
                    var bytes = buffer.Slice(0, pdu.Length);
                    stop = !HandlePdu(ref pdu, bytes);
                    buffer = buffer.Slice(pdu.Length);
                }
            }
            finally
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
            if (stop || IsAborted)
                return;
            if (result.IsCompleted)
            {
                _closeReason = buffer.IsEmpty ? "host closed the connection" : "host closed the connection inside a PDU";
                return;
            }
        }
    }

    /// <summary>Handles one complete, framing-valid PDU. Returns false when the connection must stop.</summary>
    private bool HandlePdu(ref Pdu pdu, in ReadOnlySequence<byte> bytes)
    {
        switch (pdu.Type)
        {
            case PduType.ICReq:
                return HandleIcReq(in pdu, bytes);
            case PduType.CapsuleCmd:
                return HandleCapsule(in pdu, bytes);
            case PduType.H2CData:
                return HandleH2CData(in pdu, bytes);
            case PduType.H2CTermReq:
                TransportLog.HostTerminated(_logger, RemoteEndPoint, (ushort)pdu.FatalStatus, pdu.FatalInformation);
                _closeReason = "host sent H2CTermReq";
                return false;
            default:
                // The parser only admits host-to-controller types.
                Terminate(new PduError(FatalErrorStatus.InvalidHeaderField, 0, NvmeTcp.CommonHeaderSize), bytes);
                return false;
        }
    }

    private bool HandleIcReq(in Pdu pdu, in ReadOnlySequence<byte> bytes)
    {
        // This target never pads C2H data (the Linux host ignores PDO on C2HData), so it cannot honour a host that
        // asks for aligned data.
        if (pdu.DataAlignment != 0)
        {
            Terminate(new PduError(FatalErrorStatus.UnsupportedParameter, 10, NvmeTcp.IcPduSize), bytes);
            return false;
        }
        _digests = pdu.Digests;
        try
        {
            _handler = _factory.CreateQueueHandler(this);
        }
        catch (Exception e)
        {
            TransportLog.UnexpectedFailure(_logger, RemoteEndPoint, e);
            _closeReason = "queue handler creation failed";
            return false;
        }
        _initialized = true;
        TransportLog.Initialized(_logger, RemoteEndPoint, _digests, pdu.MaxR2T);
        // Digest bits are echoed exactly: the Linux host fails the connection on any mismatch.
        return _outbound.Writer.TryWrite(new Outbound(OutboundKind.IcResp, null));
    }

    private bool HandleCapsule(in Pdu pdu, in ReadOnlySequence<byte> bytes)
    {
        var handler = _handler!;
        int queueDepth = Math.Min(handler.QueueDepth, _options.MaxOutstandingCommands);
        var ctx = AcquireContext(queueDepth);
        if (ctx is null)
        {
            // The host submitted to a full queue: more commands outstanding than SQSIZE + 1 from its Connect (one
            // before Connect). There is no SQ entry to hold the command, so it cannot be completed with a status
            // either; as on a memory-based queue, where this is an invalid doorbell write after which the queue has to
            // be recreated, the queue is unusable. Over NVMe/TCP that is a fatal transport error: a capsule the
            // controller cannot accept in the queue's current state, PDU Sequence Error.
            TransportLog.QueueOverflow(_logger, RemoteEndPoint, pdu.Command.CommandId, queueDepth);
            Terminate(new PduError(FatalErrorStatus.PduSequenceError, 0, NvmeTcp.CapsuleCmdHeaderSize), bytes);
            return false;
        }
        ctx.Command = pdu.Command;
        ref readonly var sqe = ref ctx.Command;
        ctx.Direction = DirectionOf(sqe);
        int inCapsule = pdu.DataLength;

        NvmeStatus? reject = ValidateSgl(sqe, ctx.Direction, inCapsule, handler.MaxDataLength);
        if (reject is { } status)
        {
            // In-capsule data of a rejected command is simply skipped with the PDU.
            TransportLog.CommandRejected(_logger, RemoteEndPoint, sqe.CommandId, status.ToString());
            RespondWithStatus(ctx, status);
            return true;
        }

        int length = ctx.Direction == DataDirection.None ? 0 : (int)sqe.SglLength;
        if (pdu.DataDigestMismatch)
        {
            TransportLog.DataDigestError(_logger, RemoteEndPoint, sqe.CommandId);
            ctx.TransportStatus = NvmeTcp.TransientTransportError;
        }

        _arrivalOrder.Enqueue(ctx);
        if (inCapsule > 0)
        {
            // Already received with the capsule (at most MaxInCapsuleDataLength).
            ctx.SetBuffer(length);
            bytes.Slice(pdu.DataStart, inCapsule).CopyTo(ctx.Data.Span);
            ctx.State = CommandState.Ready;
        }
        else if (length > 0)
        {
            // An R2T write or a read: its buffer comes out of the connection's data budget, in arrival order.
            ctx.SetPendingLength(length);
            ctx.State = CommandState.WaitingForBuffer;
            _bufferWaiters.Enqueue(ctx);
            if (!GrantBuffers())
                return false;
        }
        else
        {
            ctx.SetBuffer(0);
            ctx.State = CommandState.Ready;
        }
        DispatchReady();
        return true;
    }

    /// <summary>
    /// Gives waiting commands their data buffers, oldest first, while the connection stays within
    /// <see cref="TargetTransportOptions.MaxBufferedDataBytes"/>; a command larger than that gets its buffer when
    /// nothing else is buffered. Writes then get their R2T, reads become ready. Process loop only. Returns false when
    /// the connection is closing.
    /// </summary>
    /// <remarks>
    /// Cannot deadlock: every command holding budget arrived before every waiting one and needs nothing from later
    /// commands (its data comes from the host after its R2T, or it is executing or being sent), so releases follow.
    /// </remarks>
    private bool GrantBuffers()
    {
        while (_bufferWaiters.TryPeek(out var ctx))
        {
            // Announce the wait before reading the counter; Release decrements it before checking the flag, so one
            // of the two sees the other and no release goes unnoticed.
            Interlocked.Exchange(ref _waitingForBuffer, 1);
            long held = Interlocked.Read(ref _bufferedBytes);
            if (held > 0 && held + ctx.Length > _options.MaxBufferedDataBytes)
                return true;
            _bufferWaiters.Dequeue();
            Interlocked.Add(ref _bufferedBytes, ctx.Length);
            ctx.BudgetedBytes = ctx.Length;
            ctx.SetBuffer(ctx.Length);
            if (ctx.Direction == DataDirection.HostToController)
            {
                // MAXR2T is 0's based and the Linux host sends 0: one R2T per command, soliciting all the data.
                ctx.Received = 0;
                ctx.State = CommandState.AwaitingData;
                if (!_outbound.Writer.TryWrite(new Outbound(OutboundKind.R2T, ctx)))
                    return false;
            }
            else
            {
                ctx.State = CommandState.Ready;
            }
        }
        Volatile.Write(ref _waitingForBuffer, 0);
        return true;
    }

    /// <summary>Checks SGL1 the way the NVMe/TCP binding defines it; returns the error status (with DNR) or null.</summary>
    private static NvmeStatus? ValidateSgl(in SubmissionQueueEntry sqe, DataDirection direction, int inCapsule, int maxDataLength)
    {
        // PSDT (FLAGS bits 7:6) must say SGL: PRPs have no meaning on a fabric.
        if ((sqe.Flags & 0xC0) != NvmeTcp.SqeFlagsSgl)
            return NvmeStatus.InvalidField.WithDnr();
        // No command this target implements moves data both ways (opcode bits 1:0 = 11b), so such an opcode is
        // one it does not support.
        if (direction == DataDirection.Bidirectional)
            return NvmeStatus.InvalidOpcode.WithDnr();
        long sglLength = sqe.SglLength;
        switch (sqe.SglIdentifier)
        {
            case NvmeTcp.SglInCapsuleData:
                if (inCapsule > 0 && direction != DataDirection.HostToController)
                    return NvmeStatus.SglDescriptorTypeInvalid.WithDnr();
                if (sqe.SglAddress != 0)
                    return NvmeStatus.SglOffsetInvalid.WithDnr(); // ICDOFF is 0
                if (sglLength != inCapsule)
                    return NvmeStatus.DataSglLengthInvalid.WithDnr();
                break;
            case NvmeTcp.SglTransportDataBlock:
                if (inCapsule > 0)
                    return NvmeStatus.DataSglLengthInvalid.WithDnr();
                break;
            default:
                return NvmeStatus.SglDescriptorTypeInvalid.WithDnr();
        }
        // A transfer above the limit (MDTS on I/O queues) is Invalid Field in Command (NVMe Base, Identify
        // Controller MDTS), answered before any data is solicited or buffered.
        if (direction != DataDirection.None && sglLength > maxDataLength)
            return NvmeStatus.InvalidField.WithDnr();
        return null;
    }

    private bool HandleH2CData(in Pdu pdu, in ReadOnlySequence<byte> bytes)
    {
        CommandContext? ctx = null;
        lock (_contextLock)
        {
            if (pdu.TransferTag < _contexts.Count)
                ctx = _contexts[pdu.TransferTag];
        }
        if (ctx is null || ctx.State != CommandState.AwaitingData)
        {
            Terminate(new PduError(FatalErrorStatus.InvalidHeaderField, 10, NvmeTcp.DataHeaderSize), bytes);
            return false;
        }
        if (pdu.CommandId != ctx.Command.CommandId)
        {
            Terminate(new PduError(FatalErrorStatus.InvalidHeaderField, 8, NvmeTcp.DataHeaderSize), bytes);
            return false;
        }
        // Data must arrive in order and within what the R2T solicited (the whole command).
        if (pdu.TransferOffset != (uint)ctx.Received || (long)pdu.TransferOffset + pdu.TransferLength > ctx.Length)
        {
            Terminate(new PduError(FatalErrorStatus.DataTransferOutOfRange, 0, NvmeTcp.DataHeaderSize), bytes);
            return false;
        }
        bool completes = ctx.Received + pdu.DataLength == ctx.Length;
        if (pdu.IsLast != completes)
        {
            Terminate(new PduError(FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetFlags, NvmeTcp.DataHeaderSize), bytes);
            return false;
        }
        bytes.Slice(pdu.DataStart, pdu.DataLength).CopyTo(ctx.Data.Span[ctx.Received..]);
        ctx.Received += pdu.DataLength;
        if (pdu.DataDigestMismatch)
        {
            TransportLog.DataDigestError(_logger, RemoteEndPoint, ctx.Command.CommandId);
            ctx.TransportStatus = NvmeTcp.TransientTransportError;
        }
        if (completes)
        {
            ctx.State = CommandState.Ready;
            DispatchReady();
        }
        return true;
    }

    /// <summary>Executes commands whose data is complete, strictly in capsule arrival order.</summary>
    private void DispatchReady()
    {
        while (_arrivalOrder.Count > 0 && _arrivalOrder.Peek().State == CommandState.Ready && !IsAborted)
            Execute(_arrivalOrder.Dequeue());
    }

    private void Execute(CommandContext ctx)
    {
        if (ctx.TransportStatus is { } transportStatus)
        {
            RespondWithStatus(ctx, transportStatus);
            return;
        }
        ctx.State = CommandState.Executing;
        ValueTask<CompletionQueueEntry> pending;
        try
        {
            pending = _handler!.ExecuteAsync(ctx.Command, ctx.Data);
        }
        catch (Exception e)
        {
            TransportLog.HandlerFailed(_logger, RemoteEndPoint, ctx.Command.Opcode, ctx.Command.CommandId, e);
            RespondWithStatus(ctx, NvmeStatus.InternalError.WithDnr());
            return;
        }
        if (pending.IsCompleted)
        {
            OnExecuted(ctx, pending);
        }
        else
        {
            ctx.Pending = pending;
            pending.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(ctx.ExecutionCompletedCallback);
        }
    }

    private void OnExecuted(CommandContext ctx, ValueTask<CompletionQueueEntry> completed)
    {
        CompletionQueueEntry cqe;
        try
        {
            cqe = completed.Result;
        }
        catch (Exception e)
        {
            TransportLog.HandlerFailed(_logger, RemoteEndPoint, ctx.Command.Opcode, ctx.Command.CommandId, e);
            cqe = new CompletionQueueEntry
            {
                CommandId = ctx.Command.CommandId,
                SqId = _queueId,
                Status = NvmeStatus.InternalError.WithDnr(),
            };
        }
        if (ctx.Command.Opcode == AdminOpcode.Fabrics && ctx.Command.FabricsCommandType == FabricsCommandType.Connect
            && cqe.Status.IsSuccess)
        {
            _queueId = cqe.SqId;
            _queueConnected = true;
        }
        ctx.Response = cqe;
        ctx.SendData = ctx.Direction == DataDirection.ControllerToHost && cqe.Status.IsSuccess && ctx.Length > 0;
        ctx.State = CommandState.Sending;
        if (!_outbound.Writer.TryWrite(new Outbound(OutboundKind.Response, ctx)))
            Release(ctx); // closed meanwhile: the command is dropped
    }

    private void RespondWithStatus(CommandContext ctx, NvmeStatus status)
    {
        ctx.Response = new CompletionQueueEntry { CommandId = ctx.Command.CommandId, SqId = _queueId, Status = status };
        ctx.SendData = false;
        ctx.State = CommandState.Sending;
        if (!_outbound.Writer.TryWrite(new Outbound(OutboundKind.Response, ctx)))
            Release(ctx);
    }

    /// <summary>Queues a C2HTermReq echoing the offending header, after which the connection closes.</summary>
    private void Terminate(PduError error, in ReadOnlySequence<byte> buffer)
    {
        TransportLog.FatalTransportError(_logger, RemoteEndPoint, error.ToString());
        int echo = (int)Math.Min(Math.Min(error.HeaderBytes, buffer.Length), NvmeTcp.MaxTermReqErrorData);
        var pdu = new byte[PduWriter.TermReqLength(echo)];
        Span<byte> header = stackalloc byte[NvmeTcp.MaxTermReqErrorData];
        buffer.Slice(0, echo).CopyTo(header);
        PduWriter.WriteTermReq(pdu, PduType.C2HTermReq, error.Status, error.Information, header[..echo]);
        _termReq = pdu;
        _closeReason = $"fatal transport error: {error}";
        _outbound.Writer.TryWrite(new Outbound(OutboundKind.TermReq, null));
        _outbound.Writer.TryComplete();
    }

    /// <summary>
    /// Lets the send loop deliver the C2HTermReq and half-close, then discards what the host still sends for a while:
    /// closing with unread input would make the kernel send a RST that can overtake the TermReq.
    /// </summary>
    private async Task LingerAfterTermReqAsync(Task send)
    {
        using var linger = new CancellationTokenSource(_options.TerminationLinger);
        try
        {
            await send.WaitAsync(linger.Token).ConfigureAwait(false);
            var reader = _input.Reader;
            while (true)
            {
                var result = await reader.ReadAsync(linger.Token).ConfigureAwait(false);
                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                    break;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
        }
    }

    // ---------------------------------------------------------------- send

    private async Task SendLoopAsync()
    {
        var reader = _outbound.Reader;
        try
        {
            // No token here: Abort and Terminate complete the channel, which ends the wait. A cancelable token
            // would make the single-reader channel allocate a new waiter on every wait (once per I/O at QD1).
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                // Rented on the first PDU to send, so connections that never get that far hold no send buffer.
                if (_sendBuffer.Length == 0)
                    _sendBuffer = ArrayPool<byte>.Shared.Rent(SendBufferSize);
                while (reader.TryRead(out var item))
                {
                    switch (item.Kind)
                    {
                        case OutboundKind.IcResp:
                            await EnsureSpaceAsync(NvmeTcp.IcPduSize).ConfigureAwait(false);
                            _sendCount += PduWriter.WriteIcResp(_sendBuffer.AsSpan(_sendCount), _digests, (uint)_options.MaxH2CData);
                            break;
                        case OutboundKind.R2T:
                        {
                            var ctx = item.Context!;
                            await EnsureSpaceAsync(PduWriter.R2TLength(_digests)).ConfigureAwait(false);
                            _sendCount += PduWriter.WriteR2T(_sendBuffer.AsSpan(_sendCount), ctx.Command.CommandId,
                                (ushort)ctx.Index, 0, (uint)ctx.Length, _digests);
                            break;
                        }
                        case OutboundKind.Response:
                            await WriteResponseAsync(item.Context!).ConfigureAwait(false);
                            break;
                        case OutboundKind.TermReq:
                            await FlushSendBufferAsync().ConfigureAwait(false);
                            await SendAllAsync(_termReq!).ConfigureAwait(false);
                            // Half-close so the host reads the TermReq and then sees the end of the stream.
                            _socket.Shutdown(SocketShutdown.Send);
                            return;
                    }
                }
                await FlushSendBufferAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            Abort("send failed");
        }
    }

    private async ValueTask WriteResponseAsync(CommandContext ctx)
    {
        try
        {
            if (ctx.SendData)
            {
                // Ascending offsets, no padding, LAST_PDU on the final PDU, never SUCCESS: the CapsuleResp follows.
                int chunk = _options.MaxC2HDataPduLength;
                int dd = PduWriter.DataDigestLength(_digests);
                for (int offset = 0; offset < ctx.Length; offset += chunk)
                {
                    int n = Math.Min(chunk, ctx.Length - offset);
                    bool last = offset + n == ctx.Length;
                    var data = ctx.Data.Slice(offset, n);
                    int headerLength = PduWriter.DataPduHeaderLength(_digests);
                    await EnsureSpaceAsync(headerLength).ConfigureAwait(false);
                    _sendCount += PduWriter.WriteDataPduHeader(_sendBuffer.AsSpan(_sendCount), PduType.C2HData,
                        ctx.Command.CommandId, 0, (uint)offset, n, last, _digests);
                    if (n + dd <= _sendBuffer.Length - _sendCount)
                    {
                        data.Span.CopyTo(_sendBuffer.AsSpan(_sendCount));
                        _sendCount += n;
                    }
                    else
                    {
                        // Large data goes straight from the command buffer, after what is already queued.
                        await FlushSendBufferAsync().ConfigureAwait(false);
                        await SendAllAsync(data).ConfigureAwait(false);
                    }
                    if (dd != 0)
                    {
                        await EnsureSpaceAsync(dd).ConfigureAwait(false);
                        Crc32C.WriteDigest(data.Span, _sendBuffer.AsSpan(_sendCount));
                        _sendCount += dd;
                    }
                }
            }
            await EnsureSpaceAsync(PduWriter.CapsuleRespLength(_digests)).ConfigureAwait(false);
            _sendCount += PduWriter.WriteCapsuleResp(_sendBuffer.AsSpan(_sendCount), ctx.Response, _digests);
        }
        finally
        {
            // Everything of this command is either on the wire or copied into the send buffer.
            Release(ctx);
        }
    }

    private ValueTask EnsureSpaceAsync(int bytes) =>
        _sendBuffer.Length - _sendCount >= bytes ? ValueTask.CompletedTask : FlushSendBufferAsync();

    private async ValueTask FlushSendBufferAsync()
    {
        if (_sendCount == 0)
            return;
        await SendAllAsync(_sendBuffer.AsMemory(0, _sendCount)).ConfigureAwait(false);
        _sendCount = 0;
    }

    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            int sent = await _socket.SendAsync(data, SocketFlags.None, _closing.Token).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    // ---------------------------------------------------------------- command contexts

    /// <summary>A free context, or null when <paramref name="queueDepth"/> commands are outstanding already.</summary>
    private CommandContext? AcquireContext(int queueDepth)
    {
        lock (_contextLock)
        {
            if (_inUse >= queueDepth)
                return null;
            if (!_freeContexts.TryPop(out var ctx))
            {
                // queueDepth ≤ MaxOutstandingCommands, so there are never more contexts (transfer tags) than that.
                ctx = new CommandContext(this, _contexts.Count);
                _contexts.Add(ctx);
            }
            _inUse++;
            return ctx;
        }
    }

    private void Release(CommandContext ctx)
    {
        long budgeted = ctx.BudgetedBytes;
        ctx.BudgetedBytes = 0;
        ctx.ReturnBuffer();
        ctx.State = CommandState.Free;
        ctx.TransportStatus = null;
        ctx.Pending = default;
        lock (_contextLock)
        {
            _freeContexts.Push(ctx);
            _inUse--;
        }
        if (budgeted != 0)
        {
            Interlocked.Add(ref _bufferedBytes, -budgeted);
            // Wake the process loop so a command waiting for buffer space gets it (harmless if it is not waiting).
            if (Volatile.Read(ref _waitingForBuffer) != 0 && !IsAborted)
                _input.Reader.CancelPendingRead();
        }
    }

    /// <summary>After all loops stopped: return the buffers of commands that will never be sent.</summary>
    private void ReleaseAfterClose()
    {
        while (_outbound.Reader.TryRead(out var item))
        {
            if (item.Kind == OutboundKind.Response)
                Release(item.Context!);
        }
        lock (_contextLock)
        {
            foreach (var ctx in _contexts)
            {
                // Executing commands release themselves when the handler completes them (OnExecuted cannot queue
                // anymore); their buffers must not be returned while the handler may still write to them.
                if (ctx.State is CommandState.AwaitingData or CommandState.Ready or CommandState.WaitingForBuffer)
                    ctx.ReturnBuffer();
            }
        }
        if (_sendBuffer.Length != 0)
            ArrayPool<byte>.Shared.Return(_sendBuffer);
        _closing.Dispose();
    }

    private static DataDirection DirectionOf(in SubmissionQueueEntry sqe)
    {
        // Opcode bits 1:0 give the data direction; Fabrics commands encode it in FCTYPE bits 1:0 instead.
        int bits = sqe.Opcode == AdminOpcode.Fabrics ? sqe.FabricsCommandType & 3 : sqe.Opcode & 3;
        return (DataDirection)bits;
    }

    private enum DataDirection : byte
    {
        None = 0,
        HostToController = 1,
        ControllerToHost = 2,
        Bidirectional = 3,
    }

    private enum CommandState : byte
    {
        Free,
        WaitingForBuffer,
        AwaitingData,
        Ready,
        Executing,
        Sending,
    }

    private enum OutboundKind : byte
    {
        IcResp,
        R2T,
        Response,
        TermReq,
    }

    private readonly record struct Outbound(OutboundKind Kind, CommandContext? Context);

    /// <summary>State of one outstanding command; pooled per connection, its index is the R2T TTAG.</summary>
    private sealed class CommandContext
    {
        // Small data buffers stay with the context between commands: ArrayPool.Shared keeps only a few dozen
        // arrays per size per core, so at 100+ outstanding 4 KiB commands most rents missed and allocated.
        private const int KeptBufferLength = 16 * 1024;

        private readonly NvmeTcpConnection _owner;
        private byte[]? _buffer;
        private byte[]? _kept;

        public CommandContext(NvmeTcpConnection owner, int index)
        {
            _owner = owner;
            Index = index;
            // Cached once so awaiting an asynchronous completion allocates no delegate.
            ExecutionCompletedCallback = OnExecutionCompleted;
        }

        public int Index { get; }
        public SubmissionQueueEntry Command;
        public CompletionQueueEntry Response;
        public DataDirection Direction;
        public volatile CommandState State;
        public int Length;
        public int Received;
        public long BudgetedBytes;
        public bool SendData;
        public NvmeStatus? TransportStatus;
        public ValueTask<CompletionQueueEntry> Pending;
        public Memory<byte> Data;
        public readonly Action ExecutionCompletedCallback;

        public void SetBuffer(int length)
        {
            Length = length;
            if (length == 0)
            {
                Data = Memory<byte>.Empty;
                return;
            }
            if (_kept is { } kept && kept.Length >= length)
            {
                _kept = null;
                _buffer = kept;
            }
            else
            {
                _buffer = ArrayPool<byte>.Shared.Rent(length);
            }
            Data = _buffer.AsMemory(0, length);
        }

        /// <summary>Records the data length of a command whose buffer is allocated later (when it is granted).</summary>
        public void SetPendingLength(int length)
        {
            Length = length;
            Data = Memory<byte>.Empty;
        }

        public void ReturnBuffer()
        {
            if (_buffer is { } b)
            {
                _buffer = null;
                if (_kept is null && b.Length <= KeptBufferLength)
                    _kept = b;
                else
                    ArrayPool<byte>.Shared.Return(b);
            }
            Data = Memory<byte>.Empty;
            Length = 0;
        }

        private void OnExecutionCompleted()
        {
            var completed = Pending;
            Pending = default;
            if (_owner.IsAborted)
            {
                try { _ = completed.Result; } catch { /* the connection is gone; nobody can be told */ }
                _owner.Release(this);
                return;
            }
            _owner.OnExecuted(this, completed);
        }
    }
}

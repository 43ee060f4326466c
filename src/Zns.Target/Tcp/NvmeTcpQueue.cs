using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;

namespace Zns.Target.Tcp;

/// <summary>
/// The NVMe/TCP protocol of one connection (one NVMe queue) on the controller side, over a pair of pipes and no
/// socket: ICReq/ICResp, command capsules with in-capsule or R2T-solicited data, digests, C2HTermReq on broken
/// PDUs, and the timeouts of a connection that never completes its Fabrics Connect.
/// </summary>
/// <remarks>
/// One loop reads whole PDUs from the input, and for each receive batch parses, executes (through
/// <see cref="CommandDispatcher"/>) and writes the responses (through <see cref="ResponseWriter"/>), then flushes
/// once: a synchronous command runs to completion on the receiving thread, and the responses of a batch share one
/// send. In-capsule write data goes to the handler straight from the receive buffer when the command can execute at
/// once. Command state lives in pooled <see cref="CommandContext"/> objects (<see cref="CommandSlots"/>); buffers for
/// R2T writes and reads come out of the connection's <see cref="DataBudget"/>. Steady-state I/O allocates nothing
/// unless the handler completes asynchronously with a <see cref="Task"/>-backed <see cref="ValueTask{T}"/>.
/// <see cref="NvmeTcpListener"/> runs one per accepted socket over a <see cref="SocketPipeConnection"/>; tests and
/// benchmarks run it over in-memory pipes.
/// </remarks>
/// <example>
/// <code>
/// var toTarget = new Pipe(); var fromTarget = new Pipe();
/// IDuplexPipe pipes = ...; // Input = toTarget.Reader, Output = fromTarget.Writer
/// var queue = new NvmeTcpQueue(pipes, "in-memory",
///     () => toTarget.Writer.Complete(), new TargetTransportOptions(), target, NullLogger.Instance);
/// Task serving = queue.RunAsync(); // write PDUs to toTarget.Writer, read PDUs from fromTarget.Reader
/// </code>
/// </example>
public sealed class NvmeTcpQueue : IQueueTransport, IThreadPoolWorkItem
{
    /// <summary>Responses written but not flushed beyond which the loop flushes before going on, so a batch of
    /// large reads waits for the host instead of piling up in memory.</summary>
    private const int FlushThreshold = TargetTransportOptions.SendPauseThreshold / 4;

    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly Action _abortTransport;
    private readonly Action? _queueConnectedCallback;
    private readonly TargetTransportOptions _options;
    private readonly IQueueHandlerFactory _factory;
    private readonly ILogger _logger;
    private readonly ResponseWriter _responses;
    private readonly CommandSlots _slots;
    private readonly DataBudget _budget;
    private readonly CommandDispatcher _dispatcher;

    private IQueueHandler? _handler;
    private DigestOptions _digests;
    private bool _initialized;
    private volatile bool _queueConnected;
    private int _aborted;
    private int _wakeQueued;
    private string _closeReason = "connection closed";
    private byte[]? _termReq;
    private byte[]? _assembly;

    /// <param name="transport">Bytes from the host, and where the bytes for the host go.</param>
    /// <param name="remoteEndPoint">The peer, for logs.</param>
    /// <param name="abortTransport">Closes the underlying connection (both pipe ends end soon after).</param>
    /// <param name="options">Transport limits.</param>
    /// <param name="factory">Creates the NVMe side at ICReq.</param>
    /// <param name="logger">Transport log.</param>
    /// <param name="queueConnected">Told once the controller has connected the queue (the host is known from then
    /// on), so the transport may give it larger receive buffers.</param>
    public NvmeTcpQueue(IDuplexPipe transport, string remoteEndPoint, Action abortTransport, TargetTransportOptions options,
        IQueueHandlerFactory factory, ILogger logger, Action? queueConnected = null)
    {
        _queueConnectedCallback = queueConnected;
        _input = transport.Input;
        _output = transport.Output;
        _abortTransport = abortTransport;
        _options = options;
        Traits = TransportTraits.Fabric(options.MaxInCapsuleDataLength);
        _factory = factory;
        _logger = logger;
        RemoteEndPoint = remoteEndPoint;
        _responses = new ResponseWriter(_output, options);
        _slots = new CommandSlots((ctx, synchronously) => _dispatcher!.OnCompleted(ctx, synchronously));
        _budget = new DataBudget(options.MaxBufferedDataBytes);
        _dispatcher = new CommandDispatcher(Respond, Wake, MayExecute, logger, remoteEndPoint);
    }

    /// <inheritdoc/>
    public string RemoteEndPoint { get; }

    /// <summary>Parser settings for the current connection state.</summary>
    private PduParserOptions ParserOptions => new(PduDirection.HostToController, _initialized, _digests,
        _options.MaxInCapsuleDataLength, _options.MaxH2CData);

    private bool IsAborted => Volatile.Read(ref _aborted) != 0;

    /// <inheritdoc/>
    public void Abort(string reason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
            return;
        _closeReason = reason;
        _abortTransport();
        Wake();
    }

    /// <inheritdoc/>
    public TransportTraits Traits { get; }

    /// <inheritdoc/>
    public void OnQueueConnected(ushort queueId)
    {
        _queueConnected = true;
        _queueConnectedCallback?.Invoke();
    }

    /// <summary>Serves the queue until the connection closes. Never throws.</summary>
    public async Task RunAsync()
    {
        CancellationTokenRegistration icTimeout = default;
        var icTimer = new CancellationTokenSource(_options.InitializationTimeout);
        try
        {
            // A connection must complete ICReq and a successful Fabrics Connect within the initialization timeout;
            // after that the controller's keep-alive timer watches it. This bounds how long a silent, half-open or
            // stalled connection holds its resources.
            icTimeout = icTimer.Token.Register(static s =>
            {
                var q = (NvmeTcpQueue)s!;
                if (!q._queueConnected)
                    q.Abort(q._initialized ? "no Fabrics Connect within the initialization timeout" : "no ICReq within the initialization timeout");
            }, this);
            await ProcessAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or InvalidOperationException && IsAborted)
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
                await LingerAfterTermReqAsync().ConfigureAwait(false);
            Abort(_closeReason);
            try { _handler?.Dispose(); }
            catch (Exception e) { TransportLog.UnexpectedFailure(_logger, RemoteEndPoint, e); }
            ReleaseAfterClose();
            await _output.CompleteAsync().ConfigureAwait(false);
            await _input.CompleteAsync().ConfigureAwait(false);
            TransportLog.Closed(_logger, RemoteEndPoint, _closeReason);
        }
    }

    // ---------------------------------------------------------------- receive batches

    private async Task ProcessAsync()
    {
        while (true)
        {
            var result = await _input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            bool stop = IsAborted;
            try
            {
                // Woken by a command completed on another thread, or a batch that stopped for a flush.
                if (!stop)
                    stop = !await AdvanceCommandsAsync().ConfigureAwait(false);
                while (!stop)
                {
                    var status = PduParser.TryParse(buffer, ParserOptions, out var pdu, out var error);
                    if (status == PduParseStatus.NeedMoreData)
                        break;
                    if (status == PduParseStatus.Fatal)
                    {
                        Terminate(error, buffer);
                        break;
                    }
                    stop = !HandlePdu(ref pdu, buffer.Slice(0, pdu.Length));
                    buffer = buffer.Slice(pdu.Length);
                    if (!stop && _responses.Unflushed >= FlushThreshold)
                        stop = !await FlushAsync().ConfigureAwait(false);
                }
                if (!stop)
                    stop = !await AdvanceCommandsAsync().ConfigureAwait(false);
            }
            finally
            {
                _input.AdvanceTo(buffer.Start, buffer.End);
            }
            if (_termReq is not null)
            {
                _responses.WriteTermReq(_termReq);
                await FlushAsync().ConfigureAwait(false);
                // Completing the output sends what is queued and half-closes.
                await _output.CompleteAsync().ConfigureAwait(false);
                return;
            }
            // One send for everything this batch produced.
            if (!await FlushAsync().ConfigureAwait(false) || stop || IsAborted)
                return;
            if (result.IsCompleted)
            {
                _closeReason = buffer.IsEmpty ? "host closed the connection" : "host closed the connection inside a PDU";
                return;
            }
        }
    }

    /// <summary>
    /// Answers commands completed elsewhere, gives waiting commands their buffers and executes what is ready, until
    /// nothing moves. Returns false when the connection must stop.
    /// </summary>
    private async ValueTask<bool> AdvanceCommandsAsync()
    {
        while (true)
        {
            int progress = _dispatcher.DrainCompleted() + GrantBuffers() + _dispatcher.RunReady();
            if (IsAborted)
                return false;
            if (_responses.Unflushed >= FlushThreshold)
            {
                if (!await FlushAsync().ConfigureAwait(false))
                    return false;
                continue;
            }
            if (progress == 0)
                return true;
        }
    }

    /// <summary>Hands the written responses to the socket side. False when it is gone.</summary>
    private async ValueTask<bool> FlushAsync()
    {
        if (_responses.Unflushed == 0)
            return true;
        var flush = await _responses.FlushAsync().ConfigureAwait(false);
        return !flush.IsCompleted && !flush.IsCanceled;
    }

    private bool MayExecute() => !IsAborted && _termReq is null && _responses.Unflushed < FlushThreshold;

    // ---------------------------------------------------------------- PDUs

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
        _dispatcher.Handler = _handler;
        _initialized = true;
        TransportLog.Initialized(_logger, RemoteEndPoint, _digests, pdu.MaxR2T);
        _responses.UseDigests(_digests);
        _responses.WriteIcResp();
        return true;
    }

    private bool HandleCapsule(in Pdu pdu, in ReadOnlySequence<byte> bytes)
    {
        var handler = _handler!;
        int queueDepth = _options.MaxOutstandingCommands is int cap ? Math.Min(handler.QueueDepth, cap) : handler.QueueDepth;
        var ctx = _slots.Acquire(queueDepth);
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
        // The one command data table says which way the data moves; the SGL says how much the host sends.
        ctx.Direction = handler.TransferOf(in sqe).Direction;
        int inCapsule = pdu.DataLength;

        if (CapsuleRules.ValidateSgl(sqe, ctx.Direction, inCapsule, handler.MaxDataLength) is { } reject)
        {
            // In-capsule data of a rejected command is simply skipped with the PDU.
            TransportLog.CommandRejected(_logger, RemoteEndPoint, sqe.CommandId, reject.ToString());
            _dispatcher.RespondWithStatus(ctx, reject);
            return true;
        }

        int length = CapsuleRules.DataLength(sqe, ctx.Direction);
        if (pdu.DataDigestMismatch)
        {
            TransportLog.DataDigestError(_logger, RemoteEndPoint, sqe.CommandId);
            ctx.TransportStatus = NvmeTcp.TransientTransportError;
        }

        bool executesNow = _dispatcher.IsIdle;
        _dispatcher.Enqueue(ctx);
        if (inCapsule > 0)
        {
            // Already received with the capsule (at most MaxInCapsuleDataLength). A command that executes now reads
            // it where it lies; one that waits behind others gets its own copy.
            var data = bytes.Slice(pdu.DataStart, inCapsule);
            if (executesNow)
            {
                ctx.BorrowReceiveBuffer(data.IsSingleSegment ? MemoryMarshal.AsMemory(data.First) : Assemble(data));
            }
            else
            {
                // Not counted in the data budget: budget held by a later command could starve an earlier one
                // waiting for it. At most MaxInCapsuleDataLength per outstanding command.
                ctx.SetBuffer(length);
                data.CopyTo(ctx.Data.Span);
            }
            ctx.State = CommandState.Ready;
        }
        else if (length > 0)
        {
            // An R2T write or a read: its buffer comes out of the connection's data budget, in arrival order.
            ctx.SetPendingLength(length);
            _budget.Wait(ctx);
            GrantBuffers();
        }
        else
        {
            ctx.SetBuffer(0);
            ctx.State = CommandState.Ready;
        }
        _dispatcher.RunReady();
        return true;
    }

    /// <summary>
    /// In-capsule data that spans receive segments, made contiguous in the connection's one assembly buffer for a
    /// command that executes now (the handler consumes it before it returns, as it does the receive buffer).
    /// </summary>
    private Memory<byte> Assemble(in ReadOnlySequence<byte> data)
    {
        int length = (int)data.Length;
        if (_assembly is null || _assembly.Length < length)
        {
            if (_assembly is not null)
                ArrayPool<byte>.Shared.Return(_assembly);
            _assembly = ArrayPool<byte>.Shared.Rent(length);
        }
        data.CopyTo(_assembly);
        return _assembly.AsMemory(0, length);
    }

    /// <summary>
    /// Gives waiting commands their data buffers, oldest first, within the budget. Writes then get their R2T, reads
    /// become ready. Returns how many were granted.
    /// </summary>
    private int GrantBuffers()
    {
        int granted = 0;
        while (_budget.TryGrantNext() is { } ctx)
        {
            granted++;
            if (ctx.Direction == DataDirection.HostToController)
            {
                ctx.Received = 0;
                ctx.State = CommandState.AwaitingData;
                _responses.WriteR2T(ctx);
            }
            else
            {
                ctx.State = CommandState.Ready;
            }
        }
        return granted;
    }

    private bool HandleH2CData(in Pdu pdu, in ReadOnlySequence<byte> bytes)
    {
        var ctx = _slots.FindByTransferTag(pdu.TransferTag);
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
            _dispatcher.RunReady();
        }
        return true;
    }

    // ---------------------------------------------------------------- responses and teardown

    /// <summary>Writes a finished command's response and frees its slot and budget. Loop only.</summary>
    private void Respond(CommandContext ctx)
    {
        _responses.WriteResponse(ctx);
        _budget.Release(ctx);
        _slots.Release(ctx);
    }

    /// <summary>Prepares a C2HTermReq echoing the offending header; the loop sends it last and the connection closes.</summary>
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
    }

    /// <summary>
    /// Discards what the host still sends for a while after a C2HTermReq: closing with unread input would make the
    /// kernel send a RST that can overtake the TermReq.
    /// </summary>
    private async Task LingerAfterTermReqAsync()
    {
        using var linger = new CancellationTokenSource(_options.TerminationLinger);
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync(linger.Token).ConfigureAwait(false);
                _input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                    break;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    /// <summary>After the loop stopped: return the buffers of commands that will never be answered.</summary>
    private void ReleaseAfterClose()
    {
        if (_assembly is not null)
        {
            ArrayPool<byte>.Shared.Return(_assembly);
            _assembly = null;
        }
        foreach (var ctx in _dispatcher.Close())
            ctx.ReturnBuffer();
        foreach (var ctx in _slots.All)
        {
            // Executing commands return their buffer when the handler completes them; it may still write to it.
            if (ctx.State is CommandState.AwaitingData or CommandState.Ready or CommandState.WaitingForBuffer)
                ctx.ReturnBuffer();
        }
    }

    /// <summary>Wakes the loop from another thread (a completion, an abort), never inline on the caller's stack.</summary>
    private void Wake()
    {
        if (Interlocked.Exchange(ref _wakeQueued, 1) == 0)
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    /// <summary>Wake-up work item (see <see cref="Wake"/>).</summary>
    void IThreadPoolWorkItem.Execute()
    {
        Volatile.Write(ref _wakeQueued, 0);
        try { _input.CancelPendingRead(); }
        catch (InvalidOperationException) { /* the loop is finished */ }
    }
}

using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Zns.Nvme;
using Zns.Protocol;

namespace Zns.TestKit;

/// <summary>
/// A small NVMe/TCP host: one connection = one NVMe queue. Does ICReq/ICResp, Fabrics Connect, Property Get/Set and
/// any command with in-capsule or R2T-solicited write data and C2HData read data, with many commands outstanding.
/// </summary>
/// <remarks>
/// Behaves like the Linux host where it matters: FLAGS 0x40 (SGL) on every command, in-capsule data up to
/// <see cref="NvmeTcpInitiatorOptions.InlineDataLength"/> with SGL 01h, otherwise SGL 5Ah and H2CData PDUs of at most
/// MAXH2CDATA bytes with LAST_PDU on the final one, digests on every PDU when negotiated. It also checks what the
/// controller sends (R2T bounds, C2HData bounds, CQE CIDs) and fails the connection on violations.
/// </remarks>
public sealed class NvmeTcpInitiator : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NvmeTcpInitiatorOptions _options;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Dictionary<ushort, PendingCommand> _pending = new();
    private readonly TaskCompletionSource<TermReqInfo> _termReq = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _disposing = new();
    private PipeReader? _reader;
    private Task _receiveLoop = Task.CompletedTask;
    private ushort _nextCommandId;
    private Exception? _failure;

    private NvmeTcpInitiator(Socket socket, NvmeTcpInitiatorOptions options)
    {
        _socket = socket;
        _options = options;
    }

    /// <summary>Digests negotiated.</summary>
    public DigestOptions Digests { get; private set; }

    /// <summary>MAXH2CDATA from ICResp.</summary>
    public int MaxH2CData { get; private set; }

    /// <summary>The parsed ICResp.</summary>
    public Pdu IcResp { get; private set; }

    /// <summary>The 128 bytes of ICResp as received.</summary>
    public byte[] IcRespBytes { get; private set; } = [];

    /// <summary>CNTLID returned by <see cref="ConnectAdminQueueAsync"/> (or passed to <see cref="ConnectIoQueueAsync"/>).</summary>
    public ushort ControllerId { get; private set; } = 0xFFFF;

    /// <summary>Completes when the controller sends a C2HTermReq.</summary>
    public Task<TermReqInfo> TermReqReceived => _termReq.Task;

    /// <summary>Completes when the connection has ended (closed by either side or failed).</summary>
    public Task Closed => _closed.Task;

    /// <summary>Number of commands submitted and not completed.</summary>
    public int OutstandingCommands { get { lock (_pending) return _pending.Count; } }

    /// <summary>Opens a TCP connection and performs ICReq/ICResp.</summary>
    public static async Task<NvmeTcpInitiator> ConnectAsync(EndPoint endPoint, NvmeTcpInitiatorOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new NvmeTcpInitiatorOptions();
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var initiator = new NvmeTcpInitiator(socket, options);
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            await initiator.InitializeAsync(cancellationToken).ConfigureAwait(false);
            return initiator;
        }
        catch
        {
            await initiator.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Connects with the given digests and otherwise default options.</summary>
    public static Task<NvmeTcpInitiator> ConnectAsync(EndPoint endPoint, DigestOptions digests, CancellationToken cancellationToken = default) =>
        ConnectAsync(endPoint, new NvmeTcpInitiatorOptions { Digests = digests }, cancellationToken);

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var icReq = new byte[NvmeTcp.IcPduSize];
        PduWriter.WriteIcReq(icReq, _options.Digests, _options.Hpda);
        await _socket.SendAsync(icReq, SocketFlags.None, cancellationToken).ConfigureAwait(false);

        _reader = PipeReader.Create(new NetworkStream(_socket, ownsSocket: false));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.Timeout);
        var parserOptions = new PduParserOptions(PduDirection.ControllerToHost, false, DigestOptions.None, 0, _options.MaxC2HDataPduLength);
        while (true)
        {
            var result = await _reader.ReadAsync(timeout.Token).ConfigureAwait(false);
            var buffer = result.Buffer;
            var status = PduParser.TryParse(buffer, parserOptions, out var pdu, out var error);
            if (status == PduParseStatus.Fatal)
                throw new NvmeTcpTransportException($"Bad ICResp: {error}");
            if (status == PduParseStatus.Complete)
            {
                var bytes = buffer.Slice(0, pdu.Length).ToArray();
                _reader.AdvanceTo(buffer.GetPosition(pdu.Length));
                if (pdu.Type == PduType.C2HTermReq)
                {
                    var info = new TermReqInfo(pdu.FatalStatus, pdu.FatalInformation, bytes[pdu.DataStart..]);
                    _termReq.TrySetResult(info);
                    throw new NvmeTcpTransportException($"Controller refused ICReq: FES {info.Status}, FEI {info.Information}", info);
                }
                if (pdu.Digests != _options.Digests)
                    throw new NvmeTcpTransportException($"Digest mismatch: requested {_options.Digests}, controller {pdu.Digests}");
                if (pdu.DataAlignment != 0)
                    throw new NvmeTcpTransportException($"Unsupported CPDA {pdu.DataAlignment}");
                IcResp = pdu;
                IcRespBytes = bytes;
                Digests = pdu.Digests;
                MaxH2CData = (int)Math.Min(pdu.MaxH2CData, int.MaxValue);
                break;
            }
            _reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
                throw new NvmeTcpTransportException("Connection closed before ICResp");
        }
        _receiveLoop = ReceiveLoopAsync();
    }

    // ------------------------------------------------------------------ commands

    /// <summary>
    /// Submits one command and returns its completion. A CID is assigned (overwriting the SQE's). Pass
    /// <paramref name="writeData"/> for host-to-controller commands or <paramref name="readBuffer"/> for
    /// controller-to-host ones; SGL1 and FLAGS are filled accordingly unless <see cref="SubmitOptions.PreserveSgl"/>.
    /// </summary>
    public async Task<CompletionQueueEntry> SubmitAsync(SubmissionQueueEntry command, ReadOnlyMemory<byte> writeData = default,
        Memory<byte> readBuffer = default, SubmitOptions options = default, CancellationToken cancellationToken = default)
    {
        bool inCapsule = writeData.Length > 0 && (options.InCapsule ?? writeData.Length <= _options.InlineDataLength);
        if (!options.PreserveSgl)
        {
            command.SetFlags(NvmeTcp.SqeFlagsSgl);
            if (writeData.Length > 0)
                command.SetSgl(0, (uint)writeData.Length, inCapsule ? NvmeTcp.SglInCapsuleData : NvmeTcp.SglTransportDataBlock);
            else
                command.SetSgl(0, (uint)readBuffer.Length, NvmeTcp.SglTransportDataBlock);
        }

        var pending = new PendingCommand(writeData, readBuffer, inCapsule);
        lock (_pending)
        {
            if (_failure is not null)
                throw new NvmeTcpTransportException("The connection has failed.", TermReqReceived.IsCompletedSuccessfully ? TermReqReceived.Result : null);
            if (_pending.Count >= ushort.MaxValue)
                throw new InvalidOperationException("Too many outstanding commands.");
            while (_pending.ContainsKey(_nextCommandId))
                _nextCommandId++;
            pending.CommandId = _nextCommandId++;
            _pending.Add(pending.CommandId, pending);
        }
        command.SetCommandId(pending.CommandId);

        int length = PduWriter.CapsuleCmdLength(inCapsule ? writeData.Length : 0, Digests);
        var pdu = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            PduWriter.WriteCapsuleCmd(pdu, command, inCapsule ? writeData.Span : default, Digests);
            await SendAsync(pdu.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Fail(e);
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(pdu);
        }
        return await pending.Completion.Task.WaitAsync(_options.Timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Fabrics Connect for the admin queue (QID 0, CNTLID FFFFh); remembers the CNTLID returned.</summary>
    public async Task<CompletionQueueEntry> ConnectAdminQueueAsync(string subsystemNqn, string hostNqn, Guid hostId,
        ushort sqSize = 31, uint keepAliveTimeoutMs = 0, CancellationToken cancellationToken = default)
    {
        var cqe = await FabricsConnectAsync(0, sqSize, 0xFFFF, subsystemNqn, hostNqn, hostId, keepAliveTimeoutMs, cancellationToken).ConfigureAwait(false);
        if (cqe.Status.IsSuccess)
            ControllerId = (ushort)cqe.Result;
        return cqe;
    }

    /// <summary>Fabrics Connect for I/O queue <paramref name="queueId"/> of controller <paramref name="controllerId"/>.</summary>
    public Task<CompletionQueueEntry> ConnectIoQueueAsync(ushort queueId, ushort controllerId, string subsystemNqn, string hostNqn,
        Guid hostId, ushort sqSize = 127, CancellationToken cancellationToken = default)
    {
        ControllerId = controllerId;
        return FabricsConnectAsync(queueId, sqSize, controllerId, subsystemNqn, hostNqn, hostId, 0, cancellationToken);
    }

    /// <summary>Fabrics Connect with every field given.</summary>
    public Task<CompletionQueueEntry> FabricsConnectAsync(ushort queueId, ushort sqSize, ushort controllerId, string subsystemNqn,
        string hostNqn, Guid hostId, uint keepAliveTimeoutMs, CancellationToken cancellationToken = default)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.Fabrics);
        sqe.Bytes[4] = FabricsCommandType.Connect;
        sqe.SetCdw(10, (uint)queueId << 16);          // RECFMT 0, QID
        sqe.SetCdw(11, sqSize);                        // SQSIZE (0's based), CATTR 0
        sqe.SetCdw(12, keepAliveTimeoutMs);
        return SubmitAsync(sqe, BuildConnectData(subsystemNqn, hostNqn, hostId, controllerId), cancellationToken: cancellationToken);
    }

    /// <summary>The 1024-byte Connect data: HOSTID, CNTLID, SUBNQN at 256, HOSTNQN at 512.</summary>
    public static byte[] BuildConnectData(string subsystemNqn, string hostNqn, Guid hostId, ushort controllerId)
    {
        var data = new byte[1024];
        hostId.TryWriteBytes(data.AsSpan(0, 16), bigEndian: true, out _);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(16), controllerId);
        Encoding.ASCII.GetBytes(subsystemNqn, data.AsSpan(256, 255));
        Encoding.ASCII.GetBytes(hostNqn, data.AsSpan(512, 255));
        return data;
    }

    /// <summary>Property Get; the value is in the CQE result (DW0, and DW1 for 8-byte properties).</summary>
    public Task<CompletionQueueEntry> PropertyGetAsync(uint offset, bool eightBytes, CancellationToken cancellationToken = default)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.Fabrics);
        sqe.Bytes[4] = FabricsCommandType.PropertyGet;
        sqe.SetCdw(10, eightBytes ? 1u : 0u);
        sqe.SetCdw(11, offset);
        return SubmitAsync(sqe, cancellationToken: cancellationToken);
    }

    /// <summary>Property Set.</summary>
    public Task<CompletionQueueEntry> PropertySetAsync(uint offset, ulong value, bool eightBytes = false, CancellationToken cancellationToken = default)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.Fabrics);
        sqe.Bytes[4] = FabricsCommandType.PropertySet;
        sqe.SetCdw(10, eightBytes ? 1u : 0u);
        sqe.SetCdw(11, offset);
        BinaryPrimitives.WriteUInt64LittleEndian(sqe.Bytes[48..], value);
        return SubmitAsync(sqe, cancellationToken: cancellationToken);
    }

    /// <summary>Identify into <paramref name="buffer"/> (normally 4096 bytes).</summary>
    public Task<CompletionQueueEntry> IdentifyAsync(byte cns, uint namespaceId, Memory<byte> buffer, byte csi = 0, ushort controllerId = 0,
        CancellationToken cancellationToken = default)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.Identify);
        sqe.SetNamespaceId(namespaceId);
        sqe.SetCdw(10, cns | ((uint)controllerId << 16));
        sqe.SetCdw(11, (uint)csi << 24);
        return SubmitAsync(sqe, readBuffer: buffer, cancellationToken: cancellationToken);
    }

    /// <summary>Set Features with CDW11 = <paramref name="value"/>.</summary>
    public Task<CompletionQueueEntry> SetFeaturesAsync(byte featureId, uint value, CancellationToken cancellationToken = default)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.SetFeatures);
        sqe.SetCdw(10, featureId);
        sqe.SetCdw(11, value);
        return SubmitAsync(sqe, cancellationToken: cancellationToken);
    }

    /// <summary>Keep Alive.</summary>
    public Task<CompletionQueueEntry> KeepAliveAsync(CancellationToken cancellationToken = default)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.KeepAlive);
        return SubmitAsync(sqe, cancellationToken: cancellationToken);
    }

    /// <summary>Read of <paramref name="blockCount"/> logical blocks into <paramref name="buffer"/> (its length is the transfer size).</summary>
    public Task<CompletionQueueEntry> ReadAsync(uint namespaceId, ulong startLba, int blockCount, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        SubmitAsync(IoCommand(IoOpcode.Read, namespaceId, startLba, blockCount), readBuffer: buffer, cancellationToken: cancellationToken);

    /// <summary>Write of <paramref name="blockCount"/> logical blocks.</summary>
    public Task<CompletionQueueEntry> WriteAsync(uint namespaceId, ulong startLba, int blockCount, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        SubmitAsync(IoCommand(IoOpcode.Write, namespaceId, startLba, blockCount), data, cancellationToken: cancellationToken);

    /// <summary>Zone Append to the zone starting at <paramref name="zoneStartLba"/>; ALBA is the CQE result.</summary>
    public Task<CompletionQueueEntry> ZoneAppendAsync(uint namespaceId, ulong zoneStartLba, int blockCount, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        SubmitAsync(IoCommand(IoOpcode.ZoneAppend, namespaceId, zoneStartLba, blockCount), data, cancellationToken: cancellationToken);

    /// <summary>Zone Management Send (action: 1 Close, 2 Finish, 3 Open, 4 Reset, 5 Offline).</summary>
    public Task<CompletionQueueEntry> ZoneManagementSendAsync(uint namespaceId, ulong zoneStartLba, byte action, bool selectAll = false,
        CancellationToken cancellationToken = default)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(IoOpcode.ZoneManagementSend);
        sqe.SetNamespaceId(namespaceId);
        sqe.SetCdw10_11(zoneStartLba);
        sqe.SetCdw(13, action | (selectAll ? 1u << 8 : 0u));
        return SubmitAsync(sqe, cancellationToken: cancellationToken);
    }

    /// <summary>Zone Management Receive (Report Zones by default) into <paramref name="buffer"/> (a multiple of 4 bytes).</summary>
    public Task<CompletionQueueEntry> ZoneManagementReceiveAsync(uint namespaceId, ulong startLba, Memory<byte> buffer, byte action = 0,
        byte reportFilter = 0, bool partial = false, CancellationToken cancellationToken = default)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(IoOpcode.ZoneManagementReceive);
        sqe.SetNamespaceId(namespaceId);
        sqe.SetCdw10_11(startLba);
        sqe.SetCdw(12, (uint)(buffer.Length / 4 - 1));
        sqe.SetCdw(13, action | ((uint)reportFilter << 8) | (partial ? 1u << 16 : 0u));
        return SubmitAsync(sqe, readBuffer: buffer, cancellationToken: cancellationToken);
    }

    /// <summary>An I/O command SQE with SLBA in CDW10-11 and NLB (0's based) in CDW12.</summary>
    public static SubmissionQueueEntry IoCommand(byte opcode, uint namespaceId, ulong startLba, int blockCount)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(opcode);
        sqe.SetNamespaceId(namespaceId);
        sqe.SetCdw10_11(startLba);
        sqe.SetCdw(12, (uint)(blockCount - 1) & 0xFFFF);
        return sqe;
    }

    // ------------------------------------------------------------------ raw access

    /// <summary>Sends arbitrary bytes (whole or partial PDUs), serialized with the initiator's own sends.</summary>
    public Task SendRawAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default) => SendAsync(bytes, cancellationToken);

    /// <summary>Closes the connection from the host side.</summary>
    public void Close()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        _socket.Dispose();
    }

    private async Task SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (!bytes.IsEmpty)
            {
                int sent = await _socket.SendAsync(bytes, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                bytes = bytes[sent..];
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    // ------------------------------------------------------------------ receive

    private async Task ReceiveLoopAsync()
    {
        var reader = _reader!;
        var parserOptions = new PduParserOptions(PduDirection.ControllerToHost, true, Digests, 0, _options.MaxC2HDataPduLength);
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_disposing.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                try
                {
                    while (true)
                    {
                        var status = PduParser.TryParse(buffer, parserOptions, out var pdu, out var error);
                        if (status == PduParseStatus.NeedMoreData)
                            break;
                        if (status == PduParseStatus.Fatal)
                            throw new NvmeTcpTransportException($"Controller sent a malformed PDU: {error}");
                        Handle(in pdu, buffer.Slice(0, pdu.Length));
                        buffer = buffer.Slice(pdu.Length);
                    }
                }
                finally
                {
                    reader.AdvanceTo(buffer.Start, buffer.End);
                }
                if (result.IsCompleted)
                    throw new NvmeTcpTransportException("The controller closed the connection.",
                        _termReq.Task.IsCompletedSuccessfully ? _termReq.Task.Result : null);
            }
        }
        catch (Exception e)
        {
            Fail(e is OperationCanceledException or ObjectDisposedException or IOException and not NvmeTcpTransportException
                ? new NvmeTcpTransportException($"Connection lost: {e.Message}")
                : e);
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            _closed.TrySetResult();
        }
    }

    private void Handle(in Pdu pdu, ReadOnlySequence<byte> bytes)
    {
        switch (pdu.Type)
        {
            case PduType.CapsuleResp:
            {
                var cqe = pdu.Response;
                PendingCommand? command;
                lock (_pending)
                {
                    if (!_pending.Remove(cqe.CommandId, out command))
                        throw new NvmeTcpTransportException($"CapsuleResp for unknown CID {cqe.CommandId}");
                }
                if (cqe.Status.IsSuccess && command.DataError is { } dataError)
                    command.Completion.TrySetException(new NvmeTcpTransportException(dataError));
                else if (cqe.Status.IsSuccess && command.Received != command.Read.Length)
                    command.Completion.TrySetException(new NvmeTcpTransportException(
                        $"Short data-in for CID {cqe.CommandId}: got {command.Received} of {command.Read.Length}"));
                else
                    command.Completion.TrySetResult(cqe);
                break;
            }
            case PduType.C2HData:
            {
                var command = Lookup(pdu.CommandId, "C2HData");
                if ((pdu.Flags & PduFlags.Success) != 0)
                    throw new NvmeTcpTransportException("C2HData with SUCCESS set (no CapsuleResp would follow)");
                if (pdu.TransferOffset != command.Received || command.Received + pdu.DataLength > command.Read.Length)
                    throw new NvmeTcpTransportException(
                        $"C2HData for CID {pdu.CommandId} at {pdu.TransferOffset}+{pdu.DataLength} outside/out of order (have {command.Received} of {command.Read.Length})");
                bytes.Slice(pdu.DataStart, pdu.DataLength).CopyTo(command.Read.Span[command.Received..]);
                command.Received += pdu.DataLength;
                if (pdu.DataDigestMismatch)
                    command.DataError = $"Data digest error in C2HData for CID {pdu.CommandId}";
                if (pdu.IsLast != (command.Received == command.Read.Length))
                    command.DataError ??= $"LAST_PDU {(pdu.IsLast ? "set early" : "missing")} for CID {pdu.CommandId}";
                break;
            }
            case PduType.R2T:
            {
                var command = Lookup(pdu.CommandId, "R2T");
                if (command.Write.Length == 0 || command.InCapsule)
                    throw new NvmeTcpTransportException($"Unexpected R2T for CID {pdu.CommandId}");
                if (pdu.TransferOffset != command.WriteSent || (long)pdu.TransferOffset + pdu.TransferLength > command.Write.Length)
                    throw new NvmeTcpTransportException($"Bad R2T for CID {pdu.CommandId}: {pdu.TransferOffset}+{pdu.TransferLength} of {command.Write.Length}");
                command.WriteSent += (int)pdu.TransferLength;
                _ = SendH2CDataAsync(command, pdu.TransferTag, (int)pdu.TransferOffset, (int)pdu.TransferLength);
                break;
            }
            case PduType.C2HTermReq:
            {
                var info = new TermReqInfo(pdu.FatalStatus, pdu.FatalInformation, bytes.Slice(pdu.DataStart, pdu.DataLength).ToArray());
                _termReq.TrySetResult(info);
                throw new NvmeTcpTransportException($"Controller sent C2HTermReq: FES {info.Status}, FEI {info.Information}", info);
            }
            default:
                throw new NvmeTcpTransportException($"Unexpected PDU {pdu.Type}");
        }
    }

    private PendingCommand Lookup(ushort commandId, string what)
    {
        lock (_pending)
        {
            if (_pending.TryGetValue(commandId, out var command))
                return command;
        }
        throw new NvmeTcpTransportException($"{what} for unknown CID {commandId}");
    }

    private async Task SendH2CDataAsync(PendingCommand command, ushort transferTag, int offset, int length)
    {
        int chunk = MaxH2CData;
        byte[] pdu = ArrayPool<byte>.Shared.Rent(PduWriter.DataPduLength(Math.Min(chunk, length), Digests));
        try
        {
            for (int done = 0; done < length; done += chunk)
            {
                int n = Math.Min(chunk, length - done);
                int pduLength = PduWriter.WriteDataPdu(pdu, PduType.H2CData, command.CommandId, transferTag, (uint)(offset + done),
                    command.Write.Span.Slice(offset + done, n), done + n == length, Digests);
                await SendAsync(pdu.AsMemory(0, pduLength), _disposing.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(pdu);
        }
    }

    private void Fail(Exception e)
    {
        List<PendingCommand> failed;
        lock (_pending)
        {
            _failure ??= e;
            failed = [.. _pending.Values];
            _pending.Clear();
        }
        foreach (var command in failed)
            command.Completion.TrySetException(e);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _disposing.Cancel();
        Close();
        try { await _receiveLoop.ConfigureAwait(false); } catch { /* reported through pending commands */ }
        Fail(new ObjectDisposedException(nameof(NvmeTcpInitiator)));
        _closed.TrySetResult();
        _disposing.Dispose();
        _sendLock.Dispose();
    }

    private sealed class PendingCommand(ReadOnlyMemory<byte> write, Memory<byte> read, bool inCapsule)
    {
        public ushort CommandId;
        public readonly ReadOnlyMemory<byte> Write = write;
        public readonly Memory<byte> Read = read;
        public readonly bool InCapsule = inCapsule;
        public int Received;
        public int WriteSent;
        public string? DataError;
        public readonly TaskCompletionSource<CompletionQueueEntry> Completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

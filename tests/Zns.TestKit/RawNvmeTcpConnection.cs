using System.Net;
using System.Net.Sockets;
using Zns.Nvme;
using Zns.Protocol;

namespace Zns.TestKit;

/// <summary>
/// A bare TCP connection for protocol tests: sends arbitrary bytes and reads whatever PDUs the controller answers
/// with, without any NVMe/TCP state of its own.
/// </summary>
public sealed class RawNvmeTcpConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[1 << 20];
    private int _count;

    private RawNvmeTcpConnection(Socket socket) => _socket = socket;

    /// <summary>Opens the TCP connection (nothing is sent).</summary>
    public static async Task<RawNvmeTcpConnection> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
        return new RawNvmeTcpConnection(socket);
    }

    /// <summary>Digests assumed when parsing received PDUs after <see cref="HandshakeAsync"/>.</summary>
    public DigestOptions Digests { get; set; }

    /// <summary>True once ICResp was received (parsing then expects operational PDUs).</summary>
    public bool Initialized { get; set; }

    /// <summary>Sends bytes as they are.</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default)
    {
        while (!bytes.IsEmpty)
        {
            int sent = await _socket.SendAsync(bytes, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            bytes = bytes[sent..];
        }
    }

    /// <summary>Sends a valid ICReq and reads the ICResp.</summary>
    public async Task<Pdu> HandshakeAsync(DigestOptions digests = DigestOptions.None, TimeSpan? timeout = null)
    {
        var icReq = new byte[NvmeTcp.IcPduSize];
        PduWriter.WriteIcReq(icReq, digests);
        await SendAsync(icReq).ConfigureAwait(false);
        var (pdu, _) = await ReceivePduAsync(timeout).ConfigureAwait(false)
            ?? throw new NvmeTcpTransportException("Connection closed before ICResp");
        if (pdu.Type != PduType.ICResp)
            throw new NvmeTcpTransportException($"Expected ICResp, got {pdu.Type}");
        Digests = digests;
        Initialized = true;
        return pdu;
    }

    /// <summary>
    /// Reads the next PDU, or null when the controller closed the connection first. Throws
    /// <see cref="TimeoutException"/> when nothing complete arrives in time and <see cref="InvalidDataException"/> when
    /// the controller sent something malformed.
    /// </summary>
    public async Task<(Pdu Pdu, byte[] Bytes)?> ReceivePduAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            // Before ICResp a C2HTermReq or the ICResp may come; afterwards operational PDUs.
            var options = new PduParserOptions(PduDirection.ControllerToHost, Initialized, Initialized ? Digests : DigestOptions.None,
                0, _buffer.Length);
            var status = PduParser.TryParse(_buffer.AsSpan(0, _count), options, out var pdu, out var error);
            if (status == PduParseStatus.Fatal)
                throw new InvalidDataException($"Controller sent a malformed PDU: {error}");
            if (status == PduParseStatus.Complete)
            {
                var bytes = _buffer.AsSpan(0, pdu.Length).ToArray();
                _buffer.AsSpan(pdu.Length, _count - pdu.Length).CopyTo(_buffer);
                _count -= pdu.Length;
                return (pdu, bytes);
            }
            int n;
            try
            {
                n = await _socket.ReceiveAsync(_buffer.AsMemory(_count), SocketFlags.None, cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("No complete PDU received in time.");
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset)
            {
                return null;
            }
            if (n == 0)
                return null;
            _count += n;
        }
    }

    /// <summary>Waits until the controller closes the connection, discarding input. False on timeout.</summary>
    public async Task<bool> WaitForCloseAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var scratch = new byte[4096];
        try
        {
            while (true)
            {
                int n = await _socket.ReceiveAsync(scratch, SocketFlags.None, cts.Token).ConfigureAwait(false);
                if (n == 0)
                    return true;
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}

using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace Zns.Target.Transport;

/// <summary>
/// Moves one accepted socket's bytes through two pipes and knows nothing of NVMe/TCP: received bytes go into
/// <see cref="Application"/>'s input, and what the application writes to its output is sent. When the application
/// completes its output, the remaining bytes are sent and the socket is half-closed (so a C2HTermReq is read before
/// the end of the stream).
/// </summary>
/// <remarks>
/// Both pipes resume their reader inline: the receive completion parses, executes and writes the responses of a
/// receive batch, and its flush runs the send, all on one thread. The receive pipe's pause threshold gives
/// back-pressure (a host that sends faster than commands are processed stops being read), the send pipe's pause
/// threshold stops processing while the host does not read its responses.
/// </remarks>
internal sealed class SocketPipeConnection
{
    private const int MinReceiveBufferSize = 16 * 1024;

    private readonly Socket _socket;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private int _aborted;

    public SocketPipeConnection(Socket socket, TargetTransportOptions options)
    {
        _socket = socket;
        RemoteEndPoint = socket.RemoteEndPoint?.ToString() ?? "(unknown)";
        // The parser needs a whole PDU buffered before it hands it over, so the pipe must be able to hold the
        // largest legal PDU (header + padding + data + digests) or the reader would wait for bytes the paused
        // writer never delivers.
        long pause = options.ReceivePauseThreshold;
        _input = new Pipe(new PipeOptions(
            pauseWriterThreshold: pause,
            resumeWriterThreshold: pause / 2,
            minimumSegmentSize: MinReceiveBufferSize,
            readerScheduler: PipeScheduler.Inline,
            writerScheduler: PipeScheduler.ThreadPool,
            useSynchronizationContext: false));
        _output = new Pipe(new PipeOptions(
            pauseWriterThreshold: TargetTransportOptions.SendPauseThreshold,
            resumeWriterThreshold: TargetTransportOptions.SendPauseThreshold / 2,
            minimumSegmentSize: TargetTransportOptions.SendSegmentSize,
            readerScheduler: PipeScheduler.Inline,
            writerScheduler: PipeScheduler.ThreadPool,
            useSynchronizationContext: false));
        Application = new DuplexPipe(_input.Reader, _output.Writer);
    }

    /// <summary>Peer address, for logs.</summary>
    public string RemoteEndPoint { get; }

    /// <summary>The application's side: what the host sent, and where responses go.</summary>
    public IDuplexPipe Application { get; }

    /// <summary>Starts both pumps; the task ends when both have stopped. Never throws.</summary>
    public Task StartAsync() => Task.WhenAll(ReceiveAsync(), SendAsync());

    /// <summary>Closes the socket; both pumps stop. Thread-safe and idempotent.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
            return;
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        _socket.Dispose();
        // Wake a send pump waiting for output that will never come.
        try { _output.Reader.CancelPendingRead(); } catch (InvalidOperationException) { }
    }

    private async Task ReceiveAsync()
    {
        var writer = _input.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                // Wait for data before taking a buffer, so an idle connection holds no receive segment (as Kestrel
                // does); a zero-byte receive completes when bytes are available or the peer closed.
                await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                var memory = writer.GetMemory(MinReceiveBufferSize);
                int received = await _socket.ReceiveAsync(memory, SocketFlags.None).ConfigureAwait(false);
                if (received == 0)
                    break;
                writer.Advance(received);
                var flush = await writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled)
                    break;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Connection reset or Abort: the application sees the end of the stream.
        }
        catch (Exception e)
        {
            error = e;
        }
        await writer.CompleteAsync(error).ConfigureAwait(false);
    }

    private async Task SendAsync()
    {
        var reader = _output.Reader;
        bool failed = true;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                if (Volatile.Read(ref _aborted) != 0)
                    break;
                foreach (var segment in buffer)
                {
                    for (var data = segment; !data.IsEmpty;)
                    {
                        int sent = await _socket.SendAsync(data, SocketFlags.None).ConfigureAwait(false);
                        data = data[sent..];
                    }
                }
                reader.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    // Half-close so the host reads everything and then sees the end of the stream.
                    _socket.Shutdown(SocketShutdown.Send);
                    failed = false;
                    break;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
        }
        // The application's writes fail from now on instead of filling a pipe nobody drains.
        await reader.CompleteAsync().ConfigureAwait(false);
        if (failed)
            Abort();
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}

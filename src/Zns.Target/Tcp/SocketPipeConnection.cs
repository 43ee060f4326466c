using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace Zns.Target.Tcp;

/// <summary>
/// Moves one accepted socket's bytes through two pipes and knows nothing of NVMe/TCP: received bytes go into
/// <see cref="Application"/>'s input, and what the application writes to its output is sent. When the application
/// completes its output, the remaining bytes are sent and the socket is half-closed (so a C2HTermReq is read before
/// the end of the stream).
/// </summary>
/// <remarks>
/// The receive pump is a thread of its own blocked in the kernel's receive, and both pipes resume their reader
/// inline: the bytes of one receive are parsed, executed and answered on that thread, and its flush runs the
/// (blocking) send, with no event loop or thread-pool hand-over in between. Responses completed on another thread
/// flush from there; the send pipe has one reader, so sends never interleave. The receive pipe's pause threshold
/// gives back-pressure (a host that sends faster than commands are processed stops being read), the send pipe's
/// pause threshold stops processing while the host does not read its responses.
/// </remarks>
internal sealed class SocketPipeConnection
{
    /// <summary>The receive thread runs the parser and handlers inline; they need little stack.</summary>
    private const int ReceiveThreadStackSize = 512 * 1024;

    private readonly Socket _socket;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly long _receivePollTicks;
    private int _aborted;
    private bool _largeReceives;

    public SocketPipeConnection(Socket socket, TargetTransportOptions options)
    {
        _socket = socket;
        // Both pumps use blocking calls: the receive thread sleeps in the kernel and no event loop is involved.
        _socket.Blocking = true;
        _receivePollTicks = (long)(options.ReceivePoll.TotalSeconds * Stopwatch.Frequency);
        RemoteEndPoint = socket.RemoteEndPoint?.ToString() ?? "(unknown)";
        // The parser needs a whole PDU buffered before it hands it over, so the pipe must be able to hold the
        // largest legal PDU (header + padding + data + digests) or the reader would wait for bytes the paused
        // writer never delivers.
        long pause = options.ReceivePauseThreshold;
        _input = new Pipe(new PipeOptions(
            pauseWriterThreshold: pause,
            resumeWriterThreshold: pause / 2,
            minimumSegmentSize: TargetTransportOptions.SmallReceiveSize,
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
    public Task StartAsync()
    {
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            ReceiveLoop();
            received.SetResult();
        }, ReceiveThreadStackSize)
        {
            IsBackground = true,
            Name = "zns-recv",
        };
        thread.UnsafeStart();
        return Task.WhenAll(received.Task, SendAsync());
    }

    /// <summary>
    /// Lets the receive pump use large buffers when the host keeps it busy; until then (before the host has
    /// connected its queue) a connection receives into small ones only, so one that never connects holds little.
    /// </summary>
    public void AllowLargeReceives() => Volatile.Write(ref _largeReceives, true);

    /// <summary>Closes the socket; both pumps stop. Thread-safe and idempotent.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
            return;
        // Shutdown wakes a receive blocked in the kernel; Dispose alone would not.
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        _socket.Dispose();
        // Wake a send pump waiting for output that will never come.
        try { _output.Reader.CancelPendingRead(); } catch (InvalidOperationException) { }
    }

    /// <summary>
    /// The receive pump, on a thread of its own that sleeps in the kernel's receive: the host's bytes wake this
    /// thread directly, and the inline pipe reader parses, executes and answers them before it receives again, so a
    /// command costs one receive and one send and no hand-over between threads.
    /// </summary>
    private void ReceiveLoop()
    {
        var writer = _input.Writer;
        Exception? error = null;
        try
        {
            bool large = false;
            while (true)
            {
                var memory = writer.GetMemory(large ? TargetTransportOptions.ReceiveSegmentSize : TargetTransportOptions.SmallReceiveSize);
                if (_receivePollTicks > 0)
                    PollForData();
                int received = _socket.Receive(memory.Span, SocketFlags.None);
                if (received == 0)
                    break;
                // A full buffer means more is probably waiting: large receives (a whole batch of commands, a whole
                // large in-capsule write in one contiguous buffer) while the host keeps sending that much, small
                // ones again once a receive brings less than a small buffer.
                if (received == memory.Length)
                    large = Volatile.Read(ref _largeReceives);
                else if (received < TargetTransportOptions.SmallReceiveSize)
                    large = false;
                writer.Advance(received);
                var flush = writer.FlushAsync();
                // Not complete only while the pipe is paused (the parser is behind): wait for it to drain.
                var result = flush.IsCompleted ? flush.Result : flush.AsTask().GetAwaiter().GetResult();
                if (result.IsCompleted || result.IsCanceled)
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
        writer.Complete(error);
    }

    /// <summary>
    /// Waits up to <see cref="TargetTransportOptions.ReceivePoll"/> for the socket to become readable, so that a host
    /// that sends its next command within that time finds this thread awake and on its CPU: no wake-up, no context
    /// switch. Returns early once bytes (or the end of the stream) are there; the receive that follows blocks as
    /// usual. A zero-timeout poll does not take the socket's lock, so it does not hold up the kernel delivering the
    /// very bytes it waits for, and between polls the thread yields its CPU to any other thread ready to run there
    /// (the host's own threads, when host and target share CPUs).
    /// </summary>
    private void PollForData()
    {
        long deadline = Stopwatch.GetTimestamp() + _receivePollTicks;
        while (!_socket.Poll(0, SelectMode.SelectRead) && Stopwatch.GetTimestamp() < deadline)
            Thread.Yield();
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
                // A blocking send on the thread that flushed the responses: it returns once the kernel holds the
                // bytes, and blocks (holding back further commands) only while the host does not read.
                foreach (var segment in buffer)
                {
                    for (var data = segment.Span; !data.IsEmpty;)
                        data = data[_socket.Send(data, SocketFlags.None)..];
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

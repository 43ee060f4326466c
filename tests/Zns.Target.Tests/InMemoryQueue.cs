using System.Buffers;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging.Abstractions;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Tcp;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;

namespace Zns.Target.Tests;

/// <summary>
/// An <see cref="NvmeTcpQueue"/> over two in-memory pipes, driven synchronously: no socket and no thread of its own.
/// Both pipes resume their reader inline, as the socket transport's do, so whatever the queue answers without
/// waiting is in the output by the time <see cref="SendAsync"/> returns.
/// </summary>
internal sealed class InMemoryQueue : IAsyncDisposable
{
    private readonly Pipe _toTarget = new(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 0, useSynchronizationContext: false));
    private readonly Pipe _fromTarget = new(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 0, useSynchronizationContext: false));
    private readonly CountingWriter _output;
    private byte[] _pending = [];

    public InMemoryQueue(IQueueHandlerFactory factory, TargetTransportOptions? options = null)
    {
        _output = new CountingWriter(_fromTarget.Writer);
        Queue = new NvmeTcpQueue(new Duplex(_toTarget.Reader, _output), "in-memory", () => _toTarget.Writer.Complete(),
            options ?? new TargetTransportOptions(), factory, NullLogger.Instance);
        Running = Queue.RunAsync();
    }

    public NvmeTcpQueue Queue { get; }

    public Task Running { get; }

    /// <summary>How often the queue flushed its output: one per receive batch.</summary>
    public int Flushes => _output.Flushes;

    public DigestOptions Digests { get; set; }

    /// <summary>Delivers bytes as one receive batch.</summary>
    public async Task SendAsync(params byte[][] pdus)
    {
        foreach (var pdu in pdus)
            _toTarget.Writer.Write(pdu);
        await _toTarget.Writer.FlushAsync();
    }

    /// <summary>Every complete PDU the queue has produced so far, without waiting.</summary>
    public List<(Pdu Pdu, byte[] Bytes)> TakeOutput(bool initialized = true)
    {
        var list = new List<(Pdu, byte[])>();
        if (_fromTarget.Reader.TryRead(out var result))
        {
            _pending = [.. _pending, .. result.Buffer.ToArray()];
            _fromTarget.Reader.AdvanceTo(result.Buffer.End);
        }
        var options = new PduParserOptions(PduDirection.ControllerToHost, initialized, Digests, 0, 1 << 20);
        int offset = 0;
        while (PduParser.TryParse(_pending.AsSpan(offset), options, out var pdu, out var error) is var status && status != PduParseStatus.NeedMoreData)
        {
            Assert.True(status == PduParseStatus.Complete, $"queue sent a malformed PDU: {error}");
            list.Add((pdu, _pending.AsSpan(offset, pdu.Length).ToArray()));
            offset += pdu.Length;
        }
        _pending = _pending[offset..];
        return list;
    }

    /// <summary>Waits (bounded) until at least <paramref name="count"/> PDUs are out.</summary>
    public async Task<List<(Pdu Pdu, byte[] Bytes)>> ExpectOutputAsync(int count)
    {
        var all = new List<(Pdu, byte[])>();
        var deadline = DateTime.UtcNow + ZnsLoopback.Timeout;
        while (all.Count < count)
        {
            all.AddRange(TakeOutput());
            if (all.Count >= count)
                break;
            Assert.True(DateTime.UtcNow < deadline, $"only {all.Count} of {count} PDUs arrived");
            await Task.Delay(5);
        }
        return all;
    }

    public async ValueTask DisposeAsync()
    {
        await _toTarget.Writer.CompleteAsync();
        await Running.WaitAsync(ZnsLoopback.Timeout);
    }

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    private sealed class CountingWriter(PipeWriter inner) : PipeWriter
    {
        public int Flushes;
        public override void Advance(int bytes) => inner.Advance(bytes);
        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            Flushes++;
            return inner.FlushAsync(cancellationToken);
        }
    }
}

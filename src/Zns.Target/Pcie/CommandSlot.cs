using System.Buffers;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Execution;

namespace Zns.Target.Pcie;

/// <summary>
/// One fetched command of a submission queue, reused for the queue's lifetime: the SQE, its data segments in guest
/// memory and, when the data is not contiguous in this process, a pooled bounce buffer. A contiguous buffer is passed
/// to the command handler directly (no copy).
/// </summary>
internal sealed unsafe class CommandSlot : ExecutingCommand
{
    private readonly GuestSegment[] _segments;
    private readonly GuestBufferManager _direct = new();
    private byte[]? _bounce;

    public CommandSlot(PcieSubmissionQueue sq, int maxDataLength)
    {
        Queue = sq;
        // The data's segments, then a separate metadata buffer's (at most as long as the data may be).
        _segments = new GuestSegment[2 * PrpWalker.MaxSegments(maxDataLength)];
    }

    public PcieSubmissionQueue Queue { get; }
    public int SegmentCount;
    public int Length;
    public bool ControllerToHost;
    /// <summary>Guest memory pin token while data segments are in use; -1 when none is held.</summary>
    public int Pin = -1;
    public PcieQueuePoller? Owner;

    public Span<GuestSegment> Segments => _segments;

    /// <summary>The data buffer handed to the command handler: guest memory itself when contiguous, else a bounce buffer.</summary>
    public Memory<byte> PrepareData(bool gather)
    {
        if (Length == 0)
        {
            return Memory<byte>.Empty;
        }
        if (SegmentCount == 1 && _segments[0].Host != null)
        {
            _direct.Set(_segments[0].Host, Length);
            return _direct.Memory;
        }
        _bounce = Queue.BouncePool.Rent(Length);
        if (gather)
        {
            PrpWalker.Gather(_segments.AsSpan(0, SegmentCount), _bounce.AsSpan(0, Length));
        }
        return _bounce.AsMemory(0, Length);
    }

    /// <summary>After a successful controller-to-host command: copies the bounce buffer out; releases it.</summary>
    public void FinishData(bool success)
    {
        if (_bounce is { } b)
        {
            if (success && ControllerToHost)
            {
                PrpWalker.Scatter(b.AsSpan(0, Length), _segments.AsSpan(0, SegmentCount));
            }
            Queue.BouncePool.Return(b);
            _bounce = null;
        }
        _direct.Set(null, 0);
    }

    /// <inheritdoc/>
    protected internal override void Complete(in CompletionQueueEntry cqe, bool synchronously) =>
        Owner!.Complete(this, cqe, fromPoller: synchronously);

    /// <summary>A <see cref="Memory{T}"/> over guest memory that this slot retargets for every command.</summary>
    private sealed class GuestBufferManager : MemoryManager<byte>
    {
        private byte* _pointer;
        private int _length;

        public void Set(byte* pointer, int length)
        {
            _pointer = pointer;
            _length = length;
        }

        public override Span<byte> GetSpan() => new(_pointer, _length);

        public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}

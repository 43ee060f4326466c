using System.Buffers;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Execution;

namespace Zns.Target.Tcp;

/// <summary>Where one outstanding command is in its life on a queue.</summary>
internal enum CommandState : byte
{
    Free,
    WaitingForBuffer,
    AwaitingData,
    Ready,
    Executing,
}

/// <summary>State of one outstanding command; pooled per queue by <see cref="CommandSlots"/>, its index is the R2T TTAG.</summary>
internal sealed class CommandContext : ExecutingCommand
{
    // Small data buffers stay with the context between commands: ArrayPool.Shared keeps only a few dozen
    // arrays per size per core, so at 100+ outstanding 4 KiB commands most rents missed and allocated.
    private const int KeptBufferLength = TargetTransportOptions.KeptCommandBuffer;

    private byte[]? _buffer;
    private byte[]? _kept;

    private readonly Action<CommandContext, bool> _completed;

    public CommandContext(int index, Action<CommandContext, bool> completed)
    {
        Index = index;
        _completed = completed;
    }

    public int Index { get; }
    public CompletionQueueEntry Response;
    public DataDirection Direction;
    public volatile CommandState State;
    public int Length;
    public int Received;
    public long BudgetedBytes;
    public NvmeStatus? TransportStatus;
    public Memory<byte> Data;

    /// <summary>True while <see cref="Data"/> points into the receive buffer instead of a buffer of this context.</summary>
    public bool BorrowsReceiveBuffer { get; private set; }

    /// <summary>Whether the response carries C2H data.</summary>
    public bool SendsData => Direction == DataDirection.ControllerToHost && Response.Status.IsSuccess && Length > 0;

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

    /// <summary>
    /// Uses in-capsule data where it was received. Only for a command executed before the receive buffer advances:
    /// the handler consumes host-to-controller data before <c>ExecuteAsync</c> returns.
    /// </summary>
    public void BorrowReceiveBuffer(Memory<byte> data)
    {
        Length = data.Length;
        Data = data;
        BorrowsReceiveBuffer = true;
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
        BorrowsReceiveBuffer = false;
        Data = Memory<byte>.Empty;
        Length = 0;
    }

    /// <summary>Back to the pool state, buffer returned.</summary>
    public void Reset()
    {
        ReturnBuffer();
        State = CommandState.Free;
        TransportStatus = null;
        BudgetedBytes = 0;
    }

    /// <inheritdoc/>
    protected internal override void Complete(in CompletionQueueEntry cqe, bool synchronously)
    {
        Response = cqe;
        _completed(this, synchronously);
    }

    /// <inheritdoc/>
    protected internal override void HostDataReleased()
    {
        if (BorrowsReceiveBuffer)
        {
            // The handler consumed or detached the in-capsule data; the receive buffer moves on after this.
            ReturnBuffer();
        }
    }
}

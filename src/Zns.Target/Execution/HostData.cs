using System.Buffers;

namespace Zns.Target.Execution;

/// <summary>
/// The data buffer of one command, with who owns it. A transport hands the controller either data it keeps until
/// the command completes (a buffer of its own, guest memory) or data it lends only until the handler returns (an
/// NVMe/TCP receive buffer that moves on to the next capsule). A handler that completes later than it returns (an
/// injected delay, anything asynchronous) must <see cref="Detach"/> it first.
/// </summary>
public readonly struct HostData
{
    private HostData(Memory<byte> memory, bool borrowed)
    {
        Memory = memory;
        IsBorrowed = borrowed;
    }

    /// <summary>No data.</summary>
    public static HostData Empty => default;

    /// <summary>Data valid until the command completes: the transport releases it after the completion.</summary>
    public static HostData Owned(Memory<byte> memory) => new(memory, borrowed: false);

    /// <summary>Host-to-controller data valid only until <see cref="Controller.IQueueHandler.ExecuteAsync"/> returns.</summary>
    public static HostData Borrowed(Memory<byte> memory) => new(memory, borrowed: true);

    public Memory<byte> Memory { get; }

    /// <summary>True when the buffer moves on as soon as the handler returns.</summary>
    public bool IsBorrowed { get; }

    public int Length => Memory.Length;

    public bool IsEmpty => Memory.IsEmpty;

    public Span<byte> Span => Memory.Span;

    /// <summary>
    /// Data that stays valid until the command completes: the same memory when the transport keeps it that long, or
    /// a pooled copy of borrowed data, returned when the result is disposed.
    /// </summary>
    public DetachedHostData Detach()
    {
        if (!IsBorrowed || Memory.IsEmpty)
        {
            return new DetachedHostData(Memory, null);
        }
        byte[] copy = ArrayPool<byte>.Shared.Rent(Memory.Length);
        Memory.Span.CopyTo(copy);
        return new DetachedHostData(copy.AsMemory(0, Memory.Length), copy);
    }
}

/// <summary>A command's data that stays valid until the command completes (<see cref="HostData.Detach"/>).</summary>
public sealed class DetachedHostData : IDisposable
{
    private byte[]? _rented;

    internal DetachedHostData(Memory<byte> memory, byte[]? rented)
    {
        Memory = memory;
        _rented = rented;
    }

    public Memory<byte> Memory { get; private set; }

    /// <summary>As the handler sees it: owned by the command until it completes.</summary>
    public HostData Data => HostData.Owned(Memory);

    /// <summary>Returns a pooled copy; the memory must not be used afterwards.</summary>
    public void Dispose()
    {
        Memory = Memory<byte>.Empty;
        if (Interlocked.Exchange(ref _rented, null) is { } rented)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}

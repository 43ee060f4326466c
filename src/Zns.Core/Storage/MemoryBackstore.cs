namespace Zns.Core.Storage;

/// <summary>
/// A RAM backstore allocated lazily in 1 MiB chunks (unwritten chunks read as zeros), like null_blk's
/// memory_backed mode. Memory grows with the highest amount ever written and is not returned on reset.
/// Nothing survives the process.
/// </summary>
public sealed class MemoryBackstore : IBackstore
{
    private const int ChunkShift = 20;
    private const int ChunkSize = 1 << ChunkShift;
    private readonly byte[]?[] _chunks;
    private readonly Lock _allocLock = new();

    /// <summary>Creates a RAM backstore of <paramref name="length"/> bytes.</summary>
    public MemoryBackstore(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        _chunks = new byte[]?[(length + ChunkSize - 1) >> ChunkShift];
    }

    /// <inheritdoc/>
    public long Length { get; }

    /// <inheritdoc/>
    public void Read(long offset, Span<byte> destination)
    {
        CheckRange(offset, destination.Length);
        while (!destination.IsEmpty)
        {
            int within = (int)(offset & (ChunkSize - 1));
            int n = Math.Min(destination.Length, ChunkSize - within);
            byte[]? chunk = Volatile.Read(ref _chunks[offset >> ChunkShift]);
            if (chunk is null)
            {
                destination[..n].Clear();
            }
            else
            {
                chunk.AsSpan(within, n).CopyTo(destination);
            }
            destination = destination[n..];
            offset += n;
        }
    }

    /// <inheritdoc/>
    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        CheckRange(offset, data.Length);
        while (!data.IsEmpty)
        {
            int within = (int)(offset & (ChunkSize - 1));
            int n = Math.Min(data.Length, ChunkSize - within);
            data[..n].CopyTo(GetOrAllocate(offset >> ChunkShift).AsSpan(within, n));
            data = data[n..];
            offset += n;
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Chunks are cleared in place, not released, so the write path stays free of allocations and of the garbage
    /// collections that releasing 1 MiB arrays would cause. A chunk is only ever used for its own range.
    /// </remarks>
    public void Zero(long offset, long length)
    {
        CheckRange(offset, length);
        while (length > 0)
        {
            int within = (int)(offset & (ChunkSize - 1));
            int n = (int)Math.Min(length, ChunkSize - within);
            Volatile.Read(ref _chunks[offset >> ChunkShift])?.AsSpan(within, n).Clear();
            length -= n;
            offset += n;
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The chunks stay as they are: RAM is not returned on reset anyway, and clearing a zone of a gigabyte in place would
    /// make its Zone Reset take tens of milliseconds of memset.
    /// </remarks>
    public void Discard(long offset, long length) => CheckRange(offset, length);

    /// <inheritdoc/>
    public void Flush() { }

    /// <inheritdoc/>
    public void Dispose() { }

    private byte[] GetOrAllocate(long index)
    {
        byte[]? chunk = Volatile.Read(ref _chunks[index]);
        if (chunk is not null)
        {
            return chunk;
        }
        lock (_allocLock)
        {
            return _chunks[index] ??= new byte[ChunkSize];
        }
    }

    private void CheckRange(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"range {offset}+{length} outside backstore of {Length} bytes");
        }
    }
}

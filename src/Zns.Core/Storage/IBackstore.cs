namespace Zns.Core.Storage;

/// <summary>
/// Where a namespace's data lives: LBA n at byte n × block size, as in a QEMU raw image. Implementations are
/// thread-safe for non-overlapping ranges.
/// </summary>
public interface IBackstore : IDisposable
{
    /// <summary>Size in bytes.</summary>
    long Length { get; }

    /// <summary>Reads exactly <c>destination.Length</c> bytes at <paramref name="offset"/> (zeros past the end of a sparse file).</summary>
    void Read(long offset, Span<byte> destination);

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>.</summary>
    void Write(long offset, ReadOnlySpan<byte> data);

    /// <summary>Makes the range read as zeros, releasing space where the medium allows.</summary>
    void Zero(long offset, long length);

    /// <summary>
    /// Gives up a range whose contents no longer matter: the namespace reads nothing in it before writing it again
    /// (a reset zone reads as zeros because it is below no write pointer, not because of what the medium holds).
    /// Releases the space where the medium allows; the contents may stay as they were.
    /// </summary>
    void Discard(long offset, long length);

    /// <summary>Makes every completed write durable.</summary>
    void Flush();
}

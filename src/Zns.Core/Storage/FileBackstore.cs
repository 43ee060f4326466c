using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

using Zns.Core.Interop;

namespace Zns.Core.Storage;

/// <summary>
/// A raw image file: LBA n at byte n × block size, the same layout QEMU's <c>format=raw</c> drive uses, so one file
/// can be served by either. I/O is positional (pread/pwrite), so concurrent requests need no shared cursor.
/// </summary>
public sealed partial class FileBackstore : IBackstore
{
    private readonly SafeFileHandle _handle;

    private FileBackstore(SafeFileHandle handle, string path, long length)
    {
        _handle = handle;
        Path = path;
        Length = length;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public long Length { get; }

    /// <summary>
    /// Opens an existing file for reading and writing, exclusively: two processes writing one namespace would
    /// overwrite each other's zone state.
    /// </summary>
    public static FileBackstore Open(string path)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e.HResult == EWouldBlock)
        {
            // FileShare.None is an advisory lock on Unix; EWOULDBLOCK means another process holds it.
            throw new NamespaceInUseException(path, e);
        }
        return new FileBackstore(handle, path, RandomAccess.GetLength(handle));
    }

    /// <summary>
    /// Creates a file of <paramref name="length"/> bytes. Sparse (like <c>truncate</c>) unless
    /// <paramref name="preallocate"/>, which allocates every block (like <c>dd</c>), reporting bytes done.
    /// </summary>
    public static void Create(string path, long length, bool preallocate, IProgress<long>? progress = null)
    {
        using var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        RandomAccess.SetLength(handle, length);
        if (!preallocate)
        {
            return;
        }
        const long Step = 256L << 20;
        for (long done = 0; done < length;)
        {
            long n = Math.Min(Step, length - done);
            if (!TryAllocate(handle, done, n))
            {
                WriteZeroes(handle, done, n);
            }
            done += n;
            progress?.Report(done);
        }
        if (Posix.fsync(handle) != 0)
        {
            throw new IOException($"fsync {path}: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <inheritdoc/>
    public void Read(long offset, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            int n = RandomAccess.Read(_handle, destination, offset);
            if (n == 0)
            {
                // Past the end of the file: QEMU's raw driver reads zeros there too.
                destination.Clear();
                return;
            }
            destination = destination[n..];
            offset += n;
        }
    }

    /// <inheritdoc/>
    public void Write(long offset, ReadOnlySpan<byte> data) => RandomAccess.Write(_handle, data, offset);

    /// <inheritdoc/>
    public void Zero(long offset, long length)
    {
        if (length <= 0)
        {
            return;
        }
        // Punching a hole both zeroes and frees the blocks, as QEMU's write-zeroes with MAY_UNMAP does.
        if (Posix.fallocate(_handle, Posix.FallocPunchHole | Posix.FallocKeepSize, offset, length) != 0)
        {
            WriteZeroes(_handle, offset, length);
        }
    }

    /// <inheritdoc/>
    /// <remarks>A hole is punched so the file gives the space back; where the file system cannot punch, nothing is written.</remarks>
    public void Discard(long offset, long length)
    {
        if (length > 0)
        {
            _ = Posix.fallocate(_handle, Posix.FallocPunchHole | Posix.FallocKeepSize, offset, length);
        }
    }

    /// <inheritdoc/>
    public void Flush()
    {
        if (Posix.fdatasync(_handle) != 0)
        {
            throw new IOException($"fdatasync {Path}: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _handle.Dispose();

    /// <summary>Allocates the blocks of a range without changing its contents (fallocate mode 0).</summary>
    internal static bool TryAllocate(SafeFileHandle handle, long offset, long length) => Posix.fallocate(handle, 0, offset, length) == 0;

    private static void WriteZeroes(SafeFileHandle handle, long offset, long length)
    {
        byte[] zeros = new byte[Math.Min(length, 1 << 20)];
        while (length > 0)
        {
            int n = (int)Math.Min(length, zeros.Length);
            RandomAccess.Write(handle, zeros.AsSpan(0, n), offset);
            offset += n;
            length -= n;
        }
    }

    private const int EWouldBlock = 11;
}

/// <summary>The backstore is open for writing in another process (one writer per namespace).</summary>
public sealed class NamespaceInUseException(string path, Exception inner)
    : IOException($"{path} is in use by another process", inner)
{
    /// <summary>The backstore's path.</summary>
    public string Path { get; } = path;
}

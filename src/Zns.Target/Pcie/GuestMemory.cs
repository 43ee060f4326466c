namespace Zns.Target.Pcie;

/// <summary>Maps a client's DMA file descriptor into this process (mmap) and releases it again.</summary>
public interface IGuestMemoryMapper
{
    /// <summary>Maps <paramref name="size"/> bytes of <paramref name="fd"/> at <paramref name="offset"/>; 0 on failure (errno in <paramref name="errno"/>).</summary>
    nint Map(int fd, long offset, ulong size, bool writable, out int errno);

    /// <summary>Unmaps what <see cref="Map"/> returned.</summary>
    void Unmap(nint address, ulong size);
}

/// <summary>
/// The guest's DMA address space as the client announced it (VFIO_USER_DMA_MAP / DMA_UNMAP): sorted, non-overlapping
/// windows, each mapped into this process when the client passed a file descriptor. Every device access to guest
/// memory goes through <see cref="TryTranslate"/>, which refuses anything not wholly inside one mapped window.
/// </summary>
/// <remarks>
/// Queue threads access guest memory while the socket thread may unmap it. Accessors hold a pin
/// (<see cref="Enter"/> / <see cref="Exit"/>) for as long as they use a translated pointer; unmapping publishes the
/// new table, then waits until every pin taken under the old table is released, then unmaps. The pin is a two-epoch
/// counter, so it is cheap, not thread-affine (an asynchronous read may release it on another thread), and a
/// steady stream of I/O cannot starve an unmap.
/// </remarks>
public sealed unsafe class GuestMemory : IDisposable
{
    /// <summary>Most windows at once; QEMU's default max_dma_maps is 65535, a guest needs a handful.</summary>
    public const int MaxWindows = 1024;

    private readonly IGuestMemoryMapper _mapper;
    private readonly Lock _writeLock = new();
    private readonly long[] _pins = new long[2];
    private Window[] _windows = [];
    private int _epoch;

    public GuestMemory(IGuestMemoryMapper mapper) => _mapper = mapper;

    private sealed record Window(ulong Iova, ulong Size, nint Host, bool Readable, bool Writable);

    /// <summary>Number of windows (for tests and logs).</summary>
    public int WindowCount => Volatile.Read(ref _windows).Length;

    /// <summary>Adds a window. errno: EEXIST when it overlaps one, EINVAL for an empty or wrapping range, ENOSPC past the limit.</summary>
    public int Map(ulong iova, ulong size, int fd, long offset, bool readable, bool writable)
    {
        if (size == 0 || iova + size < iova || offset < 0)
        {
            return VfioUser.Errno.Einval;
        }
        lock (_writeLock)
        {
            Window[] current = _windows;
            if (current.Length >= MaxWindows)
            {
                return VfioUser.Errno.Enospc;
            }
            foreach (Window w in current)
            {
                if (iova < w.Iova + w.Size && w.Iova < iova + size)
                {
                    return VfioUser.Errno.Eexist;
                }
            }
            nint host = 0;
            if (fd >= 0)
            {
                host = _mapper.Map(fd, offset, size, writable, out int errno);
                if (host == 0)
                {
                    return errno == 0 ? VfioUser.Errno.Enomem : errno;
                }
            }
            var next = new Window[current.Length + 1];
            int i = 0;
            while (i < current.Length && current[i].Iova < iova)
            {
                next[i] = current[i];
                i++;
            }
            next[i] = new Window(iova, size, host, readable, writable);
            Array.Copy(current, i, next, i + 1, current.Length - i);
            Volatile.Write(ref _windows, next);
            return 0;
        }
    }

    /// <summary>Removes the window that starts at <paramref name="iova"/> with exactly <paramref name="size"/> bytes (ENOENT otherwise), or all of them.</summary>
    public int Unmap(ulong iova, ulong size, bool all = false)
    {
        List<Window> removed;
        lock (_writeLock)
        {
            Window[] current = _windows;
            removed = all ? [.. current] : [.. current.Where(w => w.Iova == iova && w.Size == size)];
            if (removed.Count == 0 && !all)
            {
                return VfioUser.Errno.Enoent;
            }
            Volatile.Write(ref _windows, all ? [] : [.. current.Where(w => !(w.Iova == iova && w.Size == size))]);
            WaitForOldPins();
        }
        foreach (Window w in removed)
        {
            if (w.Host != 0)
            {
                _mapper.Unmap(w.Host, w.Size);
            }
        }
        return 0;
    }

    /// <summary>Flips the epoch and waits until no accessor still holds a pin of the old one.</summary>
    private void WaitForOldPins()
    {
        int old = Interlocked.Increment(ref _epoch) - 1 & 1;
        var spin = new SpinWait();
        while (Interlocked.Read(ref _pins[old]) != 0)
        {
            spin.SpinOnce(sleep1Threshold: 20);
        }
    }

    /// <summary>Takes a pin: translated pointers stay valid until <see cref="Exit"/> with the returned token.</summary>
    public int Enter()
    {
        while (true)
        {
            int e = Volatile.Read(ref _epoch) & 1;
            Interlocked.Increment(ref _pins[e]);
            if ((Volatile.Read(ref _epoch) & 1) == e)
            {
                return e;
            }
            Interlocked.Decrement(ref _pins[e]);
        }
    }

    public void Exit(int token) => Interlocked.Decrement(ref _pins[token]);

    /// <summary>
    /// Translates [<paramref name="address"/>, +<paramref name="length"/>) to a host pointer when it lies wholly in one
    /// mapped window with the needed permission. Only valid while a pin is held.
    /// </summary>
    public bool TryTranslate(ulong address, int length, bool write, out byte* host)
    {
        host = null;
        Window[] windows = Volatile.Read(ref _windows);
        int lo = 0, hi = windows.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            Window w = windows[mid];
            if (address < w.Iova)
            {
                hi = mid - 1;
            }
            else if (address - w.Iova >= w.Size)
            {
                lo = mid + 1;
            }
            else
            {
                ulong offset = address - w.Iova;
                if (w.Host == 0 || (ulong)length > w.Size - offset || (write ? !w.Writable : !w.Readable))
                {
                    return false;
                }
                host = (byte*)w.Host + offset;
                return true;
            }
        }
        return false;
    }

    /// <summary>Copies guest memory out; false when any byte is outside the mapping.</summary>
    public bool Read(ulong address, Span<byte> destination)
    {
        if (!TryTranslate(address, destination.Length, write: false, out byte* p))
        {
            return false;
        }
        new ReadOnlySpan<byte>(p, destination.Length).CopyTo(destination);
        return true;
    }

    /// <summary>Copies into guest memory; false when any byte is outside the mapping.</summary>
    public bool Write(ulong address, ReadOnlySpan<byte> source)
    {
        if (!TryTranslate(address, source.Length, write: true, out byte* p))
        {
            return false;
        }
        source.CopyTo(new Span<byte>(p, source.Length));
        return true;
    }

    /// <summary>Unmaps everything (client disconnected).</summary>
    public void Dispose() => Unmap(0, 0, all: true);
}

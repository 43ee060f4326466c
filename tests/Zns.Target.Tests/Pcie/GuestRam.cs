using System.Runtime.InteropServices;
using Zns.Target.VfioUser;

using Zns.Core.Interop;

namespace Zns.Target.Tests.Pcie;

/// <summary>"Guest RAM" for tests: a memfd mapped into the test process, shared with the device like QEMU's memory-backend-memfd.</summary>
internal sealed unsafe class GuestRam : IDisposable
{
    private int _next = 4096;

    public GuestRam(ulong iova, int size)
    {
        Iova = iova;
        Size = size;
        Fd = Posix.memfd_create("zns-test-guest", Posix.MfdCloexec);
        Assert.True(Fd >= 0, "memfd_create");
        Assert.Equal(0, Posix.ftruncate(Fd, size));
        Host = (byte*)Posix.mmap(0, (nuint)size, Posix.ProtRead | Posix.ProtWrite, Posix.MapShared, Fd, 0);
        Assert.True((nint)Host != Posix.MapFailed, "mmap");
    }

    public ulong Iova { get; }
    public int Size { get; }
    public int Fd { get; }
    public byte* Host { get; }

    /// <summary>Bump-allocates page-aligned guest memory; returns its guest address.</summary>
    public ulong Alloc(int bytes)
    {
        int at = _next;
        _next += (bytes + 4095) & ~4095;
        Assert.True(_next <= Size, "guest RAM exhausted");
        new Span<byte>(Host + at, bytes).Clear();
        return Iova + (ulong)at;
    }

    public Span<byte> Span(ulong address, int length) => new(Host + (long)(address - Iova), length);

    public void Dispose()
    {
        Posix.munmap((nint)Host, (nuint)Size);
        Posix.close(Fd);
    }
}

/// <summary>Counts interrupts raised on one vector.</summary>
internal sealed class CountingSignal : Zns.Target.Pcie.IInterruptSignal
{
    private int _count;
    public int Count => Volatile.Read(ref _count);
    public bool Closed { get; private set; }
    public void Signal() => Interlocked.Increment(ref _count);
    public void Close() => Closed = true;
}

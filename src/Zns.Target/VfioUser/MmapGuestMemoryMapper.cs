using System.Runtime.InteropServices;
using Zns.Core.Interop;
using Zns.Target.Pcie;

namespace Zns.Target.VfioUser;

/// <summary>Maps DMA file descriptors with mmap(MAP_SHARED).</summary>
internal sealed class MmapGuestMemoryMapper : IGuestMemoryMapper
{
    public nint Map(int fd, long offset, ulong size, bool writable, out int errno)
    {
        errno = 0;
        if ((offset & 4095) != 0)
        {
            errno = Errno.Einval;
            return 0;
        }
        nint p = Posix.mmap(0, (nuint)size, Posix.ProtRead | (writable ? Posix.ProtWrite : 0), Posix.MapShared, fd, offset);
        if (p == Posix.MapFailed)
        {
            errno = Marshal.GetLastPInvokeError();
            return 0;
        }
        return p;
    }

    public void Unmap(nint address, ulong size) => Posix.munmap(address, (nuint)size);
}

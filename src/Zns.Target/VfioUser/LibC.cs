using System.Runtime.InteropServices;

namespace Zns.Target.VfioUser;

/// <summary>
/// The few Linux system calls the vfio-user transport needs that .NET does not expose: file descriptors passed over
/// a Unix socket (SCM_RIGHTS), shared memory mappings, eventfd signalling and memfd for a mappable doorbell page.
/// x86-64 / arm64 Linux layouts (LP64).
/// </summary>
internal static unsafe partial class LibC
{
    public const int ProtRead = 1, ProtWrite = 2;
    public const int MapShared = 1;
    public const int SolSocket = 1, ScmRights = 1;
    public const int MsgCmsgCloexec = 0x4000_0000, MsgCtrunc = 0x8, MsgNoSignal = 0x4000;
    public const int Eintr = 4, Eagain = 11;
    public const uint MfdCloexec = 1;
    public static readonly nint MapFailed = -1;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>cmsghdr: cmsg_len (size_t), cmsg_level, cmsg_type; data follows at 16 bytes.</summary>
    public const int CmsgHeaderSize = 16;

    public static int CmsgSpace(int dataBytes) => CmsgHeaderSize + ((dataBytes + 7) & ~7);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint recvmsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint sendmsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(nint addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int memfd_create(string name, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ftruncate(int fd, long length);

    /// <summary>Signals an eventfd (adds 1 to its counter). Errors are ignored: a closed vector just drops the interrupt.</summary>
    public static void SignalEventFd(int fd)
    {
        ulong one = 1;
        write(fd, &one, 8);
    }
}

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Zns.Core.Interop;

/// <summary>
/// Every Linux system call zns makes that .NET does not expose, in one place: durability of backstore and state
/// files (fdatasync, fsync, fallocate), the completion scheduler's eventfd and ppoll, and what the vfio-user
/// transport needs (file descriptors passed over a Unix socket with SCM_RIGHTS, shared memory mappings, memfd).
/// x86-64 / arm64 Linux layouts (LP64).
/// </summary>
internal static unsafe partial class Posix
{
    public const int ProtRead = 1, ProtWrite = 2;
    public const int MapShared = 1;
    public const int SolSocket = 1, ScmRights = 1;
    public const int MsgCmsgCloexec = 0x4000_0000, MsgCtrunc = 0x8, MsgNoSignal = 0x4000;
    public const int Eintr = 4, Eagain = 11;
    public const uint MfdCloexec = 1;
    public const int EfdNonblock = 0x800, EfdCloexec = 0x80000;
    public const short PollIn = 1;
    public const int PrSetTimerslack = 29;
    public const int FallocKeepSize = 0x01, FallocPunchHole = 0x02;
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

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>cmsghdr: cmsg_len (size_t), cmsg_level, cmsg_type; data follows at 16 bytes.</summary>
    public const int CmsgHeaderSize = 16;

    public static int CmsgSpace(int dataBytes) => CmsgHeaderSize + ((dataBytes + 7) & ~7);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fallocate(SafeFileHandle fd, int mode, long offset, long len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fdatasync(SafeFileHandle fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fsync(SafeFileHandle fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

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

    [LibraryImport("libc")]
    public static partial int ppoll(PollFd* fds, ulong nfds, TimeSpec* timeout, void* sigmask);

    [LibraryImport("libc")]
    public static partial int prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);

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

using System.Runtime.InteropServices;
using Zns.Core.Interop;

namespace Zns.Target.VfioUser;

/// <summary>Blocking message I/O on a Unix stream socket with SCM_RIGHTS descriptors.</summary>
internal static unsafe class UnixSocketIo
{
    /// <summary>Reads exactly <paramref name="count"/> bytes, collecting passed descriptors; an error text on EOF or failure.</summary>
    public static string? Receive(int fd, Span<byte> buffer, int count, List<int> fds)
    {
        int controlLength = Posix.CmsgSpace(VfioUserSession.MaxMessageFds * 4);
        byte* control = stackalloc byte[controlLength];
        int got = 0;
        fixed (byte* b = buffer)
        {
            while (got < count)
            {
                var iov = new Posix.IoVec { Base = b + got, Length = (nuint)(count - got) };
                var msg = new Posix.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlLength };
                nint n = Posix.recvmsg(fd, &msg, Posix.MsgCmsgCloexec);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Posix.Eintr)
                    {
                        continue;
                    }
                    return $"recvmsg failed (errno {errno})";
                }
                CollectFds(&msg, fds);
                if ((msg.Flags & Posix.MsgCtrunc) != 0)
                {
                    return "file descriptors truncated";
                }
                if (n == 0)
                {
                    return got == 0 ? "client closed the connection" : "client closed the connection mid-message";
                }
                got += (int)n;
            }
        }
        return null;
    }

    private static void CollectFds(Posix.MsgHdr* msg, List<int> fds)
    {
        byte* p = (byte*)msg->Control;
        byte* end = p + (long)msg->ControlLength;
        while (p + Posix.CmsgHeaderSize <= end)
        {
            ulong length = *(ulong*)p;
            int level = *(int*)(p + 8), type = *(int*)(p + 12);
            if (length < Posix.CmsgHeaderSize || (long)length > end - p)
            {
                break;
            }
            if (level == Posix.SolSocket && type == Posix.ScmRights)
            {
                int n = (int)(length - Posix.CmsgHeaderSize) / 4;
                for (int i = 0; i < n; i++)
                {
                    fds.Add(((int*)(p + Posix.CmsgHeaderSize))[i]);
                }
            }
            p += (length + 7) & ~7UL;
        }
    }

    public static string? Send(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* b = data)
        {
            int sent = 0;
            while (sent < data.Length)
            {
                var iov = new Posix.IoVec { Base = b + sent, Length = (nuint)(data.Length - sent) };
                var msg = new Posix.MsgHdr { Iov = &iov, IovLength = 1 };
                nint n = Posix.sendmsg(fd, &msg, Posix.MsgNoSignal);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Posix.Eintr)
                    {
                        continue;
                    }
                    return $"sendmsg failed (errno {errno})";
                }
                sent += (int)n;
            }
        }
        return null;
    }
}

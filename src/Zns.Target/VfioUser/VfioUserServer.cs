using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Zns.Target.Controller;
using Zns.Target.Pcie;

namespace Zns.Target.VfioUser;

/// <summary>
/// Serves one PCIe NVMe function of a target over vfio-user on a Unix socket: one client at a time (the protocol
/// has one client per socket), each on its own thread that reads a message, handles it and replies. When a client
/// goes, its DMA mappings and eventfds are released and the controller is reset; the next client finds a fresh
/// function, with the zone state untouched in the shared namespaces.
/// </summary>
public sealed class VfioUserServer : IDisposable
{
    private readonly ILogger _logger;
    private readonly Socket _listener;
    private readonly Thread _thread;
    private volatile Socket? _client;
    private volatile bool _stopping;

    /// <summary>Creates the function and binds <paramref name="socketPath"/> (a stale socket file there is replaced).</summary>
    public VfioUserServer(NvmeTarget target, string socketPath, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        SocketPath = Path.GetFullPath(socketPath);
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Zns.Target.VfioUser");
        RemoveStaleSocket(SocketPath);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
            _listener.Listen(1);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
        Memory = new GuestMemory(new MmapGuestMemoryMapper());
        Function = new NvmePcieFunction(target, Memory, Path.GetFileName(SocketPath), loggerFactory);
        _thread = new Thread(AcceptLoop) { IsBackground = true, Name = $"zns-vfio-user {Path.GetFileName(SocketPath)}" };
    }

    public string SocketPath { get; }
    public NvmePcieFunction Function { get; }
    public GuestMemory Memory { get; }

    /// <summary>True while a client is connected.</summary>
    public bool HasClient => _client is not null;

    public void Start() => _thread.Start();

    /// <summary>
    /// Removes a socket file an earlier run left behind: it cannot be opened as a file and nobody accepts on it.
    /// A regular file or a live server's socket is left alone (binding then fails with "address in use").
    /// </summary>
    private static void RemoveStaleSocket(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }
        try
        {
            File.OpenHandle(path, FileMode.Open, FileAccess.Read).Dispose();
            return;
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
            return;
        }
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            File.Delete(path);
        }
    }

    private void AcceptLoop()
    {
        while (!_stopping)
        {
            Socket client;
            try
            {
                client = _listener.Accept();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;
            }
            _client = client;
            VfioUserLog.ClientConnected(_logger, SocketPath);
            string reason;
            try
            {
                reason = Serve(client);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException)
            {
                reason = ex.Message;
            }
            client.Dispose();
            Function.ClientDisconnected();
            Memory.Unmap(0, 0, all: true);
            // Only now is the client gone: its controller is reset and its memory unmapped.
            _client = null;
            VfioUserLog.ClientDisconnected(_logger, SocketPath, reason);
        }
    }

    private string Serve(Socket client)
    {
        var session = new VfioUserSession(Function, fd => new EventFdSignal(fd), fd => LibC.close(fd));
        byte[] message = GC.AllocateUninitializedArray<byte>(VfioUserFraming.MaxMessageSize, pinned: true);
        byte[] reply = GC.AllocateUninitializedArray<byte>(VfioUserFraming.MaxMessageSize, pinned: true);
        var fds = new List<int>(VfioUserSession.MaxMessageFds);
        int fd = (int)client.SafeHandle.DangerousGetHandle();
        while (!_stopping)
        {
            string? error = UnixSocketIo.Receive(fd, message, VfioUserHeader.Size, fds);
            if (error is not null)
            {
                CloseAll(fds);
                return error;
            }
            FrameStatus framing = VfioUserFraming.TryFrame(message.AsSpan(0, VfioUserHeader.Size), out VfioUserHeader header);
            if (framing == FrameStatus.Invalid)
            {
                CloseAll(fds);
                return $"malformed message header (command {header.Command}, size {header.MessageSize}, flags {header.Flags:x})";
            }
            if (header.PayloadSize > 0)
            {
                error = UnixSocketIo.Receive(fd, message.AsSpan(VfioUserHeader.Size), header.PayloadSize, fds);
                if (error is not null)
                {
                    CloseAll(fds);
                    return error;
                }
            }
            if (fds.Count > VfioUserSession.MaxMessageFds)
            {
                CloseAll(fds);
                return "too many file descriptors in one message";
            }
            int length = session.Handle(in header, message.AsSpan(VfioUserHeader.Size, header.PayloadSize), fds, reply);
            if (length > 0 && UnixSocketIo.Send(fd, reply.AsSpan(0, length)) is { } sendError)
            {
                return sendError;
            }
        }
        return "server stopping";
    }

    private static void CloseAll(List<int> fds)
    {
        foreach (int fd in fds)
        {
            LibC.close(fd);
        }
        fds.Clear();
    }

    public void Dispose()
    {
        _stopping = true;
        _listener.Dispose();
        try
        {
            _client?.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
        {
            // The serving thread closed it first.
        }
        if (_thread.IsAlive)
        {
            _thread.Join();
        }
        Function.Dispose();
        Memory.Dispose();
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
        }
    }

    private sealed class EventFdSignal(int fd) : IInterruptSignal
    {
        public void Signal() => LibC.SignalEventFd(fd);

        public void Close() => LibC.close(fd);
    }
}

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
        nint p = LibC.mmap(0, (nuint)size, LibC.ProtRead | (writable ? LibC.ProtWrite : 0), LibC.MapShared, fd, offset);
        if (p == LibC.MapFailed)
        {
            errno = Marshal.GetLastPInvokeError();
            return 0;
        }
        return p;
    }

    public void Unmap(nint address, ulong size) => LibC.munmap(address, (nuint)size);
}

/// <summary>Blocking message I/O on a Unix stream socket with SCM_RIGHTS descriptors.</summary>
internal static unsafe class UnixSocketIo
{
    /// <summary>Reads exactly <paramref name="count"/> bytes, collecting passed descriptors; an error text on EOF or failure.</summary>
    public static string? Receive(int fd, Span<byte> buffer, int count, List<int> fds)
    {
        int controlLength = LibC.CmsgSpace(VfioUserSession.MaxMessageFds * 4);
        byte* control = stackalloc byte[controlLength];
        int got = 0;
        fixed (byte* b = buffer)
        {
            while (got < count)
            {
                var iov = new LibC.IoVec { Base = b + got, Length = (nuint)(count - got) };
                var msg = new LibC.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlLength };
                nint n = LibC.recvmsg(fd, &msg, LibC.MsgCmsgCloexec);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == LibC.Eintr)
                    {
                        continue;
                    }
                    return $"recvmsg failed (errno {errno})";
                }
                CollectFds(&msg, fds);
                if ((msg.Flags & LibC.MsgCtrunc) != 0)
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

    private static void CollectFds(LibC.MsgHdr* msg, List<int> fds)
    {
        byte* p = (byte*)msg->Control;
        byte* end = p + (long)msg->ControlLength;
        while (p + LibC.CmsgHeaderSize <= end)
        {
            ulong length = *(ulong*)p;
            int level = *(int*)(p + 8), type = *(int*)(p + 12);
            if (length < LibC.CmsgHeaderSize || (long)length > end - p)
            {
                break;
            }
            if (level == LibC.SolSocket && type == LibC.ScmRights)
            {
                int n = (int)(length - LibC.CmsgHeaderSize) / 4;
                for (int i = 0; i < n; i++)
                {
                    fds.Add(((int*)(p + LibC.CmsgHeaderSize))[i]);
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
                var iov = new LibC.IoVec { Base = b + sent, Length = (nuint)(data.Length - sent) };
                var msg = new LibC.MsgHdr { Iov = &iov, IovLength = 1 };
                nint n = LibC.sendmsg(fd, &msg, LibC.MsgNoSignal);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == LibC.Eintr)
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

internal static partial class VfioUserLog
{
    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "vfio-user client connected on {Path}")]
    public static partial void ClientConnected(ILogger logger, string path);

    [LoggerMessage(EventId = 401, Level = LogLevel.Information, Message = "vfio-user client on {Path} gone: {Reason}")]
    public static partial void ClientDisconnected(ILogger logger, string path, string reason);
}

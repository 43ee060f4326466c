using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Zns.Target.Controller;
using Zns.Target.Pcie;

using Zns.Core.Interop;

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
        var session = new VfioUserSession(Function, fd => new EventFdSignal(fd), fd => Posix.close(fd));
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
            Posix.close(fd);
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
}

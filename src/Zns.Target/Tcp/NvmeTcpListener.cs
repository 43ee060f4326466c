using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Zns.Target.Controller;
using Zns.Nvme;
using Zns.Nvme.Layouts;

namespace Zns.Target.Tcp;

/// <summary>
/// Accepts NVMe/TCP connections and serves each one as an NVMe queue driven by an <see cref="IQueueHandler"/> from
/// the given <see cref="IQueueHandlerFactory"/>.
/// </summary>
/// <example>
/// <code>
/// await using var listener = new NvmeTcpListener(new TargetTransportOptions { ListenEndPoint = new(IPAddress.Loopback, 0) }, factory);
/// listener.Start();
/// Console.WriteLine(listener.LocalEndPoint); // the port actually bound
/// </code>
/// </example>
public sealed class NvmeTcpListener : IAsyncDisposable
{
    private readonly TargetTransportOptions _options;
    private readonly IQueueHandlerFactory _factory;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<NvmeTcpQueue, Task> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listenSocket;
    private Task _acceptLoop = Task.CompletedTask;
    private int _stopped;

    /// <summary>Creates a listener; nothing is bound until <see cref="Start"/>.</summary>
    public NvmeTcpListener(TargetTransportOptions options, IQueueHandlerFactory factory, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(factory);
        options.Validate();
        _options = options;
        _factory = factory;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Zns.Target.Tcp");
    }

    /// <summary>The endpoint actually bound (with the real port when the options asked for port 0).</summary>
    public IPEndPoint LocalEndPoint =>
        (IPEndPoint?)_listenSocket?.LocalEndPoint ?? throw new InvalidOperationException("The listener is not started.");

    /// <summary>Number of connections currently served.</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>Binds, listens and starts accepting. Throws <see cref="SocketException"/> when the address cannot be bound.</summary>
    public void Start()
    {
        if (_listenSocket is not null)
            throw new InvalidOperationException("The listener is already started.");
        var endPoint = _options.ListenEndPoint;
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endPoint.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.Address.Equals(IPAddress.IPv6Any))
                socket.DualMode = true;
            socket.Bind(endPoint);
            socket.Listen(_options.ListenBacklog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        _listenSocket = socket;
        TransportLog.Listening(_logger, socket.LocalEndPoint!);
        _acceptLoop = AcceptLoopAsync(socket);
    }

    private async Task AcceptLoopAsync(Socket listenSocket)
    {
        var backoff = TimeSpan.Zero;
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listenSocket.AcceptAsync(_stopping.Token).ConfigureAwait(false);
                backoff = TimeSpan.Zero;
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted)
            {
                return;
            }
            catch (SocketException e)
            {
                // A connection reset while in the backlog, or resource pressure (EMFILE/ENOBUFS): keep serving,
                // backing off when errors repeat so a resource shortage does not spin.
                TransportLog.AcceptFailed(_logger, e.SocketErrorCode);
                backoff = backoff == TimeSpan.Zero ? TimeSpan.FromMilliseconds(10) : TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
                try { await Task.Delay(backoff, _stopping.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
                continue;
            }

            string remote = client.RemoteEndPoint?.ToString() ?? "(unknown)";
            if (_connections.Count >= _options.MaxConnections)
            {
                TransportLog.ConnectionLimitReached(_logger, remote, _connections.Count);
                client.Dispose();
                continue;
            }
            // Small capsule responses must not wait for Nagle's algorithm.
            client.NoDelay = true;
            TransportLog.ConnectionAccepted(_logger, remote);
            var connection = new SocketPipeConnection(client, _options);
            var queue = new NvmeTcpQueue(connection.Application, connection.RemoteEndPoint, connection.Abort, _options, _factory, _logger,
                connection.AllowLargeReceives);
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _connections[queue] = gate.Task;
            _ = ServeAsync(connection, queue, gate);
        }
    }

    private async Task ServeAsync(SocketPipeConnection connection, NvmeTcpQueue queue, TaskCompletionSource done)
    {
        // Yield so the accept loop continues while this connection starts.
        await Task.Yield();
        try
        {
            var pumps = connection.StartAsync();
            await queue.RunAsync().ConfigureAwait(false);
            connection.Abort();
            await pumps.ConfigureAwait(false);
        }
        finally
        {
            _connections.TryRemove(queue, out _);
            done.TrySetResult();
        }
    }

    /// <summary>Stops accepting, closes every connection and waits for them to finish.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
            return;
        _stopping.Cancel();
        var endPoint = _listenSocket?.LocalEndPoint;
        _listenSocket?.Dispose();
        try { await _acceptLoop.ConfigureAwait(false); } catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { }
        foreach (var connection in _connections.Keys)
            connection.Abort("listener stopping");
        await Task.WhenAll(_connections.Values).ConfigureAwait(false);
        if (endPoint is not null)
            TransportLog.Stopped(_logger, endPoint);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }
}

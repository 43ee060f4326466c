using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Zns.Benchmarks.Target;

/// <summary>
/// The limit the NVMe/TCP target is compared with: a request/response loop over loopback with the same byte counts
/// and nothing else. A request is a 72-byte header (request payload length at 0, response length at 4) plus its
/// payload; the answer is that many bytes. Requests are handled in order, and the answers to everything parsed
/// from one receive go out in one send, like the target's send coalescing.
/// </summary>
internal sealed class BareEchoServer : IAsyncDisposable
{
    private readonly Socket _listen;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = new();
    private readonly Task _accept;

    public BareEchoServer()
    {
        _listen = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listen.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listen.Listen(64);
        _accept = AcceptLoopAsync();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listen.LocalEndPoint!;

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                Socket s = await _listen.AcceptAsync(_stop.Token).ConfigureAwait(false);
                s.NoDelay = true;
                lock (_tasks) _tasks.Add(Task.Run(() => ServeAsync(s)));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task ServeAsync(Socket s)
    {
        byte[] input = GC.AllocateArray<byte>(1 << 20, pinned: true);
        byte[] output = GC.AllocateArray<byte>(1 << 20, pinned: true);
        int have = 0;
        try
        {
            while (true)
            {
                int n = await s.ReceiveAsync(input.AsMemory(have), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (n == 0) return;
                have += n;
                int pos = 0, outLen = 0;
                while (have - pos >= Layout.CapsuleCmd)
                {
                    int reqPayload = BinaryPrimitives.ReadInt32LittleEndian(input.AsSpan(pos));
                    int respLen = BinaryPrimitives.ReadInt32LittleEndian(input.AsSpan(pos + 4));
                    if (have - pos < Layout.CapsuleCmd + reqPayload) break;
                    if (outLen + respLen > output.Length)
                    {
                        await SendAllAsync(s, output.AsMemory(0, outLen)).ConfigureAwait(false);
                        outLen = 0;
                    }
                    output[outLen] = 1; // touch the answer so it is "produced"
                    outLen += respLen;
                    pos += Layout.CapsuleCmd + reqPayload;
                }
                if (outLen > 0) await SendAllAsync(s, output.AsMemory(0, outLen)).ConfigureAwait(false);
                input.AsSpan(pos, have - pos).CopyTo(input);
                have -= pos;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
        finally
        {
            s.Dispose();
        }
    }

    private async ValueTask SendAllAsync(Socket s, ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            int sent = await s.SendAsync(data, SocketFlags.None, _stop.Token).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listen.Dispose();
        await _accept.ConfigureAwait(false);
        Task[] tasks;
        lock (_tasks) tasks = [.. _tasks];
        await Task.WhenAll(tasks).ConfigureAwait(false);
        _stop.Dispose();
    }
}

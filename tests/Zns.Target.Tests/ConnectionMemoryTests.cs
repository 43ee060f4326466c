// Every wait in these tests is bounded by an explicit timeout, so test cancellation tokens add nothing.
#pragma warning disable xUnit1051

using System.Net.Sockets;
using Zns.Core.Nvme;
using Zns.Protocol;
using Zns.Target.Transport;
using static Zns.Target.Tests.ZnsLoopback;

namespace Zns.Target.Tests;

/// <summary>Runs alone: it measures the process's managed heap.</summary>
[CollectionDefinition(nameof(MemoryMeasurement), DisableParallelization = true)]
public sealed class MemoryMeasurement;

/// <summary>
/// Many connections that send garbage or stall in the middle of a PDU: the server's memory stays within the
/// per-connection budget documented on <see cref="TargetTransportOptions"/>, other hosts keep working, and every
/// such connection is closed once the initialization timeout passes without a Fabrics Connect.
/// </summary>
[Collection(nameof(MemoryMeasurement))]
public sealed class ConnectionMemoryTests(ITestOutputHelper output)
{
    private const int Connections = 200;

    [Fact]
    public async Task StalledAndGarbageConnections_StayWithinTheBudget_AndTimeOut()
    {
        var initTimeout = TimeSpan.FromSeconds(3);
        await using var env = Start(transport: new TargetTransportOptions { InitializationTimeout = initTimeout });
        var (bystander, zones) = await env.PrepareAsync();
        int baseline = env.Listener.ConnectionCount;

        // Warm up every code path once (JIT, pools, timers) so the measurement sees only per-connection state.
        foreach (var s in await OpenAsync(env, 8))
            s.Dispose();
        await WaitForAsync(() => env.Listener.ConnectionCount == baseline, TimeSpan.FromSeconds(30));

        long before = ManagedHeap();
        var sockets = await OpenAsync(env, Connections);
        await WaitForAsync(() => env.Listener.ConnectionCount == baseline + Connections, TimeSpan.FromSeconds(30));
        await Task.Delay(300); // let the server read what was sent
        long after = ManagedHeap();
        long perConnection = (after - before) / Connections;
        output.WriteLine($"{Connections} stalled connections: managed heap {before / 1024} KiB -> {after / 1024} KiB, {perConnection} bytes per connection");
        Assert.True(perConnection <= TargetTransportOptions.IdleConnectionMemoryBudget,
            $"{perConnection} bytes per stalled connection, budget {TargetTransportOptions.IdleConnectionMemoryBudget}");

        // Other hosts are served meanwhile.
        Assert.True((await bystander.Io.ReadAsync(1, 0, 1, new byte[BlockSize])).Status.IsSuccess);

        // None of them completed a Connect: all are closed after the initialization timeout.
        await WaitForAsync(() => env.Listener.ConnectionCount == baseline, initTimeout + TimeSpan.FromSeconds(20));
        foreach (var s in sockets)
        {
            Assert.True(await ClosedByPeerAsync(s), "a stalled connection was not closed");
            s.Dispose();
        }
        await env.AssertUnharmedAsync(zones, bystander);
    }

    /// <summary>Four kinds, round robin: silent; half a common header; ICReq + part of a capsule header;
    /// ICReq + a capsule announcing 8 KiB of in-capsule data followed by only 1000 bytes of it.</summary>
    private static async Task<List<Socket>> OpenAsync(ZnsLoopback env, int count)
    {
        var icReq = new byte[NvmeTcp.IcPduSize];
        PduWriter.WriteIcReq(icReq, DigestOptions.None);
        var sqe = Io(IoOpcode.Write, 1, 0, 2, 2 * BlockSize, NvmeTcp.SglInCapsuleData);
        var capsule = Capsule(sqe, new byte[2 * BlockSize]);
        var sockets = new List<Socket>(count);
        for (int i = 0; i < count; i++)
        {
            var socket = new Socket(env.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(env.EndPoint);
            byte[] send = (i % 4) switch
            {
                0 => [],
                1 => capsule[..5],
                2 => [.. icReq, .. capsule[..40]],
                _ => [.. icReq, .. capsule[..(NvmeTcp.CapsuleCmdHeaderSize + 1000)]],
            };
            if (send.Length > 0)
                await socket.SendAsync(send);
            sockets.Add(socket);
        }
        return sockets;
    }

    private static async Task<bool> ClosedByPeerAsync(Socket socket)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(ZnsLoopback.Timeout);
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) > 0)
            {
                // ICResp of the connections that sent ICReq.
            }
            return true;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static long ManagedHeap()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting");
            await Task.Delay(20);
        }
    }
}

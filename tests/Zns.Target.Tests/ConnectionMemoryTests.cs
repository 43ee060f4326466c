// Every wait in these tests is bounded by an explicit timeout, so test cancellation tokens add nothing.
#pragma warning disable xUnit1051

using System.Net.Sockets;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Tcp;
using Zns.TestKit;
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

    private const int QueueDepth = 128;
    private const int LargeCommand = 512 * 1024;

    /// <summary>
    /// A host with 128 writes of 512 KiB outstanding (64 MiB through R2T): the target solicits only as much as
    /// <see cref="TargetTransportOptions.MaxBufferedDataBytes"/> allows, its heap stays within
    /// <see cref="TargetTransportOptions.ConnectedMemoryBound"/> while the host holds back the data, and once the host
    /// answers each R2T every write completes, in arrival order, with its data.
    /// </summary>
    [Fact]
    public async Task DeepQueueOfLargeR2TWrites_BuffersWithinTheBudget_AndAllComplete()
    {
        var options = new TargetTransportOptions();
        await using var target = new LoopbackTarget(options);
        target.Factory.QueueDepth = QueueDepth;
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync();
        // Warm-up: one complete large write (JIT, pools).
        await raw.SendAsync(Capsule(WriteSqe(999, LargeCommand, 0)));
        await AnswerUntilResponsesAsync(raw, 1);
        while (target.Factory.ExecutionOrder.TryDequeue(out _)) { }

        var capsules = new byte[QueueDepth][];
        for (int i = 0; i < QueueDepth; i++)
            capsules[i] = Capsule(WriteSqe((ushort)i, LargeCommand, (ulong)(i % 16) * LargeCommand));
        long before = ManagedHeap();
        foreach (var capsule in capsules)
            await raw.SendAsync(capsule);

        // Only the first commands that fit the budget get an R2T; the rest wait without a buffer.
        int solicited = options.MaxBufferedDataBytes / LargeCommand;
        var r2ts = new List<Pdu>();
        for (int i = 0; i < solicited; i++)
        {
            var r2t = (await raw.ReceivePduAsync(ZnsLoopback.Timeout))!.Value.Pdu;
            Assert.Equal(PduType.R2T, r2t.Type);
            Assert.Equal((ushort)i, r2t.CommandId);
            r2ts.Add(r2t);
        }
        await Assert.ThrowsAsync<TimeoutException>(() => raw.ReceivePduAsync(TimeSpan.FromMilliseconds(500)));
        long during = ManagedHeap();
        long bound = options.ConnectedMemoryBound(LargeCommand);
        output.WriteLine($"{QueueDepth} R2T writes of {LargeCommand / 1024} KiB outstanding, {solicited} solicited: managed heap " +
            $"{before / 1024} KiB -> {during / 1024} KiB (+{(during - before) / 1024} KiB), bound {bound / 1024} KiB; " +
            $"unbounded would be {(long)QueueDepth * LargeCommand / 1024} KiB");
        Assert.True(during - before <= bound, $"heap grew by {during - before} bytes, bound {bound}");

        // The host now answers the R2Ts (the first ones, then each one the target sends as buffers free up).
        foreach (var r2t in r2ts)
            await SendWriteDataAsync(raw, r2t);
        await AnswerUntilResponsesAsync(raw, QueueDepth);
        AssertRanInOrderAndLastWriteLanded(target, LargeCommand);
    }

    /// <summary>
    /// A host with 128 reads of 512 KiB outstanding that does not read its socket: read buffers wait for the same
    /// budget, so the heap stays within the bound; once the host reads, every read returns its data.
    /// </summary>
    [Fact]
    public async Task DeepQueueOfLargeReads_WithAHostNotReading_StaysWithinTheBound()
    {
        var options = new TargetTransportOptions();
        await using var target = new LoopbackTarget(options);
        target.Factory.QueueDepth = QueueDepth;
        for (int slot = 0; slot < 16; slot++)
            Pattern(LargeCommand, slot).CopyTo(target.Factory.Storage, slot * LargeCommand);
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync();
        await raw.SendAsync(Capsule(ReadSqe(999, LargeCommand, 0)));
        await AnswerUntilResponsesAsync(raw, 1);

        var capsules = new byte[QueueDepth][];
        for (int i = 0; i < QueueDepth; i++)
            capsules[i] = Capsule(ReadSqe((ushort)i, LargeCommand, (ulong)(i % 16) * LargeCommand));
        long before = ManagedHeap();
        foreach (var capsule in capsules)
            await raw.SendAsync(capsule);
        await Task.Delay(500); // the target reads as much as the socket buffers take
        long during = ManagedHeap();
        long bound = options.ConnectedMemoryBound(LargeCommand);
        output.WriteLine($"{QueueDepth} reads of {LargeCommand / 1024} KiB outstanding, host not reading: managed heap " +
            $"{before / 1024} KiB -> {during / 1024} KiB (+{(during - before) / 1024} KiB), bound {bound / 1024} KiB");
        Assert.True(during - before <= bound, $"heap grew by {during - before} bytes, bound {bound}");

        var received = new Dictionary<ushort, MemoryStream>();
        for (int done = 0; done < QueueDepth;)
        {
            var (pdu, bytes) = (await raw.ReceivePduAsync(ZnsLoopback.Timeout))!.Value;
            if (pdu.Type == PduType.C2HData)
            {
                if (!received.TryGetValue(pdu.CommandId, out var stream))
                    received[pdu.CommandId] = stream = new MemoryStream();
                Assert.Equal(stream.Length, pdu.TransferOffset);
                stream.Write(bytes, pdu.DataStart, pdu.DataLength);
                continue;
            }
            Assert.Equal(PduType.CapsuleResp, pdu.Type);
            Assert.True(pdu.Response.Status.IsSuccess, $"CID {pdu.Response.CommandId}: {pdu.Response.Status}");
            ushort cid = pdu.Response.CommandId;
            Assert.Equal(Pattern(LargeCommand, cid % 16), received[cid].ToArray());
            received.Remove(cid);
            done++;
        }
    }

    /// <summary>
    /// A host that holds back the data of one R2T write and fills the rest of its queue with in-capsule writes of
    /// the largest size (each copied, since it must wait): the heap stays within
    /// <see cref="TargetTransportOptions.ConnectedMemoryBound"/>, and once the data comes every write completes in
    /// arrival order with its data.
    /// </summary>
    [Fact]
    public async Task DeepQueueOfInCapsuleWrites_BehindAHeldR2TWrite_StayWithinTheBound_AndAllComplete()
    {
        var options = new TargetTransportOptions();
        int inCapsule = options.MaxInCapsuleDataLength;
        await using var target = new LoopbackTarget(options);
        target.Factory.QueueDepth = QueueDepth;
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync();
        // Warm-up: one in-capsule write of each path (JIT, pools).
        await raw.SendAsync(Capsule(InCapsuleWriteSqe(999, inCapsule, 0), Pattern(inCapsule, 999)));
        await AnswerUntilResponsesAsync(raw, 1);
        while (target.Factory.ExecutionOrder.TryDequeue(out _)) { }

        var capsules = new byte[QueueDepth - 1][];
        for (int i = 1; i < QueueDepth; i++)
            capsules[i - 1] = Capsule(InCapsuleWriteSqe((ushort)i, inCapsule, (ulong)(i % 16) * LargeCommand), Pattern(inCapsule, i));
        long before = ManagedHeap();
        await raw.SendAsync(Capsule(WriteSqe(0, LargeCommand, 0)));
        var r2t = (await raw.ReceivePduAsync(ZnsLoopback.Timeout))!.Value.Pdu;
        Assert.Equal(PduType.R2T, r2t.Type);
        foreach (var capsule in capsules)
            await raw.SendAsync(capsule);
        await Task.Delay(500); // the target reads and copies what it is sent
        long during = ManagedHeap();
        long bound = options.ConnectedMemoryBound(LargeCommand);
        output.WriteLine($"{QueueDepth - 1} in-capsule writes of {inCapsule / 1024} KiB behind a held R2T: managed heap " +
            $"{before / 1024} KiB -> {during / 1024} KiB (+{(during - before) / 1024} KiB), bound {bound / 1024} KiB");
        Assert.True(during - before <= bound, $"heap grew by {during - before} bytes, bound {bound}");
        Assert.Empty(target.Factory.ExecutionOrder);

        await SendWriteDataAsync(raw, r2t);
        await AnswerUntilResponsesAsync(raw, QueueDepth);
        AssertRanInOrderAndLastWriteLanded(target, inCapsule);
    }

    /// <summary>Writes with CIDs 0..QueueDepth-1, CID i to slot i % 16 with the pattern of its CID: they executed in
    /// arrival order, and each slot holds its last write's data.</summary>
    private static void AssertRanInOrderAndLastWriteLanded(LoopbackTarget target, int writeLength)
    {
        Assert.Equal(Enumerable.Range(0, QueueDepth).Select(i => (ushort)i), target.Factory.ExecutionOrder);
        for (int slot = 0; slot < 16; slot++)
        {
            int last = QueueDepth - 16 + slot;
            Assert.Equal(Pattern(writeLength, last), target.Factory.Storage.AsSpan(slot * LargeCommand, writeLength).ToArray());
        }
    }

    private static SubmissionQueueEntry InCapsuleWriteSqe(ushort cid, int length, ulong offset)
    {
        var sqe = LoopbackTarget.Command(IoOpcode.Write, offset);
        sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
        sqe.SetCommandId(cid);
        sqe.SetSgl(0, (uint)length, NvmeTcp.SglInCapsuleData);
        return sqe;
    }

    private static SubmissionQueueEntry WriteSqe(ushort cid, int length, ulong offset) =>
        DataSqe(IoOpcode.Write, cid, length, offset);

    private static SubmissionQueueEntry ReadSqe(ushort cid, int length, ulong offset) =>
        DataSqe(IoOpcode.Read, cid, length, offset);

    private static SubmissionQueueEntry DataSqe(byte opcode, ushort cid, int length, ulong offset)
    {
        var sqe = LoopbackTarget.Command(opcode, offset);
        sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
        sqe.SetCommandId(cid);
        sqe.SetSgl(0, (uint)length, NvmeTcp.SglTransportDataBlock);
        return sqe;
    }

    /// <summary>Reads PDUs, answering every R2T with the pattern of its CID, until <paramref name="count"/> successful responses arrived.</summary>
    private static async Task AnswerUntilResponsesAsync(RawNvmeTcpConnection raw, int count)
    {
        for (int done = 0; done < count;)
        {
            var pdu = (await raw.ReceivePduAsync(ZnsLoopback.Timeout))!.Value.Pdu;
            if (pdu.Type == PduType.R2T)
            {
                await SendWriteDataAsync(raw, pdu);
                continue;
            }
            if (pdu.Type == PduType.C2HData)
                continue;
            Assert.Equal(PduType.CapsuleResp, pdu.Type);
            Assert.True(pdu.Response.Status.IsSuccess, $"CID {pdu.Response.CommandId}: {pdu.Response.Status}");
            done++;
        }
    }

    /// <summary>Sends the data an R2T solicits (all of the command's): the pattern seeded with its CID.</summary>
    private static async Task SendWriteDataAsync(RawNvmeTcpConnection raw, Pdu r2t)
    {
        Assert.Equal(0u, r2t.TransferOffset);
        ushort cid = r2t.CommandId;
        ushort ttag = r2t.TransferTag;
        int length = (int)r2t.TransferLength;
        var data = Pattern(length, cid);
        const int chunk = 128 * 1024;
        var pdu = new byte[PduWriter.DataPduLength(chunk, DigestOptions.None)];
        for (int offset = 0; offset < length; offset += chunk)
        {
            int n = Math.Min(chunk, length - offset);
            int written = PduWriter.WriteDataPdu(pdu, PduType.H2CData, cid, ttag, (uint)offset,
                data.AsSpan(offset, n), offset + n == length, DigestOptions.None);
            await raw.SendAsync(pdu.AsMemory(0, written));
        }
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

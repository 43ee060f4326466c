// Every wait in these tests is bounded by an explicit timeout, so test cancellation tokens add nothing.
#pragma warning disable xUnit1051

using System.Net.Sockets;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using Zns.Target.Tcp;
using Zns.TestKit;
using static Zns.Target.Tests.ZnsLoopback;

namespace Zns.Target.Tests;

/// <summary>Host allow-list, the connection cap, the per-connection memory budget and the initialization timeout.</summary>
public sealed class AccessAndLimitsTests
{
    [Fact]
    public async Task HostNotOnTheAllowList_GetsConnectInvalidHost_OthersConnect()
    {
        await using var env = Start(new TargetOptions { AllowedHostNqns = [HostA, HostB] });
        var (bystander, zones) = await env.PrepareAsync(); // HostB
        await using var refused = await NvmeTcpInitiator.ConnectAsync(env.EndPoint);
        var cqe = await refused.ConnectAdminQueueAsync(env.Nqn, HostC, HostIdOf(HostC));
        // NVMe-oF Connect response: SCT 1 / SC 84h Connect Invalid Host, DNR; DW0 points at HOSTNQN (data offset 512).
        Assert.Equal(1, cqe.Status.Sct);
        Assert.Equal(0x84, cqe.Status.Sc);
        Assert.True(cqe.Status.Dnr);
        Assert.Equal(0x1_0200UL, cqe.Result);
        Assert.Equal(1, env.Target.Subsystem.ControllerCount); // no controller was created for it
        // The refused queue is still unconnected: nothing but Connect is accepted on it.
        Assert.Equal(NvmeStatus.CommandSequenceError.WithDnr(), (await refused.PropertyGetAsync(ControllerProperties.Cap, true)).Status);
        // An I/O queue Connect naming an existing controller does not get around the list either.
        cqe = await refused.FabricsConnectAsync(1, 31, bystander.Admin.ControllerId, env.Nqn, HostC, HostIdOf(HostC), 0);
        Assert.Equal(NvmeStatus.ConnectInvalidHost.WithDnr(), cqe.Status);
        // Discovery stays open to every host (nvmet does the same); allowed hosts connect.
        await using (var discovery = await NvmeTcpInitiator.ConnectAsync(env.EndPoint))
            Assert.True((await discovery.ConnectAdminQueueAsync(TargetOptions.DiscoveryNqn, HostC, HostIdOf(HostC))).Status.IsSuccess);
        await using (var allowed = await env.ConnectHostAsync(HostA))
            Assert.True((await allowed.Io.ReadAsync(1, 0, 1, new byte[BlockSize])).Status.IsSuccess);
        Assert.Equal(zones, env.ReportZones());
    }

    [Fact]
    public async Task ConnectionsAboveTheCapAreClosedAtOnce_AndAdmittedAgainWhenOthersLeave()
    {
        await using var env = Start(transport: new TargetTransportOptions { MaxConnections = 3 });
        var held = new List<RawNvmeTcpConnection>();
        for (int i = 0; i < 3; i++)
        {
            var raw = await RawNvmeTcpConnection.ConnectAsync(env.EndPoint);
            await raw.HandshakeAsync();
            held.Add(raw);
        }
        await using (var extra = await RawNvmeTcpConnection.ConnectAsync(env.EndPoint))
        {
            // Accepted by the kernel, then closed by the target without an ICResp.
            var icReq = new byte[NvmeTcp.IcPduSize];
            PduWriter.WriteIcReq(icReq, DigestOptions.None);
            try { await extra.SendAsync(icReq); } catch (SocketException) { }
            Assert.True(await extra.WaitForCloseAsync(ZnsLoopback.Timeout));
        }
        Assert.Equal(3, env.Listener.ConnectionCount);
        // Two leave; a host (admin + I/O connection) fits again.
        await held[0].DisposeAsync();
        await held[1].DisposeAsync();
        held.RemoveRange(0, 2);
        var deadline = DateTime.UtcNow + ZnsLoopback.Timeout;
        while (env.Listener.ConnectionCount > 1 && DateTime.UtcNow < deadline)
            await Task.Delay(10);
        await using var host = await env.ConnectHostAsync(HostA);
        Assert.True((await host.Io.ReadAsync(1, 0, 1, new byte[BlockSize])).Status.IsSuccess);
        foreach (var raw in held)
            await raw.DisposeAsync();
    }

    /// <summary>
    /// An I/O queue connected with SQSIZE 31 holds 32 outstanding commands; a completed one frees its entry; a 33rd
    /// outstanding capsule is a fatal transport error (C2HTermReq, PDU Sequence Error) and closes only that queue.
    /// </summary>
    [Fact]
    public async Task CommandsBeyondSqsizePlusOne_AreAFatalTransportError()
    {
        await using var env = Start();
        var (bystander, _) = await env.PrepareAsync();
        await using var raw = await env.RawIoQueueAsync(bystander, 2); // SQSIZE 31
        ulong zone2 = 2 * env.ZoneLbas;
        // 32 writes through R2T whose data the host holds back: all 32 are outstanding.
        for (ushort cid = 0; cid < 32; cid++)
            await raw.SendAsync(Capsule(Io(IoOpcode.Write, cid, zone2 + cid, 1, BlockSize, NvmeTcp.SglTransportDataBlock)));
        var r2ts = new List<Pdu>();
        for (int i = 0; i < 32; i++)
        {
            var pdu = (await raw.ReceivePduAsync(ZnsLoopback.Timeout))!.Value.Pdu;
            Assert.Equal(PduType.R2T, pdu.Type);
            r2ts.Add(pdu);
        }
        // The first completes; its entry is free again and one more command fits.
        var data = new byte[PduWriter.DataPduLength(BlockSize, DigestOptions.None)];
        PduWriter.WriteDataPdu(data, PduType.H2CData, 0, r2ts[0].TransferTag, 0, Pattern(BlockSize, 5), true, DigestOptions.None);
        await raw.SendAsync(data);
        Assert.True((await ExpectResponseAsync(raw, 0)).Status.IsSuccess);
        await raw.SendAsync(Capsule(Io(IoOpcode.Write, 32, zone2 + 32, 1, BlockSize, NvmeTcp.SglTransportDataBlock)));
        Assert.Equal(PduType.R2T, (await raw.ReceivePduAsync(ZnsLoopback.Timeout))!.Value.Pdu.Type);
        var zones = env.ReportZones();
        // Now 32 are outstanding again: one more overflows the queue.
        await raw.SendAsync(Capsule(Io(IoOpcode.Read, 33, 0, 1, BlockSize, NvmeTcp.SglTransportDataBlock)));
        var term = await ExpectTermReqAndCloseAsync(raw, FatalErrorStatus.PduSequenceError, 0);
        Assert.Equal(NvmeTcp.CapsuleCmdHeaderSize, term.DataLength); // the offending capsule header is echoed
        // The writes still waiting for data were dropped; the controller and its other queues carry on.
        await env.AssertUnharmedAsync(zones, bystander);
    }

    /// <summary>Before Connect a queue has no size yet: one command may be outstanding (the Connect the host sends).</summary>
    [Fact]
    public async Task SecondOutstandingCommandBeforeConnect_IsAFatalTransportError()
    {
        await using var env = Start();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(env.EndPoint);
        await raw.HandshakeAsync();
        await raw.SendAsync(Capsule(Io(IoOpcode.Write, 1, 0, 1, BlockSize, NvmeTcp.SglTransportDataBlock)));
        Assert.Equal(PduType.R2T, (await raw.ReceivePduAsync(ZnsLoopback.Timeout))!.Value.Pdu.Type);
        await raw.SendAsync(Capsule(Io(IoOpcode.Read, 2, 0, 1, BlockSize, NvmeTcp.SglTransportDataBlock)));
        await ExpectTermReqAndCloseAsync(raw, FatalErrorStatus.PduSequenceError, 0);
    }

    /// <summary>
    /// With a data budget of 1 MiB, a full queue of large R2T writes, reads and in-capsule writes, one of them a 2 MiB
    /// write larger than the whole budget, all complete with the right data.
    /// </summary>
    [Theory]
    [InlineData(DigestOptions.None)]
    [InlineData(DigestOptions.Header | DigestOptions.Data)]
    public async Task FullQueueOfLargeCommands_WithASmallDataBudget_AllComplete(DigestOptions digests)
    {
        const int Mib = 1024 * 1024;
        await using var target = new LoopbackTarget(new TargetTransportOptions { MaxBufferedDataBytes = Mib });
        await using var host = await target.ConnectAsync(new NvmeTcpInitiatorOptions { Digests = digests });
        var tasks = new List<Task<CompletionQueueEntry>>();
        var reads = new List<(byte[] Buffer, int Seed)>();
        for (int i = 0; i < 128; i++)
        {
            ulong offset = (ulong)(i % 8) * Mib;
            switch (i % 4)
            {
                case 0:
                    tasks.Add(host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, offset), LoopbackTarget.Pattern(i == 64 ? 2 * Mib : 512 * 1024, i)));
                    break;
                case 1:
                    var buffer = new byte[256 * 1024];
                    tasks.Add(host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Read, offset), readBuffer: buffer));
                    break;
                case 2:
                    tasks.Add(host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, offset), LoopbackTarget.Pattern(4096, i)));
                    break;
                default:
                    tasks.Add(host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, offset), LoopbackTarget.Pattern(Mib, i)));
                    break;
            }
        }
        var results = await Task.WhenAll(tasks).WaitAsync(ZnsLoopback.Timeout);
        Assert.All(results, r => Assert.True(r.Status.IsSuccess, $"CID {r.CommandId}: {r.Status}"));
        // Replaying the writes in the order the handler ran them gives the storage's contents.
        var indexOf = Enumerable.Range(0, 128).ToDictionary(i => results[i].CommandId);
        var expected = new byte[8 * Mib];
        foreach (ushort cid in target.Factory.ExecutionOrder)
        {
            if (!indexOf.TryGetValue(cid, out int i) || i % 4 == 1)
                continue;
            int length = (i % 4) switch { 0 => i == 64 ? 2 * Mib : 512 * 1024, 2 => 4096, _ => Mib };
            LoopbackTarget.Pattern(length, i).CopyTo(expected, (i % 8) * Mib);
        }
        Assert.Equal(expected, target.Factory.Storage.AsSpan(0, 8 * Mib).ToArray());
    }
}

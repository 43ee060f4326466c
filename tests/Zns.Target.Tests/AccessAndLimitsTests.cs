// Every wait in these tests is bounded by an explicit timeout, so test cancellation tokens add nothing.
#pragma warning disable xUnit1051

using System.Net.Sockets;
using Zns.Core.Nvme;
using Zns.Protocol;
using Zns.Target.Nvme;
using Zns.Target.Nvme.Wire;
using Zns.Target.Transport;
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
}

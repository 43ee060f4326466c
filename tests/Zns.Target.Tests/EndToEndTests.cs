using System.Buffers.Binary;
using System.Net;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using Zns.Target.Tcp;
using Zns.TestKit;

namespace Zns.Target.Tests;

/// <summary>The controller layer behind the real NVMe/TCP listener, driven by the test initiator over loopback.</summary>
public sealed class EndToEndTests
{
    private static readonly Guid HostId = Guid.Parse("0b1a9e0d-3f2c-4c1e-9a8b-7d6e5f4a3b2c");

    [Fact]
    public async Task ConnectIdentifyWriteAppendReportOverTcp()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var ns = ZonedNamespace.CreateInMemory(64L << 20, new NamespaceOptions { ZoneSize = 4L << 20 });
        using var target = new NvmeTarget(new TargetOptions(), [ns]);
        await using var listener = new NvmeTcpListener(new TargetTransportOptions { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) }, target);
        listener.Start();
        target.SetListenerAddress(listener.LocalEndPoint);
        string nqn = target.Subsystem.Nqn;

        await using NvmeTcpInitiator admin = await NvmeTcpInitiator.ConnectAsync(listener.LocalEndPoint, cancellationToken: ct);
        CompletionQueueEntry c = await admin.ConnectAdminQueueAsync(nqn, TestHost.HostNqn, HostId, keepAliveTimeoutMs: 5000, cancellationToken: ct);
        Assert.True(c.Status.IsSuccess, c.Status.ToString());
        ushort cntlid = admin.ControllerId;
        Assert.Equal(0x0000_0820_0F00_007FUL, (await admin.PropertyGetAsync(ControllerProperties.Cap, true, ct)).Result);
        Assert.True((await admin.PropertySetAsync(ControllerProperties.Cc, 0x00460061, cancellationToken: ct)).Status.IsSuccess);
        Assert.Equal(1UL, (await admin.PropertyGetAsync(ControllerProperties.Csts, false, ct)).Result);

        byte[] id = new byte[4096];
        Assert.True((await admin.IdentifyAsync(IdentifyCns.Controller, 0, id, cancellationToken: ct)).Status.IsSuccess);
        Assert.Equal(cntlid, BinaryPrimitives.ReadUInt16LittleEndian(id.AsSpan(78)));
        byte[] descs = new byte[4096];
        Assert.True((await admin.IdentifyAsync(IdentifyCns.NamespaceDescriptorList, 1, descs, cancellationToken: ct)).Status.IsSuccess);
        Assert.Equal(2, descs[44]);

        await using NvmeTcpInitiator io = await NvmeTcpInitiator.ConnectAsync(listener.LocalEndPoint, cancellationToken: ct);
        Assert.True((await io.ConnectIoQueueAsync(1, cntlid, nqn, TestHost.HostNqn, HostId, cancellationToken: ct)).Status.IsSuccess);

        // 64 KiB write goes through R2T/H2CData, then reads back via C2HData.
        byte[] data = new byte[16 * 4096];
        Random.Shared.NextBytes(data);
        Assert.True((await io.WriteAsync(1, 0, 16, data, ct)).Status.IsSuccess);
        byte[] back = new byte[data.Length];
        Assert.True((await io.ReadAsync(1, 0, 16, back, ct)).Status.IsSuccess);
        Assert.Equal(data, back);

        ulong zone1 = ns.Geometry.ZoneSizeLbas;
        CompletionQueueEntry append = await io.ZoneAppendAsync(1, zone1, 2, data.AsMemory(0, 8192), ct);
        Assert.True(append.Status.IsSuccess);
        Assert.Equal(zone1, append.Result);

        // Write not at the write pointer: the core's status comes back unchanged.
        CompletionQueueEntry bad = await io.WriteAsync(1, 3, 1, data.AsMemory(0, 4096), ct);
        Assert.Equal(NvmeStatus.ZoneInvalidWrite.WithDnr(), bad.Status);

        byte[] report = new byte[64 + 64 * 2];
        Assert.True((await io.ZoneManagementReceiveAsync(1, 0, report, cancellationToken: ct)).Status.IsSuccess);
        Assert.Equal(16UL, BinaryPrimitives.ReadUInt64LittleEndian(report.AsSpan(64 + 24)));
        Assert.Equal(zone1 + 2, BinaryPrimitives.ReadUInt64LittleEndian(report.AsSpan(128 + 24)));

        Assert.True((await admin.KeepAliveAsync(ct)).Status.IsSuccess);
        // Shutdown as `nvme disconnect` does.
        Assert.True((await admin.PropertySetAsync(ControllerProperties.Cc, 0x00464061, cancellationToken: ct)).Status.IsSuccess);
        Assert.Equal(8UL, (await admin.PropertyGetAsync(ControllerProperties.Csts, false, ct)).Result & 0xC);
    }
}

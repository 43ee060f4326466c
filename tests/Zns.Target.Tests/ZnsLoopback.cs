using System.Buffers.Binary;
using System.Net;
using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using Zns.Target.Tcp;
using Zns.TestKit;

namespace Zns.Target.Tests;

/// <summary>
/// A real <see cref="NvmeTarget"/> behind an <see cref="NvmeTcpListener"/> on 127.0.0.1:0, with one in-memory
/// zoned namespace (16 zones of 1 MiB, 4 KiB blocks, MDTS 128 KiB, ZASL 32 KiB, 4 open / 6 active), and helpers to
/// connect hosts and to check that a bad input changed nothing it should not have.
/// </summary>
internal sealed class ZnsLoopback : IAsyncDisposable
{
    public const string HostA = "nqn.2014-08.org.nvmexpress:uuid:0000000a-0000-4000-8000-00000000000a";
    public const string HostB = "nqn.2014-08.org.nvmexpress:uuid:0000000b-0000-4000-8000-00000000000b";
    public const string HostC = "nqn.2014-08.org.nvmexpress:uuid:0000000c-0000-4000-8000-00000000000c";
    public const int BlockSize = 4096;
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public static readonly NamespaceOptions NamespaceOptions = new()
    {
        ZoneSize = 1 << 20, MaxOpen = 4, MaxActive = 6, Mdts = 5, Zasl = 3,
    };

    private ZnsLoopback(TargetOptions? options, TargetTransportOptions? transport)
    {
        Namespace = ZonedNamespace.CreateInMemory(16 << 20, NamespaceOptions);
        Target = new NvmeTarget(options ?? new TargetOptions(), [Namespace]);
        TransportOptions = (transport ?? new TargetTransportOptions()) with { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) };
        Listener = new NvmeTcpListener(TransportOptions, Target);
        Listener.Start();
        Target.SetListenerAddress(Listener.LocalEndPoint);
    }

    public ZonedNamespace Namespace { get; }
    public NvmeTarget Target { get; }
    public TargetTransportOptions TransportOptions { get; }
    public NvmeTcpListener Listener { get; }
    public IPEndPoint EndPoint => Listener.LocalEndPoint;
    public string Nqn => Target.Subsystem.Nqn;
    public ulong NamespaceLbas => Namespace.Geometry.NamespaceSizeLbas;
    public ulong ZoneLbas => Namespace.Geometry.ZoneSizeLbas;

    public static ZnsLoopback Start(TargetOptions? options = null, TargetTransportOptions? transport = null) => new(options, transport);

    /// <summary>Admin queue (Connect, CC.EN = 1) and I/O queue 1 of a new controller for <paramref name="hostNqn"/>.</summary>
    public async Task<ZnsHost> ConnectHostAsync(string hostNqn = HostA)
    {
        var admin = await NvmeTcpInitiator.ConnectAsync(EndPoint);
        var c = await admin.ConnectAdminQueueAsync(Nqn, hostNqn, HostIdOf(hostNqn));
        Assert.True(c.Status.IsSuccess, $"admin Connect: {c.Status}");
        Assert.True((await admin.PropertySetAsync(ControllerProperties.Cc, 0x00460061)).Status.IsSuccess);
        var io = await NvmeTcpInitiator.ConnectAsync(EndPoint);
        c = await io.ConnectIoQueueAsync(1, admin.ControllerId, Nqn, hostNqn, HostIdOf(hostNqn));
        Assert.True(c.Status.IsSuccess, $"I/O Connect: {c.Status}");
        return new ZnsHost(admin, io, hostNqn);
    }

    public static Guid HostIdOf(string hostNqn) => Guid.Parse(hostNqn[^36..]);

    /// <summary>The full zone report, read from the namespace itself (independent of any connection).</summary>
    public byte[] ReportZones()
    {
        var report = new byte[64 + (int)Namespace.Geometry.ZoneCount * 64];
        Assert.True(Namespace.ZoneManagementReceive(0, 0, 0, false, report).IsSuccess);
        return report;
    }

    /// <summary>
    /// A host that is already connected writes two blocks into zone 0 and opens zone 1, so the zones are in a
    /// non-trivial state; returns it (the bystander) and the zone report taken afterwards.
    /// </summary>
    public async Task<(ZnsHost Bystander, byte[] Zones)> PrepareAsync()
    {
        var bystander = await ConnectHostAsync(HostB);
        Assert.True((await bystander.Io.WriteAsync(1, 0, 2, Pattern(2 * BlockSize, 1))).Status.IsSuccess);
        Assert.True((await bystander.Io.ZoneManagementSendAsync(1, ZoneLbas, (byte)ZoneSendAction.Open)).Status.IsSuccess);
        return (bystander, ReportZones());
    }

    /// <summary>
    /// After a bad input: the zones are exactly as before, the bystander's queues still answer, and a host that
    /// connects now sees the same zones over the wire and can read.
    /// </summary>
    public async Task AssertUnharmedAsync(byte[] zonesBefore, ZnsHost bystander)
    {
        Assert.Equal(zonesBefore, ReportZones());
        Assert.Equal(1UL, (await bystander.Admin.PropertyGetAsync(ControllerProperties.Csts, false)).Result & 1);
        var report = new byte[zonesBefore.Length];
        Assert.True((await bystander.Io.ZoneManagementReceiveAsync(1, 0, report)).Status.IsSuccess);
        Assert.Equal(zonesBefore, report);

        await using var fresh = await ConnectHostAsync(HostC);
        Array.Clear(report);
        Assert.True((await fresh.Io.ZoneManagementReceiveAsync(1, 0, report)).Status.IsSuccess);
        Assert.Equal(zonesBefore, report);
        var block = new byte[2 * BlockSize];
        Assert.True((await fresh.Io.ReadAsync(1, 0, 2, block)).Status.IsSuccess);
        Assert.Equal(Pattern(2 * BlockSize, 1), block);
    }

    /// <summary>A raw connection that completed ICReq and connected I/O queue <paramref name="qid"/> of <paramref name="host"/>'s controller.</summary>
    public async Task<RawNvmeTcpConnection> RawIoQueueAsync(ZnsHost host, ushort qid, DigestOptions digests = DigestOptions.None)
    {
        var raw = await RawNvmeTcpConnection.ConnectAsync(EndPoint);
        await raw.HandshakeAsync(digests);
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.Fabrics);
        sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
        sqe.SetCommandId(0x77);
        sqe.Bytes[4] = FabricsCommandType.Connect;
        sqe.SetCdw(10, (uint)qid << 16);
        sqe.SetCdw(11, 31);
        var data = NvmeTcpInitiator.BuildConnectData(Nqn, host.HostNqn, HostIdOf(host.HostNqn), host.Admin.ControllerId);
        sqe.SetSgl(0, (uint)data.Length, NvmeTcp.SglInCapsuleData);
        await raw.SendAsync(Capsule(sqe, data, digests));
        var resp = await ExpectResponseAsync(raw, 0x77);
        Assert.True(resp.Status.IsSuccess, $"raw I/O Connect: {resp.Status}");
        return raw;
    }

    public static byte[] Capsule(in SubmissionQueueEntry sqe, ReadOnlySpan<byte> data = default, DigestOptions digests = DigestOptions.None)
    {
        var bytes = new byte[PduWriter.CapsuleCmdLength(data.Length, digests)];
        PduWriter.WriteCapsuleCmd(bytes, sqe, data, digests);
        return bytes;
    }

    /// <summary>An I/O command with SGL and CID filled in, as the Linux host sends it.</summary>
    public static SubmissionQueueEntry Io(byte opcode, ushort cid, ulong slba, int blocks, uint sglLength, byte sglId, uint nsid = 1)
    {
        var sqe = NvmeTcpInitiator.IoCommand(opcode, nsid, slba, blocks);
        sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
        sqe.SetCommandId(cid);
        sqe.SetSgl(0, sglLength, sglId);
        return sqe;
    }

    /// <summary>Reads PDUs until the CapsuleResp for <paramref name="cid"/>; fails on anything else but C2HData for it.</summary>
    public static async Task<CompletionQueueEntry> ExpectResponseAsync(RawNvmeTcpConnection raw, ushort cid)
    {
        while (true)
        {
            var received = await raw.ReceivePduAsync(Timeout);
            Assert.NotNull(received);
            var pdu = received.Value.Pdu;
            if (pdu.Type == PduType.CapsuleResp)
            {
                Assert.Equal(cid, pdu.Response.CommandId);
                return pdu.Response;
            }
            Assert.True(pdu.Type == PduType.C2HData && pdu.CommandId == cid, $"unexpected {pdu.Type}");
        }
    }

    /// <summary>Reads the next PDU: a C2HTermReq with this FES (and FEI) after which the target closes the connection.</summary>
    public static async Task<Pdu> ExpectTermReqAndCloseAsync(RawNvmeTcpConnection raw, FatalErrorStatus fes, uint? fei = null)
    {
        var received = await raw.ReceivePduAsync(Timeout);
        Assert.NotNull(received);
        var pdu = received.Value.Pdu;
        Assert.Equal(PduType.C2HTermReq, pdu.Type);
        Assert.Equal(fes, pdu.FatalStatus);
        if (fei is { } expected)
            Assert.Equal(expected, pdu.FatalInformation);
        Assert.True(await raw.WaitForCloseAsync(Timeout), "the target did not close the connection");
        return pdu;
    }

    public static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static ushort Status(NvmeStatus s) => s.Value;

    public async ValueTask DisposeAsync()
    {
        await Listener.DisposeAsync();
        Target.Dispose();
        Namespace.Dispose();
    }
}

/// <summary>One host's controller: its admin and I/O queue connections.</summary>
internal sealed record ZnsHost(NvmeTcpInitiator Admin, NvmeTcpInitiator Io, string HostNqn) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        await Io.DisposeAsync();
        await Admin.DisposeAsync();
    }
}

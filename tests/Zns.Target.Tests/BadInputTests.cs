// Every wait in these tests is bounded by an explicit timeout, so test cancellation tokens add nothing.
#pragma warning disable xUnit1051

using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Protocol;
using Zns.Nvme.Layouts;
using Zns.TestKit;
using static Zns.Target.Tests.ZnsLoopback;

namespace Zns.Target.Tests;

/// <summary>
/// One test per class of bad input, against the real controller layer behind the NVMe/TCP listener. Each asserts
/// the answer the specifications define (a status with DNR, or a C2HTermReq with the FES and then a close), and
/// then that nothing else was harmed: the zones are byte-for-byte what they were, a host that was already
/// connected still gets answers on both its queues, and a host that connects afterwards works.
/// </summary>
/// <remarks>
/// Related tests elsewhere (same answer, but against a stand-in controller or without the harm checks):
/// TransportErrorTests (CapsuleBeforeIcReq, SecondIcReq, IcReq PFV/HPDA/PLEN, H2CData TTAG/CCCID/offset/length/
/// LAST_PDU errors, in-capsule data above the limit, silent connection timeout, PRP commands), ConnectTests
/// (command before Connect, second Connect, SQSIZE, allow-list — on the queue handler without a socket),
/// IoDispatchTests (invalid NSID, data length versus NLB), AdminCommandTests (I/O opcodes on the admin queue),
/// and Zns.Protocol.Tests PduParserTests (every header field rule of the parser on its own).
/// </remarks>
public sealed class BadInputTests
{
    // ------------------------------------------------------------------ transport: C2HTermReq and close

    [Fact]
    public async Task WrongHlen_IsInvalidHeaderFieldAtOffset2()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var raw = await env.RawIoQueueAsync(bystander, 2);
        var capsule = Capsule(Io(IoOpcode.Write, 1, 2, 1, BlockSize, NvmeTcp.SglInCapsuleData), new byte[BlockSize]);
        capsule[2] = 70;
        await raw.SendAsync(capsule);
        var term = await ExpectTermReqAndCloseAsync(raw, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetHlen);
        Assert.True(term.DataLength >= 8); // the offending header is echoed
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Fact]
    public async Task WrongPlen_IsInvalidHeaderFieldAtOffset4()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var raw = await env.RawIoQueueAsync(bystander, 2);
        var capsule = Capsule(Io(IoOpcode.Flush, 1, 0, 1, 0, NvmeTcp.SglTransportDataBlock));
        BinaryPrimitives.WriteUInt32LittleEndian(capsule.AsSpan(4), 71); // shorter than the header
        await raw.SendAsync(capsule);
        await ExpectTermReqAndCloseAsync(raw, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetPlen);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Fact]
    public async Task PdoInsideTheHeader_IsInvalidHeaderFieldAtOffset3_AndTheWriteIsNotExecuted()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var raw = await env.RawIoQueueAsync(bystander, 2);
        var capsule = Capsule(Io(IoOpcode.Write, 1, 2, 1, BlockSize, NvmeTcp.SglInCapsuleData), new byte[BlockSize]);
        capsule[3] = 40;
        await raw.SendAsync(capsule);
        await ExpectTermReqAndCloseAsync(raw, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetPdo);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Theory]
    [InlineData((byte)0x08)]                   // undefined
    [InlineData((byte)0x0B)]                   // undefined
    [InlineData((byte)0xFF)]                   // undefined
    [InlineData((byte)PduType.CapsuleResp)]    // defined, but only the controller sends it
    [InlineData((byte)PduType.R2T)]            // defined, but only the controller sends it
    public async Task UnknownOrWrongDirectionPduType_IsInvalidHeaderFieldAtOffset0(byte type)
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var raw = await env.RawIoQueueAsync(bystander, 2);
        var capsule = Capsule(Io(IoOpcode.Flush, 1, 0, 1, 0, NvmeTcp.SglTransportDataBlock));
        capsule[0] = type;
        await raw.SendAsync(capsule);
        await ExpectTermReqAndCloseAsync(raw, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetType);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Fact]
    public async Task HeaderDigestMismatch_IsHeaderDigestError()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var raw = await env.RawIoQueueAsync(bystander, 2, DigestOptions.Header);
        var capsule = Capsule(Io(IoOpcode.Write, 1, 2, 1, BlockSize, NvmeTcp.SglInCapsuleData), new byte[BlockSize], DigestOptions.Header);
        capsule[NvmeTcp.CapsuleCmdHeaderSize] ^= 0x01;
        await raw.SendAsync(capsule);
        await ExpectTermReqAndCloseAsync(raw, FatalErrorStatus.HeaderDigestError);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Fact]
    public async Task DataDigestMismatch_FailsOnlyThatCommand_WithTransientTransportError_AndWritesNothing()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var raw = await env.RawIoQueueAsync(bystander, 2, DigestOptions.Data);
        // A write exactly at the write pointer of zone 0: it would succeed if its data were intact.
        var capsule = Capsule(Io(IoOpcode.Write, 5, 2, 1, BlockSize, NvmeTcp.SglInCapsuleData), Pattern(BlockSize, 7), DigestOptions.Data);
        capsule[^1] ^= 0xFF; // the data digest
        await raw.SendAsync(capsule);
        var cqe = await ExpectResponseAsync(raw, 5);
        // NVMe/TCP: a data digest error is a Transient Transport Error (generic 22h); retrying may succeed, so no DNR.
        Assert.Equal(0, cqe.Status.Sct);
        Assert.Equal(0x22, cqe.Status.Sc);
        Assert.False(cqe.Status.Dnr);
        // The connection stays usable.
        await raw.SendAsync(Capsule(Io(IoOpcode.Flush, 6, 0, 1, 0, NvmeTcp.SglTransportDataBlock), default, DigestOptions.Data));
        Assert.True((await ExpectResponseAsync(raw, 6)).Status.IsSuccess);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Fact]
    public async Task DataBeforeIcReq_IsPduSequenceError()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(env.EndPoint);
        var h2c = new byte[PduWriter.DataPduLength(BlockSize, DigestOptions.None)];
        PduWriter.WriteDataPdu(h2c, PduType.H2CData, 1, 0, 0, new byte[BlockSize], true, DigestOptions.None);
        await raw.SendAsync(h2c);
        var term = await ExpectTermReqAndCloseAsync(raw, FatalErrorStatus.PduSequenceError);
        Assert.Equal(NvmeTcp.DataHeaderSize, term.DataLength); // the offending header is echoed, not its data
        await env.AssertUnharmedAsync(zones, bystander);
    }

    // ------------------------------------------------------------------ commands: status with DNR, connection stays

    [Fact]
    public async Task CommandBeforeConnect_IsCommandSequenceError_AndConnectStillWorksAfterwards()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var early = await NvmeTcpInitiator.ConnectAsync(env.EndPoint);
        var id = new byte[4096];
        var cqe = await early.IdentifyAsync(IdentifyCns.Controller, 0, id);
        Assert.Equal(NvmeStatus.CommandSequenceError.WithDnr(), cqe.Status);
        Assert.All(id, b => Assert.Equal(0, b)); // no data was sent
        cqe = await early.WriteAsync(1, 2, 1, new byte[BlockSize]);
        Assert.Equal(NvmeStatus.CommandSequenceError.WithDnr(), cqe.Status);
        cqe = await early.PropertyGetAsync(ControllerProperties.Cap, true);
        Assert.Equal(NvmeStatus.CommandSequenceError.WithDnr(), cqe.Status);
        // The queue is still consistent: Connect is accepted on it now.
        Assert.True((await early.ConnectAdminQueueAsync(env.Nqn, HostA, HostIdOf(HostA))).Status.IsSuccess);
        Assert.True((await early.PropertyGetAsync(ControllerProperties.Cap, true)).Status.IsSuccess);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Fact]
    public async Task IoCommandsOnTheAdminQueue_AreInvalidOpcode()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var host = await env.ConnectHostAsync(HostA);
        Assert.Equal(NvmeStatus.InvalidOpcode.WithDnr(), (await host.Admin.WriteAsync(1, 2, 1, new byte[BlockSize])).Status);
        Assert.Equal(NvmeStatus.InvalidOpcode.WithDnr(), (await host.Admin.ZoneAppendAsync(1, 0, 1, new byte[BlockSize])).Status);
        Assert.Equal(NvmeStatus.InvalidOpcode.WithDnr(), (await host.Admin.ZoneManagementSendAsync(1, 0, (byte)ZoneSendAction.Reset, selectAll: true)).Status);
        Assert.Equal(NvmeStatus.InvalidOpcode.WithDnr(), (await host.Admin.ZoneManagementReceiveAsync(1, 0, new byte[4096])).Status);
        Assert.True((await host.Admin.PropertyGetAsync(ControllerProperties.Csts, false)).Status.IsSuccess);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Fact]
    public async Task UnknownOpcodes_AreInvalidOpcode()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var host = await env.ConnectHostAsync(HostA);
        foreach (byte opcode in (byte[])[0x04, 0x55, 0x7C, 0xC4, 0xFF])
        {
            var sqe = NvmeTcpInitiator.IoCommand(opcode, 1, 0, 1);
            Assert.Equal(NvmeStatus.InvalidOpcode.WithDnr(), (await host.Io.SubmitAsync(sqe)).Status);
        }
        foreach (byte opcode in (byte[])[0x01, 0x05, 0x80, 0xC5, 0xFE])
        {
            var sqe = NvmeTcpInitiator.IoCommand(opcode, 0, 0, 1);
            Assert.Equal(NvmeStatus.InvalidOpcode.WithDnr(), (await host.Admin.SubmitAsync(sqe)).Status);
        }
        Assert.True((await host.Io.ReadAsync(1, 0, 1, new byte[BlockSize])).Status.IsSuccess);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(2u)]
    [InlineData(0xFFFFFFFEu)]
    [InlineData(0xFFFFFFFFu)]
    public async Task InvalidNsid_IsInvalidNamespace(uint nsid)
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var host = await env.ConnectHostAsync(HostA);
        Assert.Equal(NvmeStatus.InvalidNamespace.WithDnr(), (await host.Io.WriteAsync(nsid, 2, 1, new byte[BlockSize])).Status);
        Assert.Equal(NvmeStatus.InvalidNamespace.WithDnr(), (await host.Io.ReadAsync(nsid, 0, 1, new byte[BlockSize])).Status);
        Assert.Equal(NvmeStatus.InvalidNamespace.WithDnr(), (await host.Io.ZoneAppendAsync(nsid, 0, 1, new byte[BlockSize])).Status);
        Assert.Equal(NvmeStatus.InvalidNamespace.WithDnr(), (await host.Io.ZoneManagementSendAsync(nsid, 0, (byte)ZoneSendAction.Reset, selectAll: true)).Status);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Fact]
    public async Task LbaRangesPastTheNamespace_AreLbaOutOfRange()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var host = await env.ConnectHostAsync(HostA);
        ulong end = env.NamespaceLbas;
        var lbaOutOfRange = NvmeStatus.LbaOutOfRange.WithDnr();
        Assert.Equal(lbaOutOfRange, (await host.Io.ReadAsync(1, end, 1, new byte[BlockSize])).Status);
        Assert.Equal(lbaOutOfRange, (await host.Io.ReadAsync(1, end - 1, 2, new byte[2 * BlockSize])).Status);
        Assert.Equal(lbaOutOfRange, (await host.Io.ReadAsync(1, ulong.MaxValue, 1, new byte[BlockSize])).Status);
        Assert.Equal(lbaOutOfRange, (await host.Io.WriteAsync(1, end, 1, new byte[BlockSize])).Status);
        Assert.Equal(lbaOutOfRange, (await host.Io.WriteAsync(1, ulong.MaxValue - 1, 2, new byte[2 * BlockSize])).Status);
        Assert.Equal(lbaOutOfRange, (await host.Io.ZoneManagementReceiveAsync(1, end, new byte[4096])).Status);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Fact]
    public async Task TransfersPastMdtsAndAppendsPastZasl_AreInvalidField()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var host = await env.ConnectHostAsync(HostA);
        int mdts = 4096 << ZnsLoopback.NamespaceOptions.Mdts;   // 128 KiB
        int zasl = 4096 << ZnsLoopback.NamespaceOptions.Zasl;   // 32 KiB
        // NVMe Base: a command whose transfer exceeds MDTS is aborted with Invalid Field in Command; the target
        // answers before soliciting (R2T) or sending (C2HData) any data.
        var invalidField = NvmeStatus.InvalidField.WithDnr();
        Assert.Equal(invalidField, (await host.Io.WriteAsync(1, 2, 2 * mdts / BlockSize, new byte[2 * mdts])).Status);
        var big = new byte[2 * mdts];
        Assert.Equal(invalidField, (await host.Io.ReadAsync(1, 0, 2 * mdts / BlockSize, big)).Status);
        Assert.All(big, b => Assert.Equal(0, b));
        // ZNS: a Zone Append above ZASL (but within MDTS) is Invalid Field too.
        Assert.Equal(invalidField, (await host.Io.ZoneAppendAsync(1, 2 * env.ZoneLbas, 2 * zasl / BlockSize, new byte[2 * zasl])).Status);
        Assert.True((await host.Io.ZoneAppendAsync(1, 2 * env.ZoneLbas, zasl / BlockSize, new byte[zasl])).Status.IsSuccess);
        // Undo the successful append so the zones match the snapshot again.
        Assert.True((await host.Io.ZoneManagementSendAsync(1, 2 * env.ZoneLbas, (byte)ZoneSendAction.Reset)).Status.IsSuccess);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Fact]
    public async Task DataLengthNotMatchingTheCommand_IsDataSglLengthInvalid()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var host = await env.ConnectHostAsync(HostA);
        var invalid = NvmeStatus.DataSglLengthInvalid.WithDnr();
        // NLB says 2 blocks, the SGL carries 1 (in-capsule) or 3 (through R2T).
        Assert.Equal(invalid, (await host.Io.SubmitAsync(NvmeTcpInitiator.IoCommand(IoOpcode.Write, 1, 2, 2), new byte[BlockSize])).Status);
        Assert.Equal(invalid, (await host.Io.SubmitAsync(NvmeTcpInitiator.IoCommand(IoOpcode.Write, 1, 2, 2), new byte[3 * BlockSize],
            options: new SubmitOptions { InCapsule = false })).Status);
        Assert.Equal(invalid, (await host.Io.SubmitAsync(NvmeTcpInitiator.IoCommand(IoOpcode.ZoneAppend, 1, 0, 1), new byte[512])).Status);
        Assert.Equal(invalid, (await host.Io.SubmitAsync(NvmeTcpInitiator.IoCommand(IoOpcode.Read, 1, 0, 1), readBuffer: new byte[2 * BlockSize])).Status);
        // A command that moves no data, with data.
        var reset = NvmeTcpInitiator.IoCommand(IoOpcode.ZoneManagementSend, 1, 0, 1);
        reset.SetCdw(12, 0);
        reset.SetCdw(13, (byte)ZoneSendAction.Reset | 1u << 8);
        Assert.Equal(invalid, (await host.Io.SubmitAsync(reset, new byte[BlockSize])).Status);
        // In-capsule SGL length disagreeing with the data actually in the capsule.
        var sqe = Io(IoOpcode.Write, 0, 2, 1, 2 * BlockSize, NvmeTcp.SglInCapsuleData);
        Assert.Equal(invalid, (await host.Io.SubmitAsync(sqe, new byte[BlockSize], options: new SubmitOptions { PreserveSgl = true, InCapsule = true })).Status);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Theory]
    [InlineData((byte)0x00)] // Data Block, Address subtype (host memory: not over TCP)
    [InlineData((byte)0x02)] // Segment
    [InlineData((byte)0x03)] // Last Segment
    [InlineData((byte)0x40)] // Keyed Data Block (RDMA)
    [InlineData((byte)0x5B)] // Transport Data Block with an unknown subtype
    public async Task UnsupportedSglDescriptor_IsSglDescriptorTypeInvalid_AndItsDataIsSkipped(byte sglId)
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var host = await env.ConnectHostAsync(HostA);
        var sqe = Io(IoOpcode.Write, 0, 2, 1, BlockSize, sglId);
        var cqe = await host.Io.SubmitAsync(sqe, Pattern(BlockSize, 3), options: new SubmitOptions { PreserveSgl = true, InCapsule = true });
        Assert.Equal(NvmeStatus.SglDescriptorTypeInvalid.WithDnr(), cqe.Status);
        // The in-capsule data was consumed with the capsule: the stream is still in sync.
        Assert.True((await host.Io.ReadAsync(1, 0, 1, new byte[BlockSize])).Status.IsSuccess);
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Theory]
    [InlineData((ushort)0, (ushort)0)]
    [InlineData((ushort)0, (ushort)128)]
    [InlineData((ushort)0, (ushort)0xFFFF)]
    [InlineData((ushort)1, (ushort)128)]
    [InlineData((ushort)1, (ushort)0)]
    public async Task QueueSizePastMqes_IsConnectInvalidParametersPointingAtSqsize(ushort qid, ushort sqSize)
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var conn = await NvmeTcpInitiator.ConnectAsync(env.EndPoint);
        var cqe = await conn.FabricsConnectAsync(qid, sqSize, qid == 0 ? (ushort)0xFFFF : bystander.Admin.ControllerId, env.Nqn,
            bystander.HostNqn, HostIdOf(bystander.HostNqn), 0);
        // NVMe-oF Connect: SCT 1 / SC 82h, DW0 = offset of the bad field (SQSIZE at SQE byte 44, IATTR 0).
        Assert.Equal(NvmeStatus.ConnectInvalidParameters.WithDnr(), cqe.Status);
        Assert.Equal(1, cqe.Status.Sct);
        Assert.Equal(0x82, cqe.Status.Sc);
        Assert.Equal(44UL, cqe.Result);
        // The queue stays unconnected and usable for a correct Connect.
        cqe = qid == 0
            ? await conn.ConnectAdminQueueAsync(env.Nqn, HostA, HostIdOf(HostA))
            : await conn.FabricsConnectAsync((ushort)(qid + 1), 31, bystander.Admin.ControllerId, env.Nqn, bystander.HostNqn, HostIdOf(bystander.HostNqn), 0);
        Assert.True(cqe.Status.IsSuccess, cqe.Status.ToString());
        await env.AssertUnharmedAsync(zones, bystander);
    }

    [Fact]
    public async Task SecondConnectOnAQueue_IsCommandSequenceError()
    {
        await using var env = Start();
        var (bystander, zones) = await env.PrepareAsync();
        await using var host = await env.ConnectHostAsync(HostA);
        ushort cntlid = host.Admin.ControllerId;
        var cqe = await host.Admin.FabricsConnectAsync(0, 31, 0xFFFF, env.Nqn, HostA, HostIdOf(HostA), 0);
        Assert.Equal(NvmeStatus.CommandSequenceError.WithDnr(), cqe.Status);
        cqe = await host.Io.FabricsConnectAsync(1, 31, cntlid, env.Nqn, HostA, HostIdOf(HostA), 0);
        Assert.Equal(NvmeStatus.CommandSequenceError.WithDnr(), cqe.Status);
        cqe = await host.Io.FabricsConnectAsync(3, 31, cntlid, env.Nqn, HostA, HostIdOf(HostA), 0);
        Assert.Equal(NvmeStatus.CommandSequenceError.WithDnr(), cqe.Status);
        // Both queues keep their identity.
        Assert.Equal(1UL, (await host.Admin.PropertyGetAsync(ControllerProperties.Csts, false)).Result & 1);
        Assert.True((await host.Io.WriteAsync(1, 4 * env.ZoneLbas, 1, new byte[BlockSize])).Status.IsSuccess);
        Assert.True((await host.Io.ZoneManagementSendAsync(1, 4 * env.ZoneLbas, (byte)ZoneSendAction.Reset)).Status.IsSuccess);
        Assert.Equal(2, env.Target.Subsystem.ControllerCount); // the bystander's and this host's controllers only
        await env.AssertUnharmedAsync(zones, bystander);
    }
}

// Every wait in these tests is bounded by an explicit timeout, so test cancellation tokens add nothing.
#pragma warning disable xUnit1051

using System.Buffers.Binary;
using Xunit;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Tcp;
using Zns.TestKit;

namespace Zns.Target.Tests;

public class TransportErrorTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>Reads the next PDU, asserts it is a C2HTermReq with the given FES/FEI, and that the target then closes.</summary>
    private static async Task<Pdu> ExpectTermReqAndClose(RawNvmeTcpConnection raw, FatalErrorStatus fes, uint? fei = null)
    {
        var received = await raw.ReceivePduAsync(Timeout);
        Assert.NotNull(received);
        var (pdu, _) = received.Value;
        Assert.Equal(PduType.C2HTermReq, pdu.Type);
        Assert.Equal(fes, pdu.FatalStatus);
        if (fei is { } expected)
            Assert.Equal(expected, pdu.FatalInformation);
        Assert.True(await raw.WaitForCloseAsync(Timeout), "the target did not close the connection");
        return pdu;
    }

    private static byte[] Capsule(SubmissionQueueEntry sqe, ReadOnlySpan<byte> data = default, DigestOptions digests = DigestOptions.None)
    {
        var bytes = new byte[PduWriter.CapsuleCmdLength(data.Length, digests)];
        PduWriter.WriteCapsuleCmd(bytes, sqe, data, digests);
        return bytes;
    }

    private static SubmissionQueueEntry Sqe(byte opcode, ushort cid, uint sglLength, byte sglId, ulong cdw10_11 = 0)
    {
        var sqe = LoopbackTarget.Command(opcode, cdw10_11);
        sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
        sqe.SetCommandId(cid);
        sqe.SetSgl(0, sglLength, sglId);
        return sqe;
    }

    [Fact]
    public async Task CapsuleBeforeIcReqIsASequenceError()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.SendAsync(Capsule(Sqe(IoOpcode.Write, 1, 0, NvmeTcp.SglTransportDataBlock)));
        var term = await ExpectTermReqAndClose(raw, FatalErrorStatus.PduSequenceError);
        Assert.Equal(72, term.DataLength); // the offending header is echoed
    }

    [Fact]
    public async Task IcReqWithNonZeroHpdaIsUnsupported()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        var icReq = new byte[128];
        PduWriter.WriteIcReq(icReq, DigestOptions.None, hpda: 1);
        await raw.SendAsync(icReq);
        await ExpectTermReqAndClose(raw, FatalErrorStatus.UnsupportedParameter, 10);
    }

    [Fact]
    public async Task IcReqWithUnknownPfvIsUnsupported()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        var icReq = new byte[128];
        PduWriter.WriteIcReq(icReq, DigestOptions.None);
        icReq[8] = 1;
        await raw.SendAsync(icReq);
        await ExpectTermReqAndClose(raw, FatalErrorStatus.UnsupportedParameter, 8);
    }

    [Fact]
    public async Task IcReqWithBadPlen()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        var icReq = new byte[128];
        PduWriter.WriteIcReq(icReq, DigestOptions.None);
        BinaryPrimitives.WriteUInt32LittleEndian(icReq.AsSpan(4), 132);
        await raw.SendAsync(icReq);
        await ExpectTermReqAndClose(raw, FatalErrorStatus.InvalidHeaderField, 4);
    }

    [Fact]
    public async Task SecondIcReqIsASequenceError()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync();
        var icReq = new byte[128];
        PduWriter.WriteIcReq(icReq, DigestOptions.None);
        await raw.SendAsync(icReq);
        await ExpectTermReqAndClose(raw, FatalErrorStatus.PduSequenceError);
    }

    [Fact]
    public async Task WrongHlenOnACapsule()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync();
        var capsule = Capsule(Sqe(IoOpcode.Write, 1, 0, NvmeTcp.SglTransportDataBlock));
        capsule[2] = 70;
        await raw.SendAsync(capsule);
        var term = await ExpectTermReqAndClose(raw, FatalErrorStatus.InvalidHeaderField, 2);
        Assert.True(term.DataLength >= 8);
    }

    [Fact]
    public async Task UnknownPduType()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync();
        var capsule = Capsule(Sqe(IoOpcode.Write, 1, 0, NvmeTcp.SglTransportDataBlock));
        capsule[0] = 0x0B;
        await raw.SendAsync(capsule);
        await ExpectTermReqAndClose(raw, FatalErrorStatus.InvalidHeaderField, 0);
    }

    [Fact]
    public async Task HeaderDigestMismatch()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync(DigestOptions.Header);
        var capsule = Capsule(Sqe(IoOpcode.Write, 1, 0, NvmeTcp.SglTransportDataBlock), default, DigestOptions.Header);
        capsule[72] ^= 0xFF;
        await raw.SendAsync(capsule);
        await ExpectTermReqAndClose(raw, FatalErrorStatus.HeaderDigestError);
    }

    [Fact]
    public async Task MissingHeaderDigestWhenNegotiated()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync(DigestOptions.Header);
        await raw.SendAsync(Capsule(Sqe(IoOpcode.Write, 1, 0, NvmeTcp.SglTransportDataBlock)));
        await ExpectTermReqAndClose(raw, FatalErrorStatus.InvalidHeaderField, 1);
    }

    [Fact]
    public async Task InCapsuleDataAboveTheLimitIsAFatalError()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync();
        int aboveTheLimit = new TargetTransportOptions().MaxInCapsuleDataLength + 16;
        await raw.SendAsync(Capsule(Sqe(IoOpcode.Write, 1, (uint)aboveTheLimit, NvmeTcp.SglInCapsuleData), new byte[aboveTheLimit]));
        await ExpectTermReqAndClose(raw, FatalErrorStatus.DataTransferLimitExceeded);
    }

    /// <summary>Handshake, then a write of <paramref name="length"/> bytes through R2T; returns the R2T.</summary>
    private static async Task<Pdu> StartR2TWrite(RawNvmeTcpConnection raw, int length, ushort cid = 7)
    {
        await raw.HandshakeAsync();
        await raw.SendAsync(Capsule(Sqe(IoOpcode.Write, cid, (uint)length, NvmeTcp.SglTransportDataBlock)));
        var received = await raw.ReceivePduAsync(Timeout);
        Assert.NotNull(received);
        var r2t = received.Value.Pdu;
        Assert.Equal(PduType.R2T, r2t.Type);
        Assert.Equal(cid, r2t.CommandId);
        Assert.Equal(0u, r2t.TransferOffset);
        Assert.Equal((uint)length, r2t.TransferLength);
        return r2t;
    }

    private static byte[] H2CData(ushort cid, ushort ttag, uint offset, int length, bool last)
    {
        var bytes = new byte[PduWriter.DataPduLength(length, DigestOptions.None)];
        PduWriter.WriteDataPdu(bytes, PduType.H2CData, cid, ttag, offset, new byte[length], last, DigestOptions.None);
        return bytes;
    }

    [Fact]
    public async Task H2CDataWithUnknownTtag()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        var r2t = await StartR2TWrite(raw, 8192);
        await raw.SendAsync(H2CData(7, (ushort)(r2t.TransferTag + 100), 0, 8192, true));
        await ExpectTermReqAndClose(raw, FatalErrorStatus.InvalidHeaderField, 10);
    }

    [Fact]
    public async Task H2CDataWithoutAnyR2T()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync();
        await raw.SendAsync(H2CData(7, 0, 0, 512, true));
        await ExpectTermReqAndClose(raw, FatalErrorStatus.InvalidHeaderField, 10);
    }

    [Fact]
    public async Task H2CDataWithWrongCccid()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        var r2t = await StartR2TWrite(raw, 8192);
        await raw.SendAsync(H2CData(8, r2t.TransferTag, 0, 8192, true));
        await ExpectTermReqAndClose(raw, FatalErrorStatus.InvalidHeaderField, 8);
    }

    [Fact]
    public async Task H2CDataAtTheWrongOffset()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        var r2t = await StartR2TWrite(raw, 16384);
        await raw.SendAsync(H2CData(7, r2t.TransferTag, 4096, 4096, false));
        await ExpectTermReqAndClose(raw, FatalErrorStatus.DataTransferOutOfRange);
    }

    [Fact]
    public async Task H2CDataBeyondTheCommandLength()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        var r2t = await StartR2TWrite(raw, 8192);
        await raw.SendAsync(H2CData(7, r2t.TransferTag, 0, 12288, true));
        await ExpectTermReqAndClose(raw, FatalErrorStatus.DataTransferOutOfRange);
    }

    [Fact]
    public async Task H2CDataAboveMaxH2CData()
    {
        await using var target = new LoopbackTarget(new TargetTransportOptions { MaxH2CData = 4096 });
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        var r2t = await StartR2TWrite(raw, 8192);
        await raw.SendAsync(H2CData(7, r2t.TransferTag, 0, 8192, true));
        await ExpectTermReqAndClose(raw, FatalErrorStatus.DataTransferLimitExceeded);
    }

    [Fact]
    public async Task LastPduMissingOnTheFinalH2CData()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        var r2t = await StartR2TWrite(raw, 8192);
        await raw.SendAsync(H2CData(7, r2t.TransferTag, 0, 8192, false));
        await ExpectTermReqAndClose(raw, FatalErrorStatus.InvalidHeaderField, 1);
    }

    [Fact]
    public async Task LastPduSetTooEarly()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        var r2t = await StartR2TWrite(raw, 8192);
        await raw.SendAsync(H2CData(7, r2t.TransferTag, 0, 4096, true));
        await ExpectTermReqAndClose(raw, FatalErrorStatus.InvalidHeaderField, 1);
    }

    [Fact]
    public async Task H2CTermReqFromTheHostClosesTheConnection()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync();
        var term = new byte[24];
        PduWriter.WriteTermReq(term, PduType.H2CTermReq, FatalErrorStatus.DataTransferOutOfRange, 0, default);
        await raw.SendAsync(term);
        Assert.True(await raw.WaitForCloseAsync(Timeout));
    }

    [Fact]
    public async Task SilentConnectionTimesOutBeforeIcReq()
    {
        await using var target = new LoopbackTarget(new TargetTransportOptions { InitializationTimeout = TimeSpan.FromMilliseconds(200) });
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        Assert.True(await raw.WaitForCloseAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task TruncatedPduFollowedByCloseDoesNotHang()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync();
        await raw.SendAsync(Capsule(Sqe(IoOpcode.Write, 1, 0, NvmeTcp.SglTransportDataBlock))[..40]);
        await raw.DisposeAsync();
        var deadline = DateTime.UtcNow + Timeout;
        while (target.Listener.ConnectionCount > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(10);
        Assert.Equal(0, target.Listener.ConnectionCount);
        Assert.Equal(1, target.Factory.Disposed);
    }

    // ------------------------------------------------------------------ per-command errors (connection survives)

    [Theory]
    [InlineData((byte)0x00)] // Data Block, address subtype
    [InlineData((byte)0x02)] // Segment
    [InlineData((byte)0x40)] // Keyed Data Block (RDMA)
    [InlineData((byte)0x5B)]
    public async Task UnsupportedSglDescriptorIsRejectedWithDnrAndInCapsuleDataConsumed(byte sglId)
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var sqe = Sqe(IoOpcode.Write, 0, 512, sglId);
        var cqe = await host.SubmitAsync(sqe, new byte[512], options: new SubmitOptions { PreserveSgl = true, InCapsule = true });
        Assert.Equal(NvmeStatus.SglDescriptorTypeInvalid.WithDnr(), cqe.Status);
        Assert.Empty(target.Factory.ExecutionOrder);
        // The data was skipped: the next command parses fine.
        var data = LoopbackTarget.Pattern(512, 9);
        Assert.True((await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, 0), data)).Status.IsSuccess);
        Assert.Equal(data, target.Factory.Storage[..512]);
    }

    [Fact]
    public async Task InCapsuleSglWithNonZeroOffsetIsSglOffsetInvalid()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var sqe = Sqe(IoOpcode.Write, 0, 512, NvmeTcp.SglInCapsuleData);
        sqe.SetSgl(16, 512, NvmeTcp.SglInCapsuleData);
        var cqe = await host.SubmitAsync(sqe, new byte[512], options: new SubmitOptions { PreserveSgl = true, InCapsule = true });
        Assert.Equal(NvmeStatus.SglOffsetInvalid.WithDnr(), cqe.Status);
    }

    [Fact]
    public async Task InCapsuleSglLengthDisagreeingWithTheDataIsRejected()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var sqe = Sqe(IoOpcode.Write, 0, 1024, NvmeTcp.SglInCapsuleData);
        var cqe = await host.SubmitAsync(sqe, new byte[512], options: new SubmitOptions { PreserveSgl = true, InCapsule = true });
        Assert.Equal(NvmeStatus.DataSglLengthInvalid.WithDnr(), cqe.Status);
    }

    [Fact]
    public async Task PrpCommandIsInvalidField()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var sqe = Sqe(IoOpcode.Read, 0, 512, NvmeTcp.SglTransportDataBlock);
        sqe.SetFlags(0x00);
        var cqe = await host.SubmitAsync(sqe, options: new SubmitOptions { PreserveSgl = true });
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), cqe.Status);
    }

    [Fact]
    public async Task OversizeWriteIsRejectedWithoutR2T()
    {
        await using var target = new LoopbackTarget();
        target.Factory.MaxDataLength = 65536;
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync();
        await raw.SendAsync(Capsule(Sqe(IoOpcode.Write, 5, 0x7FFF_F000, NvmeTcp.SglTransportDataBlock)));
        var received = await raw.ReceivePduAsync(Timeout);
        Assert.NotNull(received);
        var pdu = received.Value.Pdu;
        Assert.Equal(PduType.CapsuleResp, pdu.Type); // no R2T first
        Assert.Equal(5, pdu.Response.CommandId);
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), pdu.Response.Status);
    }

    [Fact]
    public async Task OversizeReadIsRejectedWithoutData()
    {
        await using var target = new LoopbackTarget();
        target.Factory.MaxDataLength = 65536;
        await using var host = await target.ConnectAsync();
        var sqe = Sqe(IoOpcode.Read, 0, uint.MaxValue, NvmeTcp.SglTransportDataBlock);
        var cqe = await host.SubmitAsync(sqe, options: new SubmitOptions { PreserveSgl = true }).WaitAsync(Timeout);
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), cqe.Status);
        Assert.Empty(target.Factory.ExecutionOrder);
    }

    [Fact]
    public async Task DataDigestErrorInACapsuleFailsOnlyThatCommand()
    {
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        await raw.HandshakeAsync(DigestOptions.Data);
        var capsule = Capsule(Sqe(IoOpcode.Write, 3, 512, NvmeTcp.SglInCapsuleData), new byte[512], DigestOptions.Data);
        capsule[100] ^= 1;
        await raw.SendAsync(capsule);
        var received = await raw.ReceivePduAsync(Timeout);
        Assert.NotNull(received);
        Assert.Equal(PduType.CapsuleResp, received.Value.Pdu.Type);
        Assert.Equal(NvmeTcp.TransientTransportError, received.Value.Pdu.Response.Status);
        Assert.Empty(target.Factory.ExecutionOrder);
    }

    [Fact]
    public async Task HandlerExceptionBecomesInternalError()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var cqe = await host.SubmitAsync(LoopbackTarget.Command(LoopbackHandlerFactory.ThrowOpcode));
        Assert.Equal(NvmeStatus.InternalError.WithDnr(), cqe.Status);
        Assert.True((await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write), new byte[4])).Status.IsSuccess);
    }

    [Fact]
    public async Task HandlerAbortClosesTheConnection()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var pending = host.SubmitAsync(LoopbackTarget.Command(LoopbackHandlerFactory.AbortOpcode));
        await Assert.ThrowsAsync<NvmeTcpTransportException>(() => pending.WaitAsync(Timeout));
        await host.Closed.WaitAsync(Timeout);
    }

    [Fact]
    public async Task InitiatorReportsTheTermReq()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var bad = new byte[24];
        PduWriter.WriteDataPdu(new byte[28], PduType.H2CData, 1, 999, 0, new byte[4], true, DigestOptions.None);
        PduWriter.WriteCommonHeader(bad, PduType.H2CData, PduFlags.LastPdu, 24, 24, 28);
        await host.SendRawAsync(bad.Concat(new byte[4]).ToArray());
        var term = await host.TermReqReceived.WaitAsync(Timeout);
        Assert.Equal(FatalErrorStatus.InvalidHeaderField, term.Status);
        await host.Closed.WaitAsync(Timeout);
    }
}

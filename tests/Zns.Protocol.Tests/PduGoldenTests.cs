using Zns.Core;
using Xunit;
using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Protocol.Tests;

public class PduGoldenTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "").Replace("|", ""));

    [Fact]
    public void IcRespMatchesTheDocumentedExample()
    {
        var pdu = new byte[128];
        Assert.Equal(128, PduWriter.WriteIcResp(pdu, DigestOptions.None, 128 * 1024));
        var expected = new byte[128];
        Hex("01 00 80 00 80 00 00 00 | 00 00 | 00 | 00 | 00 00 02 00").CopyTo(expected, 0);
        Assert.Equal(expected, pdu);
    }

    [Fact]
    public void IcReqAsTheLinuxHostSendsIt()
    {
        var pdu = new byte[128];
        PduWriter.WriteIcReq(pdu, DigestOptions.Header | DigestOptions.Data);
        var expected = new byte[128];
        Hex("00 00 80 00 80 00 00 00 | 00 00 | 00 | 03 | 00 00 00 00").CopyTo(expected, 0);
        Assert.Equal(expected, pdu);
    }

    [Fact]
    public void CapsuleRespMatchesTheDocumentedExample()
    {
        var cqe = new CompletionQueueEntry { Result = 1, SqHead = 1, SqId = 0, CommandId = 0x1f, Status = NvmeStatus.Success };
        var pdu = new byte[24];
        Assert.Equal(24, PduWriter.WriteCapsuleResp(pdu, cqe, DigestOptions.None));
        Assert.Equal(Hex("05 00 18 00 18 00 00 00 | 01 00 00 00 | 00 00 00 00 | 01 00 | 00 00 | 1f 00 | 00 00"), pdu);
    }

    [Fact]
    public void CapsuleRespWithHeaderDigest()
    {
        var pdu = new byte[28];
        Assert.Equal(28, PduWriter.WriteCapsuleResp(pdu, default, DigestOptions.Header | DigestOptions.Data));
        Assert.Equal(Hex("05 01 18 00 1c 00 00 00 00000000 00000000 0000 0000 0000 0000 | 9b 12 03 89"), pdu);
    }

    [Fact]
    public void ZoneInvalidWriteWithDnrStatusBytes()
    {
        var cqe = new CompletionQueueEntry { CommandId = 2, Status = NvmeStatus.ZoneInvalidWrite.WithDnr() };
        var pdu = new byte[24];
        PduWriter.WriteCapsuleResp(pdu, cqe, DigestOptions.None);
        Assert.Equal(Hex("78 83"), pdu[22..24]);
    }

    [Fact]
    public void CapsuleCmdWithInCapsuleData()
    {
        var sqe = PduSamples.WriteCommand(8, NvmeTcp.SglInCapsuleData);
        var pdu = new byte[PduWriter.CapsuleCmdLength(8, DigestOptions.None)];
        PduWriter.WriteCapsuleCmd(pdu, sqe, Hex("0102030405060708"), DigestOptions.None);
        Assert.Equal(Hex("04 00 48 48 50 00 00 00"), pdu[..8]);
        Assert.Equal(sqe.Bytes.ToArray(), pdu[8..72]);
        Assert.Equal(Hex("0102030405060708"), pdu[72..]);
    }

    [Fact]
    public void CapsuleCmdWithoutDataHasPdoZero()
    {
        var sqe = PduSamples.WriteCommand(4096, NvmeTcp.SglTransportDataBlock);
        var pdu = new byte[PduWriter.CapsuleCmdLength(0, DigestOptions.Header | DigestOptions.Data)];
        PduWriter.WriteCapsuleCmd(pdu, sqe, default, DigestOptions.Header | DigestOptions.Data);
        // HDGSTF only: DDGSTF is set only when data is present.
        Assert.Equal(Hex("04 01 48 00 4c 00 00 00"), pdu[..8]);
        Assert.Equal(Crc32C.Compute(pdu.AsSpan(0, 72)), BitConverter.ToUInt32(pdu, 72));
    }

    [Fact]
    public void R2TLayout()
    {
        var pdu = new byte[24];
        PduWriter.WriteR2T(pdu, 0x1234, 0x0005, 0, 0x20000, DigestOptions.None);
        Assert.Equal(Hex("09 00 18 00 18 00 00 00 | 34 12 | 05 00 | 00 00 00 00 | 00 00 02 00 | 00 00 00 00"), pdu);
    }

    [Fact]
    public void C2HDataLayoutWithDigests()
    {
        var digests = DigestOptions.Header | DigestOptions.Data;
        var pdu = new byte[PduWriter.DataPduLength(4, digests)];
        PduWriter.WriteDataPdu(pdu, PduType.C2HData, 0x0001, 0, 8, Hex("aabbccdd"), last: true, digests);
        Assert.Equal(Hex("07 07 18 1c 24 00 00 00 | 01 00 | 00 00 | 08 00 00 00 | 04 00 00 00 | 00 00 00 00"), pdu[..24]);
        Assert.Equal(Crc32C.Compute(pdu.AsSpan(0, 24)), BitConverter.ToUInt32(pdu, 24));
        Assert.Equal(Hex("aabbccdd"), pdu[28..32]);
        Assert.Equal(Crc32C.Compute(Hex("aabbccdd")), BitConverter.ToUInt32(pdu, 32));
    }

    [Fact]
    public void H2CDataLayout()
    {
        var pdu = new byte[PduWriter.DataPduLength(4, DigestOptions.None)];
        PduWriter.WriteDataPdu(pdu, PduType.H2CData, 0x0203, 0x0405, 0x10, Hex("01020304"), last: false, DigestOptions.None);
        Assert.Equal(Hex("06 00 18 18 1c 00 00 00 | 03 02 | 05 04 | 10 00 00 00 | 04 00 00 00 | 00 00 00 00 | 01 02 03 04"), pdu);
    }

    [Fact]
    public void C2HTermReqLayoutAndTruncation()
    {
        var pdu = new byte[200];
        int n = PduWriter.WriteTermReq(pdu, PduType.C2HTermReq, FatalErrorStatus.InvalidHeaderField, 2, new byte[200]);
        Assert.Equal(24 + 128, n);
        Assert.Equal(Hex("03 00 18 00 98 00 00 00 | 01 00 | 02 00 00 00 | 00 00 00 00 00 00 00 00 00 00"), pdu[..24]);
    }
}

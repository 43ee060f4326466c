using System.Buffers.Binary;
using Xunit;
using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Protocol.Tests;

public class PduParserTests
{
    public static TheoryData<string> SampleNames()
    {
        var data = new TheoryData<string>();
        foreach (var s in PduSamples.All())
            data.Add(s.Name);
        return data;
    }

    private static PduSamples.Sample Get(string name) => PduSamples.All().Single(s => s.Name == name);

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void EveryValidPduParsesCompletely(string name)
    {
        var s = Get(name);
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(s.Bytes, s.Options, out var pdu, out _));
        Assert.Equal(s.Bytes.Length, pdu.Length);
        Assert.False(pdu.DataDigestMismatch);
        Assert.Equal((PduType)s.Bytes[0], pdu.Type);
    }

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void EveryPrefixNeedsMoreData(string name)
    {
        var s = Get(name);
        // Every byte offset, with the prefix as one span; large PDUs are sampled beyond their header.
        for (int length = 0; length < s.Bytes.Length; length = NextOffset(length, s.Bytes.Length))
            Assert.Equal(PduParseStatus.NeedMoreData, PduParser.TryParse(s.Bytes.AsSpan(0, length), s.Options, out _, out _));
    }

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void SplittingIntoTwoSegmentsAtAnyOffsetGivesTheSamePdu(string name)
    {
        var s = Get(name);
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(s.Bytes, s.Options, out var expected, out _));
        for (int at = 0; at <= s.Bytes.Length; at = NextOffset(at, s.Bytes.Length + 1))
        {
            var sequence = TestSequences.Split(s.Bytes, at);
            Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(sequence, s.Options, out var pdu, out _));
            AssertSame(expected, pdu);
            // And every prefix of the split sequence is incomplete.
            var prefix = sequence.Slice(0, Math.Max(0, at - 1));
            if (prefix.Length < s.Bytes.Length)
                Assert.Equal(PduParseStatus.NeedMoreData, PduParser.TryParse(prefix, s.Options, out _, out _));
        }
    }

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void OneByteSegmentsParse(string name)
    {
        var s = Get(name);
        if (s.Bytes.Length > 10_000)
            return; // the 128 KiB C2HData would build 128 K segments; two-segment splits cover it
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(TestSequences.Bytewise(s.Bytes), s.Options, out var pdu, out _));
        Assert.Equal(s.Bytes.Length, pdu.Length);
    }

    [Fact]
    public void PdusFollowingEachOtherAreFramedOneByOne()
    {
        var a = Get("CapsuleCmd+data[Header, Data]").Bytes;
        var b = Get("CapsuleCmd[Header, Data]").Bytes;
        var both = a.Concat(b).ToArray();
        var options = PduSamples.Controller(DigestOptions.Header | DigestOptions.Data);
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(both, options, out var first, out _));
        Assert.Equal(a.Length, first.Length);
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(both.AsSpan(first.Length), options, out var second, out _));
        Assert.Equal(b.Length, second.Length);
    }

    [Fact]
    public void FieldsOfACapsuleCmd()
    {
        var bytes = Get("CapsuleCmd+data[None]").Bytes;
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(bytes, PduSamples.Controller(DigestOptions.None), out var pdu, out _));
        Assert.Equal(0x1234, pdu.Command.CommandId);
        Assert.Equal(NvmeTcp.SglInCapsuleData, pdu.Command.SglIdentifier);
        Assert.Equal(72, pdu.DataStart);
        Assert.Equal(512, pdu.DataLength);
        Assert.Equal(PduSamples.Data(512), bytes[72..584]);
    }

    [Fact]
    public void FieldsOfIcReqAndIcResp()
    {
        var req = new byte[128];
        PduWriter.WriteIcReq(req, DigestOptions.Data, hpda: 0, maxR2T: 3);
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(req, PduSamples.Controller(DigestOptions.None, false), out var pdu, out _));
        Assert.Equal(DigestOptions.Data, pdu.Digests);
        Assert.Equal(3u, pdu.MaxR2T);
        var resp = new byte[128];
        PduWriter.WriteIcResp(resp, DigestOptions.Header, 4096);
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(resp, PduSamples.Host(DigestOptions.None, false), out pdu, out _));
        Assert.Equal(4096u, pdu.MaxH2CData);
        Assert.Equal(DigestOptions.Header, pdu.Digests);
    }

    [Fact]
    public void FieldsOfR2TAndTermReq()
    {
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(Get("R2T[None]").Bytes, PduSamples.Host(DigestOptions.None), out var r2t, out _));
        Assert.Equal((0x1234, 7, 0u, 65536u), (r2t.CommandId, r2t.TransferTag, r2t.TransferOffset, r2t.TransferLength));
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(Get("C2HTermReq[None]").Bytes, PduSamples.Host(DigestOptions.None), out var term, out _));
        Assert.Equal(FatalErrorStatus.InvalidHeaderField, term.FatalStatus);
        Assert.Equal(2u, term.FatalInformation);
        Assert.Equal(24, term.DataStart);
        Assert.Equal(72, term.DataLength);
    }

    [Theory]
    [InlineData("CapsuleCmd+data[Data]")]
    [InlineData("H2CData[Header, Data]")]
    [InlineData("C2HData[Data]")]
    public void CorruptDataIsReportedAsDigestMismatchNotFatal(string name)
    {
        var s = Get(name);
        var bytes = (byte[])s.Bytes.Clone();
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(bytes, s.Options, out var pdu, out _));
        bytes[pdu.DataStart + 1] ^= 0x40;
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(bytes, s.Options, out pdu, out _));
        Assert.True(pdu.DataDigestMismatch);
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(TestSequences.Split(bytes, 30), s.Options, out pdu, out _));
        Assert.True(pdu.DataDigestMismatch);
    }

    // ------------------------------------------------------------------ malformed headers

    private static void AssertFatal(byte[] bytes, PduParserOptions options, FatalErrorStatus fes, uint fei)
    {
        Assert.Equal(PduParseStatus.Fatal, PduParser.TryParse(bytes, options, out _, out var error));
        Assert.Equal(fes, error.Status);
        Assert.Equal(fei, error.Information);
        Assert.InRange(error.HeaderBytes, 1, 128);
        // Also when the bytes arrive split.
        Assert.Equal(PduParseStatus.Fatal, PduParser.TryParse(TestSequences.Split(bytes, Math.Min(5, bytes.Length)), options, out _, out error));
        Assert.Equal(fes, error.Status);
    }

    private static byte[] Mutate(string sample, Action<byte[]> change)
    {
        var bytes = (byte[])Get(sample).Bytes.Clone();
        change(bytes);
        return bytes;
    }

    [Theory]
    [InlineData(0x08)]
    [InlineData(0x0A)]
    [InlineData(0xFF)]
    public void UnknownTypeIsInvalidHeaderFieldAtOffset0(byte type) =>
        AssertFatal(Mutate("CapsuleCmd[None]", b => b[0] = type), PduSamples.Controller(DigestOptions.None), FatalErrorStatus.InvalidHeaderField, 0);

    [Theory]
    [InlineData(PduType.CapsuleResp)]
    [InlineData(PduType.C2HData)]
    [InlineData(PduType.R2T)]
    [InlineData(PduType.C2HTermReq)]
    public void ControllerTypesFromTheHostAreRejected(PduType type) =>
        AssertFatal(Mutate("CapsuleResp[None]", b => b[0] = (byte)type), PduSamples.Controller(DigestOptions.None), FatalErrorStatus.InvalidHeaderField, 0);

    [Fact]
    public void HostTypesFromTheControllerAreRejected() =>
        AssertFatal(Get("CapsuleCmd[None]").Bytes, PduSamples.Host(DigestOptions.None), FatalErrorStatus.InvalidHeaderField, 0);

    [Fact]
    public void CapsuleBeforeIcReqIsASequenceError() =>
        AssertFatal(Get("CapsuleCmd[None]").Bytes, PduSamples.Controller(DigestOptions.None, initialized: false), FatalErrorStatus.PduSequenceError, 0);

    [Fact]
    public void SecondIcReqIsASequenceError() =>
        AssertFatal(Get("ICReq[None]").Bytes, PduSamples.Controller(DigestOptions.None, initialized: true), FatalErrorStatus.PduSequenceError, 0);

    [Theory]
    [InlineData("ICReq[None]", 127)]
    [InlineData("ICReq[None]", 24)]
    [InlineData("CapsuleCmd[None]", 24)]
    [InlineData("CapsuleCmd[None]", 0)]
    [InlineData("H2CData[None]", 72)]
    [InlineData("H2CTermReq[None]", 8)]
    public void WrongHlenIsInvalidHeaderFieldAtOffset2(string sample, byte hlen)
    {
        var s = Get(sample);
        AssertFatal(Mutate(sample, b => b[2] = hlen), s.Options, FatalErrorStatus.InvalidHeaderField, 2);
    }

    [Theory]
    [InlineData("ICReq[None]", 128u)]       // PLEN must be 128
    [InlineData("ICReq[None]", 129u)]
    [InlineData("CapsuleCmd[None]", 71u)]
    [InlineData("CapsuleCmd[None]", 0u)]
    [InlineData("H2CData[None]", 24u)]      // data PDU without data
    [InlineData("H2CTermReq[None]", 23u)]
    [InlineData("H2CTermReq[None]", 153u)]  // more than 128 bytes of error data
    public void BadPlen(string sample, uint plen)
    {
        var s = Get(sample);
        var bytes = Mutate(sample, b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), plen));
        if (sample.StartsWith("ICReq") && plen == 128)
        {
            // the valid value: sanity check of the test itself
            Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(bytes, s.Options, out _, out _));
            return;
        }
        var expected = sample.StartsWith("H2CData") ? 3u : 4u; // PDO 24 of H2CData is then > PLEN - data
        Assert.Equal(PduParseStatus.Fatal, PduParser.TryParse(bytes, s.Options, out _, out var error));
        Assert.Equal(FatalErrorStatus.InvalidHeaderField, error.Status);
        Assert.True(error.Information is 3 or 4, $"FEI {error.Information}, expected {expected} or PLEN");
    }

    [Fact]
    public void HugePlenIsRejectedFromTheCommonHeaderAlone()
    {
        // Only 8 bytes buffered: a 4 GiB H2CData must be refused right away, not waited for.
        var bytes = Mutate("H2CData[None]", b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), uint.MaxValue));
        Assert.Equal(PduParseStatus.Fatal, PduParser.TryParse(bytes.AsSpan(0, 8), PduSamples.Controller(DigestOptions.None), out _, out var error));
        Assert.Equal(FatalErrorStatus.DataTransferLimitExceeded, error.Status);
    }

    [Fact]
    public void InCapsuleDataAboveTheLimitIsRejected()
    {
        var options = PduSamples.Controller(DigestOptions.None) with { MaxInCapsuleDataLength = 256 };
        AssertFatal(Get("CapsuleCmd+data[None]").Bytes, options, FatalErrorStatus.DataTransferLimitExceeded, 0);
    }

    [Fact]
    public void H2CDataAboveMaxH2CDataIsRejected()
    {
        var options = PduSamples.Controller(DigestOptions.None) with { MaxDataPduLength = 4092 };
        AssertFatal(Get("H2CData[None]").Bytes, options, FatalErrorStatus.DataTransferLimitExceeded, 0);
    }

    [Theory]
    [InlineData("CapsuleResp[None]", 24)]   // no-data PDUs must have PDO 0
    [InlineData("ICReq[None]", 4)]
    [InlineData("CapsuleCmd+data[None]", 64)] // data may not start inside the header
    [InlineData("CapsuleCmd[None]", 72)]    // no data but PDO set
    [InlineData("H2CData[None]", 0)]
    [InlineData("H2CData[Header]", 24)]     // data would overlap the header digest
    public void BadPdo(string sample, byte pdo)
    {
        var s = Get(sample);
        AssertFatal(Mutate(sample, b => b[3] = pdo), s.Options, FatalErrorStatus.InvalidHeaderField, 3);
    }

    [Fact]
    public void PaddedPdoIsAccepted()
    {
        // Host data placed 4 bytes after the header: legal padding, the data segment moves.
        var sqe = PduSamples.WriteCommand(8, NvmeTcp.SglInCapsuleData);
        var bytes = new byte[72 + 4 + 8];
        PduWriter.WriteCapsuleCmd(bytes, sqe, default, DigestOptions.None);
        bytes[3] = 76;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), 84);
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(bytes, PduSamples.Controller(DigestOptions.None), out var pdu, out _));
        Assert.Equal(76, pdu.DataStart);
        Assert.Equal(8, pdu.DataLength);
    }

    [Theory]
    [InlineData("CapsuleCmd[None]", 0x01)]         // HDGSTF without header digest negotiated
    [InlineData("CapsuleCmd[Header]", 0x00)]       // HDGSTF missing while negotiated
    [InlineData("CapsuleCmd+data[Data]", 0x00)]    // DDGSTF missing on data
    [InlineData("CapsuleCmd+data[None]", 0x02)]    // DDGSTF without data digest
    [InlineData("CapsuleCmd[None]", 0x04)]         // LAST_PDU on a capsule
    [InlineData("H2CData[None]", 0x08)]            // SUCCESS is C2HData only
    [InlineData("ICReq[None]", 0x01)]              // ICReq never carries digests
    [InlineData("H2CTermReq[None]", 0x02)]
    public void BadFlags(string sample, byte flags)
    {
        var s = Get(sample);
        AssertFatal(Mutate(sample, b => b[1] = flags), s.Options, FatalErrorStatus.InvalidHeaderField, 1);
    }

    [Fact]
    public void SuccessWithoutLastPduIsRejected() =>
        AssertFatal(Mutate("C2HData[None]", b => b[1] = 0x08), PduSamples.Host(DigestOptions.None), FatalErrorStatus.InvalidHeaderField, 1);

    [Fact]
    public void ReservedFlagBitsAreIgnored()
    {
        var s = Get("CapsuleCmd[None]");
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(Mutate(s.Name, b => b[1] = 0x80), s.Options, out _, out _));
    }

    [Theory]
    [InlineData("CapsuleCmd[Header]", 10)]
    [InlineData("CapsuleCmd+data[Header, Data]", 72)]   // the digest itself
    [InlineData("H2CData[Header]", 12)]
    [InlineData("CapsuleResp[Header]", 9)]
    [InlineData("R2T[Header, Data]", 16)]
    public void HeaderDigestErrors(string sample, int corruptAt)
    {
        var s = Get(sample);
        AssertFatal(Mutate(sample, b => b[corruptAt] ^= 0x01), s.Options, FatalErrorStatus.HeaderDigestError, 0);
    }

    [Fact]
    public void DatalDisagreeingWithPlenIsRejected() =>
        AssertFatal(Mutate("H2CData[None]", b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), 4095)),
            PduSamples.Controller(DigestOptions.None), FatalErrorStatus.InvalidHeaderField, 16);

    [Fact]
    public void IcReqWithUnknownFormatVersion() =>
        AssertFatal(Mutate("ICReq[None]", b => b[8] = 1), PduSamples.Controller(DigestOptions.None, false), FatalErrorStatus.UnsupportedParameter, 8);

    [Fact]
    public void IcReqWithHpdaAbove31() =>
        AssertFatal(Mutate("ICReq[None]", b => b[10] = 32), PduSamples.Controller(DigestOptions.None, false), FatalErrorStatus.InvalidHeaderField, 10);

    [Theory]
    [InlineData(4092u)]
    [InlineData(4098u)]
    [InlineData(0u)]
    public void IcRespWithBadMaxH2CData(uint value) =>
        AssertFatal(Mutate("ICResp[None]", b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), value)),
            PduSamples.Host(DigestOptions.None, false), FatalErrorStatus.InvalidHeaderField, 12);

    [Fact]
    public void R2TWithZeroLengthIsRejected() =>
        AssertFatal(Mutate("R2T[None]", b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), 0)),
            PduSamples.Host(DigestOptions.None), FatalErrorStatus.InvalidHeaderField, 16);

    [Fact]
    public void RandomBytesNeverThrow()
    {
        var random = new Random(42);
        var buffer = new byte[300];
        foreach (var options in new[] { PduSamples.Controller(DigestOptions.None), PduSamples.Controller(DigestOptions.Header | DigestOptions.Data, false), PduSamples.Host(DigestOptions.Header) })
        {
            for (int i = 0; i < 20_000; i++)
            {
                random.NextBytes(buffer);
                buffer[0] = (byte)random.Next(0, 11);
                int length = random.Next(0, buffer.Length);
                var status = PduParser.TryParse(buffer.AsSpan(0, length), options, out var pdu, out _);
                if (status == PduParseStatus.Complete)
                    Assert.InRange(pdu.Length, 8, length);
            }
        }
    }

    [Fact]
    public void WriterThenParserRoundTripsTheCqe()
    {
        var cqe = new CompletionQueueEntry { Result = 0x1_0000_0002, SqHead = 9, SqId = 3, CommandId = 0xBEEF, Status = NvmeStatus.ZoneIsFull.WithDnr() };
        var bytes = new byte[28];
        PduWriter.WriteCapsuleResp(bytes, cqe, DigestOptions.Header);
        Assert.Equal(PduParseStatus.Complete, PduParser.TryParse(bytes, PduSamples.Host(DigestOptions.Header), out var pdu, out _));
        Assert.Equal(cqe, pdu.Response);
    }

    private static int NextOffset(int offset, int length)
    {
        // Every offset through the first 200 bytes (all header fields and digests), then a sampled walk with the
        // last bytes (data digest) covered exactly.
        if (offset < 200 || offset >= length - 8)
            return offset + 1;
        return Math.Min(offset + 997, length - 8);
    }

    private static void AssertSame(Pdu expected, Pdu actual)
    {
        Assert.Equal(expected.Type, actual.Type);
        Assert.Equal(expected.Flags, actual.Flags);
        Assert.Equal(expected.Length, actual.Length);
        Assert.Equal(expected.DataStart, actual.DataStart);
        Assert.Equal(expected.DataLength, actual.DataLength);
        Assert.Equal(expected.CommandId, actual.CommandId);
        Assert.Equal(expected.TransferOffset, actual.TransferOffset);
        Assert.Equal(expected.Response, actual.Response);
        Assert.Equal(expected.Command.Bytes.ToArray(), actual.Command.Bytes.ToArray());
        Assert.Equal(expected.DataDigestMismatch, actual.DataDigestMismatch);
    }
}

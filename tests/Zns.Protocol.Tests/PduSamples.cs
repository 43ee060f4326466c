using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Protocol.Tests;

/// <summary>One valid PDU of every kind, for round-trip and split tests.</summary>
internal static class PduSamples
{
    public sealed record Sample(string Name, byte[] Bytes, PduParserOptions Options)
    {
        public override string ToString() => Name;
    }

    public static PduParserOptions Controller(DigestOptions digests, bool initialized = true) =>
        new(PduDirection.HostToController, initialized, digests, 8192, 128 * 1024);

    public static PduParserOptions Host(DigestOptions digests, bool initialized = true) =>
        new(PduDirection.ControllerToHost, initialized, digests, 8192, 1024 * 1024);

    public static SubmissionQueueEntry WriteCommand(uint length, byte sgl)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(IoOpcode.Write);
        sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
        sqe.SetCommandId(0x1234);
        sqe.SetNamespaceId(1);
        sqe.SetCdw10_11(0x4000);
        sqe.SetCdw(12, 7);
        sqe.SetSgl(0, length, sgl);
        return sqe;
    }

    public static byte[] Data(int length, int seed = 1)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static IEnumerable<Sample> All()
    {
        foreach (var digests in new[] { DigestOptions.None, DigestOptions.Header, DigestOptions.Data, DigestOptions.Header | DigestOptions.Data })
        {
            string d = $"[{digests}]";
            var buffer = new byte[300_000];

            int n = PduWriter.WriteIcReq(buffer, digests);
            yield return new($"ICReq{d}", buffer[..n], Controller(DigestOptions.None, initialized: false));
            n = PduWriter.WriteIcResp(buffer, digests, 131072);
            yield return new($"ICResp{d}", buffer[..n], Host(DigestOptions.None, initialized: false));

            var data = Data(512);
            n = PduWriter.WriteCapsuleCmd(buffer, WriteCommand(512, NvmeTcp.SglInCapsuleData), data, digests);
            yield return new($"CapsuleCmd+data{d}", buffer[..n], Controller(digests));
            n = PduWriter.WriteCapsuleCmd(buffer, WriteCommand(65536, NvmeTcp.SglTransportDataBlock), default, digests);
            yield return new($"CapsuleCmd{d}", buffer[..n], Controller(digests));

            var cqe = new CompletionQueueEntry { Result = 0x14000, SqHead = 3, SqId = 1, CommandId = 0x1234, Status = NvmeStatus.ZoneInvalidWrite.WithDnr() };
            n = PduWriter.WriteCapsuleResp(buffer, cqe, digests);
            yield return new($"CapsuleResp{d}", buffer[..n], Host(digests));

            n = PduWriter.WriteR2T(buffer, 0x1234, 7, 0, 65536, digests);
            yield return new($"R2T{d}", buffer[..n], Host(digests));

            n = PduWriter.WriteDataPdu(buffer, PduType.H2CData, 0x1234, 7, 4096, Data(4096, 2), last: true, digests);
            yield return new($"H2CData{d}", buffer[..n], Controller(digests));
            n = PduWriter.WriteDataPdu(buffer, PduType.C2HData, 0x1234, 0, 0, Data(131072, 3), last: false, digests);
            yield return new($"C2HData{d}", buffer[..n], Host(digests));

            n = PduWriter.WriteTermReq(buffer, PduType.H2CTermReq, FatalErrorStatus.HeaderDigestError, 0, Data(24, 4));
            yield return new($"H2CTermReq{d}", buffer[..n], Controller(digests));
            n = PduWriter.WriteTermReq(buffer, PduType.C2HTermReq, FatalErrorStatus.InvalidHeaderField, 2, Data(72, 5));
            yield return new($"C2HTermReq{d}", buffer[..n], Host(digests));
        }
    }
}

using System.Buffers;
using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using static Zns.Fuzz.FuzzFailureException;

namespace Zns.Fuzz;

/// <summary>
/// <see cref="PduParser"/> over arbitrary bytes, in both directions, before and after ICReq, with every digest
/// setting and two sets of size limits. Every answer is re-checked against a slow reference built from the raw
/// bytes: a complete PDU has consistent header fields, lies within the input, verifies its digests bit by bit and
/// re-encodes to the same bytes; "need more data" only when the declared PDU is really longer than the input and
/// never for a PDU above the configured limits (so a peer cannot make the server buffer more than that); the
/// span and the segmented-sequence parsers agree.
/// </summary>
public sealed class PduParserTarget : IFuzzTarget
{
    /// <inheritdoc/>
    public static string Name => "pdu-parser";

    private static readonly (int InCapsule, int DataPdu)[] Limits = [(8192, 128 * 1024), (16, 4096)];

    /// <inheritdoc/>
    public static void Fuzz(ReadOnlySpan<byte> input)
    {
        foreach (var direction in (ReadOnlySpan<PduDirection>)[PduDirection.HostToController, PduDirection.ControllerToHost])
        {
            for (int digests = 0; digests < 4; digests++)
            {
                foreach (bool initialized in (ReadOnlySpan<bool>)[false, true])
                {
                    foreach (var (inCapsule, dataPdu) in Limits)
                    {
                        var options = new PduParserOptions(direction, initialized, (DigestOptions)digests, inCapsule, dataPdu);
                        Verify(input, options);
                    }
                }
            }
        }
    }

    private static void Verify(ReadOnlySpan<byte> input, in PduParserOptions options)
    {
        var status = PduParser.TryParse(input, options, out var pdu, out var error);
        switch (status)
        {
            case PduParseStatus.Complete:
                CheckComplete(input, options, pdu);
                break;
            case PduParseStatus.NeedMoreData:
                CheckNeedMore(input, options);
                break;
            case PduParseStatus.Fatal:
                FuzzFailureException.Check(error.Status is >= FatalErrorStatus.InvalidHeaderField and <= FatalErrorStatus.UnsupportedParameter,
                    $"fatal without a defined FES: {error}", input);
                FuzzFailureException.Check(input.Length >= NvmeTcp.CommonHeaderSize, "fatal before the common header was complete", input);
                FuzzFailureException.Check(error.HeaderBytes >= NvmeTcp.CommonHeaderSize && error.HeaderBytes <= Math.Min(input.Length, NvmeTcp.MaxTermReqErrorData),
                    $"TermReq echo length {error.HeaderBytes} outside [8, min(input, 128)]", input);
                break;
            default:
                throw new FuzzFailureException($"undefined status {status}", input);
        }
        CheckSegmented(input, options, status, pdu, error);
    }

    private static void CheckComplete(ReadOnlySpan<byte> input, in PduParserOptions options, in Pdu pdu)
    {
        var type = (PduType)input[0];
        var flags = (PduFlags)input[1];
        int hlen = input[2];
        int pdo = input[3];
        uint plen = BinaryPrimitives.ReadUInt32LittleEndian(input[4..]);

        // Framing: the PDU lies inside the input and the header fields are what the bytes say.
        Check(plen <= (uint)input.Length && pdu.Length == (int)plen, $"PDU length {pdu.Length} vs PLEN {plen} / input {input.Length}", input);
        Check(pdu.Type == type && pdu.Flags == flags && pdu.HeaderLength == hlen && pdu.PduDataOffset == pdo, "header fields differ from the bytes", input);
        Check(NvmeTcp.HeaderLengthOf(type) == hlen && hlen != 0, $"HLEN {hlen} accepted for {type}", input);
        Check(IsFromSender(type, options.Direction), $"{type} accepted from the wrong side", input);
        bool isIc = type is PduType.ICReq or PduType.ICResp;
        bool isTerm = type is PduType.H2CTermReq or PduType.C2HTermReq;
        Check(options.Initialized ? !isIc : isIc || isTerm, $"{type} accepted in the wrong connection state", input);

        // Digests: negotiated exactly, and verified with a bitwise CRC32C.
        bool digestless = NvmeTcp.IsDigestless(type);
        bool hdgst = (flags & PduFlags.HeaderDigest) != 0;
        bool ddgst = (flags & PduFlags.DataDigest) != 0;
        Check(!digestless || (!hdgst && !ddgst), "digest flag on a digestless PDU", input);
        if (!digestless)
            Check(hdgst == ((options.Digests & DigestOptions.Header) != 0), "HDGSTF disagrees with the negotiated digests", input);
        int headerEnd = hlen + (hdgst ? NvmeTcp.DigestSize : 0);
        Check(headerEnd <= (int)plen, "header runs past PLEN", input);
        if (hdgst)
            Check(SlowCrc32C(input[..hlen]) == BinaryPrimitives.ReadUInt32LittleEndian(input[hlen..]), "header digest accepted but wrong", input);

        // Data segment.
        if (isTerm)
        {
            Check(pdu.DataStart == hlen && pdu.DataStart + pdu.DataLength == (int)plen && pdu.DataLength <= NvmeTcp.MaxTermReqErrorData,
                "TermReq error data out of place", input);
        }
        else if (pdu.HasData)
        {
            Check(type is PduType.CapsuleCmd or PduType.H2CData or PduType.C2HData, $"{type} with data", input);
            Check(pdu.DataStart == pdo && pdo >= headerEnd, $"data starts at {pdu.DataStart} inside the header (end {headerEnd})", input);
            Check(ddgst == ((options.Digests & DigestOptions.Data) != 0), "DDGSTF disagrees with the negotiated digests", input);
            int end = pdu.DataStart + pdu.DataLength + (ddgst ? NvmeTcp.DigestSize : 0);
            Check(end == (int)plen, $"data ends at {end}, PLEN {plen}", input);
            int limit = type == PduType.CapsuleCmd ? options.MaxInCapsuleDataLength : options.MaxDataPduLength;
            Check(pdu.DataLength <= limit, $"data length {pdu.DataLength} above the limit {limit}", input);
            bool mismatch = ddgst && SlowCrc32C(input.Slice(pdu.DataStart, pdu.DataLength))
                != BinaryPrimitives.ReadUInt32LittleEndian(input[(pdu.DataStart + pdu.DataLength)..]);
            Check(pdu.DataDigestMismatch == mismatch, "data digest verdict differs from the reference", input);
        }
        else
        {
            Check(type is not (PduType.H2CData or PduType.C2HData), "data PDU without data", input);
            Check((int)plen == headerEnd && pdo == 0 && !ddgst, "PDU without data has PDO/PLEN/DDGSTF of one with data", input);
            Check(!pdu.DataDigestMismatch, "digest mismatch without data", input);
        }

        // Type-specific fields.
        switch (type)
        {
            case PduType.CapsuleCmd:
            {
                var sqe = pdu.Command;
                Check(sqe.Bytes.SequenceEqual(input.Slice(NvmeTcp.CommonHeaderSize, 64)), "SQE differs from the bytes", input);
                CheckRoundTrip(input, pdu, flags, hdgst, ddgst, headerEnd);
                break;
            }
            case PduType.CapsuleResp:
                Check(pdu.Response.CommandId == BinaryPrimitives.ReadUInt16LittleEndian(input[20..]), "CQE CID differs from the bytes", input);
                break;
            case PduType.H2CData or PduType.C2HData or PduType.R2T:
                Check(pdu.CommandId == BinaryPrimitives.ReadUInt16LittleEndian(input[8..])
                    && pdu.TransferTag == BinaryPrimitives.ReadUInt16LittleEndian(input[10..])
                    && pdu.TransferOffset == BinaryPrimitives.ReadUInt32LittleEndian(input[12..])
                    && pdu.TransferLength == BinaryPrimitives.ReadUInt32LittleEndian(input[16..]), "data PDU fields differ from the bytes", input);
                Check(type == PduType.R2T ? pdu.TransferLength != 0 : pdu.TransferLength == (uint)pdu.DataLength, "DATAL/R2TL inconsistent", input);
                break;
            case PduType.ICReq or PduType.ICResp:
                Check(pdu.FormatVersion == 0 && pdu.DataAlignment <= NvmeTcp.MaxDataAlignment, "ICReq/ICResp with bad PFV or alignment", input);
                break;
        }

        // The verdict depends on the PDU's own bytes only, and every proper prefix is "need more data".
        var again = PduParser.TryParse(input[..(int)plen], options, out var same, out _);
        Check(again == PduParseStatus.Complete && same.Length == pdu.Length && same.DataDigestMismatch == pdu.DataDigestMismatch,
            "bytes after the PDU changed the verdict", input);
        foreach (int k in (ReadOnlySpan<int>)[0, NvmeTcp.CommonHeaderSize - 1, NvmeTcp.CommonHeaderSize, hlen, headerEnd - 1, (int)plen - 1])
        {
            if (k < 0 || k >= (int)plen)
                continue;
            var prefix = PduParser.TryParse(input[..k], options, out _, out _);
            Check(prefix == PduParseStatus.NeedMoreData, $"prefix of {k} bytes of a valid PDU gave {prefix}", input);
        }
    }

    /// <summary>A capsule without padding re-encodes to exactly the bytes it was parsed from.</summary>
    private static void CheckRoundTrip(ReadOnlySpan<byte> input, in Pdu pdu, PduFlags flags, bool hdgst, bool ddgst, int headerEnd)
    {
        if (((byte)flags & 0xF0) != 0 || pdu.DataDigestMismatch || (pdu.HasData && pdu.DataStart != headerEnd))
            return;
        var digests = (hdgst ? DigestOptions.Header : 0) | (ddgst ? DigestOptions.Data : 0);
        var data = input.Slice(pdu.DataStart, pdu.DataLength);
        var bytes = new byte[PduWriter.CapsuleCmdLength(data.Length, digests)];
        int written = PduWriter.WriteCapsuleCmd(bytes, pdu.Command, data, digests);
        Check(written == pdu.Length && bytes.AsSpan(0, written).SequenceEqual(input[..pdu.Length]), "capsule does not re-encode to its bytes", input);
    }

    private static void CheckNeedMore(ReadOnlySpan<byte> input, in PduParserOptions options)
    {
        if (input.Length < NvmeTcp.CommonHeaderSize)
            return;
        uint plen = BinaryPrimitives.ReadUInt32LittleEndian(input[4..]);
        Check(plen > (uint)input.Length, $"need more data although PLEN {plen} bytes are there", input);
        // The buffering bound: header (≤ 255 with PDO padding) + digest + the largest data segment + digest.
        long bound = 255 + NvmeTcp.DigestSize + Math.Max(options.MaxInCapsuleDataLength, options.MaxDataPduLength) + NvmeTcp.DigestSize;
        Check(plen <= bound, $"waits for a PDU of {plen} bytes, above the bound {bound}", input);
    }

    /// <summary>The sequence parser with the input split in two segments gives the same answer as the span parser.</summary>
    private static void CheckSegmented(ReadOnlySpan<byte> input, in PduParserOptions options, PduParseStatus status, in Pdu pdu, in PduError error)
    {
        if (input.Length < 2)
            return;
        int split = 1 + input[^1] % (input.Length - 1);
        var sequence = Segments.Create(input.ToArray(), split);
        var status2 = PduParser.TryParse(sequence, options, out var pdu2, out var error2);
        Check(status2 == status, $"segmented parse at {split}: {status2}, span parse: {status}", input);
        if (status == PduParseStatus.Fatal)
            Check(error2 == error, $"segmented error {error2} vs {error}", input);
        if (status == PduParseStatus.Complete)
        {
            Check(pdu2.Length == pdu.Length && pdu2.DataStart == pdu.DataStart && pdu2.DataLength == pdu.DataLength
                && pdu2.DataDigestMismatch == pdu.DataDigestMismatch && pdu2.CommandId == pdu.CommandId
                && pdu2.Command.Bytes.SequenceEqual(pdu.Command.Bytes), "segmented PDU differs", input);
        }
    }

    private static bool IsFromSender(PduType type, PduDirection direction) => direction == PduDirection.HostToController
        ? type is PduType.ICReq or PduType.H2CTermReq or PduType.CapsuleCmd or PduType.H2CData
        : type is PduType.ICResp or PduType.C2HTermReq or PduType.CapsuleResp or PduType.C2HData or PduType.R2T;

    /// <summary>CRC-32C one bit at a time (reflected polynomial 0x82F63B78), independent of the production code.</summary>
    internal static uint SlowCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int i = 0; i < 8; i++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
        }
        return ~crc;
    }

    private sealed class Segments : ReadOnlySequenceSegment<byte>
    {
        private Segments(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public static ReadOnlySequence<byte> Create(byte[] bytes, int split)
        {
            var first = new Segments(bytes.AsMemory(0, split), 0);
            var second = new Segments(bytes.AsMemory(split), split);
            first.Next = second;
            return new ReadOnlySequence<byte>(first, 0, second, second.Memory.Length);
        }
    }
}

using System.Buffers;
using System.Buffers.Binary;

using Zns.Nvme;

namespace Zns.Protocol;

/// <summary>
/// Frames and validates NVMe/TCP PDUs. Never throws on bad input and never sizes anything from a peer-declared
/// length: PLEN is checked against the configured maxima from the 8-byte common header alone, before waiting for
/// the rest of the PDU.
/// </summary>
/// <remarks>
/// Validation order follows the receive path of NVMe/TCP: common header (type, state, HLEN, flags, PDO, PLEN),
/// then the full header and its digest, then type-specific header fields, then the data digest. A
/// <see cref="PduParseStatus.Complete"/> result means the whole PDU (PLEN bytes) is in the buffer.
/// </remarks>
public static class PduParser
{
    private const int HeaderScratchSize = NvmeTcp.MaxHeaderSize + NvmeTcp.DigestSize;

    /// <summary>Parses the PDU at the start of <paramref name="buffer"/>.</summary>
    public static PduParseStatus TryParse(ReadOnlySpan<byte> buffer, in PduParserOptions options, out Pdu pdu, out PduError error)
    {
        var status = ParseHeader(buffer, buffer.Length, options, out pdu, out error);
        if (status == PduParseStatus.Complete && (pdu.Flags & PduFlags.DataDigest) != 0)
        {
            var data = buffer.Slice(pdu.DataStart, pdu.DataLength);
            pdu.DataDigestMismatch = !Digest.Verify(data, buffer.Slice(pdu.DataStart + pdu.DataLength, NvmeTcp.DigestSize));
        }
        return status;
    }

    /// <summary>Parses the PDU at the start of <paramref name="buffer"/>, which may span several segments.</summary>
    public static PduParseStatus TryParse(in ReadOnlySequence<byte> buffer, in PduParserOptions options, out Pdu pdu, out PduError error)
    {
        // Fast path: the whole header (and usually the whole PDU) sits in the first segment.
        ReadOnlySpan<byte> first = buffer.FirstSpan;
        if (first.Length >= buffer.Length)
            return TryParse(first, options, out pdu, out error);

        int take = (int)Math.Min(buffer.Length, HeaderScratchSize);
        Span<byte> scratch = stackalloc byte[HeaderScratchSize];
        scoped ReadOnlySpan<byte> header;
        if (first.Length >= take)
        {
            header = first;
        }
        else
        {
            buffer.Slice(0, take).CopyTo(scratch);
            header = scratch[..take];
        }

        var status = ParseHeader(header, buffer.Length, options, out pdu, out error);
        if (status == PduParseStatus.Complete && (pdu.Flags & PduFlags.DataDigest) != 0)
        {
            var data = buffer.Slice(pdu.DataStart, pdu.DataLength);
            Span<byte> digest = stackalloc byte[NvmeTcp.DigestSize];
            buffer.Slice(pdu.DataStart + pdu.DataLength, NvmeTcp.DigestSize).CopyTo(digest);
            pdu.DataDigestMismatch = BinaryPrimitives.ReadUInt32LittleEndian(digest) != Digest.Compute(data);
        }
        return status;
    }

    /// <summary>
    /// Validates everything but the data digest. <paramref name="header"/> holds the first min(available, 132) bytes
    /// of the PDU (or more); <paramref name="available"/> is how many bytes of the PDU are buffered in total.
    /// </summary>
    private static PduParseStatus ParseHeader(ReadOnlySpan<byte> header, long available, in PduParserOptions options, out Pdu pdu, out PduError error)
    {
        pdu = default;
        error = default;
        if (available < NvmeTcp.CommonHeaderSize)
            return PduParseStatus.NeedMoreData;

        var type = (PduType)header[0];
        var flags = (PduFlags)header[1];
        int hlen = header[2];
        int pdo = header[3];
        uint plen = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        int echo = EchoLength(header, available);

        int expectedHlen = NvmeTcp.HeaderLengthOf(type);
        if (expectedHlen == 0 || !IsFromSender(type, options.Direction))
            return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetType, echo);

        bool isIc = type is PduType.ICReq or PduType.ICResp;
        bool isTerm = type is PduType.H2CTermReq or PduType.C2HTermReq;
        if (options.Initialized ? isIc : !(isIc || isTerm))
            return Fail(out error, FatalErrorStatus.PduSequenceError, 0, echo);

        if (hlen != expectedHlen)
            return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetHlen, echo);

        // Flags: reserved bits 7:4 are ignored (as reserved fields are); bits defined by the spec but not for this
        // PDU type, and digest flags that disagree with what was negotiated, are errors.
        bool digestless = NvmeTcp.IsDigestless(type);
        var allowed = digestless ? PduFlags.None : PduFlags.HeaderDigest | PduFlags.DataDigest;
        if (type is PduType.H2CData or PduType.C2HData)
            allowed |= PduFlags.LastPdu;
        if (type is PduType.C2HData)
            allowed |= PduFlags.Success;
        var defined = flags & (PduFlags)0x0F;
        if ((defined & ~allowed) != 0)
            return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetFlags, echo);
        bool hdgst = (flags & PduFlags.HeaderDigest) != 0;
        if (!digestless && hdgst != ((options.Digests & DigestOptions.Header) != 0))
            return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetFlags, echo);
        if ((flags & PduFlags.Success) != 0 && (flags & PduFlags.LastPdu) == 0)
            return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetFlags, echo);
        bool ddgst = (flags & PduFlags.DataDigest) != 0;
        bool dataDigestNegotiated = (options.Digests & DigestOptions.Data) != 0;

        int headerEnd = hlen + (hdgst ? NvmeTcp.DigestSize : 0);
        int dataStart = 0;
        int dataLength = 0;
        switch (type)
        {
            case PduType.ICReq or PduType.ICResp or PduType.CapsuleResp or PduType.R2T:
                if (pdo != 0)
                    return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetPdo, echo);
                if (ddgst)
                    return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetFlags, echo);
                if (plen != headerEnd)
                    return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetPlen, echo);
                break;

            case PduType.H2CTermReq or PduType.C2HTermReq:
                if (pdo != 0)
                    return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetPdo, echo);
                if (plen < hlen || plen > hlen + NvmeTcp.MaxTermReqErrorData)
                    return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetPlen, echo);
                dataStart = hlen;
                dataLength = (int)plen - hlen;
                break;

            case PduType.CapsuleCmd when plen == headerEnd:
                // No in-capsule data: the host leaves PDO 0 and must not set DDGSTF.
                if (pdo != 0)
                    return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetPdo, echo);
                if (ddgst)
                    return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetFlags, echo);
                break;

            default: // CapsuleCmd with data, H2CData, C2HData
            {
                if (plen < headerEnd)
                    return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetPlen, echo);
                // PDO may include padding after the header (digest), but data cannot start inside it.
                if (pdo < headerEnd)
                    return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetPdo, echo);
                if (ddgst != dataDigestNegotiated)
                    return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetFlags, echo);
                long length = (long)plen - pdo - (ddgst ? NvmeTcp.DigestSize : 0);
                if (length <= 0)
                    return Fail(out error, FatalErrorStatus.InvalidHeaderField, NvmeTcp.OffsetPlen, echo);
                int limit = type == PduType.CapsuleCmd ? options.MaxInCapsuleDataLength : options.MaxDataPduLength;
                if (length > limit)
                    return Fail(out error, FatalErrorStatus.DataTransferLimitExceeded, 0, echo);
                dataStart = pdo;
                dataLength = (int)length;
                break;
            }
        }

        if (available < headerEnd)
            return PduParseStatus.NeedMoreData;

        if (hdgst && !Digest.Verify(header[..hlen], header.Slice(hlen, NvmeTcp.DigestSize)))
            return Fail(out error, FatalErrorStatus.HeaderDigestError, 0, echo);

        pdu.Type = type;
        pdu.Flags = flags;
        pdu.HeaderLength = hlen;
        pdu.PduDataOffset = pdo;
        pdu.Length = (int)plen;
        pdu.DataStart = dataStart;
        pdu.DataLength = dataLength;

        if (!ParseSpecific(header[..hlen], ref pdu, out var fes, out var fei))
            return Fail(out error, fes, fei, echo);

        return available < plen ? PduParseStatus.NeedMoreData : PduParseStatus.Complete;
    }

    private static bool ParseSpecific(ReadOnlySpan<byte> h, ref Pdu pdu, out FatalErrorStatus fes, out uint fei)
    {
        fes = FatalErrorStatus.None;
        fei = 0;
        switch (pdu.Type)
        {
            case PduType.ICReq:
            case PduType.ICResp:
                pdu.FormatVersion = BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
                pdu.DataAlignment = h[10];
                pdu.Digests = (DigestOptions)(h[11] & 0x03);
                if (pdu.FormatVersion != NvmeTcp.PduFormatVersion)
                    return Bad(out fes, out fei, FatalErrorStatus.UnsupportedParameter, 8);
                if (pdu.DataAlignment > NvmeTcp.MaxDataAlignment)
                    return Bad(out fes, out fei, FatalErrorStatus.InvalidHeaderField, 10);
                uint dword3 = BinaryPrimitives.ReadUInt32LittleEndian(h[12..]);
                if (pdu.Type == PduType.ICReq)
                {
                    pdu.MaxR2T = dword3;
                }
                else
                {
                    if (dword3 < NvmeTcp.MinMaxH2CData || dword3 % 4 != 0)
                        return Bad(out fes, out fei, FatalErrorStatus.InvalidHeaderField, 12);
                    pdu.MaxH2CData = dword3;
                }
                return true;

            case PduType.CapsuleCmd:
                pdu.Command = SubmissionQueueEntry.Read(h[NvmeTcp.CommonHeaderSize..]);
                return true;

            case PduType.CapsuleResp:
                pdu.Response = CompletionQueueEntry.Read(h[NvmeTcp.CommonHeaderSize..]);
                return true;

            case PduType.H2CData:
            case PduType.C2HData:
            case PduType.R2T:
                pdu.CommandId = BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
                pdu.TransferTag = BinaryPrimitives.ReadUInt16LittleEndian(h[10..]);
                pdu.TransferOffset = BinaryPrimitives.ReadUInt32LittleEndian(h[12..]);
                pdu.TransferLength = BinaryPrimitives.ReadUInt32LittleEndian(h[16..]);
                if (pdu.Type == PduType.R2T)
                {
                    if (pdu.TransferLength == 0)
                        return Bad(out fes, out fei, FatalErrorStatus.InvalidHeaderField, 16);
                }
                else if (pdu.TransferLength != (uint)pdu.DataLength)
                {
                    // DATAL must describe exactly the data segment PLEN and PDO delimit.
                    return Bad(out fes, out fei, FatalErrorStatus.InvalidHeaderField, 16);
                }
                return true;

            case PduType.H2CTermReq:
            case PduType.C2HTermReq:
                pdu.FatalStatus = (FatalErrorStatus)BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
                pdu.FatalInformation = BinaryPrimitives.ReadUInt32LittleEndian(h[10..]);
                return true;

            default:
                return Bad(out fes, out fei, FatalErrorStatus.InvalidHeaderField, 0);
        }
    }

    private static bool IsFromSender(PduType type, PduDirection direction) => direction == PduDirection.HostToController
        ? type is PduType.ICReq or PduType.H2CTermReq or PduType.CapsuleCmd or PduType.H2CData
        : type is PduType.ICResp or PduType.C2HTermReq or PduType.CapsuleResp or PduType.C2HData or PduType.R2T;

    /// <summary>Bytes of the offending PDU a TermReq should echo: its header as far as it is known and buffered.</summary>
    private static int EchoLength(ReadOnlySpan<byte> header, long available)
    {
        int hlen = Math.Clamp((int)header[2], NvmeTcp.CommonHeaderSize, NvmeTcp.MaxTermReqErrorData);
        return (int)Math.Min(Math.Min(available, header.Length), hlen);
    }

    private static PduParseStatus Fail(out PduError error, FatalErrorStatus status, uint information, int echo)
    {
        error = new PduError(status, information, echo);
        return PduParseStatus.Fatal;
    }

    private static bool Bad(out FatalErrorStatus fes, out uint fei, FatalErrorStatus status, uint information)
    {
        fes = status;
        fei = information;
        return false;
    }
}

using System.Buffers.Binary;
using System.Runtime.InteropServices;

using Zns.Nvme;

namespace Zns.Protocol;

/// <summary>
/// Encodes NVMe/TCP PDUs into caller-provided spans. Every method returns the number of bytes written; the
/// destination must be at least as long as the matching <c>*Length</c> helper says (a shorter span is a caller bug
/// and throws).
/// </summary>
/// <remarks>
/// Digests follow the connection's negotiated <see cref="DigestOptions"/>: a header digest on every PDU except
/// ICReq/ICResp/TermReq, a data digest after each data segment. Data is never padded (PDO = HLEN + HDGST), which is
/// what the Linux host requires (it ignores PDO on receive).
/// </remarks>
public static class PduWriter
{
    /// <summary>Header digest size for these options (0 or 4).</summary>
    public static int HeaderDigestLength(DigestOptions digests) => (digests & DigestOptions.Header) != 0 ? NvmeTcp.DigestSize : 0;

    /// <summary>Data digest size for these options (0 or 4).</summary>
    public static int DataDigestLength(DigestOptions digests) => (digests & DigestOptions.Data) != 0 ? NvmeTcp.DigestSize : 0;

    /// <summary>Writes an ICReq (128 bytes).</summary>
    public static int WriteIcReq(Span<byte> destination, DigestOptions digests, byte hpda = 0, uint maxR2T = 0)
    {
        var d = destination[..NvmeTcp.IcPduSize];
        d.Clear();
        WriteCommonHeader(d, PduType.ICReq, PduFlags.None, NvmeTcp.IcPduSize, 0, NvmeTcp.IcPduSize);
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], NvmeTcp.PduFormatVersion);
        d[10] = hpda;
        d[11] = (byte)digests;
        BinaryPrimitives.WriteUInt32LittleEndian(d[12..], maxR2T);
        return NvmeTcp.IcPduSize;
    }

    /// <summary>Writes an ICResp (128 bytes).</summary>
    public static int WriteIcResp(Span<byte> destination, DigestOptions digests, uint maxH2CData, byte cpda = 0)
    {
        var d = destination[..NvmeTcp.IcPduSize];
        d.Clear();
        WriteCommonHeader(d, PduType.ICResp, PduFlags.None, NvmeTcp.IcPduSize, 0, NvmeTcp.IcPduSize);
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], NvmeTcp.PduFormatVersion);
        d[10] = cpda;
        d[11] = (byte)digests;
        BinaryPrimitives.WriteUInt32LittleEndian(d[12..], maxH2CData);
        return NvmeTcp.IcPduSize;
    }

    /// <summary>Length of a CapsuleCmd carrying <paramref name="dataLength"/> bytes of in-capsule data.</summary>
    public static int CapsuleCmdLength(int dataLength, DigestOptions digests) =>
        NvmeTcp.CapsuleCmdHeaderSize + HeaderDigestLength(digests) + (dataLength > 0 ? dataLength + DataDigestLength(digests) : 0);

    /// <summary>Writes a CapsuleCmd with optional in-capsule data.</summary>
    public static int WriteCapsuleCmd(Span<byte> destination, in SubmissionQueueEntry command, ReadOnlySpan<byte> inCapsuleData, DigestOptions digests)
    {
        int hd = HeaderDigestLength(digests);
        int headerEnd = NvmeTcp.CapsuleCmdHeaderSize + hd;
        int length = CapsuleCmdLength(inCapsuleData.Length, digests);
        var flags = hd != 0 ? PduFlags.HeaderDigest : PduFlags.None;
        bool ddgst = inCapsuleData.Length > 0 && DataDigestLength(digests) != 0;
        if (ddgst)
            flags |= PduFlags.DataDigest;
        var d = destination[..length];
        WriteCommonHeader(d, PduType.CapsuleCmd, flags, NvmeTcp.CapsuleCmdHeaderSize,
            inCapsuleData.Length > 0 ? headerEnd : 0, length);
        MemoryMarshal.AsBytes(new ReadOnlySpan<SubmissionQueueEntry>(in command)).CopyTo(d[NvmeTcp.CommonHeaderSize..]);
        WriteHeaderDigest(d, NvmeTcp.CapsuleCmdHeaderSize, hd);
        if (inCapsuleData.Length > 0)
        {
            inCapsuleData.CopyTo(d[headerEnd..]);
            if (ddgst)
                Digest.Write(inCapsuleData, d[(headerEnd + inCapsuleData.Length)..]);
        }
        return length;
    }

    /// <summary>Length of a CapsuleResp.</summary>
    public static int CapsuleRespLength(DigestOptions digests) => NvmeTcp.CapsuleRespHeaderSize + HeaderDigestLength(digests);

    /// <summary>Writes a CapsuleResp.</summary>
    public static int WriteCapsuleResp(Span<byte> destination, in CompletionQueueEntry response, DigestOptions digests)
    {
        int hd = HeaderDigestLength(digests);
        int length = NvmeTcp.CapsuleRespHeaderSize + hd;
        var d = destination[..length];
        WriteCommonHeader(d, PduType.CapsuleResp, hd != 0 ? PduFlags.HeaderDigest : PduFlags.None,
            NvmeTcp.CapsuleRespHeaderSize, 0, length);
        response.Write(d[NvmeTcp.CommonHeaderSize..]);
        WriteHeaderDigest(d, NvmeTcp.CapsuleRespHeaderSize, hd);
        return length;
    }

    /// <summary>Length of an R2T.</summary>
    public static int R2TLength(DigestOptions digests) => NvmeTcp.R2THeaderSize + HeaderDigestLength(digests);

    /// <summary>Writes an R2T soliciting <paramref name="r2tLength"/> bytes at <paramref name="r2tOffset"/>.</summary>
    public static int WriteR2T(Span<byte> destination, ushort commandId, ushort transferTag, uint r2tOffset, uint r2tLength, DigestOptions digests)
    {
        int hd = HeaderDigestLength(digests);
        int length = NvmeTcp.R2THeaderSize + hd;
        var d = destination[..length];
        WriteCommonHeader(d, PduType.R2T, hd != 0 ? PduFlags.HeaderDigest : PduFlags.None, NvmeTcp.R2THeaderSize, 0, length);
        WriteTransferFields(d, commandId, transferTag, r2tOffset, r2tLength);
        WriteHeaderDigest(d, NvmeTcp.R2THeaderSize, hd);
        return length;
    }

    /// <summary>Length of the part of a data PDU before its data (header and header digest).</summary>
    public static int DataPduHeaderLength(DigestOptions digests) => NvmeTcp.DataHeaderSize + HeaderDigestLength(digests);

    /// <summary>Total length of an H2CData/C2HData PDU with <paramref name="dataLength"/> data bytes.</summary>
    public static int DataPduLength(int dataLength, DigestOptions digests) =>
        DataPduHeaderLength(digests) + dataLength + DataDigestLength(digests);

    /// <summary>
    /// Writes the header (and header digest) of an H2CData or C2HData PDU whose data the caller sends separately,
    /// followed by the data digest when negotiated. Returns the number of header bytes written.
    /// </summary>
    public static int WriteDataPduHeader(Span<byte> destination, PduType type, ushort commandId, ushort transferTag,
        uint dataOffset, int dataLength, bool last, DigestOptions digests)
    {
        if (type is not (PduType.H2CData or PduType.C2HData))
            throw new ArgumentOutOfRangeException(nameof(type), type, "Only H2CData and C2HData carry data.");
        if (dataLength <= 0)
            throw new ArgumentOutOfRangeException(nameof(dataLength), dataLength, "A data PDU carries at least one byte.");
        int hd = HeaderDigestLength(digests);
        int headerEnd = NvmeTcp.DataHeaderSize + hd;
        var flags = (hd != 0 ? PduFlags.HeaderDigest : PduFlags.None)
            | (DataDigestLength(digests) != 0 ? PduFlags.DataDigest : PduFlags.None)
            | (last ? PduFlags.LastPdu : PduFlags.None);
        var d = destination[..headerEnd];
        WriteCommonHeader(d, type, flags, NvmeTcp.DataHeaderSize, headerEnd, DataPduLength(dataLength, digests));
        WriteTransferFields(d, commandId, transferTag, dataOffset, (uint)dataLength);
        WriteHeaderDigest(d, NvmeTcp.DataHeaderSize, hd);
        return headerEnd;
    }

    /// <summary>Writes a whole H2CData or C2HData PDU.</summary>
    public static int WriteDataPdu(Span<byte> destination, PduType type, ushort commandId, ushort transferTag,
        uint dataOffset, ReadOnlySpan<byte> data, bool last, DigestOptions digests)
    {
        int headerEnd = WriteDataPduHeader(destination, type, commandId, transferTag, dataOffset, data.Length, last, digests);
        data.CopyTo(destination[headerEnd..]);
        if (DataDigestLength(digests) != 0)
            Digest.Write(data, destination[(headerEnd + data.Length)..]);
        return DataPduLength(data.Length, digests);
    }

    /// <summary>Length of a TermReq echoing <paramref name="errorDataLength"/> header bytes (at most 128 are kept).</summary>
    public static int TermReqLength(int errorDataLength) =>
        NvmeTcp.TermReqHeaderSize + Math.Min(errorDataLength, NvmeTcp.MaxTermReqErrorData);

    /// <summary>Writes an H2CTermReq or C2HTermReq. Error data beyond 128 bytes is cut off. TermReqs never carry digests.</summary>
    public static int WriteTermReq(Span<byte> destination, PduType type, FatalErrorStatus status, uint information, ReadOnlySpan<byte> errorData)
    {
        if (type is not (PduType.H2CTermReq or PduType.C2HTermReq))
            throw new ArgumentOutOfRangeException(nameof(type), type, "Not a TermReq type.");
        if (errorData.Length > NvmeTcp.MaxTermReqErrorData)
            errorData = errorData[..NvmeTcp.MaxTermReqErrorData];
        int length = NvmeTcp.TermReqHeaderSize + errorData.Length;
        var d = destination[..length];
        d[..NvmeTcp.TermReqHeaderSize].Clear();
        WriteCommonHeader(d, type, PduFlags.None, NvmeTcp.TermReqHeaderSize, 0, length);
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], (ushort)status);
        BinaryPrimitives.WriteUInt32LittleEndian(d[10..], information);
        errorData.CopyTo(d[NvmeTcp.TermReqHeaderSize..]);
        return length;
    }

    /// <summary>Writes the 8-byte common header.</summary>
    public static void WriteCommonHeader(Span<byte> destination, PduType type, PduFlags flags, int hlen, int pdo, int plen)
    {
        destination[0] = (byte)type;
        destination[1] = (byte)flags;
        destination[2] = (byte)hlen;
        destination[3] = (byte)pdo;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], (uint)plen);
    }

    private static void WriteTransferFields(Span<byte> d, ushort commandId, ushort transferTag, uint offset, uint length)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], commandId);
        BinaryPrimitives.WriteUInt16LittleEndian(d[10..], transferTag);
        BinaryPrimitives.WriteUInt32LittleEndian(d[12..], offset);
        BinaryPrimitives.WriteUInt32LittleEndian(d[16..], length);
        BinaryPrimitives.WriteUInt32LittleEndian(d[20..], 0);
    }

    private static void WriteHeaderDigest(Span<byte> pdu, int hlen, int hd)
    {
        if (hd != 0)
            Digest.Write(pdu[..hlen], pdu[hlen..]);
    }
}

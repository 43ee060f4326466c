using Zns.Nvme;

namespace Zns.Protocol;

/// <summary>
/// One parsed NVMe/TCP PDU: the common header, the type-specific header fields and where its data segment lies.
/// </summary>
/// <remarks>
/// The data segment is not copied: it occupies bytes [<see cref="DataStart"/>, <see cref="DataStart"/> +
/// <see cref="DataLength"/>) of the buffer the PDU was parsed from (the PDU starts at offset 0). For TermReq PDUs
/// the "data" is the error data (a copy of the offending header). Fields that do not belong to
/// <see cref="Type"/> are zero.
/// </remarks>
public struct Pdu
{
    /// <summary>PDU-Type.</summary>
    public PduType Type { readonly get; internal set; }
    /// <summary>FLAGS.</summary>
    public PduFlags Flags { readonly get; internal set; }
    /// <summary>HLEN: header length without the header digest.</summary>
    public int HeaderLength { readonly get; internal set; }
    /// <summary>PDO as sent (0 when the PDU has no data).</summary>
    public int PduDataOffset { readonly get; internal set; }
    /// <summary>PLEN: total length of the PDU in bytes.</summary>
    public int Length { readonly get; internal set; }
    /// <summary>Offset of the first data byte from the start of the PDU (0 when there is no data).</summary>
    public int DataStart { readonly get; internal set; }
    /// <summary>Number of data bytes (in-capsule data, DATAL, or TermReq error data).</summary>
    public int DataLength { readonly get; internal set; }
    /// <summary>
    /// True when DDGSTF was set and the data digest did not match. The stream is still in sync (the framing is
    /// intact), so this is a per-command error, not a fatal one.
    /// </summary>
    public bool DataDigestMismatch { readonly get; internal set; }

    /// <summary>ICReq/ICResp: PDU format version (PFV).</summary>
    public ushort FormatVersion { readonly get; internal set; }
    /// <summary>ICReq: HPDA; ICResp: CPDA (0's based dwords).</summary>
    public byte DataAlignment { readonly get; internal set; }
    /// <summary>ICReq/ICResp: the DGST byte.</summary>
    public DigestOptions Digests { readonly get; internal set; }
    /// <summary>ICReq: MAXR2T (0's based outstanding R2Ts per command).</summary>
    public uint MaxR2T { readonly get; internal set; }
    /// <summary>ICResp: MAXH2CDATA (largest H2CData data segment the controller accepts).</summary>
    public uint MaxH2CData { readonly get; internal set; }

    /// <summary>CapsuleCmd: the SQE.</summary>
    public SubmissionQueueEntry Command { readonly get; internal set; }
    /// <summary>CapsuleResp: the CQE.</summary>
    public CompletionQueueEntry Response { readonly get; internal set; }

    /// <summary>H2CData/C2HData/R2T: CCCID, the CID of the command the transfer belongs to.</summary>
    public ushort CommandId { readonly get; internal set; }
    /// <summary>H2CData/R2T: TTAG, the controller's transfer tag.</summary>
    public ushort TransferTag { readonly get; internal set; }
    /// <summary>H2CData/C2HData: DATAO; R2T: R2TO. Offset into the command's data.</summary>
    public uint TransferOffset { readonly get; internal set; }
    /// <summary>H2CData/C2HData: DATAL; R2T: R2TL.</summary>
    public uint TransferLength { readonly get; internal set; }

    /// <summary>TermReq: FES.</summary>
    public FatalErrorStatus FatalStatus { readonly get; internal set; }
    /// <summary>TermReq: FEI.</summary>
    public uint FatalInformation { readonly get; internal set; }

    /// <summary>True when the PDU carries a data segment.</summary>
    public readonly bool HasData => DataLength > 0;
    /// <summary>LAST_PDU flag.</summary>
    public readonly bool IsLast => (Flags & PduFlags.LastPdu) != 0;
}

/// <summary>Outcome of <see cref="PduParser"/>.</summary>
public enum PduParseStatus : byte
{
    /// <summary>A whole, valid PDU was parsed; consume <see cref="Pdu.Length"/> bytes.</summary>
    Complete,
    /// <summary>The buffer holds a valid prefix of a PDU; read more and parse again from the same start.</summary>
    NeedMoreData,
    /// <summary>The PDU is malformed; the connection must be terminated (TermReq with the error's FES/FEI).</summary>
    Fatal,
}

/// <summary>A fatal transport error: what to put in a TermReq.</summary>
/// <param name="Status">FES.</param>
/// <param name="Information">FEI: for <see cref="FatalErrorStatus.InvalidHeaderField"/> and
/// <see cref="FatalErrorStatus.UnsupportedParameter"/> the byte offset of the bad field within the PDU; else 0.</param>
/// <param name="HeaderBytes">How many leading bytes of the offending PDU to echo as TermReq error data (≤ 128).</param>
public readonly record struct PduError(FatalErrorStatus Status, uint Information, int HeaderBytes)
{
    /// <inheritdoc/>
    public override string ToString() => $"FES 0x{(ushort)Status:x2} ({Status}), FEI {Information}";
}

/// <summary>What the parser needs to know about the connection.</summary>
/// <param name="Direction">Which side sent the bytes being parsed.</param>
/// <param name="Initialized">False until ICReq/ICResp were exchanged: only ICReq (or ICResp) and TermReq are legal
/// before, and ICReq/ICResp are illegal after.</param>
/// <param name="Digests">Digests negotiated (ignored until <paramref name="Initialized"/>).</param>
/// <param name="MaxInCapsuleDataLength">Largest in-capsule data segment of a CapsuleCmd.</param>
/// <param name="MaxDataPduLength">Largest data segment of an H2CData (the controller's MAXH2CDATA) or C2HData PDU.</param>
public readonly record struct PduParserOptions(
    PduDirection Direction,
    bool Initialized,
    DigestOptions Digests,
    int MaxInCapsuleDataLength,
    int MaxDataPduLength);

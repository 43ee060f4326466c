using Zns.Nvme;

namespace Zns.Protocol;

/// <summary>Sizes, offsets and fixed values of the NVMe/TCP transport binding.</summary>
public static class NvmeTcp
{
    /// <summary>IANA port for NVMe/TCP I/O controllers.</summary>
    public const int DefaultPort = 4420;

    /// <summary>
    /// In-capsule data the Linux host sends on an admin queue whatever IOCCSZ says (its NVME_TCP_ADMIN_CCSZ): the
    /// Connect data of every queue and admin writes up to 8 KiB. A target must accept this much in-capsule and before
    /// Connect.
    /// </summary>
    public const int HostAdminInCapsuleDataLength = 8192;
    /// <summary>IANA port for NVMe/TCP discovery controllers.</summary>
    public const int DiscoveryPort = 8009;

    /// <summary>Common header (CH) size.</summary>
    public const int CommonHeaderSize = 8;
    /// <summary>HLEN and PLEN of ICReq and ICResp.</summary>
    public const int IcPduSize = 128;
    /// <summary>HLEN of CapsuleCmd: CH + 64-byte SQE.</summary>
    public const int CapsuleCmdHeaderSize = CommonHeaderSize + SubmissionQueueEntry.Size;
    /// <summary>HLEN of CapsuleResp: CH + 16-byte CQE.</summary>
    public const int CapsuleRespHeaderSize = CommonHeaderSize + CompletionQueueEntry.Size;
    /// <summary>HLEN of H2CData, C2HData and R2T.</summary>
    public const int DataHeaderSize = 24;
    /// <summary>HLEN of R2T.</summary>
    public const int R2THeaderSize = 24;
    /// <summary>HLEN of H2CTermReq and C2HTermReq.</summary>
    public const int TermReqHeaderSize = 24;
    /// <summary>Most header bytes of the offending PDU a TermReq may carry as error data.</summary>
    public const int MaxTermReqErrorData = 128;
    /// <summary>Size of a header or data digest.</summary>
    public const int DigestSize = 4;
    /// <summary>Largest HLEN of any PDU type (ICReq/ICResp).</summary>
    public const int MaxHeaderSize = IcPduSize;

    /// <summary>The only PDU format version defined (PFV).</summary>
    public const ushort PduFormatVersion = 0;
    /// <summary>Smallest MAXH2CDATA a controller may advertise.</summary>
    public const int MinMaxH2CData = 4096;
    /// <summary>Largest value of HPDA/CPDA (0's based dwords).</summary>
    public const int MaxDataAlignment = 31;

    /// <summary>SGL identifier: Data Block descriptor, Offset subtype (in-capsule data at ICDOFF + ADDR).</summary>
    public const byte SglInCapsuleData = 0x01;
    /// <summary>SGL identifier: Transport SGL Data Block, transport-specific subtype (data via R2T/H2CData or C2HData).</summary>
    public const byte SglTransportDataBlock = 0x5A;

    /// <summary>SQE FLAGS value the Linux host uses: PSDT = 01b (SGL, MPTR is a contiguous buffer).</summary>
    public const byte SqeFlagsSgl = 0x40;

    /// <summary>
    /// Transient Transport Error (generic SC 22h): how a controller reports a data digest error in a command's data,
    /// which is a per-command failure rather than a broken stream.
    /// </summary>
    public static NvmeStatus TransientTransportError => new(0x22);

    // Offsets of common-header fields, used as FEI for Invalid PDU Header Field.
    /// <summary>Offset of PDU-Type in the common header.</summary>
    public const int OffsetType = 0;
    /// <summary>Offset of FLAGS in the common header.</summary>
    public const int OffsetFlags = 1;
    /// <summary>Offset of HLEN in the common header.</summary>
    public const int OffsetHlen = 2;
    /// <summary>Offset of PDO in the common header.</summary>
    public const int OffsetPdo = 3;
    /// <summary>Offset of PLEN in the common header.</summary>
    public const int OffsetPlen = 4;

    /// <summary>HLEN a PDU type must have, or 0 for an undefined type.</summary>
    public static int HeaderLengthOf(PduType type) => type switch
    {
        PduType.ICReq or PduType.ICResp => IcPduSize,
        PduType.CapsuleCmd => CapsuleCmdHeaderSize,
        PduType.CapsuleResp => CapsuleRespHeaderSize,
        PduType.H2CData or PduType.C2HData => DataHeaderSize,
        PduType.R2T => R2THeaderSize,
        PduType.H2CTermReq or PduType.C2HTermReq => TermReqHeaderSize,
        _ => 0,
    };

    /// <summary>True for the PDU types that never carry digests (ICReq, ICResp, TermReq).</summary>
    public static bool IsDigestless(PduType type) =>
        type is PduType.ICReq or PduType.ICResp or PduType.H2CTermReq or PduType.C2HTermReq;
}

namespace Zns.Nvme;

/// <summary>
/// The end-to-end protection fields of a Read, Write, Write Zeroes, Compare, Verify or Zone Append: PRINFO (CDW12
/// bits 29:26: PRACT, then the guard, application tag and reference tag check bits), Zone Append's PIREMAP (bit 25),
/// the expected initial reference tag (ILBRT: CDW14, with CDW3 bits 15:0 as bits 47:32 for the 64-bit guard format's
/// 48-bit tag), and the application tag and its mask (LBAT and LBATM, CDW15).
/// </summary>
public readonly record struct ProtectionFields(byte Prinfo, bool PiRemap, ulong ReferenceTag, ushort ApplicationTag, ushort ApplicationMask)
{
    /// <summary>PRINFO bit 3: the controller inserts (writes) or strips (reads) the PI.</summary>
    public const byte PractBit = 0x8;

    /// <summary>PRINFO bits 2:0: check the guard, the application tag, the reference tag.</summary>
    public const byte CheckGuard = 0x4, CheckApplicationTag = 0x2, CheckReferenceTag = 0x1;

    /// <summary>Any PRCHK bit.</summary>
    public const byte CheckMask = 0x7;

    /// <summary>PRACT.</summary>
    public bool Pract => (Prinfo & PractBit) != 0;

    /// <summary>The fields of <paramref name="sqe"/>.</summary>
    public static ProtectionFields Of(in SubmissionQueueEntry sqe) => new(
        (byte)((sqe.Cdw12 >> 26) & 0xF),
        (sqe.Cdw12 & (1u << 25)) != 0,
        sqe.Cdw14 | (ulong)(sqe.Cdw3 & 0xFFFF) << 32,
        (ushort)sqe.Cdw15,
        (ushort)(sqe.Cdw15 >> 16));
}

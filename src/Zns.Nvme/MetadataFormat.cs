namespace Zns.Nvme;

/// <summary>
/// The metadata of an LBA format and the end-to-end protection information (PI) in it: LBAF.MS, FLBAS bit 4
/// (extended LBA: each block's metadata follows its data in the data buffer, else it travels in the buffer MPTR
/// names), DPS (type, PI in the first or last bytes) and the ELBAF guard format (16-bit CRC or 64-bit CRC).
/// </summary>
/// <param name="MetadataSize">Metadata bytes per block (MS); 0 = none.</param>
/// <param name="Extended">FLBAS bit 4: metadata interleaved with the data (extended LBA).</param>
/// <param name="PiType">DPS bits 2:0: 0 none, 1, 2 or 3.</param>
/// <param name="PiFirst">DPS bit 3: the PI is the first bytes of the metadata (else the last).</param>
/// <param name="Pif">ELBAF PIF: 0 = 16-bit guard (8-byte PI), 2 = 64-bit guard (16-byte PI).</param>
public readonly record struct MetadataFormat(int MetadataSize, bool Extended, byte PiType, bool PiFirst, byte Pif)
{
    /// <summary>PIF value of the 16-bit guard (CRC-16 T10-DIF) format.</summary>
    public const byte Guard16 = 0;

    /// <summary>PIF value of the 64-bit guard (CRC-64 NVMe) format.</summary>
    public const byte Guard64 = 2;

    /// <summary>Whether blocks carry metadata at all.</summary>
    public bool HasMetadata => MetadataSize != 0;

    /// <summary>Whether the metadata holds protection information.</summary>
    public bool HasPi => PiType != 0;

    /// <summary>Bytes of one PI tuple: 8 with the 16-bit guard, 16 with the 64-bit one; 0 without PI.</summary>
    public int PiSize => PiType == 0 ? 0 : Pif == Guard64 ? 16 : 8;

    /// <summary>Where the PI tuple starts in a block's metadata.</summary>
    public int PiOffset => PiFirst ? 0 : MetadataSize - PiSize;

    /// <summary>
    /// Whether a command with these PRINFO bits transfers no metadata: with PRACT set and metadata that is only the PI
    /// tuple, the controller inserts it on writes and strips it on reads.
    /// </summary>
    public bool PractStrips(ProtectionFields fields) => HasPi && fields.Pract && MetadataSize == PiSize;

    /// <summary>Metadata bytes an I/O of <paramref name="blocks"/> blocks moves between host and controller.</summary>
    public long TransferredBytes(long blocks, ProtectionFields fields) =>
        !HasMetadata || PractStrips(fields) ? 0 : blocks * MetadataSize;
}

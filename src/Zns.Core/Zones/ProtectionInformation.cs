using System.Buffers.Binary;
using Zns.Nvme;

namespace Zns.Core.Zones;

/// <summary>
/// End-to-end protection information of one LBA format: generating the PI tuple of each block (PRACT), checking it
/// (PRCHK), and the tag rules of the NVM Command Set. Works on a run of blocks as the backstore keeps them: their
/// data in one span, their metadata in another.
/// </summary>
/// <remarks>
/// The tuple with the 16-bit guard is 8 bytes: guard (CRC-16 T10-DIF), application tag, 32-bit reference tag. With
/// the 64-bit guard it is 16 bytes: guard (CRC-64 NVMe), application tag, 48-bit reference tag (no storage tag).
/// All fields are big-endian. The guard covers the block's data and, when the PI is the last bytes of the metadata,
/// the metadata bytes before it. A block whose application tag is FFFFh (for Type 3 also with a reference tag of all
/// ones) is not checked: that is how unwritten blocks read.
/// </remarks>
public static class ProtectionInformation
{
    /// <summary>The reference tag bits of the format: 32, or 48 with the 64-bit guard.</summary>
    public static ulong ReferenceTagMask(in MetadataFormat format) => format.Pif == MetadataFormat.Guard64 ? 0xFFFF_FFFF_FFFFUL : 0xFFFF_FFFFUL;

    /// <summary>
    /// Type 1 ties the reference tag to the LBA: with the reference tag check asked for, ILBRT must be the low bits of
    /// SLBA, else Invalid Protection Information (QEMU's <c>nvme_check_prinfo</c>).
    /// </summary>
    public static NvmeStatus CheckPrinfo(in MetadataFormat format, in ProtectionFields fields, ulong slba)
    {
        ulong mask = ReferenceTagMask(format);
        return format.PiType == 1 && (fields.Prinfo & ProtectionFields.CheckReferenceTag) != 0 && (slba & mask) != (fields.ReferenceTag & mask)
            ? NvmeStatus.InvalidProtectionInformation.WithDnr()
            : NvmeStatus.Success;
    }

    /// <summary>
    /// Writes the PI tuple of every block (PRACT on a write): the guard of its data, <paramref name="applicationTag"/>,
    /// and <paramref name="referenceTag"/> counting up per block (constant for Type 3). Other metadata bytes stay.
    /// </summary>
    public static void Generate(in MetadataFormat format, int blockSize, ReadOnlySpan<byte> data, Span<byte> metadata,
        ushort applicationTag, ulong referenceTag)
    {
        int ms = format.MetadataSize;
        ulong mask = ReferenceTagMask(format);
        for (int block = 0; block * blockSize < data.Length; block++)
        {
            ReadOnlySpan<byte> blockData = data.Slice(block * blockSize, blockSize);
            Span<byte> blockMetadata = metadata.Slice(block * ms, ms);
            Span<byte> tuple = blockMetadata.Slice(format.PiOffset, format.PiSize);
            WriteGuard(format, tuple, Guard(format, blockData, blockMetadata));
            WriteTags(format, tuple, applicationTag, referenceTag & mask);
            if (format.PiType != 3)
            {
                referenceTag++;
            }
        }
    }

    /// <summary>
    /// Checks every block's PI tuple as PRINFO asks (QEMU's order per block: guard, application tag, reference tag),
    /// the expected reference tag counting up from <paramref name="referenceTag"/> (constant for Type 3).
    /// </summary>
    public static NvmeStatus Check(in MetadataFormat format, int blockSize, ReadOnlySpan<byte> data, ReadOnlySpan<byte> metadata,
        in ProtectionFields fields, ulong referenceTag)
    {
        int ms = format.MetadataSize;
        ulong mask = ReferenceTagMask(format);
        byte prinfo = fields.Prinfo;
        for (int block = 0; block * blockSize < data.Length; block++)
        {
            ReadOnlySpan<byte> blockMetadata = metadata.Slice(block * ms, ms);
            ReadOnlySpan<byte> tuple = blockMetadata.Slice(format.PiOffset, format.PiSize);
            (ulong guard, ushort app, ulong reference) = ReadTuple(format, tuple);
            bool notChecked = app == 0xFFFF && (format.PiType != 3 || reference == mask);
            if (!notChecked)
            {
                if ((prinfo & ProtectionFields.CheckGuard) != 0 && guard != Guard(format, data.Slice(block * blockSize, blockSize), blockMetadata))
                {
                    return NvmeStatus.EndToEndGuardCheckError;
                }
                if ((prinfo & ProtectionFields.CheckApplicationTag) != 0 && (app & fields.ApplicationMask) != (fields.ApplicationTag & fields.ApplicationMask))
                {
                    return NvmeStatus.EndToEndApplicationTagCheckError;
                }
                if ((prinfo & ProtectionFields.CheckReferenceTag) != 0 && reference != (referenceTag & mask))
                {
                    return NvmeStatus.EndToEndReferenceTagCheckError;
                }
            }
            if (format.PiType != 3)
            {
                referenceTag++;
            }
        }
        return NvmeStatus.Success;
    }

    /// <summary>
    /// Zone Append's PIREMAP: the reference tags written for blocks that landed <paramref name="offset"/> blocks past
    /// the zone start are moved up by that much, so each block's tag follows the LBA it was written to.
    /// </summary>
    public static void Remap(in MetadataFormat format, Span<byte> metadata, ulong offset)
    {
        ulong mask = ReferenceTagMask(format);
        for (int at = 0; at < metadata.Length; at += format.MetadataSize)
        {
            Span<byte> tuple = metadata.Slice(at + format.PiOffset, format.PiSize);
            (_, ushort app, ulong reference) = ReadTuple(format, tuple);
            WriteTags(format, tuple, app, (reference + offset) & mask);
        }
    }

    /// <summary>
    /// The metadata of blocks that hold no data (never written, reset, deallocated or written as zeros without PRACT):
    /// zeros with a PI tuple of all ones, which no check looks at (QEMU reads deallocated blocks so).
    /// </summary>
    public static void FillUnwritten(in MetadataFormat format, Span<byte> metadata)
    {
        metadata.Clear();
        if (!format.HasPi)
        {
            return;
        }
        for (int at = 0; at < metadata.Length; at += format.MetadataSize)
        {
            metadata.Slice(at + format.PiOffset, format.PiSize).Fill(0xFF);
        }
    }

    /// <summary>The guard of one block: its data, then the metadata bytes before the PI tuple.</summary>
    public static ulong Guard(in MetadataFormat format, ReadOnlySpan<byte> blockData, ReadOnlySpan<byte> blockMetadata)
    {
        ReadOnlySpan<byte> before = blockMetadata[..format.PiOffset];
        return format.Pif == MetadataFormat.Guard64
            ? ~Crc64Nvme.Update(Crc64Nvme.Update(Crc64Nvme.InitialState, blockData), before)
            : Crc16T10Dif.Update(Crc16T10Dif.Compute(blockData), before);
    }

    /// <summary>The guard, application tag and reference tag of a tuple.</summary>
    public static (ulong Guard, ushort ApplicationTag, ulong ReferenceTag) ReadTuple(in MetadataFormat format, ReadOnlySpan<byte> tuple) =>
        format.Pif == MetadataFormat.Guard64
            ? (BinaryPrimitives.ReadUInt64BigEndian(tuple), BinaryPrimitives.ReadUInt16BigEndian(tuple[8..]),
                (ulong)BinaryPrimitives.ReadUInt16BigEndian(tuple[10..]) << 32 | BinaryPrimitives.ReadUInt32BigEndian(tuple[12..]))
            : (BinaryPrimitives.ReadUInt16BigEndian(tuple), BinaryPrimitives.ReadUInt16BigEndian(tuple[2..]),
                BinaryPrimitives.ReadUInt32BigEndian(tuple[4..]));

    /// <summary>Writes a guard into a tuple.</summary>
    public static void WriteGuard(in MetadataFormat format, Span<byte> tuple, ulong guard)
    {
        if (format.Pif == MetadataFormat.Guard64)
        {
            BinaryPrimitives.WriteUInt64BigEndian(tuple, guard);
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(tuple, (ushort)guard);
        }
    }

    internal static void WriteTags(in MetadataFormat format, Span<byte> tuple, ushort applicationTag, ulong referenceTag)
    {
        if (format.Pif == MetadataFormat.Guard64)
        {
            BinaryPrimitives.WriteUInt16BigEndian(tuple[8..], applicationTag);
            BinaryPrimitives.WriteUInt16BigEndian(tuple[10..], (ushort)(referenceTag >> 32));
            BinaryPrimitives.WriteUInt32BigEndian(tuple[12..], (uint)referenceTag);
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(tuple[2..], applicationTag);
            BinaryPrimitives.WriteUInt32BigEndian(tuple[4..], (uint)referenceTag);
        }
    }

    /// <summary>Writes a reference tag into a tuple (the media-error fault corrupts it this way).</summary>
    public static void WriteReferenceTag(in MetadataFormat format, Span<byte> tuple, ulong referenceTag)
    {
        (_, ushort app, _) = ReadTuple(format, tuple);
        WriteTags(format, tuple, app, referenceTag & ReferenceTagMask(format));
    }
}

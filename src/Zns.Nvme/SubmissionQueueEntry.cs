using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Zns.Nvme;

/// <summary>
/// A 64-byte NVMe submission queue entry (command), stored verbatim as it arrives on the wire (little-endian).
/// Accessors decode the common fields; command-specific fields are read through <see cref="Cdw10"/>..<see cref="Cdw15"/>.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = Size)]
public struct SubmissionQueueEntry
{
    /// <summary>Size of an SQE in bytes.</summary>
    public const int Size = 64;

    private SqeBytes _bytes;

    [System.Runtime.CompilerServices.InlineArray(Size)]
    private struct SqeBytes { private byte _element0; }

    /// <summary>The raw 64 bytes.</summary>
    [UnscopedRef] public Span<byte> Bytes => _bytes;

    /// <summary>Copies an SQE out of a buffer of at least 64 bytes.</summary>
    public static SubmissionQueueEntry Read(ReadOnlySpan<byte> source)
    {
        var sqe = default(SubmissionQueueEntry);
        source[..Size].CopyTo(sqe.Bytes);
        return sqe;
    }

    [UnscopedRef] private readonly ReadOnlySpan<byte> Ro => _bytes;

    /// <summary>OPC.</summary>
    public readonly byte Opcode => Ro[0];
    /// <summary>FLAGS byte: bits 1:0 FUSE, bits 7:6 PSDT.</summary>
    public readonly byte Flags => Ro[1];
    /// <summary>CID, echoed in the completion.</summary>
    public readonly ushort CommandId => BinaryPrimitives.ReadUInt16LittleEndian(Ro[2..]);
    /// <summary>NSID.</summary>
    public readonly uint NamespaceId => BinaryPrimitives.ReadUInt32LittleEndian(Ro[4..]);
    /// <summary>Fabrics command type (FCTYPE, byte 4) when <see cref="Opcode"/> is 7Fh.</summary>
    public readonly byte FabricsCommandType => Ro[4];
    /// <summary>SGL descriptor 1 (DPTR), bytes 24..39.</summary>
    [UnscopedRef] public readonly ReadOnlySpan<byte> Sgl1 => Ro.Slice(24, 16);
    /// <summary>SGL1 address field.</summary>
    public readonly ulong SglAddress => BinaryPrimitives.ReadUInt64LittleEndian(Ro[24..]);
    /// <summary>SGL1 length field.</summary>
    public readonly uint SglLength => BinaryPrimitives.ReadUInt32LittleEndian(Ro[32..]);
    /// <summary>SGL1 identifier byte (bits 7:4 type, 3:0 subtype).</summary>
    public readonly byte SglIdentifier => Ro[39];
    /// <summary>MPTR (CDW4-5): the separate metadata buffer, or with PSDT 10b the SGL descriptor that describes it.</summary>
    public readonly ulong MetadataPointer => BinaryPrimitives.ReadUInt64LittleEndian(Ro[16..]);
    /// <summary>CDW3: bits 15:0 are bits 47:32 of the expected initial reference tag with a 48-bit reference tag.</summary>
    public readonly uint Cdw3 => BinaryPrimitives.ReadUInt32LittleEndian(Ro[12..]);
    public readonly uint Cdw10 => BinaryPrimitives.ReadUInt32LittleEndian(Ro[40..]);
    public readonly uint Cdw11 => BinaryPrimitives.ReadUInt32LittleEndian(Ro[44..]);
    public readonly uint Cdw12 => BinaryPrimitives.ReadUInt32LittleEndian(Ro[48..]);
    public readonly uint Cdw13 => BinaryPrimitives.ReadUInt32LittleEndian(Ro[52..]);
    public readonly uint Cdw14 => BinaryPrimitives.ReadUInt32LittleEndian(Ro[56..]);
    public readonly uint Cdw15 => BinaryPrimitives.ReadUInt32LittleEndian(Ro[60..]);
    /// <summary>CDW10..11 as a 64-bit value (SLBA for I/O commands).</summary>
    public readonly ulong Cdw10_11 => BinaryPrimitives.ReadUInt64LittleEndian(Ro[40..]);

    public void SetOpcode(byte value) => Bytes[0] = value;
    public void SetFlags(byte value) => Bytes[1] = value;
    public void SetCommandId(ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(Bytes[2..], value);
    public void SetNamespaceId(uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Bytes[4..], value);
    public void SetCdw(int index, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Bytes[(index * 4)..], value);
    public void SetCdw10_11(ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Bytes[40..], value);
    /// <summary>Writes SGL descriptor 1.</summary>
    public void SetSgl(ulong address, uint length, byte identifier)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes[24..], address);
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes[32..], length);
        Bytes.Slice(36, 3).Clear();
        Bytes[39] = identifier;
    }
}

using System.Buffers.Binary;

namespace Zns.Nvme;

/// <summary>A 16-byte NVMe completion queue entry.</summary>
public struct CompletionQueueEntry
{
    /// <summary>Size of a CQE in bytes.</summary>
    public const int Size = 16;

    /// <summary>DW0 and DW1 as one 64-bit command-specific result (Zone Append: ALBA).</summary>
    public ulong Result;
    /// <summary>SQ head pointer.</summary>
    public ushort SqHead;
    /// <summary>SQ identifier.</summary>
    public ushort SqId;
    /// <summary>Command identifier.</summary>
    public ushort CommandId;
    /// <summary>Status (phase tag excluded).</summary>
    public NvmeStatus Status;

    /// <summary>Encodes the CQE into 16 bytes.</summary>
    public readonly void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Result);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[8..], SqHead);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[10..], SqId);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[12..], CommandId);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[14..], Status.WireValue);
    }

    /// <summary>Decodes a CQE from 16 bytes.</summary>
    public static CompletionQueueEntry Read(ReadOnlySpan<byte> source) => new()
    {
        Result = BinaryPrimitives.ReadUInt64LittleEndian(source),
        SqHead = BinaryPrimitives.ReadUInt16LittleEndian(source[8..]),
        SqId = BinaryPrimitives.ReadUInt16LittleEndian(source[10..]),
        CommandId = BinaryPrimitives.ReadUInt16LittleEndian(source[12..]),
        Status = NvmeStatus.FromWire(BinaryPrimitives.ReadUInt16LittleEndian(source[14..])),
    };
}

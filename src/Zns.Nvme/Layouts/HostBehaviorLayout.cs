using System.Buffers.Binary;

namespace Zns.Nvme.Layouts;

/// <summary>The Host Behavior Support data structure (NVMe Base 2.x, Set Features FID 16h): 512 bytes.</summary>
public static class HostBehaviorLayout
{
    public const int Size = 512;

    /// <summary>Byte 0 ACRE, 1 ETDAS, 2 LBAFEE, bytes 5:4 CDFE (Copy Descriptor Formats Enable, bit n = format n).</summary>
    public const int CdfeOffset = 4;

    public static ushort Cdfe(ReadOnlySpan<byte> data) => BinaryPrimitives.ReadUInt16LittleEndian(data[CdfeOffset..]);
}

using System.Buffers.Binary;
using System.Numerics;

namespace Zns.Core.Storage;

/// <summary>CRC-32C (Castagnoli), as NVMe/TCP digests and the zone state file use it.</summary>
public static class Crc32C
{
    /// <summary>Initial value of a running CRC.</summary>
    public const uint Seed = 0xFFFFFFFF;

    /// <summary>Feeds <paramref name="data"/> into a running CRC started at <see cref="Seed"/>.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }
        return crc;
    }

    /// <summary>The finished CRC of a running value.</summary>
    public static uint Finish(uint crc) => ~crc;

    /// <summary>CRC-32C of one buffer.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(Seed, data));
}

using System.Buffers.Binary;
using System.Numerics;

namespace Zns.Core;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of the zone state file and of NVMe/TCP digests: initial value FFFFFFFFh, reflected polynomial
/// 82F63B78h, final XOR FFFFFFFFh; the digest is stored little-endian on the wire.
/// </summary>
/// <remarks>
/// Built on <see cref="BitOperations.Crc32C(uint, ulong)"/>, which maps to the SSE4.2 / ARMv8 CRC32C instructions
/// where available. <see cref="Update(uint, ReadOnlySpan{byte})"/> works on the raw (non-inverted) state so a digest
/// can be accumulated over several buffers.
/// </remarks>
public static class Crc32C
{
    /// <summary>Initial state.</summary>
    public const uint InitialState = 0xFFFFFFFF;

    /// <summary>CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(InitialState, data);

    /// <summary>Feeds <paramref name="data"/> into a raw CRC state (start with <see cref="InitialState"/>, invert at the end).</summary>
    public static uint Update(uint state, ReadOnlySpan<byte> data)
    {
        // Eight bytes per instruction; the tail goes byte by byte. Reading ulongs little-endian keeps the byte order
        // the reflected CRC expects on any host.
        while (data.Length >= 8)
        {
            state = BitOperations.Crc32C(state, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        if (data.Length >= 4)
        {
            state = BitOperations.Crc32C(state, BinaryPrimitives.ReadUInt32LittleEndian(data));
            data = data[4..];
        }
        foreach (byte b in data)
            state = BitOperations.Crc32C(state, b);
        return state;
    }
}

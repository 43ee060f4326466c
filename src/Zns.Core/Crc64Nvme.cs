namespace Zns.Core;

/// <summary>
/// CRC-64 NVMe, the 64-bit guard of NVMe end-to-end protection (NVM Command Set, 64b CRC): polynomial
/// AD93D23594C93659h reflected (9A6C9329AC4BC9B5h), initial value and final XOR all ones (the check value of the
/// ASCII digits 1 to 9 is AE8B14860A799888h).
/// </summary>
public static class Crc64Nvme
{
    private const ulong ReflectedPolynomial = 0x9A6C9329AC4BC9B5;

    /// <summary>Raw state to start from.</summary>
    public const ulong InitialState = ulong.MaxValue;

    private static readonly ulong[] Table = BuildTable();

    /// <summary>CRC of <paramref name="data"/>.</summary>
    public static ulong Compute(ReadOnlySpan<byte> data) => ~Update(InitialState, data);

    /// <summary>Feeds <paramref name="data"/> into a raw state (start with <see cref="InitialState"/>, invert at the end).</summary>
    public static ulong Update(ulong state, ReadOnlySpan<byte> data)
    {
        ulong[] table = Table;
        foreach (byte b in data)
        {
            state = (state >> 8) ^ table[(byte)(state ^ b)];
        }
        return state;
    }

    private static ulong[] BuildTable()
    {
        var table = new ulong[256];
        for (int i = 0; i < 256; i++)
        {
            ulong crc = (ulong)i;
            for (int bit = 0; bit < 8; bit++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ ReflectedPolynomial : crc >> 1;
            }
            table[i] = crc;
        }
        return table;
    }
}

namespace Zns.Core;

/// <summary>
/// CRC-16 T10-DIF, the 16-bit guard of NVMe end-to-end protection: polynomial 8BB7h, initial value 0, not reflected,
/// no final XOR (the check value of the ASCII digits 1 to 9 is D0DBh).
/// </summary>
public static class Crc16T10Dif
{
    private const ushort Polynomial = 0x8BB7;

    private static readonly ushort[] Table = BuildTable();

    /// <summary>CRC of <paramref name="data"/> from the initial value.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => Update(0, data);

    /// <summary>Continues <paramref name="crc"/> over <paramref name="data"/> (the guard covers a block's data, then metadata before the PI).</summary>
    public static ushort Update(ushort crc, ReadOnlySpan<byte> data)
    {
        ushort[] table = Table;
        foreach (byte b in data)
        {
            crc = (ushort)((crc << 8) ^ table[((crc >> 8) ^ b) & 0xFF]);
        }
        return crc;
    }

    private static ushort[] BuildTable()
    {
        var table = new ushort[256];
        for (int i = 0; i < 256; i++)
        {
            int crc = i << 8;
            for (int bit = 0; bit < 8; bit++)
            {
                crc = (crc & 0x8000) != 0 ? (crc << 1) ^ Polynomial : crc << 1;
            }
            table[i] = (ushort)crc;
        }
        return table;
    }
}

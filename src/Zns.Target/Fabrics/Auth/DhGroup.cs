using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Agreement;
using Org.BouncyCastle.Crypto.Parameters;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace Zns.Target.Fabrics.Auth;

/// <summary>
/// The DH-HMAC-CHAP Diffie-Hellman groups by identifier (NVMe Base 2.0 §8.13.5, DHgroup ID): 00h null (no DH
/// exchange), 01h..05h the RFC 7919 finite-field groups ffdhe2048, 3072, 4096, 6144 and 8192 (generator 2).
/// </summary>
/// <remarks>
/// The primes come from BouncyCastle's RFC 7919 table. Private exponents are short, as RFC 7919 §5.2 allows: at
/// least its recommended minimum (225, 275, 325, 375, 400 bits), rounded up to whole 64-bit words.
/// </remarks>
public sealed class DhGroup
{
    public const byte Null = 0x00;
    public const byte Ffdhe2048 = 0x01;
    public const byte Ffdhe3072 = 0x02;
    public const byte Ffdhe4096 = 0x03;
    public const byte Ffdhe6144 = 0x04;
    public const byte Ffdhe8192 = 0x05;

    /// <summary>All group identifiers, in the order zns prefers them by default (a real exchange before null).</summary>
    public static IReadOnlyList<byte> All { get; } = [Ffdhe2048, Ffdhe3072, Ffdhe4096, Ffdhe6144, Ffdhe8192, Null];

    private static readonly DhGroup[] Groups =
    [
        new(Ffdhe2048, "ffdhe2048", DHStandardGroups.rfc7919_ffdhe2048, 256),
        new(Ffdhe3072, "ffdhe3072", DHStandardGroups.rfc7919_ffdhe3072, 320),
        new(Ffdhe4096, "ffdhe4096", DHStandardGroups.rfc7919_ffdhe4096, 384),
        new(Ffdhe6144, "ffdhe6144", DHStandardGroups.rfc7919_ffdhe6144, 384),
        new(Ffdhe8192, "ffdhe8192", DHStandardGroups.rfc7919_ffdhe8192, 448),
    ];

    private readonly BigInteger _p;
    private readonly BigInteger _g;
    private readonly BigInteger _pMinusOne;
    private readonly int _exponentBits;

    private DhGroup(byte id, string name, DHParameters parameters, int exponentBits)
    {
        Id = id;
        Name = name;
        _p = parameters.P;
        _g = parameters.G;
        _pMinusOne = _p.Subtract(BigInteger.One);
        _exponentBits = exponentBits;
        ValueLength = (_p.BitLength + 7) / 8;
    }

    public byte Id { get; }
    public string Name { get; }

    /// <summary>Bytes of a DH value on the wire (DHVLEN): the size of the prime.</summary>
    public int ValueLength { get; }

    /// <summary>The prime, big-endian (tests compare it with other sources).</summary>
    public byte[] PrimeBytes => _p.ToByteArrayUnsigned();

    /// <summary>The group for an identifier; null for 00h (no DH) and unknown identifiers.</summary>
    public static DhGroup? FromId(byte id) => id is >= Ffdhe2048 and <= Ffdhe8192 ? Groups[id - 1] : null;

    public static bool IsKnown(byte id) => id == Null || FromId(id) is not null;

    public static string NameOf(byte id) => id == Null ? "null" : FromId(id)?.Name ?? $"group {id:x2}h";

    /// <summary>Parses null/ffdhe2048/.../ffdhe8192 (also 0..5).</summary>
    public static bool TryParse(string text, out byte id)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t is "null" or "0")
        {
            id = Null;
            return true;
        }
        foreach (DhGroup g in Groups)
        {
            if (t == g.Name || t == g.Id.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                id = g.Id;
                return true;
            }
        }
        id = 0xFF;
        return false;
    }

    /// <summary>A fresh private exponent x (kept by the caller for one transaction).</summary>
    public byte[] GeneratePrivateExponent()
    {
        byte[] x = RandomNumberGenerator.GetBytes(_exponentBits / 8);
        x[0] |= 0x80; // full length, so the exponent is never trivially small
        return x;
    }

    /// <summary>g^x mod p into <paramref name="destination"/> (exactly <see cref="ValueLength"/> bytes, big-endian).</summary>
    public void PublicValue(ReadOnlySpan<byte> privateExponent, Span<byte> destination) =>
        WritePadded(_g.ModPow(new BigInteger(1, privateExponent), _p), destination);

    /// <summary>
    /// The session key y^x mod p (<see cref="ValueLength"/> bytes, big-endian, zero-padded) for the peer's value y.
    /// False when y has the wrong length or is not in 2..p−2 (1 and p−1 would force a known key).
    /// </summary>
    public bool TryComputeSharedSecret(ReadOnlySpan<byte> privateExponent, ReadOnlySpan<byte> peerValue, Span<byte> destination)
    {
        if (peerValue.Length != ValueLength)
        {
            return false;
        }
        var y = new BigInteger(1, peerValue);
        if (y.CompareTo(BigInteger.One) <= 0 || y.CompareTo(_pMinusOne) >= 0)
        {
            return false;
        }
        WritePadded(y.ModPow(new BigInteger(1, privateExponent), _p), destination);
        return true;
    }

    private void WritePadded(BigInteger value, Span<byte> destination)
    {
        byte[] bytes = value.ToByteArrayUnsigned();
        destination[..ValueLength].Clear();
        bytes.CopyTo(destination[(ValueLength - bytes.Length)..]);
        CryptographicOperations.ZeroMemory(bytes);
    }
}

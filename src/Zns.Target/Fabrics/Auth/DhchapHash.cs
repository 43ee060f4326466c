using System.Security.Cryptography;

namespace Zns.Target.Fabrics.Auth;

/// <summary>
/// The DH-HMAC-CHAP hash functions by their identifier (NVMe Base 2.0 §8.13.5, HashID): 01h SHA-256, 02h SHA-384,
/// 03h SHA-512. The same numbers name the optional key transformation in a <c>DHHC-1:hh:</c> secret.
/// </summary>
public static class DhchapHash
{
    public const byte Sha256 = 0x01;
    public const byte Sha384 = 0x02;
    public const byte Sha512 = 0x03;

    /// <summary>All hash identifiers, in the order zns prefers them by default.</summary>
    public static IReadOnlyList<byte> All { get; } = [Sha256, Sha384, Sha512];

    /// <summary>Output length in bytes (the HL of the messages), 0 for an unknown identifier.</summary>
    public static int Length(byte id) => id switch { Sha256 => 32, Sha384 => 48, Sha512 => 64, _ => 0 };

    public static bool IsKnown(byte id) => Length(id) != 0;

    /// <summary>Name as nvme-cli and the kernel spell it: sha256, sha384, sha512.</summary>
    public static string Name(byte id) => id switch { Sha256 => "sha256", Sha384 => "sha384", Sha512 => "sha512", _ => $"hash {id:x2}h" };

    /// <summary>Parses sha256/sha384/sha512 (also hmac(sha256) and the numbers 1..3).</summary>
    public static bool TryParse(string text, out byte id)
    {
        id = text.Trim().ToLowerInvariant() switch
        {
            "sha256" or "sha-256" or "hmac(sha256)" or "1" => Sha256,
            "sha384" or "sha-384" or "hmac(sha384)" or "2" => Sha384,
            "sha512" or "sha-512" or "hmac(sha512)" or "3" => Sha512,
            _ => 0,
        };
        return id != 0;
    }

    internal static HashAlgorithmName AlgorithmName(byte id) => id switch
    {
        Sha256 => HashAlgorithmName.SHA256,
        Sha384 => HashAlgorithmName.SHA384,
        Sha512 => HashAlgorithmName.SHA512,
        _ => throw new ArgumentOutOfRangeException(nameof(id), id, "unknown DH-HMAC-CHAP hash identifier"),
    };

    /// <summary>An incremental HMAC keyed with <paramref name="key"/>.</summary>
    public static IncrementalHash CreateHmac(byte id, ReadOnlySpan<byte> key) =>
        IncrementalHash.CreateHMAC(AlgorithmName(id), key);

    public static byte[] Hmac(byte id, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data)
    {
        using IncrementalHash h = CreateHmac(id, key);
        h.AppendData(data);
        return h.GetHashAndReset();
    }

    public static byte[] Hash(byte id, ReadOnlySpan<byte> data)
    {
        using IncrementalHash h = IncrementalHash.CreateHash(AlgorithmName(id));
        h.AppendData(data);
        return h.GetHashAndReset();
    }
}

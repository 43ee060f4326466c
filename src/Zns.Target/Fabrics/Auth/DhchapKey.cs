using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;

namespace Zns.Target.Fabrics.Auth;

/// <summary>
/// A DH-HMAC-CHAP secret in the representation <c>nvme gen-dhchap-key</c> prints and Linux accepts:
/// <c>DHHC-1:hh:BASE64:</c> where BASE64 encodes the 32, 48 or 64 secret bytes followed by their CRC-32
/// (little-endian), and hh names the hash that transforms the secret before use (00 none, 01 SHA-256,
/// 02 SHA-384, 03 SHA-512; NVMe Base 2.0 §8.13.5.8).
/// </summary>
/// <remarks>The secret never appears in <see cref="ToString"/>, so a key can be logged or put in an exception safely.</remarks>
public sealed class DhchapKey
{
    private const string Prefix = "DHHC-1:";
    private static readonly byte[] TransformSuffix = "NVMe-over-Fabrics"u8.ToArray();
    private readonly byte[] _secret;

    private DhchapKey(byte[] secret, byte transform)
    {
        _secret = secret;
        Transformation = transform;
    }

    /// <summary>hh: 0 = use the secret as is, else the <see cref="DhchapHash"/> identifier of the transformation.</summary>
    public byte Transformation { get; }

    /// <summary>Length of the secret in bytes (32, 48 or 64).</summary>
    public int Length => _secret.Length;

    /// <summary>Builds a key from raw secret bytes (tests, key generation).</summary>
    public static DhchapKey FromSecret(ReadOnlySpan<byte> secret, byte transformation)
    {
        if (secret.Length is not (32 or 48 or 64))
        {
            throw new ArgumentException($"a secret is 32, 48 or 64 bytes, got {secret.Length}", nameof(secret));
        }
        if (transformation != 0 && !DhchapHash.IsKnown(transformation))
        {
            throw new ArgumentException($"transformation must be 0..3, got {transformation}", nameof(transformation));
        }
        return new DhchapKey(secret.ToArray(), transformation);
    }

    /// <summary>A new random secret of <paramref name="length"/> bytes.</summary>
    public static DhchapKey Generate(int length = 32, byte transformation = 0) =>
        FromSecret(RandomNumberGenerator.GetBytes(length), transformation);

    /// <summary>Parses the <c>DHHC-1:hh:BASE64:</c> form; on failure <paramref name="error"/> says what is wrong (never the secret).</summary>
    public static bool TryParse(string? text, out DhchapKey? key, out string error)
    {
        key = null;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text) || !text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            error = "not a DH-HMAC-CHAP key (expected DHHC-1:hh:BASE64:, as `nvme gen-dhchap-key` prints)";
            return false;
        }
        string rest = text[Prefix.Length..];
        int colon = rest.IndexOf(':');
        if (colon != 2 || !byte.TryParse(rest.AsSpan(0, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte hh))
        {
            error = "the transformation field after DHHC-1: must be two digits (00, 01, 02 or 03)";
            return false;
        }
        if (hh != 0 && !DhchapHash.IsKnown(hh))
        {
            error = $"unknown transformation {hh:x2} (00 none, 01 SHA-256, 02 SHA-384, 03 SHA-512)";
            return false;
        }
        string body = rest[3..];
        if (body.EndsWith(':'))
        {
            body = body[..^1];
        }
        // 68 secret+CRC bytes are 92 base64 characters; anything longer is not a key.
        if (body.Length is 0 or > 92)
        {
            error = "the base64 part must encode 36, 52 or 68 bytes (a 32, 48 or 64-byte secret and its CRC-32)";
            return false;
        }
        Span<byte> raw = stackalloc byte[69];
        if (!Convert.TryFromBase64String(body, raw, out int n) || n is not (36 or 52 or 68))
        {
            error = "the base64 part must encode 36, 52 or 68 bytes (a 32, 48 or 64-byte secret and its CRC-32)";
            CryptographicOperations.ZeroMemory(raw);
            return false;
        }
        ReadOnlySpan<byte> secret = raw[..(n - 4)];
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(raw[(n - 4)..]);
        if (Crc32.HashToUInt32(secret) != stored)
        {
            error = "CRC-32 check of the secret failed (the key was mistyped or truncated)";
            CryptographicOperations.ZeroMemory(raw);
            return false;
        }
        key = new DhchapKey(secret.ToArray(), hh);
        CryptographicOperations.ZeroMemory(raw);
        error = "";
        return true;
    }

    /// <summary>Parses or throws <see cref="FormatException"/> naming the problem.</summary>
    public static DhchapKey Parse(string text) =>
        TryParse(text, out DhchapKey? key, out string error) ? key! : throw new FormatException(error);

    /// <summary>
    /// The key the HMAC uses: the secret itself when hh = 00, else HMAC-hh(secret, NQN || "NVMe-over-Fabrics"),
    /// where the NQN is the host NQN for a host key and the subsystem NQN for a controller key (as Linux does).
    /// </summary>
    public byte[] Transform(string nqn)
    {
        if (Transformation == 0)
        {
            return (byte[])_secret.Clone();
        }
        using IncrementalHash h = DhchapHash.CreateHmac(Transformation, _secret);
        h.AppendData(Encoding.ASCII.GetBytes(nqn));
        h.AppendData(TransformSuffix);
        return h.GetHashAndReset();
    }

    /// <summary>The <c>DHHC-1:hh:BASE64:</c> text of this key (contains the secret).</summary>
    public string Encode()
    {
        byte[] raw = new byte[_secret.Length + 4];
        _secret.CopyTo(raw, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan(_secret.Length), Crc32.HashToUInt32(_secret));
        return $"{Prefix}{Transformation:x2}:{Convert.ToBase64String(raw)}:";
    }

    /// <summary>Whether two keys hold the same secret and transformation (constant time in the secret).</summary>
    public bool SameAs(DhchapKey other) =>
        Transformation == other.Transformation && CryptographicOperations.FixedTimeEquals(_secret, other._secret);

    /// <inheritdoc/>
    public override string ToString() => $"DHHC-1:{Transformation:x2}:<{_secret.Length}-byte secret>:";
}

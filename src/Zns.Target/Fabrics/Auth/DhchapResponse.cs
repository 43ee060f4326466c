using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Zns.Target.Fabrics.Auth;

/// <summary>
/// The DH-HMAC-CHAP computations (NVMe Base 2.0 §8.13.5.3..5): the responses both sides prove their keys with, and
/// the challenge augmented with the Diffie-Hellman session key.
/// </summary>
public static class DhchapResponse
{
    private static readonly byte[] HostLabel = "HostHost"u8.ToArray();
    private static readonly byte[] ControllerLabel = "Controller"u8.ToArray();

    /// <summary>
    /// With a DH group the challenge is replaced by HMAC(H(Ks), C), H the selected hash and Ks the session key;
    /// without one (null group) the challenge is used as is.
    /// </summary>
    public static byte[] AugmentChallenge(byte hashId, ReadOnlySpan<byte> sessionKey, ReadOnlySpan<byte> challenge)
    {
        byte[] hashedKey = DhchapHash.Hash(hashId, sessionKey);
        try
        {
            return DhchapHash.Hmac(hashId, hashedKey, challenge);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(hashedKey);
        }
    }

    /// <summary>R1 = HMAC(Kh, C1 || SEQNUM S1 (LE32) || T_ID (LE16) || SC_C || "HostHost" || NQNh || 00h || NQNc).</summary>
    public static byte[] Host(byte hashId, ReadOnlySpan<byte> hostKey, ReadOnlySpan<byte> challenge, uint seqnum, ushort tid, byte secureChannel,
        string hostNqn, string subsystemNqn) =>
        Compute(hashId, hostKey, challenge, seqnum, tid, secureChannel, HostLabel, hostNqn, subsystemNqn);

    /// <summary>R2 = HMAC(Kc, C2 || SEQNUM S2 (LE32) || T_ID (LE16) || SC_C || "Controller" || NQNc || 00h || NQNh).</summary>
    public static byte[] Controller(byte hashId, ReadOnlySpan<byte> controllerKey, ReadOnlySpan<byte> challenge, uint seqnum, ushort tid, byte secureChannel,
        string hostNqn, string subsystemNqn) =>
        Compute(hashId, controllerKey, challenge, seqnum, tid, secureChannel, ControllerLabel, subsystemNqn, hostNqn);

    private static byte[] Compute(byte hashId, ReadOnlySpan<byte> key, ReadOnlySpan<byte> challenge, uint seqnum, ushort tid, byte secureChannel,
        byte[] label, string firstNqn, string secondNqn)
    {
        using var hmac = DhchapHash.CreateHmac(hashId, key);
        Span<byte> fields = stackalloc byte[7];
        BinaryPrimitives.WriteUInt32LittleEndian(fields, seqnum);
        BinaryPrimitives.WriteUInt16LittleEndian(fields[4..], tid);
        fields[6] = secureChannel;
        hmac.AppendData(challenge);
        hmac.AppendData(fields);
        hmac.AppendData(label);
        hmac.AppendData(Encoding.ASCII.GetBytes(firstNqn));
        hmac.AppendData([0]);
        hmac.AppendData(Encoding.ASCII.GetBytes(secondNqn));
        return hmac.GetHashAndReset();
    }
}

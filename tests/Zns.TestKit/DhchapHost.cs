using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using Zns.Nvme;
using Zns.Protocol;

namespace Zns.TestKit;

/// <summary>How the test host authenticates: its keys and what it offers in AUTH_Negotiate.</summary>
public sealed record DhchapHostOptions
{
    /// <summary>The host secret, DHHC-1:hh:BASE64: (as for <c>nvme connect --dhchap-secret</c>).</summary>
    public required string HostKey { get; init; }

    /// <summary>The controller secret; when set the host also authenticates the controller (bidirectional).</summary>
    public string? ControllerKey { get; init; }

    public byte[] Hashes { get; init; } = [1, 2, 3];
    public byte[] DhGroups { get; init; } = [0, 1, 2, 3, 4, 5];

    /// <summary>Transaction ID of the exchange.</summary>
    public ushort TransactionId { get; init; } = 1;
}

/// <summary>Outcome of one DH-HMAC-CHAP exchange run by <see cref="DhchapHost"/>.</summary>
public sealed record DhchapResult(bool Succeeded, byte HashId, byte DhGroupId, byte FailureExplanation, string Detail);

/// <summary>
/// The host side of DH-HMAC-CHAP over Authentication Send/Receive, written from the NVMe Base 2.0 description
/// (§8.13.5) independently of the target's implementation: its own key decoding, message bytes, System.Numerics
/// Diffie-Hellman and RFC 7919 primes computed from their defining formula.
/// </summary>
public static class DhchapHost
{
    private const int ReceiveLength = 4096;

    public static async Task<DhchapResult> AuthenticateAsync(NvmeTcpInitiator initiator, string hostNqn, string subsystemNqn,
        DhchapHostOptions options, CancellationToken cancellationToken = default)
    {
        ushort tid = options.TransactionId;
        // AUTH_Negotiate: 8-byte header, one 64-byte DH-HMAC-CHAP descriptor.
        byte[] negotiate = new byte[72];
        negotiate[0] = 0x00; negotiate[1] = 0x00;
        BinaryPrimitives.WriteUInt16LittleEndian(negotiate.AsSpan(4), tid);
        negotiate[7] = 1;
        negotiate[8] = 0x01;
        negotiate[10] = (byte)options.Hashes.Length;
        negotiate[11] = (byte)options.DhGroups.Length;
        options.Hashes.CopyTo(negotiate, 12);
        options.DhGroups.CopyTo(negotiate, 12 + 30);
        await SendExpectSuccess(initiator, negotiate, cancellationToken).ConfigureAwait(false);

        byte[] challenge = await ReceiveAsync(initiator, cancellationToken).ConfigureAwait(false);
        if (IsFailure1(challenge, out DhchapResult? failed))
            return failed!;
        if (challenge[0] != 0x01 || challenge[1] != 0x01 || BinaryPrimitives.ReadUInt16LittleEndian(challenge.AsSpan(4)) != tid)
            return new DhchapResult(false, 0, 0, 0, $"not a challenge: {challenge[0]:x2}/{challenge[1]:x2}");
        int hl = challenge[6];
        byte hashId = challenge[8];
        byte dhgid = challenge[9];
        int dhvlen = BinaryPrimitives.ReadUInt16LittleEndian(challenge.AsSpan(10));
        uint s1 = BinaryPrimitives.ReadUInt32LittleEndian(challenge.AsSpan(12));
        HashAlgorithmName hash = HashName(hashId);
        if (HashLength(hashId) != hl)
            return new DhchapResult(false, hashId, dhgid, 0, $"HL {hl} does not fit hash {hashId}");
        byte[] c1 = challenge.AsSpan(16, hl).ToArray();

        byte[] hostDh = [];
        byte[]? sessionKey = null;
        if (dhgid != 0)
        {
            BigInteger p = Ffdhe.Prime(dhgid);
            int size = (int)((p.GetBitLength() + 7) / 8);
            if (dhvlen != size)
                return new DhchapResult(false, hashId, dhgid, 0, $"DHVLEN {dhvlen} for a {size}-byte group");
            var y = new BigInteger(challenge.AsSpan(16 + hl, dhvlen), isUnsigned: true, isBigEndian: true);
            var x = new BigInteger(RandomNumberGenerator.GetBytes(32), isUnsigned: true, isBigEndian: true);
            hostDh = Pad(BigInteger.ModPow(2, x, p), size);
            sessionKey = Pad(BigInteger.ModPow(y, x, p), size);
        }
        else if (dhvlen != 0)
            return new DhchapResult(false, hashId, dhgid, 0, "DH value with the null group");

        byte[] kh = Transform(options.HostKey, hostNqn);
        byte[] r1 = Response(hash, kh, Augment(hash, sessionKey, c1), s1, tid, "HostHost", hostNqn, subsystemNqn);
        bool bidirectional = options.ControllerKey is not null;
        byte[] c2 = bidirectional ? RandomNumberGenerator.GetBytes(hl) : new byte[hl];
        uint s2 = bidirectional ? (uint)RandomNumberGenerator.GetInt32(1, int.MaxValue) : 0;

        byte[] reply = new byte[16 + 2 * hl + hostDh.Length];
        reply[0] = 0x01; reply[1] = 0x02;
        BinaryPrimitives.WriteUInt16LittleEndian(reply.AsSpan(4), tid);
        reply[6] = (byte)hl;
        reply[8] = bidirectional ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt16LittleEndian(reply.AsSpan(10), (ushort)hostDh.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(reply.AsSpan(12), s2);
        r1.CopyTo(reply, 16);
        c2.CopyTo(reply, 16 + hl);
        hostDh.CopyTo(reply, 16 + 2 * hl);
        await SendExpectSuccess(initiator, reply, cancellationToken).ConfigureAwait(false);

        byte[] success1 = await ReceiveAsync(initiator, cancellationToken).ConfigureAwait(false);
        if (IsFailure1(success1, out failed))
            return failed! with { HashId = hashId, DhGroupId = dhgid };
        if (success1[0] != 0x01 || success1[1] != 0x03)
            return new DhchapResult(false, hashId, dhgid, 0, $"not success1: {success1[0]:x2}/{success1[1]:x2}");
        if (!bidirectional)
            return new DhchapResult(true, hashId, dhgid, 0, "authenticated");
        if (success1[8] != 1)
            return await SendFailure2(initiator, tid, hashId, dhgid, "controller sent no response", cancellationToken).ConfigureAwait(false);
        byte[] kc = Transform(options.ControllerKey!, subsystemNqn);
        byte[] r2 = Response(hash, kc, Augment(hash, sessionKey, c2), s2, tid, "Controller", subsystemNqn, hostNqn);
        if (!success1.AsSpan(16, hl).SequenceEqual(r2))
            return await SendFailure2(initiator, tid, hashId, dhgid, "controller response mismatch", cancellationToken).ConfigureAwait(false);
        byte[] success2 = new byte[16];
        success2[0] = 0x01; success2[1] = 0x04;
        BinaryPrimitives.WriteUInt16LittleEndian(success2.AsSpan(4), tid);
        await SendExpectSuccess(initiator, success2, cancellationToken).ConfigureAwait(false);
        return new DhchapResult(true, hashId, dhgid, 0, "authenticated both ways");
    }

    /// <summary>Authentication Send with SECP E9h, SPSP 01h/01h and TL = the data length (or as given).</summary>
    public static Task<CompletionQueueEntry> SendAsync(NvmeTcpInitiator initiator, ReadOnlyMemory<byte> data, uint? transferLength = null,
        uint cdw10 = 0xE9010100, CancellationToken cancellationToken = default)
    {
        var sqe = AuthCommand(FabricsCommandType.AuthenticationSend, transferLength ?? (uint)data.Length, cdw10);
        return initiator.SubmitAsync(sqe, data, cancellationToken: cancellationToken);
    }

    /// <summary>Authentication Receive with AL = the buffer length.</summary>
    public static Task<CompletionQueueEntry> ReceiveAsync(NvmeTcpInitiator initiator, Memory<byte> buffer, uint cdw10 = 0xE9010100,
        CancellationToken cancellationToken = default)
    {
        var sqe = AuthCommand(FabricsCommandType.AuthenticationReceive, (uint)buffer.Length, cdw10);
        return initiator.SubmitAsync(sqe, readBuffer: buffer, cancellationToken: cancellationToken);
    }

    private static SubmissionQueueEntry AuthCommand(byte fctype, uint length, uint cdw10)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.Fabrics);
        sqe.Bytes[4] = fctype;
        sqe.SetCdw(10, cdw10);
        sqe.SetCdw(11, length);
        return sqe;
    }

    private static async Task SendExpectSuccess(NvmeTcpInitiator initiator, byte[] data, CancellationToken ct)
    {
        var cqe = await SendAsync(initiator, data, cancellationToken: ct).ConfigureAwait(false);
        if (!cqe.Status.IsSuccess)
            throw new InvalidOperationException($"Authentication Send failed: {cqe.Status}");
    }

    private static async Task<byte[]> ReceiveAsync(NvmeTcpInitiator initiator, CancellationToken ct)
    {
        byte[] buffer = new byte[ReceiveLength];
        var cqe = await ReceiveAsync(initiator, buffer, cancellationToken: ct).ConfigureAwait(false);
        if (!cqe.Status.IsSuccess)
            throw new InvalidOperationException($"Authentication Receive failed: {cqe.Status}");
        return buffer;
    }

    private static async Task<DhchapResult> SendFailure2(NvmeTcpInitiator initiator, ushort tid, byte hashId, byte dhgid, string why, CancellationToken ct)
    {
        byte[] failure2 = new byte[8];
        failure2[1] = 0xF0;
        BinaryPrimitives.WriteUInt16LittleEndian(failure2.AsSpan(4), tid);
        failure2[6] = 0x01;
        failure2[7] = 0x01;
        await SendAsync(initiator, failure2, cancellationToken: ct).ConfigureAwait(false);
        return new DhchapResult(false, hashId, dhgid, 0x01, why);
    }

    private static bool IsFailure1(byte[] message, out DhchapResult? result)
    {
        result = message[0] == 0x00 && message[1] == 0xF1
            ? new DhchapResult(false, 0, 0, message[7], $"AUTH_Failure1 reason {message[6]:x2}h explanation {message[7]:x2}h")
            : null;
        return result is not null;
    }

    /// <summary>Decodes DHHC-1:hh:BASE64: (dropping the CRC) and applies the hh transformation with <paramref name="nqn"/>.</summary>
    public static byte[] Transform(string key, string nqn)
    {
        string[] parts = key.Split(':');
        int hh = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
        byte[] raw = Convert.FromBase64String(parts[2]);
        byte[] secret = raw[..^4];
        if (hh == 0)
            return secret;
        using var hmac = IncrementalHash.CreateHMAC(HashName((byte)hh), secret);
        hmac.AppendData(Encoding.ASCII.GetBytes(nqn));
        hmac.AppendData("NVMe-over-Fabrics"u8);
        return hmac.GetHashAndReset();
    }

    private static byte[] Augment(HashAlgorithmName hash, byte[]? sessionKey, byte[] challenge)
    {
        if (sessionKey is null)
            return challenge;
        using var h = IncrementalHash.CreateHash(hash);
        h.AppendData(sessionKey);
        using var hmac = IncrementalHash.CreateHMAC(hash, h.GetHashAndReset());
        hmac.AppendData(challenge);
        return hmac.GetHashAndReset();
    }

    private static byte[] Response(HashAlgorithmName hash, byte[] key, byte[] challenge, uint seq, ushort tid, string label, string nqn1, string nqn2)
    {
        using var hmac = IncrementalHash.CreateHMAC(hash, key);
        hmac.AppendData(challenge);
        byte[] fields = new byte[7];
        BinaryPrimitives.WriteUInt32LittleEndian(fields, seq);
        BinaryPrimitives.WriteUInt16LittleEndian(fields.AsSpan(4), tid);
        hmac.AppendData(fields);
        hmac.AppendData(Encoding.ASCII.GetBytes(label));
        hmac.AppendData(Encoding.ASCII.GetBytes(nqn1));
        hmac.AppendData(new byte[1]);
        hmac.AppendData(Encoding.ASCII.GetBytes(nqn2));
        return hmac.GetHashAndReset();
    }

    private static byte[] Pad(BigInteger value, int size)
    {
        byte[] bytes = value.ToByteArray(isUnsigned: true, isBigEndian: true);
        byte[] padded = new byte[size];
        bytes.CopyTo(padded, size - bytes.Length);
        return padded;
    }

    private static HashAlgorithmName HashName(byte id) => id switch
    {
        1 => HashAlgorithmName.SHA256,
        2 => HashAlgorithmName.SHA384,
        3 => HashAlgorithmName.SHA512,
        _ => throw new InvalidOperationException($"unknown hash {id}"),
    };

    private static int HashLength(byte id) => id switch { 1 => 32, 2 => 48, 3 => 64, _ => 0 };
}

/// <summary>
/// The RFC 7919 groups from their definition: p = 2^b − 2^(b−64) + (⌊2^(b−130)·e⌋ + X)·2^64 − 1, with e computed
/// to the needed precision from its series.
/// </summary>
public static class Ffdhe
{
    private static readonly (int Bits, int X)[] Groups = [(2048, 560316), (3072, 2625351), (4096, 5736041), (6144, 15705020), (8192, 10965728)];
    private static readonly Dictionary<int, BigInteger> Cache = [];

    /// <summary>The prime of DH group ID 1..5.</summary>
    public static BigInteger Prime(byte groupId)
    {
        (int b, int x) = Groups[groupId - 1];
        lock (Cache)
        {
            if (Cache.TryGetValue(b, out BigInteger cached))
                return cached;
            BigInteger floorE = EFloorScaled(b - 130);
            BigInteger p = BigInteger.Pow(2, b) - BigInteger.Pow(2, b - 64) + (floorE + x) * BigInteger.Pow(2, 64) - 1;
            Cache[b] = p;
            return p;
        }
    }

    /// <summary>⌊e·2^n⌋, summing 1/k! with 64 guard bits.</summary>
    private static BigInteger EFloorScaled(int n)
    {
        int guard = 64;
        BigInteger one = BigInteger.One << (n + guard);
        BigInteger term = one, sum = 0;
        for (int k = 1; !term.IsZero; k++)
        {
            sum += term;
            term /= k;
        }
        return sum >> guard;
    }
}

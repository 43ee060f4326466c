using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Target.Fabrics.Auth;

/// <summary>
/// Constants of NVMe in-band authentication (NVMe Base 2.0 §5.21.1 Authentication Send/Receive and §8.13.5
/// DH-HMAC-CHAP; <c>include/linux/nvme.h</c> names them NVME_AUTH_*).
/// </summary>
public static class AuthProtocol
{
    /// <summary>SECP of Authentication Send/Receive for NVMe in-band authentication.</summary>
    public const byte SecurityProtocol = 0xE9;
    /// <summary>SPSP0 and SPSP1: both 01h for DH-HMAC-CHAP.</summary>
    public const byte SecurityProtocolSpecific = 0x01;

    // AUTH-Type
    public const byte CommonMessage = 0x00;
    public const byte DhchapMessage = 0x01;

    // AUTH-Id
    public const byte Negotiate = 0x00;
    public const byte Challenge = 0x01;
    public const byte Reply = 0x02;
    public const byte Success1 = 0x03;
    public const byte Success2 = 0x04;
    /// <summary>AUTH_Failure2: host to controller.</summary>
    public const byte Failure2 = 0xF0;
    /// <summary>AUTH_Failure1: controller to host.</summary>
    public const byte Failure1 = 0xF1;

    /// <summary>AUTH Protocol Identifier of DH-HMAC-CHAP in a negotiate descriptor.</summary>
    public const byte DhchapAuthId = 0x01;
    public const int MaxHashIds = 30;
    public const int MaxDhGroupIds = 30;

    /// <summary>SC_C: no secure channel concatenation (zns has no TLS, so this is the only accepted value).</summary>
    public const byte NoSecureChannel = 0x00;

    /// <summary>Reason Code of AUTH_Failure: authentication failure.</summary>
    public const byte ReasonFailed = 0x01;
}

/// <summary>Reason Code Explanation of AUTH_Failure1/2 (NVMe Base 2.0 Figure 449).</summary>
public enum AuthFailureReason : byte
{
    None = 0x00,
    Failed = 0x01,
    ProtocolNotUsable = 0x02,
    SecureChannelMismatch = 0x03,
    HashUnusable = 0x04,
    DhGroupUnusable = 0x05,
    IncorrectPayload = 0x06,
    IncorrectProtocolMessage = 0x07,
}

/// <summary>Authentication Send/Receive command fields (<c>struct nvmf_auth_send/receive_command</c>).</summary>
public static class AuthCommandLayout
{
    /// <summary>SQE byte offset of SPSP0 (CDW10 byte 1).</summary>
    public const int Spsp0Offset = 41;
    public const int Spsp1Offset = 42;
    public const int SecpOffset = 43;
    /// <summary>SQE byte offset of TL (send) / AL (receive): CDW11.</summary>
    public const int LengthOffset = 44;

    public static byte Spsp0(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw10 >> 8);
    public static byte Spsp1(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw10 >> 16);
    public static byte Secp(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw10 >> 24);
    public static uint Length(in SubmissionQueueEntry sqe) => sqe.Cdw11;

    /// <summary>CDW10 for DH-HMAC-CHAP: SECP E9h, SPSP0 = SPSP1 = 01h.</summary>
    public const uint DhchapCdw10 = ((uint)AuthProtocol.SecurityProtocol << 24) | ((uint)AuthProtocol.SecurityProtocolSpecific << 16) |
                                   ((uint)AuthProtocol.SecurityProtocolSpecific << 8);
}

/// <summary>The header every authentication message starts with: AUTH-Type, AUTH-Id, reserved, T_ID.</summary>
public static class AuthMessageHeader
{
    public const int Size = 6;

    public static bool TryRead(ReadOnlySpan<byte> message, out byte authType, out byte authId, out ushort transactionId)
    {
        if (message.Length < Size)
        {
            authType = authId = 0;
            transactionId = 0;
            return false;
        }
        authType = message[0];
        authId = message[1];
        transactionId = BinaryPrimitives.ReadUInt16LittleEndian(message[4..]);
        return true;
    }

    internal static void Write(Span<byte> message, byte authType, byte authId, ushort transactionId)
    {
        message[0] = authType;
        message[1] = authId;
        message[2] = message[3] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(message[4..], transactionId);
    }
}

/// <summary>
/// AUTH_Negotiate (host to controller): header, SC_C (6), NAPD (7), then NAPD 64-byte protocol descriptors
/// (AUTHID, reserved, HALEN, DHLEN, 30 hash IDs, 30 DH group IDs).
/// </summary>
public readonly ref struct NegotiateMessage
{
    public const int HeaderSize = 8;
    public const int DescriptorSize = 64;
    private const int IdListOffset = 4;

    private readonly ReadOnlySpan<byte> _descriptor;

    private NegotiateMessage(ushort tid, byte scC, ReadOnlySpan<byte> descriptor)
    {
        TransactionId = tid;
        SecureChannel = scC;
        _descriptor = descriptor;
    }

    public ushort TransactionId { get; }
    public byte SecureChannel { get; }
    public ReadOnlySpan<byte> HashIds => _descriptor.Slice(IdListOffset, _descriptor[2]);
    public ReadOnlySpan<byte> DhGroupIds => _descriptor.Slice(IdListOffset + AuthProtocol.MaxHashIds, _descriptor[3]);

    /// <summary>Parses the message; on failure <paramref name="reason"/> is what AUTH_Failure1 reports.</summary>
    public static bool TryParse(ReadOnlySpan<byte> message, out NegotiateMessage result, out AuthFailureReason reason)
    {
        result = default;
        if (message.Length < HeaderSize + DescriptorSize || message[0] != AuthProtocol.CommonMessage || message[1] != AuthProtocol.Negotiate)
        {
            reason = AuthFailureReason.IncorrectPayload;
            return false;
        }
        int napd = message[7];
        if (napd == 0 || message.Length < HeaderSize + napd * DescriptorSize)
        {
            reason = AuthFailureReason.IncorrectPayload;
            return false;
        }
        for (int i = 0; i < napd; i++)
        {
            ReadOnlySpan<byte> d = message.Slice(HeaderSize + i * DescriptorSize, DescriptorSize);
            if (d[0] != AuthProtocol.DhchapAuthId)
            {
                continue;
            }
            if (d[2] > AuthProtocol.MaxHashIds || d[3] > AuthProtocol.MaxDhGroupIds)
            {
                reason = AuthFailureReason.IncorrectPayload;
                return false;
            }
            result = new NegotiateMessage(BinaryPrimitives.ReadUInt16LittleEndian(message[4..]), message[6], d);
            reason = AuthFailureReason.None;
            return true;
        }
        reason = AuthFailureReason.ProtocolNotUsable;
        return false;
    }

    /// <summary>Writes a one-descriptor negotiate message (the host side); returns its length.</summary>
    public static int Write(Span<byte> message, ushort tid, byte secureChannel, ReadOnlySpan<byte> hashIds, ReadOnlySpan<byte> dhGroupIds)
    {
        int size = HeaderSize + DescriptorSize;
        message[..size].Clear();
        AuthMessageHeader.Write(message, AuthProtocol.CommonMessage, AuthProtocol.Negotiate, tid);
        message[6] = secureChannel;
        message[7] = 1;
        Span<byte> d = message.Slice(HeaderSize, DescriptorSize);
        d[0] = AuthProtocol.DhchapAuthId;
        d[2] = (byte)hashIds.Length;
        d[3] = (byte)dhGroupIds.Length;
        hashIds.CopyTo(d[IdListOffset..]);
        dhGroupIds.CopyTo(d[(IdListOffset + AuthProtocol.MaxHashIds)..]);
        return size;
    }
}

/// <summary>
/// DH-HMAC-CHAP_Challenge (controller to host): header, HL (6), reserved, HASHID (8), DHGID (9), DHVLEN (10..11),
/// SEQNUM (12..15), then HL bytes of C1 and DHVLEN bytes of the controller's DH value.
/// </summary>
public readonly ref struct ChallengeMessage
{
    public const int HeaderSize = 16;

    public ushort TransactionId { get; private init; }
    public byte HashId { get; private init; }
    public byte DhGroupId { get; private init; }
    public uint SequenceNumber { get; private init; }
    public ReadOnlySpan<byte> Challenge { get; private init; }
    public ReadOnlySpan<byte> DhValue { get; private init; }

    public static int SizeFor(int hashLength, int dhValueLength) => HeaderSize + hashLength + dhValueLength;

    /// <summary>Writes the message; returns its length. <paramref name="message"/> must hold <see cref="SizeFor"/> bytes.</summary>
    public static int Write(Span<byte> message, ushort tid, byte hashId, byte dhGroupId, uint seqnum, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> dhValue)
    {
        int size = SizeFor(challenge.Length, dhValue.Length);
        message[..HeaderSize].Clear();
        AuthMessageHeader.Write(message, AuthProtocol.DhchapMessage, AuthProtocol.Challenge, tid);
        message[6] = (byte)challenge.Length;
        message[8] = hashId;
        message[9] = dhGroupId;
        BinaryPrimitives.WriteUInt16LittleEndian(message[10..], (ushort)dhValue.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(message[12..], seqnum);
        challenge.CopyTo(message[HeaderSize..]);
        dhValue.CopyTo(message[(HeaderSize + challenge.Length)..]);
        return size;
    }

    public static bool TryParse(ReadOnlySpan<byte> message, out ChallengeMessage result)
    {
        result = default;
        if (message.Length < HeaderSize || message[0] != AuthProtocol.DhchapMessage || message[1] != AuthProtocol.Challenge)
        {
            return false;
        }
        int hl = message[6];
        int dhvlen = BinaryPrimitives.ReadUInt16LittleEndian(message[10..]);
        if (message.Length < HeaderSize + hl + dhvlen)
        {
            return false;
        }
        result = new ChallengeMessage
        {
            TransactionId = BinaryPrimitives.ReadUInt16LittleEndian(message[4..]),
            HashId = message[8],
            DhGroupId = message[9],
            SequenceNumber = BinaryPrimitives.ReadUInt32LittleEndian(message[12..]),
            Challenge = message.Slice(HeaderSize, hl),
            DhValue = message.Slice(HeaderSize + hl, dhvlen),
        };
        return true;
    }
}

/// <summary>
/// DH-HMAC-CHAP_Reply (host to controller): header, HL (6), reserved, CVALID (8), reserved, DHVLEN (10..11),
/// SEQNUM (12..15), then HL bytes of the response R1, HL bytes of the host's challenge C2 (meaningful when
/// CVALID = 1) and DHVLEN bytes of the host's DH value.
/// </summary>
public readonly ref struct ReplyMessage
{
    public const int HeaderSize = 16;

    public ushort TransactionId { get; private init; }
    public bool ChallengeValid { get; private init; }
    public uint SequenceNumber { get; private init; }
    public ReadOnlySpan<byte> Response { get; private init; }
    public ReadOnlySpan<byte> Challenge { get; private init; }
    public ReadOnlySpan<byte> DhValue { get; private init; }

    public static int SizeFor(int hashLength, int dhValueLength) => HeaderSize + 2 * hashLength + dhValueLength;

    public static bool TryParse(ReadOnlySpan<byte> message, out ReplyMessage result)
    {
        result = default;
        if (message.Length < HeaderSize || message[0] != AuthProtocol.DhchapMessage || message[1] != AuthProtocol.Reply)
        {
            return false;
        }
        int hl = message[6];
        int dhvlen = BinaryPrimitives.ReadUInt16LittleEndian(message[10..]);
        if (message.Length < SizeFor(hl, dhvlen))
        {
            return false;
        }
        result = new ReplyMessage
        {
            TransactionId = BinaryPrimitives.ReadUInt16LittleEndian(message[4..]),
            ChallengeValid = (message[8] & 1) != 0,
            SequenceNumber = BinaryPrimitives.ReadUInt32LittleEndian(message[12..]),
            Response = message.Slice(HeaderSize, hl),
            Challenge = message.Slice(HeaderSize + hl, hl),
            DhValue = message.Slice(HeaderSize + 2 * hl, dhvlen),
        };
        return true;
    }

    /// <summary>Writes the message (the host side); returns its length.</summary>
    public static int Write(Span<byte> message, ushort tid, uint seqnum, ReadOnlySpan<byte> response, ReadOnlySpan<byte> challenge, bool challengeValid,
        ReadOnlySpan<byte> dhValue)
    {
        int hl = response.Length;
        int size = SizeFor(hl, dhValue.Length);
        message[..size].Clear();
        AuthMessageHeader.Write(message, AuthProtocol.DhchapMessage, AuthProtocol.Reply, tid);
        message[6] = (byte)hl;
        message[8] = challengeValid ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt16LittleEndian(message[10..], (ushort)dhValue.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(message[12..], seqnum);
        response.CopyTo(message[HeaderSize..]);
        if (challengeValid)
        {
            challenge.CopyTo(message[(HeaderSize + hl)..]);
        }
        dhValue.CopyTo(message[(HeaderSize + 2 * hl)..]);
        return size;
    }
}

/// <summary>
/// DH-HMAC-CHAP_Success1 (controller to host): header, HL (6), reserved, RVALID (8), reserved (9..15), then HL bytes
/// of the controller's response R2 when RVALID = 1.
/// </summary>
public readonly ref struct Success1Message
{
    public const int HeaderSize = 16;

    public ushort TransactionId { get; private init; }
    public byte HashLength { get; private init; }
    /// <summary>R2, or empty when RVALID = 0.</summary>
    public ReadOnlySpan<byte> Response { get; private init; }

    public static int SizeFor(int responseLength) => HeaderSize + responseLength;

    public static int Write(Span<byte> message, ushort tid, byte hashLength, ReadOnlySpan<byte> response)
    {
        int size = SizeFor(response.Length);
        message[..HeaderSize].Clear();
        AuthMessageHeader.Write(message, AuthProtocol.DhchapMessage, AuthProtocol.Success1, tid);
        message[6] = hashLength;
        message[8] = response.IsEmpty ? (byte)0 : (byte)1;
        response.CopyTo(message[HeaderSize..]);
        return size;
    }

    public static bool TryParse(ReadOnlySpan<byte> message, out Success1Message result)
    {
        result = default;
        if (message.Length < HeaderSize || message[0] != AuthProtocol.DhchapMessage || message[1] != AuthProtocol.Success1)
        {
            return false;
        }
        bool rvalid = (message[8] & 1) != 0;
        int hl = message[6];
        if (rvalid && message.Length < HeaderSize + hl)
        {
            return false;
        }
        result = new Success1Message
        {
            TransactionId = BinaryPrimitives.ReadUInt16LittleEndian(message[4..]),
            HashLength = message[6],
            Response = rvalid ? message.Slice(HeaderSize, hl) : default,
        };
        return true;
    }
}

/// <summary>DH-HMAC-CHAP_Success2 (host to controller): header and 10 reserved bytes.</summary>
public static class Success2Message
{
    public const int Size = 16;

    public static int Write(Span<byte> message, ushort tid)
    {
        message[..Size].Clear();
        AuthMessageHeader.Write(message, AuthProtocol.DhchapMessage, AuthProtocol.Success2, tid);
        return Size;
    }

    public static bool TryParse(ReadOnlySpan<byte> message, out ushort tid)
    {
        tid = 0;
        if (message.Length < Size || message[0] != AuthProtocol.DhchapMessage || message[1] != AuthProtocol.Success2)
        {
            return false;
        }
        tid = BinaryPrimitives.ReadUInt16LittleEndian(message[4..]);
        return true;
    }
}

/// <summary>AUTH_Failure1 (controller to host) and AUTH_Failure2 (host to controller): header, RESCODE (6), RESCODE_EXP (7).</summary>
public static class FailureMessage
{
    public const int Size = 8;

    public static int Write(Span<byte> message, byte authId, ushort tid, AuthFailureReason explanation)
    {
        message[..Size].Clear();
        AuthMessageHeader.Write(message, AuthProtocol.CommonMessage, authId, tid);
        message[6] = AuthProtocol.ReasonFailed;
        message[7] = (byte)explanation;
        return Size;
    }

    public static bool TryParse(ReadOnlySpan<byte> message, byte authId, out ushort tid, out AuthFailureReason explanation)
    {
        tid = 0;
        explanation = AuthFailureReason.None;
        if (message.Length < Size || message[0] != AuthProtocol.CommonMessage || message[1] != authId)
        {
            return false;
        }
        tid = BinaryPrimitives.ReadUInt16LittleEndian(message[4..]);
        explanation = (AuthFailureReason)message[7];
        return true;
    }
}

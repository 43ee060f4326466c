using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target;
using Zns.Target.Controller;
using Zns.Target.Fabrics.Auth;
using static Zns.Fuzz.FuzzFailureException;

namespace Zns.Fuzz;

/// <summary>
/// DH-HMAC-CHAP on a queue of a host that has a key: after a real Connect, the input is a sequence of records
/// <c>[kind][length LE16][payload]</c>: kind bits 1:0 = 0 Authentication Send of the payload (bit 2: TL off by one),
/// 1 Authentication Receive with AL = length (≤ 4096; no payload), 2 Property Get (any other command; no payload),
/// 3 a correct DH-HMAC-CHAP_Reply for the last challenge (bit 2: with a byte chosen by payload[0] flipped).
/// </summary>
/// <remarks>
/// Invariants: nothing throws; a successful Receive holds a Challenge, Success1 or Failure1 followed only by zeros;
/// any other command is refused with Authentication Required unless an uncorrupted reply to a real challenge was
/// accepted with Success1 since the last failure — no message sequence gets around the key.
/// </remarks>
public sealed class DhchapExchangeTarget : IFuzzTarget
{
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000f1";
    private static readonly DhchapKey Key = DhchapKey.FromSecret(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray(), 1);
    private static readonly ZonedNamespace Namespace = ZonedNamespace.CreateInMemory(16L << 20, new NamespaceOptions { ZoneSize = 1 << 20, LogicalBlockSize = 4096 });

    /// <inheritdoc/>
    public static string Name => "dhchap-exchange";

    /// <inheritdoc/>
    public static void Fuzz(ReadOnlySpan<byte> input)
    {
        var options = new TargetOptions
        {
            AllowedHostNqns = [HostNqn],
            HostAuthentication = new Dictionary<string, HostAuthentication> { [HostNqn] = new() { HostKey = Key, DhGroups = [DhGroup.Null, DhGroup.Ffdhe2048] } },
            MaxAuthenticationFailures = int.MaxValue,
            AuthenticationTimeout = TimeSpan.FromHours(1),
        };
        using var target = new NvmeTarget(options, [Namespace]);
        var transport = new Transport();
        using IQueueHandler queue = target.CreateQueueHandler(transport);
        var connect = default(SubmissionQueueEntry);
        connect.SetOpcode(AdminOpcode.Fabrics);
        connect.Bytes[4] = FabricsCommandType.Connect;
        connect.SetCdw(11, 31);
        byte[] data = new byte[1024];
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(16), 0xFFFF); // CNTLID: any controller
        System.Text.Encoding.ASCII.GetBytes(options.SubsystemNqn, data.AsSpan(256));
        System.Text.Encoding.ASCII.GetBytes(HostNqn, data.AsSpan(512));
        var cqe = queue.ExecuteAsync(connect, data).AsTask().GetAwaiter().GetResult();
        Check(cqe.Status.IsSuccess && (cqe.Result & QueueAuthenticationBit) != 0, "Connect of a keyed host without ATR", input);

        byte[]? lastChallenge = null;
        bool replied = false, authenticated = false;
        int pos = 0;
        while (pos + 3 <= input.Length && !transport.Aborted)
        {
            byte kind = input[pos];
            int length = BinaryPrimitives.ReadUInt16LittleEndian(input[(pos + 1)..]);
            pos += 3;
            // Receive and the other command carry no payload: their length field is AL (or unused).
            ReadOnlySpan<byte> payload = (kind & 3) is 1 or 2 ? default : input[pos..Math.Min(input.Length, pos + length)];
            pos += payload.Length;
            switch (kind & 3)
            {
                case 0:
                    replied = false;
                    Send(queue, payload.ToArray(), (kind & 4) != 0);
                    break;
                case 1:
                {
                    byte[] buffer = new byte[Math.Min(length, 4096)];
                    cqe = Receive(queue, buffer);
                    if (!cqe.Status.IsSuccess)
                    {
                        break;
                    }
                    int size = MessageSize(buffer);
                    Check(size > 0, $"Authentication Receive returned message {buffer.ElementAtOrDefault(0):x2}/{buffer.ElementAtOrDefault(1):x2}", input);
                    Check(buffer.AsSpan(Math.Min(size, buffer.Length)).IndexOfAnyExcept((byte)0) < 0, "bytes after the message are not zero", input);
                    if (buffer[1] == AuthProtocol.Challenge)
                    {
                        lastChallenge = buffer[..size];
                    }
                    else if (buffer[1] == AuthProtocol.Success1 && replied)
                    {
                        authenticated = true;
                    }
                    else if (buffer[1] == AuthProtocol.Failure1)
                    {
                        authenticated = false;
                    }
                    replied = false;
                    break;
                }
                case 2:
                {
                    var get = default(SubmissionQueueEntry);
                    get.SetOpcode(AdminOpcode.Fabrics);
                    get.Bytes[4] = FabricsCommandType.PropertyGet;
                    get.SetCdw(10, 1);
                    cqe = queue.ExecuteAsync(get, Memory<byte>.Empty).AsTask().GetAwaiter().GetResult();
                    Check(cqe.Status.IsSuccess == authenticated, $"Property Get {cqe.Status} with authenticated = {authenticated}", input);
                    break;
                }
                default:
                    replied = false;
                    if (lastChallenge is null)
                    {
                        break;
                    }
                    bool corrupt = (kind & 4) != 0;
                    byte[] reply = CorrectReply(lastChallenge, options.SubsystemNqn);
                    if (corrupt)
                    {
                        reply[payload.IsEmpty ? 20 : 16 + payload[0] % 32] ^= 0x01;
                    }
                    Send(queue, reply, false);
                    replied = !corrupt;
                    break;
            }
        }
    }

    private const uint QueueAuthenticationBit = 1u << 17;

    private static SubmissionQueueEntry AuthCommand(byte fctype, uint length)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.Fabrics);
        sqe.Bytes[4] = fctype;
        sqe.SetCdw(10, AuthCommandLayout.DhchapCdw10);
        sqe.SetCdw(11, length);
        return sqe;
    }

    private static void Send(IQueueHandler queue, byte[] data, bool wrongLength) =>
        queue.ExecuteAsync(AuthCommand(FabricsCommandType.AuthenticationSend, (uint)data.Length + (wrongLength ? 1u : 0u)), data).AsTask().GetAwaiter().GetResult();

    private static CompletionQueueEntry Receive(IQueueHandler queue, byte[] buffer) =>
        queue.ExecuteAsync(AuthCommand(FabricsCommandType.AuthenticationReceive, (uint)buffer.Length), buffer).AsTask().GetAwaiter().GetResult();

    /// <summary>Length of the controller message at the start of <paramref name="m"/>, or 0 if it is none.</summary>
    private static int MessageSize(byte[] m)
    {
        if (FailureMessage.TryParse(m, AuthProtocol.Failure1, out _, out _))
        {
            return FailureMessage.Size;
        }
        if (ChallengeMessage.TryParse(m, out var c))
        {
            return ChallengeMessage.SizeFor(c.Challenge.Length, c.DhValue.Length);
        }
        if (Success1Message.TryParse(m, out var s))
        {
            return Success1Message.SizeFor(s.Response.Length);
        }
        return 0;
    }

    private static byte[] CorrectReply(byte[] challengeMessage, string subNqn)
    {
        ChallengeMessage.TryParse(challengeMessage, out var c);
        byte[] challenge = c.Challenge.ToArray();
        byte[] hostValue = [];
        if (DhGroup.FromId(c.DhGroupId) is { } group)
        {
            byte[] x = group.GeneratePrivateExponent();
            hostValue = new byte[group.ValueLength];
            group.PublicValue(x, hostValue);
            byte[] sessionKey = new byte[group.ValueLength];
            if (group.TryComputeSharedSecret(x, c.DhValue, sessionKey))
            {
                challenge = DhchapResponse.AugmentChallenge(c.HashId, sessionKey, challenge);
            }
        }
        byte[] r1 = DhchapResponse.Host(c.HashId, Key.Transform(HostNqn), challenge, c.SequenceNumber, c.TransactionId, 0, HostNqn, subNqn);
        byte[] reply = new byte[ReplyMessage.SizeFor(r1.Length, hostValue.Length)];
        ReplyMessage.Write(reply, c.TransactionId, 0, r1, default, false, hostValue);
        return reply;
    }

    private sealed class Transport : IQueueTransport
    {
        public bool Aborted { get; private set; }
        public string RemoteEndPoint => "127.0.0.1:9";
        public TransportTraits Traits { get; } = TransportTraits.Fabric(8192);
        public void Abort(string reason) => Aborted = true;
    }
}

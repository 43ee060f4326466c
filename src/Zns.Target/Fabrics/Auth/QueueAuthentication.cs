using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;

namespace Zns.Target.Fabrics.Auth;

/// <summary>
/// The DH-HMAC-CHAP state of one queue whose host has a key (NVMe Base 2.0 §8.13.5): Authentication Send carries
/// AUTH_Negotiate, _Reply, _Success2 and AUTH_Failure2 from the host; Authentication Receive returns _Challenge,
/// _Success1 or AUTH_Failure1. Until a transaction succeeds the queue refuses every other command with
/// Authentication Required; a failed transaction is answered with AUTH_Failure1 and the queue is then disconnected.
/// A new AUTH_Negotiate on an authenticated queue is a re-authentication.
/// </summary>
/// <remarks>
/// Commands arrive one at a time per queue, but the deadline timer runs on another thread, hence the lock.
/// A failure is logged once per transaction and counted against the source address.
/// </remarks>
internal sealed class QueueAuthentication : IDisposable
{
    /// <summary>
    /// Connect response DW0 AUTHREQ.ATR, authentication transaction required: bit 17, next to ASCR (secure channel
    /// required) in bit 18, where Linux hosts and nvmet put them (NVME_CONNECT_AUTHREQ_ATR / _ASCR).
    /// </summary>
    public const uint AuthenticationTransactionRequired = 1u << 17;

    /// <summary>Time the host has to see its AUTH_Failure1 before the queue is disconnected.</summary>
    internal static readonly TimeSpan DisconnectDelay = TimeSpan.FromMilliseconds(500);

    private enum Step
    {
        /// <summary>Waiting for AUTH_Negotiate.</summary>
        Negotiate,
        /// <summary>Negotiated; the next Authentication Receive returns the challenge.</summary>
        SendChallenge,
        Reply,
        SendSuccess1,
        Success2,
        /// <summary>A failure was decided; the next Authentication Receive returns AUTH_Failure1.</summary>
        SendFailure1,
        /// <summary>Failed: refused until the connection goes.</summary>
        Failed,
    }

    private readonly Lock _lock = new();
    private readonly HostAuthentication _config;
    private readonly string _hostNqn;
    private readonly string _subNqn;
    private readonly ushort _qid;
    private readonly IQueueTransport _transport;
    private readonly ILogger _logger;
    private readonly AuthFailureLimiter _limiter;
    private readonly TimeProvider _time;
    private readonly TimeSpan _timeout;
    private ITimer? _timer;

    private Step _step;
    private volatile bool _authenticated;
    private bool _failureLogged;
    private AuthFailureReason _pendingReason;
    private ushort _tid;
    private byte _hashId;
    private byte _dhGroupId;
    private uint _seqnum;
    private byte[]? _challenge;
    private byte[]? _privateExponent;
    private byte[]? _controllerResponse;

    private static uint s_lastSeqnum = (uint)RandomNumberGenerator.GetInt32(1, int.MaxValue);

    public QueueAuthentication(HostAuthentication config, string hostNqn, string subNqn, ushort qid, IQueueTransport transport,
        ILogger logger, AuthFailureLimiter limiter, TimeProvider time, TimeSpan timeout)
    {
        _config = config;
        _hostNqn = hostNqn;
        _subNqn = subNqn;
        _qid = qid;
        _transport = transport;
        _logger = logger;
        _limiter = limiter;
        _time = time;
        _timeout = timeout;
        lock (_lock)
        {
            ArmDeadlineLocked();
        }
    }

    /// <summary>Called once, when the first transaction on this queue succeeds (outside the lock).</summary>
    public Action? FirstAuthenticated { get; set; }

    /// <summary>A transaction has succeeded on this queue (and no later one failed).</summary>
    public bool IsAuthenticated => _authenticated;

    /// <summary>Authentication Send: checks the command, then consumes one host message.</summary>
    public NvmeStatus Send(in SubmissionQueueEntry sqe, ReadOnlySpan<byte> data)
    {
        NvmeStatus check = CheckCommand(in sqe, data.Length);
        if (!check.IsSuccess)
        {
            return check;
        }
        try
        {
            return SendLocked(data);
        }
        finally
        {
            NotifyFirstAuthentication();
        }
    }

    private NvmeStatus SendLocked(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            if (_step == Step.Failed)
            {
                return NvmeStatus.CommandSequenceError.WithDnr();
            }
            ArmDeadlineLocked();
            if (!AuthMessageHeader.TryRead(data, out byte type, out byte id, out ushort tid))
            {
                FailLocked(AuthFailureReason.IncorrectPayload, $"message of {data.Length} bytes is shorter than its header");
                return NvmeStatus.Success;
            }
            switch (type, id)
            {
                case (AuthProtocol.CommonMessage, AuthProtocol.Negotiate):
                    // Allowed at any step: a restart, or a re-authentication of an authenticated queue.
                    _tid = tid;
                    _failureLogged = false;
                    Negotiate(data);
                    break;
                case (AuthProtocol.DhchapMessage, AuthProtocol.Reply) when _step == Step.Reply:
                    if (tid != _tid)
                    {
                        FailLocked(AuthFailureReason.IncorrectPayload, $"DH-HMAC-CHAP_Reply for transaction {tid}, expected {_tid}");
                        break;
                    }
                    Reply(data);
                    break;
                case (AuthProtocol.DhchapMessage, AuthProtocol.Success2) when _step == Step.Success2:
                    if (!Success2Message.TryParse(data, out ushort s2Tid) || s2Tid != _tid)
                    {
                        FailLocked(AuthFailureReason.IncorrectPayload, "malformed DH-HMAC-CHAP_Success2 or wrong transaction");
                        break;
                    }
                    SucceedLocked();
                    break;
                case (AuthProtocol.CommonMessage, AuthProtocol.Failure2):
                    FailureMessage.TryParse(data, AuthProtocol.Failure2, out _, out AuthFailureReason why);
                    LogFailureLocked($"the host sent AUTH_Failure2 ({Describe(why)}): it did not accept the controller's response or challenge");
                    EnterFailedLocked();
                    break;
                default:
                    FailLocked(AuthFailureReason.IncorrectProtocolMessage,
                        $"unexpected message type {type:x2}h id {id:x2}h in step {_step} (replayed or out of order)");
                    break;
            }
            return NvmeStatus.Success;
        }
    }

    /// <summary>Authentication Receive: returns the controller's next message in <paramref name="data"/> (zero-filled to AL).</summary>
    public NvmeStatus Receive(in SubmissionQueueEntry sqe, Span<byte> data)
    {
        NvmeStatus check = CheckCommand(in sqe, data.Length);
        if (!check.IsSuccess)
        {
            return check;
        }
        data.Clear();
        try
        {
            return ReceiveLocked(data);
        }
        finally
        {
            NotifyFirstAuthentication();
        }
    }

    private void NotifyFirstAuthentication()
    {
        if (_authenticated && FirstAuthenticated is { } callback)
        {
            FirstAuthenticated = null;
            callback();
        }
    }

    private NvmeStatus ReceiveLocked(Span<byte> data)
    {
        lock (_lock)
        {
            if (_step == Step.Failed)
            {
                return NvmeStatus.CommandSequenceError.WithDnr();
            }
            ArmDeadlineLocked();
            switch (_step)
            {
                case Step.SendChallenge:
                    WriteChallenge(data);
                    break;
                case Step.SendSuccess1:
                    WriteSuccess1(data);
                    break;
                default:
                    if (_step != Step.SendFailure1)
                    {
                        FailLocked(AuthFailureReason.IncorrectProtocolMessage, $"Authentication Receive in step {_step}, when the host had to send");
                    }
                    break;
            }
            if (_step == Step.SendFailure1)
            {
                if (data.Length < FailureMessage.Size)
                {
                    EnterFailedLocked();
                    return NvmeStatus.InvalidField.WithDnr();
                }
                FailureMessage.Write(data, AuthProtocol.Failure1, _tid, _pendingReason);
                EnterFailedLocked();
            }
            return NvmeStatus.Success;
        }
    }

    /// <summary>SECP E9h, SPSP0/1 01h, a non-zero TL/AL equal to the SGL length (NVMe Base 2.0 §5.21.1).</summary>
    private static NvmeStatus CheckCommand(in SubmissionQueueEntry sqe, int dataLength)
    {
        if (AuthCommandLayout.Secp(in sqe) != AuthProtocol.SecurityProtocol ||
            AuthCommandLayout.Spsp0(in sqe) != AuthProtocol.SecurityProtocolSpecific ||
            AuthCommandLayout.Spsp1(in sqe) != AuthProtocol.SecurityProtocolSpecific)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        uint length = AuthCommandLayout.Length(in sqe);
        if (length == 0)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        return length != (uint)dataLength ? NvmeStatus.DataSglLengthInvalid.WithDnr() : NvmeStatus.Success;
    }

    private void Negotiate(ReadOnlySpan<byte> data)
    {
        ClearTransactionLocked();
        if (!NegotiateMessage.TryParse(data, out NegotiateMessage m, out AuthFailureReason reason))
        {
            FailLocked(reason, reason == AuthFailureReason.ProtocolNotUsable
                ? "AUTH_Negotiate offers no DH-HMAC-CHAP protocol" : "malformed AUTH_Negotiate");
            return;
        }
        if (m.SecureChannel != AuthProtocol.NoSecureChannel)
        {
            FailLocked(AuthFailureReason.SecureChannelMismatch, $"the host asks for secure channel concatenation (SC_C {m.SecureChannel}); zns has no TLS");
            return;
        }
        _hashId = FirstOffered(_config.Hashes, m.HashIds, DhchapHash.IsKnown);
        if (_hashId == 0)
        {
            FailLocked(AuthFailureReason.HashUnusable, $"no common hash function (host offers {List(m.HashIds, DhchapHash.Name)}, " +
                $"allowed {List(_config.Hashes, DhchapHash.Name)})");
            return;
        }
        byte group = FirstOffered(_config.DhGroups, m.DhGroupIds, DhGroup.IsKnown, none: 0xFF);
        if (group == 0xFF)
        {
            FailLocked(AuthFailureReason.DhGroupUnusable, $"no common DH group (host offers {List(m.DhGroupIds, DhGroup.NameOf)}, " +
                $"allowed {List(_config.DhGroups, DhGroup.NameOf)})");
            return;
        }
        _dhGroupId = group;
        _step = Step.SendChallenge;
        _logger.TransactionStarted(_hostNqn, _transport.RemoteEndPoint, _qid, _tid, DhchapHash.Name(_hashId), DhGroup.NameOf(_dhGroupId));
    }

    private void WriteChallenge(Span<byte> data)
    {
        int hl = DhchapHash.Length(_hashId);
        DhGroup? group = DhGroup.FromId(_dhGroupId);
        int dhvlen = group?.ValueLength ?? 0;
        if (data.Length < ChallengeMessage.SizeFor(hl, dhvlen))
        {
            FailLocked(AuthFailureReason.IncorrectPayload, $"Authentication Receive AL {data.Length} is too small for the challenge");
            return;
        }
        _challenge = RandomNumberGenerator.GetBytes(hl);
        _seqnum = NextSequenceNumber();
        byte[] dhValue = [];
        if (group is not null)
        {
            _privateExponent = group.GeneratePrivateExponent();
            dhValue = new byte[dhvlen];
            group.PublicValue(_privateExponent, dhValue);
        }
        ChallengeMessage.Write(data, _tid, _hashId, _dhGroupId, _seqnum, _challenge, dhValue);
        _step = Step.Reply;
    }

    private void Reply(ReadOnlySpan<byte> data)
    {
        int hl = DhchapHash.Length(_hashId);
        if (!ReplyMessage.TryParse(data, out ReplyMessage r) || r.Response.Length != hl)
        {
            FailLocked(AuthFailureReason.IncorrectPayload, "malformed DH-HMAC-CHAP_Reply");
            return;
        }
        DhGroup? group = DhGroup.FromId(_dhGroupId);
        byte[]? sessionKey = null;
        try
        {
            if (group is null)
            {
                if (!r.DhValue.IsEmpty)
                {
                    FailLocked(AuthFailureReason.IncorrectPayload, "DH value in a reply for the null DH group");
                    return;
                }
            }
            else
            {
                sessionKey = new byte[group.ValueLength];
                if (!group.TryComputeSharedSecret(_privateExponent, r.DhValue, sessionKey))
                {
                    FailLocked(AuthFailureReason.DhGroupUnusable, $"invalid {group.Name} value from the host ({r.DhValue.Length} bytes)");
                    return;
                }
            }
            byte[] c1 = sessionKey is null ? _challenge! : DhchapResponse.AugmentChallenge(_hashId, sessionKey, _challenge);
            byte[] hostKey = _config.HostKey.Transform(_hostNqn);
            byte[] expected = DhchapResponse.Host(_hashId, hostKey, c1, _seqnum, _tid, AuthProtocol.NoSecureChannel, _hostNqn, _subNqn);
            CryptographicOperations.ZeroMemory(hostKey);
            if (!CryptographicOperations.FixedTimeEquals(expected, r.Response))
            {
                FailLocked(AuthFailureReason.Failed, "the host's response does not match its key (wrong key, or a replayed reply)");
                return;
            }
            _controllerResponse = null;
            // SEQNUM 0 means no bidirectional authentication even if a challenge is carried (NVMe Base 2.0 §8.13.5.5).
            if (r.ChallengeValid && r.SequenceNumber != 0)
            {
                if (_config.ControllerKey is null)
                {
                    FailLocked(AuthFailureReason.Failed, "the host asks the controller to authenticate, but no controller key is configured for it");
                    return;
                }
                byte[] c2 = sessionKey is null ? r.Challenge.ToArray() : DhchapResponse.AugmentChallenge(_hashId, sessionKey, r.Challenge);
                byte[] controllerKey = _config.ControllerKey.Transform(_subNqn);
                _controllerResponse = DhchapResponse.Controller(_hashId, controllerKey, c2, r.SequenceNumber, _tid,
                    AuthProtocol.NoSecureChannel, _hostNqn, _subNqn);
                CryptographicOperations.ZeroMemory(controllerKey);
            }
            _step = Step.SendSuccess1;
        }
        finally
        {
            if (sessionKey is not null)
            {
                CryptographicOperations.ZeroMemory(sessionKey);
            }
        }
    }

    private void WriteSuccess1(Span<byte> data)
    {
        int hl = DhchapHash.Length(_hashId);
        ReadOnlySpan<byte> r2 = _controllerResponse;
        if (data.Length < Success1Message.SizeFor(r2.Length))
        {
            FailLocked(AuthFailureReason.IncorrectPayload, $"Authentication Receive AL {data.Length} is too small for DH-HMAC-CHAP_Success1");
            return;
        }
        Success1Message.Write(data, _tid, (byte)hl, r2);
        if (_controllerResponse is null)
        {
            SucceedLocked();
        }
        else
        {
            _step = Step.Success2;
        }
    }

    private void SucceedLocked()
    {
        bool again = _authenticated;
        _authenticated = true;
        _step = Step.Negotiate;
        string direction = _controllerResponse is null ? "" : ", controller authenticated to the host";
        if (_qid == 0 || again)
        {
            _logger.Authenticated(_hostNqn, _transport.RemoteEndPoint, _qid, DhchapHash.Name(_hashId), DhGroup.NameOf(_dhGroupId),
                again ? direction + ", re-authentication" : direction);
        }
        ClearTransactionLocked();
        _timer?.Dispose();
        _timer = null;
    }

    /// <summary>Decides a failure: AUTH_Failure1 goes out on the next Authentication Receive.</summary>
    private void FailLocked(AuthFailureReason reason, string description)
    {
        LogFailureLocked(description);
        _pendingReason = reason;
        _step = Step.SendFailure1;
    }

    private void LogFailureLocked(string description)
    {
        if (_failureLogged)
        {
            return;
        }
        _failureLogged = true;
        _limiter.RecordFailure(_transport.RemoteEndPoint);
        _logger.AuthenticationFailed(_hostNqn, _transport.RemoteEndPoint, _qid, description);
    }

    /// <summary>The queue is refused from now on and disconnected once the host has had time to read the failure.</summary>
    private void EnterFailedLocked()
    {
        _step = Step.Failed;
        _authenticated = false;
        ClearTransactionLocked();
        _timer?.Dispose();
        _timer = _time.CreateTimer(static s => ((QueueAuthentication)s!)._transport.Abort("authentication failed"), this,
            DisconnectDelay, Timeout.InfiniteTimeSpan);
    }

    private void ArmDeadlineLocked()
    {
        if (_step == Step.Failed)
        {
            return;
        }
        if (_timer is null)
        {
            _timer = _time.CreateTimer(static s => ((QueueAuthentication)s!).OnDeadline(), this, _timeout, Timeout.InfiniteTimeSpan);
        }
        else
        {
            _timer.Change(_timeout, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnDeadline()
    {
        bool abort;
        lock (_lock)
        {
            if (_step == Step.Failed || _timer is null)
            {
                return;
            }
            string what = _step == Step.Negotiate ? "no AUTH_Negotiate" : $"the host stopped in step {_step}";
            if (_authenticated)
            {
                // A stalled re-authentication: the earlier one still stands, the transaction is dropped (as nvmet does).
                _logger.AuthenticationFailed(_hostNqn, _transport.RemoteEndPoint, _qid, $"re-authentication abandoned: {what} within {_timeout.TotalSeconds:0.#} s");
                _step = Step.Negotiate;
                ClearTransactionLocked();
                _timer.Dispose();
                _timer = null;
                return;
            }
            LogFailureLocked($"timeout: {what} within {_timeout.TotalSeconds:0.#} s");
            _step = Step.Failed;
            ClearTransactionLocked();
            _timer.Dispose();
            _timer = null;
            abort = true;
        }
        if (abort)
        {
            _transport.Abort("authentication timeout");
        }
    }

    private void ClearTransactionLocked()
    {
        if (_privateExponent is not null)
        {
            CryptographicOperations.ZeroMemory(_privateExponent);
        }
        _privateExponent = null;
        _challenge = null;
    }

    private static uint NextSequenceNumber()
    {
        // A sequence number is never 0 (that means "no bidirectional authentication" in a reply).
        uint next = Interlocked.Increment(ref s_lastSeqnum);
        return next != 0 ? next : Interlocked.Increment(ref s_lastSeqnum);
    }

    private static byte FirstOffered(IReadOnlyList<byte> preferred, ReadOnlySpan<byte> offered, Func<byte, bool> known, byte none = 0)
    {
        foreach (byte id in preferred)
        {
            if (known(id) && offered.Contains(id))
            {
                return id;
            }
        }
        return none;
    }

    private static string List(ReadOnlySpan<byte> ids, Func<byte, string> name)
    {
        var names = new List<string>(ids.Length);
        foreach (byte id in ids)
        {
            names.Add(name(id));
        }
        return names.Count == 0 ? "none" : string.Join(",", names);
    }

    private static string List(IReadOnlyList<byte> ids, Func<byte, string> name) => string.Join(",", ids.Select(name));

    private static string Describe(AuthFailureReason reason) => reason switch
    {
        AuthFailureReason.Failed => "authentication failed",
        AuthFailureReason.ProtocolNotUsable => "protocol not usable",
        AuthFailureReason.SecureChannelMismatch => "secure channel concatenation mismatch",
        AuthFailureReason.HashUnusable => "hash function not usable",
        AuthFailureReason.DhGroupUnusable => "DH group not usable",
        AuthFailureReason.IncorrectPayload => "incorrect payload",
        AuthFailureReason.IncorrectProtocolMessage => "incorrect protocol message",
        _ => $"explanation {(byte)reason:x2}h",
    };

    public void Dispose()
    {
        lock (_lock)
        {
            _timer?.Dispose();
            _timer = null;
            _step = Step.Failed;
            ClearTransactionLocked();
        }
    }
}

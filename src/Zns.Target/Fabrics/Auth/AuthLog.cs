using Microsoft.Extensions.Logging;

namespace Zns.Target.Fabrics.Auth;

/// <summary>Log events of in-band authentication. None of them carries a key, a response or a session key.</summary>
internal static partial class AuthLog
{
    [LoggerMessage(EventId = 120, Level = LogLevel.Information,
        Message = "Host {HostNqn} from {RemoteEndPoint} authenticated on queue {Qid} ({Hash}, DH group {DhGroup}{Direction})")]
    public static partial void Authenticated(this ILogger logger, string hostNqn, string remoteEndPoint, ushort qid, string hash, string dhGroup, string direction);

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning,
        Message = "Authentication of host {HostNqn} from {RemoteEndPoint} failed on queue {Qid}: {Reason}")]
    public static partial void AuthenticationFailed(this ILogger logger, string hostNqn, string remoteEndPoint, ushort qid, string reason);

    [LoggerMessage(EventId = 122, Level = LogLevel.Debug,
        Message = "Host {HostNqn} from {RemoteEndPoint} started authentication transaction {TransactionId} on queue {Qid} ({Hash}, DH group {DhGroup})")]
    public static partial void TransactionStarted(this ILogger logger, string hostNqn, string remoteEndPoint, ushort qid, ushort transactionId, string hash, string dhGroup);
}

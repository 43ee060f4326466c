using Microsoft.Extensions.Logging;

namespace Zns.Target.Controller;

/// <summary>Source-generated log events of the controller layer.</summary>
internal static partial class TargetLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information,
        Message = "Controller {Cntlid} created on {SubNqn} for host {HostNqn} from {RemoteEndPoint} (KATO {KatoMs} ms)")]
    public static partial void ControllerCreated(this ILogger logger, ushort cntlid, string subNqn, string hostNqn, string remoteEndPoint, uint katoMs);

    [LoggerMessage(EventId = 101, Level = LogLevel.Debug,
        Message = "I/O queue {Qid} (SQSIZE {SqSize}) connected to controller {Cntlid} from {RemoteEndPoint}")]
    public static partial void IoQueueConnected(this ILogger logger, ushort qid, ushort sqSize, ushort cntlid, string remoteEndPoint);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning,
        Message = "Connect rejected ({Status}) from {RemoteEndPoint}: {Reason} (subsystem {SubNqn}, host {HostNqn}, QID {Qid})")]
    public static partial void ConnectRejected(this ILogger logger, string remoteEndPoint, string status, string reason, string subNqn, string hostNqn, ushort qid);

    [LoggerMessage(EventId = 103, Level = LogLevel.Debug, Message = "Queue {Qid} of controller {Cntlid} disconnected ({RemoteEndPoint})")]
    public static partial void QueueDisconnected(this ILogger logger, ushort qid, ushort cntlid, string remoteEndPoint);

    [LoggerMessage(EventId = 104, Level = LogLevel.Information, Message = "Controller {Cntlid} on {SubNqn} destroyed: {Reason}")]
    public static partial void ControllerDestroyed(this ILogger logger, ushort cntlid, string subNqn, string reason);

    [LoggerMessage(EventId = 105, Level = LogLevel.Warning,
        Message = "Keep-alive timeout on controller {Cntlid} (host {HostNqn}): nothing received for {ElapsedMs} ms, KATO {KatoMs} ms")]
    public static partial void KeepAliveExpired(this ILogger logger, ushort cntlid, string hostNqn, long elapsedMs, uint katoMs);

    [LoggerMessage(EventId = 106, Level = LogLevel.Warning, Message = "Controller {Cntlid}: CC {Cc:x8} rejected, controller fatal status set")]
    public static partial void InvalidControllerConfiguration(this ILogger logger, ushort cntlid, uint cc);

    [LoggerMessage(EventId = 107, Level = LogLevel.Information, Message = "Controller {Cntlid}: shutdown requested (CC.SHN {Shn})")]
    public static partial void Shutdown(this ILogger logger, ushort cntlid, uint shn);

    [LoggerMessage(EventId = 108, Level = LogLevel.Error, Message = "Controller {Cntlid}: command {Opcode:x2} on queue {Qid} failed with an exception")]
    public static partial void CommandFailed(this ILogger logger, Exception exception, ushort cntlid, byte opcode, ushort qid);

    [LoggerMessage(EventId = 109, Level = LogLevel.Error, Message = "Controller {Cntlid}: saving namespace {Nsid} at shutdown failed")]
    public static partial void NamespaceShutdownFailed(this ILogger logger, Exception exception, ushort cntlid, uint nsid);

    [LoggerMessage(EventId = 110, Level = LogLevel.Error,
        Message = "{Name}: command {Opcode:x2} (CID {CommandId}) on queue {Qid} threw; answered Internal Error")]
    public static partial void CommandException(this ILogger logger, Exception exception, string name, byte opcode, ushort commandId, ushort qid);

    [LoggerMessage(EventId = 111, Level = LogLevel.Warning,
        Message = "Power cut {Sequence} of {SubNqn} ({Trigger}): keep {Keep}, torn {Torn}, seed {Seed}, off {OffMs} ms, {Controllers} controllers lost power. {Dropped}")]
    public static partial void PowerCut(this ILogger logger, int sequence, string subNqn, string trigger, string keep, bool torn, ulong seed, int offMs, int controllers, string dropped);

    [LoggerMessage(EventId = 112, Level = LogLevel.Information, Message = "Power restored to {SubNqn}")]
    public static partial void PowerRestored(this ILogger logger, string subNqn);

    [LoggerMessage(EventId = 113, Level = LogLevel.Error, Message = "Power cut of {SubNqn} failed")]
    public static partial void PowerCutFailed(this ILogger logger, Exception exception, string subNqn);
}

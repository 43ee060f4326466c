using System.Net;
using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Target.Tcp;

/// <summary>Source-generated log messages of the NVMe/TCP transport (event ids 1000-1099).</summary>
internal static partial class TransportLog
{
    [LoggerMessage(1000, LogLevel.Information, "NVMe/TCP listening on {EndPoint}")]
    public static partial void Listening(ILogger logger, EndPoint endPoint);

    [LoggerMessage(1001, LogLevel.Debug, "Connection from {Remote} accepted")]
    public static partial void ConnectionAccepted(ILogger logger, string remote);

    [LoggerMessage(1002, LogLevel.Warning, "Connection from {Remote} refused: {Count} connections already open")]
    public static partial void ConnectionLimitReached(ILogger logger, string remote, int count);

    [LoggerMessage(1003, LogLevel.Debug, "Accept failed: {Error}")]
    public static partial void AcceptFailed(ILogger logger, System.Net.Sockets.SocketError error);

    [LoggerMessage(1004, LogLevel.Debug, "Connection {Remote}: initialized (digests {Digests}, MAXR2T {MaxR2T})")]
    public static partial void Initialized(ILogger logger, string remote, DigestOptions digests, uint maxR2T);

    [LoggerMessage(1005, LogLevel.Debug, "Connection {Remote} closed: {Reason}")]
    public static partial void Closed(ILogger logger, string remote, string reason);

    [LoggerMessage(1006, LogLevel.Warning, "Connection {Remote}: fatal transport error {Error}; sending C2HTermReq")]
    public static partial void FatalTransportError(ILogger logger, string remote, string error);

    [LoggerMessage(1007, LogLevel.Warning, "Connection {Remote}: host sent H2CTermReq (FES 0x{Fes:x2}, FEI {Fei})")]
    public static partial void HostTerminated(ILogger logger, string remote, ushort fes, uint fei);

    [LoggerMessage(1008, LogLevel.Error, "Connection {Remote}: command handler failed for opcode 0x{Opcode:x2} CID {CommandId}")]
    public static partial void HandlerFailed(ILogger logger, string remote, byte opcode, ushort commandId, Exception exception);

    [LoggerMessage(1009, LogLevel.Error, "Connection {Remote}: unexpected transport failure")]
    public static partial void UnexpectedFailure(ILogger logger, string remote, Exception exception);

    [LoggerMessage(1010, LogLevel.Debug, "Connection {Remote}: CID {CommandId} rejected by the transport with {Status}")]
    public static partial void CommandRejected(ILogger logger, string remote, ushort commandId, string status);

    [LoggerMessage(1011, LogLevel.Warning, "Connection {Remote}: data digest error in CID {CommandId}")]
    public static partial void DataDigestError(ILogger logger, string remote, ushort commandId);

    [LoggerMessage(1012, LogLevel.Information, "NVMe/TCP listener on {EndPoint} stopped")]
    public static partial void Stopped(ILogger logger, EndPoint endPoint);

    [LoggerMessage(1013, LogLevel.Warning, "Connection {Remote}: CID {CommandId} submitted to a full queue ({QueueDepth} commands outstanding)")]
    public static partial void QueueOverflow(ILogger logger, string remote, ushort commandId, int queueDepth);
}

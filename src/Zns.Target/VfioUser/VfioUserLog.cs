using Microsoft.Extensions.Logging;

namespace Zns.Target.VfioUser;

internal static partial class VfioUserLog
{
    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "vfio-user client connected on {Path}")]
    public static partial void ClientConnected(ILogger logger, string path);

    [LoggerMessage(EventId = 401, Level = LogLevel.Information, Message = "vfio-user client on {Path} gone: {Reason}")]
    public static partial void ClientDisconnected(ILogger logger, string path, string reason);
}

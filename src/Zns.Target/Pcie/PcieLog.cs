using Microsoft.Extensions.Logging;

namespace Zns.Target.Pcie;

/// <summary>Source-generated log events of the PCIe NVMe function.</summary>
internal static partial class PcieLog
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "{Name}: controller {Cntlid} enabled (admin SQ {Asqs} / CQ {Acqs} entries)")]
    public static partial void Enabled(this ILogger logger, string name, ushort cntlid, int asqs, int acqs);

    [LoggerMessage(EventId = 301, Level = LogLevel.Information, Message = "{Name}: controller reset ({Reason})")]
    public static partial void Reset(this ILogger logger, string name, string reason);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "{Name}: controller fatal status: {Reason}")]
    public static partial void Fatal(this ILogger logger, string name, string reason);

    [LoggerMessage(EventId = 303, Level = LogLevel.Warning, Message = "{Name}: doorbell {Doorbell} write {Value} ignored: {Reason}")]
    public static partial void BadDoorbell(this ILogger logger, string name, int doorbell, uint value, string reason);

    [LoggerMessage(EventId = 304, Level = LogLevel.Debug, Message = "{Name}: {What} queue {Qid} created ({Entries} entries)")]
    public static partial void QueueCreated(this ILogger logger, string name, string what, ushort qid, int entries);

    [LoggerMessage(EventId = 305, Level = LogLevel.Error, Message = "{Name}: the queue poller failed; controller fatal status set")]
    public static partial void PollerFailed(this ILogger logger, Exception exception, string name);
}

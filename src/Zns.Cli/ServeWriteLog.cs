using System.CommandLine;
using Zns.Core.Recording;
using Zns.Core.Zones;

namespace Zns.Cli;

/// <summary><c>zns serve --write-log DIR --write-log-size SIZE</c>: one write log per namespace, <c>DIR/nsN.wlog</c>.</summary>
internal sealed class ServeWriteLogOptions
{
    private readonly Option<string> _directory = new("--write-log")
    {
        Description = "Record every write, append (with its LBA), Write Zeroes, Copy, deallocate, zone action and flush, with data, " +
                      "in completion order, to DIR/nsN.wlog (created; an existing log is never replaced); zns replay rebuilds any point of it",
    };
    private readonly Option<string> _size = new("--write-log-size")
    {
        Description = $"Size bound of each namespace's write log (default {WriteLogFormat.DefaultMaxBytes >> 30}G); when full the log stops with a message, the device goes on",
    };

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(_directory);
        cmd.Options.Add(_size);
    }

    /// <summary>
    /// Starts a log for each namespace, or none without <c>--write-log</c>. A refusal is a usage error naming the
    /// log; logs already started are closed (their files stay, holding only their header).
    /// </summary>
    public List<WriteLog> Start(ParseResult r, List<ZonedNamespace> namespaces, Action<string> stopped)
    {
        var logs = new List<WriteLog>();
        if (r.GetValue(_directory) is not { } directory)
        {
            if (r.GetValue(_size) is not null)
            {
                throw new UsageException("--write-log-size: needs --write-log DIR");
            }
            return logs;
        }
        string? size = r.GetValue(_size);
        long maxBytes = size is null ? WriteLogFormat.DefaultMaxBytes : ZoneCommands.ParseSize("--write-log-size", size);
        if (maxBytes < WriteLogFormat.MinMaxBytes)
        {
            throw new UsageException($"--write-log-size: {size} is below the least, 1M");
        }
        try
        {
            Directory.CreateDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--write-log {directory}: cannot create the directory: {e.Message}");
        }
        try
        {
            for (int i = 0; i < namespaces.Count; i++)
            {
                uint nsid = (uint)i + 1;
                logs.Add(WriteLog.Create(WriteLogFormat.PathFor(directory, nsid), nsid, namespaces[i], maxBytes, stopped));
            }
        }
        catch (WriteLogException e)
        {
            Stop(logs);
            throw new UsageException($"--write-log: {e.Message}");
        }
        return logs;
    }

    /// <summary>Makes the logs durable and closes them; says where each stopped early.</summary>
    public static void Stop(List<WriteLog> logs, TextWriter? stdout = null)
    {
        foreach (WriteLog log in logs)
        {
            string? early = log.StopReason;
            log.Dispose();
            stdout?.WriteLine($"zns: {log.Path}: {log.Entries} entries, {log.Flushes} flushes, {log.Bytes} bytes" +
                              (early is null ? "" : $"; stopped early: {early}"));
        }
    }
}

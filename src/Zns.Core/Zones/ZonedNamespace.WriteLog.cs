using Zns.Core.Recording;
using Zns.Nvme;
using Zns.Core.Storage;

namespace Zns.Core.Zones;

/// <summary>
/// The namespace's write log (<see cref="WriteLog"/>): each change is recorded where it is applied, under the lock
/// that orders it against other changes of the same zone, so the log's order replays to the same state. Only changes
/// that happened are recorded: a command refused before it changed anything leaves no entry.
/// </summary>
public sealed partial class ZonedNamespace
{
    private WriteLog? _writeLog;

    /// <summary>The write log recording this namespace, or null.</summary>
    public WriteLog? WriteLog => Volatile.Read(ref _writeLog);

    internal void AttachWriteLog(WriteLog log)
    {
        if (Interlocked.CompareExchange(ref _writeLog, log, null) is not null)
        {
            throw new WriteLogException($"{log.Path}: the namespace already has a write log");
        }
    }

    /// <summary>The namespace's options and zones as one zone state commit (the write log's header keeps it).</summary>
    internal byte[] Snapshot()
    {
        var kept = _store.Kept ?? KeptNamespaceOptions.From(Options, Geometry, Uuid);
        lock (_stateLock)
        {
            return ZoneStateFile.Snapshot(kept, _backstore.Length, _zones.Records, _zones.Extensions, WriteProtected);
        }
    }

    /// <summary>The first zone that is not Empty, or null.</summary>
    internal ZoneInfo? FirstNonEmptyZone()
    {
        lock (_stateLock)
        {
            for (uint zi = 0; IsZoned && zi < _zones.ZoneCount; zi++)
            {
                if (_zones.StateOf(zi) != ZoneState.Empty)
                {
                    return _zones.Snapshot(zi);
                }
            }
        }
        return null;
    }

    private void RecordData(WriteLogKind kind, ulong lba, uint blocks, ReadOnlySpan<byte> data, bool fua) =>
        _writeLog?.Record(kind, fua ? WriteLogFlags.Fua : WriteLogFlags.None, 0, lba, blocks, data);

    private void RecordZoneAction(ZoneSendAction action, ulong slba, bool selectAll, bool zsaso, ReadOnlySpan<byte> extension = default,
        NvmeStatus status = default) =>
        _writeLog?.Record(WriteLogKind.ZoneAction,
            (selectAll ? WriteLogFlags.SelectAll : WriteLogFlags.None) | (zsaso ? WriteLogFlags.Zsaso : WriteLogFlags.None),
            action, slba, 0, extension, status.Value);
}

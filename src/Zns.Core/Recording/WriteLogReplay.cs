using Zns.Core.Storage;
using Zns.Core.Zones;
using Zns.Nvme;

namespace Zns.Core.Recording;

/// <summary>A point of a write log to rebuild: after entry <see cref="Entry"/>, or after flush <see cref="Flush"/>.</summary>
public readonly record struct ReplayTarget(long? Entry, long? Flush)
{
    public override string ToString() => Entry is { } e ? $"entry {e}" : $"flush {Flush}";
}

/// <summary>
/// Rebuilds a namespace as a write log says it was at a point: a fresh namespace of the logged options, with each
/// entry up to that point applied through the namespace's own commands, in the log's order.
/// </summary>
public static class WriteLogReplay
{
    /// <summary>What a rebuild did.</summary>
    public sealed record Result(long LastEntry, long Flushes, string? Warning);

    /// <summary>
    /// The index of the last entry a target covers, checked against the good entries of the log: throws
    /// <see cref="WriteLogException"/> naming the problem when it lies past them. -1 stands for the start of the log
    /// (<c>--flush 0</c>).
    /// </summary>
    public static long Resolve(IReadOnlyList<WriteLogEntry> entries, ReplayTarget target, string? damage)
    {
        string end = damage is null ? "" : $" ({damage}; entries after it cannot be replayed)";
        if (target.Entry is { } index)
        {
            long last = entries.Count - 1;
            if (index < 0 || index > last)
            {
                throw new WriteLogException(last < 0 ? $"--to {index}: the log has no entries{end}" : $"--to {index}: the log's entries are 0..{last}{end}");
            }
            return index;
        }
        long n = target.Flush ?? throw new ArgumentException("no target", nameof(target));
        if (n == 0)
        {
            return -1;
        }
        long flushes = 0;
        foreach (var e in entries)
        {
            if (e.Kind == WriteLogKind.Flush && ++flushes == n)
            {
                return e.Index;
            }
        }
        throw new WriteLogException($"--flush {n}: the log has {flushes} flush{(flushes == 1 ? "" : "es")}{end}");
    }

    /// <summary>
    /// Applies the entries of <paramref name="reader"/> (positioned at the first) up to entry
    /// <paramref name="lastEntry"/> to <paramref name="ns"/>, which must have the log's geometry and every zone Empty.
    /// Flushes are applied only when <paramref name="applyFlushes"/> (they change nothing a replay keeps all of, and
    /// cost a sync each). Throws <see cref="WriteLogException"/> when an entry does not replay as it happened.
    /// </summary>
    public static long Apply(WriteLogReader reader, ZonedNamespace ns, long lastEntry, bool applyFlushes)
    {
        long flushes = 0;
        while (reader.TryReadNext(out var e, out var payload) && e.Index <= lastEntry)
        {
            NvmeStatus expected = e.Kind == WriteLogKind.ZoneAction && (e.Flags & WriteLogFlags.SelectAll) != 0 ? e.Status : NvmeStatus.Success;
            NvmeStatus status = ApplyOne(ns, in e, payload, applyFlushes);
            if (status.WithDnr() != expected.WithDnr())
            {
                throw new WriteLogException(
                    $"entry {e.Index} ({Describe(in e)}) replays with status {status}, it completed with {expected}: the namespace is not the one the log started from");
            }
            if (e.Kind == WriteLogKind.Flush)
            {
                flushes++;
            }
        }
        return flushes;
    }

    private static NvmeStatus ApplyOne(ZonedNamespace ns, in WriteLogEntry e, ReadOnlySpan<byte> payload, bool applyFlushes)
    {
        bool fua = (e.Flags & WriteLogFlags.Fua) != 0;
        switch (e.Kind)
        {
            case WriteLogKind.Write:
                return ns.Write(e.Lba, payload, fua);
            case WriteLogKind.Copy:
            {
                // A Copy range may be longer than one Write may carry (MSSRL above MDTS): written in pieces.
                int piece = ns.Geometry.MaxTransferBytes;
                ulong lba = e.Lba;
                for (int at = 0; at < payload.Length; at += piece)
                {
                    var part = payload.Slice(at, Math.Min(piece, payload.Length - at));
                    NvmeStatus s = ns.Write(lba, part);
                    if (!s.IsSuccess)
                    {
                        return s;
                    }
                    lba += (ulong)(part.Length >> ns.Geometry.BlockShift);
                }
                return NvmeStatus.Success;
            }
            case WriteLogKind.Append:
            {
                NvmeStatus s = ns.Append(ns.Geometry.ZoneStart(ns.Geometry.ZoneOf(e.Lba)), payload, out ulong alba, fua);
                return s.IsSuccess && alba != e.Lba ? NvmeStatus.InternalError : s;
            }
            case WriteLogKind.WriteZeroes:
                return ns.WriteZeroes(e.Lba, e.Blocks, fua);
            case WriteLogKind.Deallocate:
                return ns.Deallocate(e.Lba, e.Blocks);
            case WriteLogKind.ZoneAction:
                return ns.ZoneManagementSend(e.Lba, e.Action, (e.Flags & WriteLogFlags.SelectAll) != 0, payload, (e.Flags & WriteLogFlags.Zsaso) != 0);
            case WriteLogKind.Flush:
                return applyFlushes ? ns.Flush() : NvmeStatus.Success;
            default:
                return NvmeStatus.Success;
        }
    }

    /// <summary>An entry in one line: kind, LBA or zone, blocks, and what marks it.</summary>
    public static string Describe(in WriteLogEntry e) => e.Kind switch
    {
        WriteLogKind.Flush => $"flush {e.FlushOrdinal}",
        WriteLogKind.Full => "log full: nothing after this was recorded",
        WriteLogKind.PowerCut => "power cut: the log stopped here",
        WriteLogKind.ZoneAction => $"zone {e.Action}{((e.Flags & WriteLogFlags.SelectAll) != 0 ? " select-all" : $" lba {e.Lba}")}" +
                                   $"{((e.Flags & WriteLogFlags.Zsaso) != 0 ? " zrwa" : "")}" +
                                   $"{(e.Status.IsSuccess ? "" : $" (stopped with {e.Status})")}",
        _ => $"{e.Kind} lba {e.Lba} blocks {e.Blocks}{((e.Flags & WriteLogFlags.Fua) != 0 ? " fua" : "")}",
    };

    /// <summary>
    /// Rebuilds the backstore <paramref name="imagePath"/> and its zone state file as the namespace was after
    /// <paramref name="target"/>. <paramref name="crash"/>, when given, is applied after the last entry (a power cut
    /// by policy); flushes are then replayed so it knows what was durable. The image is written new: an existing
    /// file there is refused. Throws <see cref="WriteLogException"/> naming the problem.
    /// </summary>
    public static Result Rebuild(string logPath, string imagePath, ReplayTarget target, Action<ZonedNamespace>? crash = null)
    {
        List<WriteLogEntry> entries;
        string? damage;
        using (var scan = WriteLogReader.Open(logPath))
        {
            entries = scan.ReadAll();
            damage = scan.Damage;
        }
        long last = Resolve(entries, target, damage);
        if (File.Exists(imagePath) || File.Exists(ZoneStateFile.PathFor(imagePath)))
        {
            throw new WriteLogException($"--image {imagePath}: already exists; replay writes a new image: remove it (and {ZoneStateFile.PathFor(imagePath)}) first");
        }
        using var reader = WriteLogReader.Open(logPath);
        try
        {
            FileBackstore.Create(imagePath, reader.BackstoreLength, preallocate: false);
            var ns = ZonedNamespace.OpenFile(imagePath, reader.Kept.ToOptions(), StateMode.Persistent);
            long flushes;
            try
            {
                flushes = Apply(reader, ns, last, applyFlushes: crash is not null);
                crash?.Invoke(ns);
            }
            finally
            {
                // The zones stay as they were at the point (open zones open): serving the image power-cycles them.
                ns.Detach();
            }
            string? warning = damage is null ? null : $"{logPath}: {damage}; the entries before it are good";
            return new Result(last, flushes, warning);
        }
        catch
        {
            File.Delete(imagePath);
            File.Delete(ZoneStateFile.PathFor(imagePath));
            throw;
        }
    }
}

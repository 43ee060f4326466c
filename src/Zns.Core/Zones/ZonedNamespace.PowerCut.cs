using Zns.Nvme;

namespace Zns.Core.Zones;

/// <summary>
/// Durability tracking and the power cut: what a Flush, a FUA write or a durable zone action made durable, and
/// dropping the rest by a <see cref="PowerCutPolicy"/> (the rules are in docs/persistence.md).
/// </summary>
public sealed partial class ZonedNamespace
{
    // Zoned: each zone's durable write pointer and its unflushed write ends. Conventional: the flushed contents of
    // blocks written since. Exactly one of the two is set.
    private ZoneDurability? _durability;
    private ConventionalUndoLog? _undo;
    private readonly Lock _undoLock = new();

    // Conventional writes hold it shared from their undo capture until their data is in the backstore; a cut holds it
    // exclusively, so no write is half done (captured but not written) while the cut puts blocks back. Zoned writes
    // are held off by their zone locks instead.
    private readonly ReaderWriterLockSlim _cutLock = new(LockRecursionPolicy.NoRecursion);

    /// <summary>
    /// Where zone <paramref name="zone"/>'s write pointer would be after a power cut that keeps nothing: the write
    /// pointer at the last Flush, FUA write or durable zone action covering the zone.
    /// </summary>
    public ulong DurableWritePointer(uint zone)
    {
        if (_durability is null || zone >= Geometry.ZoneCount)
        {
            throw new ArgumentOutOfRangeException(nameof(zone), "not a zone of this (zoned) namespace");
        }
        lock (_zoneLocks[zone])
        {
            return _durability.Durable(zone);
        }
    }

    /// <summary>Conventional namespace: how many blocks hold data that a power cut may drop (0 for a zoned one).</summary>
    public int UnflushedBlockCount
    {
        get
        {
            if (_undo is null)
            {
                return 0;
            }
            lock (_undoLock)
            {
                return _undo.UnflushedCount;
            }
        }
    }

    /// <summary>Conventional namespace: how many blocks the undo area holds before a write makes everything durable.</summary>
    public int UndoCapacityBlocks => _undo?.Capacity ?? 0;

    /// <summary>
    /// Tests: smaller durability records (write ends per zone, conventional undo blocks) so their limits are reached
    /// with little I/O. Only on a namespace nothing was written to yet.
    /// </summary>
    internal void SetDurabilityLimits(int endsPerZone, int undoBlocks)
    {
        if (_durability is not null)
        {
            _durability = new ZoneDurability(Geometry, endsPerZone);
        }
        if (_undo is not null)
        {
            _undo = new ConventionalUndoLog(Geometry.BlockSize, undoBlocks);
        }
    }

    /// <summary>
    /// Cuts power: drops what was not durable as <paramref name="policy"/> says (choices drawn from
    /// <paramref name="random"/>, zone by zone in order), then applies the power cycle a restart applies (open zones
    /// become Closed, or Empty when nothing was written; Zone Random Write Areas are gone) and commits the zone state.
    /// Dropped blocks read as zeros (zones) or as their flushed contents (conventional). Waits for writes in flight.
    /// Throws <see cref="ArgumentException"/> for an invalid policy and <see cref="IOException"/> when the
    /// backstore or state file fails.
    /// </summary>
    public NamespacePowerCutReport CutPower(PowerCutPolicy policy, Random random)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(random);
        if (policy.Validate() is string problem)
        {
            throw new ArgumentException(problem, nameof(policy));
        }
        _writeLog?.StopAtPowerCut();
        var report = IsZoned ? CutZones(policy, random) : CutConventional(policy, random);
        Interlocked.Increment(ref _changes);
        Commit(force: true);
        return report;
    }

    private NamespacePowerCutReport CutZones(PowerCutPolicy policy, Random random)
    {
        var zones = new List<ZonePowerCut>();
        ulong dropped = 0, kept = 0;
        int taken = 0;
        try
        {
            for (; taken < _zoneLocks.Length; taken++)
            {
                Monitor.Enter(_zoneLocks[taken]);
            }
            for (uint zi = 0; zi < _zones.ZoneCount; zi++)
            {
                ulong wp, dataEnd, durable;
                ZoneState before, after;
                ulong keptWp;
                bool torn;
                lock (_stateLock)
                {
                    before = _zones.StateOf(zi);
                    wp = _zones.WritePointerOf(zi);
                    dataEnd = DataEnd(zi);
                    durable = _durability!.Durable(zi);
                    if (before is ZoneState.ReadOnly or ZoneState.Offline)
                    {
                        // The controller's own changes are committed when made; such a zone is kept as it is.
                        _durability.MarkDurable(zi, wp);
                        continue;
                    }
                    bool overflowed = _durability.Overflowed(zi);
                    keptWp = _durability.KeptWritePointer(zi, wp, policy, random, out torn);
                    _zones.PowerCut(zi, keptWp);
                    after = _zones.StateOf(zi);
                    _durability.MarkDurable(zi, keptWp);
                    if (dataEnd == keptWp && wp == durable)
                    {
                        continue;
                    }
                    zones.Add(new ZonePowerCut(zi, wp, durable, keptWp, dataEnd - keptWp, torn, overflowed && policy.Keep == PowerCutKeep.Random, before, after));
                }
                dropped += dataEnd - keptWp;
                kept += keptWp - Math.Min(keptWp, durable);
                if (dataEnd > keptWp && !TryZero(Geometry.ByteOffset(keptWp), Geometry.ByteOffset(dataEnd) - Geometry.ByteOffset(keptWp)))
                {
                    throw new IOException($"power cut: zeroing the dropped blocks of zone {zi} failed");
                }
            }
        }
        finally
        {
            while (taken > 0)
            {
                Monitor.Exit(_zoneLocks[--taken]);
            }
        }
        return new NamespacePowerCutReport(policy, zones, dropped, kept);
    }

    private NamespacePowerCutReport CutConventional(PowerCutPolicy policy, Random random)
    {
        ulong dropped = 0, kept = 0;
        _cutLock.EnterWriteLock();
        try
        {
            lock (_undoLock)
            {
                var undo = _undo!;
                for (int slot = 0; slot < undo.Count; slot++)
                {
                    var (lba, durableNow) = undo.Entry(slot);
                    if (durableNow)
                    {
                        continue;
                    }
                    bool keep = policy.Keep switch
                    {
                        PowerCutKeep.All => true,
                        PowerCutKeep.None => false,
                        _ => random.Next(2) == 1,
                    };
                    if (keep)
                    {
                        kept++;
                        continue;
                    }
                    dropped++;
                    if (!TryWrite(Geometry.ByteOffset(lba), undo.Saved(slot)))
                    {
                        throw new IOException($"power cut: restoring block {lba} failed");
                    }
                }
                undo.Clear();
            }
        }
        finally
        {
            _cutLock.ExitWriteLock();
        }
        return new NamespacePowerCutReport(policy, [], dropped, kept);
    }

    // ---------------------------------------------------------------- the hooks of the command paths

    // Flush: after the commit, every zone is durable at its write pointer (a write completing meanwhile may count as
    // flushed too: it was not completed before the Flush, so either outcome is allowed).
    private void MarkAllDurable()
    {
        if (_undo is not null)
        {
            lock (_undoLock)
            {
                _undo.Clear();
            }
            return;
        }
        for (uint zi = 0; zi < _zoneLocks.Length; zi++)
        {
            if (_durability!.IsDurableAt(zi, _zones.WritePointerOf(zi)))
            {
                continue;
            }
            lock (_zoneLocks[zi])
            {
                _durability.MarkDurable(zi, _zones.WritePointerOf(zi));
            }
        }
    }

    // A reopened namespace is durable at its last commit.
    private void MarkRestoredDurable()
    {
        for (uint zi = 0; _durability is not null && zi < _zoneLocks.Length; zi++)
        {
            _durability.MarkDurable(zi, _zones.WritePointerOf(zi));
        }
    }

    // A write completed and moved zone zi's write pointer. Caller holds the zone lock.
    private void RecordWrite(uint zi) => _durability!.Completed(zi, _zones.WritePointerOf(zi));

    // Zone zi is durable at its current write pointer (FUA, Finish, Reset, controller changes). Caller holds the zone lock.
    private void MarkZoneDurable(uint zi) => _durability!.MarkDurable(zi, _zones.WritePointerOf(zi));

    /// <summary>
    /// Conventional namespace: saves the flushed contents of the blocks a write is about to overwrite. False when
    /// the write is larger than the undo area (the caller makes it durable as it completes). When the area has no
    /// room left, everything is made durable first (an internal Flush). Caller holds <see cref="_cutLock"/> shared.
    /// </summary>
    private NvmeStatus CaptureUndo(ulong slba, uint nlb, out bool captured)
    {
        captured = false;
        var undo = _undo!;
        if (nlb > undo.Capacity)
        {
            return NvmeStatus.Success;
        }
        lock (_undoLock)
        {
            if (undo.Count + undo.NewSlotsFor(slba, nlb) > undo.Capacity)
            {
                try
                {
                    Commit(force: true);
                }
                catch (IOException)
                {
                    return NvmeStatus.WriteFault;
                }
                undo.Clear();
            }
            for (ulong lba = slba; lba < slba + nlb; lba++)
            {
                Span<byte> slot = undo.SlotToCapture(lba);
                if (!slot.IsEmpty && !TryRead(Geometry.ByteOffset(lba), slot))
                {
                    return NvmeStatus.WriteFault;
                }
            }
        }
        captured = true;
        return NvmeStatus.Success;
    }

    // Conventional: a write of these blocks went through (FUA, or too large to undo) and was committed.
    private void MarkBlocksDurable(ulong slba, uint nlb)
    {
        lock (_undoLock)
        {
            _undo!.MarkDurable(slba, nlb);
        }
    }
}

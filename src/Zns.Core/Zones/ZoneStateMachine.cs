using System.Diagnostics;
using Zns.Nvme;

namespace Zns.Core.Zones;

/// <summary>
/// The zone state machine of a zoned namespace: each zone's record (write pointer, state, attributes, descriptor
/// extension), the open and active counts, the ZRWA resources and QEMU's per-state lists. Every rule of a zone state
/// change lives here, with QEMU's statuses (its <c>nvme_zrm_*</c> and <c>nvme_check_zone_*</c> family).
/// </summary>
/// <remarks>
/// No I/O and no locks: the caller serializes every call (<see cref="ZonedNamespace"/> holds its state lock). The
/// one exception, documented on <see cref="CompleteWrite"/> and <see cref="WriteKeepsState"/>, is a write that
/// changes nothing but its zone's write pointer. Open and active counts change only in <see cref="SetState"/>.
/// </remarks>
internal sealed class ZoneStateMachine
{
    /// <summary>Identifiers of the per-state lists, for <see cref="WalkLists"/>.</summary>
    public const int ImplicitList = 0, ExplicitList = 1, ClosedList = 2;

    /// <summary>
    /// A success that needs neither a commit nor a notice (the zone already is as asked); controller-initiated
    /// changes return it.
    /// </summary>
    public static readonly NvmeStatus Unchanged = new(0x8000);

    private readonly ZoneGeometry _g;
    private readonly ZoneRecord[] _zones;
    private readonly byte[] _extensions;

    // Implicitly opened, explicitly opened and closed zones, each in the order they entered that state, oldest
    // first, as QEMU's lists: the auto-close victim is the head of the implicit list, and Select All walks these
    // lists (so which zones an Open All reaches before a limit matches). Intrusive lists: a state change allocates
    // nothing. A zone is on at most one list.
    private readonly int[] _next;
    private readonly int[] _prev;
    private readonly int[] _head = [-1, -1, -1];
    private readonly int[] _tail = [-1, -1, -1];

    // ZRWA: resources not allocated to a zone, and for each zone with a ZRWA the end of the data written into its
    // window (reads return data up to there, not just up to the write pointer).
    private uint _zrwaFree;
    private readonly ulong[] _zrwaDataEnd;

    private uint _openCount;
    private uint _activeCount;

    /// <summary>Every zone Empty, its write pointer at the zone start, no extension data.</summary>
    public ZoneStateMachine(ZoneGeometry geometry)
    {
        _g = geometry;
        _zones = new ZoneRecord[geometry.ZoneCount];
        _extensions = new byte[(long)geometry.ZoneCount * geometry.DescriptorExtensionSize];
        _next = new int[geometry.ZoneCount];
        _prev = new int[geometry.ZoneCount];
        _zrwaDataEnd = new ulong[geometry.ZrwaSupported ? geometry.ZoneCount : 0];
        _zrwaFree = geometry.ZrwaResources;
        for (uint i = 0; i < geometry.ZoneCount; i++)
        {
            _zones[i] = new ZoneRecord { WritePointer = geometry.ZoneStart(i), State = ZoneState.Empty };
            _next[i] = _prev[i] = -1;
        }
    }

    /// <summary>Number of zones.</summary>
    public uint ZoneCount => (uint)_zones.Length;

    /// <summary>Open zones (implicitly + explicitly).</summary>
    public uint OpenCount => _openCount;

    /// <summary>Active zones (open + closed).</summary>
    public uint ActiveCount => _activeCount;

    /// <summary>ZRWA resources not allocated to a zone.</summary>
    public uint FreeZrwaResources => _zrwaFree;

    /// <summary>Every zone record, in zone order (what a commit persists).</summary>
    public ReadOnlySpan<ZoneRecord> Records => _zones;

    /// <summary>Every zone's descriptor extension, zone after zone.</summary>
    public ReadOnlySpan<byte> Extensions => _extensions;

    /// <summary>Zone <paramref name="zi"/>'s state.</summary>
    public ZoneState StateOf(uint zi) => _zones[zi].State;

    /// <summary>Zone <paramref name="zi"/>'s write pointer.</summary>
    public ulong WritePointerOf(uint zi) => Volatile.Read(ref _zones[zi].WritePointer);

    /// <summary>A snapshot of zone <paramref name="zi"/>.</summary>
    public ZoneInfo Snapshot(uint zi)
    {
        var z = _zones[zi];
        return new ZoneInfo(zi, _g.ZoneStart(zi), _g.ZoneCapacityLbas, z.WritePointer, z.State, z.Attributes);
    }

    /// <summary>Zone <paramref name="zi"/>'s descriptor extension (empty when the namespace has none).</summary>
    public Span<byte> ExtensionOf(uint zi) =>
        _extensions.AsSpan((int)(zi * _g.DescriptorExtensionSize), _g.DescriptorExtensionSize);

    /// <summary>How many zones are in each state.</summary>
    public ZoneStateCounts CountZones()
    {
        Span<uint> n = stackalloc uint[16];
        foreach (var z in _zones)
        {
            n[(int)z.State]++;
        }
        return new ZoneStateCounts(n[1], n[2], n[3], n[4], n[0xE], n[0xD], n[0xF]);
    }

    // ---------------------------------------------------------------- power cycle

    /// <summary>
    /// Loads stored records. Reopening is a power cycle: QEMU's shutdown rule turns open zones into Closed, or
    /// Empty if nothing was written; a restart closes every Zone Random Write Area (data past the write pointer is
    /// not committed). Throws <see cref="InvalidDataException"/> for a record that cannot belong to this geometry.
    /// </summary>
    public void Restore(ReadOnlySpan<ZoneRecord> stored, ReadOnlySpan<byte> extensions)
    {
        extensions.CopyTo(_extensions);
        for (uint i = 0; i < _zones.Length; i++)
        {
            var r = stored[(int)i];
            ulong start = _g.ZoneStart(i);
            if (r.WritePointer < start || r.WritePointer > start + _g.ZoneCapacityLbas || !Enum.IsDefined(r.State))
            {
                throw new InvalidDataException($"zone state file: zone {i} has an invalid record (state {r.State}, wp {r.WritePointer})");
            }
            _zones[i] = new ZoneRecord { WritePointer = r.WritePointer, State = ZoneState.Empty, Attributes = r.Attributes & ~ZoneAttributes.ZrwaValid };
            ZoneState target = r.State switch
            {
                ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed => PowerCycleState(i),
                _ => r.State,
            };
            SetState(i, target);
        }
    }

    /// <summary>
    /// Clean shutdown, QEMU's <c>nvme_zoned_ns_shutdown</c>: closed, implicitly and explicitly opened zones in list
    /// order; each becomes Closed (put at the head of the closed list, keeping its ZRWA) or, without data or
    /// extension, Empty.
    /// </summary>
    public void Shutdown()
    {
        var order = new List<uint>();
        foreach (int list in (ReadOnlySpan<int>)[ClosedList, ImplicitList, ExplicitList])
        {
            for (int zi = _head[list]; zi >= 0; zi = _next[zi])
            {
                order.Add((uint)zi);
            }
        }
        foreach (uint zi in order)
        {
            ZoneState target = PowerCycleState(zi);
            if (target == ZoneState.Empty)
            {
                ReleaseZrwa(zi);
            }
            SetState(zi, target);
            if (target == ZoneState.Closed)
            {
                Unlink(ClosedList, zi);
                Link(ClosedList, zi, atHead: true);
            }
        }
    }

    /// <summary>
    /// A power cut: the write pointer goes back to <paramref name="writePointer"/> (what the cut kept), the Zone
    /// Random Write Area is gone as after a restart, and the zone goes through the power cycle: an open or Closed zone
    /// becomes Closed, or Empty without data or extension; a Full zone that lost data is no longer full and does the
    /// same, except that when Closed would pass the active limit it stays Full with Zone Finished by Controller set
    /// (a drive has no other state to put it in). Read Only, Offline and Empty zones stay as they are.
    /// </summary>
    public void PowerCut(uint zi, ulong writePointer)
    {
        ref var z = ref _zones[zi];
        ReleaseZrwa(zi);
        if (_g.ZrwaSupported)
        {
            _zrwaDataEnd[zi] = 0;
        }
        bool lowered = writePointer < z.WritePointer;
        Volatile.Write(ref z.WritePointer, writePointer);
        switch (z.State)
        {
            case ZoneState.ImplicitlyOpened:
            case ZoneState.ExplicitlyOpened:
            case ZoneState.Closed:
                SetState(zi, PowerCycleState(zi));
                break;
            case ZoneState.Full when lowered:
            {
                ZoneState target = PowerCycleState(zi);
                if (target == ZoneState.Closed && _g.MaxActive != 0 && _activeCount + 1 > _g.MaxActive)
                {
                    z.Attributes |= ZoneAttributes.FinishedByController;
                    break;
                }
                SetState(zi, target);
                break;
            }
        }
    }

    private ZoneState PowerCycleState(uint zone) =>
        _zones[zone].WritePointer != _g.ZoneStart(zone) || (_zones[zone].Attributes & ZoneAttributes.DescriptorExtensionValid) != 0
            ? ZoneState.Closed : ZoneState.Empty;

    // ---------------------------------------------------------------- checks (each one rule, QEMU's order)

    private static NvmeStatus CheckStateForWrite(ZoneState state) => state switch
    {
        ZoneState.Empty or ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed => NvmeStatus.Success,
        ZoneState.Full => NvmeStatus.ZoneIsFull,
        ZoneState.Offline => NvmeStatus.ZoneIsOffline,
        ZoneState.ReadOnly => NvmeStatus.ZoneIsReadOnly,
        _ => throw new UnreachableException(),
    };

    private static NvmeStatus CheckStateForRead(ZoneState state) =>
        state == ZoneState.Offline ? NvmeStatus.ZoneIsOffline : NvmeStatus.Success;

    /// <summary>Zone write rules for <paramref name="nlb"/> blocks at <paramref name="slba"/>: state, then write pointer, then the write boundary (zone start + capacity).</summary>
    public NvmeStatus CheckWrite(uint zi, ulong slba, uint nlb)
    {
        ref var z = ref _zones[zi];
        var status = CheckStateForWrite(z.State);
        if (!status.IsSuccess)
        {
            return status;
        }
        if ((z.Attributes & ZoneAttributes.ZrwaValid) != 0)
        {
            // Anywhere in the window: the write pointer up to twice the ZRWA size (QEMU's nvme_check_zone_write).
            if (slba < z.WritePointer || slba + nlb > z.WritePointer + 2 * _g.ZrwaSizeLbas)
            {
                return NvmeStatus.ZoneInvalidWrite;
            }
        }
        else if (slba != z.WritePointer)
        {
            return NvmeStatus.ZoneInvalidWrite;
        }
        if (slba + nlb > _g.ZoneStart(zi) + _g.ZoneCapacityLbas)
        {
            return NvmeStatus.ZoneBoundaryError;
        }
        return NvmeStatus.Success;
    }

    /// <summary>Zone read rules: no Offline zone in the range, and the range stays in its zone unless cross-zone reads are on.</summary>
    public NvmeStatus CheckRead(ulong slba, uint nlb)
    {
        ulong end = slba + nlb;
        uint zi = _g.ZoneOf(slba);
        var status = CheckStateForRead(_zones[zi].State);
        if (!status.IsSuccess || end <= _g.ZoneStart(zi) + _g.ZoneSizeLbas)
        {
            return status;
        }
        if (!_g.CrossRead)
        {
            return NvmeStatus.ZoneBoundaryError;
        }
        do
        {
            zi++;
            status = CheckStateForRead(_zones[zi].State);
        }
        while (status.IsSuccess && end > _g.ZoneStart(zi) + _g.ZoneSizeLbas);
        return status;
    }

    // ---------------------------------------------------------------- resource accounting (the one place counts change)

    /// <summary>
    /// Moves a zone to <paramref name="to"/>, keeping the open/active counts and the state lists in step. Callers
    /// have already checked the limits.
    /// </summary>
    private void SetState(uint zi, ZoneState to)
    {
        ref var z = ref _zones[zi];
        ZoneState from = z.State;
        if (from == to)
        {
            return;
        }
        if (IsOpen(from)) { _openCount--; }
        if (IsActive(from)) { _activeCount--; }
        if (ListOf(from) is int fromList) { Unlink(fromList, zi); }
        z.State = to;
        if (IsOpen(to)) { _openCount++; }
        if (IsActive(to)) { _activeCount++; }
        if (ListOf(to) is int toList) { Link(toList, zi); }
        Debug.Assert(_openCount <= _activeCount, "open zones are a subset of active zones");
        Debug.Assert(_g.MaxOpen == 0 || _openCount <= _g.MaxOpen, "open limit");
        Debug.Assert(_g.MaxActive == 0 || _activeCount <= _g.MaxActive, "active limit");
    }

    private static bool IsOpen(ZoneState s) => s is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened;

    /// <summary>Whether a zone in state <paramref name="s"/> holds an active resource (open or closed).</summary>
    public static bool IsActive(ZoneState s) => s is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed;

    private static int? ListOf(ZoneState s) => s switch
    {
        ZoneState.ImplicitlyOpened => ImplicitList,
        ZoneState.ExplicitlyOpened => ExplicitList,
        ZoneState.Closed => ClosedList,
        _ => null,
    };

    private void Link(int list, uint zi, bool atHead = false)
    {
        if (atHead && _head[list] >= 0)
        {
            _next[zi] = _head[list];
            _prev[zi] = -1;
            _prev[_head[list]] = (int)zi;
            _head[list] = (int)zi;
            return;
        }
        _prev[zi] = _tail[list];
        _next[zi] = -1;
        if (_tail[list] >= 0) { _next[_tail[list]] = (int)zi; } else { _head[list] = (int)zi; }
        _tail[list] = (int)zi;
    }

    private void Unlink(int list, uint zi)
    {
        int p = _prev[zi], n = _next[zi];
        if (p >= 0) { _next[p] = n; } else { _head[list] = n; }
        if (n >= 0) { _prev[n] = p; } else { _tail[list] = p; }
        _prev[zi] = _next[zi] = -1;
    }

    /// <summary>
    /// Applies <paramref name="op"/> to the zones of <paramref name="lists"/>, list after list, each in its order,
    /// stopping at the first failure. The next zone is taken before the current one is processed, as QEMU's
    /// <c>QTAILQ_FOREACH_SAFE</c> does, so zones that join a list meanwhile (auto-closed ones) join the walk.
    /// </summary>
    public NvmeStatus WalkLists(Func<uint, NvmeStatus> op, ReadOnlySpan<int> lists)
    {
        foreach (int list in lists)
        {
            for (int zi = _head[list]; zi >= 0;)
            {
                int next = _next[zi];
                var status = op((uint)zi);
                if (!status.IsSuccess)
                {
                    return status;
                }
                zi = next;
            }
        }
        return NvmeStatus.Success;
    }

    /// <summary>The zones of <paramref name="list"/> in its order (for tests and diagnostics).</summary>
    public List<uint> ListOrder(int list)
    {
        var zones = new List<uint>();
        for (int zi = _head[list]; zi >= 0; zi = _next[zi])
        {
            zones.Add((uint)zi);
        }
        return zones;
    }

    private NvmeStatus CheckResources(uint addActive, uint addOpen, uint addZrwa = 0)
    {
        if (addZrwa > _zrwaFree)
        {
            if (_g.MaxActive != 0 && _activeCount + addActive > _g.MaxActive) { return NvmeStatus.TooManyActiveZones; }
            if (_g.MaxOpen != 0 && _openCount + addOpen > _g.MaxOpen) { return NvmeStatus.TooManyOpenZones; }
            return NvmeStatus.ZrwaResourcesUnavailable;
        }
        if (_g.MaxActive != 0 && _activeCount + addActive > _g.MaxActive)
        {
            return NvmeStatus.TooManyActiveZones;
        }
        if (_g.MaxOpen != 0 && _openCount + addOpen > _g.MaxOpen)
        {
            return NvmeStatus.TooManyOpenZones;
        }
        return NvmeStatus.Success;
    }

    // QEMU's auto transition: at the open limit, close the oldest implicitly opened zone to make room.
    private void AutoClose()
    {
        if (_g.AutoTransition && _g.MaxOpen != 0 && _openCount == _g.MaxOpen && _head[ImplicitList] >= 0)
        {
            SetState((uint)_head[ImplicitList], ZoneState.Closed);
        }
    }

    // ---------------------------------------------------------------- transitions

    /// <summary>
    /// Open for a write (implicit) or for Open Zone (explicit), with a ZRWA allocated when <paramref name="zrwa"/>
    /// (Open with ZSASO).
    /// </summary>
    public NvmeStatus Open(uint zi, bool implicitly, bool zrwa = false)
    {
        ZoneState state = _zones[zi].State;
        // A zone that already has a ZRWA keeps it and needs no second resource.
        uint addZrwa = zrwa && !HasZrwa(zi) ? 1u : 0u;
        switch (state)
        {
            case ZoneState.Empty:
            case ZoneState.Closed:
            {
                AutoClose();
                var status = CheckResources(state == ZoneState.Empty ? 1u : 0u, 1, addZrwa);
                if (!status.IsSuccess)
                {
                    return status;
                }
                SetState(zi, implicitly ? ZoneState.ImplicitlyOpened : ZoneState.ExplicitlyOpened);
                break;
            }
            case ZoneState.ImplicitlyOpened:
            case ZoneState.ExplicitlyOpened:
            {
                var status = CheckResources(0, 0, addZrwa);
                if (!status.IsSuccess)
                {
                    return status;
                }
                if (!implicitly)
                {
                    SetState(zi, ZoneState.ExplicitlyOpened);
                }
                break;
            }
            default:
                return NvmeStatus.InvalidZoneStateTransition;
        }
        if (addZrwa != 0)
        {
            _zrwaFree--;
            _zones[zi].Attributes |= ZoneAttributes.ZrwaValid;
            _zrwaDataEnd[zi] = _zones[zi].WritePointer;
        }
        return NvmeStatus.Success;
    }

    /// <summary>
    /// Open Zone with ZSASO (QEMU's nvme_open_zone): ZRWA support first, then a write pointer on the flush
    /// granularity (else ZRWA Resources Unavailable), then the ordinary open with the resource.
    /// </summary>
    public NvmeStatus OpenWithZrwa(uint zi)
    {
        if (!_g.ZrwaSupported)
        {
            return NvmeStatus.InvalidZoneOperation;
        }
        if (_zones[zi].WritePointer % _g.ZrwaFlushGranularityLbas != 0)
        {
            return NvmeStatus.ZrwaResourcesUnavailable;
        }
        return Open(zi, implicitly: false, zrwa: true);
    }

    /// <summary>Whether zone <paramref name="zi"/> has a Zone Random Write Area.</summary>
    public bool HasZrwa(uint zi) => (_zones[zi].Attributes & ZoneAttributes.ZrwaValid) != 0;

    /// <summary>
    /// Where a zone's readable data ends: the write pointer, or past it what was written into the ZRWA window. A
    /// zone finished while it had a ZRWA keeps its window data readable until reset.
    /// </summary>
    public ulong DataEnd(uint zi)
    {
        ulong wp = Volatile.Read(ref _zones[zi].WritePointer);
        return _g.ZrwaSupported ? Math.Max(wp, _zrwaDataEnd[zi]) : wp;
    }

    private void ReleaseZrwa(uint zi)
    {
        if (HasZrwa(zi))
        {
            _zones[zi].Attributes &= ~ZoneAttributes.ZrwaValid;
            _zrwaFree++;
        }
    }

    /// <summary>
    /// Whether a write of <paramref name="nlb"/> blocks at <paramref name="slba"/> leaves everything but the zone's
    /// write pointer as it is: the zone is already open, has no ZRWA, and the write ends before the zone capacity
    /// (so no open, no auto-close, no finish, no list or count change).
    /// </summary>
    /// <remarks>
    /// Such a write needs only its zone's lock, not the caller's state lock: a zone's write pointer and ZRWA change
    /// only under its zone lock, and the one change another zone's command makes to it without that lock (an
    /// auto-close, Implicitly Opened → Closed) changes no write rule and not the write pointer, so the outcome is
    /// the one of the locked path with the auto-close ordered after the check.
    /// </remarks>
    public bool WriteKeepsState(uint zi, ulong slba, uint nlb)
    {
        ref var z = ref _zones[zi];
        return z.State is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened
            && (z.Attributes & ZoneAttributes.ZrwaValid) == 0
            && slba + nlb < _g.ZoneStart(zi) + _g.ZoneCapacityLbas;
    }

    /// <summary>
    /// After the data of a write is in the backstore: advance the write pointer, or for a zone with a ZRWA, flush
    /// implicitly when the write ended past the first ZRWAS blocks of the window, rounded up to the flush
    /// granularity (QEMU's nvme_zoned_zrwa_implicit_flush). The write pointer is published with a release store so
    /// a reader that sees it also sees the data below it.
    /// </summary>
    public void CompleteWrite(uint zi, ulong slba, uint nlb)
    {
        if (!HasZrwa(zi))
        {
            AdvanceWritePointer(zi, nlb);
            return;
        }
        ulong end = slba + nlb;
        _zrwaDataEnd[zi] = Math.Max(_zrwaDataEnd[zi], end);
        ulong windowLast = _zones[zi].WritePointer + _g.ZrwaSizeLbas - 1;
        ulong last = end - 1;
        if (last > windowLast)
        {
            ulong fg = _g.ZrwaFlushGranularityLbas;
            AdvanceWritePointer(zi, (last - windowLast + fg - 1) / fg * fg);
        }
    }

    /// <summary>ZSA 11h: commit the window up to and including ELBA (QEMU's nvme_zone_mgmt_send_zrwa_flush).</summary>
    public NvmeStatus FlushZrwa(uint zi, ulong elba)
    {
        if (!_g.ZrwaSupported)
        {
            return NvmeStatus.InvalidZoneOperation;
        }
        if (!HasZrwa(zi))
        {
            return NvmeStatus.InvalidField;
        }
        ulong wp = _zones[zi].WritePointer;
        if (elba < wp || elba > wp + _g.ZrwaSizeLbas)
        {
            return NvmeStatus.ZoneBoundaryError;
        }
        ulong nlb = elba - wp + 1;
        if (nlb % _g.ZrwaFlushGranularityLbas != 0)
        {
            return NvmeStatus.InvalidField;
        }
        var status = Open(zi, implicitly: true);
        if (!status.IsSuccess)
        {
            return status;
        }
        AdvanceWritePointer(zi, nlb);
        return NvmeStatus.Success;
    }

    private void AdvanceWritePointer(uint zi, ulong nlb)
    {
        ref var z = ref _zones[zi];
        ulong boundary = _g.ZoneStart(zi) + _g.ZoneCapacityLbas;
        // A ZRWA flush rounded up to the granularity may reach past the capacity; the zone is then full.
        ulong wp = Math.Min(z.WritePointer + nlb, boundary);
        Volatile.Write(ref z.WritePointer, wp);
        if (wp == boundary)
        {
            Finish(zi);
        }
    }

    /// <summary>Close Zone.</summary>
    public NvmeStatus Close(uint zi)
    {
        switch (_zones[zi].State)
        {
            case ZoneState.ImplicitlyOpened:
            case ZoneState.ExplicitlyOpened:
                SetState(zi, ZoneState.Closed);
                return NvmeStatus.Success;
            case ZoneState.Closed:
                return NvmeStatus.Success;
            default:
                return NvmeStatus.InvalidZoneStateTransition;
        }
    }

    /// <summary>Finish Zone. It needs no resources (QEMU does not check): it only releases them.</summary>
    public NvmeStatus Finish(uint zi)
    {
        switch (_zones[zi].State)
        {
            case ZoneState.Full:
                return NvmeStatus.Success;
            case ZoneState.Empty:
            case ZoneState.ImplicitlyOpened:
            case ZoneState.ExplicitlyOpened:
            case ZoneState.Closed:
                // The write pointer stays where the data ends (window data of a ZRWA included), so reads past it
                // keep returning zeros.
                // The write pointer stays where QEMU keeps it (Zone Append's ALBA on the full zone shows it).
                ReleaseZrwa(zi);
                SetState(zi, ZoneState.Full);
                _zones[zi].Attributes &= ~ZoneAttributes.FinishRecommended; // a Full zone has nothing left to finish
                return NvmeStatus.Success;
            default:
                return NvmeStatus.InvalidZoneStateTransition;
        }
    }

    /// <summary>
    /// Reset Zone: back to Empty, write pointer at the zone start, attributes and extension cleared.
    /// <paramref name="releasedEnd"/> is where the zone's data ended (the caller releases the blocks below it).
    /// </summary>
    public NvmeStatus Reset(uint zi, out ulong releasedEnd)
    {
        ref var z = ref _zones[zi];
        releasedEnd = 0;
        switch (z.State)
        {
            case ZoneState.Empty:
                return NvmeStatus.Success;
            case ZoneState.ImplicitlyOpened:
            case ZoneState.ExplicitlyOpened:
            case ZoneState.Closed:
            case ZoneState.Full:
                releasedEnd = DataEnd(zi);
                ReleaseZrwa(zi);
                if (_g.ZrwaSupported)
                {
                    _zrwaDataEnd[zi] = 0;
                }
                SetState(zi, ZoneState.Empty);
                Volatile.Write(ref z.WritePointer, _g.ZoneStart(zi));
                z.Attributes = ZoneAttributes.None;
                ExtensionOf(zi).Clear();
                return NvmeStatus.Success;
            default:
                return NvmeStatus.InvalidZoneStateTransition;
        }
    }

    /// <summary>Offline Zone (host): Read Only zones only.</summary>
    public NvmeStatus Offline(uint zi)
    {
        switch (_zones[zi].State)
        {
            case ZoneState.ReadOnly:
                SetState(zi, ZoneState.Offline);
                return NvmeStatus.Success;
            case ZoneState.Offline:
                return NvmeStatus.Success;
            default:
                return NvmeStatus.InvalidZoneStateTransition;
        }
    }

    /// <summary>Set Zone Descriptor Extension: an Empty zone takes the data and becomes Closed (an active resource).</summary>
    public NvmeStatus SetDescriptorExtension(uint zi, ReadOnlySpan<byte> extension)
    {
        if (_zones[zi].State != ZoneState.Empty)
        {
            return NvmeStatus.InvalidZoneStateTransition;
        }
        var status = CheckResources(1, 0);
        if (!status.IsSuccess)
        {
            return status;
        }
        extension.CopyTo(ExtensionOf(zi));
        _zones[zi].Attributes |= ZoneAttributes.DescriptorExtensionValid;
        SetState(zi, ZoneState.Closed);
        return NvmeStatus.Success;
    }

    // ---------------------------------------------------------------- changes the controller makes on its own

    /// <summary>The controller makes a zone Read Only (from any state but Offline).</summary>
    public NvmeStatus MakeReadOnly(uint zi) =>
        _zones[zi].State == ZoneState.Offline ? NvmeStatus.InvalidZoneStateTransition : Move(zi, ZoneState.ReadOnly);

    /// <summary>The controller takes a zone Offline (from any state).</summary>
    public NvmeStatus MakeOffline(uint zi) => Move(zi, ZoneState.Offline);

    private NvmeStatus Move(uint zi, ZoneState to)
    {
        if (_zones[zi].State == to)
        {
            return Unchanged;
        }
        SetState(zi, to);
        return NvmeStatus.Success;
    }

    /// <summary>
    /// A Read Only or Offline zone comes back Empty (write pointer at the zone start, attributes and extension
    /// cleared); <paramref name="releasedEnd"/> is where its data ended.
    /// </summary>
    public NvmeStatus Repair(uint zi, out ulong releasedEnd)
    {
        ref var z = ref _zones[zi];
        releasedEnd = 0;
        if (z.State is not (ZoneState.ReadOnly or ZoneState.Offline))
        {
            return NvmeStatus.InvalidZoneStateTransition;
        }
        releasedEnd = z.WritePointer;
        SetState(zi, ZoneState.Empty);
        Volatile.Write(ref z.WritePointer, _g.ZoneStart(zi));
        z.Attributes = ZoneAttributes.None;
        ExtensionOf(zi).Clear();
        return NvmeStatus.Success;
    }

    /// <summary>
    /// Sets Finish Zone Recommended (active zones only) or Reset Zone Recommended (zones that hold data or are
    /// active: Implicitly/Explicitly Opened, Closed, Full). A bit that is already set gives <see cref="Unchanged"/>.
    /// </summary>
    public NvmeStatus SetRecommendation(uint zi, ZoneAttributes attribute)
    {
        ref var z = ref _zones[zi];
        bool allowed = attribute switch
        {
            ZoneAttributes.FinishRecommended => IsActive(z.State),
            ZoneAttributes.ResetRecommended => IsActive(z.State) || z.State == ZoneState.Full,
            _ => false,
        };
        if (!allowed)
        {
            return attribute is ZoneAttributes.FinishRecommended or ZoneAttributes.ResetRecommended
                ? NvmeStatus.InvalidZoneStateTransition : NvmeStatus.InvalidField;
        }
        if ((z.Attributes & attribute) != 0)
        {
            return Unchanged;
        }
        z.Attributes |= attribute;
        return NvmeStatus.Success;
    }

    /// <summary>Clears Finish/Reset Zone Recommended bits.</summary>
    public void ClearRecommendation(uint zi, ZoneAttributes attributes) => _zones[zi].Attributes &= ~attributes;

    /// <summary>
    /// The controller finishes a zone (Empty, open or Closed → Full) and sets Zone Finished by Controller; a Full
    /// zone gives <see cref="Unchanged"/>.
    /// </summary>
    public NvmeStatus FinishByController(uint zi)
    {
        ref var z = ref _zones[zi];
        if (z.State is not (ZoneState.Empty or ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed))
        {
            return z.State == ZoneState.Full ? Unchanged : NvmeStatus.InvalidZoneStateTransition;
        }
        var status = Finish(zi);
        if (status.IsSuccess)
        {
            z.Attributes |= ZoneAttributes.FinishedByController;
        }
        return status;
    }
}

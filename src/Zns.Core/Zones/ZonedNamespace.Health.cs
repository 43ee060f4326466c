using Zns.Core.Nvme;

namespace Zns.Core.Zones;

/// <summary>
/// Changes the controller makes to zones on its own (NVMe ZNS §2.1.x): a zone turning Read Only or Offline, the
/// Finish/Reset Zone Recommended attributes, and Zone Finished by Controller. Each one is committed to the zone state
/// file at once (it survives a restart like any other zone state) and raised through
/// <see cref="ZoneDescriptorChanged"/>, which the controller layer turns into Changed Zone List entries and the Zone
/// Descriptor Changed event.
/// </summary>
public sealed partial class ZonedNamespace
{
    /// <summary>A zone's descriptor changed without a host command: the argument is the zone index.</summary>
    public event Action<uint>? ZoneDescriptorChanged;

    /// <summary>Copies every zone into <paramref name="destination"/> (at least <see cref="ZoneGeometry.ZoneCount"/> long) under one lock.</summary>
    public void CopyZones(Span<ZoneInfo> destination)
    {
        lock (_stateLock)
        {
            for (uint i = 0; i < _zones.Length; i++)
            {
                var z = _zones[i];
                destination[(int)i] = new ZoneInfo(i, Geometry.ZoneStart(i), Geometry.ZoneCapacityLbas, z.WritePointer, z.State, z.Attributes);
            }
        }
    }

    /// <summary>
    /// The controller makes a zone Read Only (ZSRO; from any state but Offline). Its open and active resources are
    /// released; reads keep working, writes fail with Zone Is Read Only. Only <see cref="RepairZone"/> undoes it.
    /// </summary>
    public NvmeStatus MakeZoneReadOnly(uint zone) => ControllerChange(zone, zi => _zones[zi].State switch
    {
        ZoneState.Offline => NvmeStatus.InvalidZoneStateTransition,
        _ => Move(zi, ZoneState.ReadOnly),
    });

    /// <summary>The controller takes a zone Offline (ZSO; from any state): every access fails with Zone Is Offline.</summary>
    public NvmeStatus MakeZoneOffline(uint zone) => ControllerChange(zone, zi => Move(zi, ZoneState.Offline));

    /// <summary>
    /// Brings a Read Only or Offline zone back as Empty (write pointer at the zone start, attributes cleared, data
    /// released), as a replaced zone would be. Invalid Zone State Transition for any other state.
    /// </summary>
    public NvmeStatus RepairZone(uint zone)
    {
        if (!IsZoned || zone >= _zones.Length)
        {
            return NvmeStatus.InvalidField;
        }
        ulong end;
        lock (_zoneLocks[zone])
        {
            lock (_stateLock)
            {
                ref var z = ref _zones[zone];
                if (z.State is not (ZoneState.ReadOnly or ZoneState.Offline))
                {
                    return NvmeStatus.InvalidZoneStateTransition;
                }
                end = z.WritePointer;
                SetState(zone, ZoneState.Empty);
                z.WritePointer = Geometry.ZoneStart(zone);
                z.Attributes = ZoneAttributes.None;
                ExtensionOf(zone).Clear();
            }
            // Committed before the blocks are released, as a Zone Reset is.
            var status = CommitNow();
            if (status.IsSuccess && end > Geometry.ZoneStart(zone) &&
                !TryZero(Geometry.ByteOffset(Geometry.ZoneStart(zone)), Geometry.ByteOffset(end) - Geometry.ByteOffset(Geometry.ZoneStart(zone))))
            {
                status = NvmeStatus.InternalError;
            }
            if (!status.IsSuccess)
            {
                return status;
            }
        }
        ZoneDescriptorChanged?.Invoke(zone);
        return NvmeStatus.Success;
    }

    /// <summary>
    /// Sets Finish Zone Recommended (active zones only) or Reset Zone Recommended (zones that hold data or are
    /// active: Implicitly/Explicitly Opened, Closed, Full). Setting a bit that is already set changes nothing.
    /// </summary>
    public NvmeStatus SetZoneRecommendation(uint zone, ZoneAttributes attribute) => ControllerChange(zone, zi =>
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
    });

    /// <summary>Clears Finish/Reset Zone Recommended (a recommendation withdrawn); not a descriptor change notice.</summary>
    public NvmeStatus ClearZoneRecommendation(uint zone, ZoneAttributes attributes)
    {
        if (!IsZoned || zone >= _zones.Length || (attributes & ~(ZoneAttributes.FinishRecommended | ZoneAttributes.ResetRecommended)) != 0)
        {
            return NvmeStatus.InvalidField;
        }
        lock (_stateLock)
        {
            _zones[zone].Attributes &= ~attributes;
        }
        return CommitNow();
    }

    /// <summary>
    /// The controller finishes a zone (Empty, open or Closed → Full) and sets Zone Finished by Controller, as it may
    /// once the Finish Recommended Limit has passed.
    /// </summary>
    public NvmeStatus FinishZoneByController(uint zone) => ControllerChange(zone, zi =>
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
    });

    // A success that needs neither a commit nor a notice (the zone already is as asked).
    private static readonly NvmeStatus Unchanged = new(0x8000);

    private NvmeStatus Move(uint zi, ZoneState to)
    {
        if (_zones[zi].State == to)
        {
            return Unchanged;
        }
        SetState(zi, to);
        return NvmeStatus.Success;
    }

    private NvmeStatus ControllerChange(uint zone, Func<uint, NvmeStatus> change)
    {
        if (!IsZoned || zone >= _zones.Length)
        {
            return NvmeStatus.InvalidField;
        }
        NvmeStatus status;
        lock (_zoneLocks[zone])
        {
            lock (_stateLock)
            {
                status = change(zone);
            }
        }
        if (status == Unchanged)
        {
            return NvmeStatus.Success;
        }
        if (!status.IsSuccess)
        {
            return status;
        }
        status = CommitNow();
        ZoneDescriptorChanged?.Invoke(zone);
        return status;
    }

    private NvmeStatus CommitNow()
    {
        Interlocked.Increment(ref _changes);
        try
        {
            Commit(force: false);
            return NvmeStatus.Success;
        }
        catch (IOException)
        {
            return NvmeStatus.InternalError;
        }
    }
}

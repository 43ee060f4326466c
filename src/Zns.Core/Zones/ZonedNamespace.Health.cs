using Zns.Nvme;

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
            for (uint i = 0; i < _zones.ZoneCount; i++)
            {
                destination[(int)i] = _zones.Snapshot(i);
            }
        }
    }

    /// <summary>
    /// The controller makes a zone Read Only (ZSRO; from any state but Offline). Its open and active resources are
    /// released; reads keep working, writes fail with Zone Is Read Only. Only <see cref="RepairZone"/> undoes it.
    /// </summary>
    public NvmeStatus MakeZoneReadOnly(uint zone) => ControllerChange(zone, _zones.MakeReadOnly);

    /// <summary>The controller takes a zone Offline (ZSO; from any state): every access fails with Zone Is Offline.</summary>
    public NvmeStatus MakeZoneOffline(uint zone) => ControllerChange(zone, _zones.MakeOffline);

    /// <summary>
    /// Brings a Read Only or Offline zone back as Empty (write pointer at the zone start, attributes cleared, data
    /// released), as a replaced zone would be. Invalid Zone State Transition for any other state.
    /// </summary>
    public NvmeStatus RepairZone(uint zone)
    {
        if (!IsZoned || zone >= _zones.ZoneCount)
        {
            return NvmeStatus.InvalidField;
        }
        ulong end;
        lock (_zoneLocks[zone])
        {
            lock (_stateLock)
            {
                var repaired = _zones.Repair(zone, out end);
                if (!repaired.IsSuccess)
                {
                    return repaired;
                }
                MarkZoneDurable(zone);
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
    public NvmeStatus SetZoneRecommendation(uint zone, ZoneAttributes attribute) =>
        ControllerChange(zone, zi => _zones.SetRecommendation(zi, attribute));

    /// <summary>Clears Finish/Reset Zone Recommended (a recommendation withdrawn); not a descriptor change notice.</summary>
    public NvmeStatus ClearZoneRecommendation(uint zone, ZoneAttributes attributes)
    {
        if (!IsZoned || zone >= _zones.ZoneCount || (attributes & ~(ZoneAttributes.FinishRecommended | ZoneAttributes.ResetRecommended)) != 0)
        {
            return NvmeStatus.InvalidField;
        }
        lock (_stateLock)
        {
            _zones.ClearRecommendation(zone, attributes);
        }
        return CommitNow();
    }

    /// <summary>
    /// The controller finishes a zone (Empty, open or Closed → Full) and sets Zone Finished by Controller, as it may
    /// once the Finish Recommended Limit has passed.
    /// </summary>
    public NvmeStatus FinishZoneByController(uint zone) => ControllerChange(zone, _zones.FinishByController);

    private NvmeStatus ControllerChange(uint zone, Func<uint, NvmeStatus> change)
    {
        if (!IsZoned || zone >= _zones.ZoneCount)
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
            // Committed below: a controller change (and the zone's data under it) is durable when made.
            if (status.IsSuccess && status != ZoneStateMachine.Unchanged)
            {
                MarkZoneDurable(zone);
            }
        }
        if (status == ZoneStateMachine.Unchanged)
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

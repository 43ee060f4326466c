namespace Zns.Core.Zones;

/// <summary>One zone's record: what the zone state file persists for it.</summary>
internal struct ZoneRecord
{
    public ulong WritePointer;
    public ZoneState State;
    public ZoneAttributes Attributes;
}

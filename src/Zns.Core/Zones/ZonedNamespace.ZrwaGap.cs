namespace Zns.Core.Zones;

public sealed partial class ZonedNamespace
{
    /// <summary>
    /// A write into a Zone Random Write Area may start above everything written so far, leaving unwritten blocks
    /// below it that reads then take from the backstore. A Zone Reset only discards blocks (a RAM backstore keeps
    /// their old bytes), so those blocks are zeroed first: a host never reads data from before the reset. Caller
    /// holds the zone's lock.
    /// </summary>
    private bool ZeroZrwaGap(uint zi, ulong slba)
    {
        if (!HasZrwa(zi))
        {
            return true;
        }
        ulong dataEnd;
        lock (_stateLock)
        {
            dataEnd = DataEnd(zi);
        }
        return slba <= dataEnd
            || (TryZero(Geometry.ByteOffset(dataEnd), Geometry.ByteOffset(slba) - Geometry.ByteOffset(dataEnd))
                && WriteUnwrittenMetadata(dataEnd, slba - dataEnd));
    }
}

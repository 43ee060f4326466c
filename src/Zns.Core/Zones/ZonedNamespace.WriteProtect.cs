namespace Zns.Core.Zones;

/// <summary>
/// The namespace's write protection (a drive gone read-only at the end of its life), kept in the zone state file so
/// that it survives a restart as the rest of the device's state does. The zone core only stores it; the controller
/// layer answers host commands with Namespace is Write Protected and reports it in Identify.
/// </summary>
public sealed partial class ZonedNamespace
{
    private volatile bool _writeProtected;
    private readonly Lock _writeProtectLock = new();

    /// <summary>Whether the namespace is write protected.</summary>
    public bool WriteProtected => _writeProtected;

    /// <summary>
    /// Sets or lifts write protection and commits it to the zone state file (file-backed namespaces). Returns false,
    /// committing nothing, when it already had that value.
    /// </summary>
    public bool SetWriteProtected(bool writeProtected)
    {
        lock (_writeProtectLock)
        {
            if (_writeProtected == writeProtected)
            {
                return false;
            }
            _writeProtected = writeProtected;
        }
        // The commit captures the value current then, so of two changes racing the later one is what stays stored.
        Interlocked.Increment(ref _changes);
        Commit(force: true);
        return true;
    }
}

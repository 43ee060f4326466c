namespace Zns.Target.Controller;

/// <summary>Namespace write protection on the controller's own account (a drive going read-only at end of life).</summary>
public sealed partial class NvmeSubsystem
{
    /// <summary>
    /// Write-protects namespace <paramref name="nsid"/> or lifts the protection. A change sets Identify NSATTR bit 0,
    /// makes commands that would modify the namespace complete with Namespace is Write Protected, and is announced
    /// through <see cref="NotifyNamespaceChanged"/> (the Linux host then re-reads Identify and sets the disk
    /// read-only or writable). A file-backed namespace keeps the state in its zone state file, so it survives a
    /// restart. Returns false when the namespace was already in that state (nothing is announced).
    /// Throws <see cref="ArgumentOutOfRangeException"/> for an unknown NSID.
    /// </summary>
    public bool SetWriteProtected(uint nsid, bool writeProtected)
    {
        NamespaceInfo info = GetNamespace(nsid) ?? throw new ArgumentOutOfRangeException(nameof(nsid), nsid, "no such namespace");
        if (!info.Namespace.SetWriteProtected(writeProtected))
        {
            return false;
        }
        NotifyNamespaceChanged(nsid);
        return true;
    }

    /// <summary>Whether namespace <paramref name="nsid"/> is write protected now.</summary>
    public bool IsWriteProtected(uint nsid) =>
        (GetNamespace(nsid) ?? throw new ArgumentOutOfRangeException(nameof(nsid), nsid, "no such namespace")).WriteProtected;
}

using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Nvme.Layouts;

namespace Zns.Target.Controller;

/// <summary>
/// Host Behavior Support (Set/Get Features FID 16h) and the cross-namespace Copy it enables. The host writes the
/// 512-byte structure as a whole and reads it back as written, as QEMU keeps it (no field is refused); of its
/// fields only CDFE changes what this controller does: its bits 2 and 3 enable Copy descriptor formats 2h and 3h.
/// ACRE, ETDAS and LBAFEE are kept but have no effect (no Command Retry Delay, telemetry or extended LBA formats).
/// </summary>
internal sealed partial class NvmeController : ICopySourceNamespaces
{
    private readonly byte[] _hostBehavior = new byte[HostBehaviorLayout.Size];

    /// <summary>Copy descriptor formats this host may use now: 0h and 1h always, 2h and 3h as CDFE enables them.</summary>
    internal ushort EnabledCopyFormats
    {
        get
        {
            lock (_lock)
            {
                return (ushort)(CopyContext.AlwaysEnabledFormats | (HostBehaviorLayout.Cdfe(_hostBehavior) & 0xC));
            }
        }
    }

    internal void SetHostBehavior(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            data[..HostBehaviorLayout.Size].CopyTo(_hostBehavior);
        }
    }

    internal void GetHostBehavior(Span<byte> data)
    {
        lock (_lock)
        {
            _hostBehavior.CopyTo(data);
        }
    }

    // Features return to their defaults with the controller (CC.EN cleared); called under _lock or from the constructor.
    private void ResetHostBehavior() => Array.Clear(_hostBehavior);

    /// <summary>A Copy source NSID, resolved as QEMU's nvme_do_copy does for a format 2h/3h entry.</summary>
    public NvmeStatus Resolve(uint nsid, out ZonedNamespace? source)
    {
        source = null;
        if (nsid == 0 || nsid > NvmeSubsystem.MaxNamespaces)
        {
            return NvmeStatus.InvalidNamespace.WithDnr(); // also FFFFFFFFh (broadcast)
        }
        if (AttachedNamespace(nsid) is not { } info)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        source = info.Namespace;
        return NvmeStatus.Success;
    }
}

using Zns.Nvme;

namespace Zns.Core.Zones;

/// <summary>
/// The namespaces Copy's source range entries of format 2h/3h may name by NSID: those of the controller the command
/// came through. Implemented by the controller layer, which knows which namespaces this host has attached.
/// </summary>
public interface ICopySourceNamespaces
{
    /// <summary>
    /// The namespace <paramref name="nsid"/> names, or QEMU's status for it: Invalid Namespace or Format for 0,
    /// FFFFFFFFh and NSIDs above NN; Invalid Field for an NSID without an attached namespace (both with DNR).
    /// </summary>
    NvmeStatus Resolve(uint nsid, out ZonedNamespace? source);
}

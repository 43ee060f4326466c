using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Target.Controller;

internal sealed partial class IoCommandHandler
{
    /// <summary>
    /// Namespace is Write Protected for a command that would change the namespace's data or zone state: Write, Write
    /// Zeroes, Copy, Zone Append, every Zone Management Send action, and Dataset Management with AD (deallocate; without
    /// it the ranges are only hints). Read, Compare, Verify, Flush and Zone Management Receive change nothing and run.
    /// DNR is set: the same command fails again until the controller lifts the protection, which it announces with a
    /// Namespace Attribute Changed notice, so retrying earlier only delays the error.
    /// </summary>
    private static NvmeStatus WriteProtection(NamespaceInfo info, in SubmissionQueueEntry sqe)
    {
        if (!info.WriteProtected)
        {
            return NvmeStatus.Success;
        }
        bool modifies = sqe.Opcode switch
        {
            IoOpcode.Write or IoOpcode.WriteZeroes or IoOpcode.Copy or IoOpcode.ZoneAppend or IoOpcode.ZoneManagementSend => true,
            IoOpcode.DatasetManagement => (sqe.Cdw11 & (1u << 2)) != 0,
            _ => false,
        };
        return modifies ? NvmeStatus.NamespaceWriteProtected.WithDnr() : NvmeStatus.Success;
    }
}

using Zns.Nvme;

namespace Zns.Protocol;

/// <summary>
/// The rules a command capsule's SQE must meet before its data is received or buffered: data direction and the SGL
/// forms the NVMe/TCP binding allows (NVMe/TCP §3.3.2: one SGL Data Block descriptor, in-capsule or transport data
/// block), and the length limit (MDTS on I/O queues).
/// </summary>
public static class CapsuleRules
{
    /// <summary>Data bytes the command moves: the SGL1 length, or 0 when it moves none.</summary>
    public static int DataLength(in SubmissionQueueEntry sqe, DataDirection direction) =>
        direction == DataDirection.None ? 0 : (int)sqe.SglLength;

    /// <summary>
    /// Checks SGL1 the way the NVMe/TCP binding defines it; returns the error status (with DNR) or null when the
    /// command may proceed.
    /// </summary>
    /// <param name="sqe">The command.</param>
    /// <param name="direction">Its direction, from the command data table (<see cref="CommandData"/>).</param>
    /// <param name="inCapsule">In-capsule data bytes that came with the capsule.</param>
    /// <param name="maxDataLength">Largest transfer allowed on the queue right now.</param>
    public static NvmeStatus? ValidateSgl(in SubmissionQueueEntry sqe, DataDirection direction, int inCapsule, int maxDataLength)
    {
        // PSDT (FLAGS bits 7:6) must say SGL: PRPs have no meaning on a fabric.
        if ((sqe.Flags & 0xC0) != NvmeTcp.SqeFlagsSgl)
            return NvmeStatus.InvalidField.WithDnr();
        // No command this target implements moves data both ways (opcode bits 1:0 = 11b), so such an opcode is
        // one it does not support.
        if (direction == DataDirection.Bidirectional)
            return NvmeStatus.InvalidOpcode.WithDnr();
        long sglLength = sqe.SglLength;
        switch (sqe.SglIdentifier)
        {
            case NvmeTcp.SglInCapsuleData:
                if (inCapsule > 0 && direction != DataDirection.HostToController)
                    return NvmeStatus.SglDescriptorTypeInvalid.WithDnr();
                if (sqe.SglAddress != 0)
                    return NvmeStatus.SglOffsetInvalid.WithDnr(); // ICDOFF is 0
                if (sglLength != inCapsule)
                    return NvmeStatus.DataSglLengthInvalid.WithDnr();
                break;
            case NvmeTcp.SglTransportDataBlock:
                if (inCapsule > 0)
                    return NvmeStatus.DataSglLengthInvalid.WithDnr();
                break;
            default:
                return NvmeStatus.SglDescriptorTypeInvalid.WithDnr();
        }
        // A transfer above the limit (MDTS on I/O queues) is Invalid Field in Command (NVMe Base, Identify
        // Controller MDTS), answered before any data is solicited or buffered.
        if (direction != DataDirection.None && sglLength > maxDataLength)
            return NvmeStatus.InvalidField.WithDnr();
        return null;
    }
}

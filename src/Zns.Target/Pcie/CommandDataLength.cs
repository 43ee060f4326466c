using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;

namespace Zns.Target.Pcie;

/// <summary>
/// The data length of a command on a memory-based transport, where (unlike an SGL on a fabric) the SQE does not
/// state it: it follows from the opcode and its fields. The command handlers then check it exactly as they check an
/// SGL length, so both transports share one set of length rules.
/// </summary>
internal static class CommandDataLength
{
    /// <summary>Data direction from opcode bits 1:0 (01b host to controller, 10b controller to host).</summary>
    public static bool IsHostToController(byte opcode) => (opcode & 3) == 1;

    public static bool IsControllerToHost(byte opcode) => (opcode & 3) == 2;

    /// <summary>Admin commands: Identify 4 KiB, Get Log Page NUMD; the rest carry no data.</summary>
    public static long Admin(in SubmissionQueueEntry sqe) => sqe.Opcode switch
    {
        AdminOpcode.Identify => IdentifyCns.DataSize,
        AdminOpcode.GetLogPage => GetLogPageCommandLayout.Length(in sqe),
        _ => 0,
    };

    /// <summary>I/O commands of the NVM and Zoned Namespace command sets; 0 for an unknown NSID (the handler refuses it).</summary>
    public static long Io(in SubmissionQueueEntry sqe, NvmeSubsystem subsystem)
    {
        switch (sqe.Opcode)
        {
            case IoOpcode.Read:
            case IoOpcode.Write:
            case IoOpcode.ZoneAppend:
                return subsystem.GetNamespace(sqe.NamespaceId) is { } info
                    ? (long)((sqe.Cdw12 & 0xFFFF) + 1) << info.Namespace.Geometry.BlockShift
                    : 0;
            case IoOpcode.DatasetManagement:
                return ((sqe.Cdw10 & 0xFF) + 1) * 16L;
            case IoOpcode.ZoneManagementReceive:
                return ((long)sqe.Cdw12 + 1) * 4;
            case IoOpcode.ZoneManagementSend:
                return (byte)sqe.Cdw13 == (byte)ZoneSendAction.SetDescriptorExtension
                    && subsystem.GetNamespace(sqe.NamespaceId) is { } ns ? ns.ZoneSendDataLength : 0;
            default:
                return 0;
        }
    }
}

using Zns.Nvme.Layouts;

namespace Zns.Nvme;

/// <summary>
/// The one table of command data: for every opcode (and every feature that carries data), the direction and length
/// of its data, computed from the SQE and, for I/O commands, the namespace's format. Every transport and every
/// handler takes a command's transfer from here.
/// </summary>
/// <remarks>
/// The direction is always what opcode bits 1:0 say (FCTYPE bits 1:0 for Fabrics commands), as NVMe defines it;
/// the length depends on the command: Create I/O Submission Queue (01h) names queue memory and moves no data, a
/// feature's data depends on its FID. An opcode the controller does not implement has a length of any size and is
/// refused by its handler with Invalid Opcode. The queue-management opcodes exist only on a memory-based (PCIe)
/// controller; on a fabric they are unknown opcodes like any other.
/// </remarks>
public static class CommandData
{
    /// <summary>The Timestamp feature's data (FID 0Eh): 8 bytes.</summary>
    public const int TimestampBytes = 8;

    /// <summary>One Dataset Management range: context attributes, NLB, SLBA.</summary>
    public const int DsmRangeBytes = 16;

    /// <summary>A Copy source range of descriptor format 0h or 2h.</summary>
    public const int CopyRangeBytes = 32;

    /// <summary>A Copy source range of descriptor format 1h or 3h (with 64-bit PI fields).</summary>
    public const int CopyRangeWithPiBytes = 40;

    /// <summary>
    /// The data of an admin command (Fabrics commands included) on a memory-based controller
    /// (<paramref name="memoryBased"/>) or a fabric one.
    /// </summary>
    public static DataTransfer Admin(in SubmissionQueueEntry sqe, bool memoryBased) => sqe.Opcode switch
    {
        AdminOpcode.GetLogPage => Exact(DataDirection.ControllerToHost, GetLogPageCommandLayout.Length(in sqe)),
        AdminOpcode.Identify => Exact(DataDirection.ControllerToHost, IdentifyCns.DataSize),
        AdminOpcode.SetFeatures => SetFeatures(in sqe),
        AdminOpcode.GetFeatures => GetFeatures(in sqe),
        AdminOpcode.Fabrics => Fabrics(in sqe),
        AdminOpcode.Abort or AdminOpcode.AsyncEventRequest or AdminOpcode.KeepAlive => NoData(sqe.Opcode),
        AdminOpcode.DeleteIoSubmissionQueue or AdminOpcode.CreateIoSubmissionQueue or AdminOpcode.DeleteIoCompletionQueue
            or AdminOpcode.CreateIoCompletionQueue or AdminOpcode.DoorbellBufferConfig when memoryBased => NoData(sqe.Opcode),
        _ => Unknown(sqe.Opcode),
    };

    /// <summary>
    /// The data of an I/O command in a namespace of <paramref name="format"/>; null when the NSID names no namespace
    /// (the length is then unknown and the command is refused before any data is needed).
    /// </summary>
    public static DataTransfer Io(in SubmissionQueueEntry sqe, NamespaceDataFormat? format)
    {
        switch (sqe.Opcode)
        {
            case IoOpcode.Write:
            case IoOpcode.ZoneAppend:
            case IoOpcode.Compare:
                return Blocks(DataDirection.HostToController, in sqe, format);
            case IoOpcode.Read:
                return Blocks(DataDirection.ControllerToHost, in sqe, format);
            case IoOpcode.Flush:
            case IoOpcode.WriteZeroes:
            case IoOpcode.Verify:
                return NoData(sqe.Opcode);
            case IoOpcode.DatasetManagement:
                // CDW10 bits 7:0 NR, 0's based.
                return new DataTransfer(DataDirection.HostToController, ((sqe.Cdw10 & 0xFF) + 1) * DsmRangeBytes, LengthRule.AtLeast);
            case IoOpcode.Copy:
            {
                // CDW12 bits 7:0 NR (0's based), bits 11:8 descriptor format.
                uint ranges = (sqe.Cdw12 & 0xFF) + 1;
                uint descriptorFormat = (sqe.Cdw12 >> 8) & 0xF;
                int size = descriptorFormat is 1 or 3 ? CopyRangeWithPiBytes : CopyRangeBytes;
                return new DataTransfer(DataDirection.HostToController, ranges * size, LengthRule.AtLeast);
            }
            case IoOpcode.ZoneManagementSend:
                // Only Set Zone Descriptor Extension (ZSA 10h) carries data: ZDES × 64 bytes. Without extensions the
                // command is refused with Invalid Field whatever the host sent.
                if ((byte)sqe.Cdw13 != ZoneSendActionSetDescriptorExtension)
                {
                    return NoData(sqe.Opcode);
                }
                return format is { ZoneDescriptorExtensionBytes: > 0 } f
                    ? Exact(DataDirection.HostToController, f.ZoneDescriptorExtensionBytes)
                    : new DataTransfer(DataDirection.HostToController, 0, LengthRule.Any);
            case IoOpcode.ZoneManagementReceive:
                // CDW12 NUMD, 0's based dwords.
                return Exact(DataDirection.ControllerToHost, ((long)sqe.Cdw12 + 1) * 4);
            default:
                return Unknown(sqe.Opcode);
        }
    }

    /// <summary>ZSA 10h, Set Zone Descriptor Extension.</summary>
    private const byte ZoneSendActionSetDescriptorExtension = 0x10;

    /// <summary>
    /// NLB (CDW12 bits 15:0, 0's based) blocks of the namespace's format, with their metadata: in the data for an
    /// extended LBA format, in a buffer of its own (MPTR) otherwise, and none when PRACT inserts or strips metadata
    /// that is only the PI.
    /// </summary>
    private static DataTransfer Blocks(DataDirection direction, in SubmissionQueueEntry sqe, NamespaceDataFormat? format)
    {
        if (format is not { } f)
        {
            return new DataTransfer(direction, 0, LengthRule.Any);
        }
        long blocks = (sqe.Cdw12 & 0xFFFF) + 1;
        long data = blocks << f.BlockShift;
        if (!f.Metadata.HasMetadata)
        {
            return Exact(direction, data);
        }
        long metadata = f.Metadata.TransferredBytes(blocks, ProtectionFields.Of(in sqe));
        return f.Metadata.Extended
            ? Exact(direction, data + metadata)
            : new DataTransfer(direction, data, LengthRule.Exact, metadata);
    }

    private static DataTransfer SetFeatures(in SubmissionQueueEntry sqe) => (byte)sqe.Cdw10 switch
    {
        FeatureId.Timestamp => Exact(DataDirection.HostToController, TimestampBytes),
        FeatureId.HostBehaviorSupport => Exact(DataDirection.HostToController, HostBehaviorLayout.Size),
        FeatureId.TemperatureThreshold or FeatureId.VolatileWriteCache or FeatureId.NumberOfQueues
            or FeatureId.AsyncEventConfiguration or FeatureId.KeepAliveTimer or FeatureId.IoCommandSetProfile
            or FeatureId.InterruptCoalescing or FeatureId.InterruptVectorConfiguration => NoData(sqe.Opcode),
        // An unsupported feature is Invalid Field whatever its data.
        _ => Unknown(sqe.Opcode),
    };

    private static DataTransfer GetFeatures(in SubmissionQueueEntry sqe)
    {
        byte fid = (byte)sqe.Cdw10;
        uint select = (sqe.Cdw10 >> 8) & 0x7;
        return fid switch
        {
            FeatureId.Timestamp => Exact(DataDirection.ControllerToHost, TimestampBytes),
            // Only the current value (SEL 0) is a structure; default, saved and capabilities transfer none (a
            // memory-based transport maps nothing; a buffer a fabric host describes anyway comes back as zeros).
            FeatureId.HostBehaviorSupport => select == 0
                ? Exact(DataDirection.ControllerToHost, HostBehaviorLayout.Size)
                : new DataTransfer(DataDirection.ControllerToHost, 0, LengthRule.Any),
            FeatureId.TemperatureThreshold or FeatureId.VolatileWriteCache or FeatureId.NumberOfQueues
                or FeatureId.AsyncEventConfiguration or FeatureId.KeepAliveTimer or FeatureId.IoCommandSetProfile
                or FeatureId.InterruptCoalescing or FeatureId.InterruptVectorConfiguration => NoData(sqe.Opcode),
            _ => Unknown(sqe.Opcode),
        };
    }

    /// <summary>Fabrics commands: FCTYPE bits 1:0 give the direction.</summary>
    private static DataTransfer Fabrics(in SubmissionQueueEntry sqe) => sqe.FabricsCommandType switch
    {
        FabricsCommandType.Connect => Exact(DataDirection.HostToController, ConnectDataLayout.Size),
        // TL and AL: CDW11.
        FabricsCommandType.AuthenticationSend => Exact(DataDirection.HostToController, sqe.Cdw11),
        FabricsCommandType.AuthenticationReceive => Exact(DataDirection.ControllerToHost, sqe.Cdw11),
        byte fctype when fctype is FabricsCommandType.PropertyGet or FabricsCommandType.PropertySet or FabricsCommandType.Disconnect =>
            new DataTransfer((DataDirection)(fctype & 3), 0, LengthRule.Exact),
        byte fctype => new DataTransfer((DataDirection)(fctype & 3), 0, LengthRule.Any),
    };

    /// <summary>Opcode bits 1:0: 00b none, 01b host to controller, 10b controller to host, 11b both.</summary>
    public static DataDirection DirectionOf(byte opcode) => (DataDirection)(opcode & 3);

    /// <summary>A command that moves no data (its opcode bits still say a direction, as for Create I/O Submission Queue).</summary>
    private static DataTransfer NoData(byte opcode) => new(DirectionOf(opcode), 0, LengthRule.Exact);

    /// <summary>An opcode or feature the controller does not implement: refused by its handler whatever the data.</summary>
    private static DataTransfer Unknown(byte opcode) => new(DirectionOf(opcode), 0, LengthRule.Any);

    private static DataTransfer Exact(DataDirection direction, long length) => new(direction, length, LengthRule.Exact);
}

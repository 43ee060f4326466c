using Zns.Core.Zones;
using Zns.Nvme;

namespace Zns.Target.Controller;

/// <summary>
/// The block commands of a namespace with metadata: the data buffer splits into data and, after it, a separate
/// metadata buffer (MPTR, mapped there by the PCIe transport); the protection fields go to the core with them.
/// </summary>
internal sealed partial class IoCommandHandler
{
    /// <summary>Commands whose blocks carry metadata and protection information.</summary>
    private static bool IsBlockCommand(byte opcode) => opcode is IoOpcode.Read or IoOpcode.Write or IoOpcode.ZoneAppend
        or IoOpcode.Compare or IoOpcode.WriteZeroes or IoOpcode.Verify;

    private NvmeStatus ExecuteWithMetadata(in SubmissionQueueEntry sqe, ZonedNamespace ns, Span<byte> buffer, DataTransfer transfer, ref ulong result)
    {
        ProtectionFields pi = ProtectionFields.Of(in sqe);
        int dataLength = buffer.Length - (int)transfer.MetadataLength;
        Span<byte> data = buffer[..dataLength];
        Span<byte> metadata = buffer[dataLength..];
        bool fua = (sqe.Cdw12 & (1u << 30)) != 0 || !_controller.VolatileWriteCacheEnabled;
        ulong slba = sqe.Cdw10_11;
        NvmeStatus status;
        switch (sqe.Opcode)
        {
            case IoOpcode.Read:
                status = ns.Read(slba, data, metadata, in pi);
                if (status.IsSuccess)
                {
                    _subsystem.CountRead(data.Length);
                }
                return status;
            case IoOpcode.Write:
                status = ns.Write(slba, data, metadata, in pi, fua);
                if (status.IsSuccess)
                {
                    _subsystem.CountWrite(data.Length);
                }
                return status;
            case IoOpcode.ZoneAppend:
                status = ns.Append(slba, data, metadata, in pi, out ulong alba, fua);
                result = alba;
                if (status.IsSuccess)
                {
                    _subsystem.CountWrite(data.Length);
                }
                return status;
            case IoOpcode.Compare:
                return ns.Compare(slba, data, metadata, in pi);
            case IoOpcode.WriteZeroes:
                return ns.WriteZeroes(slba, ReadWriteBlocks(in sqe), in pi, fua);
            default:
                return ns.Verify(slba, ReadWriteBlocks(in sqe), in pi);
        }
    }
}

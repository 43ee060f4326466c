using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Zns.Core.Nvme;
using Zns.Core.Zones;

namespace Zns.Target.Nvme;

/// <summary>
/// I/O command dispatch of one I/O queue onto the zone core. This layer decodes fields and checks what only the
/// transport side knows (NSID, opcode for the namespace's command set, data length against NLB); the core does all
/// ZNS checks and its statuses are returned unchanged.
/// </summary>
/// <remarks>
/// Writes, appends, Write Zeroes, DSM, zone management and Flush execute synchronously in the order they arrive:
/// the host keeps one regular write per zone in flight and relies on the controller not reordering. Reads complete
/// asynchronously on the thread pool so they overlap each other and the writes behind them. Nothing here allocates
/// per command: completions are <see cref="ValueTask{T}"/> values, reads use pooled operations.
/// </remarks>
internal sealed class IoCommandHandler
{
    private readonly NvmeController _controller;
    private readonly NvmeSubsystem _subsystem;
    private readonly ReadOperation[] _pool;
    private readonly Lock _poolLock = new();
    private int _pooled;

    public IoCommandHandler(NvmeController controller, int queueEntries)
    {
        _controller = controller;
        _subsystem = controller.Subsystem;
        // At most one read per SQ entry can be outstanding, so this bounds the pool.
        _pool = new ReadOperation[queueEntries];
    }

    /// <summary>Opcodes of the NVM and Zoned Namespace command sets that this target implements.</summary>
    private static bool IsKnownIoOpcode(byte opcode) => opcode is IoOpcode.Flush or IoOpcode.Write or IoOpcode.Read
        or IoOpcode.WriteZeroes or IoOpcode.DatasetManagement or IoOpcode.ZoneManagementSend
        or IoOpcode.ZoneManagementReceive or IoOpcode.ZoneAppend or IoOpcode.Compare or IoOpcode.Verify or IoOpcode.Copy;

    private static bool IsZonedOpcode(byte opcode) =>
        opcode is IoOpcode.ZoneManagementSend or IoOpcode.ZoneManagementReceive or IoOpcode.ZoneAppend;

    public ValueTask<CompletionQueueEntry> Execute(in SubmissionQueueEntry sqe, Memory<byte> data, CompletionQueueEntry cqe)
    {
        byte opcode = sqe.Opcode;
        // Order: unknown opcode (admin opcodes land here too), then NSID, then opcode versus the namespace's command
        // set (QEMU's and nvmet's order for the last two).
        if (!IsKnownIoOpcode(opcode))
        {
            cqe.Status = NvmeStatus.InvalidOpcode.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        uint nsid = sqe.NamespaceId;
        if (opcode == IoOpcode.Flush && nsid == uint.MaxValue)
        {
            // VWC bits 2:1 = 11b advertise a broadcast Flush.
            cqe.Status = data.IsEmpty ? Guard(opcode, static (s, _) => s.FlushAll(), this) : NvmeStatus.DataSglLengthInvalid.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        if (_controller.AttachedNamespace(nsid) is not { } info)
        {
            // Absent and (for an NVM-only host) zoned namespaces alike: Invalid Namespace, as nvmet answers (QEMU
            // answers Invalid Field for an empty NSID slot up to NN; listed among the differences).
            cqe.Status = NvmeStatus.InvalidNamespace.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        ZonedNamespace ns = info.Namespace;
        if (IsZonedOpcode(opcode) && !ns.IsZoned)
        {
            cqe.Status = NvmeStatus.InvalidOpcode.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        if (opcode == IoOpcode.Read)
        {
            if ((long)ReadWriteBlocks(in sqe) << ns.Geometry.BlockShift != data.Length)
            {
                cqe.Status = NvmeStatus.DataSglLengthInvalid.WithDnr();
                return new ValueTask<CompletionQueueEntry>(cqe);
            }
            return RentRead().Start(ns, sqe.Cdw10_11, data, cqe);
        }
        try
        {
            cqe.Status = ExecuteSynchronous(in sqe, ns, info, data.Span, ref cqe.Result);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            cqe.Status = InternalError(ex, opcode);
        }
        return new ValueTask<CompletionQueueEntry>(cqe);
    }

    private NvmeStatus ExecuteSynchronous(in SubmissionQueueEntry sqe, ZonedNamespace ns, NamespaceInfo info, Span<byte> data, ref ulong result)
    {
        int shift = ns.Geometry.BlockShift;
        // CDW12 bit 30: Force Unit Access. With the volatile write cache disabled every write is durable anyway.
        bool fua = (sqe.Cdw12 & (1u << 30)) != 0 || !_controller.VolatileWriteCacheEnabled;
        switch (sqe.Opcode)
        {
            case IoOpcode.Write:
            {
                if ((long)ReadWriteBlocks(in sqe) << shift != data.Length)
                {
                    return NvmeStatus.DataSglLengthInvalid.WithDnr();
                }
                NvmeStatus status = ns.Write(sqe.Cdw10_11, data, fua);
                if (status.IsSuccess)
                {
                    _subsystem.CountWrite(data.Length);
                }
                return status;
            }

            case IoOpcode.ZoneAppend:
            {
                if ((long)ReadWriteBlocks(in sqe) << shift != data.Length)
                {
                    return NvmeStatus.DataSglLengthInvalid.WithDnr();
                }
                NvmeStatus status = ns.Append(sqe.Cdw10_11, data, out ulong alba, fua);
                if (status.IsSuccess)
                {
                    // ALBA goes back in DW0 (low) and DW1 (high).
                    result = alba;
                    _subsystem.CountWrite(data.Length);
                }
                return status;
            }

            case IoOpcode.Flush:
                return data.IsEmpty ? ns.Flush() : NvmeStatus.DataSglLengthInvalid.WithDnr();

            case IoOpcode.WriteZeroes:
                // No data moves; CDW12 bit 25 (DEAC) needs no action because zeroed and deallocated blocks read
                // the same (DLFEAT = 001b).
                return data.IsEmpty ? ns.WriteZeroes(sqe.Cdw10_11, ReadWriteBlocks(in sqe), fua) : NvmeStatus.DataSglLengthInvalid.WithDnr();

            case IoOpcode.DatasetManagement:
                return DatasetManagement(in sqe, ns, data);

            case IoOpcode.Compare:
                // The data to compare comes from the host: exactly NLB blocks.
                return (long)ReadWriteBlocks(in sqe) << shift != data.Length
                    ? NvmeStatus.DataSglLengthInvalid.WithDnr()
                    : ns.Compare(sqe.Cdw10_11, data);

            case IoOpcode.Verify:
                return data.IsEmpty ? ns.Verify(sqe.Cdw10_11, ReadWriteBlocks(in sqe)) : NvmeStatus.DataSglLengthInvalid.WithDnr();

            case IoOpcode.Copy:
            {
                // CDW10/11 SDLBA, CDW12 bits 7:0 NR (0's based), bits 11:8 descriptor format. The data is the
                // source range list; a failing range's index goes back in DW0.
                int ranges = (int)(sqe.Cdw12 & 0xFF) + 1;
                byte format = (byte)((sqe.Cdw12 >> 8) & 0xF);
                NvmeStatus status = ns.Copy(sqe.Cdw10_11, format, ranges, data, out uint failed);
                if (!status.IsSuccess)
                {
                    result = failed;
                }
                return status;
            }

            case IoOpcode.ZoneManagementSend:
            {
                uint cdw13 = sqe.Cdw13;
                byte zsa = (byte)cdw13;
                bool selectAll = (cdw13 & (1u << 8)) != 0;
                bool zsaso = (cdw13 & (1u << 9)) != 0;
                // Only Set Zone Descriptor Extension carries data: exactly ZDES × 64 bytes. With ZDES = 0 the core
                // answers Invalid Field, so the length is not judged then.
                bool lengthOk = zsa == (byte)ZoneSendAction.SetDescriptorExtension
                    ? info.ZoneSendDataLength == 0 || data.Length == info.ZoneSendDataLength
                    : data.IsEmpty;
                if (!lengthOk)
                {
                    return NvmeStatus.DataSglLengthInvalid.WithDnr();
                }
                return ns.ZoneManagementSend(sqe.Cdw10_11, (ZoneSendAction)zsa, selectAll, data, zsaso);
            }

            case IoOpcode.ZoneManagementReceive:
            {
                // CDW12: NUMD, 0's based dwords. CDW13: ZRA 7:0, ZRASF 15:8, Partial Report bit 16.
                if (((long)sqe.Cdw12 + 1) * 4 != data.Length)
                {
                    return NvmeStatus.DataSglLengthInvalid.WithDnr();
                }
                uint cdw13 = sqe.Cdw13;
                return ns.ZoneManagementReceive(sqe.Cdw10_11, (byte)cdw13, (byte)(cdw13 >> 8), (cdw13 & (1u << 16)) != 0, data);
            }

            default:
                return NvmeStatus.InvalidOpcode.WithDnr();
        }
    }

    /// <summary>NLB (CDW12 bits 15:0) is 0's based.</summary>
    private static uint ReadWriteBlocks(in SubmissionQueueEntry sqe) => (sqe.Cdw12 & 0xFFFF) + 1;

    /// <summary>
    /// Dataset Management: CDW10 bits 7:0 NR (0's based range count), CDW11 bit 2 AD (deallocate). Each 16-byte
    /// range is context attributes (u32), NLB (u32, not 0's based), SLBA (u64). Without AD the ranges are only
    /// hints and nothing happens.
    /// </summary>
    private static NvmeStatus DatasetManagement(in SubmissionQueueEntry sqe, ZonedNamespace ns, ReadOnlySpan<byte> data)
    {
        int ranges = (int)(sqe.Cdw10 & 0xFF) + 1;
        if (data.Length != ranges * 16)
        {
            return NvmeStatus.DataSglLengthInvalid.WithDnr();
        }
        if ((sqe.Cdw11 & (1u << 2)) == 0)
        {
            return NvmeStatus.Success;
        }
        for (int i = 0; i < ranges; i++)
        {
            ReadOnlySpan<byte> range = data.Slice(i * 16, 16);
            uint blocks = BinaryPrimitives.ReadUInt32LittleEndian(range[4..]);
            if (blocks == 0)
            {
                continue;
            }
            NvmeStatus status = ns.Deallocate(BinaryPrimitives.ReadUInt64LittleEndian(range[8..]), blocks);
            if (!status.IsSuccess)
            {
                return status;
            }
        }
        return NvmeStatus.Success;
    }

    private NvmeStatus FlushAll()
    {
        foreach (NamespaceInfo info in _subsystem.NamespaceInfos)
        {
            NvmeStatus status = info.Namespace.Flush();
            if (!status.IsSuccess)
            {
                return status;
            }
        }
        return NvmeStatus.Success;
    }

    private NvmeStatus Guard<TState>(byte opcode, Func<TState, byte, NvmeStatus> action, TState state)
    {
        try
        {
            return action(state, opcode);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            return InternalError(ex, opcode);
        }
    }

    /// <summary>
    /// A backstore failure surfaces as Internal Error without DNR: it is not the command's fault and a retry may
    /// succeed (a full disk being cleaned up, say).
    /// </summary>
    internal NvmeStatus InternalError(Exception ex, byte opcode)
    {
        _subsystem.Target.Logger.CommandFailed(ex, _controller.Cntlid, opcode, 0);
        return NvmeStatus.InternalError;
    }

    internal void CountRead(int bytes) => _subsystem.CountRead(bytes);

    private ReadOperation RentRead()
    {
        lock (_poolLock)
        {
            if (_pooled > 0)
            {
                ReadOperation op = _pool[--_pooled];
                _pool[_pooled] = null!;
                return op;
            }
        }
        return new ReadOperation(this);
    }

    internal void Return(ReadOperation op)
    {
        lock (_poolLock)
        {
            if (_pooled < _pool.Length)
            {
                _pool[_pooled++] = op;
            }
        }
    }
}

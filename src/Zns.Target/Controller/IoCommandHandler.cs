using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Timing;
using Zns.Core.Zones;
using Zns.Target.Execution;
using Zns.Nvme.Layouts;

namespace Zns.Target.Controller;

/// <summary>
/// I/O command dispatch of one I/O queue onto the zone core. This layer decodes fields and checks what only the
/// transport side knows (NSID, opcode for the namespace's command set, data length against NLB); the core does all
/// ZNS checks and its statuses are returned unchanged.
/// </summary>
/// <remarks>
/// Every command executes synchronously in the order it arrives, on the thread that received it: the host keeps one
/// regular write per zone in flight and relies on the controller not reordering, and a RAM or file backstore
/// answers in microseconds, far less than a hop to another thread costs. The result is a completed
/// <see cref="ValueTask{T}"/>, so nothing here allocates per command; the seam still accepts a completion that
/// comes later.
/// </remarks>
internal sealed partial class IoCommandHandler
{
    private readonly NvmeController _controller;
    private readonly NvmeSubsystem _subsystem;
    private readonly ushort _qid;
    private readonly OperationPool<TimedCompletion> _timed;
    private readonly Metrics.TargetMetrics _metrics;

    public IoCommandHandler(NvmeController controller, ushort qid, int queueEntries)
    {
        _qid = qid;
        _controller = controller;
        _subsystem = controller.Subsystem;
        _metrics = _subsystem.Target.Metrics;
        // At most one command per SQ entry can be outstanding, so this bounds the pool of delayed completions.
        _timed = new OperationPool<TimedCompletion>(queueEntries, () => new TimedCompletion(this));
    }

    /// <summary>Opcodes of the NVM and Zoned Namespace command sets that this target implements.</summary>
    private static bool IsKnownIoOpcode(byte opcode) => opcode is IoOpcode.Flush or IoOpcode.Write or IoOpcode.Read
        or IoOpcode.WriteZeroes or IoOpcode.DatasetManagement or IoOpcode.ZoneManagementSend
        or IoOpcode.ZoneManagementReceive or IoOpcode.ZoneAppend or IoOpcode.Compare or IoOpcode.Verify or IoOpcode.Copy;

    private static bool IsZonedOpcode(byte opcode) =>
        opcode is IoOpcode.ZoneManagementSend or IoOpcode.ZoneManagementReceive or IoOpcode.ZoneAppend;

    public ValueTask<CompletionQueueEntry> Execute(in SubmissionQueueEntry sqe, HostData data, CompletionQueueEntry cqe) =>
        Execute(in sqe, data.Memory, cqe, System.Diagnostics.Stopwatch.GetTimestamp());

    /// <summary>Executes a command that arrived at <paramref name="arrival"/> (a <see cref="System.Diagnostics.Stopwatch"/> timestamp; the latency metric counts from it).</summary>
    private ValueTask<CompletionQueueEntry> Execute(in SubmissionQueueEntry sqe, Memory<byte> data, CompletionQueueEntry cqe, long arrival)
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
            cqe.Status = CommandData.Io(in sqe, null).Accepts(data.Length) ? Guard(opcode, static (s, _) => s.FlushAll(), this) : NvmeStatus.DataSglLengthInvalid.WithDnr();
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
        if (WriteProtection(info, in sqe) is { IsSuccess: false } protectedStatus)
        {
            cqe.Status = protectedStatus;
            _metrics.Count(info.Nsid, in sqe, data.Span, cqe.Status);
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        DataTransfer transfer = CommandData.Io(in sqe, info.DataFormat);
        if (opcode is IoOpcode.Read or IoOpcode.Write or IoOpcode.ZoneAppend or IoOpcode.Compare
            && transfer.Length > ns.Geometry.MaxTransferBytes)
        {
            // MDTS is judged from NLB before the data buffer (QEMU's nvme_check_mdts comes first; a PRP has no
            // length), so NLB beyond MDTS is Invalid Field whatever buffer the host described. The length counts
            // metadata interleaved with the data (an extended LBA), as MDTS does, but not a separate buffer's.
            cqe.Status = NvmeStatus.InvalidField.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        // The one length check, against the command data table every transport uses too. Copy's range list is the
        // core's to judge, after its format and range-count checks (QEMU's order).
        if (opcode != IoOpcode.Copy && !transfer.Accepts(data.Length))
        {
            cqe.Status = NvmeStatus.DataSglLengthInvalid.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        TimingModel? timing = info.Timing;
        long submitted = timing is null ? 0 : CompletionScheduler.Now;
        CommandTiming.Before before = timing is null ? default : CommandTiming.Capture(timing, in sqe, ns);
        try
        {
            cqe.Status =
                info.DataFormat.Metadata.HasMetadata && IsBlockCommand(opcode) ? ExecuteWithMetadata(in sqe, ns, data.Span, transfer, ref cqe.Result) :
                opcode == IoOpcode.Read ? Read(ns, sqe.Cdw10_11, data.Span) :
                ExecuteSynchronous(in sqe, ns, info, data.Span, ref cqe.Result);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            cqe.Status = InternalError(ex, opcode);
        }
        _metrics.Count(info.Nsid, in sqe, data.Span, cqe.Status);
        if (timing is not null)
        {
            long due = CommandTiming.Due(timing, submitted, in sqe, in before, in cqe);
            if (due > CompletionScheduler.Now)
            {
                // The latency is recorded when the scheduler posts the completion.
                return _timed.Rent().Start(in cqe, due, info.Nsid, opcode, arrival);
            }
        }
        _metrics.RecordLatency(info.Nsid, opcode, arrival);
        return new ValueTask<CompletionQueueEntry>(cqe);
    }

    private NvmeStatus Read(ZonedNamespace ns, ulong slba, Span<byte> data)
    {
        NvmeStatus status = ns.Read(slba, data);
        if (status.IsSuccess)
        {
            _subsystem.CountRead(data.Length);
        }
        return status;
    }

    internal void Return(TimedCompletion completion) => _timed.Return(completion);

    internal Metrics.TargetMetrics Metrics => _metrics;

    private NvmeStatus ExecuteSynchronous(in SubmissionQueueEntry sqe, ZonedNamespace ns, NamespaceInfo info, Span<byte> data, ref ulong result)
    {
        // CDW12 bit 30: Force Unit Access. With the volatile write cache disabled every write is durable anyway.
        bool fua = (sqe.Cdw12 & (1u << 30)) != 0 || !_controller.VolatileWriteCacheEnabled;
        switch (sqe.Opcode)
        {
            case IoOpcode.Write:
            {
                NvmeStatus status = ns.Write(sqe.Cdw10_11, data, fua);
                if (status.IsSuccess)
                {
                    _subsystem.CountWrite(data.Length);
                }
                return status;
            }

            case IoOpcode.ZoneAppend:
            {
                NvmeStatus status = ns.Append(sqe.Cdw10_11, data, out ulong alba, fua);
                // ALBA goes back in DW0 (low) and DW1 (high). As in QEMU it is there also when the zone write
                // checks fail after it was assigned (0 for failures before that).
                result = alba;
                if (status.IsSuccess)
                {
                    _subsystem.CountWrite(data.Length);
                }
                return status;
            }

            case IoOpcode.Flush:
                return ns.Flush();

            case IoOpcode.WriteZeroes:
                // No data moves; CDW12 bit 25 (DEAC) needs no action because zeroed and deallocated blocks read
                // the same (DLFEAT = 001b).
                return ns.WriteZeroes(sqe.Cdw10_11, ReadWriteBlocks(in sqe), fua);

            case IoOpcode.DatasetManagement:
                return DatasetManagement(in sqe, ns, data);

            case IoOpcode.Compare:
                return ns.Compare(sqe.Cdw10_11, data);

            case IoOpcode.Verify:
                return ns.Verify(sqe.Cdw10_11, ReadWriteBlocks(in sqe));

            case IoOpcode.Copy:
            {
                // CDW10/11 SDLBA, CDW12 bits 7:0 NR (0's based), bits 11:8 descriptor format. The data is the
                // source range list; a failing range's index goes back in DW0.
                int ranges = (int)(sqe.Cdw12 & 0xFF) + 1;
                byte format = (byte)((sqe.Cdw12 >> 8) & 0xF);
                // Formats 2h/3h name a source namespace per range: those of this controller, once the host has
                // enabled them (Host Behavior Support CDFE).
                var context = new CopyContext(info.Nsid, _controller.EnabledCopyFormats, _controller);
                NvmeStatus status = ns.Copy(sqe.Cdw10_11, format, ranges, data, context, out uint failed);
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
                return ns.ZoneManagementSend(sqe.Cdw10_11, (ZoneSendAction)zsa, selectAll, data, zsaso);
            }

            case IoOpcode.ZoneManagementReceive:
            {
                // CDW13: ZRA 7:0, ZRASF 15:8, Partial Report bit 16.
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
    /// <remarks>
    /// The buffer only has to hold the NR ranges: Linux always transfers a whole 4 KiB page of ranges, whatever NR
    /// is. A range past the namespace is skipped and the command still succeeds, as QEMU's device does (deallocate
    /// is advisory); the controller reports no DMRSL, so there is no size limit to skip on.
    /// </remarks>
    private static NvmeStatus DatasetManagement(in SubmissionQueueEntry sqe, ZonedNamespace ns, ReadOnlySpan<byte> data)
    {
        int ranges = (int)(sqe.Cdw10 & 0xFF) + 1;
        if ((sqe.Cdw11 & (1u << 2)) == 0)
        {
            return NvmeStatus.Success;
        }
        ulong nsze = ns.Geometry.NamespaceSizeLbas;
        for (int i = 0; i < ranges; i++)
        {
            ReadOnlySpan<byte> range = data.Slice(i * CommandData.DsmRangeBytes, CommandData.DsmRangeBytes);
            uint blocks = BinaryPrimitives.ReadUInt32LittleEndian(range[4..]);
            ulong slba = BinaryPrimitives.ReadUInt64LittleEndian(range[8..]);
            if (blocks == 0 || slba >= nsze || nsze - slba < blocks)
            {
                continue;
            }
            NvmeStatus status = ns.Deallocate(slba, blocks);
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
        _subsystem.Target.Logger.CommandFailed(ex, _controller.Cntlid, opcode, _qid);
        return NvmeStatus.InternalError;
    }
}

using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Storage;
using Zns.Core.Recording;

namespace Zns.Core.Zones;

/// <summary>Copy (Simple Copy): source range descriptors of formats 0h-3h, from this namespace or another one of the controller (2h/3h).</summary>
public sealed partial class ZonedNamespace
{
    /// <summary>Size of one Copy source range entry of format 0 (Source Range Entries Copy Descriptor Format 0h).</summary>
    public const int CopyRangeFormat0Size = 32;

    /// <summary>
    /// Copy descriptor formats the controller reports (OCFS): 0h and 1h, and 2h and 3h (source NSID per range) once
    /// the host enables them through Host Behavior Support (CDFE), as QEMU does. 1h and 3h carry 64-bit PI fields,
    /// so without protection information they answer Invalid Format.
    /// </summary>
    public const ushort CopyFormatsSupported = 0xF;

    /// <summary>
    /// Copy (Simple Copy): copies <paramref name="rangeCount"/> source ranges of descriptor format
    /// <paramref name="format"/> (read from <paramref name="ranges"/>) to consecutive LBAs from
    /// <paramref name="sdlba"/>, with QEMU's checks in QEMU's order. Each range is checked and written on its own:
    /// a failing range leaves the ones before it written (the write pointer advanced over them) and its index in
    /// <paramref name="failedRange"/> (CQE DW0).
    /// </summary>
    public NvmeStatus Copy(ulong sdlba, byte format, int rangeCount, ReadOnlySpan<byte> ranges, out uint failedRange) =>
        Copy(sdlba, format, rangeCount, ranges, CopyContext.SameNamespace, out failedRange);

    /// <summary>Copy through a controller: <paramref name="context"/> says which formats are enabled and where a format 2h entry's namespace comes from.</summary>
    public NvmeStatus Copy(ulong sdlba, byte format, int rangeCount, ReadOnlySpan<byte> ranges, in CopyContext context, out uint failedRange)
    {
        failedRange = 0;
        // Without protection information only formats 0 and 2 describe ranges; 1 and 3 are for 64-bit guard PI.
        NvmeStatus status =
            format > 3 || (CopyFormatsSupported & context.EnabledFormats & (1 << format)) == 0 ? NvmeStatus.InvalidField :
            rangeCount > Geometry.Msrc + 1 ? NvmeStatus.CommandSizeLimitExceeded :
            format is not (0 or 2) ? NvmeStatus.InvalidFormat :
            ranges.Length < rangeCount * CopyRangeFormat0Size ? NvmeStatus.DataSglLengthInvalid :
            NvmeStatus.Success;
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        if (!IsZoned)
        {
            status = CheckCopyLength(rangeCount, ranges, out ulong total);
            return status.IsSuccess ? CopyRanges(uint.MaxValue, sdlba, format, rangeCount, ranges, context, total, out failedRange) : status.WithDnr();
        }
        if (sdlba >= Geometry.NamespaceSizeLbas)
        {
            return NvmeStatus.LbaOutOfRange.WithDnr();
        }
        uint dz = Geometry.ZoneOf(sdlba);
        lock (_zoneLocks[dz])
        {
            // QEMU opens the destination zone before the length check: a Command Size Limit leaves it open. Its
            // zone state errors carry no DNR in Copy (resource limits do).
            lock (_stateLock)
            {
                status = Open(dz, implicitly: true);
            }
            if (!status.IsSuccess)
            {
                return status == NvmeStatus.InvalidZoneStateTransition ? status : status.WithDnr();
            }
            Interlocked.Increment(ref _changes);
            status = CheckCopyLength(rangeCount, ranges, out ulong total);
            return status.IsSuccess ? CopyRanges(dz, sdlba, format, rangeCount, ranges, context, total, out failedRange) : status.WithDnr();
        }
    }

    private NvmeStatus CheckCopyLength(int rangeCount, ReadOnlySpan<byte> ranges, out ulong total)
    {
        total = 0;
        for (int i = 0; i < rangeCount; i++)
        {
            total += CopyRangeBlocks(ranges, i);
        }
        return total > Geometry.Mcl ? NvmeStatus.CommandSizeLimitExceeded : NvmeStatus.Success;
    }

    // Format 0 entry: bytes 8..15 SLBA, 16..17 NLB (0's based).
    private static ulong CopyRangeStart(ReadOnlySpan<byte> ranges, int i) =>
        BinaryPrimitives.ReadUInt64LittleEndian(ranges[(i * CopyRangeFormat0Size + 8)..]);

    private static uint CopyRangeBlocks(ReadOnlySpan<byte> ranges, int i) =>
        BinaryPrimitives.ReadUInt16LittleEndian(ranges[(i * CopyRangeFormat0Size + 16)..]) + 1u;

    // Per range (QEMU's nvme_do_copy / nvme_copy_in_completed_cb): MSSRL, source bounds and zone read rules, read,
    // destination bounds and zone write rules against the destination zone, write, advance. Caller holds the
    // destination zone's lock (zoned).
    private NvmeStatus CopyRanges(uint dz, ulong dlba, byte format, int rangeCount, ReadOnlySpan<byte> ranges, in CopyContext context,
        ulong totalBlocks, out uint failedRange)
    {
        int shift = Geometry.BlockShift;
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Geometry.Mssrl << shift);
        try
        {
            for (int i = 0; i < rangeCount; i++)
            {
                failedRange = (uint)i;
                ulong slba = CopyRangeStart(ranges, i);
                uint nlb = CopyRangeBlocks(ranges, i);
                NvmeStatus status = CopySource(context, format, ranges, i, slba, nlb, dlba, totalBlocks, out ZonedNamespace source);
                if (!status.IsSuccess)
                {
                    return status;
                }
                status =
                    nlb > source.Geometry.Mssrl ? NvmeStatus.CommandSizeLimitExceeded.WithDnr() :
                    source.CheckBounds(slba, nlb) is { IsSuccess: false } b ? b.WithDnr() :
                    source.IsZoned ? source.CheckZoneRead(slba, nlb) : NvmeStatus.Success;
                // Zone rule statuses of Copy carry no DNR in QEMU (nvme_check_zone_read/_write return them bare).
                if (!status.IsSuccess)
                {
                    return status;
                }
                Span<byte> data = CopyBuffer(ref buffer, (int)nlb << shift);
                status = source.ReadData(slba, data);
                if (!status.IsSuccess)
                {
                    return status;
                }
                status = CheckBounds(dlba, nlb);
                if (!status.IsSuccess)
                {
                    return status.WithDnr();
                }
                if (IsZoned)
                {
                    lock (_stateLock)
                    {
                        status = CheckZoneWrite(dz, dlba, nlb);
                    }
                    if (!status.IsSuccess)
                    {
                        return status;
                    }
                }
                if (!IsZoned)
                {
                    // Through the undo capture, so a power cut can put back what the copy overwrote.
                    status = WriteConventional(dlba, nlb, data, zeroes: false, fua: false);
                    if (!status.IsSuccess)
                    {
                        return status;
                    }
                    dlba += nlb;
                    continue;
                }
                if (!ZeroZrwaGap(dz, dlba) || !TryWrite(Geometry.ByteOffset(dlba), data))
                {
                    return NvmeStatus.WriteFault;
                }
                lock (_stateLock)
                {
                    CompleteZonedWrite(dz, dlba, nlb);
                }
                RecordData(WriteLogKind.Copy, dlba, nlb, data, fua: false);
                RecordWrite(dz);
                Interlocked.Increment(ref _changes);
                dlba += nlb;
            }
            failedRange = 0;
            return NvmeStatus.Success;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // Format 0h/2h entry (32 bytes): bytes 0..3 SNSID (2h only; reserved in 0h), 8..15 SLBA, 16..17 NLB (0's based).
    private static uint CopyRangeSourceNsid(ReadOnlySpan<byte> ranges, int i) =>
        BinaryPrimitives.ReadUInt32LittleEndian(ranges[(i * CopyRangeFormat0Size)..]);

    /// <summary>
    /// The namespace range <paramref name="i"/> reads from, with QEMU's checks (nvme_do_copy) for a format 2h entry:
    /// another namespace must exist for this controller and have the destination's block size (no metadata here);
    /// a range of the destination namespace itself must not end inside the <paramref name="totalBlocks"/> (the whole
    /// copy's length) from the current destination LBA <paramref name="dlba"/>: Overlapping I/O Range. Format 0h
    /// always reads the destination namespace.
    /// </summary>
    private NvmeStatus CopySource(in CopyContext context, byte format, ReadOnlySpan<byte> ranges, int i, ulong slba, uint nlb,
        ulong dlba, ulong totalBlocks, out ZonedNamespace source)
    {
        source = this;
        if (format != 2)
        {
            return NvmeStatus.Success;
        }
        uint snsid = CopyRangeSourceNsid(ranges, i);
        if (snsid != context.Nsid)
        {
            ZonedNamespace? other = null;
            NvmeStatus status = context.Sources is null ? NvmeStatus.InvalidNamespace.WithDnr() : context.Sources.Resolve(snsid, out other);
            if (!status.IsSuccess)
            {
                return status;
            }
            source = other!;
            return source.Geometry.BlockSize == Geometry.BlockSize ? NvmeStatus.Success : NvmeStatus.IncompatibleNamespaceOrFormat.WithDnr();
        }
        // QEMU's test, kept as it is: the range's end (not its start) against the current destination LBA plus the
        // whole copy's length.
        ulong end = slba + nlb;
        return end > dlba && end < dlba + totalBlocks ? NvmeStatus.OverlappingIoRange.WithDnr() : NvmeStatus.Success;
    }

    // A source namespace may allow longer ranges (its MSSRL) than the destination's buffer was rented for.
    private static Span<byte> CopyBuffer(ref byte[] buffer, int bytes)
    {
        if (buffer.Length < bytes)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(bytes);
        }
        return buffer.AsSpan(0, bytes);
    }
}

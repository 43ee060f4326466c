using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Storage;
using Zns.Core.Recording;

namespace Zns.Core.Zones;

/// <summary>Read, Write, Write Zeroes, Zone Append, Flush, Deallocate, Verify and Compare, and the one-rule checks they share (QEMU's order).</summary>
public sealed partial class ZonedNamespace
{
    // ---------------------------------------------------------------- I/O commands

    /// <summary>Read: fills <paramref name="destination"/> (a whole number of blocks) starting at <paramref name="slba"/>.</summary>
    public NvmeStatus Read(ulong slba, Span<byte> destination)
    {
        var status = CheckTransfer(destination.Length, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(destination.Length); }
        if (status.IsSuccess) { status = CheckBounds(slba, nlb); }
        if (status.IsSuccess && IsZoned) { status = CheckZoneRead(slba, nlb); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return ReadData(slba, destination);
    }

    // No checks: per zone, data below where the zone's data ends comes from the backstore, the rest is zeros.
    private NvmeStatus ReadData(ulong slba, Span<byte> destination)
    {
        if (!IsZoned)
        {
            return TryRead(Geometry.ByteOffset(slba), destination) ? NvmeStatus.Success : NvmeStatus.UnrecoveredReadError;
        }
        ulong lba = slba;
        int shift = Geometry.BlockShift;
        while (!destination.IsEmpty)
        {
            uint zi = Geometry.ZoneOf(lba);
            ulong zoneEnd = Geometry.ZoneStart(zi) + Geometry.ZoneSizeLbas;
            int segment = (int)Math.Min((ulong)destination.Length >> shift, zoneEnd - lba);
            ulong dataEnd;
            lock (_stateLock)
            {
                dataEnd = DataEnd(zi);
            }
            int valid = lba >= dataEnd ? 0 : (int)Math.Min((ulong)segment, dataEnd - lba);
            if (valid > 0)
            {
                if (!TryRead(Geometry.ByteOffset(lba), destination[..(valid << shift)]))
                {
                    return NvmeStatus.UnrecoveredReadError;
                }
            }
            destination.Slice(valid << shift, (segment - valid) << shift).Clear();
            destination = destination[(segment << shift)..];
            lba += (ulong)segment;
        }
        return NvmeStatus.Success;
    }

    /// <summary>Write: <paramref name="data"/> (a whole number of blocks) at <paramref name="slba"/>, which must be the zone's write pointer.</summary>
    public NvmeStatus Write(ulong slba, ReadOnlySpan<byte> data, bool fua = false)
    {
        var status = CheckTransfer(data.Length, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(data.Length); }
        if (status.IsSuccess) { status = CheckBounds(slba, nlb); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return WriteAt(slba, nlb, data, zeroes: false, fua, append: false, out _);
    }

    /// <summary>Write Zeroes: <paramref name="blockCount"/> zero blocks at <paramref name="slba"/> (write pointer rules apply).</summary>
    public NvmeStatus WriteZeroes(ulong slba, uint blockCount, bool fua = false)
    {
        if (blockCount == 0)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        var status = CheckBounds(slba, blockCount);
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return WriteAt(slba, blockCount, default, zeroes: true, fua, append: false, out _);
    }

    /// <summary>
    /// Zone Append: writes <paramref name="data"/> at the write pointer of the zone starting at
    /// <paramref name="zslba"/> and returns the LBA it landed at in <paramref name="assignedLba"/> (ALBA).
    /// </summary>
    public NvmeStatus Append(ulong zslba, ReadOnlySpan<byte> data, out ulong assignedLba, bool fua = false)
    {
        assignedLba = 0;
        if (!IsZoned)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        var status = CheckTransfer(data.Length, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(data.Length); }
        if (status.IsSuccess) { status = CheckBounds(zslba, nlb); }
        if (status.IsSuccess && HasZrwa(Geometry.ZoneOf(zslba))) { status = NvmeStatus.InvalidZoneOperation; }
        if (status.IsSuccess && zslba % Geometry.ZoneSizeLbas != 0) { status = NvmeStatus.InvalidField; }
        if (status.IsSuccess && data.Length > Geometry.ZoneAppendLimitBytes) { status = NvmeStatus.InvalidField; }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return WriteAt(zslba, nlb, data, zeroes: false, fua, append: true, out assignedLba);
    }

    /// <summary>
    /// Writes refused with Zone Invalid Write because their SLBA lay ahead of the zone's write pointer: what a host
    /// that reorders the writes of one zone causes (Linux before 6.10 with I/O scheduler none over several I/O
    /// queues). A write behind the write pointer is a different bug and not counted.
    /// </summary>
    public long WritesAheadOfWritePointer => Interlocked.Read(ref _writesAheadOfWritePointer);

    /// <summary>Flush: makes every completed write and the zone state durable.</summary>
    public NvmeStatus Flush()
    {
        var status = CommitData();
        if (status.IsSuccess)
        {
            MarkAllDurable();
            _writeLog?.Record(WriteLogKind.Flush, WriteLogFlags.None, 0, 0, 0, default);
        }
        return status;
    }

    /// <summary>Dataset Management deallocate: the range reads as zeros afterwards; write pointers do not move.</summary>
    public NvmeStatus Deallocate(ulong slba, uint blockCount)
    {
        var status = CheckBounds(slba, blockCount);
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        if (blockCount == 0)
        {
            return NvmeStatus.Success;
        }
        if (!IsZoned)
        {
            // Deallocated blocks read as zeros: a change a power cut may undo, as a write of zeros.
            status = WriteConventional(slba, blockCount, default, zeroes: true, fua: false);
        }
        else
        {
            // On a zoned namespace only whole blocks below the write pointer are data; the rest already reads as zeros.
            status = TryZero(Geometry.ByteOffset(slba), (long)blockCount << Geometry.BlockShift) ? NvmeStatus.Success : NvmeStatus.InternalError;
        }
        if (!status.IsSuccess)
        {
            return NvmeStatus.InternalError;
        }
        _writeLog?.Record(WriteLogKind.Deallocate, WriteLogFlags.None, 0, slba, blockCount, default);
        return NvmeStatus.Success;
    }

    /// <summary>
    /// Verify: reads <paramref name="blockCount"/> blocks from <paramref name="slba"/> and returns no data. QEMU's
    /// checks only: the Verify Size Limit (Invalid Field) and bounds; no zone rules (Offline zones and zone
    /// boundaries are not checked).
    /// </summary>
    public NvmeStatus Verify(ulong slba, uint blockCount)
    {
        NvmeStatus status =
            ((long)blockCount << Geometry.BlockShift) > Geometry.VerifyLimitBytes ? NvmeStatus.InvalidField :
            CheckBounds(slba, blockCount);
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return ReadChunks(slba, blockCount, default);
    }

    /// <summary>
    /// Compare: <paramref name="data"/> against the blocks at <paramref name="slba"/>; Compare Failure (with DNR)
    /// when they differ. QEMU's checks: MDTS, bounds, no zone rules. Unwritten blocks compare as zeros.
    /// </summary>
    public NvmeStatus Compare(ulong slba, ReadOnlySpan<byte> data)
    {
        var status = CheckTransfer(data.Length, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(data.Length); }
        if (status.IsSuccess) { status = CheckBounds(slba, nlb); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        return ReadChunks(slba, nlb, data);
    }

    // Reads blocks in pieces of at most 64 KiB; compares them with `expected` unless it is empty.
    private NvmeStatus ReadChunks(ulong slba, uint blockCount, ReadOnlySpan<byte> expected)
    {
        int shift = Geometry.BlockShift;
        int chunkBlocks = Math.Max(1, (64 << 10) >> shift);
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(chunkBlocks << shift);
        try
        {
            for (uint done = 0; done < blockCount;)
            {
                int n = (int)Math.Min((uint)chunkBlocks, blockCount - done);
                Span<byte> chunk = buffer.AsSpan(0, n << shift);
                NvmeStatus status = ReadData(slba + done, chunk);
                if (!status.IsSuccess)
                {
                    return status;
                }
                if (!expected.IsEmpty && !chunk.SequenceEqual(expected.Slice((int)done << shift, n << shift)))
                {
                    return NvmeStatus.CompareFailure.WithDnr();
                }
                done += (uint)n;
            }
            return NvmeStatus.Success;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private NvmeStatus WriteAt(ulong slba, uint nlb, ReadOnlySpan<byte> data, bool zeroes, bool fua, bool append, out ulong assignedLba)
    {
        assignedLba = slba;
        if (!IsZoned)
        {
            var s = WriteConventional(slba, nlb, data, zeroes, fua);
            if (s.IsSuccess)
            {
                RecordData(zeroes ? WriteLogKind.WriteZeroes : WriteLogKind.Write, slba, nlb, data, fua);
            }
            return s;
        }

        uint zi = Geometry.ZoneOf(slba);
        lock (_zoneLocks[zi])
        {
            if (append)
            {
                // Only commands holding this zone's lock move its write pointer.
                slba = _zones.WritePointerOf(zi);
                assignedLba = slba;
            }
            // A write that changes nothing but its write pointer takes no state lock (WriteKeepsState says why).
            bool keepsState = _zones.WriteKeepsState(zi, slba, nlb);
            NvmeStatus status;
            if (keepsState)
            {
                status = CheckZoneWrite(zi, slba, nlb);
            }
            else
            {
                lock (_stateLock)
                {
                    status = CheckZoneWrite(zi, slba, nlb);
                    if (status.IsSuccess)
                    {
                        status = Open(zi, implicitly: true);
                    }
                }
            }
            if (!status.IsSuccess)
            {
                if (status == NvmeStatus.ZoneInvalidWrite && slba > _zones.WritePointerOf(zi))
                {
                    Interlocked.Increment(ref _writesAheadOfWritePointer);
                }
                return status.WithDnr();
            }

            status = ZeroZrwaGap(zi, slba) ? WriteData(slba, nlb, data, zeroes) : NvmeStatus.WriteFault;
            if (!status.IsSuccess)
            {
                // The write pointer stays where it was: the data is not known to be there.
                return status;
            }
            if (keepsState)
            {
                CompleteZonedWrite(zi, slba, nlb);
            }
            else
            {
                lock (_stateLock)
                {
                    CompleteZonedWrite(zi, slba, nlb);
                }
            }
            RecordData(append ? WriteLogKind.Append : zeroes ? WriteLogKind.WriteZeroes : WriteLogKind.Write, slba, nlb, data, fua);
            RecordWrite(zi);
            Interlocked.Increment(ref _changes);
            if (!fua)
            {
                return NvmeStatus.Success;
            }
            // FUA: this write (and so the zone below its end, written in order) is durable before it completes;
            // other zones are not flushed by it. Committed under the zone lock so no later write of the zone counts.
            status = CommitData();
            if (status.IsSuccess)
            {
                MarkZoneDurable(zi);
            }
            return status;
        }
    }

    // A conventional write: the blocks' flushed contents are saved first so a power cut can put them back.
    private NvmeStatus WriteConventional(ulong slba, uint nlb, ReadOnlySpan<byte> data, bool zeroes, bool fua)
    {
        _cutLock.EnterReadLock();
        try
        {
            var status = CaptureUndo(slba, nlb, out bool captured);
            if (status.IsSuccess)
            {
                status = WriteData(slba, nlb, data, zeroes);
            }
            Interlocked.Increment(ref _changes);
            if (!status.IsSuccess || (captured && !fua))
            {
                return status;
            }
            status = CommitData();
            if (status.IsSuccess)
            {
                MarkBlocksDurable(slba, nlb);
            }
            return status;
        }
        finally
        {
            _cutLock.ExitReadLock();
        }
    }

    // Makes the data and zone state durable (what Flush and FUA do on the medium); Write Fault when that fails.
    private NvmeStatus CommitData()
    {
        try
        {
            Commit(force: false);
            return NvmeStatus.Success;
        }
        catch (IOException)
        {
            // QEMU's status for a failed flush of the backing file; no DNR: it may succeed once space is freed.
            return NvmeStatus.WriteFault;
        }
    }

    private NvmeStatus WriteData(ulong slba, uint nlb, ReadOnlySpan<byte> data, bool zeroes)
    {
        long offset = Geometry.ByteOffset(slba);
        bool ok = zeroes ? TryZero(offset, (long)nlb << Geometry.BlockShift) : TryWrite(offset, data);
        return ok ? NvmeStatus.Success : NvmeStatus.WriteFault;
    }

    // Backstore failures become NVMe statuses (QEMU: Unrecovered Read Error, Write Fault), never exceptions.
    private bool TryRead(long offset, Span<byte> destination)
    {
        try { _backstore.Read(offset, destination); return true; }
        catch (IOException) { return false; }
    }

    private bool TryWrite(long offset, ReadOnlySpan<byte> data)
    {
        try { _backstore.Write(offset, data); return true; }
        catch (IOException) { return false; }
    }

    private bool TryZero(long offset, long length)
    {
        try { _backstore.Zero(offset, length); return true; }
        catch (IOException) { return false; }
    }

    // ---------------------------------------------------------------- checks (each one rule, QEMU's order)

    private NvmeStatus CheckTransfer(int bytes, out uint nlb)
    {
        nlb = (uint)(bytes >> Geometry.BlockShift);
        if (bytes <= 0 || (bytes & (Geometry.BlockSize - 1)) != 0)
        {
            return NvmeStatus.InvalidField;
        }
        return NvmeStatus.Success;
    }

    private NvmeStatus CheckMdts(long bytes) =>
        bytes > Geometry.MaxTransferBytes ? NvmeStatus.InvalidField : NvmeStatus.Success;

    private NvmeStatus CheckBounds(ulong slba, ulong nlb) =>
        ulong.MaxValue - slba < nlb || slba + nlb > Geometry.NamespaceSizeLbas ? NvmeStatus.LbaOutOfRange : NvmeStatus.Success;

    // The zone rules a command checks or applies; the caller holds the state lock unless it says otherwise.
    private NvmeStatus CheckZoneWrite(uint zi, ulong slba, uint nlb) => _zones.CheckWrite(zi, slba, nlb);

    private NvmeStatus Open(uint zi, bool implicitly) => _zones.Open(zi, implicitly);

    private void CompleteZonedWrite(uint zi, ulong slba, uint nlb) => _zones.CompleteWrite(zi, slba, nlb);

    private ulong DataEnd(uint zi) => _zones.DataEnd(zi);

    // Takes the state lock.
    private NvmeStatus CheckZoneRead(ulong slba, uint nlb)
    {
        lock (_stateLock)
        {
            return _zones.CheckRead(slba, nlb);
        }
    }

    // Takes the state lock.
    private bool HasZrwa(uint zi)
    {
        if (!Geometry.ZrwaSupported)
        {
            return false;
        }
        lock (_stateLock)
        {
            return _zones.HasZrwa(zi);
        }
    }
}

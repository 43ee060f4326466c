using System.Buffers;
using Zns.Nvme;

namespace Zns.Core.Zones;

/// <summary>
/// Read, Write, Zone Append, Write Zeroes, Compare and Verify on a namespace whose blocks carry metadata (QEMU's
/// <c>ms</c>), with end-to-end protection information when it has a PI type (<c>pi</c>).
/// </summary>
/// <remarks>
/// The host's buffers: with an extended LBA format (<c>mset=1</c>) each block's metadata follows its data in
/// <c>data</c>; otherwise <c>data</c> holds the data and <c>metadata</c> the metadata (MPTR). When PRACT is set and
/// the metadata is only the PI tuple, no metadata moves at all: the controller inserts it on writes and strips it on
/// reads. The backstore keeps the metadata after all data (QEMU's image layout), written after the data it belongs
/// to and made durable by the same flush before a commit moves the write pointer over it: the crash rules of the data
/// hold for it. Blocks above a zone's write pointer read as unwritten: zero data, zero metadata and a PI tuple of
/// all ones (no check looks at it), as QEMU reads deallocated blocks.
/// These paths rent their buffers from the shared pool; a namespace without metadata never comes here.
/// </remarks>
public sealed partial class ZonedNamespace
{
    /// <summary>Read with metadata: see the type's remarks for the buffers.</summary>
    public NvmeStatus Read(ulong slba, Span<byte> data, Span<byte> metadata, in ProtectionFields pi)
    {
        MetadataFormat format = Geometry.Metadata;
        if (!format.HasMetadata)
        {
            return Read(slba, data);
        }
        var status = CheckHostBlocks(data.Length, metadata.Length, in pi, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(data.Length); }
        if (status.IsSuccess) { status = CheckBounds(slba, nlb); }
        if (status.IsSuccess && IsZoned) { status = CheckZoneRead(slba, nlb); }
        if (status.IsSuccess && format.HasPi) { status = ProtectionInformation.CheckPrinfo(format, in pi, slba); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        using var run = new BlockRun(this, nlb, in pi);
        status = ReadBlocks(slba, run.Data, run.Metadata);
        if (status.IsSuccess && format.HasPi)
        {
            status = ProtectionInformation.Check(format, Geometry.BlockSize, run.Data, run.Metadata, in pi, pi.ReferenceTag);
        }
        if (status.IsSuccess)
        {
            run.ToHost(data, metadata);
        }
        return status;
    }

    /// <summary>Write with metadata: PRACT generates the PI, PRCHK checks the host's.</summary>
    public NvmeStatus Write(ulong slba, ReadOnlySpan<byte> data, ReadOnlySpan<byte> metadata, in ProtectionFields pi, bool fua = false)
    {
        if (!Geometry.Metadata.HasMetadata)
        {
            return Write(slba, data, fua);
        }
        var status = CheckHostBlocks(data.Length, metadata.Length, in pi, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(data.Length); }
        if (status.IsSuccess) { status = CheckBounds(slba, nlb); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        using var run = new BlockRun(this, nlb, in pi);
        run.FromHost(data, metadata);
        status = Protect(slba, run, in pi);
        return status.IsSuccess ? WriteAt(slba, nlb, run.Data, zeroes: false, fua, append: false, out _, run.Metadata) : status;
    }

    /// <summary>
    /// Zone Append with metadata. Type 1 needs PIREMAP and Type 3 refuses it (Invalid Protection Information, as QEMU);
    /// with PIREMAP (Types 1 and 2) the PI is generated or checked against ILBRT as the host gave it, then each stored
    /// reference tag moves up by how far past the zone start the data landed, so that it follows the block's LBA.
    /// </summary>
    public NvmeStatus Append(ulong zslba, ReadOnlySpan<byte> data, ReadOnlySpan<byte> metadata, in ProtectionFields pi, out ulong assignedLba, bool fua = false)
    {
        MetadataFormat format = Geometry.Metadata;
        if (!format.HasMetadata)
        {
            return Append(zslba, data, out assignedLba, fua);
        }
        assignedLba = 0;
        if (!IsZoned)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        var status = CheckHostBlocks(data.Length, metadata.Length, in pi, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(data.Length); }
        if (status.IsSuccess) { status = CheckBounds(zslba, nlb); }
        if (status.IsSuccess && HasZrwa(Geometry.ZoneOf(zslba))) { status = NvmeStatus.InvalidZoneOperation; }
        if (status.IsSuccess && zslba % Geometry.ZoneSizeLbas != 0) { status = NvmeStatus.InvalidField; }
        if (status.IsSuccess && ((long)nlb << Geometry.BlockShift) > Geometry.ZoneAppendLimitBytes) { status = NvmeStatus.InvalidField; }
        if (status.IsSuccess) { status = CheckRemap(format, in pi); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        using var run = new BlockRun(this, nlb, in pi);
        run.FromHost(data, metadata);
        status = Protect(zslba, run, in pi);
        return status.IsSuccess
            ? WriteAt(zslba, nlb, run.Data, zeroes: false, fua, append: true, out assignedLba, run.Metadata, remap: pi.PiRemap)
            : status;
    }

    /// <summary>
    /// Write Zeroes with metadata: no PRCHK bits (Invalid Protection Information); with PRACT the PI of the zero blocks
    /// is generated (guard of zeros, LBAT, reference tags from ILBRT), without it the blocks read as unwritten.
    /// </summary>
    public NvmeStatus WriteZeroes(ulong slba, uint blockCount, in ProtectionFields pi, bool fua = false)
    {
        MetadataFormat format = Geometry.Metadata;
        if (!format.HasMetadata)
        {
            return WriteZeroes(slba, blockCount, fua);
        }
        if (blockCount == 0)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        var status = CheckBounds(slba, blockCount);
        if (status.IsSuccess && format.HasPi && (pi.Prinfo & ProtectionFields.CheckMask) != 0) { status = NvmeStatus.InvalidProtectionInformation; }
        if (status.IsSuccess && format.HasPi && pi.Pract) { status = ProtectionInformation.CheckPrinfo(format, in pi, slba); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        // The metadata of every block is written, so it is bounded by what one command may write (MDTS).
        if ((long)blockCount * format.MetadataSize > Geometry.MaxTransferBytes)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        int length = (int)blockCount * format.MetadataSize;
        byte[] rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            Span<byte> md = rented.AsSpan(0, length);
            FillZeroMetadata(md, blockCount, in pi);
            return WriteAt(slba, blockCount, default, zeroes: true, fua, append: false, out _, md);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Compare with metadata: the stored blocks' PI is checked as PRCHK asks, then data and (when transferred)
    /// metadata are compared; Compare Failure when they differ.
    /// </summary>
    public NvmeStatus Compare(ulong slba, ReadOnlySpan<byte> data, ReadOnlySpan<byte> metadata, in ProtectionFields pi)
    {
        MetadataFormat format = Geometry.Metadata;
        if (!format.HasMetadata)
        {
            return Compare(slba, data);
        }
        var status = CheckHostBlocks(data.Length, metadata.Length, in pi, out uint nlb);
        if (status.IsSuccess) { status = CheckMdts(data.Length); }
        if (status.IsSuccess) { status = CheckBounds(slba, nlb); }
        if (status.IsSuccess && format.HasPi) { status = ProtectionInformation.CheckPrinfo(format, in pi, slba); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        using var stored = new BlockRun(this, nlb, in pi);
        using var given = new BlockRun(this, nlb, in pi);
        status = ReadBlocks(slba, stored.Data, stored.Metadata);
        if (status.IsSuccess && format.HasPi)
        {
            status = ProtectionInformation.Check(format, Geometry.BlockSize, stored.Data, stored.Metadata, in pi, pi.ReferenceTag);
        }
        if (!status.IsSuccess)
        {
            return status;
        }
        given.FromHost(data, metadata);
        bool same = stored.Data.SequenceEqual(given.Data) && (!stored.MetadataTransferred || stored.Metadata.SequenceEqual(given.Metadata));
        return same ? NvmeStatus.Success : NvmeStatus.CompareFailure.WithDnr();
    }

    /// <summary>Verify with PI: the stored blocks are read and their PI checked as PRCHK asks; nothing is returned.</summary>
    public NvmeStatus Verify(ulong slba, uint blockCount, in ProtectionFields pi)
    {
        MetadataFormat format = Geometry.Metadata;
        if (!format.HasPi)
        {
            return Verify(slba, blockCount);
        }
        NvmeStatus status =
            ((long)blockCount << Geometry.BlockShift) > Geometry.VerifyLimitBytes ? NvmeStatus.InvalidField :
            CheckBounds(slba, blockCount);
        if (status.IsSuccess) { status = ProtectionInformation.CheckPrinfo(format, in pi, slba); }
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }
        int chunkBlocks = Math.Max(1, (64 << 10) >> Geometry.BlockShift);
        byte[] data = ArrayPool<byte>.Shared.Rent(chunkBlocks << Geometry.BlockShift);
        byte[] md = ArrayPool<byte>.Shared.Rent(chunkBlocks * format.MetadataSize);
        try
        {
            ulong referenceTag = pi.ReferenceTag;
            for (uint done = 0; done < blockCount;)
            {
                int n = (int)Math.Min((uint)chunkBlocks, blockCount - done);
                Span<byte> d = data.AsSpan(0, n << Geometry.BlockShift);
                Span<byte> m = md.AsSpan(0, n * format.MetadataSize);
                status = ReadBlocks(slba + done, d, m);
                if (status.IsSuccess)
                {
                    status = ProtectionInformation.Check(format, Geometry.BlockSize, d, m, in pi, referenceTag);
                }
                if (!status.IsSuccess)
                {
                    return status;
                }
                done += (uint)n;
                referenceTag += format.PiType == 3 ? 0 : (ulong)n;
            }
            return NvmeStatus.Success;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(data);
            ArrayPool<byte>.Shared.Return(md);
        }
    }

    // ---------------------------------------------------------------- pieces

    // The blocks a host buffer holds: data and, for an extended LBA format not stripped by PRACT, metadata per
    // block; a separate metadata buffer must hold exactly theirs (none when PRACT strips it).
    private NvmeStatus CheckHostBlocks(int dataBytes, int metadataBytes, in ProtectionFields pi, out uint nlb)
    {
        MetadataFormat format = Geometry.Metadata;
        bool transferred = !format.PractStrips(pi);
        int perBlock = Geometry.BlockSize + (format.Extended && transferred ? format.MetadataSize : 0);
        nlb = (uint)(dataBytes / perBlock);
        if (dataBytes <= 0 || dataBytes % perBlock != 0)
        {
            return NvmeStatus.InvalidField;
        }
        long separate = !format.Extended && transferred ? (long)nlb * format.MetadataSize : 0;
        return metadataBytes == separate ? NvmeStatus.Success : NvmeStatus.InvalidField;
    }

    // Type 1 requires PIREMAP on Zone Append, Type 3 refuses it (QEMU's rule).
    private static NvmeStatus CheckRemap(in MetadataFormat format, in ProtectionFields pi) => format.PiType switch
    {
        1 when !pi.PiRemap => NvmeStatus.InvalidProtectionInformation,
        3 when pi.PiRemap => NvmeStatus.InvalidProtectionInformation,
        _ => NvmeStatus.Success,
    };

    // The PI of a write: generated with PRACT, else checked as PRCHK asks; nothing without PI.
    private NvmeStatus Protect(ulong slba, BlockRun run, in ProtectionFields pi)
    {
        MetadataFormat format = Geometry.Metadata;
        if (!format.HasPi)
        {
            return NvmeStatus.Success;
        }
        var status = ProtectionInformation.CheckPrinfo(format, in pi, slba);
        if (!status.IsSuccess)
        {
            return status;
        }
        if (pi.Pract)
        {
            ProtectionInformation.Generate(format, Geometry.BlockSize, run.Data, run.Metadata, pi.ApplicationTag, pi.ReferenceTag);
            return NvmeStatus.Success;
        }
        return ProtectionInformation.Check(format, Geometry.BlockSize, run.Data, run.Metadata, in pi, pi.ReferenceTag);
    }

    // Write Zeroes' metadata: generated PI of zero blocks with PRACT, else the unwritten pattern.
    private void FillZeroMetadata(Span<byte> metadata, uint blockCount, in ProtectionFields pi)
    {
        MetadataFormat format = Geometry.Metadata;
        ProtectionInformation.FillUnwritten(format, metadata);
        if (!format.HasPi || !pi.Pract)
        {
            return;
        }
        metadata.Clear();
        ulong guard = ProtectionInformation.Guard(format, ZeroBlock, metadata[..format.MetadataSize]);
        ulong referenceTag = pi.ReferenceTag;
        for (int block = 0; block < blockCount; block++)
        {
            Span<byte> tuple = metadata.Slice(block * format.MetadataSize + format.PiOffset, format.PiSize);
            ProtectionInformation.WriteGuard(format, tuple, guard);
            ProtectionInformation.WriteTags(format, tuple, pi.ApplicationTag, referenceTag);
            referenceTag += format.PiType == 3 ? 0UL : 1UL;
        }
    }

    private byte[] ZeroBlock => _zeroBlock ??= new byte[Geometry.BlockSize];

    private byte[]? _zeroBlock;

    // Data and metadata as stored: per zone, blocks below where the zone's data ends come from the backstore, the rest
    // read as unwritten.
    private NvmeStatus ReadBlocks(ulong slba, Span<byte> data, Span<byte> metadata)
    {
        var status = ReadData(slba, data);
        if (!status.IsSuccess)
        {
            return status;
        }
        MetadataFormat format = Geometry.Metadata;
        int ms = format.MetadataSize;
        ulong lba = slba;
        while (!metadata.IsEmpty)
        {
            uint zi = Geometry.ZoneOf(lba);
            ulong zoneEnd = Geometry.ZoneStart(zi) + Geometry.ZoneSizeLbas;
            int segment = (int)Math.Min((ulong)(metadata.Length / ms), zoneEnd - lba);
            ulong dataEnd;
            lock (_stateLock)
            {
                dataEnd = DataEnd(zi);
            }
            int valid = lba >= dataEnd ? 0 : (int)Math.Min((ulong)segment, dataEnd - lba);
            if (valid > 0 && !TryRead(Geometry.MetadataByteOffset(lba), metadata[..(valid * ms)]))
            {
                return NvmeStatus.UnrecoveredReadError;
            }
            ProtectionInformation.FillUnwritten(format, metadata.Slice(valid * ms, (segment - valid) * ms));
            metadata = metadata[(segment * ms)..];
            lba += (ulong)segment;
        }
        return NvmeStatus.Success;
    }

    // Blocks that keep no data (a ZRWA gap, deallocated ones): their stored metadata becomes the unwritten pattern.
    private bool WriteUnwrittenMetadata(ulong slba, ulong count)
    {
        MetadataFormat format = Geometry.Metadata;
        if (!format.HasMetadata || count == 0)
        {
            return true;
        }
        int chunk = (int)Math.Min(count, 1024UL);
        byte[] rented = ArrayPool<byte>.Shared.Rent(chunk * format.MetadataSize);
        try
        {
            ProtectionInformation.FillUnwritten(format, rented.AsSpan(0, chunk * format.MetadataSize));
            for (ulong done = 0; done < count;)
            {
                int n = (int)Math.Min((ulong)chunk, count - done);
                if (!TryWrite(Geometry.MetadataByteOffset(slba + done), rented.AsSpan(0, n * format.MetadataSize)))
                {
                    return false;
                }
                done += (ulong)n;
            }
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// One command's blocks as the backstore keeps them: data and metadata apart, in pooled buffers, converted from
    /// and to the host's layout.
    /// </summary>
    private readonly ref struct BlockRun
    {
        private readonly byte[] _data;
        private readonly byte[] _metadata;
        private readonly int _blockSize, _metadataSize;
        private readonly bool _interleaved;

        public BlockRun(ZonedNamespace ns, uint nlb, in ProtectionFields pi)
        {
            MetadataFormat format = ns.Geometry.Metadata;
            _blockSize = ns.Geometry.BlockSize;
            _metadataSize = format.MetadataSize;
            MetadataTransferred = !format.PractStrips(pi);
            _interleaved = format.Extended && MetadataTransferred;
            int dataLength = (int)nlb << ns.Geometry.BlockShift;
            _data = ArrayPool<byte>.Shared.Rent(dataLength);
            _metadata = ArrayPool<byte>.Shared.Rent((int)nlb * _metadataSize);
            Data = _data.AsSpan(0, dataLength);
            Metadata = _metadata.AsSpan(0, (int)nlb * _metadataSize);
        }

        public Span<byte> Data { get; }

        public Span<byte> Metadata { get; }

        /// <summary>Whether the host's buffers carry the metadata (not stripped by PRACT).</summary>
        public bool MetadataTransferred { get; }

        public void FromHost(ReadOnlySpan<byte> data, ReadOnlySpan<byte> metadata)
        {
            if (_interleaved)
            {
                int per = _blockSize + _metadataSize;
                for (int b = 0; b * _blockSize < Data.Length; b++)
                {
                    data.Slice(b * per, _blockSize).CopyTo(Data.Slice(b * _blockSize, _blockSize));
                    data.Slice(b * per + _blockSize, _metadataSize).CopyTo(Metadata.Slice(b * _metadataSize, _metadataSize));
                }
                return;
            }
            data.CopyTo(Data);
            if (MetadataTransferred)
            {
                metadata.CopyTo(Metadata);
            }
            else
            {
                Metadata.Clear();
            }
        }

        public void ToHost(Span<byte> data, Span<byte> metadata)
        {
            if (_interleaved)
            {
                int per = _blockSize + _metadataSize;
                for (int b = 0; b * _blockSize < Data.Length; b++)
                {
                    Data.Slice(b * _blockSize, _blockSize).CopyTo(data.Slice(b * per, _blockSize));
                    Metadata.Slice(b * _metadataSize, _metadataSize).CopyTo(data.Slice(b * per + _blockSize, _metadataSize));
                }
                return;
            }
            Data.CopyTo(data);
            if (MetadataTransferred)
            {
                Metadata.CopyTo(metadata);
            }
        }

        public void Dispose()
        {
            ArrayPool<byte>.Shared.Return(_data);
            ArrayPool<byte>.Shared.Return(_metadata);
        }
    }
}

using System.Buffers.Binary;
using Zns.Nvme;

namespace Zns.Target.Pcie;

/// <summary>
/// Turns a command's SGL (PSDT 01b or 10b; NVMe Base 2.0 §4.1.2) into host segments: the first descriptor sits in the
/// SQE's DPTR; a Segment descriptor points at an array of descriptors whose last one may point at the next segment, a
/// Last Segment descriptor at the final array. Data Block descriptors carry data, Bit Bucket descriptors (reads only)
/// mark bytes the host does not want. The descriptors must describe exactly the command's transfer (SGLS bit 20 is
/// clear), every address lies in mapped guest memory, and the walk is bounded however the segments point at each
/// other.
/// </summary>
internal static unsafe class SglWalker
{
    /// <summary>Identify Controller SGLS of the PCIe controller: SGLs without alignment rules (bits 1:0 = 01b), Bit Bucket (bit 16).</summary>
    public const uint SupportedSgls = 0x0001_0001;

    private const int DescriptorSize = 16;
    private const byte DataBlock = 0x0, BitBucket = 0x1, Segment = 0x2, LastSegment = 0x3;

    // However segments chain, no command reads more descriptors than this (a loop of segments ends here).
    private const int MaxDescriptors = 4096;

    /// <summary>
    /// Walks the SGL of a transfer of <paramref name="length"/> bytes. Statuses: SGL Descriptor Type Invalid (an
    /// unknown type or subtype, keyed or transport descriptors, a Bit Bucket in a write), Invalid SGL Segment
    /// Descriptor (a segment length of zero or not a multiple of 16, a segment descriptor inside a last segment or
    /// before the end of a segment), Data SGL Length Invalid (the data descriptors add up to more or less than the
    /// transfer), Invalid Number of SGL Descriptors (more pieces than the command can hold, or a segment chain
    /// without end), Data Transfer Error (memory outside the mapping). A pin on <paramref name="memory"/> must be held.
    /// </summary>
    public static NvmeStatus Walk(GuestMemory memory, ReadOnlySpan<byte> dptr, int length, bool deviceWrites,
        Span<GuestSegment> segments, out int count)
    {
        count = 0;
        byte* first = stackalloc byte[DescriptorSize];
        dptr[..DescriptorSize].CopyTo(new Span<byte>(first, DescriptorSize));
        // d: the descriptor being read; end: the end of the segment array it is in (d + 16 for the SQE's own).
        byte* d = first, end = first + DescriptorSize;
        bool inLastSegment = false;
        int remaining = length, visited = 1;
        while (true)
        {
            byte id = d[15];
            if ((id & 0xF) != 0)
            {
                // Subtype 0h (Address) is the only one a memory-based controller uses.
                return NvmeStatus.SglDescriptorTypeInvalid.WithDnr();
            }
            ulong address = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(d, 8));
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(d + 8, 4));
            bool last = d + DescriptorSize == end;
            switch (id >> 4)
            {
                case DataBlock:
                case BitBucket:
                {
                    bool bucket = id >> 4 == BitBucket;
                    if (bucket && !deviceWrites)
                    {
                        return NvmeStatus.SglDescriptorTypeInvalid.WithDnr();
                    }
                    if (size > (uint)remaining)
                    {
                        return NvmeStatus.DataSglLengthInvalid.WithDnr();
                    }
                    var status = bucket
                        ? AddBucket((int)size, segments, ref count)
                        : Add(memory, address, (int)size, deviceWrites, segments, ref count);
                    if (!status.IsSuccess)
                    {
                        return status;
                    }
                    remaining -= (int)size;
                    if (last)
                    {
                        return remaining == 0 ? NvmeStatus.Success : NvmeStatus.DataSglLengthInvalid.WithDnr();
                    }
                    d += DescriptorSize;
                    break;
                }
                case Segment:
                case LastSegment:
                {
                    // Only the last descriptor of a segment may point on, and not from inside the last segment.
                    if (inLastSegment || !last || size == 0 || size % DescriptorSize != 0)
                    {
                        return NvmeStatus.InvalidSglSegmentDescriptor.WithDnr();
                    }
                    int entries = (int)(size / DescriptorSize);
                    if (entries > MaxDescriptors - visited)
                    {
                        return NvmeStatus.InvalidNumberOfSglDescriptors.WithDnr();
                    }
                    if (!memory.TryTranslate(address, (int)size, write: false, out byte* host))
                    {
                        return NvmeStatus.DataTransferError;
                    }
                    visited += entries;
                    inLastSegment = id >> 4 == LastSegment;
                    d = host;
                    end = host + size;
                    break;
                }
                default:
                    // Keyed Data Block and Transport SGL Data Block belong to fabrics.
                    return NvmeStatus.SglDescriptorTypeInvalid.WithDnr();
            }
        }
    }

    private static NvmeStatus Add(GuestMemory memory, ulong address, int length, bool deviceWrites,
        Span<GuestSegment> segments, ref int count)
    {
        if (length == 0)
        {
            return NvmeStatus.Success;
        }
        if (!memory.TryTranslate(address, length, deviceWrites, out byte* host))
        {
            return NvmeStatus.DataTransferError;
        }
        return Append(segments, ref count, host, length);
    }

    private static NvmeStatus AddBucket(int length, Span<GuestSegment> segments, ref int count) =>
        length == 0 ? NvmeStatus.Success : Append(segments, ref count, null, length);

    private static NvmeStatus Append(Span<GuestSegment> segments, ref int count, byte* host, int length) =>
        PrpWalker.TryAppend(segments, ref count, host, length) ? NvmeStatus.Success : NvmeStatus.InvalidNumberOfSglDescriptors.WithDnr();
}

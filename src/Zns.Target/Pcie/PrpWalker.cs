using System.Buffers.Binary;
using Zns.Nvme;

namespace Zns.Target.Pcie;

/// <summary>One piece of a command's data buffer, already translated into this process; no host address for an SGL Bit Bucket.</summary>
internal unsafe struct GuestSegment
{
    public byte* Host;
    public int Length;
}

/// <summary>
/// Turns a command's PRP1/PRP2 into host segments (NVMe Base 2.0 §4.1.1, memory page size 4 KiB since CC.MPS = 0):
/// PRP1 with an offset, then either PRP2 as the second page or PRP2 pointing at a PRP list whose last entry chains to
/// the next list page. Every page and every list entry must lie in mapped guest memory; adjacent pages that are also
/// adjacent in this process are merged, so a physically contiguous buffer becomes one segment.
/// </summary>
internal static unsafe class PrpWalker
{
    public const int PageSize = 4096;
    private const ulong PageMask = PageSize - 1;

    /// <summary>Segments needed at most for <paramref name="length"/> bytes.</summary>
    public static int MaxSegments(int length) => length / PageSize + 2;

    /// <summary>
    /// Walks the PRPs of a transfer of <paramref name="length"/> bytes. Statuses: PRP Offset Invalid for an entry
    /// after the first that is not page aligned (or a misaligned first entry / list pointer), Data Transfer Error
    /// for memory outside the mapping. A pin on <paramref name="memory"/> must be held.
    /// </summary>
    public static NvmeStatus Walk(GuestMemory memory, ulong prp1, ulong prp2, int length, bool deviceWrites,
        Span<GuestSegment> segments, out int count)
    {
        count = 0;
        if (length == 0)
        {
            return NvmeStatus.Success;
        }
        if ((prp1 & 3) != 0)
        {
            // The first entry's offset must be dword aligned.
            return NvmeStatus.PrpOffsetInvalid.WithDnr();
        }
        int first = (int)Math.Min((ulong)length, PageSize - (prp1 & PageMask));
        NvmeStatus status = Add(memory, prp1, first, deviceWrites, segments, ref count);
        if (!status.IsSuccess)
        {
            return status;
        }
        int remaining = length - first;
        if (remaining == 0)
        {
            return NvmeStatus.Success;
        }
        if (remaining <= PageSize)
        {
            return (prp2 & PageMask) != 0
                ? NvmeStatus.PrpOffsetInvalid.WithDnr()
                : Add(memory, prp2, remaining, deviceWrites, segments, ref count);
        }
        // PRP2 is a list pointer; its offset must be qword aligned.
        if ((prp2 & 7) != 0)
        {
            return NvmeStatus.PrpOffsetInvalid.WithDnr();
        }
        ulong list = prp2;
        while (remaining > 0)
        {
            int entriesInPage = (int)((PageSize - (list & PageMask)) / 8);
            int pagesLeft = (remaining + PageSize - 1) / PageSize;
            // The last entry of a list page chains to the next list page when more pages follow than fit here.
            bool chains = pagesLeft > entriesInPage;
            int entries = chains ? entriesInPage - 1 : pagesLeft;
            if (!memory.TryTranslate(list, (entries + (chains ? 1 : 0)) * 8, write: false, out byte* listHost))
            {
                return NvmeStatus.DataTransferError;
            }
            var listSpan = new ReadOnlySpan<byte>(listHost, (entries + (chains ? 1 : 0)) * 8);
            for (int i = 0; i < entries; i++)
            {
                ulong entry = BinaryPrimitives.ReadUInt64LittleEndian(listSpan[(i * 8)..]);
                if ((entry & PageMask) != 0)
                {
                    return NvmeStatus.PrpOffsetInvalid.WithDnr();
                }
                int n = Math.Min(remaining, PageSize);
                status = Add(memory, entry, n, deviceWrites, segments, ref count);
                if (!status.IsSuccess)
                {
                    return status;
                }
                remaining -= n;
            }
            if (chains)
            {
                list = BinaryPrimitives.ReadUInt64LittleEndian(listSpan[(entries * 8)..]);
                if ((list & 7) != 0)
                {
                    return NvmeStatus.PrpOffsetInvalid.WithDnr();
                }
            }
        }
        return NvmeStatus.Success;
    }

    private static NvmeStatus Add(GuestMemory memory, ulong address, int length, bool deviceWrites,
        Span<GuestSegment> segments, ref int count)
    {
        if (!memory.TryTranslate(address, length, deviceWrites, out byte* host))
        {
            return NvmeStatus.DataTransferError;
        }
        return TryAppend(segments, ref count, host, length) ? NvmeStatus.Success : NvmeStatus.DataTransferError;
    }

    /// <summary>
    /// Appends a piece (<paramref name="host"/> null for an SGL Bit Bucket), merged into the last one when it continues
    /// it in this process; false when the segments are full.
    /// </summary>
    internal static bool TryAppend(Span<GuestSegment> segments, ref int count, byte* host, int length)
    {
        if (count > 0)
        {
            ref GuestSegment last = ref segments[count - 1];
            bool continues = host == null ? last.Host == null : last.Host != null && last.Host + last.Length == host;
            if (continues)
            {
                last.Length += length;
                return true;
            }
        }
        if (count == segments.Length)
        {
            return false;
        }
        segments[count++] = new GuestSegment { Host = host, Length = length };
        return true;
    }

    /// <summary>Copies guest segments into <paramref name="destination"/> (host-to-controller data).</summary>
    public static void Gather(ReadOnlySpan<GuestSegment> segments, Span<byte> destination)
    {
        int at = 0;
        foreach (GuestSegment s in segments)
        {
            new ReadOnlySpan<byte>(s.Host, s.Length).CopyTo(destination[at..]);
            at += s.Length;
        }
    }

    /// <summary>Copies <paramref name="source"/> into guest segments (controller-to-host data); an SGL Bit Bucket (no host address) drops its bytes.</summary>
    public static void Scatter(ReadOnlySpan<byte> source, ReadOnlySpan<GuestSegment> segments)
    {
        int at = 0;
        foreach (GuestSegment s in segments)
        {
            if (s.Host != null)
            {
                source.Slice(at, s.Length).CopyTo(new Span<byte>(s.Host, s.Length));
            }
            at += s.Length;
        }
    }
}

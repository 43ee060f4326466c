using System.Buffers.Binary;
using Zns.Nvme;

namespace Zns.Core.Zones;

/// <summary>
/// The namespaces Copy's source range entries of format 2h/3h may name by NSID: those of the controller the command
/// came through. Implemented by the controller layer, which knows which namespaces this host has attached.
/// </summary>
public interface ICopySourceNamespaces
{
    /// <summary>
    /// The namespace <paramref name="nsid"/> names, or QEMU's status for it: Invalid Namespace or Format for 0,
    /// FFFFFFFFh and NSIDs above NN; Invalid Field for an NSID without an attached namespace (both with DNR).
    /// </summary>
    NvmeStatus Resolve(uint nsid, out ZonedNamespace? source);
}

/// <summary>
/// What a Copy needs from the controller it came through: the destination's NSID (the command's), the descriptor
/// formats the host may use (OCFS, with formats 2h and 3h only once the host has set their bits in Host Behavior
/// Support's CDFE), and the namespaces a format 2h/3h entry may name.
/// </summary>
/// <param name="Nsid">The command's NSID: the destination namespace.</param>
/// <param name="EnabledFormats">Bit n set: descriptor format n may be used.</param>
/// <param name="Sources">Where other namespaces come from; null: only the destination itself.</param>
public readonly record struct CopyContext(uint Nsid, ushort EnabledFormats, ICopySourceNamespaces? Sources)
{
    /// <summary>Formats 0h and 1h, always enabled (2h and 3h need Host Behavior Support CDFE).</summary>
    public const ushort AlwaysEnabledFormats = 0x3;

    /// <summary>A Copy that may only read the destination namespace: formats 2h and 3h are not enabled.</summary>
    public static CopyContext SameNamespace => new(0, AlwaysEnabledFormats, null);
}

public sealed partial class ZonedNamespace
{
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

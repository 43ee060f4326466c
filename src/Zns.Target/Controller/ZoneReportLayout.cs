using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Zones;

namespace Zns.Nvme.Layouts;

/// <summary>
/// Zone Management Receive: the command's checks and its data, a report header (Number of Zones) followed by Zone
/// Descriptors, each followed by the zone's descriptor extension in an Extended Report.
/// </summary>
public static class ZoneReportLayout
{
    /// <summary>Size of the report header; bytes 0..7 are the Number of Zones.</summary>
    public const int HeaderSize = 64;

    /// <summary>Size of a Zone Descriptor.</summary>
    public const int DescriptorSize = 64;

    // Zone Descriptor offsets: ZT (bits 3:0), ZS (bits 7:4), ZA, ZCAP, ZSLBA, WP.
    private const int Zt = 0, Zs = 1, Za = 2, Zcap = 8, Zslba = 16, Wp = 24;
    private const byte SequentialWriteRequired = 0x2;

    /// <summary>
    /// Zone Management Receive: fills the whole <paramref name="buffer"/> with a report header and zone descriptors
    /// starting at the zone holding <paramref name="slba"/>, filtered by <paramref name="zrasf"/>. With
    /// <paramref name="partial"/> the count is the number of descriptors that fit, otherwise every matching zone to
    /// the end of the namespace.
    /// </summary>
    public static NvmeStatus ZoneManagementReceive(this ZonedNamespace ns, ulong slba, byte zra, byte zrasf, bool partial, Span<byte> buffer)
    {
        if (!ns.IsZoned)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        ZoneGeometry g = ns.Geometry;
        NvmeStatus status =
            slba >= g.NamespaceSizeLbas ? NvmeStatus.LbaOutOfRange :
            zra > (byte)ZoneReceiveAction.ExtendedReport ? NvmeStatus.InvalidField :
            zra == (byte)ZoneReceiveAction.ExtendedReport && g.DescriptorExtensionSize == 0 ? NvmeStatus.InvalidField :
            zrasf > (byte)ZoneReportFilter.Offline ? NvmeStatus.InvalidField :
            buffer.Length < HeaderSize ? NvmeStatus.InvalidField :
            buffer.Length > g.MaxTransferBytes ? NvmeStatus.InvalidField :
            NvmeStatus.Success;
        if (!status.IsSuccess)
        {
            return status.WithDnr();
        }

        bool extended = zra == (byte)ZoneReceiveAction.ExtendedReport;
        int entrySize = DescriptorSize + (extended ? g.DescriptorExtensionSize : 0);
        buffer.Clear();
        var writer = new DescriptorWriter(buffer[HeaderSize..], entrySize, extended, partial);
        ns.ReportZones(slba, (ZoneReportFilter)zrasf, ref writer);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, writer.Count);
        return NvmeStatus.Success;
    }

    /// <summary>Writes one Zone Descriptor. The write pointer of a zone where it has no meaning is all ones, as QEMU reports it.</summary>
    public static void WriteDescriptor(Span<byte> d, in ZoneInfo zone)
    {
        d[Zt] = SequentialWriteRequired;
        d[Zs] = (byte)((byte)zone.State << 4);
        d[Za] = (byte)zone.Attributes;
        BinaryPrimitives.WriteUInt64LittleEndian(d[Zcap..], zone.Capacity);
        BinaryPrimitives.WriteUInt64LittleEndian(d[Zslba..], zone.StartLba);
        BinaryPrimitives.WriteUInt64LittleEndian(d[Wp..], zone.WritePointerValid ? zone.WritePointer : ulong.MaxValue);
    }

    // Places the descriptors that fit and counts the matching zones: all of them, or with Partial Report only the
    // ones placed.
    private ref struct DescriptorWriter(Span<byte> entries, int entrySize, bool extended, bool partial) : IZoneReportVisitor
    {
        private Span<byte> _free = entries;
        private readonly ulong _fit = (ulong)(entries.Length / entrySize);

        public ulong Count { get; private set; }

        public bool Visit(in ZoneInfo zone, ReadOnlySpan<byte> extension)
        {
            if (partial && Count >= _fit)
            {
                return false;
            }
            if (Count < _fit)
            {
                WriteDescriptor(_free, zone);
                if (extended)
                {
                    extension.CopyTo(_free[DescriptorSize..]);
                }
                _free = _free[entrySize..];
            }
            Count++;
            return !partial || Count < _fit;
        }
    }
}

// Temporary stand-in for the zone core API while it is being written on main. Linked into Zns.Target only when
// src/Zns.Core/Zones/ZonedNamespace.cs does not exist (see Zns.Target.csproj); deleted once main is merged.
using Zns.Core.Nvme;

namespace Zns.Core.Zones
{
    public enum ZoneState : byte { Empty = 1, ImplicitlyOpened = 2, ExplicitlyOpened = 3, Closed = 4, ReadOnly = 0xD, Full = 0xE, Offline = 0xF }

    public enum ZoneSendAction : byte { Close = 1, Finish = 2, Open = 3, Reset = 4, Offline = 5, SetDescriptorExtension = 0x10, FlushZrwa = 0x11 }

    public sealed record NamespaceOptions
    {
        public int LogicalBlockSize { get; init; } = 4096;
        public bool Zoned { get; init; } = true;
        public long ZoneSize { get; init; } = 128L << 20;
        public long ZoneCapacity { get; init; }
        public uint MaxOpen { get; init; }
        public uint MaxActive { get; init; }
        public byte Zasl { get; init; }
        public int DescriptorExtensionSize { get; init; }
        public bool CrossRead { get; init; }
        public bool AutoTransition { get; init; } = true;
        public byte Mdts { get; init; } = 7;
    }

    public sealed class ZoneGeometry
    {
        public int BlockSize { get; init; }
        public int BlockShift { get; init; }
        public ulong ZoneSizeLbas { get; init; }
        public ulong ZoneCapacityLbas { get; init; }
        public uint ZoneCount { get; init; }
        public ulong NamespaceSizeLbas { get; init; }
        public uint MaxOpen { get; init; }
        public uint MaxActive { get; init; }
        public int DescriptorExtensionSize { get; init; }
        public bool CrossRead { get; init; }
        public byte Mdts { get; init; }
        public byte Zasl { get; init; }
        public int MaxTransferBytes { get; init; }
        public int ZoneAppendLimitBytes { get; init; }
    }

    public sealed class ZonedNamespace : IDisposable
    {
        private readonly byte[] _data;
        private ZonedNamespace(long size, NamespaceOptions o)
        {
            _data = new byte[size];
            Options = o;
            int shift = System.Numerics.BitOperations.Log2((uint)o.LogicalBlockSize);
            ulong zsze = o.Zoned ? (ulong)(o.ZoneSize >> shift) : (ulong)(size >> shift);
            uint zones = (uint)((ulong)(size >> shift) / zsze);
            int mt = o.Mdts == 0 ? int.MaxValue : 4096 << o.Mdts;
            Geometry = new ZoneGeometry
            {
                BlockSize = o.LogicalBlockSize, BlockShift = shift, ZoneSizeLbas = zsze,
                ZoneCapacityLbas = o.ZoneCapacity == 0 ? zsze : (ulong)(o.ZoneCapacity >> shift), ZoneCount = zones,
                NamespaceSizeLbas = zsze * zones, MaxOpen = o.MaxOpen, MaxActive = o.MaxActive,
                DescriptorExtensionSize = o.DescriptorExtensionSize, CrossRead = o.CrossRead, Mdts = o.Mdts, Zasl = o.Zasl,
                MaxTransferBytes = mt, ZoneAppendLimitBytes = o.Zasl == 0 ? mt : 4096 << o.Zasl,
            };
        }
        public static ZonedNamespace CreateInMemory(long sizeBytes, NamespaceOptions options) => new(sizeBytes, options);
        public NamespaceOptions Options { get; }
        public ZoneGeometry Geometry { get; }
        public bool IsZoned => Options.Zoned;
        public Guid Uuid { get; } = Guid.NewGuid();
        public NvmeStatus Read(ulong slba, Span<byte> destination) { _data.AsSpan((int)(slba << Geometry.BlockShift), destination.Length).CopyTo(destination); return NvmeStatus.Success; }
        public NvmeStatus Write(ulong slba, ReadOnlySpan<byte> data, bool fua = false) { data.CopyTo(_data.AsSpan((int)(slba << Geometry.BlockShift))); return NvmeStatus.Success; }
        public NvmeStatus WriteZeroes(ulong slba, uint blockCount, bool fua = false) => NvmeStatus.Success;
        public NvmeStatus Append(ulong zslba, ReadOnlySpan<byte> data, out ulong assignedLba, bool fua = false) { assignedLba = zslba; return Write(zslba, data, fua); }
        public NvmeStatus Flush() => NvmeStatus.Success;
        public NvmeStatus Deallocate(ulong slba, uint blockCount) => NvmeStatus.Success;
        public NvmeStatus ZoneManagementSend(ulong slba, ZoneSendAction action, bool selectAll, ReadOnlySpan<byte> extension = default, bool zsaso = false) => NvmeStatus.Success;
        public NvmeStatus ZoneManagementReceive(ulong slba, byte zra, byte zrasf, bool partial, Span<byte> buffer) { buffer.Clear(); return NvmeStatus.Success; }
        public void Dispose() { }
    }
}

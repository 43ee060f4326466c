using System.Numerics;

namespace Zns.Core.Zones;

/// <summary>
/// The derived, validated geometry of a namespace: the one place where byte sizes become LBA counts and zone
/// numbers. Zones = backstore size / zone size, as QEMU computes it; a partial last zone is not exposed.
/// </summary>
public sealed class ZoneGeometry
{
    private ZoneGeometry() { }

    /// <summary>Whether the namespace is zoned.</summary>
    public bool Zoned { get; private init; }
    /// <summary>Logical block size in bytes.</summary>
    public int BlockSize { get; private init; }
    /// <summary>log2(<see cref="BlockSize"/>) (LBADS).</summary>
    public int BlockShift { get; private init; }
    /// <summary>Zone size in LBAs (ZSZE). For a conventional namespace: the namespace size.</summary>
    public ulong ZoneSizeLbas { get; private init; }
    /// <summary>Zone capacity in LBAs (ZCAP).</summary>
    public ulong ZoneCapacityLbas { get; private init; }
    /// <summary>Number of zones (1 for a conventional namespace).</summary>
    public uint ZoneCount { get; private init; }
    /// <summary>Namespace size in LBAs (NSZE).</summary>
    public ulong NamespaceSizeLbas { get; private init; }
    /// <summary>Open zone limit; 0 = none.</summary>
    public uint MaxOpen { get; private init; }
    /// <summary>Active zone limit; 0 = none.</summary>
    public uint MaxActive { get; private init; }
    /// <summary>Zone descriptor extension size in bytes.</summary>
    public int DescriptorExtensionSize { get; private init; }
    /// <summary>Reads may cross zone boundaries.</summary>
    public bool CrossRead { get; private init; }
    /// <summary>Auto-close implicitly opened zones at the open limit.</summary>
    public bool AutoTransition { get; private init; }
    /// <summary>MDTS (power of two of 4 KiB pages; 0 = unlimited).</summary>
    public byte Mdts { get; private init; }
    /// <summary>ZASL (power of two of 4 KiB pages; 0 = same as MDTS).</summary>
    public byte Zasl { get; private init; }
    /// <summary>Largest transfer in bytes (MDTS); <see cref="int.MaxValue"/> when unlimited.</summary>
    public int MaxTransferBytes { get; private init; }
    /// <summary>Largest Zone Append in bytes.</summary>
    public int ZoneAppendLimitBytes { get; private init; }
    /// <summary>Whether the zone size in bytes is a power of two (Linux refuses other zone sizes).</summary>
    public bool ZoneSizeIsPowerOfTwo => BitOperations.IsPow2(ZoneSizeLbas);
    /// <summary>Bytes of the backstore the namespace uses.</summary>
    public long UsedBytes => (long)NamespaceSizeLbas << BlockShift;

    /// <summary>Zone number holding <paramref name="lba"/>.</summary>
    public uint ZoneOf(ulong lba) => (uint)(lba / ZoneSizeLbas);

    /// <summary>First LBA of zone <paramref name="zone"/>.</summary>
    public ulong ZoneStart(uint zone) => zone * ZoneSizeLbas;

    /// <summary>Byte offset of an LBA in the backstore (QEMU's layout: LBA n at n × block size).</summary>
    public long ByteOffset(ulong lba) => (long)(lba << BlockShift);

    /// <summary>
    /// Validates <paramref name="options"/> against a backstore of <paramref name="backstoreBytes"/> bytes.
    /// Throws <see cref="OptionException"/> naming the option for every invalid combination.
    /// </summary>
    public static ZoneGeometry Create(NamespaceOptions options, long backstoreBytes)
    {
        int bs = options.LogicalBlockSize;
        if (bs is not (512 or 4096))
        {
            throw new OptionException("logical_block_size", $"must be 512 or 4096, got {bs}");
        }
        if (options.Mdts > 20)
        {
            throw new OptionException("mdts", $"must be at most 20, got {options.Mdts}");
        }
        int shift = BitOperations.Log2((uint)bs);
        int maxTransfer = options.Mdts == 0 ? int.MaxValue : NamespaceOptions.PageSize << options.Mdts;
        if (backstoreBytes < bs)
        {
            throw new OptionException("size", $"backstore of {backstoreBytes} bytes is smaller than one logical block");
        }

        if (!options.Zoned)
        {
            ulong nsze = (ulong)backstoreBytes >> shift;
            return new ZoneGeometry
            {
                Zoned = false, BlockSize = bs, BlockShift = shift, ZoneSizeLbas = nsze, ZoneCapacityLbas = nsze,
                ZoneCount = 1, NamespaceSizeLbas = nsze, Mdts = options.Mdts, MaxTransferBytes = maxTransfer,
                ZoneAppendLimitBytes = maxTransfer, AutoTransition = options.AutoTransition,
            };
        }

        long zoneSize = options.ZoneSize;
        long zoneCap = options.ZoneCapacity == 0 ? zoneSize : options.ZoneCapacity;
        if (zoneSize < bs || zoneSize % bs != 0)
        {
            throw new OptionException("zoned.zone_size", $"{zoneSize} bytes is not a non-zero multiple of the {bs}-byte logical block size");
        }
        if (zoneCap % bs != 0 || zoneCap == 0)
        {
            throw new OptionException("zoned.zone_capacity", $"{zoneCap} bytes is not a non-zero multiple of the {bs}-byte logical block size");
        }
        if (zoneCap > zoneSize)
        {
            throw new OptionException("zoned.zone_capacity", $"zone capacity {zoneCap}B exceeds zone size {zoneSize}B");
        }
        if (zoneSize > backstoreBytes)
        {
            throw new OptionException("zoned.zone_size", $"zone size {zoneSize}B is larger than the backstore ({backstoreBytes}B): at least one zone is needed");
        }
        long zones = backstoreBytes / zoneSize;
        if (zones > uint.MaxValue)
        {
            throw new OptionException("zoned.zone_size", $"{zones} zones is too many");
        }
        if (options.MaxActive > zones)
        {
            throw new OptionException("zoned.max_active", $"max_active_zones value {options.MaxActive} exceeds the number of zones {zones}");
        }
        if (options.MaxOpen > zones)
        {
            throw new OptionException("zoned.max_open", $"max_open_zones value {options.MaxOpen} exceeds the number of zones {zones}");
        }
        if (options.MaxActive != 0 && options.MaxOpen > options.MaxActive)
        {
            throw new OptionException("zoned.max_open", $"max_open_zones ({options.MaxOpen}) exceeds max_active_zones ({options.MaxActive})");
        }
        if (options.DescriptorExtensionSize < 0 || options.DescriptorExtensionSize % 64 != 0)
        {
            throw new OptionException("zoned.descr_ext_size", $"zone descriptor extension size must be a multiple of 64B, got {options.DescriptorExtensionSize}");
        }
        if (options.DescriptorExtensionSize > 255 * 64)
        {
            throw new OptionException("zoned.descr_ext_size", $"at most {255 * 64} bytes, got {options.DescriptorExtensionSize}");
        }
        if (options.Mdts != 0 && options.Zasl > options.Mdts)
        {
            throw new OptionException("zoned.zasl", $"zone append size limit ({options.Zasl}) must be less than or equal to mdts ({options.Mdts})");
        }
        int appendLimit = options.Zasl != 0 ? NamespaceOptions.PageSize << options.Zasl : maxTransfer;
        if (options.Zasl > 20)
        {
            throw new OptionException("zoned.zasl", $"must be at most 20, got {options.Zasl}");
        }
        if (appendLimit < bs)
        {
            throw new OptionException("zoned.zasl", "zone append limit is smaller than one logical block");
        }

        ulong zsze = (ulong)(zoneSize >> shift);
        return new ZoneGeometry
        {
            Zoned = true, BlockSize = bs, BlockShift = shift, ZoneSizeLbas = zsze,
            ZoneCapacityLbas = (ulong)(zoneCap >> shift), ZoneCount = (uint)zones, NamespaceSizeLbas = zsze * (ulong)zones,
            MaxOpen = options.MaxOpen, MaxActive = options.MaxActive, DescriptorExtensionSize = options.DescriptorExtensionSize,
            CrossRead = options.CrossRead, AutoTransition = options.AutoTransition, Mdts = options.Mdts, Zasl = options.Zasl,
            MaxTransferBytes = maxTransfer, ZoneAppendLimitBytes = appendLimit,
        };
    }
}

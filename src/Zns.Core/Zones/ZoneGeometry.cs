using System.Numerics;
using Zns.Nvme;

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
    /// <summary>ZRWA size in LBAs (ZRWAS); 0 = no Zone Random Write Area support.</summary>
    public ulong ZrwaSizeLbas { get; private init; }
    /// <summary>ZRWA flush granularity in LBAs (ZRWAFG).</summary>
    public ulong ZrwaFlushGranularityLbas { get; private init; }
    /// <summary>ZRWA resources available to zones (one per zone when <c>zoned.numzrwa</c> is 0).</summary>
    public uint ZrwaResources { get; private init; }
    /// <summary>NUMZRWA as Identify reports it: <c>zoned.numzrwa</c> as given (QEMU reports 0 when unset).</summary>
    public uint ZrwaResourcesReported { get; private init; }
    /// <summary>Whether zones may have a Zone Random Write Area (OZCS.ZRWASUP).</summary>
    public bool ZrwaSupported => ZrwaSizeLbas != 0;
    /// <summary>Copy limits: MSSRL and MCL in LBAs, MSRC 0's based.</summary>
    public ushort Mssrl { get; private init; }
    /// <summary>Maximum Copy Length in LBAs.</summary>
    public uint Mcl { get; private init; }
    /// <summary>Maximum Source Range Count, 0's based.</summary>
    public byte Msrc { get; private init; }
    /// <summary>Largest Verify in bytes (VSL).</summary>
    public long VerifyLimitBytes { get; private init; }
    /// <summary>VSL (power of two of 4 KiB pages).</summary>
    public byte Vsl { get; private init; }
    /// <summary>Largest transfer in bytes (MDTS); <see cref="int.MaxValue"/> when unlimited.</summary>
    public int MaxTransferBytes { get; private init; }
    /// <summary>Largest Zone Append in bytes.</summary>
    public int ZoneAppendLimitBytes { get; private init; }
    /// <summary>Whether the zone size in bytes is a power of two (Linux refuses other zone sizes).</summary>
    public bool ZoneSizeIsPowerOfTwo => BitOperations.IsPow2(ZoneSizeLbas);
    /// <summary>The LBA format's metadata and protection information (QEMU's ms, mset, pi, pil, pif); none by default.</summary>
    public MetadataFormat Metadata { get; private init; }
    /// <summary>
    /// Where the metadata starts in the backstore: after the data of every block the backstore holds (QEMU's layout,
    /// blocks = size / (block size + ms), so an image serves under either).
    /// </summary>
    public long MetadataOffset { get; private init; }
    /// <summary>Bytes of the backstore the namespace uses.</summary>
    public long UsedBytes => Metadata.HasMetadata
        ? MetadataOffset + (long)NamespaceSizeLbas * Metadata.MetadataSize
        : (long)NamespaceSizeLbas << BlockShift;

    /// <summary>Byte offset of an LBA's metadata in the backstore.</summary>
    public long MetadataByteOffset(ulong lba) => MetadataOffset + (long)lba * Metadata.MetadataSize;

    /// <summary>Zone number holding <paramref name="lba"/>.</summary>
    public uint ZoneOf(ulong lba) => (uint)(lba / ZoneSizeLbas);

    /// <summary>First LBA of zone <paramref name="zone"/>.</summary>
    public ulong ZoneStart(uint zone) => zone * ZoneSizeLbas;

    /// <summary>Byte offset of an LBA in the backstore (QEMU's layout: LBA n at n × block size).</summary>
    public long ByteOffset(ulong lba) => (long)(lba << BlockShift);

    /// <summary>
    /// The open zone limit in effect: QEMU's <c>nvme_ns_check_constraints</c> makes max_open equal to max_active when
    /// only max_active is given.
    /// </summary>
    public static uint EffectiveMaxOpen(NamespaceOptions options) =>
        options.MaxOpen == 0 ? options.MaxActive : options.MaxOpen;

    /// <summary>Smallest and largest logical block size (QEMU's block size property range).</summary>
    public const int MinBlockSize = 512, MaxBlockSize = 2 << 20;

    /// <summary>
    /// Validates <paramref name="options"/> against a backstore of <paramref name="backstoreBytes"/> bytes.
    /// Throws <see cref="OptionException"/> naming the option for every invalid combination.
    /// </summary>
    public static ZoneGeometry Create(NamespaceOptions options, long backstoreBytes)
    {
        int bs = options.LogicalBlockSize;
        if (bs < MinBlockSize || bs > MaxBlockSize || !BitOperations.IsPow2(bs))
        {
            throw new OptionException("logical_block_size", $"must be a power of 2 between {MinBlockSize} and {MaxBlockSize}, got {bs}");
        }
        if (options.PhysicalBlockSize is { } pbs && pbs != bs)
        {
            throw new OptionException("physical_block_size", $"zns reports the logical block size as the physical one, so it must equal logical_block_size ({bs}), got {pbs}");
        }
        if (options.Vsl > 20)
        {
            throw new OptionException("vsl", $"must be at most 20, got {options.Vsl}");
        }
        if (options.Mdts > 20)
        {
            throw new OptionException("mdts", $"must be at most 20, got {options.Mdts}");
        }
        MetadataFormat metadata = CheckMetadata(options);
        int shift = BitOperations.Log2((uint)bs);
        int maxTransfer = NamespaceOptions.TransferLimitBytes(options.Mdts);
        int blockBytes = bs + metadata.MetadataSize;
        if (backstoreBytes < blockBytes)
        {
            throw new OptionException("size", $"backstore of {backstoreBytes} bytes is smaller than one logical block");
        }
        long blocks = backstoreBytes / blockBytes;
        long metadataOffset = blocks << shift;

        if (!options.Zoned)
        {
            if (metadata.HasMetadata)
            {
                // Unwritten blocks must read with PI no check looks at; only a write pointer tells them apart.
                throw new OptionException("ms", "metadata is kept on zoned namespaces only (zoned=on): a conventional namespace has no write pointer to tell unwritten blocks, whose PI is not checked, from written ones");
            }
            ulong nsze = (ulong)blocks;
            return new ZoneGeometry
            {
                Metadata = metadata, MetadataOffset = metadataOffset,
                Zoned = false, BlockSize = bs, BlockShift = shift, ZoneSizeLbas = nsze, ZoneCapacityLbas = nsze,
                ZoneCount = 1, NamespaceSizeLbas = nsze, Mdts = options.Mdts, MaxTransferBytes = maxTransfer,
                ZoneAppendLimitBytes = maxTransfer, AutoTransition = options.AutoTransition,
                Mssrl = options.Mssrl, Mcl = options.Mcl, Msrc = options.Msrc, Vsl = options.Vsl,
                VerifyLimitBytes = (long)NamespaceOptions.PageSize << options.Vsl,
            };
        }

        // QEMU's nvme_ns_zoned_check_calc_geometry: sizes are truncated to whole blocks, at least one block each.
        long zoneSize = options.ZoneSize;
        long zoneCap = options.ZoneCapacity == 0 ? zoneSize : options.ZoneCapacity;
        if (zoneCap > zoneSize)
        {
            throw new OptionException("zoned.zone_capacity", $"zone capacity {zoneCap}B exceeds zone size {zoneSize}B");
        }
        if (zoneSize < bs)
        {
            throw new OptionException("zoned.zone_size", $"zone size {zoneSize}B too small, must be at least {bs}B");
        }
        if (zoneCap < bs)
        {
            throw new OptionException("zoned.zone_capacity", $"zone capacity {zoneCap}B too small, must be at least {bs}B");
        }
        zoneSize -= zoneSize % bs;
        zoneCap -= zoneCap % bs;
        long zones = blocks / (zoneSize / bs);
        if (zones == 0)
        {
            throw new OptionException("zoned.zone_size", $"insufficient drive capacity, must be at least the size of one zone ({options.ZoneSize}B)");
        }
        if (zones > uint.MaxValue)
        {
            throw new OptionException("zoned.zone_size", $"{zones} zones is too many");
        }
        // Limits above the zone count are accepted, as QEMU does: the host sees them as given.
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

        ulong zrwas = 0, zrwafg = 0;
        if (options.Zrwas != 0)
        {
            if (options.Zrwas % bs != 0)
            {
                throw new OptionException("zoned.zrwas", $"zone random write area size (zoned.zrwas {options.Zrwas}) must be a multiple of the logical block size (logical_block_size {bs})");
            }
            long fg = options.Zrwafg == -1 ? bs : options.Zrwafg;
            if (fg <= 0 || fg % bs != 0)
            {
                throw new OptionException("zoned.zrwafg", $"zone random write area flush granularity (zoned.zrwafg {fg}) must be a non-zero multiple of the logical block size ({bs})");
            }
            if (options.Zrwas % fg != 0)
            {
                throw new OptionException("zoned.zrwas", $"zone random write area size (zoned.zrwas {options.Zrwas}) must be a multiple of the zone random write area flush granularity (zoned.zrwafg, {fg})");
            }
            if (options.MaxActive != 0 && options.NumZrwa > options.MaxActive)
            {
                throw new OptionException("zoned.numzrwa", $"number of zone random write area resources (zoned.numzrwa, {options.NumZrwa}) must be less than or equal to maximum active resources (zoned.max_active_zones, {options.MaxActive})");
            }
            if (options.Zrwas / bs > ushort.MaxValue || fg / bs > ushort.MaxValue)
            {
                throw new OptionException("zoned.zrwas", "ZRWAS and ZRWAFG are 16-bit block counts");
            }
            zrwas = (ulong)(options.Zrwas >> shift);
            zrwafg = (ulong)(fg >> shift);
        }

        ulong zsze = (ulong)(zoneSize >> shift);
        return new ZoneGeometry
        {
            Zoned = true, BlockSize = bs, BlockShift = shift, ZoneSizeLbas = zsze,
            Metadata = metadata, MetadataOffset = metadataOffset,
            ZoneCapacityLbas = (ulong)(zoneCap >> shift), ZoneCount = (uint)zones, NamespaceSizeLbas = zsze * (ulong)zones,
            MaxOpen = EffectiveMaxOpen(options), MaxActive = options.MaxActive, DescriptorExtensionSize = options.DescriptorExtensionSize,
            CrossRead = options.CrossRead, AutoTransition = options.AutoTransition, Mdts = options.Mdts, Zasl = options.Zasl,
            MaxTransferBytes = maxTransfer, ZoneAppendLimitBytes = appendLimit,
            ZrwaSizeLbas = zrwas, ZrwaFlushGranularityLbas = zrwafg,
            ZrwaResources = zrwas == 0 ? 0 : options.NumZrwa != 0 ? options.NumZrwa : (uint)zones,
            ZrwaResourcesReported = zrwas == 0 ? 0 : options.NumZrwa,
            Mssrl = options.Mssrl, Mcl = options.Mcl, Msrc = options.Msrc, Vsl = options.Vsl,
            VerifyLimitBytes = (long)NamespaceOptions.PageSize << options.Vsl,
        };
    }

    /// <summary>
    /// QEMU's <c>nvme_ns_check_constraints</c> for ms, pi and pif, with its messages: a type of 1 to 3, a guard format
    /// of 0 (16-bit) or 2 (64-bit; QEMU also takes others without PI, zns only these two), and room for the PI tuple.
    /// </summary>
    private static MetadataFormat CheckMetadata(NamespaceOptions options)
    {
        if (options.PiType > 3)
        {
            throw new OptionException("pi", "invalid 'pi' value (0 = none, 1, 2 or 3)");
        }
        if (options.Pif is not (MetadataFormat.Guard16 or MetadataFormat.Guard64))
        {
            throw new OptionException("pif", "invalid 'pif' (0 = 16-bit guard, 2 = 64-bit guard)");
        }
        var format = new MetadataFormat(options.MetadataSize, options.MetadataSize != 0 && options.MetadataExtended,
            options.PiType, options.PiType != 0 && options.PiFirst, options.Pif);
        if (format.HasPi && options.MetadataSize < format.PiSize)
        {
            throw new OptionException("ms", $"at least {format.PiSize} bytes of metadata required to enable protection information");
        }
        return format;
    }
}

namespace Zns.Core.Zones;

/// <summary>
/// The namespace options a zone state file (<c>FILE.zns</c>) keeps, so that a namespace is served as it was created
/// without its options repeated. The one record of them: the state file writes and reads exactly this, and
/// <see cref="KeptOption"/> names each field, formats it and says what a different value at serve time does.
/// </summary>
/// <remarks>
/// Values are kept as the namespace uses them: the zone size and capacity truncated to whole blocks, max_open as
/// QEMU resolves it from max_active. A conventional namespace (<c>zoned=off</c>) keeps no zone options (they are 0
/// or their defaults). Not kept: <c>timing</c> and <c>nsid</c>, which belong to one run of the server, and
/// <c>physical_block_size</c>, which changes nothing (see <see cref="KeptOption.WhyNotKept"/>).
/// </remarks>
public sealed record KeptNamespaceOptions
{
    /// <summary>The state file format that keeps every field of this record.</summary>
    public const int CurrentFormat = 3;

    /// <summary>
    /// The state file format the values were read from. A field newer than it (<see cref="KeptOption.Since"/>) holds
    /// its default, which is how such files were served, and is not yet kept: the next open keeps what it is given.
    /// </summary>
    public int Format { get; init; } = CurrentFormat;

    /// <summary><c>logical_block_size</c> in bytes.</summary>
    public int LogicalBlockSize { get; init; } = 4096;

    /// <summary><c>zoned</c>.</summary>
    public bool Zoned { get; init; } = true;

    /// <summary><c>zoned.zone_size</c> in bytes, whole blocks; 0 for a conventional namespace.</summary>
    public long ZoneSize { get; init; }

    /// <summary><c>zoned.zone_capacity</c> in bytes, whole blocks; 0 for a conventional namespace.</summary>
    public long ZoneCapacity { get; init; }

    /// <summary><c>zoned.max_open</c> as in effect (max_active's value when only that was given); 0 = no limit.</summary>
    public uint MaxOpen { get; init; }

    /// <summary><c>zoned.max_active</c>; 0 = no limit.</summary>
    public uint MaxActive { get; init; }

    /// <summary><c>zoned.descr_ext_size</c> in bytes.</summary>
    public int DescriptorExtensionSize { get; init; }

    /// <summary><c>zoned.cross_read</c>.</summary>
    public bool CrossRead { get; init; }

    /// <summary><c>zoned.auto_transition</c>.</summary>
    public bool AutoTransition { get; init; } = true;

    /// <summary><c>mdts</c>.</summary>
    public byte Mdts { get; init; } = 7;

    /// <summary><c>zoned.zasl</c>.</summary>
    public byte Zasl { get; init; }

    /// <summary><c>vsl</c>.</summary>
    public byte Vsl { get; init; } = 7;

    /// <summary><c>zoned.zrwas</c> in bytes; 0 = no ZRWA.</summary>
    public long Zrwas { get; init; }

    /// <summary><c>zoned.zrwafg</c> in bytes as given; -1 = one logical block.</summary>
    public long Zrwafg { get; init; } = -1;

    /// <summary><c>zoned.numzrwa</c> as given; 0 = one per zone.</summary>
    public uint NumZrwa { get; init; }

    /// <summary><c>mssrl</c>.</summary>
    public ushort Mssrl { get; init; } = 128;

    /// <summary><c>mcl</c>.</summary>
    public uint Mcl { get; init; } = 128;

    /// <summary><c>msrc</c>.</summary>
    public byte Msrc { get; init; } = 127;

    /// <summary><c>uuid</c>: the one given at creation, else the one generated then.</summary>
    public Guid Uuid { get; init; }

    /// <summary>
    /// <c>nguid</c>: the 16 bytes read as one big-endian number (a value, so that records compare by content); null =
    /// the UUID's bytes.
    /// </summary>
    public UInt128? Nguid { get; init; }

    /// <summary><c>eui64</c>; 0 = none.</summary>
    public ulong Eui64 { get; init; }

    /// <summary><c>ms</c>: metadata bytes per block.</summary>
    public ushort MetadataSize { get; init; }

    /// <summary><c>mset</c>: extended LBA.</summary>
    public bool MetadataExtended { get; init; }

    /// <summary><c>pi</c>: protection type; 0 = none.</summary>
    public byte PiType { get; init; }

    /// <summary><c>pil</c>: PI in the first bytes of the metadata.</summary>
    public bool PiFirst { get; init; }

    /// <summary><c>pif</c>: PI format (0 or 2).</summary>
    public byte Pif { get; init; }

    /// <summary>Whether this record holds <paramref name="option"/>'s value, rather than the default of a format that predates it.</summary>
    public bool Keeps(KeptOption option) => option.Since <= Format;

    /// <summary>
    /// What a namespace opened with <paramref name="options"/> keeps, given the geometry they validated to and the
    /// UUID it is known by.
    /// </summary>
    public static KeptNamespaceOptions From(NamespaceOptions options, ZoneGeometry geometry, Guid uuid)
    {
        if (options.Nguid is { Length: not 16 } wrong)
        {
            throw new OptionException("nguid", $"an NGUID is 16 bytes, got {wrong.Length}");
        }
        bool zoned = geometry.Zoned;
        return new KeptNamespaceOptions
        {
            LogicalBlockSize = geometry.BlockSize,
            Zoned = zoned,
            ZoneSize = zoned ? geometry.ByteOffset(geometry.ZoneSizeLbas) : 0,
            ZoneCapacity = zoned ? geometry.ByteOffset(geometry.ZoneCapacityLbas) : 0,
            MaxOpen = geometry.MaxOpen,
            MaxActive = geometry.MaxActive,
            DescriptorExtensionSize = geometry.DescriptorExtensionSize,
            CrossRead = geometry.CrossRead,
            AutoTransition = geometry.AutoTransition,
            Mdts = geometry.Mdts,
            Zasl = geometry.Zasl,
            Vsl = options.Vsl,
            Zrwas = zoned ? options.Zrwas : 0,
            Zrwafg = zoned ? options.Zrwafg : -1,
            NumZrwa = zoned ? options.NumZrwa : 0,
            Mssrl = options.Mssrl,
            Mcl = options.Mcl,
            Msrc = options.Msrc,
            Uuid = uuid,
            Nguid = options.Nguid is { } nguid ? System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(nguid.Span) : null,
            Eui64 = options.Eui64,
            // As the LBA format has them: mset and pil mean nothing without metadata or PI.
            MetadataSize = (ushort)geometry.Metadata.MetadataSize,
            MetadataExtended = geometry.Metadata.Extended,
            PiType = geometry.Metadata.PiType,
            PiFirst = geometry.Metadata.PiFirst,
            Pif = geometry.Metadata.Pif,
        };
    }

    /// <summary>The options that open this namespace as it was kept (no timing, the next free NSID).</summary>
    public NamespaceOptions ToOptions()
    {
        // Typed as the option is: a null byte[] would convert to an empty, non-null ReadOnlyMemory.
        ReadOnlyMemory<byte>? nguid = null;
        if (Nguid is { } value)
        {
            byte[] bytes = new byte[16];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, value);
            nguid = bytes;
        }
        return new NamespaceOptions
        {
            LogicalBlockSize = LogicalBlockSize,
            Zoned = Zoned,
            ZoneSize = ZoneSize,
            ZoneCapacity = ZoneCapacity,
            MaxOpen = MaxOpen,
            MaxActive = MaxActive,
            DescriptorExtensionSize = DescriptorExtensionSize,
            CrossRead = CrossRead,
            AutoTransition = AutoTransition,
            Mdts = Mdts,
            Zasl = Zasl,
            Vsl = Vsl,
            Zrwas = Zrwas,
            Zrwafg = Zrwafg,
            NumZrwa = NumZrwa,
            Mssrl = Mssrl,
            Mcl = Mcl,
            Msrc = Msrc,
            Uuid = Uuid,
            Nguid = nguid,
            Eui64 = Eui64,
            MetadataSize = MetadataSize,
            MetadataExtended = MetadataExtended,
            PiType = PiType,
            PiFirst = PiFirst,
            Pif = Pif,
        };
    }
}

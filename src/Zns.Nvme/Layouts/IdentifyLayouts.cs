using System.Buffers.Binary;

namespace Zns.Nvme.Layouts;

/// <summary>Identify CNS values (NVMe Base 2.0 Figure 274).</summary>
public static class IdentifyCns
{
    public const byte Namespace = 0x00;
    public const byte Controller = 0x01;
    public const byte ActiveNamespaceList = 0x02;
    public const byte NamespaceDescriptorList = 0x03;
    public const byte IoCommandSetNamespace = 0x05;
    public const byte IoCommandSetController = 0x06;
    public const byte IoCommandSetActiveNamespaceList = 0x07;
    public const byte IoCommandSetIndependentNamespace = 0x08;
    public const byte IoCommandSetVector = 0x1C;

    /// <summary>Every Identify data structure is 4096 bytes.</summary>
    public const int DataSize = 4096;
}

/// <summary>Command Set Identifiers.</summary>
public static class Csi
{
    public const byte Nvm = 0x00;
    public const byte Zoned = 0x02;
}

/// <summary>Values for Identify Controller (CNS 01h) that are not fixed by the layout.</summary>
public readonly record struct ControllerIdentity(
    string Serial, string Model, string Firmware, ushort Cntlid, byte Mdts, ushort MaxCommands, uint NamespaceCount,
    string SubNqn, uint IoCommandCapsuleUnits, bool IsDiscovery, ushort OptionalNvmCommands, byte AsyncEventRequestLimit = 3,
    ushort CopyFormats = 0, uint Sgls = IdentifyControllerLayout.FabricSgls, ushort OptionalAdminCommands = 0, bool IsMemoryBased = false,
    bool ExtendedLbaFormats = false);

/// <summary>Identify Controller data structure (CNS 01h; NVMe Base 2.0 Figure 275, offsets of <c>struct nvme_id_ctrl</c>).</summary>
public static class IdentifyControllerLayout
{
    public const int Vid = 0, Ssvid = 2, Sn = 4, Mn = 24, Fr = 64, Rab = 72, Ieee = 73, Cmic = 76, Mdts = 77, Cntlid = 78,
        Ver = 80, Oaes = 92, Ctratt = 96, Cntrltype = 111, Oacs = 256, Acl = 258, Aerl = 259, Frmw = 260, Lpa = 261,
        Elpe = 262, Npss = 263, Apsta = 265, Wctemp = 266, Cctemp = 268, Kas = 320, Sqes = 512, Cqes = 513, Maxcmd = 514,
        Nn = 516, Oncs = 520, Fuses = 522, Vwc = 525, Ocfs = 534, Sgls = 536, Subnqn = 768, Ioccsz = 1792, Iorcsz = 1796,
        Icdoff = 1800, Fcatt = 1802, Msdbd = 1803, Ofcs = 1804, Psd0 = 2048;

    /// <summary>SGLS of a fabric: bit 0 SGLs supported (the Linux host refuses otherwise), bit 20 offset addressing for in-capsule data.</summary>
    public const uint FabricSgls = 0x0010_0001;

    /// <summary>OAES bit 8: Namespace Attribute Notices (the only asynchronous event this target raises).</summary>
    public const uint OaesNamespaceAttribute = 1u << 8;

    /// <summary>OAES bit 27: Zone Descriptor Changed Notices (ZNS), enabled by the host through AEC bit 27.</summary>
    public const uint OaesZoneDescriptorChanged = 1u << 27;

    /// <summary>AERL default, 0's based: four outstanding AERs, as nvmet and QEMU allow.</summary>
    public const byte AsyncEventRequestLimit = 3;

    /// <summary>
    /// ONCS as QEMU reports it, restricted to what this target implements: bit 0 Compare, 2 Dataset Management,
    /// 3 Write Zeroes, 4 Save/Select in Features, 6 Timestamp, 8 Copy (QEMU's bits 9/10, NVM command set specific
    /// All Fast Copy, are not implemented).
    /// </summary>
    public const ushort OptionalNvmCommands = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 6) | (1 << 8);

    /// <summary>CTRATT bit 15: Extended LBA Formats Supported.</summary>
    public const uint CtrattExtendedLbaFormats = 1u << 15;

    /// <summary>ELPE, 0's based: a single error log entry (the log always reads as zeros).</summary>
    public const byte ErrorLogEntries = 0;

    /// <summary>Warning/critical composite temperature thresholds in kelvin (QEMU's values: 70 °C and 100 °C).</summary>
    public const ushort WarningTemperature = 0x0157, CriticalTemperature = 0x0175;

    public static void Write(Span<byte> d, in ControllerIdentity id)
    {
        d = d[..IdentifyCns.DataSize];
        d.Clear();
        // VID/SSVID 0: quirk tables in the Linux host match on VID/MN/FR, so never borrow another device's identity.
        WireText.WriteSpacePadded(d.Slice(Sn, 20), id.Serial);
        WireText.WriteSpacePadded(d.Slice(Mn, 40), id.Model);
        WireText.WriteSpacePadded(d.Slice(Fr, 8), id.Firmware);
        d[Rab] = 6;
        // CMIC 0 (single port, single controller, no ANA) like QEMU without a subsystem device: no multipath head.
        d[Mdts] = id.Mdts;
        BinaryPrimitives.WriteUInt16LittleEndian(d[Cntlid..], id.Cntlid);
        BinaryPrimitives.WriteUInt32LittleEndian(d[Ver..], ControllerProperties.Version);
        // CNTRLTYPE: 1 I/O controller, 2 discovery controller.
        d[Cntrltype] = id.IsDiscovery ? (byte)2 : (byte)1;
        d[Aerl] = id.AsyncEventRequestLimit;
        // LPA bit 2 (extended data: NUMDU/LPO) for everyone; the discovery controller has no SMART/effects logs.
        d[Lpa] = id.IsDiscovery ? (byte)0x04 : (byte)0x07;
        d[Elpe] = ErrorLogEntries;
        BinaryPrimitives.WriteUInt32LittleEndian(d[Sgls..], id.Sgls);
        BinaryPrimitives.WriteUInt16LittleEndian(d[Maxcmd..], id.MaxCommands);
        WireText.WriteNulTerminated(d.Slice(Subnqn, 256), id.SubNqn);
        // KAS: 100 ms units. Fabrics hosts require a non-zero value, discovery controllers included.
        BinaryPrimitives.WriteUInt16LittleEndian(d[Kas..], 10);
        if (!id.IsMemoryBased)
        {
            // MSDBD: one SGL data block descriptor per command; reserved on a memory-based controller.
            d[Msdbd] = 1;
        }
        if (id.IsDiscovery)
        {
            return;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(d[Oaes..], OaesNamespaceAttribute | OaesZoneDescriptorChanged);
        if (id.ExtendedLbaFormats)
        {
            // CTRATT bit 15 ELBAS: the NVM command set Identify Namespace reports ELBAF (the host reads the 64-bit
            // guard format there and nowhere else).
            BinaryPrimitives.WriteUInt32LittleEndian(d[Ctratt..], CtrattExtendedLbaFormats);
        }
        d[Acl] = 3;
        // FRMW: slot 1 read-only, one slot.
        d[Frmw] = 0x03;
        BinaryPrimitives.WriteUInt16LittleEndian(d[Wctemp..], WarningTemperature);
        BinaryPrimitives.WriteUInt16LittleEndian(d[Cctemp..], CriticalTemperature);
        d[Sqes] = 0x66;
        d[Cqes] = 0x44;
        BinaryPrimitives.WriteUInt32LittleEndian(d[Nn..], id.NamespaceCount);
        BinaryPrimitives.WriteUInt16LittleEndian(d[Oacs..], id.OptionalAdminCommands);
        BinaryPrimitives.WriteUInt16LittleEndian(d[Oncs..], id.OptionalNvmCommands);
        BinaryPrimitives.WriteUInt16LittleEndian(d[Ocfs..], id.CopyFormats);
        // VWC: bit 0 present (the host then sends Flush and FUA); bits 2:1 = 11b Flush with NSID FFFFFFFFh supported.
        d[Vwc] = 0x07;
        if (!id.IsMemoryBased)
        {
            // Capsule sizes exist on a fabric only.
            BinaryPrimitives.WriteUInt32LittleEndian(d[Ioccsz..], id.IoCommandCapsuleUnits);
            BinaryPrimitives.WriteUInt32LittleEndian(d[Iorcsz..], 1);
        }
        // ICDOFF 0 (Linux refuses anything else), FCATT 0 = dynamic controller model, OFCS 0 = no Disconnect advertised.
        // PSD0: one power state so tools show something sensible (max power 25 W in 0.01 W units, QEMU-like latencies).
        BinaryPrimitives.WriteUInt16LittleEndian(d[Psd0..], 0x09C4);
        BinaryPrimitives.WriteUInt32LittleEndian(d[(Psd0 + 4)..], 0x10);
        BinaryPrimitives.WriteUInt32LittleEndian(d[(Psd0 + 8)..], 0x4);
    }
}

/// <summary>Values for Identify Namespace (CNS 00h) and the ZNS namespace structure (CNS 05h, CSI 02h).</summary>
public readonly record struct NamespaceIdentity(
    ulong SizeLbas, int BlockShift, ReadOnlyMemory<byte> Nguid, bool Zoned, ulong ZoneSizeLbas, uint MaxActive,
    uint MaxOpen, bool CrossRead, int DescriptorExtensionSize, ulong Eui64, ushort Mssrl, uint Mcl, byte Msrc,
    ushort Zrwas, ushort Zrwafg, uint NumZrwa, bool WriteProtected = false, MetadataFormat Metadata = default);

/// <summary>Identify Namespace data structure (CNS 00h, NVM command set; offsets of <c>struct nvme_id_ns</c>).</summary>
public static class IdentifyNamespaceLayout
{
    public const int Nsze = 0, Ncap = 8, Nuse = 16, Nsfeat = 24, Nlbaf = 25, Flbas = 26, Nmic = 30, Dlfeat = 33,
        Mc = 27, Dpc = 28, Dps = 29, Mssrl = 74, Mcl = 76, Msrc = 80, Nsattr = 99, Nguid = 104, Eui64 = 120, Lbaf0 = 128;

    /// <summary>FLBAS bit 4: metadata at the end of each block's data (extended LBA).</summary>
    public const byte FlbasExtended = 0x10;

    /// <summary>MC: metadata as part of an extended LBA (bit 0) or in a separate buffer (bit 1), both as QEMU reports.</summary>
    public const byte McExtendedAndSeparate = 0x3;

    /// <summary>DPC: Types 1, 2 and 3, PI in the first or the last bytes of the metadata (QEMU's 1Fh).</summary>
    public const byte DpcAll = 0x1F;

    /// <summary>DPS bit 3: the PI is the first bytes of the metadata.</summary>
    public const byte DpsFirst = 0x8;

    /// <summary>NSATTR bit 0: the namespace is currently write protected (the Linux host then sets the disk read-only).</summary>
    public const byte NsattrWriteProtected = 1;

    public static void Write(Span<byte> d, in NamespaceIdentity ns)
    {
        d = d[..IdentifyCns.DataSize];
        d.Clear();
        // NCAP = NSZE: NCAP 0 would tell the host the namespace is not allocated. NUSE = NSZE as QEMU reports.
        BinaryPrimitives.WriteUInt64LittleEndian(d[Nsze..], ns.SizeLbas);
        BinaryPrimitives.WriteUInt64LittleEndian(d[Ncap..], ns.SizeLbas);
        BinaryPrimitives.WriteUInt64LittleEndian(d[Nuse..], ns.SizeLbas);
        // NLBAF 0 (one format), FLBAS 0 (format 0, no metadata), NMIC 0 (private namespace: CMIC is 0 too).
        // DLFEAT bits 2:0 = 001b: deallocated and never-written blocks read as zeros, which is what partition probing
        // on unwritten zones expects.
        // Bit 3: Write Zeroes may deallocate (DEAC), as QEMU reports; zeroed and deallocated blocks read the same.
        d[Dlfeat] = 0x09;
        // Simple Copy limits (QEMU's mssrl/mcl/msrc options).
        BinaryPrimitives.WriteUInt16LittleEndian(d[Mssrl..], ns.Mssrl);
        BinaryPrimitives.WriteUInt32LittleEndian(d[Mcl..], ns.Mcl);
        d[Msrc] = ns.Msrc;
        d[Nsattr] = ns.WriteProtected ? NsattrWriteProtected : (byte)0;
        ns.Nguid.Span.CopyTo(d.Slice(Nguid, 16));
        // EUI64 is big-endian on the wire (QEMU: cpu_to_be64); 0 = not reported.
        BinaryPrimitives.WriteUInt64BigEndian(d[Eui64..], ns.Eui64);
        // LBAF0: MS, LBADS = log2(block size), RP 0. One format: the namespace's (a Format NVM would find no other).
        d[Lbaf0 + 2] = (byte)ns.BlockShift;
        MetadataFormat metadata = ns.Metadata;
        if (metadata.HasMetadata)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(d[Lbaf0..], (ushort)metadata.MetadataSize);
            d[Flbas] = metadata.Extended ? FlbasExtended : (byte)0;
            d[Mc] = McExtendedAndSeparate;
            d[Dpc] = DpcAll;
            d[Dps] = (byte)(metadata.PiType | (metadata.PiFirst ? DpsFirst : 0));
        }
    }
}

/// <summary>ZNS I/O command set specific Identify Namespace (CNS 05h, CSI 02h; ZNS 1.1 Figure 48).</summary>
public static class IdentifyZonedNamespaceLayout
{
    public const int Zoc = 0, Ozcs = 2, Mar = 4, Mor = 8, Rrl = 12, Frl = 16, Numzrwa = 44, Zrwafg = 48, Zrwas = 50,
        Zrwacap = 52, Lbafe0 = 2816;

    /// <summary>OZCS bit 0 RAZB (reads across zone boundaries), bit 1 ZRWASUP.</summary>
    public const ushort OzcsRazb = 1, OzcsZrwaSupported = 2;

    /// <summary>ZRWACAP bit 0: explicit ZRWA flush supported.</summary>
    public const byte ZrwacapExplicitFlush = 1;

    /// <summary>RRL and FRL (seconds; 0 = not reported) come from the namespace's zone health policy.</summary>
    public static void WriteLimits(Span<byte> d, uint resetRecommendedLimit, uint finishRecommendedLimit)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(d[Rrl..], resetRecommendedLimit);
        BinaryPrimitives.WriteUInt32LittleEndian(d[Frl..], finishRecommendedLimit);
    }

    public static void Write(Span<byte> d, in NamespaceIdentity ns)
    {
        d = d[..IdentifyCns.DataSize];
        d.Clear();
        // ZOC 0: the Linux host hides namespaces with variable capacity or zone excursions.
        BinaryPrimitives.WriteUInt16LittleEndian(d[Ozcs..],
            (ushort)((ns.CrossRead ? OzcsRazb : 0) | (ns.Zrwas != 0 ? OzcsZrwaSupported : 0)));
        if (ns.Zrwas != 0)
        {
            // NUMZRWA as configured (0 when unset, as QEMU reports), ZRWAS/ZRWAFG in logical blocks.
            BinaryPrimitives.WriteUInt32LittleEndian(d[Numzrwa..], ns.NumZrwa);
            BinaryPrimitives.WriteUInt16LittleEndian(d[Zrwafg..], ns.Zrwafg);
            BinaryPrimitives.WriteUInt16LittleEndian(d[Zrwas..], ns.Zrwas);
            d[Zrwacap] = ZrwacapExplicitFlush;
        }
        // MAR/MOR are 0's based; 0xFFFFFFFF means "no limit".
        BinaryPrimitives.WriteUInt32LittleEndian(d[Mar..], ns.MaxActive == 0 ? uint.MaxValue : ns.MaxActive - 1);
        BinaryPrimitives.WriteUInt32LittleEndian(d[Mor..], ns.MaxOpen == 0 ? uint.MaxValue : ns.MaxOpen - 1);
        // LBAFE for format 0 (the only one): ZSZE in LBAs, ZDES in 64-byte units.
        BinaryPrimitives.WriteUInt64LittleEndian(d[Lbafe0..], ns.ZoneSizeLbas);
        d[Lbafe0 + 8] = (byte)(ns.DescriptorExtensionSize / 64);
    }
}

/// <summary>ZNS I/O command set specific Identify Controller (CNS 06h, CSI 02h): ZASL at byte 0.</summary>
public static class IdentifyZonedControllerLayout
{
    public const int Zasl = 0;

    public static void Write(Span<byte> d, byte zasl)
    {
        d = d[..IdentifyCns.DataSize];
        d.Clear();
        d[Zasl] = zasl;
    }
}

/// <summary>NVM command set specific Identify Controller (CNS 06h, CSI 00h; NVM Command Set 1.0 Figure 112).</summary>
public static class IdentifyNvmControllerLayout
{
    public const int Vsl = 0, Wzsl = 1, Wusl = 2, Dmrl = 3, Dmrsl = 4, Dmsl = 8;

    /// <summary>DMRL: QEMU reports the largest value, 255 ranges.</summary>
    public const byte MaxRanges = 0xFF;

    public static void Write(Span<byte> d, byte vsl, uint dmrsl)
    {
        d = d[..IdentifyCns.DataSize];
        d.Clear();
        d[Vsl] = vsl;
        d[Dmrl] = MaxRanges;
        BinaryPrimitives.WriteUInt32LittleEndian(d[Dmrsl..], dmrsl);
        BinaryPrimitives.WriteUInt64LittleEndian(d[Dmsl..], (ulong)MaxRanges * dmrsl);
    }
}

/// <summary>NVM command set specific Identify Namespace (CNS 05h, CSI 00h; NVM Command Set 1.0 Figure 114).</summary>
public static class IdentifyNvmNamespaceLayout
{
    public const int Lbstm = 0, Pic = 8, Elbaf0 = 12;

    /// <summary>
    /// ELBAF of format 0: bits 6:0 storage tag size (0), bits 8:7 the PI format (QEMU writes its pif there). PIC 0:
    /// no 16-bit guard with storage tags, no STC checks.
    /// </summary>
    public static void Write(Span<byte> d, in NamespaceIdentity ns)
    {
        d = d[..IdentifyCns.DataSize];
        d.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(d[Elbaf0..], (uint)(ns.Metadata.Pif & 0x3) << 7);
    }
}

/// <summary>I/O Command Set Independent Identify Namespace (CNS 08h; NVMe Base 2.0 Figure 319).</summary>
public static class IdentifyIndependentNamespaceLayout
{
    public const int Nsfeat = 0, Nmic = 1, Nsattr = 8, Nstat = 14;

    /// <summary>NSTAT bit 0: namespace ready.</summary>
    public const byte Ready = 1;

    /// <summary>
    /// NSATTR carries the same write-protected bit as CNS 00h: the Linux host reads this structure rather than CNS 00h
    /// for a zoned namespace, so both must say it.
    /// </summary>
    public static void Write(Span<byte> d, bool writeProtected)
    {
        d = d[..IdentifyCns.DataSize];
        d.Clear();
        d[Nsattr] = writeProtected ? IdentifyNamespaceLayout.NsattrWriteProtected : (byte)0;
        d[Nstat] = Ready;
    }
}

/// <summary>Namespace Identification Descriptor list (CNS 03h; <c>struct nvme_ns_id_desc</c>).</summary>
public static class NamespaceDescriptorListLayout
{
    public const byte NidtEui64 = 1, NidtNguid = 2, NidtUuid = 3, NidtCsi = 4;
    public const int HeaderSize = 4;

    /// <summary>
    /// UUID, NGUID, then CSI (nvmet's order); the rest stays zero, and a zero NIDL ends the host's parse. The CSI
    /// descriptor is what makes a CC.CSS = 110b host attach a zoned namespace at all.
    /// </summary>
    public static void Write(Span<byte> d, ReadOnlySpan<byte> uuid, ReadOnlySpan<byte> nguid, byte csi, ulong eui64 = 0)
    {
        d = d[..IdentifyCns.DataSize];
        d.Clear();
        int o = 0;
        if (eui64 != 0)
        {
            Span<byte> eui = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(eui, eui64);
            o += WriteDescriptor(d[o..], NidtEui64, eui);
        }
        o += WriteDescriptor(d[o..], NidtUuid, uuid);
        o += WriteDescriptor(d[o..], NidtNguid, nguid);
        WriteDescriptor(d[o..], NidtCsi, [csi]);
    }

    private static int WriteDescriptor(Span<byte> d, byte type, ReadOnlySpan<byte> value)
    {
        d[0] = type;
        d[1] = (byte)value.Length;
        value.CopyTo(d[HeaderSize..]);
        return HeaderSize + value.Length;
    }
}

/// <summary>Namespace ID lists (CNS 02h/07h; changed namespace log 04h): up to 1024 ascending u32, zero filled.</summary>
public static class NamespaceListLayout
{
    public const int MaxEntries = 1024;

    public static void Write(Span<byte> d, ReadOnlySpan<uint> ids)
    {
        d = d[..(MaxEntries * 4)];
        d.Clear();
        for (int i = 0; i < ids.Length && i < MaxEntries; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d[(i * 4)..], ids[i]);
        }
    }
}

/// <summary>Identify I/O Command Set data structure (CNS 1Ch): 512 command set vectors of 8 bytes.</summary>
public static class IoCommandSetVectorLayout
{
    /// <summary>Vector bits: bit 0 NVM, bit 2 Zoned Namespace.</summary>
    public const ulong NvmAndZoned = 0x5;

    public static void Write(Span<byte> d)
    {
        d = d[..IdentifyCns.DataSize];
        d.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d, NvmAndZoned);
    }
}

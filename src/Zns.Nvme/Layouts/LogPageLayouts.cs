using System.Buffers.Binary;

namespace Zns.Nvme.Layouts;

/// <summary>Log page identifiers served by this target.</summary>
public static class LogPageId
{
    public const byte ErrorInformation = 0x01;
    public const byte SmartHealth = 0x02;
    public const byte FirmwareSlot = 0x03;
    public const byte ChangedNamespaceList = 0x04;
    public const byte CommandsSupportedAndEffects = 0x05;
    public const byte Discovery = 0x70;
    public const byte ChangedZoneList = 0xBF;
}

/// <summary>Get Log Page command fields (NVMe Base 2.0 §5.16; <c>struct nvme_get_log_page_command</c>).</summary>
public static class GetLogPageCommandLayout
{
    public static byte Lid(in SubmissionQueueEntry sqe) => (byte)sqe.Cdw10;
    public static byte Lsp(in SubmissionQueueEntry sqe) => (byte)((sqe.Cdw10 >> 8) & 0x7F);
    /// <summary>Retain Asynchronous Event: when clear, reading the log re-arms the event it reports.</summary>
    public static bool Rae(in SubmissionQueueEntry sqe) => (sqe.Cdw10 & 0x8000) != 0;
    /// <summary>Transfer length in bytes: (NUMDU:NUMDL + 1) dwords.</summary>
    public static long Length(in SubmissionQueueEntry sqe) => (((long)(sqe.Cdw11 & 0xFFFF) << 16 | (sqe.Cdw10 >> 16)) + 1) * 4;
    public static ulong Offset(in SubmissionQueueEntry sqe) => ((ulong)sqe.Cdw13 << 32) | sqe.Cdw12;
    public static byte Csi(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw14 >> 24);
}

/// <summary>Commands Supported and Effects log (LID 05h; <c>struct nvme_effects_log</c>).</summary>
public static class EffectsLogLayout
{
    public const int Size = 4096;
    public const int AdminOffset = 0;
    public const int IoOffset = 1024;

    /// <summary>Command supported.</summary>
    public const uint Csupp = 1u << 0;
    /// <summary>Logical block content change.</summary>
    public const uint Lbcc = 1u << 1;

    private static readonly byte[] s_admin =
    [
        AdminOpcode.GetLogPage, AdminOpcode.Identify, AdminOpcode.Abort, AdminOpcode.SetFeatures,
        AdminOpcode.GetFeatures, AdminOpcode.AsyncEventRequest, AdminOpcode.KeepAlive,
    ];

    /// <summary>
    /// Fills the log for <paramref name="csi"/>. Only CSUPP and LBCC are used for I/O commands: any other effect bit
    /// makes the Linux host warn and freeze the queue around passthrough commands. For CSI 02h the zone commands are
    /// included; without Zone Append's CSUPP the host forces the zoned disk read-only.
    /// </summary>
    public static void Write(Span<byte> d, byte csi)
    {
        d = d[..Size];
        d.Clear();
        foreach (byte opc in s_admin)
        {
            Set(d, AdminOffset, opc, Csupp);
        }
        if (csi is not (Csi.Nvm or Csi.Zoned))
        {
            return;
        }
        Set(d, IoOffset, IoOpcode.Flush, Csupp | Lbcc);
        Set(d, IoOffset, IoOpcode.Read, Csupp);
        Set(d, IoOffset, IoOpcode.Write, Csupp | Lbcc);
        Set(d, IoOffset, IoOpcode.WriteZeroes, Csupp | Lbcc);
        Set(d, IoOffset, IoOpcode.DatasetManagement, Csupp | Lbcc);
        Set(d, IoOffset, IoOpcode.Compare, Csupp);
        Set(d, IoOffset, IoOpcode.Verify, Csupp);
        Set(d, IoOffset, IoOpcode.Copy, Csupp | Lbcc);
        if (csi == Csi.Zoned)
        {
            Set(d, IoOffset, IoOpcode.ZoneManagementSend, Csupp | Lbcc);
            Set(d, IoOffset, IoOpcode.ZoneManagementReceive, Csupp);
            Set(d, IoOffset, IoOpcode.ZoneAppend, Csupp | Lbcc);
        }
    }

    private static void Set(Span<byte> d, int table, byte opcode, uint value) =>
        BinaryPrimitives.WriteUInt32LittleEndian(d[(table + opcode * 4)..], value);
}

/// <summary>Values reported in the SMART / Health Information log.</summary>
public readonly record struct SmartValues(ulong DataUnitsRead, ulong DataUnitsWritten, ulong HostReads, ulong HostWrites, ulong PowerOnHours);

/// <summary>SMART / Health Information log (LID 02h, 512 bytes; <c>struct nvme_smart_log</c>).</summary>
public static class SmartLogLayout
{
    public const int Size = 512;
    public const int CompositeTemperature = 1, AvailableSpare = 3, AvailableSpareThreshold = 4, DataUnitsRead = 32,
        DataUnitsWritten = 48, HostReads = 64, HostWrites = 80, PowerCycles = 112, PowerOnHours = 128;

    /// <summary>Reported composite temperature in kelvin (50 °C, the value QEMU reports).</summary>
    public const ushort Temperature = 0x143;

    public static void Write(Span<byte> d, in SmartValues v)
    {
        d = d[..Size];
        d.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d[CompositeTemperature..], Temperature);
        d[AvailableSpare] = 100;
        d[AvailableSpareThreshold] = 10;
        // The counters are 128-bit; the upper halves stay zero.
        BinaryPrimitives.WriteUInt64LittleEndian(d[DataUnitsRead..], v.DataUnitsRead);
        BinaryPrimitives.WriteUInt64LittleEndian(d[DataUnitsWritten..], v.DataUnitsWritten);
        BinaryPrimitives.WriteUInt64LittleEndian(d[HostReads..], v.HostReads);
        BinaryPrimitives.WriteUInt64LittleEndian(d[HostWrites..], v.HostWrites);
        BinaryPrimitives.WriteUInt64LittleEndian(d[PowerCycles..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(d[PowerOnHours..], v.PowerOnHours);
    }
}

/// <summary>Firmware Slot Information log (LID 03h, 512 bytes).</summary>
public static class FirmwareSlotLogLayout
{
    public const int Size = 512;
    public const int Afi = 0, Frs1 = 8;

    public static void Write(Span<byte> d, string firmware)
    {
        d = d[..Size];
        d.Clear();
        // AFI: slot 1 is active.
        d[Afi] = 1;
        WireText.WriteSpacePadded(d.Slice(Frs1, 8), firmware);
    }
}

/// <summary>Error Information log (LID 01h): 64-byte entries, ELPE+1 of them; this target never records errors.</summary>
public static class ErrorLogLayout
{
    public const int EntrySize = 64;
    public const int Size = EntrySize * (IdentifyControllerLayout.ErrorLogEntries + 1);
}

/// <summary>Changed Zone List log (LID BFh, CSI 02h, 4096 bytes): NRZID u16 at 0, then up to 511 ZSLBAs from byte 8.</summary>
public static class ChangedZoneListLayout
{
    public const int Size = 4096;
    public const int MaxEntries = 511;
    /// <summary>NRZID FFFFh: more than 511 zones changed; no identifiers follow.</summary>
    public const ushort Overflow = 0xFFFF;

    public static void Write(Span<byte> d, ReadOnlySpan<ulong> zslbas, bool overflow)
    {
        d = d[..Size];
        d.Clear();
        if (overflow || zslbas.Length > MaxEntries)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(d, Overflow);
            return;
        }
        BinaryPrimitives.WriteUInt16LittleEndian(d, (ushort)zslbas.Length);
        for (int i = 0; i < zslbas.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(d[(8 + 8 * i)..], zslbas[i]);
        }
    }
}

/// <summary>One entry of the discovery log.</summary>
public readonly record struct DiscoveryEntry(
    byte AddressFamily, byte SubsystemType, ushort PortId, string ServiceId, string SubNqn, string TransportAddress);

/// <summary>Discovery log page (LID 70h; <c>struct nvmf_disc_rsp_page_hdr</c> and <c>_entry</c>).</summary>
public static class DiscoveryLogLayout
{
    public const int HeaderSize = 1024;
    public const int EntrySize = 1024;
    public const int GenctrOffset = 0, NumrecOffset = 8, RecfmtOffset = 16;
    public const int Trtype = 0, Adrfam = 1, Subtype = 2, Treq = 3, Portid = 4, Cntlid = 6, Asqsz = 8, Eflags = 10,
        Trsvcid = 32, Subnqn = 256, Traddr = 512, Tsas = 768;

    public const byte TransportTcp = 3;
    public const byte AddressFamilyIpv4 = 1, AddressFamilyIpv6 = 2;
    public const byte SubtypeNvm = 2, SubtypeCurrentDiscovery = 3;
    /// <summary>TREQ bits 1:0 = 10b: a secure channel is not required (never ask the host for TLS).</summary>
    public const byte TreqSecureChannelNotRequired = 0x02;

    public static int SizeFor(int entries) => HeaderSize + EntrySize * entries;

    public static void Write(Span<byte> d, ulong generation, ReadOnlySpan<DiscoveryEntry> entries)
    {
        d = d[..SizeFor(entries.Length)];
        d.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d[GenctrOffset..], generation);
        BinaryPrimitives.WriteUInt64LittleEndian(d[NumrecOffset..], (ulong)entries.Length);
        for (int i = 0; i < entries.Length; i++)
        {
            Span<byte> e = d.Slice(HeaderSize + i * EntrySize, EntrySize);
            ref readonly DiscoveryEntry entry = ref entries[i];
            e[Trtype] = TransportTcp;
            e[Adrfam] = entry.AddressFamily;
            e[Subtype] = entry.SubsystemType;
            e[Treq] = TreqSecureChannelNotRequired;
            BinaryPrimitives.WriteUInt16LittleEndian(e[Portid..], entry.PortId);
            // CNTLID FFFFh: the dynamic controller model, a new controller per admin Connect.
            BinaryPrimitives.WriteUInt16LittleEndian(e[Cntlid..], 0xFFFF);
            BinaryPrimitives.WriteUInt16LittleEndian(e[Asqsz..], 32);
            // TRSVCID/TRADDR NUL padded as nvmet sends them (libnvme also strips trailing spaces).
            WireText.WriteNulTerminated(e.Slice(Trsvcid, 32), entry.ServiceId);
            WireText.WriteNulTerminated(e.Slice(Subnqn, 256), entry.SubNqn);
            WireText.WriteNulTerminated(e.Slice(Traddr, 256), entry.TransportAddress);
            // TSAS byte 0 = SECTYPE 0 (no security): a non-zero value makes nvme-cli attempt TLS.
        }
    }
}

using System.Buffers.Binary;

namespace Zns.Nvme.Layouts;

/// <summary>Fabrics Connect command fields (NVMe-oF §3.3; SQE offsets of <c>struct nvmf_connect_command</c>).</summary>
public static class ConnectCommandLayout
{
    /// <summary>SQE byte offset of RECFMT.</summary>
    public const int RecfmtOffset = 40;
    /// <summary>SQE byte offset of QID.</summary>
    public const int QidOffset = 42;
    /// <summary>SQE byte offset of SQSIZE.</summary>
    public const int SqSizeOffset = 44;
    /// <summary>SQE byte offset of CATTR.</summary>
    public const int CattrOffset = 46;
    /// <summary>SQE byte offset of KATO.</summary>
    public const int KatoOffset = 48;

    public static ushort Recfmt(in SubmissionQueueEntry sqe) => (ushort)sqe.Cdw10;
    public static ushort Qid(in SubmissionQueueEntry sqe) => (ushort)(sqe.Cdw10 >> 16);
    public static ushort SqSize(in SubmissionQueueEntry sqe) => (ushort)sqe.Cdw11;
    public static byte Cattr(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw11 >> 16);
    public static uint Kato(in SubmissionQueueEntry sqe) => sqe.Cdw12;
}

/// <summary>The 1024-byte Connect data (<c>struct nvmf_connect_data</c>).</summary>
public static class ConnectDataLayout
{
    public const int Size = 1024;
    public const int HostIdOffset = 0;
    public const int CntlidOffset = 16;
    public const int SubNqnOffset = 256;
    public const int HostNqnOffset = 512;
    /// <summary>NQN fields are 256 bytes (NVMe Base §4.7: at most 223 bytes plus NUL).</summary>
    public const int NqnFieldSize = 256;

    public static Guid HostId(ReadOnlySpan<byte> data) => new(data.Slice(HostIdOffset, 16), bigEndian: true);
    public static ushort Cntlid(ReadOnlySpan<byte> data) => BinaryPrimitives.ReadUInt16LittleEndian(data[CntlidOffset..]);
    public static string SubNqn(ReadOnlySpan<byte> data) => WireText.ReadNulTerminated(data.Slice(SubNqnOffset, NqnFieldSize));
    public static string HostNqn(ReadOnlySpan<byte> data) => WireText.ReadNulTerminated(data.Slice(HostNqnOffset, NqnFieldSize));

    /// <summary>Builds Connect data (used by tests and tools that act as a host).</summary>
    public static void Write(Span<byte> data, Guid hostId, ushort cntlid, string subNqn, string hostNqn)
    {
        data[..Size].Clear();
        hostId.TryWriteBytes(data.Slice(HostIdOffset, 16), bigEndian: true, out _);
        BinaryPrimitives.WriteUInt16LittleEndian(data[CntlidOffset..], cntlid);
        WireText.WriteNulTerminated(data.Slice(SubNqnOffset, NqnFieldSize), subNqn);
        WireText.WriteNulTerminated(data.Slice(HostNqnOffset, NqnFieldSize), hostNqn);
    }

    /// <summary>
    /// Connect response DW0 for Connect Invalid Parameters / Invalid Host: bits 15:0 IPO (byte offset of the bad
    /// field), bit 16 IATTR (1 = the offset is into the Connect data, 0 = into the SQE) (NVMe-oF §3.3.1).
    /// </summary>
    public static uint InvalidParameterInData(int offset) => (1u << 16) | (uint)offset;

    /// <inheritdoc cref="InvalidParameterInData"/>
    public static uint InvalidParameterInSqe(int offset) => (uint)offset;
}

/// <summary>Property Get/Set fields (<c>struct nvmf_property_get/set_command</c>).</summary>
public static class PropertyCommandLayout
{
    /// <summary>ATTRIB bits 2:0: 0 = 4-byte property, 1 = 8-byte property.</summary>
    public static int Size(in SubmissionQueueEntry sqe) => (sqe.Cdw10 & 0x7) == 1 ? 8 : 4;
    public static uint Offset(in SubmissionQueueEntry sqe) => sqe.Cdw11;
    public static ulong Value(in SubmissionQueueEntry sqe) => ((ulong)sqe.Cdw13 << 32) | sqe.Cdw12;
}

/// <summary>Controller property offsets and bit fields (NVMe Base §3.1.4).</summary>
public static class ControllerProperties
{
    public const uint Cap = 0x00;
    public const uint Vs = 0x08;
    public const uint Cc = 0x14;
    public const uint Csts = 0x1C;
    /// <summary>Admin Queue Attributes, Admin SQ/CQ Base Address: registers of a memory-based controller only.</summary>
    public const uint Aqa = 0x24, Asq = 0x28, Acq = 0x30;

    /// <summary>
    /// NVMe 1.4, what QEMU reports (NVME_SPEC_VER). The Linux host keys I/O command sets on CAP.CSS and the
    /// namespace descriptors (1.3 and later), not on the version.
    /// </summary>
    public const uint Version = 0x0001_0400;

    /// <summary>
    /// CAP with MQES = <paramref name="mqes"/>, TO = 15 (7.5 s: 6.12+ hosts wait (TO+1)/2 whole seconds, so TO = 0
    /// would fail), CSS bit 37 (NVM) and bit 43 (one or more I/O command sets; without it the host never writes
    /// CC.CSS = 110b and skips ZNS namespaces), MPSMIN = MPSMAX = 0 (4 KiB).
    /// </summary>
    public static ulong BuildCap(ushort mqes) => mqes | (15UL << 24) | (1UL << 37) | (1UL << 43);

    // CC fields.
    public static bool CcEnabled(uint cc) => (cc & 1) != 0;
    public static uint CcCss(uint cc) => (cc >> 4) & 0x7;
    public static uint CcMps(uint cc) => (cc >> 7) & 0xF;
    public static uint CcAms(uint cc) => (cc >> 11) & 0x7;
    public static uint CcShn(uint cc) => (cc >> 14) & 0x3;
    public static uint CcIosqes(uint cc) => (cc >> 16) & 0xF;
    public static uint CcIocqes(uint cc) => (cc >> 20) & 0xF;

    /// <summary>CC.CSS 000b: NVM command set only.</summary>
    public const uint CssNvm = 0;
    /// <summary>CC.CSS 110b: all supported I/O command sets (what Linux writes when CAP bit 43 is set).</summary>
    public const uint CssAllSupported = 6;
    /// <summary>CC.CSS 111b: admin command set only.</summary>
    public const uint CssAdminOnly = 7;

    // CSTS bits.
    public const uint CstsReady = 1u << 0;
    public const uint CstsFatal = 1u << 1;
    public const uint CstsShutdownComplete = 2u << 2;
}

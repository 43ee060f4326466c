using System.Buffers.Binary;

namespace Zns.Target.Pcie;

/// <summary>
/// PCI configuration space of the NVMe function (PCI Local Bus 3.0 type 0 header, PCIe 4.0 capabilities): class code
/// 01h/08h/02h (mass storage, non-volatile memory, NVM Express), BAR0/1 a 64-bit memory BAR with the controller
/// registers and doorbells, BAR4/5 a 64-bit memory BAR with the MSI-X table and PBA, and the capability list
/// Power Management → MSI-X → PCI Express. No INTx pin: the function interrupts through MSI-X only.
/// </summary>
internal sealed class PciConfigSpace
{
    /// <summary>PCIe configuration space size (extended space reads as zeros: no extended capabilities).</summary>
    public const int Size = 4096;

    public const ushort VendorId = 0x4E58, DeviceId = 0x0001;
    public const int Bar0Size = 0x4000, Bar4Size = 0x2000;
    public const int MsixTableOffset = 0, MsixPbaOffset = 0x1000, MsixBar = 4;

    private const int PmCap = 0x40, MsixCap = 0x50, PcieCap = 0x60;
    private const int CommandOffset = 0x04, Bar0Offset = 0x10, Bar4Offset = 0x20;
    /// <summary>Command register bits a driver may set: I/O space, memory space, bus master, SERR#, INTx disable.</summary>
    private const ushort CommandWritable = 0x0001 | 0x0002 | 0x0004 | 0x0100 | 0x0400;

    private readonly byte[] _bytes = new byte[Size];
    private readonly int _msixVectors;

    public PciConfigSpace(int msixVectors)
    {
        _msixVectors = msixVectors;
        Reset();
    }

    /// <summary>Bus Master Enable: the function may access guest memory.</summary>
    public bool BusMasterEnabled => (BinaryPrimitives.ReadUInt16LittleEndian(_bytes.AsSpan(CommandOffset)) & 0x4) != 0;

    /// <summary>Restores the power-on values (function level reset).</summary>
    public void Reset()
    {
        Span<byte> c = _bytes;
        c.Clear();
        W16(c, 0x00, VendorId);
        W16(c, 0x02, DeviceId);
        W16(c, 0x06, 0x0010); // Status: capabilities list present
        c[0x08] = 0x00; // revision
        c[0x09] = 0x02; // programming interface: NVM Express
        c[0x0A] = 0x08; // subclass: non-volatile memory controller
        c[0x0B] = 0x01; // class: mass storage
        c[0x0E] = 0x00; // header type 0, single function
        W32(c, Bar0Offset, 0x4); // 64-bit memory BAR, not prefetchable
        W32(c, Bar4Offset, 0x4);
        W16(c, 0x2C, VendorId); // subsystem vendor
        W16(c, 0x2E, DeviceId); // subsystem
        c[0x34] = PmCap;
        c[0x3D] = 0; // no INTx pin

        // Power Management (PCI PM 1.2): version 3, D0 only; PMCSR No_Soft_Reset.
        c[PmCap] = 0x01;
        c[PmCap + 1] = MsixCap;
        W16(c, PmCap + 2, 0x0003);
        W16(c, PmCap + 4, 0x0008);

        // MSI-X: table size N-1, table and PBA in BAR4.
        c[MsixCap] = 0x11;
        c[MsixCap + 1] = PcieCap;
        W16(c, MsixCap + 2, (ushort)(_msixVectors - 1));
        W32(c, MsixCap + 4, MsixTableOffset | MsixBar);
        W32(c, MsixCap + 8, MsixPbaOffset | MsixBar);

        // PCI Express capability, version 2, endpoint; x1 at 2.5 GT/s (link figures are nominal).
        c[PcieCap] = 0x10;
        c[PcieCap + 1] = 0;
        W16(c, PcieCap + 2, 0x0002);
        W32(c, PcieCap + 4, 0x0000_8000); // DevCap: role-based error reporting, MPS 128 B
        W16(c, PcieCap + 8, 0x2810); // DevCtl: MRRS 512 B, relaxed ordering, MPS 128 B
        W32(c, PcieCap + 0x0C, 0x0000_0011); // LinkCap: x1, 2.5 GT/s
        W16(c, PcieCap + 0x12, 0x0011); // LinkSta: x1, 2.5 GT/s
        W32(c, PcieCap + 0x24, 0x0000_0000); // DevCap2
    }

    /// <summary>Reads <paramref name="destination"/>.Length bytes at <paramref name="offset"/>; false outside the space.</summary>
    public bool Read(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Size - destination.Length)
        {
            return false;
        }
        _bytes.AsSpan((int)offset, destination.Length).CopyTo(destination);
        return true;
    }

    /// <summary>
    /// Writes config space. Only the command register, BAR address bits (BAR sizing works: the size bits read back as
    /// zero), the interrupt line, PMCSR power state and the MSI-X / PCIe control fields take writes; everything else is
    /// read-only, as in hardware.
    /// </summary>
    public bool Write(long offset, ReadOnlySpan<byte> source)
    {
        if (offset < 0 || offset > Size - source.Length)
        {
            return false;
        }
        for (int i = 0; i < source.Length; i++)
        {
            int at = (int)offset + i;
            byte mask = WritableMask(at);
            _bytes[at] = (byte)((_bytes[at] & ~mask) | (source[i] & mask));
        }
        return true;
    }

    private static byte WritableMask(int at)
    {
        static byte ByteOf(uint mask, int index) => (byte)(mask >> (index * 8));
        switch (at)
        {
            case >= CommandOffset and < CommandOffset + 2:
                return ByteOf(CommandWritable, at - CommandOffset);
            case >= Bar0Offset and < Bar0Offset + 8:
                return ByteOf(BarMask(Bar0Size, at - Bar0Offset >= 4), (at - Bar0Offset) & 3);
            case >= Bar4Offset and < Bar4Offset + 8:
                return ByteOf(BarMask(Bar4Size, at - Bar4Offset >= 4), (at - Bar4Offset) & 3);
            case 0x3C:
                return 0xFF; // interrupt line
            case PmCap + 4:
                return 0x03; // PMCSR power state
            case MsixCap + 3:
                return 0xC0; // MSI-X enable, function mask
            case >= PcieCap + 8 and < PcieCap + 10:
                return 0xFF; // device control
            case >= PcieCap + 0x10 and < PcieCap + 0x12:
                return 0xFF; // link control
            default:
                return 0;
        }
    }

    private static uint BarMask(int size, bool upper) => upper ? 0xFFFF_FFFF : ~(uint)(size - 1);

    private static void W16(Span<byte> c, int at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(c[at..], v);
    private static void W32(Span<byte> c, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(c[at..], v);
}

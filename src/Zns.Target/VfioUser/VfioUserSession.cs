using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Zns.Target.Pcie;

namespace Zns.Target.VfioUser;

/// <summary>
/// The server side of one vfio-user connection, independent of the socket: takes one framed command with the file
/// descriptors that came with it and builds the reply. Every malformed payload is answered with an error reply
/// (EINVAL, ENOTSUP, ...) and loses nothing; only broken framing (see <see cref="VfioUserFraming"/>) ends a session.
/// </summary>
/// <remarks>
/// File descriptors received with a message are owned by the session: those kept (DMA mappings are mapped and
/// closed at once; eventfds become MSI-X triggers) are taken from the list, the rest are closed.
/// </remarks>
internal sealed class VfioUserSession
{
    // Region indices of a VFIO PCI device (linux/vfio.h VFIO_PCI_*_REGION_INDEX).
    public const int Bar0Region = 0, Bar4Region = 4, ConfigRegion = 7, RegionCount = 9;
    // IRQ indices (VFIO_PCI_*_IRQ_INDEX): INTx, MSI, MSI-X, ERR, REQ.
    public const int MsixIrq = 2, IrqCount = 5;

    private const uint DeviceFlagsReset = 1, DeviceFlagsPci = 2;
    private const uint RegionFlagRead = 1, RegionFlagWrite = 2;
    private const uint IrqInfoEventFd = 1, IrqInfoNoResize = 8;
    private const uint SetIrqDataNone = 1, SetIrqDataBool = 2, SetIrqDataEventFd = 4;
    private const uint SetIrqActionMask = 8, SetIrqActionUnmask = 16, SetIrqActionTrigger = 32;
    private const uint DmaFlagRead = 1, DmaFlagWrite = 2, DmaUnmapFlagDirtyBitmap = 1, DmaUnmapFlagAll = 2;
    public const ushort MajorVersion = 0, MinorVersion = 0;
    /// <summary>File descriptors accepted in one message (the client's max_msg_fds is about what we send).</summary>
    public const int MaxMessageFds = 16;

    private readonly NvmePcieFunction _device;
    private readonly Func<int, IInterruptSignal> _signalForFd;
    private readonly Action<int> _closeFd;
    private bool _negotiated;

    public VfioUserSession(NvmePcieFunction device, Func<int, IInterruptSignal> signalForFd, Action<int> closeFd)
    {
        _device = device;
        _signalForFd = signalForFd;
        _closeFd = closeFd;
    }

    /// <summary>The capabilities this server sends in its VERSION reply.</summary>
    public static string Capabilities =>
        $"{{\"capabilities\":{{\"max_msg_fds\":{MaxMessageFds},\"max_data_xfer_size\":{VfioUserFraming.MaxDataTransfer},\"pgsizes\":4096,\"max_dma_maps\":{GuestMemory.MaxWindows}}}}}";

    /// <summary>
    /// Handles one command. <paramref name="reply"/> must hold <see cref="VfioUserFraming.MaxMessageSize"/> bytes;
    /// returns the reply length (0 when the command asked for no reply).
    /// </summary>
    public int Handle(in VfioUserHeader header, ReadOnlySpan<byte> payload, List<int> fds, Span<byte> reply)
    {
        int errno;
        int length = 0;
        Span<byte> body = reply[VfioUserHeader.Size..];
        try
        {
            errno = !_negotiated && header.Command != VfioUserCommand.Version
                ? Errno.Einval
                : header.Command switch
                {
                    VfioUserCommand.Version => Version(payload, body, out length),
                    VfioUserCommand.DmaMap => DmaMap(payload, fds),
                    VfioUserCommand.DmaUnmap => DmaUnmap(payload, body, out length),
                    VfioUserCommand.DeviceGetInfo => DeviceInfo(payload, body, out length),
                    VfioUserCommand.DeviceGetRegionInfo => RegionInfo(payload, body, out length),
                    VfioUserCommand.DeviceGetIrqInfo => IrqInfo(payload, body, out length),
                    VfioUserCommand.DeviceSetIrqs => SetIrqs(payload, fds),
                    VfioUserCommand.RegionRead => RegionRead(payload, body, out length),
                    VfioUserCommand.RegionWrite => RegionWrite(payload, body, out length),
                    VfioUserCommand.DeviceReset => DeviceReset(payload),
                    _ => Errno.Enotsup,
                };
        }
        finally
        {
            foreach (int fd in fds)
            {
                _closeFd(fd);
            }
            fds.Clear();
        }
        if (header.NoReply)
        {
            return 0;
        }
        if (errno != 0)
        {
            length = 0;
        }
        VfioUserHeader.ReplyTo(in header, length, errno).Write(reply);
        return VfioUserHeader.Size + length;
    }

    private int Version(ReadOnlySpan<byte> p, Span<byte> body, out int length)
    {
        length = 0;
        if (p.Length < 4)
        {
            return Errno.Einval;
        }
        ushort major = BinaryPrimitives.ReadUInt16LittleEndian(p);
        if (major != MajorVersion)
        {
            return Errno.Enotsup;
        }
        ReadOnlySpan<byte> json = p[4..];
        if (!json.IsEmpty)
        {
            // Optional NUL-terminated JSON object; only its form is judged (nothing the client offers is required).
            int nul = json.IndexOf((byte)0);
            if (nul < 0 || !IsJsonObject(json[..nul]))
            {
                return Errno.Einval;
            }
        }
        BinaryPrimitives.WriteUInt16LittleEndian(body, MajorVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(body[2..], MinorVersion);
        int n = Encoding.UTF8.GetBytes(Capabilities, body[4..]);
        body[4 + n] = 0;
        length = 4 + n + 1;
        _negotiated = true;
        return 0;
    }

    private static bool IsJsonObject(ReadOnlySpan<byte> text)
    {
        try
        {
            var reader = new Utf8JsonReader(text, new JsonReaderOptions { MaxDepth = 8 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            reader.Skip();
            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private int DmaMap(ReadOnlySpan<byte> p, List<int> fds)
    {
        if (p.Length < 32 || BinaryPrimitives.ReadUInt32LittleEndian(p) < 32 || fds.Count > 1)
        {
            return Errno.Einval;
        }
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(p[4..]);
        long offset = BinaryPrimitives.ReadInt64LittleEndian(p[8..]);
        ulong address = BinaryPrimitives.ReadUInt64LittleEndian(p[16..]);
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(p[24..]);
        if ((flags & ~(DmaFlagRead | DmaFlagWrite)) != 0)
        {
            return Errno.Einval;
        }
        // The mapping keeps its own reference; the descriptor is closed by Handle either way.
        int fd = fds.Count == 1 ? fds[0] : -1;
        return _device.Memory.Map(address, size, fd, offset, (flags & DmaFlagRead) != 0, (flags & DmaFlagWrite) != 0);
    }

    private int DmaUnmap(ReadOnlySpan<byte> p, Span<byte> body, out int length)
    {
        length = 0;
        if (p.Length < 24)
        {
            return Errno.Einval;
        }
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(p[4..]);
        ulong address = BinaryPrimitives.ReadUInt64LittleEndian(p[8..]);
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(p[16..]);
        if ((flags & DmaUnmapFlagDirtyBitmap) != 0)
        {
            return Errno.Enotsup;
        }
        if ((flags & ~DmaUnmapFlagAll) != 0)
        {
            return Errno.Einval;
        }
        int errno = _device.Memory.Unmap(address, size, all: (flags & DmaUnmapFlagAll) != 0);
        if (errno == 0)
        {
            p[..24].CopyTo(body);
            length = 24;
        }
        return errno;
    }

    private static int DeviceInfo(ReadOnlySpan<byte> p, Span<byte> body, out int length)
    {
        length = 0;
        if (p.Length < 4 || BinaryPrimitives.ReadUInt32LittleEndian(p) < 16)
        {
            return Errno.Einval;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(body, 16);
        BinaryPrimitives.WriteUInt32LittleEndian(body[4..], DeviceFlagsReset | DeviceFlagsPci);
        BinaryPrimitives.WriteUInt32LittleEndian(body[8..], RegionCount);
        BinaryPrimitives.WriteUInt32LittleEndian(body[12..], IrqCount);
        length = 16;
        return 0;
    }

    /// <summary>Size of each region; 0 for the absent ones (BARs 1-3 and 5 are upper halves or unused, no ROM, no VGA).</summary>
    public static long RegionSize(int index) => index switch
    {
        Bar0Region => PciConfigSpace.Bar0Size,
        Bar4Region => PciConfigSpace.Bar4Size,
        ConfigRegion => PciConfigSpace.Size,
        _ => 0,
    };

    private static int RegionInfo(ReadOnlySpan<byte> p, Span<byte> body, out int length)
    {
        length = 0;
        if (p.Length < 32 || BinaryPrimitives.ReadUInt32LittleEndian(p) < 32)
        {
            return Errno.Einval;
        }
        uint index = BinaryPrimitives.ReadUInt32LittleEndian(p[8..]);
        if (index >= RegionCount)
        {
            return Errno.Einval;
        }
        long size = RegionSize((int)index);
        body[..32].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(body, 32);
        BinaryPrimitives.WriteUInt32LittleEndian(body[4..], size == 0 ? 0 : RegionFlagRead | RegionFlagWrite);
        BinaryPrimitives.WriteUInt32LittleEndian(body[8..], index);
        BinaryPrimitives.WriteInt64LittleEndian(body[16..], size);
        length = 32;
        return 0;
    }

    private int IrqInfo(ReadOnlySpan<byte> p, Span<byte> body, out int length)
    {
        length = 0;
        if (p.Length < 16 || BinaryPrimitives.ReadUInt32LittleEndian(p) < 16)
        {
            return Errno.Einval;
        }
        uint index = BinaryPrimitives.ReadUInt32LittleEndian(p[8..]);
        if (index >= IrqCount)
        {
            return Errno.Einval;
        }
        bool msix = index == MsixIrq;
        BinaryPrimitives.WriteUInt32LittleEndian(body, 16);
        BinaryPrimitives.WriteUInt32LittleEndian(body[4..], msix ? IrqInfoEventFd | IrqInfoNoResize : IrqInfoEventFd);
        BinaryPrimitives.WriteUInt32LittleEndian(body[8..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(body[12..], msix ? (uint)_device.MsixVectorCount : 0);
        length = 16;
        return 0;
    }

    private int SetIrqs(ReadOnlySpan<byte> p, List<int> fds)
    {
        if (p.Length < 20)
        {
            return Errno.Einval;
        }
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(p[4..]);
        uint index = BinaryPrimitives.ReadUInt32LittleEndian(p[8..]);
        uint start = BinaryPrimitives.ReadUInt32LittleEndian(p[12..]);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(p[16..]);
        uint data = flags & (SetIrqDataNone | SetIrqDataBool | SetIrqDataEventFd);
        uint action = flags & (SetIrqActionMask | SetIrqActionUnmask | SetIrqActionTrigger);
        if ((flags & ~(data | action)) != 0 || !IsSingleBit(data) || !IsSingleBit(action) || index >= IrqCount)
        {
            return Errno.Einval;
        }
        if (index != MsixIrq)
        {
            // No INTx, MSI, error or request interrupts: only "disable all" (count 0) is meaningful.
            return count == 0 && fds.Count == 0 ? 0 : Errno.Einval;
        }
        int vectors = _device.MsixVectorCount;
        if (data == SetIrqDataNone && action == SetIrqActionTrigger && count == 0)
        {
            return start == 0 && fds.Count == 0 && _device.SetMsixTriggers(0, vectors, []) ? 0 : Errno.Einval;
        }
        if (start >= vectors || count > vectors - start || count == 0)
        {
            return Errno.Einval;
        }
        if (action != SetIrqActionTrigger)
        {
            // MSI-X masking is done by the client (the vector is not MASKABLE); accepted and ignored.
            return data == SetIrqDataEventFd && fds.Count != 0 ? Errno.Enotsup : 0;
        }
        switch (data)
        {
            case SetIrqDataEventFd:
            {
                if (fds.Count != 0 && fds.Count != count)
                {
                    return Errno.Einval;
                }
                var signals = new IInterruptSignal?[fds.Count];
                for (int i = 0; i < fds.Count; i++)
                {
                    signals[i] = _signalForFd(fds[i]);
                }
                fds.Clear();
                _device.SetMsixTriggers((int)start, (int)count, signals);
                return 0;
            }
            case SetIrqDataBool:
                if (p.Length < 20 + count)
                {
                    return Errno.Einval;
                }
                for (int i = 0; i < count; i++)
                {
                    if (p[20 + i] != 0)
                    {
                        _device.TriggerMsix((int)start + i);
                    }
                }
                return 0;
            default:
                for (int i = 0; i < count; i++)
                {
                    _device.TriggerMsix((int)start + i);
                }
                return 0;
        }
    }

    private static bool IsSingleBit(uint v) => v != 0 && (v & (v - 1)) == 0;

    private int RegionRead(ReadOnlySpan<byte> p, Span<byte> body, out int length)
    {
        length = 0;
        if (p.Length < 16)
        {
            return Errno.Einval;
        }
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(p);
        uint region = BinaryPrimitives.ReadUInt32LittleEndian(p[8..]);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(p[12..]);
        if (count > VfioUserFraming.MaxDataTransfer || !InRegion(region, offset, count))
        {
            return Errno.Einval;
        }
        Span<byte> data = body.Slice(16, (int)count);
        bool ok = region switch
        {
            Bar0Region => _device.ReadBar0((long)offset, data),
            Bar4Region => ReadMsix((long)offset, data),
            _ => _device.ReadConfig((long)offset, data),
        };
        if (!ok)
        {
            return Errno.Einval;
        }
        p[..16].CopyTo(body);
        length = 16 + (int)count;
        return 0;
    }

    private bool ReadMsix(long offset, Span<byte> data)
    {
        _device.ReadMsixBar(offset, data);
        return true;
    }

    private int RegionWrite(ReadOnlySpan<byte> p, Span<byte> body, out int length)
    {
        length = 0;
        if (p.Length < 16)
        {
            return Errno.Einval;
        }
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(p);
        uint region = BinaryPrimitives.ReadUInt32LittleEndian(p[8..]);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(p[12..]);
        if (count != p.Length - 16 || !InRegion(region, offset, count))
        {
            return Errno.Einval;
        }
        ReadOnlySpan<byte> data = p.Slice(16, (int)count);
        bool ok;
        switch (region)
        {
            case Bar0Region:
                ok = _device.WriteBar0((long)offset, data);
                break;
            case Bar4Region:
                _device.WriteMsixBar((long)offset, data);
                ok = true;
                break;
            default:
                ok = _device.WriteConfig((long)offset, data);
                break;
        }
        if (!ok)
        {
            return Errno.Einval;
        }
        p[..16].CopyTo(body);
        length = 16;
        return 0;
    }

    private static bool InRegion(uint region, ulong offset, uint count)
    {
        long size = region < RegionCount ? RegionSize((int)region) : 0;
        return size != 0 && offset <= (ulong)size && count <= (ulong)size - offset;
    }

    /// <summary>DEVICE_RESET has no payload; one is refused rather than ignored.</summary>
    private int DeviceReset(ReadOnlySpan<byte> p)
    {
        if (!p.IsEmpty)
        {
            return Errno.Einval;
        }
        _device.ResetFunction("device reset by the client");
        return 0;
    }
}

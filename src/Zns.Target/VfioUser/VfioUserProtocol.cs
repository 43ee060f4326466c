using System.Buffers.Binary;

namespace Zns.Target.VfioUser;

/// <summary>vfio-user command numbers (docs/interop/vfio-user.rst, "Commands").</summary>
internal static class VfioUserCommand
{
    public const ushort Version = 1;
    public const ushort DmaMap = 2;
    public const ushort DmaUnmap = 3;
    public const ushort DeviceGetInfo = 4;
    public const ushort DeviceGetRegionInfo = 5;
    public const ushort DeviceGetRegionIoFds = 6;
    public const ushort DeviceGetIrqInfo = 7;
    public const ushort DeviceSetIrqs = 8;
    public const ushort RegionRead = 9;
    public const ushort RegionWrite = 10;
    public const ushort DmaRead = 11;
    public const ushort DmaWrite = 12;
    public const ushort DeviceReset = 13;
    public const ushort RegionWriteMulti = 15;
    public const ushort DeviceFeature = 16;
}

/// <summary>Linux errno values sent in error replies.</summary>
internal static class Errno
{
    public const int Eperm = 1, Enoent = 2, Ebadf = 9, Enomem = 12, Efault = 14, Eexist = 17, Einval = 22,
        Enospc = 28, Erange = 34, Enotsup = 95;
}

/// <summary>
/// The 16-byte header in front of every vfio-user message: message ID, command, message size (header included),
/// flags (bits 3:0 type, bit 4 No_reply, bit 5 Error) and the errno of an error reply.
/// </summary>
internal readonly record struct VfioUserHeader(ushort MessageId, ushort Command, uint MessageSize, uint Flags, uint Error)
{
    public const int Size = 16;
    public const uint TypeMask = 0xF, TypeCommand = 0, TypeReply = 1, NoReplyFlag = 1u << 4, ErrorFlag = 1u << 5;

    public bool IsCommand => (Flags & TypeMask) == TypeCommand;
    public bool NoReply => (Flags & NoReplyFlag) != 0;
    public int PayloadSize => (int)(MessageSize - Size);

    public static VfioUserHeader Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt16LittleEndian(b),
        BinaryPrimitives.ReadUInt16LittleEndian(b[2..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[4..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[8..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[12..]));

    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(b, MessageId);
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], Command);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], MessageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], Error);
    }

    /// <summary>The reply header for a command: same ID and command, Reply type, size of header + payload.</summary>
    public static VfioUserHeader ReplyTo(in VfioUserHeader command, int payloadSize, int errno = 0) => new(
        command.MessageId, command.Command, (uint)(Size + payloadSize),
        TypeReply | (errno != 0 ? ErrorFlag : 0), (uint)errno);
}

/// <summary>Outcome of framing the next message in a byte stream.</summary>
internal enum FrameStatus
{
    /// <summary>A whole message is available.</summary>
    Complete,
    /// <summary>More bytes are needed (nothing is consumed).</summary>
    NeedMoreData,
    /// <summary>The stream cannot be trusted any more (size below the header, above the limit, or not a command).</summary>
    Invalid,
}

/// <summary>Frames vfio-user messages: the only place that judges a header before its payload is read.</summary>
internal static class VfioUserFraming
{
    /// <summary>Largest data count in one region or DMA read/write (the spec's default max_data_xfer_size).</summary>
    public const int MaxDataTransfer = 1 << 20;

    /// <summary>Largest message accepted: a region write of <see cref="MaxDataTransfer"/> bytes plus its headers.</summary>
    public const int MaxMessageSize = VfioUserHeader.Size + 16 + MaxDataTransfer;

    /// <summary>
    /// Checks the header at the start of <paramref name="stream"/>. A client only ever sends commands to this server
    /// (it issues no server-to-client requests), so a reply, an unknown type or a size outside
    /// [16, <see cref="MaxMessageSize"/>] breaks the stream.
    /// </summary>
    public static FrameStatus TryFrame(ReadOnlySpan<byte> stream, out VfioUserHeader header)
    {
        header = default;
        if (stream.Length < VfioUserHeader.Size)
        {
            return FrameStatus.NeedMoreData;
        }
        header = VfioUserHeader.Read(stream);
        if (header.MessageSize < VfioUserHeader.Size || header.MessageSize > MaxMessageSize || !header.IsCommand)
        {
            return FrameStatus.Invalid;
        }
        return stream.Length < header.MessageSize ? FrameStatus.NeedMoreData : FrameStatus.Complete;
    }
}

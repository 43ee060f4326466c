using System.Buffers.Binary;
using Zns.Core.Storage;
using Zns.Core.Zones;

namespace Zns.Core.Recording;

/// <summary>What one write log entry records.</summary>
public enum WriteLogKind : byte
{
    /// <summary>Write: data at LBA.</summary>
    Write = 1,
    /// <summary>Zone Append: data at the LBA it got (ALBA).</summary>
    Append = 2,
    /// <summary>Write Zeroes: blocks at LBA, no data.</summary>
    WriteZeroes = 3,
    /// <summary>One source range of a Copy as it landed: data at the destination LBA (the source is not needed).</summary>
    Copy = 4,
    /// <summary>Dataset Management deallocate of one range.</summary>
    Deallocate = 5,
    /// <summary>Zone Management Send: action, LBA (zone start, or the last LBA for a ZRWA flush), Select All.</summary>
    ZoneAction = 6,
    /// <summary>Flush; carries its flush ordinal (1 for the first).</summary>
    Flush = 7,
    /// <summary>The log reached its size bound here; nothing after it was recorded.</summary>
    Full = 8,
    /// <summary>Power was cut here (<c>zns fault power-cut</c>); the log stopped: what the cut dropped is not in it.</summary>
    PowerCut = 9,
}

/// <summary>Entry flags.</summary>
[Flags]
public enum WriteLogFlags : byte
{
    None = 0,
    /// <summary>The write had Force Unit Access (or the volatile write cache was off).</summary>
    Fua = 1,
    /// <summary>Zone action with Select All.</summary>
    SelectAll = 2,
    /// <summary>Zone Open with ZRWA allocation (ZSASO).</summary>
    Zsaso = 4,
}

/// <summary>One entry as read back: its fixed fields; the payload is read separately.</summary>
public readonly record struct WriteLogEntry(
    long Index, WriteLogKind Kind, WriteLogFlags Flags, ZoneSendAction Action, ulong Lba, uint Blocks, long FlushOrdinal,
    Zns.Nvme.NvmeStatus Status, int PayloadLength, long Offset);

/// <summary>
/// The write log file (<c>DIR/nsN.wlog</c>): a header naming the namespace, then entries in completion order.
/// </summary>
/// <remarks>
/// Little-endian. Header (its length a multiple of 4096):
/// <code>
///   0  8  magic "ZNSWRLOG"          16  4  NSID
///   8  4  format version (1)        20  4  header length (bytes)
///  12  4  CRC-32C of [16, 40 + snapshot length)
///  24  4  snapshot length          32  8  creation time (Unix ms)
///  40  …  the namespace's options and zones at the start of the log: one zone state commit, exactly as the
///         zone state file (FILE.zns) writes it
/// </code>
/// Entry (48 bytes, then the payload):
/// <code>
///   0  4  entry length (48 + payload)      20  4  blocks
///   4  4  CRC-32C of [8, entry length)      24  8  LBA
///   8  8  index (0, 1, 2, …)               32  8  flush ordinal (Flush entries; 1 for the first)
///  16  1  kind   17  1  flags               40  2  status (a Select All zone action that stopped at a failing zone)
///  18  1  zone send action   19  1  0       42  6  zero
///  48  …  payload: the data (Write, Append, Copy), the descriptor extension (Set Zone Descriptor Extension)
/// </code>
/// An entry is valid when its length is in bounds, its CRC matches and its index follows the one before: a torn or
/// damaged tail is found at the first entry that is not.
/// </remarks>
public static class WriteLogFormat
{
    /// <summary>The header's magic.</summary>
    public static ReadOnlySpan<byte> Magic => "ZNSWRLOG"u8;

    /// <summary>Format version this code writes and reads.</summary>
    public const int Version = 1;

    /// <summary>Bytes of an entry before its payload.</summary>
    public const int EntryHeaderSize = 48;

    /// <summary>Bytes of the header before the snapshot.</summary>
    public const int HeaderFixedSize = 40;

    /// <summary>Default size bound of one namespace's log (<c>--write-log-size</c>).</summary>
    public const long DefaultMaxBytes = 1L << 30;

    /// <summary>The smallest size bound: the header and a few entries must fit.</summary>
    public const long MinMaxBytes = 1L << 20;

    /// <summary>The log file of namespace <paramref name="nsid"/> in <paramref name="directory"/>.</summary>
    public static string PathFor(string directory, uint nsid) => Path.Combine(directory, $"ns{nsid}.wlog");

    /// <summary>The header for a namespace: its options and zones as a zone state commit.</summary>
    internal static byte[] EncodeHeader(uint nsid, byte[] snapshot, long createdUnixMs)
    {
        int length = (HeaderFixedSize + snapshot.Length + 4095) / 4096 * 4096;
        byte[] header = new byte[length];
        Span<byte> h = header;
        Magic.CopyTo(h);
        BinaryPrimitives.WriteInt32LittleEndian(h[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], nsid);
        BinaryPrimitives.WriteInt32LittleEndian(h[20..], length);
        BinaryPrimitives.WriteInt32LittleEndian(h[24..], snapshot.Length);
        BinaryPrimitives.WriteInt64LittleEndian(h[32..], createdUnixMs);
        snapshot.CopyTo(h[HeaderFixedSize..]);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], Crc32C.Compute(h[16..(HeaderFixedSize + snapshot.Length)]));
        return header;
    }

    /// <summary>Writes an entry's fixed fields and CRC; <paramref name="entry"/> holds the header and the payload after it.</summary>
    internal static void EncodeEntry(Span<byte> entry, long index, WriteLogKind kind, WriteLogFlags flags, ZoneSendAction action,
        ulong lba, uint blocks, long flushOrdinal, ushort status)
    {
        BinaryPrimitives.WriteInt32LittleEndian(entry, entry.Length);
        BinaryPrimitives.WriteInt64LittleEndian(entry[8..], index);
        entry[16] = (byte)kind;
        entry[17] = (byte)flags;
        entry[18] = (byte)action;
        entry[19] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(entry[20..], blocks);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[24..], lba);
        BinaryPrimitives.WriteInt64LittleEndian(entry[32..], flushOrdinal);
        BinaryPrimitives.WriteUInt16LittleEndian(entry[40..], status);
        entry[42..EntryHeaderSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(entry[4..], Crc32C.Compute(entry[8..]));
    }

    /// <summary>Decodes the fixed fields of an entry whose length and CRC were checked.</summary>
    internal static WriteLogEntry DecodeEntry(ReadOnlySpan<byte> h, long offset) => new(
        BinaryPrimitives.ReadInt64LittleEndian(h[8..]), (WriteLogKind)h[16], (WriteLogFlags)h[17], (ZoneSendAction)h[18],
        BinaryPrimitives.ReadUInt64LittleEndian(h[24..]), BinaryPrimitives.ReadUInt32LittleEndian(h[20..]),
        BinaryPrimitives.ReadInt64LittleEndian(h[32..]), new Zns.Nvme.NvmeStatus(BinaryPrimitives.ReadUInt16LittleEndian(h[40..])),
        BinaryPrimitives.ReadInt32LittleEndian(h) - EntryHeaderSize, offset);

    /// <summary>The kept options and zones a header's snapshot holds.</summary>
    internal static ZoneStateFile.Loaded? DecodeSnapshot(ReadOnlySpan<byte> snapshot) => ZoneStateFile.ParseSnapshot(snapshot);
}

using Zns.Core;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Zns.Core.Zones;

using Zns.Core.Interop;

namespace Zns.Core.Storage;

/// <summary>
/// The zone state file kept beside a backstore (<c>FILE.zns</c>): geometry, identity, write pointers, states,
/// attributes and descriptor extensions.
/// </summary>
/// <remarks>
/// Two slots of equal size; commit <c>n</c> goes to slot <c>n mod 2</c>, so a torn write can only damage the slot
/// being written and the other one still holds the previous commit. Each slot carries a magic, a format version, a
/// sequence number and a CRC-32C over everything after the CRC field; loading picks the valid slot with the highest
/// sequence. Slot layout (little-endian):
/// <code>
///   0  8  magic "ZNSSTATE"          40  8  zone size (LBAs)
///   8  4  format version            48  8  zone capacity (LBAs)
///  12  4  CRC-32C of [16, end)      56  4  zone count
///  16  8  commit sequence           60  4  descriptor extension size (bytes)
///  24  8  backstore length          64 16  namespace UUID
///  32  4  logical block size        80  4  max open     84  4  max active
///  36  1  zoned (0/1)               88  1  cross read   89  1  auto transition   90  1  mdts   91  1  zasl
///                                   92  1  write protected (0/1; 0 in files from before it existed)
/// 128 16×zones  zone records: write pointer (8), state (1), attributes (1), reserved (6)
///     then zones × extension size bytes of descriptor extensions
/// </code>
/// </remarks>
internal sealed partial class ZoneStateFile : IDisposable
{
    private const int FormatVersion = 1;
    private const int HeaderSize = 128;
    private const int RecordSize = 16;
    private static ReadOnlySpan<byte> Magic => "ZNSSTATE"u8;

    private readonly SafeFileHandle _handle;
    private readonly byte[] _slot;
    private ulong _sequence;

    private ZoneStateFile(SafeFileHandle handle, string path, int slotSize, ulong sequence)
    {
        _handle = handle;
        Path = path;
        _slot = new byte[slotSize];
        _sequence = sequence;
    }

    public string Path { get; }

    /// <summary>The state file that belongs to a backstore file.</summary>
    public static string PathFor(string backstorePath) => backstorePath + ".zns";

    public static int SlotSizeFor(ZoneGeometry g) => AlignUp(UsedBytes(g), 4096);

    private static int AlignUp(int v, int a) => (v + a - 1) / a * a;

    /// <summary>What a loaded state file holds.</summary>
    public sealed record Loaded(NamespaceOptions Options, long BackstoreLength, Guid Uuid, ZoneRecord[] Zones, byte[] Extensions, ulong Sequence,
        bool WriteProtected = false);

    /// <summary>Reads the newest valid commit, or null if the file does not exist. Throws if it exists but no slot is valid.</summary>
    public static Loaded? TryLoad(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        byte[] all = File.ReadAllBytes(path);
        Loaded? best = null;
        if (all.Length >= HeaderSize)
        {
            int slotSize = all.Length / 2;
            for (int s = 0; s < 2; s++)
            {
                if ((s + 1) * slotSize > all.Length || slotSize < HeaderSize)
                {
                    continue;
                }
                var candidate = TryParse(all.AsSpan(s * slotSize, slotSize));
                if (candidate is not null && (best is null || candidate.Sequence > best.Sequence))
                {
                    best = candidate;
                }
            }
        }
        return best ?? throw new InvalidDataException($"{path}: no valid zone state (both slots damaged or not a zns state file)");
    }

    private static Loaded? TryParse(ReadOnlySpan<byte> slot)
    {
        if (!slot[..8].SequenceEqual(Magic) || BinaryPrimitives.ReadInt32LittleEndian(slot[8..]) != FormatVersion)
        {
            return null;
        }
        int blockSize = BinaryPrimitives.ReadInt32LittleEndian(slot[32..]);
        uint zones = BinaryPrimitives.ReadUInt32LittleEndian(slot[56..]);
        int ext = BinaryPrimitives.ReadInt32LittleEndian(slot[60..]);
        long used = UsedBytes(zones, ext);
        if (blockSize < ZoneGeometry.MinBlockSize || blockSize > ZoneGeometry.MaxBlockSize || !System.Numerics.BitOperations.IsPow2(blockSize) || ext < 0 || ext % 64 != 0 || used > slot.Length)
        {
            return null;
        }
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(slot[12..]);
        if (Crc32C.Compute(slot[16..(int)used]) != crc)
        {
            return null;
        }
        int shift = System.Numerics.BitOperations.Log2((uint)blockSize);
        var options = new NamespaceOptions
        {
            LogicalBlockSize = blockSize,
            Zoned = slot[36] != 0,
            ZoneSize = (long)BinaryPrimitives.ReadUInt64LittleEndian(slot[40..]) << shift,
            ZoneCapacity = (long)BinaryPrimitives.ReadUInt64LittleEndian(slot[48..]) << shift,
            DescriptorExtensionSize = ext,
            MaxOpen = BinaryPrimitives.ReadUInt32LittleEndian(slot[80..]),
            MaxActive = BinaryPrimitives.ReadUInt32LittleEndian(slot[84..]),
            CrossRead = slot[88] != 0,
            AutoTransition = slot[89] != 0,
            Mdts = slot[90],
            Zasl = slot[91],
        };
        var records = new ZoneRecord[zones];
        var body = slot[HeaderSize..];
        for (int i = 0; i < zones; i++)
        {
            var r = body.Slice(i * RecordSize, RecordSize);
            records[i] = new ZoneRecord
            {
                WritePointer = BinaryPrimitives.ReadUInt64LittleEndian(r),
                State = (ZoneState)r[8],
                Attributes = (ZoneAttributes)r[9],
            };
        }
        byte[] extensions = body.Slice((int)zones * RecordSize, (int)zones * ext).ToArray();
        return new Loaded(options, BinaryPrimitives.ReadInt64LittleEndian(slot[24..]), new Guid(slot.Slice(64, 16)),
            records, extensions, BinaryPrimitives.ReadUInt64LittleEndian(slot[16..]), slot[92] != 0);
    }

    /// <summary>Opens (creating if needed) the state file for writing commits after <paramref name="lastSequence"/>.</summary>
    public static ZoneStateFile OpenForCommits(string path, ZoneGeometry geometry, ulong lastSequence)
    {
        // Readers (zns report while serving) may look; the backstore's exclusive open keeps out a second writer.
        var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        int slotSize = SlotSizeFor(geometry);
        if (RandomAccess.GetLength(handle) != 2L * slotSize)
        {
            RandomAccess.SetLength(handle, 2L * slotSize);
        }
        // Both slots take their blocks now, so that commits (which overwrite them in place) still succeed when the
        // file system fills up under a sparse backstore and the zone state stays truthful. Best effort: a file
        // system without fallocate allocates on the first commit of each slot.
        FileBackstore.TryAllocate(handle, 0, 2L * slotSize);
        return new ZoneStateFile(handle, path, slotSize, lastSequence);
    }

    /// <summary>Encodes header and zone records into the slot buffer.</summary>
    public void Encode(ZoneGeometry g, long backstoreLength, Guid uuid, ReadOnlySpan<ZoneRecord> zones, ReadOnlySpan<byte> extensions, bool writeProtected = false)
    {
        Span<byte> s = _slot;
        s.Clear();
        Magic.CopyTo(s);
        BinaryPrimitives.WriteInt32LittleEndian(s[8..], FormatVersion);
        BinaryPrimitives.WriteInt64LittleEndian(s[24..], backstoreLength);
        BinaryPrimitives.WriteInt32LittleEndian(s[32..], g.BlockSize);
        s[36] = g.Zoned ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt64LittleEndian(s[40..], g.Zoned ? g.ZoneSizeLbas : 0);
        BinaryPrimitives.WriteUInt64LittleEndian(s[48..], g.Zoned ? g.ZoneCapacityLbas : 0);
        BinaryPrimitives.WriteUInt32LittleEndian(s[56..], g.ZoneCount);
        BinaryPrimitives.WriteInt32LittleEndian(s[60..], g.DescriptorExtensionSize);
        uuid.TryWriteBytes(s.Slice(64, 16));
        BinaryPrimitives.WriteUInt32LittleEndian(s[80..], g.MaxOpen);
        BinaryPrimitives.WriteUInt32LittleEndian(s[84..], g.MaxActive);
        s[88] = g.CrossRead ? (byte)1 : (byte)0;
        s[89] = g.AutoTransition ? (byte)1 : (byte)0;
        s[90] = g.Mdts;
        s[91] = g.Zasl;
        s[92] = writeProtected ? (byte)1 : (byte)0;
        var body = s[HeaderSize..];
        for (int i = 0; i < zones.Length; i++)
        {
            var r = body.Slice(i * RecordSize, RecordSize);
            BinaryPrimitives.WriteUInt64LittleEndian(r, zones[i].WritePointer);
            r[8] = (byte)zones[i].State;
            r[9] = (byte)zones[i].Attributes;
        }
        extensions.CopyTo(body[(zones.Length * RecordSize)..]);
    }

    /// <summary>Writes the encoded slot as the next commit and makes it durable.</summary>
    public void Commit(int usedBytes)
    {
        ulong seq = _sequence + 1;
        BinaryPrimitives.WriteUInt64LittleEndian(_slot.AsSpan(16), seq);
        BinaryPrimitives.WriteUInt32LittleEndian(_slot.AsSpan(12), Crc32C.Compute(_slot.AsSpan(16, usedBytes - 16)));
        RandomAccess.Write(_handle, _slot, (long)(seq % 2) * _slot.Length);
        if (Posix.fdatasync(_handle) != 0)
        {
            throw new IOException($"fdatasync {Path}: errno {Marshal.GetLastPInvokeError()}");
        }
        _sequence = seq;
    }

    /// <summary>Bytes of a slot that a commit fills: header, zone records, descriptor extensions.</summary>
    public static int UsedBytes(ZoneGeometry g) => (int)UsedBytes(g.ZoneCount, g.DescriptorExtensionSize);

    // In long: a damaged or foreign file may claim any zone count and extension size.
    private static long UsedBytes(uint zones, long extensionSize) => HeaderSize + zones * (RecordSize + extensionSize);

    public void Dispose() => _handle.Dispose();

    internal static string Describe(NamespaceOptions a) => new StringBuilder()
        .Append($"logical_block_size={a.LogicalBlockSize},zoned={(a.Zoned ? "on" : "off")}")
        .Append(a.Zoned ? $",zoned.zone_size={a.ZoneSize},zoned.zone_capacity={a.ZoneCapacity}" : "").ToString();
}

using Zns.Core;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Zns.Core.Zones;

using Zns.Core.Interop;

namespace Zns.Core.Storage;

/// <summary>
/// The zone state file kept beside a backstore (<c>FILE.zns</c>): the namespace's kept options
/// (<see cref="KeptNamespaceOptions"/>, identity included), write pointers, states, attributes and descriptor
/// extensions.
/// </summary>
/// <remarks>
/// Two slots of equal size; commit <c>n</c> goes to slot <c>n mod 2</c>, so a torn write can only damage the slot
/// being written and the other one still holds the previous commit. Each slot carries a magic, a format version, a
/// sequence number and a CRC-32C over everything after the CRC field; loading picks the valid slot with the highest
/// sequence. Slot layout (little-endian), format 2:
/// <code>
///   0  8  magic "ZNSSTATE"          40  8  zone size (LBAs)
///   8  4  format version            48  8  zone capacity (LBAs)
///  12  4  CRC-32C of [16, end)      56  4  zone count
///  16  8  commit sequence           60  4  descriptor extension size (bytes)
///  24  8  backstore length          64 16  namespace UUID
///  32  4  logical block size        80  4  max open     84  4  max active
///  36  1  zoned (0/1)               88  1  cross read   89  1  auto transition   90  1  mdts   91  1  zasl
///                                   92  1  write protected (0/1)
///  93  1  vsl     94  1  msrc     95  1  NGUID given (0/1)     96  2  mssrl    100  4  mcl
/// 104  4  numzrwa                  112  8  zrwas (bytes)        120  8  zrwafg (bytes, -1 = one block)
/// 128 16  NGUID                    144  8  EUI-64               152..255  zero
/// 256 16×zones  zone records: write pointer (8), state (1), attributes (1), reserved (6)
///     then zones × extension size bytes of descriptor extensions
/// </code>
/// Format 1 is the same up to byte 92 with the zone records at 128; it kept none of the format 2 fields, which load
/// as their defaults (<see cref="KeptNamespaceOptions.Format"/>). The first commit to a format 1 file writes format 2;
/// when that needs larger slots the file is first rewritten beside itself and renamed over (<see cref="Resize"/>).
/// </remarks>
internal sealed class ZoneStateFile : IDisposable
{
    private const int FormatVersion = KeptNamespaceOptions.CurrentFormat;
    private const int HeaderSize = 256;
    private const int Format1HeaderSize = 128;
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
    public sealed record Loaded(KeptNamespaceOptions Kept, long BackstoreLength, ZoneRecord[] Zones, byte[] Extensions, ulong Sequence,
        bool WriteProtected = false);

    /// <summary>Reads the newest valid commit, or null if the file does not exist. Throws if it exists but no slot is valid.</summary>
    public static Loaded? TryLoad(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        byte[] all = File.ReadAllBytes(path);
        return Newest(all)?.Loaded ?? throw new InvalidDataException($"{path}: no valid zone state (both slots damaged or not a zns state file)");
    }

    /// <summary>The valid slot with the highest sequence, with where it lies in <paramref name="all"/>.</summary>
    private static (Loaded Loaded, int Offset, int UsedBytes)? Newest(byte[] all)
    {
        (Loaded Loaded, int Offset, int UsedBytes)? best = null;
        if (all.Length < Format1HeaderSize)
        {
            return null;
        }
        int slotSize = all.Length / 2;
        for (int s = 0; s < 2; s++)
        {
            if ((s + 1) * slotSize > all.Length || slotSize < Format1HeaderSize)
            {
                continue;
            }
            var candidate = TryParse(all.AsSpan(s * slotSize, slotSize), out int used);
            if (candidate is not null && (best is null || candidate.Sequence > best.Value.Loaded.Sequence))
            {
                best = (candidate, s * slotSize, used);
            }
        }
        return best;
    }

    private static Loaded? TryParse(ReadOnlySpan<byte> slot, out int usedBytes)
    {
        usedBytes = 0;
        int version = BinaryPrimitives.ReadInt32LittleEndian(slot[8..]);
        if (!slot[..8].SequenceEqual(Magic) || version is < 1 or > FormatVersion)
        {
            return null;
        }
        int headerSize = version == 1 ? Format1HeaderSize : HeaderSize;
        int blockSize = BinaryPrimitives.ReadInt32LittleEndian(slot[32..]);
        uint zones = BinaryPrimitives.ReadUInt32LittleEndian(slot[56..]);
        int ext = BinaryPrimitives.ReadInt32LittleEndian(slot[60..]);
        long used = UsedBytes(headerSize, zones, ext);
        if (blockSize < ZoneGeometry.MinBlockSize || blockSize > ZoneGeometry.MaxBlockSize || !System.Numerics.BitOperations.IsPow2(blockSize) || ext < 0 || ext % 64 != 0 || used > slot.Length)
        {
            return null;
        }
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(slot[12..]);
        if (Crc32C.Compute(slot[16..(int)used]) != crc)
        {
            return null;
        }
        usedBytes = (int)used;
        var records = new ZoneRecord[zones];
        var body = slot[headerSize..];
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
        return new Loaded(DecodeKept(slot, version), BinaryPrimitives.ReadInt64LittleEndian(slot[24..]),
            records, extensions, BinaryPrimitives.ReadUInt64LittleEndian(slot[16..]), slot[92] != 0);
    }

    /// <summary>The kept options of a slot header; a format 1 header leaves the later fields at their defaults.</summary>
    private static KeptNamespaceOptions DecodeKept(ReadOnlySpan<byte> s, int version)
    {
        int blockSize = BinaryPrimitives.ReadInt32LittleEndian(s[32..]);
        int shift = System.Numerics.BitOperations.Log2((uint)blockSize);
        var kept = new KeptNamespaceOptions
        {
            Format = version,
            LogicalBlockSize = blockSize,
            Zoned = s[36] != 0,
            ZoneSize = (long)BinaryPrimitives.ReadUInt64LittleEndian(s[40..]) << shift,
            ZoneCapacity = (long)BinaryPrimitives.ReadUInt64LittleEndian(s[48..]) << shift,
            DescriptorExtensionSize = BinaryPrimitives.ReadInt32LittleEndian(s[60..]),
            Uuid = new Guid(s.Slice(64, 16)),
            MaxOpen = BinaryPrimitives.ReadUInt32LittleEndian(s[80..]),
            MaxActive = BinaryPrimitives.ReadUInt32LittleEndian(s[84..]),
            CrossRead = s[88] != 0,
            AutoTransition = s[89] != 0,
            Mdts = s[90],
            Zasl = s[91],
        };
        if (version == 1)
        {
            return kept;
        }
        return kept with
        {
            Vsl = s[93],
            Msrc = s[94],
            Nguid = s[95] != 0 ? BinaryPrimitives.ReadUInt128BigEndian(s.Slice(128, 16)) : null,
            Mssrl = BinaryPrimitives.ReadUInt16LittleEndian(s[96..]),
            Mcl = BinaryPrimitives.ReadUInt32LittleEndian(s[100..]),
            NumZrwa = BinaryPrimitives.ReadUInt32LittleEndian(s[104..]),
            Zrwas = BinaryPrimitives.ReadInt64LittleEndian(s[112..]),
            Zrwafg = BinaryPrimitives.ReadInt64LittleEndian(s[120..]),
            Eui64 = BinaryPrimitives.ReadUInt64LittleEndian(s[144..]),
        };
    }

    /// <summary>Opens (creating if needed) the state file for writing commits after <paramref name="lastSequence"/>.</summary>
    public static ZoneStateFile OpenForCommits(string path, ZoneGeometry geometry, ulong lastSequence)
    {
        int slotSize = SlotSizeFor(geometry);
        if (lastSequence != 0 && new FileInfo(path).Length != 2L * slotSize)
        {
            Resize(path, slotSize, lastSequence);
        }
        // Readers (zns report while serving) may look; the backstore's exclusive open keeps out a second writer.
        var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
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

    /// <summary>
    /// Gives a state file that holds commit <paramref name="sequence"/> slots of <paramref name="slotSize"/> bytes (an
    /// older format's slots may be too small for the current header). Resizing in place would move slot 1 and could
    /// lose the only copy of the newest commit in a crash; instead the commit is written into a new file of the new
    /// size, in the slot its sequence calls for, made durable, and renamed over the old file, so that at every
    /// moment one complete file holds it.
    /// </summary>
    private static void Resize(string path, int slotSize, ulong sequence)
    {
        byte[] all = File.ReadAllBytes(path);
        if (Newest(all) is not { } newest || newest.Loaded.Sequence != sequence || newest.UsedBytes > slotSize)
        {
            throw new InvalidDataException($"{path}: changed while it was being opened");
        }
        string temporary = path + ".resize";
        using (var handle = File.OpenHandle(temporary, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
        {
            RandomAccess.SetLength(handle, 2L * slotSize);
            RandomAccess.Write(handle, all.AsSpan(newest.Offset, newest.UsedBytes), (long)(sequence % 2) * slotSize);
            if (Posix.fdatasync(handle) != 0)
            {
                throw new IOException($"fdatasync {temporary}: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        File.Move(temporary, path, overwrite: true);
        SyncDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
    }

    // The rename is durable once the directory holding it is.
    private static void SyncDirectory(string directory)
    {
        int fd = Posix.open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"open {directory}: errno {Marshal.GetLastPInvokeError()}");
        }
        try
        {
            if (Posix.fsync(fd) != 0)
            {
                throw new IOException($"fsync {directory}: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            _ = Posix.close(fd);
        }
    }

    /// <summary>Encodes the kept options, header and zone records into the slot buffer.</summary>
    public void Encode(KeptNamespaceOptions kept, long backstoreLength, ReadOnlySpan<ZoneRecord> zones, ReadOnlySpan<byte> extensions, bool writeProtected = false) =>
        EncodeSlot(_slot, kept, backstoreLength, zones, extensions, writeProtected);

    /// <summary>
    /// One commit's bytes (sequence 1, CRC set) as a stand-alone record of the namespace's options and zones, for
    /// files that must say which namespace they belong to (the write log's header).
    /// </summary>
    public static byte[] Snapshot(KeptNamespaceOptions kept, long backstoreLength, ReadOnlySpan<ZoneRecord> zones, ReadOnlySpan<byte> extensions, bool writeProtected)
    {
        int used = (int)UsedBytes(HeaderSize, (uint)zones.Length, kept.DescriptorExtensionSize);
        byte[] slot = new byte[used];
        EncodeSlot(slot, kept, backstoreLength, zones, extensions, writeProtected);
        BinaryPrimitives.WriteUInt64LittleEndian(slot.AsSpan(16), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(slot.AsSpan(12), Crc32C.Compute(slot.AsSpan(16)));
        return slot;
    }

    /// <summary>What a <see cref="Snapshot"/> (or one slot) holds, or null when it is not a valid commit.</summary>
    public static Loaded? ParseSnapshot(ReadOnlySpan<byte> slot) => slot.Length < Format1HeaderSize ? null : TryParse(slot, out _);

    private static void EncodeSlot(Span<byte> s, KeptNamespaceOptions kept, long backstoreLength, ReadOnlySpan<ZoneRecord> zones, ReadOnlySpan<byte> extensions, bool writeProtected)
    {
        int shift = System.Numerics.BitOperations.Log2((uint)kept.LogicalBlockSize);
        s.Clear();
        Magic.CopyTo(s);
        BinaryPrimitives.WriteInt32LittleEndian(s[8..], FormatVersion);
        BinaryPrimitives.WriteInt64LittleEndian(s[24..], backstoreLength);
        BinaryPrimitives.WriteInt32LittleEndian(s[32..], kept.LogicalBlockSize);
        s[36] = kept.Zoned ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt64LittleEndian(s[40..], (ulong)kept.ZoneSize >> shift);
        BinaryPrimitives.WriteUInt64LittleEndian(s[48..], (ulong)kept.ZoneCapacity >> shift);
        BinaryPrimitives.WriteUInt32LittleEndian(s[56..], (uint)zones.Length);
        BinaryPrimitives.WriteInt32LittleEndian(s[60..], kept.DescriptorExtensionSize);
        kept.Uuid.TryWriteBytes(s.Slice(64, 16));
        BinaryPrimitives.WriteUInt32LittleEndian(s[80..], kept.MaxOpen);
        BinaryPrimitives.WriteUInt32LittleEndian(s[84..], kept.MaxActive);
        s[88] = kept.CrossRead ? (byte)1 : (byte)0;
        s[89] = kept.AutoTransition ? (byte)1 : (byte)0;
        s[90] = kept.Mdts;
        s[91] = kept.Zasl;
        s[92] = writeProtected ? (byte)1 : (byte)0;
        s[93] = kept.Vsl;
        s[94] = kept.Msrc;
        s[95] = kept.Nguid is null ? (byte)0 : (byte)1;
        BinaryPrimitives.WriteUInt16LittleEndian(s[96..], kept.Mssrl);
        BinaryPrimitives.WriteUInt32LittleEndian(s[100..], kept.Mcl);
        BinaryPrimitives.WriteUInt32LittleEndian(s[104..], kept.NumZrwa);
        BinaryPrimitives.WriteInt64LittleEndian(s[112..], kept.Zrwas);
        BinaryPrimitives.WriteInt64LittleEndian(s[120..], kept.Zrwafg);
        BinaryPrimitives.WriteUInt128BigEndian(s.Slice(128, 16), kept.Nguid ?? 0);
        BinaryPrimitives.WriteUInt64LittleEndian(s[144..], kept.Eui64);
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
    public static int UsedBytes(ZoneGeometry g) => (int)UsedBytes(HeaderSize, g.ZoneCount, g.DescriptorExtensionSize);

    // In long: a damaged or foreign file may claim any zone count and extension size.
    private static long UsedBytes(int headerSize, uint zones, long extensionSize) => headerSize + zones * (RecordSize + extensionSize);

    public void Dispose() => _handle.Dispose();
}

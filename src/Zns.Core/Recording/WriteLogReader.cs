using System.Buffers.Binary;
using Zns.Core.Storage;
using Zns.Core.Zones;

namespace Zns.Core.Recording;

/// <summary>
/// Reads a write log (<see cref="WriteLogFormat"/>) front to back. Reading stops at the end of the file, at the
/// entry that marks a full log, or at the first entry that is torn or damaged (<see cref="Damage"/> says which):
/// everything before it is good.
/// </summary>
public sealed class WriteLogReader : IDisposable
{
    private readonly FileStream _file;
    private readonly byte[] _header = new byte[WriteLogFormat.EntryHeaderSize];
    private byte[] _payload = new byte[64 << 10];
    private long _offset;
    private long _nextIndex;
    private bool _ended;

    private WriteLogReader(string path, FileStream file, uint nsid, KeptNamespaceOptions kept, long backstoreLength, long headerLength)
    {
        Path = path;
        _file = file;
        Nsid = nsid;
        Kept = kept;
        BackstoreLength = backstoreLength;
        _offset = headerLength;
    }

    /// <summary>The log file.</summary>
    public string Path { get; }

    /// <summary>The NSID the namespace had when it was logged.</summary>
    public uint Nsid { get; }

    /// <summary>The namespace's options (geometry, identity) as its zone state file keeps them.</summary>
    public KeptNamespaceOptions Kept { get; }

    /// <summary>The backstore's length in bytes.</summary>
    public long BackstoreLength { get; }

    /// <summary>Why reading stopped before the end of the file (a torn or damaged entry), or null.</summary>
    public string? Damage { get; private set; }

    /// <summary>Whether reading reached the entry that marks a full log.</summary>
    public bool ReachedFull { get; private set; }

    /// <summary>Opens a log and checks its header. Throws <see cref="WriteLogException"/> naming the problem.</summary>
    public static WriteLogReader Open(string path)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WriteLogException($"{path}: cannot open the write log: {e.Message}");
        }
        try
        {
            byte[] start = new byte[WriteLogFormat.HeaderFixedSize];
            if (file.Read(start, 0, start.Length) != start.Length || !start.AsSpan(0, 8).SequenceEqual(WriteLogFormat.Magic))
            {
                throw new WriteLogException($"{path}: not a zns write log (no ZNSWRLOG header)");
            }
            int version = BinaryPrimitives.ReadInt32LittleEndian(start.AsSpan(8));
            if (version != WriteLogFormat.Version)
            {
                throw new WriteLogException($"{path}: write log format {version}, this zns reads format {WriteLogFormat.Version}");
            }
            int headerLength = BinaryPrimitives.ReadInt32LittleEndian(start.AsSpan(20));
            int snapshotLength = BinaryPrimitives.ReadInt32LittleEndian(start.AsSpan(24));
            if (snapshotLength <= 0 || headerLength < WriteLogFormat.HeaderFixedSize + snapshotLength || headerLength > file.Length)
            {
                throw new WriteLogException($"{path}: damaged write log header (lengths out of bounds)");
            }
            byte[] header = new byte[WriteLogFormat.HeaderFixedSize + snapshotLength];
            start.CopyTo(header, 0);
            file.ReadExactly(header, start.Length, header.Length - start.Length);
            if (Crc32C.Compute(header.AsSpan(16)) != BinaryPrimitives.ReadUInt32LittleEndian(start.AsSpan(12))
                || WriteLogFormat.DecodeSnapshot(header.AsSpan(WriteLogFormat.HeaderFixedSize)) is not { } loaded)
            {
                throw new WriteLogException($"{path}: damaged write log header (CRC mismatch)");
            }
            file.Position = headerLength;
            return new WriteLogReader(path, file, BinaryPrimitives.ReadUInt32LittleEndian(start.AsSpan(16)), loaded.Kept, loaded.BackstoreLength, headerLength);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The next good entry and its payload (valid until the next call), or false at the end: of the file, of a full
    /// log, or at a torn or damaged entry (<see cref="Damage"/>).
    /// </summary>
    public bool TryReadNext(out WriteLogEntry entry, out ReadOnlySpan<byte> payload)
    {
        entry = default;
        payload = default;
        if (_ended)
        {
            return false;
        }
        long left = _file.Length - _offset;
        if (left == 0)
        {
            return End(null);
        }
        if (left < WriteLogFormat.EntryHeaderSize)
        {
            return End($"entry {_nextIndex} at byte {_offset} is torn ({left} bytes of its header)");
        }
        _file.ReadExactly(_header);
        int length = BinaryPrimitives.ReadInt32LittleEndian(_header);
        if (length < WriteLogFormat.EntryHeaderSize || length > left)
        {
            return End($"entry {_nextIndex} at byte {_offset} is torn or damaged (length {length}, {left} bytes left)");
        }
        int payloadLength = length - WriteLogFormat.EntryHeaderSize;
        if (_payload.Length < payloadLength)
        {
            _payload = new byte[Math.Max(payloadLength, 2 * _payload.Length)];
        }
        _file.ReadExactly(_payload, 0, payloadLength);
        uint crc = Crc32C.Update(Crc32C.InitialState, _header.AsSpan(8));
        crc = ~Crc32C.Update(crc, _payload.AsSpan(0, payloadLength));
        if (crc != BinaryPrimitives.ReadUInt32LittleEndian(_header.AsSpan(4)))
        {
            return End($"entry {_nextIndex} at byte {_offset} is damaged (CRC mismatch)");
        }
        entry = WriteLogFormat.DecodeEntry(_header, _offset);
        if (entry.Index != _nextIndex || !Enum.IsDefined(entry.Kind))
        {
            return End($"entry {_nextIndex} at byte {_offset} is damaged (index {entry.Index}, kind {(byte)entry.Kind})");
        }
        _offset += length;
        _nextIndex++;
        payload = _payload.AsSpan(0, payloadLength);
        if (entry.Kind is WriteLogKind.Full or WriteLogKind.PowerCut)
        {
            ReachedFull = entry.Kind == WriteLogKind.Full;
            _ended = true;
        }
        return true;
    }

    private bool End(string? damage)
    {
        Damage = damage;
        _ended = true;
        return false;
    }

    /// <summary>The good entries, front to back, without their payloads.</summary>
    public List<WriteLogEntry> ReadAll()
    {
        var entries = new List<WriteLogEntry>();
        while (TryReadNext(out var e, out _))
        {
            entries.Add(e);
        }
        return entries;
    }

    public void Dispose() => _file.Dispose();
}

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Zns.Core.Interop;
using Zns.Core.Zones;

namespace Zns.Core.Recording;

/// <summary>
/// Records what changes one namespace, in completion order, to a write log file (<see cref="WriteLogFormat"/>), up to
/// a size bound. Once the bound is reached or the file fails, the log stops: everything recorded before stays valid,
/// a <see cref="WriteLogKind.Full"/> entry marks where a full log stopped, and the namespace goes on serving.
/// </summary>
/// <remarks>
/// The command path only copies an entry into one of two preallocated buffers under a short lock (0 B per entry);
/// a writer thread writes the filled buffer to the file while commands fill the other. A command waits only when
/// both are full. The file is made durable when the log is closed; a process killed before that leaves a tail
/// the reader finds torn and ignores.
/// </remarks>
public sealed class WriteLog : IDisposable
{
    private const int BufferBytes = 4 << 20;

    private readonly object _gate = new();
    private readonly SafeFileHandle _handle;
    private readonly Thread _writer;
    private readonly long _maxBytes;
    private readonly Action<string>? _stopped;
    private byte[] _active;
    private byte[] _spare;
    private int _activeUsed;
    private long _activeStart;
    private long _accepted;
    private long _nextIndex;
    private long _flushes;
    private long _dropped;
    private bool _writing;
    private bool _closing;
    private string? _stopReason;

    private WriteLog(string path, SafeFileHandle handle, long headerLength, long maxBytes, int maxEntry, Action<string>? stopped)
    {
        Path = path;
        _handle = handle;
        _maxBytes = maxBytes;
        _stopped = stopped;
        int size = Math.Max(BufferBytes, 2 * maxEntry);
        _active = new byte[size];
        _spare = new byte[size];
        _activeStart = headerLength;
        _accepted = headerLength;
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "zns write log" };
        _writer.Start();
    }

    /// <summary>The log file.</summary>
    public string Path { get; }

    /// <summary>Entries recorded (the full marker included).</summary>
    public long Entries { get { lock (_gate) { return _nextIndex; } } }

    /// <summary>Flushes recorded.</summary>
    public long Flushes { get { lock (_gate) { return _flushes; } } }

    /// <summary>Bytes of the log (header and entries recorded, written or about to be).</summary>
    public long Bytes { get { lock (_gate) { return _accepted; } } }

    /// <summary>The size bound.</summary>
    public long MaxBytes => _maxBytes;

    /// <summary>Changes not recorded because the log had stopped.</summary>
    public long Dropped { get { lock (_gate) { return _dropped; } } }

    /// <summary>Why the log stopped recording (full, or a file error), or null while it records.</summary>
    public string? StopReason { get { lock (_gate) { return _stopReason; } } }

    /// <summary>
    /// Creates the log file <paramref name="path"/> for <paramref name="ns"/> (which must have every zone Empty: a
    /// replay starts from an empty namespace) and starts recording. <paramref name="stopped"/> is told, once, why
    /// the log stopped. Throws <see cref="WriteLogException"/> naming the problem; an existing file is never replaced.
    /// </summary>
    public static WriteLog Create(string path, uint nsid, ZonedNamespace ns, long maxBytes = WriteLogFormat.DefaultMaxBytes, Action<string>? stopped = null)
    {
        if (maxBytes < WriteLogFormat.MinMaxBytes)
        {
            throw new WriteLogException($"{path}: a size bound of {maxBytes} bytes is below the least, {WriteLogFormat.MinMaxBytes} (1 MiB)");
        }
        if (File.Exists(path))
        {
            throw new WriteLogException($"{path}: a write log is already there; replay or move it, or choose another directory");
        }
        if (ns.FirstNonEmptyZone() is { } zone)
        {
            throw new WriteLogException($"{path}: namespace {nsid} is not empty (zone {zone.Index} is {zone.State}); a replay starts from an empty namespace: reset its zones or reformat it first");
        }
        byte[] header = WriteLogFormat.EncodeHeader(nsid, ns.Snapshot(), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        if (header.Length + 2 * WriteLogFormat.EntryHeaderSize > maxBytes)
        {
            throw new WriteLogException($"{path}: the header alone ({header.Length} bytes) does not fit a size bound of {maxBytes} bytes");
        }
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
        }
        catch (IOException) when (File.Exists(path))
        {
            throw new WriteLogException($"{path}: a write log is already there; replay or move it, or choose another directory");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WriteLogException($"{path}: cannot create the write log: {e.Message}");
        }
        try
        {
            RandomAccess.Write(handle, header, 0);
        }
        catch (IOException e)
        {
            handle.Dispose();
            throw new WriteLogException($"{path}: cannot write the write log: {e.Message}");
        }
        var g = ns.Geometry;
        int maxEntry = WriteLogFormat.EntryHeaderSize + Math.Max(Math.Max(g.MaxTransferBytes, g.ZoneAppendLimitBytes), g.Mssrl << g.BlockShift);
        var log = new WriteLog(path, handle, header.Length, maxBytes, maxEntry, stopped);
        ns.AttachWriteLog(log);
        return log;
    }

    /// <summary>Records one change; the caller holds what orders it against other changes of the same blocks.</summary>
    internal void Record(WriteLogKind kind, WriteLogFlags flags, ZoneSendAction action, ulong lba, uint blocks, ReadOnlySpan<byte> payload,
        ushort status = 0)
    {
        string? stopped = null;
        lock (_gate)
        {
            if (_stopReason is not null)
            {
                _dropped++;
                return;
            }
            int size = WriteLogFormat.EntryHeaderSize + payload.Length;
            // Room is kept for the entry that marks a full log.
            if (_accepted + size + WriteLogFormat.EntryHeaderSize > _maxBytes)
            {
                _dropped++;
                stopped = StopFull();
            }
            else
            {
                long ordinal = kind == WriteLogKind.Flush ? ++_flushes : 0;
                Append(size, _nextIndex++, kind, flags, action, lba, blocks, ordinal, status, payload);
                if (kind == WriteLogKind.Flush || _activeUsed >= _active.Length / 2)
                {
                    Monitor.PulseAll(_gate);
                }
            }
        }
        if (stopped is not null)
        {
            _stopped?.Invoke(stopped);
        }
    }

    // Caller holds _gate. Waits while both buffers are full (the writer is writing the spare one).
    private void Append(int size, long index, WriteLogKind kind, WriteLogFlags flags, ZoneSendAction action, ulong lba, uint blocks,
        long ordinal, ushort status, ReadOnlySpan<byte> payload)
    {
        while (_activeUsed + size > _active.Length)
        {
            Monitor.PulseAll(_gate);
            Monitor.Wait(_gate);
        }
        Span<byte> entry = _active.AsSpan(_activeUsed, size);
        payload.CopyTo(entry[WriteLogFormat.EntryHeaderSize..]);
        WriteLogFormat.EncodeEntry(entry, index, kind, flags, action, lba, blocks, ordinal, status);
        _activeUsed += size;
        _accepted += size;
    }

    /// <summary>
    /// Power is being cut: a <see cref="WriteLogKind.PowerCut"/> entry ends the log. A replay rebuilds any point
    /// before the cut; what the cut dropped, and what the host did after it, is not recorded.
    /// </summary>
    internal void StopAtPowerCut()
    {
        string? stopped = null;
        lock (_gate)
        {
            if (_stopReason is not null)
            {
                return;
            }
            long recorded = _nextIndex;
            if (_accepted + WriteLogFormat.EntryHeaderSize <= _maxBytes)
            {
                Append(WriteLogFormat.EntryHeaderSize, _nextIndex++, WriteLogKind.PowerCut, WriteLogFlags.None, 0, 0, 0, 0, 0, default);
            }
            _stopReason = stopped = $"{Path}: write log stopped at a power cut: entries 0..{recorded - 1} are kept and replay to any point before the cut; " +
                                    "nothing after it is recorded, the namespace goes on serving";
            Monitor.PulseAll(_gate);
        }
        _stopped?.Invoke(stopped);
    }

    // Caller holds _gate.
    private string StopFull()
    {
        long recorded = _nextIndex;
        Append(WriteLogFormat.EntryHeaderSize, _nextIndex++, WriteLogKind.Full, WriteLogFlags.None, 0, 0, 0, 0, 0, default);
        _stopReason = $"{Path}: write log full ({_accepted} of {_maxBytes} bytes, the --write-log-size bound): " +
                      $"entries 0..{recorded - 1} are kept; nothing after them is recorded, the namespace goes on serving";
        Monitor.PulseAll(_gate);
        return _stopReason;
    }

    private void WriteLoop()
    {
        while (true)
        {
            byte[] buffer;
            int length;
            long at;
            lock (_gate)
            {
                while (_activeUsed == 0 && !_closing)
                {
                    Monitor.Wait(_gate, 50);
                    if (_activeUsed > 0)
                    {
                        break;
                    }
                }
                if (_activeUsed == 0)
                {
                    return;
                }
                (buffer, _active, _spare) = (_active, _spare, _active);
                length = _activeUsed;
                at = _activeStart;
                _activeStart += length;
                _activeUsed = 0;
                _writing = true;
                Monitor.PulseAll(_gate);
            }
            string? failed = null;
            try
            {
                RandomAccess.Write(_handle, buffer.AsSpan(0, length), at);
            }
            catch (IOException e)
            {
                failed = e.Message;
            }
            lock (_gate)
            {
                _writing = false;
                if (failed is not null && _stopReason is null)
                {
                    _stopReason = $"{Path}: write log stopped: {failed}: entries up to byte {at} are kept; nothing after them is recorded, the namespace goes on serving";
                    _activeUsed = 0;
                }
                Monitor.PulseAll(_gate);
            }
            if (failed is not null)
            {
                _stopped?.Invoke(StopReason!);
            }
        }
    }

    /// <summary>Writes what is buffered and waits for it (not durable yet: <see cref="Dispose"/> makes it durable).</summary>
    public void Drain()
    {
        lock (_gate)
        {
            while (_activeUsed > 0 || _writing)
            {
                Monitor.PulseAll(_gate);
                Monitor.Wait(_gate, 50);
            }
        }
    }

    /// <summary>Writes what is buffered, makes the log durable and closes it. The namespace records nothing more.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_closing)
            {
                return;
            }
            _closing = true;
            _stopReason ??= $"{Path}: closed";
            Monitor.PulseAll(_gate);
        }
        _writer.Join();
        try
        {
            if (Posix.fdatasync(_handle) != 0)
            {
                throw new IOException($"fdatasync {Path}: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            _handle.Dispose();
        }
    }
}

/// <summary>A write log that cannot be created or read, with one line naming the problem.</summary>
public sealed class WriteLogException(string message) : Exception(message);

using System.Runtime.CompilerServices;
using Microsoft.Win32.SafeHandles;
using Zns.Core.Storage;
using Zns.Core.Zones;

namespace Zns.Benchmarks.Core;

/// <summary>
/// A file-backed zoned namespace plus a raw handle on the very same file, so API and raw I/O hit the same inode
/// and the same filesystem. The raw handle is the namespace's own (the namespace opens the file exclusively).
/// </summary>
internal sealed class CoreFixture : IDisposable
{
    public const int IoSize = 4096;

    private CoreFixture(string path, ZonedNamespace ns)
    {
        Path = path;
        Namespace = ns;
        Handle = HandleOf(ns);
        ZoneBlocks = (int)ns.Geometry.ZoneCapacityLbas;
        ZoneCount = (int)ns.Geometry.ZoneCount;
        Data = GC.AllocateArray<byte>(IoSize, pinned: true);
        Random.Shared.NextBytes(Data);
        Buffer = GC.AllocateArray<byte>(IoSize, pinned: true);
    }

    public string Path { get; }
    public ZonedNamespace Namespace { get; }
    public SafeFileHandle Handle { get; }
    public int ZoneBlocks { get; }
    public int ZoneCount { get; }
    public byte[] Data { get; }
    public byte[] Buffer { get; }

    /// <summary>Creates a sparse file of <paramref name="sizeBytes"/> in <paramref name="directory"/> and opens it as a 4 KiB-block namespace.</summary>
    public static CoreFixture Create(string directory, long sizeBytes = 256L << 20, long zoneSize = 16L << 20)
    {
        string path = System.IO.Path.Combine(directory, $"zns-bench-core-{Environment.ProcessId}-{Guid.NewGuid():N}.img");
        FileBackstore.Create(path, sizeBytes, preallocate: false);
        var options = new NamespaceOptions { LogicalBlockSize = IoSize, ZoneSize = zoneSize };
        return new CoreFixture(path, ZonedNamespace.OpenFile(path, options, StateMode.Persistent));
    }

    public ulong ZoneStart(int zone) => Namespace.Geometry.ZoneStart((uint)zone);

    public long ByteOffset(ulong lba) => (long)lba * IoSize;

    /// <summary>Resets a zone (the API's own reset: commit, then hole punch).</summary>
    public void ResetZone(int zone)
    {
        var s = Namespace.ZoneManagementSend(ZoneStart(zone), ZoneSendAction.Reset, selectAll: false);
        if (!s.IsSuccess) throw new InvalidOperationException($"reset zone {zone}: {s}");
    }

    /// <summary>Punches the zone's range out of the file so the next writes allocate pages again, as after a reset.</summary>
    public void PunchZone(int zone)
    {
        var s = Namespace.Deallocate(ZoneStart(zone), (uint)ZoneBlocks);
        if (!s.IsSuccess) throw new InvalidOperationException($"deallocate zone {zone}: {s}");
    }

    /// <summary>Writes a whole zone through the API (used to prepare read data).</summary>
    public void FillZone(int zone)
    {
        ulong lba = ZoneStart(zone);
        for (int i = 0; i < ZoneBlocks; i++, lba++)
        {
            var s = Namespace.Write(lba, Data);
            if (!s.IsSuccess) throw new InvalidOperationException($"write {lba}: {s}");
        }
    }

    public void Dispose()
    {
        Namespace.Dispose();
        File.Delete(Path);
        File.Delete(Path + ".zns");
    }

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_backstore")]
    private static extern ref IBackstore BackstoreOf(ZonedNamespace ns);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_handle")]
    private static extern ref SafeFileHandle HandleOf(FileBackstore backstore);

    private static SafeFileHandle HandleOf(ZonedNamespace ns) => HandleOf((FileBackstore)BackstoreOf(ns));
}

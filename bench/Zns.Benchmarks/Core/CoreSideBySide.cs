using System.Diagnostics;
using System.Globalization;

namespace Zns.Benchmarks.Core;

/// <summary>
/// <c>core</c> mode: each pair (raw RandomAccess vs ZonedNamespace) runs interleaved, one zone's worth of 4 KiB
/// operations per slice, alternating which side goes first, for a fixed time. Only the I/O loops are timed: before
/// every write/append slice the zone is reset (API) and its range punched out of the file (both sides, untimed), so
/// both sides write into freshly deallocated pages.
/// </summary>
internal static class CoreSideBySide
{
    private sealed class Side
    {
        public long Ops;
        public long Ticks;
        public long Allocated;
        public double OpsPerSecond => Ops / (Ticks / (double)Stopwatch.Frequency);
        public double BytesPerOp => Ops == 0 ? 0 : Allocated / (double)Ops;
    }

    public static int Run(string[] args)
    {
        double seconds = 5;
        var dirs = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--dir": dirs.Add(args[++i]); break;
                default: Console.Error.WriteLine($"unknown option {args[i]}; usage: core [--seconds N] [--dir DIR]..."); return 2;
            }
        }
        if (dirs.Count == 0) dirs.Add("/dev/shm");

        Console.WriteLine($"core: 4 KiB ops, raw RandomAccess vs ZonedNamespace on the same file, {seconds:0.#} s per pair, interleaved per zone (16 MiB = 4096 ops)");
        Console.WriteLine($".NET {Environment.Version}, {Environment.ProcessorCount} CPUs, GC {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}");
        foreach (string dir in dirs)
        {
            using var f = CoreFixture.Create(dir);
            Console.WriteLine();
            Console.WriteLine($"file: {dir} ({f.ZoneCount} zones x {f.ZoneBlocks} blocks, state file persisted)");
            Console.WriteLine($"{"pair",-28} {"raw ops/s",12} {"api ops/s",12} {"api/raw",8} {"raw B/op",9} {"api B/op",9}");
            Report("write at WP vs pwrite", RunWrite(f, seconds, append: false));
            Report("append vs pwrite", RunWrite(f, seconds, append: true));
            Report("read vs pread", RunRead(f, seconds));
        }
        return 0;
    }

    private static void Report(string name, (Side Raw, Side Api) r) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-28} {r.Raw.OpsPerSecond,12:N0} {r.Api.OpsPerSecond,12:N0} {r.Api.OpsPerSecond / r.Raw.OpsPerSecond,8:0.00} {r.Raw.BytesPerOp,9:0.0} {r.Api.BytesPerOp,9:0.0}"));

    private static (Side, Side) RunWrite(CoreFixture f, double seconds, bool append)
    {
        var raw = new Side();
        var api = new Side();
        // Warm-up (JIT tiers), not counted.
        var warm = new Side();
        for (int i = 0; i < 4; i++)
        {
            ApiSlice(f, i % f.ZoneCount, append, warm);
            RawWriteSlice(f, i % f.ZoneCount, warm);
        }
        long end = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        for (int round = 0; Stopwatch.GetTimestamp() < end; round++)
        {
            int zone = round % f.ZoneCount;
            if ((round & 1) == 0)
            {
                ApiSlice(f, zone, append, api);
                RawWriteSlice(f, zone, raw);
            }
            else
            {
                RawWriteSlice(f, zone, raw);
                ApiSlice(f, zone, append, api);
            }
        }
        return (raw, api);
    }

    private static void ApiSlice(CoreFixture f, int zone, bool append, Side side)
    {
        f.ResetZone(zone);   // no-op when Empty
        f.PunchZone(zone);   // the raw side may have written here last
        var ns = f.Namespace;
        byte[] data = f.Data;
        ulong lba = f.ZoneStart(zone);
        int n = f.ZoneBlocks;
        long a0 = GC.GetAllocatedBytesForCurrentThread();
        long t0 = Stopwatch.GetTimestamp();
        if (append)
        {
            for (int i = 0; i < n; i++)
            {
                if (!ns.Append(lba, data, out _).IsSuccess) throw new InvalidOperationException("append failed");
            }
        }
        else
        {
            for (int i = 0; i < n; i++, lba++)
            {
                if (!ns.Write(lba, data).IsSuccess) throw new InvalidOperationException("write failed");
            }
        }
        long t1 = Stopwatch.GetTimestamp();
        side.Allocated += GC.GetAllocatedBytesForCurrentThread() - a0;
        side.Ticks += t1 - t0;
        side.Ops += n;
    }

    private static void RawWriteSlice(CoreFixture f, int zone, Side side)
    {
        f.ResetZone(zone);
        f.PunchZone(zone);
        var handle = f.Handle;
        byte[] data = f.Data;
        long offset = f.ByteOffset(f.ZoneStart(zone));
        int n = f.ZoneBlocks;
        long a0 = GC.GetAllocatedBytesForCurrentThread();
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++, offset += CoreFixture.IoSize)
        {
            RandomAccess.Write(handle, data, offset);
        }
        long t1 = Stopwatch.GetTimestamp();
        side.Allocated += GC.GetAllocatedBytesForCurrentThread() - a0;
        side.Ticks += t1 - t0;
        side.Ops += n;
    }

    private static (Side, Side) RunRead(CoreFixture f, double seconds)
    {
        // Half the zones hold data; both sides read the same offsets.
        int zones = Math.Max(1, f.ZoneCount / 2);
        for (int z = 0; z < f.ZoneCount; z++) f.ResetZone(z);
        for (int z = 0; z < zones; z++) f.FillZone(z);
        var raw = new Side();
        var api = new Side();
        var warm = new Side();
        for (int i = 0; i < 4; i++)
        {
            ApiReadSlice(f, i % zones, warm);
            RawReadSlice(f, i % zones, warm);
        }
        long end = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        for (int round = 0; Stopwatch.GetTimestamp() < end; round++)
        {
            int zone = round % zones;
            if ((round & 1) == 0)
            {
                ApiReadSlice(f, zone, api);
                RawReadSlice(f, zone, raw);
            }
            else
            {
                RawReadSlice(f, zone, raw);
                ApiReadSlice(f, zone, api);
            }
        }
        return (raw, api);
    }

    private static void ApiReadSlice(CoreFixture f, int zone, Side side)
    {
        var ns = f.Namespace;
        byte[] buffer = f.Buffer;
        ulong lba = f.ZoneStart(zone);
        int n = f.ZoneBlocks;
        long a0 = GC.GetAllocatedBytesForCurrentThread();
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++, lba++)
        {
            if (!ns.Read(lba, buffer).IsSuccess) throw new InvalidOperationException("read failed");
        }
        long t1 = Stopwatch.GetTimestamp();
        side.Allocated += GC.GetAllocatedBytesForCurrentThread() - a0;
        side.Ticks += t1 - t0;
        side.Ops += n;
    }

    private static void RawReadSlice(CoreFixture f, int zone, Side side)
    {
        var handle = f.Handle;
        byte[] buffer = f.Buffer;
        long offset = f.ByteOffset(f.ZoneStart(zone));
        int n = f.ZoneBlocks;
        long a0 = GC.GetAllocatedBytesForCurrentThread();
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++, offset += CoreFixture.IoSize)
        {
            if (RandomAccess.Read(handle, buffer, offset) != CoreFixture.IoSize) throw new InvalidOperationException("short read");
        }
        long t1 = Stopwatch.GetTimestamp();
        side.Allocated += GC.GetAllocatedBytesForCurrentThread() - a0;
        side.Ticks += t1 - t0;
        side.Ops += n;
    }
}

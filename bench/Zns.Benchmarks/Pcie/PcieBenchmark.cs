using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Timing;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Target.Pcie;
using Zns.Target.VfioUser;

namespace Zns.Benchmarks.Pcie;

/// <summary>
/// `pcie`: the PCIe NVMe controller's I/O path driven in-process (no vfio-user socket, no VM): the benchmark thread
/// is the host driver (SQ entries in memfd guest RAM, SQ tail doorbell, CQ polled by phase, CQ head doorbell), the
/// function's poller thread is the device. Reports IOPS, bytes allocated per I/O by the whole process, GC counts and
/// process CPU time per I/O.
/// </summary>
internal static class PcieBenchmark
{
    private const int BlockSize = 4096;
    private const long ZoneSize = 4L << 20;
    private const int ZoneBlocks = (int)(ZoneSize / BlockSize);
    private const int ReadZones = 4;           // zones 0..3 hold data for the reads
    private const int WriteZoneBase = 8;       // one zone per outstanding write: 8..39
    private const int AppendZoneBase = 48;     // appends of every tag go to one zone, then the next: 48..63
    private const int AppendZonesPerPhase = 4;
    private const int ZoneCount = 64;          // 256 MiB
    private const int MaxDepth = 32;
    private const int IoEntries = 64;
    private const int LargeBlocks = 32;        // 128 KiB
    private const int ReadsPerPhase = 16_384;
    private const double TimedUs = 50;         // fixed latency of the `timed` namespace

    private enum Kind { Read, Write, Append }

    private sealed record Row(string Name, Kind Kind, int Blocks, int Depth);

    private static readonly Row[] Rows =
    [
        new("read 4K", Kind.Read, 1, 1),
        new("read 4K", Kind.Read, 1, 32),
        new("write 4K", Kind.Write, 1, 1),
        new("write 4K", Kind.Write, 1, 32),
        new("append 4K", Kind.Append, 1, 1),
        new("append 4K", Kind.Append, 1, 32),
        new("write 128K", Kind.Write, LargeBlocks, 1),
        new("write 128K", Kind.Write, LargeBlocks, 32),
    ];

    public static int Run(string[] args)
    {
        double seconds = 3;
        var backstores = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--seconds" when i + 1 < args.Length:
                    seconds = double.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--backstore" when i + 1 < args.Length:
                    backstores.Add(args[++i]);
                    break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; usage: pcie [--seconds N] [--backstore ram|shm|timed]...");
                    return 2;
            }
        }
        if (backstores.Count == 0)
        {
            backstores.AddRange(["ram", "shm", "timed"]);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"pcie: NvmePcieFunction in-process, host driver on the benchmark thread, memfd guest RAM; 4 MiB zones, {seconds:0.#} s timed per row (warm-up phase untimed)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $".NET {Environment.Version}, {Environment.ProcessorCount} CPUs, GC {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}; load average {LoadAverage()}"));
        foreach (string backstore in backstores)
        {
            RunBackstore(backstore, seconds);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"load average at the end: {LoadAverage()}"));
        return 0;
    }

    private static void RunBackstore(string backstore, double seconds)
    {
        var options = new NamespaceOptions { LogicalBlockSize = BlockSize, ZoneSize = ZoneSize };
        if (backstore == "timed")
        {
            // Completions come later from the timing scheduler: the asynchronous completion path, and at QD32 up to
            // 32 bounce buffers rented at once.
            options = options with { Timing = new TimingOptions { Mode = TimingMode.Fixed, ReadUs = TimedUs, WriteUs = TimedUs, AppendUs = TimedUs } };
        }
        string? path = null;
        ZonedNamespace ns;
        if (backstore == "shm")
        {
            path = $"/dev/shm/zns-bench-pcie-{Environment.ProcessId}.img";
            Zns.Core.Storage.FileBackstore.Create(path, ZoneCount * ZoneSize, preallocate: false);
            ns = ZonedNamespace.OpenFile(path, options, StateMode.Ephemeral);
        }
        else
        {
            ns = ZonedNamespace.CreateInMemory(ZoneCount * ZoneSize, options);
        }
        var target = new NvmeTarget(new TargetOptions(), [ns]);
        var memory = new GuestMemory(new MmapGuestMemoryMapper());
        var function = new NvmePcieFunction(target, memory, "bench");
        var driver = new PcieMiniDriver(function, 32 << 20, IoEntries);
        try
        {
            driver.EnableAndCreateIoQueues();
            var buffers = new TagBuffers(driver);
            for (int z = 0; z < ReadZones; z++)
            {
                for (int b = 0; b < ZoneBlocks; b += LargeBlocks)
                {
                    Check(driver.ExecuteIo(IoOpcode.Write, (ulong)(z * ZoneBlocks + b), LargeBlocks, buffers.Prp1(0), buffers.Prp2(0, LargeBlocks)), "fill");
                }
            }
            Console.WriteLine();
            string what = backstore switch
            {
                "shm" => "file in /dev/shm",
                "timed" => string.Create(CultureInfo.InvariantCulture, $"ram with fixed timing ({TimedUs} us per read/write/append: asynchronous completions)"),
                _ => "ram (ZonedNamespace.CreateInMemory)",
            };
            Console.WriteLine($"backstore: {what}; 128K = 32 scattered 4 KiB pages (PRP list, bounce buffer)");
            Console.WriteLine("workload         QD       IOPS     MB/s        I/Os   alloc B   B/IO  GC 0/1/2  CPU us/IO");
            Console.WriteLine("-----------------------------------------------------------------------------------------");
            foreach (Row row in Rows)
            {
                Measurement m = RunRow(driver, buffers, row, seconds);
                double ios = m.Ios;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{row.Name,-14} {row.Depth,4} {ios / m.Seconds,10:N0} {ios * row.Blocks * BlockSize / m.Seconds / 1e6,8:N0} {m.Ios,11:N0} {m.Bytes,9:N0} {m.Bytes / ios,6:0.00} {$"{m.Gc0}/{m.Gc1}/{m.Gc2}",9} {m.CpuSeconds * 1e6 / ios,10:0.00}"));
            }
        }
        finally
        {
            function.Dispose();
            memory.Dispose();
            driver.Dispose();
            target.Dispose();
            ns.Dispose();
            if (path is not null)
            {
                File.Delete(path);
            }
        }
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static void Check(ushort status, string what)
    {
        if (status != 0)
        {
            throw new InvalidOperationException($"{what}: NVMe status {status:x4}");
        }
    }

    /// <summary>Per-tag data buffers in guest RAM: 32 pages each, every other page (so a 128 KiB PRP list is not contiguous), and a prebuilt PRP list.</summary>
    private sealed class TagBuffers
    {
        private readonly ulong[] _pages = new ulong[MaxDepth * LargeBlocks];
        private readonly ulong[] _lists = new ulong[MaxDepth];

        public TagBuffers(PcieMiniDriver driver)
        {
            for (int t = 0; t < MaxDepth; t++)
            {
                ulong region = driver.Alloc(2 * LargeBlocks * BlockSize);
                _lists[t] = driver.Alloc(BlockSize);
                Span<byte> list = driver.Span(_lists[t], BlockSize);
                for (int p = 0; p < LargeBlocks; p++)
                {
                    _pages[t * LargeBlocks + p] = region + (ulong)(2 * p * BlockSize);
                    if (p > 0)
                    {
                        BinaryPrimitives.WriteUInt64LittleEndian(list[((p - 1) * 8)..], _pages[t * LargeBlocks + p]);
                    }
                }
            }
        }

        public ulong Prp1(int tag) => _pages[tag * LargeBlocks];

        /// <summary>PRP2: none for one page, the second page for two, else the PRP list.</summary>
        public ulong Prp2(int tag, int blocks) => blocks switch
        {
            1 => 0,
            2 => _pages[tag * LargeBlocks + 1],
            _ => _lists[tag],
        };
    }

    private struct Measurement
    {
        public long Ios, Bytes;
        public int Gc0, Gc1, Gc2;
        public double Seconds, CpuSeconds;
    }

    /// <summary>
    /// Runs phases until the timed total reaches <paramref name="seconds"/>. A phase fills its zones (writes, appends)
    /// or does a fixed number of reads; the zone resets between phases are done untimed, and the first phase is a
    /// warm-up (RAM chunks, pools, JIT).
    /// </summary>
    private static Measurement RunRow(PcieMiniDriver driver, TagBuffers buffers, Row row, double seconds)
    {
        var state = new PhaseState(row);
        var m = new Measurement();
        RunPhase(driver, buffers, state);
        ResetZones(driver, row);
        while (m.Seconds < seconds)
        {
            int gc0 = GC.CollectionCount(0), gc1 = GC.CollectionCount(1), gc2 = GC.CollectionCount(2);
            TimeSpan cpu = Environment.CpuUsage.TotalTime;
            long bytes = GC.GetTotalAllocatedBytes(precise: true);
            long start = Stopwatch.GetTimestamp();
            long ios = RunPhase(driver, buffers, state);
            long end = Stopwatch.GetTimestamp();
            m.Bytes += GC.GetTotalAllocatedBytes(precise: true) - bytes;
            m.CpuSeconds += (Environment.CpuUsage.TotalTime - cpu).TotalSeconds;
            m.Seconds += Stopwatch.GetElapsedTime(start, end).TotalSeconds;
            m.Gc0 += GC.CollectionCount(0) - gc0;
            m.Gc1 += GC.CollectionCount(1) - gc1;
            m.Gc2 += GC.CollectionCount(2) - gc2;
            m.Ios += ios;
            ResetZones(driver, row);
        }
        return m;
    }

    private static void ResetZones(PcieMiniDriver driver, Row row)
    {
        (int first, int count) = row.Kind switch
        {
            Kind.Write => (WriteZoneBase, row.Depth),
            Kind.Append => (AppendZoneBase, AppendZonesPerPhase),
            _ => (0, 0),
        };
        for (int z = first; z < first + count; z++)
        {
            // Zone Management Send, Zone Send Action 04h: Reset Zone.
            Check(driver.ExecuteIo(IoOpcode.ZoneManagementSend, (ulong)z * ZoneBlocks, 1, 0, 0, cdw13: 0x04), "zone reset");
        }
    }

    /// <summary>Where each tag's next command goes within a phase.</summary>
    private sealed class PhaseState(Row row)
    {
        public readonly Row Row = row;
        public readonly int[] Offset = new int[MaxDepth];
        public int Issued, AppendZone, AppendFill;
        public int ReadCursor;

        public void Begin()
        {
            Array.Clear(Offset);
            Issued = 0;
            AppendZone = 0;
            AppendFill = 0;
        }

        /// <summary>The next command's start LBA for <paramref name="tag"/>, or false when the phase has nothing more for it.</summary>
        public bool Next(int tag, out ulong slba)
        {
            int blocks = Row.Blocks;
            switch (Row.Kind)
            {
                case Kind.Read:
                    slba = (ulong)ReadCursor;
                    ReadCursor = (ReadCursor + blocks) % (ReadZones * ZoneBlocks);
                    return Issued++ < ReadsPerPhase;
                case Kind.Write:
                    slba = (ulong)((WriteZoneBase + tag) * ZoneBlocks + Offset[tag]);
                    Offset[tag] += blocks;
                    return Offset[tag] <= ZoneBlocks;
                default:
                    if (AppendFill + blocks > ZoneBlocks)
                    {
                        AppendZone++;
                        AppendFill = 0;
                    }
                    AppendFill += blocks;
                    // Zone Append takes the zone's start LBA (ZSLBA).
                    slba = (ulong)((AppendZoneBase + AppendZone) * ZoneBlocks);
                    return AppendZone < AppendZonesPerPhase;
            }
        }
    }

    /// <summary>One phase at the row's depth: keeps every tag busy until it has nothing more; one doorbell per batch.</summary>
    private static long RunPhase(PcieMiniDriver driver, TagBuffers buffers, PhaseState state)
    {
        Row row = state.Row;
        byte opcode = row.Kind switch { Kind.Read => IoOpcode.Read, Kind.Write => IoOpcode.Write, _ => IoOpcode.ZoneAppend };
        state.Begin();
        int outstanding = 0;
        long completed = 0;
        for (int tag = 0; tag < row.Depth; tag++)
        {
            if (state.Next(tag, out ulong slba))
            {
                driver.SubmitIo((ushort)tag, opcode, slba, row.Blocks, buffers.Prp1(tag), buffers.Prp2(tag, row.Blocks));
                outstanding++;
            }
        }
        driver.RingSubmissions();
        long deadline = Environment.TickCount64 + 10_000;
        int empty = 0;
        while (outstanding > 0)
        {
            bool submitted = false, reaped = false;
            while (driver.TryReap(out ushort cid, out ushort status))
            {
                Check(status, row.Name);
                reaped = true;
                outstanding--;
                completed++;
                if (state.Next(cid, out ulong slba))
                {
                    driver.SubmitIo(cid, opcode, slba, row.Blocks, buffers.Prp1(cid), buffers.Prp2(cid, row.Blocks));
                    outstanding++;
                    submitted = true;
                }
            }
            if (reaped)
            {
                driver.RingCompletions();
                deadline = Environment.TickCount64 + 10_000;
                empty = 0;
            }
            else if (++empty % 64 == 0)
            {
                // On a shared 2-core machine a host that only spins starves the device's poller thread.
                Thread.Yield();
            }
            else if (Environment.TickCount64 > deadline)
            {
                throw new TimeoutException($"{row.Name} QD{row.Depth}: {outstanding} commands never completed");
            }
            if (submitted)
            {
                driver.RingSubmissions();
            }
        }
        return completed;
    }
}

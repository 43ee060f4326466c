using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;

namespace Zns.Benchmarks.Core;

/// <summary>
/// 4 KiB write-at-WP / append / read through <see cref="Zns.Core.Zones.ZonedNamespace"/> next to raw
/// <see cref="RandomAccess"/> pwrite/pread on the same file. One invocation = one 16 MiB zone (4096 operations), so
/// per-operation figures are per 4 KiB I/O. Write and append invocations end with the zone's reset (API) or the same
/// hole punch (raw), so both sides pay for reusing the space; that cost is spread over the 4096 operations.
/// </summary>
/// <remarks>
/// Directories: /dev/shm, plus the one in <c>ZNS_BENCH_DISK_DIR</c> if set (a file on a real disk).
/// Run: <c>dotnet run -c Release --project bench/Zns.Benchmarks -- --filter *CoreBenchmarks*</c>.
/// </remarks>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class CoreBenchmarks
{
    private const int OpsPerZone = 4096;
    private CoreFixture _f = null!;
    private int _zone;

    public static IEnumerable<string> Directories()
    {
        yield return "/dev/shm";
        if (Environment.GetEnvironmentVariable("ZNS_BENCH_DISK_DIR") is { Length: > 0 } disk)
            yield return disk;
    }

    [ParamsSource(nameof(Directories))]
    public string Dir { get; set; } = "/dev/shm";

    [GlobalSetup]
    public void Setup()
    {
        _f = CoreFixture.Create(Dir);
        if (_f.ZoneBlocks != OpsPerZone) throw new InvalidOperationException("zone geometry changed");
        // Read data: the first half of the zones; writes cycle through the second half.
        for (int z = 0; z < _f.ZoneCount / 2; z++) _f.FillZone(z);
    }

    [GlobalCleanup]
    public void Cleanup() => _f.Dispose();

    private int NextWriteZone()
    {
        int half = _f.ZoneCount / 2;
        _zone = (_zone + 1) % half;
        return half + _zone;
    }

    private int NextReadZone()
    {
        _zone = (_zone + 1) % (_f.ZoneCount / 2);
        return _zone;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = OpsPerZone), BenchmarkCategory("Write")]
    public void RawPwrite() => RawWriteZone();

    [Benchmark(OperationsPerInvoke = OpsPerZone), BenchmarkCategory("Write")]
    public void ApiWriteAtWp()
    {
        int zone = NextWriteZone();
        var ns = _f.Namespace;
        byte[] data = _f.Data;
        ulong lba = _f.ZoneStart(zone);
        for (int i = 0; i < OpsPerZone; i++, lba++)
        {
            if (!ns.Write(lba, data).IsSuccess) throw new InvalidOperationException("write failed");
        }
        _f.ResetZone(zone);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = OpsPerZone), BenchmarkCategory("Append")]
    public void RawPwriteForAppend() => RawWriteZone();

    [Benchmark(OperationsPerInvoke = OpsPerZone), BenchmarkCategory("Append")]
    public void ApiAppend()
    {
        int zone = NextWriteZone();
        var ns = _f.Namespace;
        byte[] data = _f.Data;
        ulong zslba = _f.ZoneStart(zone);
        for (int i = 0; i < OpsPerZone; i++)
        {
            if (!ns.Append(zslba, data, out _).IsSuccess) throw new InvalidOperationException("append failed");
        }
        _f.ResetZone(zone);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = OpsPerZone), BenchmarkCategory("Read")]
    public void RawPread()
    {
        var handle = _f.Handle;
        byte[] buffer = _f.Buffer;
        long offset = _f.ByteOffset(_f.ZoneStart(NextReadZone()));
        for (int i = 0; i < OpsPerZone; i++, offset += CoreFixture.IoSize)
        {
            if (RandomAccess.Read(handle, buffer, offset) != CoreFixture.IoSize) throw new InvalidOperationException("short read");
        }
    }

    [Benchmark(OperationsPerInvoke = OpsPerZone), BenchmarkCategory("Read")]
    public void ApiRead()
    {
        var ns = _f.Namespace;
        byte[] buffer = _f.Buffer;
        ulong lba = _f.ZoneStart(NextReadZone());
        for (int i = 0; i < OpsPerZone; i++, lba++)
        {
            if (!ns.Read(lba, buffer).IsSuccess) throw new InvalidOperationException("read failed");
        }
    }

    private void RawWriteZone()
    {
        int zone = NextWriteZone();
        var handle = _f.Handle;
        byte[] data = _f.Data;
        long offset = _f.ByteOffset(_f.ZoneStart(zone));
        for (int i = 0; i < OpsPerZone; i++, offset += CoreFixture.IoSize)
        {
            RandomAccess.Write(handle, data, offset);
        }
        _f.PunchZone(zone);
    }
}

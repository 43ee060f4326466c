using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;

namespace Zns.Benchmarks.Target;

/// <summary>
/// The target's own cost per 4 KiB I/O with no socket: PDU bytes in, through the NVMe/TCP queue, controller, I/O
/// dispatch and zone core of a RAM namespace, PDU bytes out, over in-memory pipes on one thread (see
/// <see cref="PipeTarget"/>). One invocation is one receive batch of 1 or 32 commands (QD1, QD32);
/// <c>OperationsPerInvoke</c> makes Mean and Allocated per I/O.
/// Run: <c>dotnet run -c Release --project bench/Zns.Benchmarks -- --filter *PipeProtocol*</c>.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class PipeProtocolBenchmarks
{
    private const int Deep = 32;
    private PipeTarget _target = null!;
    private PipeBatch _read1 = null!, _read32 = null!, _write1 = null!, _write32 = null!, _append1 = null!, _append32 = null!;
    private int _appendBlocks;

    [GlobalSetup]
    public void Setup()
    {
        _target = new PipeTarget();
        _read1 = PipeBatch.Of(1, i => PipeTarget.IoCapsule(IoOpcode.Read, (ushort)i, 0, 1, Layout.BlockSize, inCapsule: false));
        _read32 = PipeBatch.Of(Deep, i => PipeTarget.IoCapsule(IoOpcode.Read, (ushort)i, (ulong)i * 97, 1, Layout.BlockSize, inCapsule: false));
        _write1 = PipeBatch.Of(1, i => PipeTarget.IoCapsule(IoOpcode.Write, (ushort)i, 0, 1, Layout.BlockSize, inCapsule: true));
        _write32 = PipeBatch.Of(Deep, i => PipeTarget.IoCapsule(IoOpcode.Write, (ushort)i, 0, 1, Layout.BlockSize, inCapsule: true));
        _append1 = PipeBatch.Of(1, i => PipeTarget.IoCapsule(IoOpcode.ZoneAppend, (ushort)i, ZoneStart(Layout.AppendZoneBase), 1, Layout.BlockSize, inCapsule: true));
        _append32 = PipeBatch.Of(Deep, i => PipeTarget.IoCapsule(IoOpcode.ZoneAppend, (ushort)i, ZoneStart(Layout.AppendZoneBase), 1, Layout.BlockSize, inCapsule: true));
    }

    [GlobalCleanup]
    public void Cleanup() => _target.Dispose();

    [Benchmark(OperationsPerInvoke = 1), BenchmarkCategory("Read")]
    public int Read4K_QD1() => Exchange(_read1);

    [Benchmark(OperationsPerInvoke = Deep), BenchmarkCategory("Read")]
    public int Read4K_QD32() => Exchange(_read32);

    [Benchmark(OperationsPerInvoke = 1), BenchmarkCategory("Write")]
    public int Write4K_QD1() => Write(_write1, zoneBase: Layout.WriteZoneBase);

    [Benchmark(OperationsPerInvoke = Deep), BenchmarkCategory("Write")]
    public int Write4K_QD32() => Write(_write32, zoneBase: Layout.WriteZoneBase + 1);

    [Benchmark(OperationsPerInvoke = 1), BenchmarkCategory("Append")]
    public int Append4K_QD1() => Append(_append1);

    [Benchmark(OperationsPerInvoke = Deep), BenchmarkCategory("Append")]
    public int Append4K_QD32() => Append(_append32);

    /// <summary>Command i of the batch writes at the write pointer of zone <paramref name="zoneBase"/> + i.</summary>
    private int Write(PipeBatch batch, int zoneBase)
    {
        batch.AimWrites(_target.Namespace, zoneBase);
        return Exchange(batch);
    }

    private int Append(PipeBatch batch)
    {
        if (_appendBlocks + batch.Count > Layout.ZoneBlocks)
        {
            _target.Namespace.ZoneManagementSend(ZoneStart(Layout.AppendZoneBase), ZoneSendAction.Reset, selectAll: false);
            _appendBlocks = 0;
        }
        _appendBlocks += batch.Count;
        return Exchange(batch);
    }

    private int Exchange(PipeBatch batch)
    {
        int responses = _target.Exchange(batch.Bytes);
        return responses == batch.Count ? responses : throw new InvalidOperationException($"{responses} responses for {batch.Count} commands");
    }

    private static ulong ZoneStart(int zone) => (ulong)zone * Layout.ZoneBlocks;
}

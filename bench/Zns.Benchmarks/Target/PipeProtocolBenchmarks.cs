using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
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
    private Batch _read1 = null!, _read32 = null!, _write1 = null!, _write32 = null!, _append1 = null!, _append32 = null!;
    private int _appendBlocks;

    [GlobalSetup]
    public void Setup()
    {
        _target = new PipeTarget();
        _read1 = Batch.Of(1, i => PipeTarget.IoCapsule(IoOpcode.Read, (ushort)i, 0, 1, Layout.BlockSize, inCapsule: false));
        _read32 = Batch.Of(Deep, i => PipeTarget.IoCapsule(IoOpcode.Read, (ushort)i, (ulong)i * 97, 1, Layout.BlockSize, inCapsule: false));
        _write1 = Batch.Of(1, i => PipeTarget.IoCapsule(IoOpcode.Write, (ushort)i, 0, 1, Layout.BlockSize, inCapsule: true));
        _write32 = Batch.Of(Deep, i => PipeTarget.IoCapsule(IoOpcode.Write, (ushort)i, 0, 1, Layout.BlockSize, inCapsule: true));
        _append1 = Batch.Of(1, i => PipeTarget.IoCapsule(IoOpcode.ZoneAppend, (ushort)i, ZoneStart(Layout.AppendZoneBase), 1, Layout.BlockSize, inCapsule: true));
        _append32 = Batch.Of(Deep, i => PipeTarget.IoCapsule(IoOpcode.ZoneAppend, (ushort)i, ZoneStart(Layout.AppendZoneBase), 1, Layout.BlockSize, inCapsule: true));
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
    private int Write(Batch batch, int zoneBase)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            ulong zone = ZoneStart(zoneBase + i);
            if (batch.Offsets[i] == Layout.ZoneBlocks)
            {
                // Zone full: reset it outside the wire path (the RAM namespace keeps its chunks and clears them).
                _target.Namespace.ZoneManagementSend(zone, ZoneSendAction.Reset, selectAll: false);
                batch.Offsets[i] = 0;
            }
            batch.SetSlba(i, zone + (ulong)batch.Offsets[i]++);
        }
        return Exchange(batch);
    }

    private int Append(Batch batch)
    {
        if (_appendBlocks + batch.Count > Layout.ZoneBlocks)
        {
            _target.Namespace.ZoneManagementSend(ZoneStart(Layout.AppendZoneBase), ZoneSendAction.Reset, selectAll: false);
            _appendBlocks = 0;
        }
        _appendBlocks += batch.Count;
        return Exchange(batch);
    }

    private int Exchange(Batch batch)
    {
        int responses = _target.Exchange(batch.Bytes);
        return responses == batch.Count ? responses : throw new InvalidOperationException($"{responses} responses for {batch.Count} commands");
    }

    private static ulong ZoneStart(int zone) => (ulong)zone * Layout.ZoneBlocks;

    /// <summary>Capsules of one receive batch, back to back, with each one's offset for rewriting its SLBA.</summary>
    private sealed class Batch
    {
        private int[] _starts = [];

        public byte[] Bytes { get; private set; } = [];
        public int Count => _starts.Length;
        public int[] Offsets { get; private set; } = [];

        public static Batch Of(int count, Func<int, byte[]> capsule)
        {
            var parts = Enumerable.Range(0, count).Select(capsule).ToArray();
            var batch = new Batch { Bytes = [.. parts.SelectMany(p => p)], _starts = new int[count], Offsets = new int[count] };
            for (int i = 1; i < count; i++)
                batch._starts[i] = batch._starts[i - 1] + parts[i - 1].Length;
            return batch;
        }

        public void SetSlba(int index, ulong slba) => PipeTarget.SetSlba(Bytes.AsSpan(_starts[index]), slba);
    }
}

using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;

namespace Zns.Target.Tests.Conformance;

/// <summary>The transports in front of the shared NVMe controller.</summary>
public enum FrontEndKind
{
    /// <summary>NVMe/TCP over in-memory pipes (<see cref="TcpFrontEnd"/>).</summary>
    Tcp,
    /// <summary>PCIe over guest RAM (<see cref="PcieFrontEnd"/>).</summary>
    Pcie,
    /// <summary>An in-process fabric built on the transport contract alone (<see cref="LoopFrontEnd"/>).</summary>
    Loop,
}

/// <summary>
/// A command as a scenario submits it: the SQE (its CID, FLAGS and data pointer are the front end's to fill) and
/// its data, host-to-controller (<paramref name="DataOut"/>) or controller-to-host (<paramref name="DataInLength"/>).
/// </summary>
internal readonly record struct Command(SubmissionQueueEntry Sqe, byte[]? DataOut = null, int DataInLength = 0);

/// <summary>What came back for one command.</summary>
internal sealed class Completion
{
    /// <summary>The SQE as submitted (with the CID the front end gave it).</summary>
    public required SubmissionQueueEntry Sqe { get; init; }
    public required ushort QueueId { get; init; }
    public required CompletionQueueEntry Cqe { get; init; }
    /// <summary>Controller-to-host data of a successful command; empty otherwise (the data of a failed command is undefined).</summary>
    public required byte[] Data { get; init; }
    /// <summary>From the submission of the command's batch to its completion.</summary>
    public required TimeSpan Elapsed { get; init; }

    public NvmeStatus Status => Cqe.Status;
    /// <summary>DW0 (low) and DW1 (high).</summary>
    public ulong Result => Cqe.Result;

    public override string ToString() =>
        $"q{QueueId} opcode {Sqe.Opcode:x2} nsid {Sqe.NamespaceId} cdw10 {Sqe.Cdw10:x} cdw11 {Sqe.Cdw11:x} cdw12 {Sqe.Cdw12:x} cdw13 {Sqe.Cdw13:x}";
}

/// <summary>How the target behind a front end is built; every front end of a comparison gets the same.</summary>
internal sealed record TargetSpec
{
    public static readonly TargetSpec Default = new();

    /// <summary>Adds NSID 3: a zoned namespace of 512-byte blocks whose last zone starts at LBA 2^32 (64-bit ALBAs).</summary>
    public bool LargeNamespace { get; init; }
}

/// <summary>
/// The target every scenario runs against, built the same way for every front end: NSID 1 zoned (4 KiB blocks,
/// 16 zones of 32 blocks with a capacity of 24, 3 open / 4 active, ZASL 16 KiB, a 64-byte descriptor extension,
/// ZRWA of 4 blocks with 2 resources, small copy limits), NSID 2 conventional, MDTS 64 KiB. The clock is frozen, so
/// the Timestamp feature and the SMART log read the same on all.
/// </summary>
internal sealed class ConformanceTarget : IDisposable
{
    public const int BlockSize = 4096;
    public const uint ZonedNsid = 1, ConventionalNsid = 2, LargeNsid = 3;
    public const ulong ZoneLbas = 32, ZoneCapacityLbas = 24, ZoneCount = 16;
    public const int MaxOpen = 3, MaxActive = 4;
    /// <summary>MDTS in blocks (64 KiB) and ZASL in blocks (16 KiB).</summary>
    public const int MdtsBlocks = 16, ZaslBlocks = 4;
    public const int ExtensionSize = 64;
    public const ulong ZrwaLbas = 4;
    public const int ZrwaResources = 2;
    public const int Mssrl = 8, Mcl = 16, MaxCopyRanges = 4;
    /// <summary>NSID 3: 512-byte blocks, zones of 2^22 blocks (2 GiB), 1025 of them: the last starts at LBA 2^32.</summary>
    public const ulong LargeZoneLbas = 1UL << 22;

    public static readonly NamespaceOptions Zoned = new()
    {
        ZoneSize = (long)ZoneLbas * BlockSize, ZoneCapacity = (long)ZoneCapacityLbas * BlockSize,
        MaxOpen = MaxOpen, MaxActive = MaxActive, Mdts = 4, Zasl = 2, DescriptorExtensionSize = ExtensionSize,
        Zrwas = (long)ZrwaLbas * BlockSize, Zrwafg = BlockSize, NumZrwa = ZrwaResources,
        Mssrl = Mssrl, Mcl = Mcl, Msrc = MaxCopyRanges - 1,
    };

    public static readonly NamespaceOptions Conventional = new() { Zoned = false, Mdts = 4 };

    public static readonly NamespaceOptions Large = new()
    {
        LogicalBlockSize = 512, ZoneSize = (long)LargeZoneLbas * 512, Mdts = 4, Zasl = 2,
    };

    public ConformanceTarget(TargetSpec spec)
    {
        var namespaces = new List<ZonedNamespace>
        {
            ZonedNamespace.CreateInMemory((long)(ZoneLbas * ZoneCount) * BlockSize, Zoned, Guid.Parse("6c6f6e67-0000-4000-8000-000000000001")),
            ZonedNamespace.CreateInMemory(1L << 20, Conventional, Guid.Parse("6c6f6e67-0000-4000-8000-000000000002")),
        };
        if (spec.LargeNamespace)
        {
            namespaces.Add(ZonedNamespace.CreateInMemory((long)(LargeZoneLbas * 1025) * 512, Large, Guid.Parse("6c6f6e67-0000-4000-8000-000000000003")));
        }
        Namespaces = [.. namespaces];
        Target = new NvmeTarget(new TargetOptions { TimeProvider = new FrozenClock() }, Namespaces);
    }

    public NvmeTarget Target { get; }
    public ZonedNamespace[] Namespaces { get; }
    public ZonedNamespace Zns => Namespaces[0];

    public void Dispose()
    {
        Target.Dispose();
        foreach (ZonedNamespace ns in Namespaces)
        {
            ns.Dispose();
        }
    }

    /// <summary>A clock that does not move: timestamps and power-on hours read the same whenever they are read.</summary>
    private sealed class FrozenClock : TimeProvider
    {
        private readonly long _now = Stopwatch.GetTimestamp();
        public override long GetTimestamp() => _now;
        public override DateTimeOffset GetUtcNow() => new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    }
}

/// <summary>
/// One host controller through one transport: an admin queue and I/O queue 1 of a fresh <see cref="ConformanceTarget"/>.
/// Every command gets the next CID of one counter, so the same scenario gives the same CIDs on every front end;
/// every completion is checked for its CID and SQID and kept in <see cref="Transcript"/>.
/// </summary>
internal abstract class FrontEnd : IAsyncDisposable
{
    /// <summary>A Fabrics command of type <paramref name="fctype"/>, as a fabric host sends it.</summary>
    protected static SubmissionQueueEntry Fabrics(byte fctype)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.Fabrics);
        sqe.Bytes[4] = fctype;
        return sqe;
    }

    /// <summary>Fabrics Connect for queue <paramref name="qid"/> with SQSIZE <paramref name="sqSize"/> (0's based).</summary>
    protected static SubmissionQueueEntry Connect(ushort qid, ushort sqSize)
    {
        SubmissionQueueEntry sqe = Fabrics(FabricsCommandType.Connect);
        sqe.SetCdw(10, (uint)qid << 16);
        sqe.SetCdw(11, sqSize);
        return sqe;
    }

    private ushort _nextCid = 0x100;

    protected FrontEnd(FrontEndKind kind, TargetSpec spec)
    {
        Kind = kind;
        Host = new ConformanceTarget(spec);
    }

    public FrontEndKind Kind { get; }
    public ConformanceTarget Host { get; }
    public NvmeTarget Target => Host.Target;
    public ZonedNamespace Zns => Host.Zns;

    /// <summary>Every completion so far, in submission order.</summary>
    public List<Completion> Transcript { get; } = [];

    public async Task<Completion> AdminAsync(SubmissionQueueEntry sqe, byte[]? dataOut = null, int dataInLength = 0) =>
        (await RunAsync(0, [[new Command(sqe, dataOut, dataInLength)]]))[0][0];

    public async Task<Completion> IoAsync(SubmissionQueueEntry sqe, byte[]? dataOut = null, int dataInLength = 0) =>
        (await RunAsync(1, [[new Command(sqe, dataOut, dataInLength)]]))[0][0];

    /// <summary>
    /// Submits each batch on I/O queue 1 at once (one receive over TCP, one doorbell write over PCIe, one run of
    /// submissions over the loop), the batches
    /// back to back without waiting for completions, then waits for all of them.
    /// </summary>
    public Task<Completion[][]> IoBatchesAsync(params Command[][] batches) => RunAsync(1, batches);

    private async Task<Completion[][]> RunAsync(ushort qid, Command[][] batches)
    {
        Command[][] numbered = [.. batches.Select(b => b.Select(c =>
        {
            SubmissionQueueEntry sqe = c.Sqe;
            sqe.SetCommandId(_nextCid++);
            return c with { Sqe = sqe };
        }).ToArray())];
        Exchanged[][] done = await ExchangeAsync(qid, numbered).ConfigureAwait(false);
        var result = new Completion[numbered.Length][];
        for (int b = 0; b < numbered.Length; b++)
        {
            result[b] = new Completion[numbered[b].Length];
            for (int i = 0; i < numbered[b].Length; i++)
            {
                Command c = numbered[b][i];
                Exchanged e = done[b][i];
                Assert.Equal(c.Sqe.CommandId, e.Cqe.CommandId);
                Assert.Equal(qid, e.Cqe.SqId);
                var completion = new Completion
                {
                    Sqe = c.Sqe, QueueId = qid, Cqe = e.Cqe, Elapsed = e.Elapsed,
                    Data = e.Cqe.Status.IsSuccess && c.DataInLength > 0 ? e.Data : [],
                };
                Assert.True(completion.Data.Length == 0 || completion.Data.Length == c.DataInLength, $"{Kind}: {completion}: {completion.Data.Length} bytes of {c.DataInLength}");
                result[b][i] = completion;
                Transcript.Add(completion);
            }
        }
        return result;
    }

    /// <summary>What the transport returned for one command: its CQE, read data (all of DataInLength) and time.</summary>
    protected readonly record struct Exchanged(CompletionQueueEntry Cqe, byte[] Data, TimeSpan Elapsed);

    /// <summary>
    /// After a power cut: sets the controller up again as a host recovering from it does (a fabric host reconnects,
    /// retrying while Connect is refused; a PCIe host resets the controller once CSTS.CFS shows), outside the transcript.
    /// </summary>
    public abstract Task ReconnectAsync();

    /// <summary>Runs the numbered commands on queue <paramref name="qid"/>; the result is in the batches' order.</summary>
    protected abstract Task<Exchanged[][]> ExchangeAsync(ushort qid, Command[][] batches);

    public abstract ValueTask DisposeAsync();
}

/// <summary>Runs scenarios on one front end or on all of them, comparing what each returned.</summary>
internal static class Conformance
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static readonly FrontEndKind[] Kinds = Enum.GetValues<FrontEndKind>();

    /// <summary>Each scenario through each front end.</summary>
    public static TheoryData<string, FrontEndKind> Runs(IEnumerable<string> scenarios)
    {
        var data = new TheoryData<string, FrontEndKind>();
        foreach (string scenario in scenarios)
        {
            foreach (FrontEndKind kind in Kinds)
            {
                data.Add(scenario, kind);
            }
        }
        return data;
    }

    public static async Task<FrontEnd> StartAsync(FrontEndKind kind, TargetSpec? spec = null) => kind switch
    {
        FrontEndKind.Tcp => await TcpFrontEnd.StartAsync(spec ?? TargetSpec.Default),
        FrontEndKind.Loop => await LoopFrontEnd.StartAsync(spec ?? TargetSpec.Default),
        _ => PcieFrontEnd.Start(spec ?? TargetSpec.Default),
    };

    /// <summary>Runs <paramref name="scenario"/> (with its own assertions) through one front end.</summary>
    public static async Task RunAsync(FrontEndKind kind, Func<FrontEnd, Task> scenario, TargetSpec? spec = null)
    {
        await using FrontEnd fe = await StartAsync(kind, spec);
        await scenario(fe);
    }

    /// <summary>
    /// Runs <paramref name="scenario"/> through every front end and asserts that each answered every command as NVMe/TCP
    /// did: status (DNR and More included), DW0, DW1, CID and data, field by field. When a scenario's own assertion
    /// fails on a front end, the first command where the answers differ is reported instead, if there is one.
    /// </summary>
    public static async Task ParityAsync(Func<FrontEnd, Task> scenario, TargetSpec? spec = null)
    {
        var runs = await Task.WhenAll(Kinds.Select(RecordAsync));
        var (reference, _, _) = runs[0];
        foreach (var (transcript, _, kind) in runs.Skip(1))
        {
            int common = Math.Min(reference.Count, transcript.Count);
            for (int i = 0; i < common; i++)
            {
                AssertSame(i, reference[i], transcript[i], kind);
            }
        }
        if (runs.Any(r => r.Error is not null))
        {
            Assert.Fail("the scenario failed: " + string.Join("; ", runs.Select(r => $"{r.Kind} after {r.Transcript.Count} commands{Describe(r.Error)}")));
        }
        foreach (var (transcript, _, kind) in runs.Skip(1))
        {
            Assert.True(reference.Count == transcript.Count, $"{reference.Count} commands over {Kinds[0]}, {transcript.Count} over {kind}");
        }

        async Task<(List<Completion> Transcript, Exception? Error, FrontEndKind Kind)> RecordAsync(FrontEndKind kind)
        {
            await using FrontEnd fe = await StartAsync(kind, spec);
            try
            {
                await scenario(fe);
                return (fe.Transcript, null, kind);
            }
            catch (Exception e)
            {
                return (fe.Transcript, e, kind);
            }
        }
    }

    private static string Describe(Exception? e) => e is null ? " (passed)" : $" ({e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")})";

    /// <summary><paramref name="other"/> (over <paramref name="kind"/>) answered as <paramref name="tcp"/> did over NVMe/TCP.</summary>
    private static void AssertSame(int index, Completion tcp, Completion other, FrontEndKind kind)
    {
        string at = $"command {index} ({tcp})";
        Assert.True(tcp.Sqe.Opcode == other.Sqe.Opcode && tcp.Sqe.NamespaceId == other.Sqe.NamespaceId && tcp.Sqe.Bytes[40..].SequenceEqual(other.Sqe.Bytes[40..]),
            $"{at}: the scenario took different paths ({kind} sent {other})");
        Assert.True(tcp.QueueId == other.QueueId, $"{at}: queue {tcp.QueueId} over TCP, {other.QueueId} over {kind}");
        Assert.True(tcp.Cqe.CommandId == other.Cqe.CommandId, $"{at}: CID {tcp.Cqe.CommandId} over TCP, {other.Cqe.CommandId} over {kind}");
        Assert.True(tcp.Status == other.Status, $"{at}: status {tcp.Status} over TCP, {other.Status} over {kind}");
        Assert.True((uint)tcp.Result == (uint)other.Result, $"{at}: DW0 {(uint)tcp.Result:x} over TCP, {(uint)other.Result:x} over {kind}");
        Assert.True(tcp.Result >> 32 == other.Result >> 32, $"{at}: DW1 {tcp.Result >> 32:x} over TCP, {other.Result >> 32:x} over {kind}");
        Assert.True(tcp.Data.Length == other.Data.Length, $"{at}: {tcp.Data.Length} data bytes over TCP, {other.Data.Length} over {kind}");
        int differs = tcp.Data.AsSpan().CommonPrefixLength(other.Data);
        Assert.True(differs == tcp.Data.Length, $"{at}: data differ from byte {differs}: {tcp.Data.ElementAtOrDefault(differs):x2} over TCP, {other.Data.ElementAtOrDefault(differs):x2} over {kind}");
    }

    // ---- helpers shared by the scenarios ----------------------------------------------------------------------

    public static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static byte[] Blocks(int blocks, int seed) => Pattern(blocks * ConformanceTarget.BlockSize, seed);

    public static void Ok(Completion c) => Assert.True(c.Status.IsSuccess, $"{c}: expected success, got {c.Status}");

    /// <summary>The status with DNR, as every status of a check that a retry cannot pass.</summary>
    public static void Fails(Completion c, NvmeStatus expected) => Fails(c, expected, dnr: true);

    public static void Fails(Completion c, NvmeStatus expected, bool dnr)
    {
        NvmeStatus want = dnr ? expected.WithDnr() : expected.WithoutDnr();
        Assert.True(c.Status == want, $"{c}: expected {want}, got {c.Status}");
    }

    public static SubmissionQueueEntry Write(ulong slba, int blocks, uint nsid = ConformanceTarget.ZonedNsid) => Sqe.ReadWrite(IoOpcode.Write, nsid, slba, (uint)blocks);
    public static SubmissionQueueEntry Read(ulong slba, int blocks, uint nsid = ConformanceTarget.ZonedNsid) => Sqe.ReadWrite(IoOpcode.Read, nsid, slba, (uint)blocks);
    public static SubmissionQueueEntry Append(ulong zslba, int blocks, uint nsid = ConformanceTarget.ZonedNsid) => Sqe.ReadWrite(IoOpcode.ZoneAppend, nsid, zslba, (uint)blocks);
    public static SubmissionQueueEntry Compare(ulong slba, int blocks, uint nsid = ConformanceTarget.ZonedNsid) => Sqe.ReadWrite(IoOpcode.Compare, nsid, slba, (uint)blocks);

    public static ulong ZoneStart(uint zone) => zone * ConformanceTarget.ZoneLbas;

    /// <summary>Writes <paramref name="blocks"/> blocks of pattern <paramref name="seed"/> and expects success.</summary>
    public static async Task<byte[]> WriteOkAsync(FrontEnd fe, ulong slba, int blocks, int seed, uint nsid = ConformanceTarget.ZonedNsid)
    {
        byte[] data = Blocks(blocks, seed);
        Ok(await fe.IoAsync(Write(slba, blocks, nsid), data));
        return data;
    }

    /// <summary>Reads and expects success and <paramref name="expected"/>.</summary>
    public static async Task ReadsAsync(FrontEnd fe, ulong slba, byte[] expected, uint nsid = ConformanceTarget.ZonedNsid)
    {
        Completion c = await fe.IoAsync(Read(slba, expected.Length / BlockSizeOf(nsid), nsid), dataInLength: expected.Length);
        Ok(c);
        AssertData(expected, c.Data, $"{fe.Kind} read of LBA {slba}");
    }

    private static int BlockSizeOf(uint nsid) => nsid == ConformanceTarget.LargeNsid ? 512 : ConformanceTarget.BlockSize;

    public static void AssertData(byte[] expected, byte[] actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} bytes, expected {expected.Length}");
        int same = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(same == expected.Length, $"{what}: differs from byte {same} (block {same / ConformanceTarget.BlockSize})");
    }

    public static SubmissionQueueEntry ZoneSend(uint zone, ZoneSendAction action, bool selectAll = false, bool zrwa = false, uint nsid = ConformanceTarget.ZonedNsid)
    {
        SubmissionQueueEntry sqe = Sqe.ZoneSend(nsid, ZoneStart(zone), action, selectAll);
        if (zrwa)
        {
            sqe.SetCdw(13, sqe.Cdw13 | 1u << 9);
        }
        return sqe;
    }

    /// <summary>A zone's state and write pointer as the host sees them: from a one-zone partial report through the front end.</summary>
    public static async Task<(ZoneState State, ulong WritePointer, ZoneAttributes Attributes)> ZoneAsync(FrontEnd fe, uint zone)
    {
        Completion c = await fe.IoAsync(Sqe.ZoneReceive(ConformanceTarget.ZonedNsid, ZoneStart(zone), 128, partial: true), dataInLength: 128);
        Ok(c);
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(c.Data));
        return ((ZoneState)(c.Data[65] >> 4), BinaryPrimitives.ReadUInt64LittleEndian(c.Data.AsSpan(64 + 24)), (ZoneAttributes)c.Data[66]);
    }

    /// <summary>Copy source range descriptors of format 0h/2h (32 bytes each; SNSID used by 2h only).</summary>
    public static byte[] CopyRanges(params (uint Snsid, ulong Slba, int Blocks)[] ranges)
    {
        var d = new byte[ranges.Length * 32];
        for (int i = 0; i < ranges.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(i * 32), ranges[i].Snsid);
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(i * 32 + 8), ranges[i].Slba);
            BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(i * 32 + 16), (ushort)(ranges[i].Blocks - 1));
        }
        return d;
    }

    public static SubmissionQueueEntry Copy(ulong sdlba, int ranges, int format, uint nsid = ConformanceTarget.ZonedNsid)
    {
        SubmissionQueueEntry sqe = Sqe.Create(IoOpcode.Copy, nsid);
        sqe.SetCdw10_11(sdlba);
        sqe.SetCdw(12, (uint)(ranges - 1) | ((uint)format << 8));
        return sqe;
    }

    public static string Text(byte[] data, int offset, int length) => Encoding.ASCII.GetString(data, offset, length).TrimEnd(' ', '\0');
}

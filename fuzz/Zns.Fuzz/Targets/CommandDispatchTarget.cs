using System.Buffers.Binary;
using System.Text;
using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Protocol;
using Zns.Target;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using static Zns.Fuzz.FuzzFailureException;

namespace Zns.Fuzz;

/// <summary>
/// Command dispatch of <see cref="NvmeTarget"/>: after a proper admin Connect, CC.EN = 1 and an I/O queue Connect,
/// the input is decoded as a sequence of commands (raw 64-byte SQEs or compact ones, with data) fed to the admin or
/// the I/O queue handler the way the transport would (data direction from the opcode, lengths the transport would
/// refuse are not passed on). Afterwards: no exception escaped, every command completed and its CQE echoes the CID,
/// and the zones are consistent (report = snapshot, write pointers inside [ZSLBA, ZSLBA + ZCAP), open ≤ active ≤
/// limits, counters = report).
/// </summary>
/// <remarks>
/// Record format (repeated until the input ends): a control byte — bit 0 queue (0 admin, 1 I/O), bits 2:1 data
/// length mode (0 none, 1 what the command's fields imply, 2 an explicit 16-bit dword count follows, 3 implied
/// length plus 512 bytes), bit 3 compact SQE, bit 4 data bytes follow in the input (otherwise zeros); then either a
/// raw 64-byte SQE or a compact one (opcode, NSID selector, CDW10..CDW13 = 18 bytes, PSDT = SGL, CID = record
/// number); then the optional dword count and data.
/// </remarks>
public sealed class CommandDispatchTarget : IFuzzTarget
{
    /// <inheritdoc/>
    public static string Name => "command-dispatch";

    private const int MaxRecords = 64;
    private static readonly bool s_trace = Environment.GetEnvironmentVariable("ZNS_FUZZ_TRACE") == "1";
    private const int MaxDataPerCommand = 64 * 1024;
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:f0220000-0000-4000-8000-000000000001";

    internal static readonly NamespaceOptions ZonedOptions = new()
    {
        LogicalBlockSize = 512, ZoneSize = 64 * 1024, ZoneCapacity = 48 * 1024, MaxOpen = 2, MaxActive = 3,
        DescriptorExtensionSize = 64, Mdts = 2, Zasl = 1,
    };

    internal static readonly NamespaceOptions ConventionalOptions = new() { Zoned = false, LogicalBlockSize = 4096, Mdts = 2 };

    /// <inheritdoc/>
    public static void Fuzz(ReadOnlySpan<byte> input)
    {
        using var zoned = ZonedNamespace.CreateInMemory(1 << 20, ZonedOptions, Guid.Empty);
        using var conventional = ZonedNamespace.CreateInMemory(256 * 1024, ConventionalOptions, Guid.Empty);
        var pending = new List<(ushort Cid, Task<CompletionQueueEntry> Task)>();
        var target = new NvmeTarget(new TargetOptions { MaxIoQueues = 2, MaxQueueEntries = 16 }, [zoned, conventional]);
        try
        {
            var adminTransport = new NullTransport("admin");
            var ioTransport = new NullTransport("io");
            IQueueHandler admin = target.CreateQueueHandler(adminTransport);
            IQueueHandler io = target.CreateQueueHandler(ioTransport);
            Setup(admin, io, target.Subsystem.Nqn, input);

            int records = 0;
            while (!input.IsEmpty && records < MaxRecords)
            {
                if (!TryDecode(ref input, (ushort)(0x1000 + records), out var sqe, out bool ioQueue, out byte[]? data))
                    break;
                records++;
                var queue = ioQueue ? io : admin;
                if (data is not null && data.Length > queue.MaxDataLength)
                    continue; // the transport answers Data SGL Length Invalid without calling the handler
                var vt = queue.ExecuteAsync(sqe, data ?? Memory<byte>.Empty);
                // A ValueTask is consumed exactly once: its source may be pooled.
                string outcome = "pending";
                if (vt.IsCompleted)
                {
                    var cqe = vt.Result;
                    CheckCid(sqe.CommandId, cqe, input);
                    outcome = cqe.Status.ToString();
                }
                else
                {
                    pending.Add((sqe.CommandId, vt.AsTask()));
                }
                if (s_trace)
                    Console.Error.WriteLine($"{(ioQueue ? "io" : "admin")} opc {sqe.Opcode:x2} cid {sqe.CommandId:x4} data {data?.Length ?? 0}: {outcome}");
            }
        }
        finally
        {
            // Destroying the controllers completes parked Asynchronous Event Requests.
            target.Dispose();
        }
        foreach (var (cid, task) in pending)
        {
            Check(task.Wait(TimeSpan.FromSeconds(10)), $"command {cid:x4} never completed", input);
            CheckCid(cid, task.Result, input);
        }
        CheckZones(zoned, input);
    }

    private static void Setup(IQueueHandler admin, IQueueHandler io, string nqn, ReadOnlySpan<byte> input)
    {
        var connect = Fabrics(FabricsCommandType.Connect, 1);
        connect.SetSgl(0, 1024, 0x01);
        connect.SetCdw(11, 15); // SQSIZE 16, KATO 0: no keep-alive timer
        var cqe = Run(admin, connect, ConnectData(nqn, 0xFFFF));
        Check(cqe.Status.IsSuccess, $"admin Connect failed: {cqe.Status}", input);
        ushort cntlid = (ushort)cqe.Result;

        var enable = Fabrics(FabricsCommandType.PropertySet, 2);
        enable.SetCdw(11, 0x14);
        enable.SetCdw(12, 0x00460061);
        Check(Run(admin, enable, default).Status.IsSuccess, "CC.EN = 1 failed", input);

        var ioConnect = Fabrics(FabricsCommandType.Connect, 3);
        ioConnect.SetSgl(0, 1024, 0x01);
        ioConnect.SetCdw(10, 1u << 16);
        ioConnect.SetCdw(11, 15);
        cqe = Run(io, ioConnect, ConnectData(nqn, cntlid));
        Check(cqe.Status.IsSuccess, $"I/O Connect failed: {cqe.Status}", input);
    }

    private static SubmissionQueueEntry Fabrics(byte fctype, ushort cid)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.Fabrics);
        sqe.SetFlags(0x40);
        sqe.SetCommandId(cid);
        sqe.Bytes[4] = fctype;
        return sqe;
    }

    private static byte[] ConnectData(string nqn, ushort cntlid)
    {
        var data = new byte[1024];
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(16), cntlid);
        Encoding.ASCII.GetBytes(nqn, data.AsSpan(256));
        Encoding.ASCII.GetBytes(HostNqn, data.AsSpan(512));
        return data;
    }

    private static CompletionQueueEntry Run(IQueueHandler queue, SubmissionQueueEntry sqe, Memory<byte> data)
    {
        var vt = queue.ExecuteAsync(sqe, data);
        return vt.IsCompleted ? vt.Result : vt.AsTask().GetAwaiter().GetResult();
    }

    private static void CheckCid(ushort cid, in CompletionQueueEntry cqe, ReadOnlySpan<byte> input) =>
        Check(cqe.CommandId == cid, $"CQE CID {cqe.CommandId:x4} for command {cid:x4}", input);

    /// <summary>Takes one record off the front of <paramref name="input"/>; false when it is truncated.</summary>
    internal static bool TryDecode(ref ReadOnlySpan<byte> input, ushort compactCid, out SubmissionQueueEntry sqe, out bool ioQueue, out byte[]? data)
    {
        sqe = default;
        data = null;
        ioQueue = false;
        if (input.IsEmpty)
            return false;
        byte control = input[0];
        input = input[1..];
        ioQueue = (control & 1) != 0;
        int mode = (control >> 1) & 3;
        bool compact = (control & 8) != 0;
        bool dataFollows = (control & 0x10) != 0;

        if (compact)
        {
            if (input.Length < 18)
                return false;
            sqe.SetOpcode(input[0]);
            sqe.SetFlags(0x40);
            sqe.SetCommandId(compactCid);
            sqe.SetNamespaceId(input[1] switch { 0 => 0, 1 => 1, 2 => 2, 3 => uint.MaxValue, var n => n });
            for (int i = 0; i < 4; i++)
                sqe.SetCdw(10 + i, BinaryPrimitives.ReadUInt32LittleEndian(input[(2 + 4 * i)..]));
            if (input[0] == AdminOpcode.Fabrics)
                sqe.Bytes[4] = (byte)(input[1] & 0x0F); // FCTYPE shares the NSID byte
            input = input[18..];
        }
        else
        {
            if (input.Length < SubmissionQueueEntry.Size)
                return false;
            sqe = SubmissionQueueEntry.Read(input);
            input = input[SubmissionQueueEntry.Size..];
        }

        var direction = (ioQueue ? CommandData.Io(in sqe, null) : CommandData.Admin(in sqe, memoryBased: false)).Direction;
        if (direction is DataDirection.None or DataDirection.Bidirectional)
            return true; // no data moves (bidirectional commands are refused by the transport before the handler)
        long length = mode switch
        {
            0 => 0,
            2 => ReadDwordCount(ref input) * 4L,
            _ => ImpliedLength(sqe, ioQueue) + (mode == 3 ? 512 : 0),
        };
        if (length <= 0)
            return true;
        data = new byte[Math.Min(length, MaxDataPerCommand + 1)];
        if (dataFollows && direction == DataDirection.HostToController)
        {
            int n = Math.Min(data.Length, input.Length);
            input[..n].CopyTo(data);
            input = input[n..];
        }
        return true;
    }

    private static int ReadDwordCount(ref ReadOnlySpan<byte> input)
    {
        if (input.Length < 2)
            return 0;
        int n = BinaryPrimitives.ReadUInt16LittleEndian(input);
        input = input[2..];
        return n;
    }

    /// <summary>The data length a well-formed host would attach to this command.</summary>
    private static long ImpliedLength(in SubmissionQueueEntry sqe, bool ioQueue)
    {
        uint nlb = (sqe.Cdw12 & 0xFFFF) + 1;
        int blockSize = sqe.NamespaceId == 2 ? ConventionalOptions.LogicalBlockSize : ZonedOptions.LogicalBlockSize;
        if (sqe.Opcode == AdminOpcode.Fabrics)
            return sqe.FabricsCommandType == FabricsCommandType.Connect ? 1024 : 0;
        if (!ioQueue)
        {
            return sqe.Opcode switch
            {
                AdminOpcode.Identify => 4096,
                AdminOpcode.GetLogPage => (((long)(sqe.Cdw11 & 0xFFFF) << 16 | (sqe.Cdw10 >> 16)) + 1) * 4,
                _ => 4096,
            };
        }
        return sqe.Opcode switch
        {
            IoOpcode.Read or IoOpcode.Write or IoOpcode.ZoneAppend => (long)nlb * blockSize,
            IoOpcode.ZoneManagementReceive => ((long)sqe.Cdw12 + 1) * 4,
            IoOpcode.DatasetManagement => ((sqe.Cdw10 & 0xFF) + 1) * 16L,
            IoOpcode.ZoneManagementSend => (sqe.Cdw13 & 0xFF) == (byte)ZoneSendAction.SetDescriptorExtension ? ZonedOptions.DescriptorExtensionSize : 0,
            _ => 512,
        };
    }

    /// <summary>Zone invariants, read through Zone Management Receive and compared with the zone snapshots.</summary>
    internal static void CheckZones(ZonedNamespace ns, ReadOnlySpan<byte> input)
    {
        var g = ns.Geometry;
        var report = new byte[64 + (int)g.ZoneCount * 64];
        var status = ns.ZoneManagementReceive(0, 0, 0, false, report);
        Check(status.IsSuccess, $"report zones failed: {status}", input);
        Check(BinaryPrimitives.ReadUInt64LittleEndian(report) == g.ZoneCount, "report does not list every zone", input);
        uint open = 0, closed = 0;
        for (uint i = 0; i < g.ZoneCount; i++)
        {
            var d = report.AsSpan(64 + (int)i * 64, 64);
            var state = (ZoneState)(d[1] >> 4);
            ulong zcap = BinaryPrimitives.ReadUInt64LittleEndian(d[8..]);
            ulong zslba = BinaryPrimitives.ReadUInt64LittleEndian(d[16..]);
            ulong wp = BinaryPrimitives.ReadUInt64LittleEndian(d[24..]);
            Check(d[0] == 2 && zslba == g.ZoneStart(i) && zcap == g.ZoneCapacityLbas, $"zone {i}: bad type/ZSLBA/ZCAP", input);
            var snapshot = ns.GetZone(i);
            Check(snapshot.State == state, $"zone {i}: report says {state}, snapshot {snapshot.State}", input);
            switch (state)
            {
                case ZoneState.Empty:
                    Check(wp == zslba, $"zone {i}: empty with WP {wp:x} (ZSLBA {zslba:x})", input);
                    break;
                case ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed:
                    Check(wp >= zslba && wp < zslba + zcap, $"zone {i}: {state} with WP {wp:x} outside [{zslba:x}, {zslba + zcap:x})", input);
                    Check(snapshot.WritePointer == wp, $"zone {i}: report WP {wp:x}, snapshot {snapshot.WritePointer:x}", input);
                    if (state == ZoneState.Closed)
                        closed++;
                    else
                        open++;
                    break;
                case ZoneState.Full or ZoneState.ReadOnly or ZoneState.Offline:
                    Check(wp == ulong.MaxValue, $"zone {i}: {state} reports WP {wp:x}", input);
                    break;
                default:
                    throw new FuzzFailureException($"zone {i}: undefined state {(byte)state:x}", input);
            }
        }
        uint active = open + closed;
        Check(ns.OpenZoneCount == open && ns.ActiveZoneCount == active,
            $"counters open {ns.OpenZoneCount} / active {ns.ActiveZoneCount}, report {open} / {active}", input);
        Check(g.MaxOpen == 0 || open <= g.MaxOpen, $"{open} open zones, limit {g.MaxOpen}", input);
        Check(g.MaxActive == 0 || active <= g.MaxActive, $"{active} active zones, limit {g.MaxActive}", input);
    }

    private sealed class NullTransport(string name) : IQueueTransport
    {
        public string RemoteEndPoint => name;

        public TransportTraits Traits { get; } = TransportTraits.Fabric(8192);

        public void Abort(string reason)
        {
        }
    }
}

/// <summary>Commands with data the fuzzer owns until they complete, as a transport's own buffer.</summary>
internal static class QueueHandlerExtensions
{
    public static ValueTask<CompletionQueueEntry> ExecuteAsync(this IQueueHandler queue, SubmissionQueueEntry command, Memory<byte> data) =>
        queue.ExecuteAsync(in command, Zns.Target.Execution.HostData.Owned(data));
}

using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;

namespace Zns.Target.Tests;

/// <summary>Records what the controller layer asks of the transport.</summary>
internal sealed class FakeTransport(string remote = "127.0.0.1:50000") : IQueueTransport
{
    private int _aborts;
    public string RemoteEndPoint { get; } = remote;

    /// <summary>As the NVMe/TCP transport accepts by default.</summary>
    public TransportTraits Traits { get; } = TransportTraits.Fabric(8192);

    public string? AbortReason { get; private set; }
    public int AbortCount => Volatile.Read(ref _aborts);
    public TaskCompletionSource Aborted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Abort(string reason)
    {
        AbortReason ??= reason;
        Interlocked.Increment(ref _aborts);
        Aborted.TrySetResult();
    }
}

/// <summary>SQE builders with the field layouts a Linux host uses.</summary>
internal static class Sqe
{
    private static ushort s_cid;

    public static SubmissionQueueEntry Create(byte opcode, uint nsid = 0)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(opcode);
        sqe.SetFlags(0x40);
        sqe.SetCommandId(++s_cid);
        sqe.SetNamespaceId(nsid);
        return sqe;
    }

    public static SubmissionQueueEntry Fabrics(byte fctype)
    {
        SubmissionQueueEntry sqe = Create(AdminOpcode.Fabrics);
        sqe.Bytes[4] = fctype;
        return sqe;
    }

    public static SubmissionQueueEntry Connect(ushort qid, ushort sqSize, uint katoMs = 0, ushort recfmt = 0)
    {
        SubmissionQueueEntry sqe = Fabrics(FabricsCommandType.Connect);
        sqe.SetSgl(0, ConnectDataLayout.Size, 0x01);
        sqe.SetCdw(10, (uint)(recfmt | (qid << 16)));
        sqe.SetCdw(11, sqSize);
        sqe.SetCdw(12, katoMs);
        return sqe;
    }

    public static byte[] ConnectData(string subNqn, string hostNqn, ushort cntlid = 0xFFFF)
    {
        byte[] data = new byte[ConnectDataLayout.Size];
        ConnectDataLayout.Write(data, Guid.Parse("0b1a9e0d-3f2c-4c1e-9a8b-7d6e5f4a3b2c"), cntlid, subNqn, hostNqn);
        return data;
    }

    public static SubmissionQueueEntry PropertyGet(uint offset, bool eightBytes)
    {
        SubmissionQueueEntry sqe = Fabrics(FabricsCommandType.PropertyGet);
        sqe.SetCdw(10, eightBytes ? 1u : 0u);
        sqe.SetCdw(11, offset);
        return sqe;
    }

    public static SubmissionQueueEntry PropertySet(uint offset, uint value)
    {
        SubmissionQueueEntry sqe = Fabrics(FabricsCommandType.PropertySet);
        sqe.SetCdw(11, offset);
        sqe.SetCdw(12, value);
        return sqe;
    }

    public static SubmissionQueueEntry Identify(byte cns, uint nsid = 0, byte csi = 0)
    {
        SubmissionQueueEntry sqe = Create(AdminOpcode.Identify, nsid);
        sqe.SetCdw(10, cns);
        sqe.SetCdw(11, (uint)csi << 24);
        return sqe;
    }

    public static SubmissionQueueEntry GetLogPage(byte lid, int bytes, uint nsid = 0, byte csi = 0, ulong offset = 0, bool rae = false)
    {
        SubmissionQueueEntry sqe = Create(AdminOpcode.GetLogPage, nsid);
        uint numd = (uint)(bytes / 4 - 1);
        sqe.SetCdw(10, lid | (rae ? 0x8000u : 0) | (numd << 16));
        sqe.SetCdw(11, numd >> 16);
        sqe.SetCdw(12, (uint)offset);
        sqe.SetCdw(13, (uint)(offset >> 32));
        sqe.SetCdw(14, (uint)csi << 24);
        return sqe;
    }

    public static SubmissionQueueEntry SetFeatures(byte fid, uint value)
    {
        SubmissionQueueEntry sqe = Create(AdminOpcode.SetFeatures);
        sqe.SetCdw(10, fid);
        sqe.SetCdw(11, value);
        return sqe;
    }

    public static SubmissionQueueEntry GetFeatures(byte fid, uint sel = 0, uint cdw11 = 0)
    {
        SubmissionQueueEntry sqe = Create(AdminOpcode.GetFeatures);
        sqe.SetCdw(10, fid | (sel << 8));
        sqe.SetCdw(11, cdw11);
        return sqe;
    }

    public static SubmissionQueueEntry ReadWrite(byte opcode, uint nsid, ulong slba, uint blocks, uint cdw12Flags = 0)
    {
        SubmissionQueueEntry sqe = Create(opcode, nsid);
        sqe.SetCdw10_11(slba);
        sqe.SetCdw(12, (blocks - 1) | cdw12Flags);
        return sqe;
    }

    public static SubmissionQueueEntry ZoneSend(uint nsid, ulong slba, ZoneSendAction action, bool selectAll = false)
    {
        SubmissionQueueEntry sqe = Create(IoOpcode.ZoneManagementSend, nsid);
        sqe.SetCdw10_11(slba);
        sqe.SetCdw(13, (byte)action | (selectAll ? 1u << 8 : 0));
        return sqe;
    }

    public static SubmissionQueueEntry ZoneReceive(uint nsid, ulong slba, int bytes, byte zra = 0, byte zrasf = 0, bool partial = false)
    {
        SubmissionQueueEntry sqe = Create(IoOpcode.ZoneManagementReceive, nsid);
        sqe.SetCdw10_11(slba);
        sqe.SetCdw(12, (uint)(bytes / 4 - 1));
        sqe.SetCdw(13, zra | ((uint)zrasf << 8) | (partial ? 1u << 16 : 0));
        return sqe;
    }
}

/// <summary>A target with in-memory namespaces and helpers that play the Linux host's part.</summary>
internal sealed class TestHost : IDisposable
{
    public const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:0b1a9e0d-3f2c-4c1e-9a8b-7d6e5f4a3b2c";
    public const long NamespaceBytes = 64L << 20;

    public TestHost(TargetOptions? options = null, params NamespaceOptions[] namespaces)
    {
        if (namespaces.Length == 0)
        {
            namespaces = [new NamespaceOptions { ZoneSize = 4L << 20, MaxOpen = 4, MaxActive = 6 }];
        }
        Namespaces = [.. namespaces.Select(o => ZonedNamespace.CreateInMemory(NamespaceBytes, o))];
        Target = new NvmeTarget(options ?? new TargetOptions(), Namespaces);
    }

    private TestHost(ZonedNamespace[] namespaces)
    {
        Namespaces = namespaces;
        Target = new NvmeTarget(new TargetOptions(), Namespaces);
    }

    /// <summary>A target over namespaces the test opened itself (file-backed ones, say); disposing disposes them.</summary>
    public static TestHost Over(params ZonedNamespace[] namespaces) => new(namespaces);

    public NvmeTarget Target { get; }
    public ZonedNamespace[] Namespaces { get; }

    public (IQueueHandler Queue, FakeTransport Transport) Open()
    {
        var transport = new FakeTransport();
        return (Target.CreateQueueHandler(transport), transport);
    }

    public static CompletionQueueEntry Run(IQueueHandler q, SubmissionQueueEntry sqe, Memory<byte> data = default)
    {
        ValueTask<CompletionQueueEntry> vt = q.ExecuteAsync(sqe, data);
        CompletionQueueEntry cqe = vt.IsCompleted ? vt.Result : vt.AsTask().GetAwaiter().GetResult();
        Assert.Equal(sqe.CommandId, cqe.CommandId);
        return cqe;
    }

    /// <summary>The result of a ValueTask known to be complete (no blocking).</summary>
    public static CompletionQueueEntry Completed(ValueTask<CompletionQueueEntry> vt) => vt.Result;

    public static void Ok(CompletionQueueEntry cqe)
    {
        // The message is only built on failure so allocation tests can call this.
        if (!cqe.Status.IsSuccess)
        {
            Assert.Fail($"expected success, got {cqe.Status}");
        }
    }

    public static void Fails(CompletionQueueEntry cqe, NvmeStatus expected) => Assert.Equal(expected.WithDnr(), cqe.Status);

    public (IQueueHandler Admin, FakeTransport Transport, ushort Cntlid) ConnectAdmin(uint katoMs = 5000, string? subNqn = null, string hostNqn = HostNqn)
    {
        var (q, t) = Open();
        CompletionQueueEntry cqe = Run(q, Sqe.Connect(0, 31, katoMs), Sqe.ConnectData(subNqn ?? Target.Subsystem.Nqn, hostNqn));
        Ok(cqe);
        return (q, t, (ushort)cqe.Result);
    }

    public static void Enable(IQueueHandler admin)
    {
        Ok(Run(admin, Sqe.PropertySet(ControllerProperties.Cc, 0x00460061)));
        Assert.Equal(1UL, Run(admin, Sqe.PropertyGet(ControllerProperties.Csts, false)).Result & 1);
    }

    public (IQueueHandler Admin, ushort Cntlid, IQueueHandler Io, FakeTransport AdminTransport, FakeTransport IoTransport) ConnectAll(uint katoMs = 5000)
    {
        var (admin, at, cntlid) = ConnectAdmin(katoMs);
        Enable(admin);
        var (io, it) = Open();
        Ok(Run(io, Sqe.Connect(1, 127), Sqe.ConnectData(Target.Subsystem.Nqn, HostNqn, cntlid)));
        return (admin, cntlid, io, at, it);
    }

    public static byte[] Identify(IQueueHandler admin, byte cns, uint nsid = 0, byte csi = 0)
    {
        byte[] data = new byte[4096];
        Ok(Run(admin, Sqe.Identify(cns, nsid, csi), data));
        return data;
    }

    public static ushort U16(byte[] d, int o) => BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(o));
    public static uint U32(byte[] d, int o) => BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(o));
    public static ulong U64(byte[] d, int o) => BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(o));

    public void Dispose()
    {
        Target.Dispose();
        foreach (ZonedNamespace ns in Namespaces)
        {
            ns.Dispose();
        }
    }
}

/// <summary>Commands with data the test owns until they complete, as a transport's own buffer.</summary>
internal static class QueueHandlerExtensions
{
    public static ValueTask<CompletionQueueEntry> ExecuteAsync(this IQueueHandler queue, SubmissionQueueEntry command, Memory<byte> data) =>
        queue.ExecuteAsync(in command, Zns.Target.Execution.HostData.Owned(data));
}

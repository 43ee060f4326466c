using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests;

public sealed class ConnectTests
{
    [Fact]
    public void CommandBeforeConnect_IsCommandSequenceError()
    {
        using var host = new TestHost();
        var (q, _) = host.Open();
        Fails(Run(q, Sqe.Identify(IdentifyCns.Controller), new byte[4096]), NvmeStatus.CommandSequenceError);
        Fails(Run(q, Sqe.PropertyGet(ControllerProperties.Cap, true)), NvmeStatus.CommandSequenceError);
        CompletionQueueEntry read = Run(q, Sqe.ReadWrite(IoOpcode.Read, 1, 0, 1), new byte[4096]);
        Fails(read, NvmeStatus.CommandSequenceError);
        Assert.Equal(0, read.SqHead);
    }

    [Fact]
    public void SecondConnect_IsCommandSequenceError()
    {
        using var host = new TestHost();
        var (admin, _, _) = host.ConnectAdmin();
        Fails(Run(admin, Sqe.Connect(0, 31, 5000), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn)), NvmeStatus.CommandSequenceError);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(128)]
    public void BadSqSize_IsInvalidParametersPointingAtSqsize(ushort sqSize)
    {
        using var host = new TestHost();
        var (q, _) = host.Open();
        CompletionQueueEntry cqe = Run(q, Sqe.Connect(0, sqSize, 5000), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn));
        Fails(cqe, NvmeStatus.ConnectInvalidParameters);
        Assert.Equal(44UL, cqe.Result);
    }

    [Fact]
    public void NonZeroRecfmt_IsIncompatibleFormat()
    {
        using var host = new TestHost();
        var (q, _) = host.Open();
        Fails(Run(q, Sqe.Connect(0, 31, 5000, recfmt: 1), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn)), NvmeStatus.ConnectIncompatibleFormat);
    }

    [Fact]
    public void UnknownSubsystem_IsInvalidParametersAtDataOffset256()
    {
        using var host = new TestHost();
        var (q, _) = host.Open();
        CompletionQueueEntry cqe = Run(q, Sqe.Connect(0, 31, 5000), Sqe.ConnectData("nqn.2026-01.io.zns:other", HostNqn));
        Fails(cqe, NvmeStatus.ConnectInvalidParameters);
        Assert.Equal(0x1_0100UL, cqe.Result);
    }

    [Fact]
    public void HostNotOnAllowList_IsInvalidHost()
    {
        using var host = new TestHost(new TargetOptions { AllowedHostNqns = ["nqn.2014-08.org.nvmexpress:uuid:someone-else"] });
        var (q, _) = host.Open();
        CompletionQueueEntry cqe = Run(q, Sqe.Connect(0, 31, 5000), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn));
        Fails(cqe, NvmeStatus.ConnectInvalidHost);
        Assert.Equal(0x1_0200UL, cqe.Result);
        // Discovery stays open to every host.
        var (d, _) = host.Open();
        Ok(Run(d, Sqe.Connect(0, 31), Sqe.ConnectData(TargetOptions.DiscoveryNqn, HostNqn)));
    }

    [Fact]
    public void AdminConnectWithStaticCntlid_IsInvalidParameters()
    {
        using var host = new TestHost();
        var (q, _) = host.Open();
        CompletionQueueEntry cqe = Run(q, Sqe.Connect(0, 31, 5000), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn, cntlid: 1));
        Fails(cqe, NvmeStatus.ConnectInvalidParameters);
        Assert.Equal(0x1_0010UL, cqe.Result);
    }

    [Fact]
    public void ShortConnectData_IsSglLengthInvalid()
    {
        using var host = new TestHost();
        var (q, _) = host.Open();
        Fails(Run(q, Sqe.Connect(0, 31, 5000), new byte[512]), NvmeStatus.DataSglLengthInvalid);
    }

    [Fact]
    public void ControllerIdsAreUniqueAndStayOutOfTheReservedRange()
    {
        using var host = new TestHost();
        var ids = new HashSet<ushort>();
        for (int i = 0; i < 5; i++)
        {
            Assert.True(ids.Add(host.ConnectAdmin().Cntlid));
        }
        Assert.All(ids, id => Assert.InRange(id, (ushort)1, (ushort)0xFFEF));
        Assert.Equal(5, host.Target.Subsystem.ControllerCount);
    }

    [Fact]
    public void IoConnect_ErrorPaths()
    {
        using var host = new TestHost();
        var (admin, _, cntlid) = host.ConnectAdmin();
        string nqn = host.Target.Subsystem.Nqn;

        // Before CC.EN = 1.
        var (q1, _) = host.Open();
        Fails(Run(q1, Sqe.Connect(1, 127), Sqe.ConnectData(nqn, HostNqn, cntlid)), NvmeStatus.CommandSequenceError);
        Enable(admin);

        // Unknown controller, or a controller of another host: offset of CNTLID in the data.
        var (q2, _) = host.Open();
        CompletionQueueEntry cqe = Run(q2, Sqe.Connect(1, 127), Sqe.ConnectData(nqn, HostNqn, (ushort)(cntlid + 100)));
        Fails(cqe, NvmeStatus.ConnectInvalidParameters);
        Assert.Equal(0x1_0010UL, cqe.Result);
        Fails(Run(q2, Sqe.Connect(1, 127), Sqe.ConnectData(nqn, "nqn.2014-08.org.nvmexpress:uuid:other", cntlid)), NvmeStatus.ConnectInvalidParameters);

        // QID beyond the granted queues: offset of QID in the SQE.
        cqe = Run(q2, Sqe.Connect(9, 127), Sqe.ConnectData(nqn, HostNqn, cntlid));
        Fails(cqe, NvmeStatus.ConnectInvalidParameters);
        Assert.Equal(42UL, cqe.Result);

        // A QID that is already connected.
        Ok(Run(q2, Sqe.Connect(1, 127), Sqe.ConnectData(nqn, HostNqn, cntlid)));
        var (q3, _) = host.Open();
        Fails(Run(q3, Sqe.Connect(1, 127), Sqe.ConnectData(nqn, HostNqn, cntlid)), NvmeStatus.CommandSequenceError);

        // After the queue closes the QID is free again.
        q2.Dispose();
        Ok(Run(q3, Sqe.Connect(1, 127), Sqe.ConnectData(nqn, HostNqn, cntlid)));
    }

    [Fact]
    public void SqHeadWrapsModuloQueueSize()
    {
        using var host = new TestHost();
        var (admin, _, cntlid) = host.ConnectAdmin();
        Enable(admin);
        var (io, _) = host.Open();
        CompletionQueueEntry c = Run(io, Sqe.Connect(2, 3), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn, cntlid));
        Assert.Equal(1, c.SqHead);
        Assert.Equal(2, c.SqId);
        ushort[] heads = new ushort[5];
        for (int i = 0; i < heads.Length; i++)
        {
            CompletionQueueEntry f = Run(io, Sqe.Create(IoOpcode.Flush, 1));
            Ok(f);
            Assert.Equal(2, f.SqId);
            heads[i] = f.SqHead;
        }
        Assert.Equal([2, 3, 0, 1, 2], heads);
    }

    [Fact]
    public void CommandsWhileDisabled_AreCommandSequenceError_FabricsStillWork()
    {
        using var host = new TestHost();
        var (admin, _, _) = host.ConnectAdmin();
        Fails(Run(admin, Sqe.Identify(IdentifyCns.Controller), new byte[4096]), NvmeStatus.CommandSequenceError);
        Fails(Run(admin, Sqe.Create(AdminOpcode.KeepAlive)), NvmeStatus.CommandSequenceError);
        Ok(Run(admin, Sqe.PropertyGet(ControllerProperties.Csts, false)));
    }

    [Fact]
    public void InvalidControllerConfiguration_SetsFatalStatus()
    {
        using var host = new TestHost();
        var (admin, _, _) = host.ConnectAdmin();
        // IOSQES 7 instead of 6.
        Ok(Run(admin, Sqe.PropertySet(ControllerProperties.Cc, 0x00470061)));
        Assert.Equal(2UL, Run(admin, Sqe.PropertyGet(ControllerProperties.Csts, false)).Result);
        Fails(Run(admin, Sqe.Identify(IdentifyCns.Controller), new byte[4096]), NvmeStatus.CommandSequenceError);
    }

    [Fact]
    public void ControllerReset_AbortsIoQueues()
    {
        using var host = new TestHost();
        var (admin, _, io, adminTransport, ioTransport) = host.ConnectAll();
        Ok(Run(admin, Sqe.PropertySet(ControllerProperties.Cc, 0x00460060)));
        Assert.Equal(1, ioTransport.AbortCount);
        Assert.Equal(0, adminTransport.AbortCount);
        Assert.Equal(0UL, Run(admin, Sqe.PropertyGet(ControllerProperties.Csts, false)).Result);
        Fails(Run(io, Sqe.Create(IoOpcode.Flush, 1)), NvmeStatus.CommandSequenceError);
    }

    [Fact]
    public void Properties_UnknownOffsetsAndWritesAreRejected()
    {
        using var host = new TestHost();
        var (admin, _, _) = host.ConnectAdmin();
        Fails(Run(admin, Sqe.PropertyGet(0x20, false)), NvmeStatus.InvalidField);
        Fails(Run(admin, Sqe.PropertySet(ControllerProperties.Csts, 1)), NvmeStatus.InvalidField);
        Assert.Equal(0x0000_0820UL, Run(admin, Sqe.PropertyGet(4, false)).Result);
    }

    [Fact]
    public void FabricsOnIoQueue_PropertyIsInvalidOpcode_DisconnectDetaches()
    {
        using var host = new TestHost();
        var (admin, _, io, _, _) = host.ConnectAll();
        Fails(Run(io, Sqe.PropertyGet(ControllerProperties.Cap, true)), NvmeStatus.InvalidOpcode);
        Fails(Run(admin, Sqe.Fabrics(FabricsCommandType.Disconnect)), NvmeStatus.DisconnectInvalidQueueType);
        Ok(Run(io, Sqe.Fabrics(FabricsCommandType.Disconnect)));
        Fails(Run(io, Sqe.Create(IoOpcode.Flush, 1)), NvmeStatus.CommandSequenceError);
    }

    [Fact]
    public void AdminQueueClose_DestroysControllerAndAbortsIoQueues()
    {
        using var host = new TestHost();
        var (admin, _, _, _, ioTransport) = host.ConnectAll();
        admin.Dispose();
        Assert.Equal(0, host.Target.Subsystem.ControllerCount);
        Assert.Equal(1, ioTransport.AbortCount);
    }
}

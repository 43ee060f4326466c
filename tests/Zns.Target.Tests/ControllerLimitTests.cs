using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests;

/// <summary>
/// QEMU's <c>mqes</c>, <c>max_ioqpairs</c> and <c>aerl</c> (TargetOptions.MaxQueueEntries, MaxIoQueues,
/// AsyncEventRequestLimit): every place a host reads them reports the one configured value.
/// </summary>
public sealed class ControllerLimitTests
{
    [Fact]
    public void OneQueueDepth_InCap_Maxcmd_AndConnect()
    {
        using var host = new TestHost(new TargetOptions { MaxQueueEntries = 8, MaxIoQueues = 3, AsyncEventRequestLimit = 0 });
        // The admin queue keeps Linux's 32 entries however small MQES is: MQES bounds I/O queues only.
        var (admin, _, cntlid) = host.ConnectAdmin();
        Assert.Equal(7UL, Run(admin, Sqe.PropertyGet(ControllerProperties.Cap, true)).Result & 0xFFFF);
        Enable(admin);
        byte[] id = Identify(admin, IdentifyCns.Controller);
        Assert.Equal(8, U16(id, 514)); // MAXCMD
        Assert.Equal(0, id[259]);      // AERL

        var (deep, _) = host.Open();
        CompletionQueueEntry refused = Run(deep, Sqe.Connect(1, 8), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn, cntlid));
        Fails(refused, NvmeStatus.ConnectInvalidParameters);
        Assert.Equal(44UL, refused.Result);
        var (fits, _) = host.Open();
        Ok(Run(fits, Sqe.Connect(1, 7), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn, cntlid)));
        var (fourth, _) = host.Open();
        Fails(Run(fourth, Sqe.Connect(4, 7), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn, cntlid)), NvmeStatus.ConnectInvalidParameters);
    }

    [Fact]
    public void NumberOfQueues_GrantsMaxIoqpairs_SetAndGet()
    {
        using var host = new TestHost(new TargetOptions { MaxIoQueues = 5 });
        var (admin, _, _) = host.ConnectAdmin();
        Enable(admin);
        Assert.Equal(0x0004_0004UL, Run(admin, Sqe.SetFeatures(0x07, 0x00FF_00FF)).Result);
        Assert.Equal(0x0004_0004UL, Run(admin, Sqe.GetFeatures(0x07)).Result);
    }

    [Fact]
    public void NumberOfQueues_IsFixedOnceAnIoQueueExists_UntilAControllerReset()
    {
        using var host = new TestHost();
        var (admin, _, _, _, _) = host.ConnectAll();
        Fails(Run(admin, Sqe.SetFeatures(0x07, 0x0001_0001)), NvmeStatus.CommandSequenceError);
        Assert.Equal(0x0007_0007UL, Run(admin, Sqe.GetFeatures(0x07)).Result);
        Ok(Run(admin, Sqe.PropertySet(ControllerProperties.Cc, 0x00460060))); // CC.EN 1 -> 0: the I/O queue goes
        Enable(admin);
        Assert.Equal(0x0007_0007UL, Run(admin, Sqe.SetFeatures(0x07, 0x0001_0001)).Result);
    }

    [Fact]
    public void Aerl_IsTheNumberOfOutstandingAsyncEventRequestsMinusOne()
    {
        using var host = new TestHost(new TargetOptions { AsyncEventRequestLimit = 1 });
        var (admin, _, _) = host.ConnectAdmin();
        Enable(admin);
        Assert.False(admin.ExecuteAsync(Sqe.Create(AdminOpcode.AsyncEventRequest), default).IsCompleted);
        Assert.False(admin.ExecuteAsync(Sqe.Create(AdminOpcode.AsyncEventRequest), default).IsCompleted);
        Fails(Run(admin, Sqe.Create(AdminOpcode.AsyncEventRequest)), NvmeStatus.AsyncEventRequestLimitExceeded);
    }

    [Fact]
    public void AMaxcmdOf65536Entries_IsReportedAs65535_NotZero()
    {
        // MAXCMD is 16 bits; 0 would make Linux 6.1 wrap SQSIZE to 65535.
        using var host = new TestHost(new TargetOptions { MaxQueueEntries = 65536 });
        var (admin, _, _) = host.ConnectAdmin();
        Enable(admin);
        Assert.Equal(0xFFFF, U16(Identify(admin, IdentifyCns.Controller), 514));
        Assert.Equal(0xFFFFUL, Run(admin, Sqe.PropertyGet(ControllerProperties.Cap, true)).Result & 0xFFFF);
    }

    [Theory]
    [InlineData(IoOpcode.Write)]
    [InlineData(IoOpcode.Read)]
    [InlineData(IoOpcode.ZoneAppend)]
    [InlineData(IoOpcode.Compare)]
    public void NlbBeyondMdts_IsInvalidField_WhateverTheBufferLength(byte opcode)
    {
        using var host = new TestHost();
        var (_, _, io, _, _) = host.ConnectAll();
        // MDTS 7: 512 KiB = 128 blocks of 4 KiB; a one-block buffer with NLB 129.
        Fails(Run(io, Sqe.ReadWrite(opcode, 1, 0, 129), new byte[4096]), NvmeStatus.InvalidField);
        Fails(Run(io, Sqe.ReadWrite(opcode, 1, 0, 128), new byte[4096]), NvmeStatus.DataSglLengthInvalid);
    }
}

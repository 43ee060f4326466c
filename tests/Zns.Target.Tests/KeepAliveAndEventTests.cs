using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests;

public sealed class KeepAliveAndEventTests
{
    [Fact]
    public async Task KeepAliveExpiry_DestroysControllerAndAbortsEveryQueue()
    {
        using var host = new TestHost();
        var (admin, _, io, adminTransport, ioTransport) = host.ConnectAll(katoMs: 150);
        ValueTask<CompletionQueueEntry> aer = admin.ExecuteAsync(Sqe.Create(AdminOpcode.AsyncEventRequest), default);
        Assert.False(aer.IsCompleted);

        await adminTransport.Aborted.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await ioTransport.Aborted.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal("keep-alive timeout", adminTransport.AbortReason);
        Assert.Equal(0, host.Target.Subsystem.ControllerCount);
        // The parked AER is released (its response is dropped by the closed transport).
        await aer.AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        // The queues are dead for good.
        Fails(Run(io, Sqe.Create(IoOpcode.Flush, 1)), NvmeStatus.CommandSequenceError);
    }

    /// <summary>
    /// A controller with injected fatal status (stall) is hung: its own keep-alive timer destroys nothing, so the
    /// host's Keep Alive timeout is what detects it (as a Linux host's "queue 0: timeout").
    /// </summary>
    [Fact]
    public async Task StalledFatalController_DoesNotExpireItsOwnKeepAlive()
    {
        using var host = new TestHost();
        var (admin, _, _, adminTransport, ioTransport) = host.ConnectAll(katoMs: 150);
        Assert.Equal(1, host.Target.Subsystem.InjectControllerFatal(FatalBehavior.Stall));
        ValueTask<CompletionQueueEntry> keepAlive = admin.ExecuteAsync(Sqe.Create(AdminOpcode.KeepAlive), default);
        await Task.Delay(1000, TestContext.Current.CancellationToken);
        Assert.False(keepAlive.IsCompleted);
        Assert.Equal(0, adminTransport.AbortCount);
        Assert.Equal(0, ioTransport.AbortCount);
        Assert.Equal(1, host.Target.Subsystem.FatalControllerCount);
    }

    [Fact]
    public async Task KeepAliveCommands_KeepTheControllerAlive()
    {
        using var host = new TestHost();
        var (admin, transport, _) = host.ConnectAdmin(katoMs: 300);
        Enable(admin);
        for (int i = 0; i < 8; i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
            Ok(Run(admin, Sqe.Create(AdminOpcode.KeepAlive)));
        }
        Assert.Equal(0, transport.AbortCount);
        Assert.Equal(1, host.Target.Subsystem.ControllerCount);
    }

    [Fact]
    public void KeepAliveWithoutKato_IsKeepAliveTimeoutInvalid()
    {
        using var host = new TestHost();
        var (admin, _, _) = host.ConnectAdmin(katoMs: 0);
        Enable(admin);
        CompletionQueueEntry cqe = Run(admin, Sqe.Create(AdminOpcode.KeepAlive));
        Assert.Equal(0x1A, cqe.Status.Sc);
        Assert.Equal(0, cqe.Status.Sct);
        Assert.True(cqe.Status.Dnr);
    }

    [Fact]
    public void AsyncEventRequests_AreLimitedToAerlPlusOne()
    {
        using var host = new TestHost();
        var (admin, _, _) = host.ConnectAdmin();
        Enable(admin);
        var parked = new List<ValueTask<CompletionQueueEntry>>();
        for (int i = 0; i < 4; i++)
        {
            ValueTask<CompletionQueueEntry> vt = admin.ExecuteAsync(Sqe.Create(AdminOpcode.AsyncEventRequest), default);
            Assert.False(vt.IsCompleted);
            parked.Add(vt);
        }
        Fails(Run(admin, Sqe.Create(AdminOpcode.AsyncEventRequest)), NvmeStatus.AsyncEventRequestLimitExceeded);
    }

    [Fact]
    public async Task NamespaceChange_CompletesAerOnlyWhenEnabled_AndMasksUntilLogRead()
    {
        using var host = new TestHost();
        var (admin, _, _) = host.ConnectAdmin();
        Enable(admin);
        SubmissionQueueEntry aerSqe = Sqe.Create(AdminOpcode.AsyncEventRequest);
        ValueTask<CompletionQueueEntry> aer = admin.ExecuteAsync(aerSqe, default);

        // Not enabled: nothing happens.
        host.Target.Subsystem.NotifyNamespaceChanged(1);
        Assert.False(aer.IsCompleted);

        Ok(Run(admin, Sqe.SetFeatures(FeatureId.AsyncEventConfiguration, 0x100)));
        host.Target.Subsystem.NotifyNamespaceChanged(1);
        CompletionQueueEntry done = await aer.AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Ok(done);
        Assert.Equal(aerSqe.CommandId, done.CommandId);
        Assert.Equal(0x0004_0002UL, done.Result); // notice, NS attribute changed, LID 04h

        // Masked until the host reads the Changed Namespace List without RAE.
        ValueTask<CompletionQueueEntry> next = admin.ExecuteAsync(Sqe.Create(AdminOpcode.AsyncEventRequest), default);
        host.Target.Subsystem.NotifyNamespaceChanged(1);
        Assert.False(next.IsCompleted);
        byte[] list = new byte[4096];
        Ok(Run(admin, Sqe.GetLogPage(LogPageId.ChangedNamespaceList, 4096), list));
        Assert.Equal(1u, U32(list, 0));
        Assert.Equal(0u, U32(list, 4));
        host.Target.Subsystem.NotifyNamespaceChanged(1);
        Assert.Equal(0x0004_0002UL, (await next.AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken)).Result);
    }

    [Fact]
    public void EventWithoutParkedAer_IsDeliveredToTheNextOne()
    {
        using var host = new TestHost();
        var (admin, _, _) = host.ConnectAdmin();
        Enable(admin);
        Ok(Run(admin, Sqe.SetFeatures(FeatureId.AsyncEventConfiguration, 0x100)));
        host.Target.Subsystem.NotifyNamespaceChanged(1);
        CompletionQueueEntry cqe = Run(admin, Sqe.Create(AdminOpcode.AsyncEventRequest));
        Assert.Equal(0x0004_0002UL, cqe.Result);
    }
}

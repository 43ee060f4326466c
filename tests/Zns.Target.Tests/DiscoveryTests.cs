using System.Net;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests;

public sealed class DiscoveryTests
{
    [Fact]
    public void NvmeDiscoverSequence()
    {
        using var host = new TestHost();
        host.Target.SetListenerAddress(new IPEndPoint(IPAddress.Parse("192.0.2.10"), 4420));
        var (admin, _, cntlid) = host.ConnectAdmin(katoMs: 0, subNqn: TargetOptions.DiscoveryNqn);
        Enable(admin);

        byte[] id = Identify(admin, IdentifyCns.Controller);
        Assert.Equal(2, id[111]);        // CNTRLTYPE discovery
        Assert.Equal(cntlid, U16(id, 78));
        Assert.Equal(TargetOptions.DiscoveryNqn, WireText.ReadNulTerminated(id.AsSpan(768, 256)));
        Assert.Equal(0x00100001u, U32(id, 536));

        // Header first (NUMD 4 = 20 bytes), then the entries from LPO 1024, as libnvme reads it.
        byte[] header = new byte[20];
        Ok(Run(admin, Sqe.GetLogPage(LogPageId.Discovery, 20), header));
        ulong genctr = U64(header, 0);
        Assert.Equal(2UL, U64(header, 8));
        byte[] entries = new byte[2048];
        Ok(Run(admin, Sqe.GetLogPage(LogPageId.Discovery, 2048, offset: 1024), entries));

        Assert.Equal(3, entries[0]);                // TCP
        Assert.Equal(1, entries[1]);                // IPv4
        Assert.Equal(2, entries[2]);                // NVM subsystem
        Assert.Equal(2, entries[3] & 3);            // secure channel not required
        Assert.Equal(1, U16(entries, 4));           // PORTID
        Assert.Equal(0xFFFF, U16(entries, 6));      // CNTLID
        Assert.Equal(32, U16(entries, 8));          // ASQSZ
        Assert.Equal("4420", WireText.ReadNulTerminated(entries.AsSpan(32, 32)));
        Assert.Equal(host.Target.Subsystem.Nqn, WireText.ReadNulTerminated(entries.AsSpan(256, 256)));
        Assert.Equal("192.0.2.10", WireText.ReadNulTerminated(entries.AsSpan(512, 256)));
        Assert.Equal(0, entries[768]);              // TSAS SECTYPE none
        Assert.Equal(3, entries[1024 + 2]);         // the discovery subsystem itself
        Assert.Equal(TargetOptions.DiscoveryNqn, WireText.ReadNulTerminated(entries.AsSpan(1024 + 256, 256)));

        Ok(Run(admin, Sqe.GetLogPage(LogPageId.Discovery, 20), header));
        Assert.Equal(genctr, U64(header, 0));

        // The discovery controller only serves its own log and Identify Controller.
        Fails(Run(admin, Sqe.GetLogPage(LogPageId.SmartHealth, 512), new byte[512]), NvmeStatus.InvalidField);
        Fails(Run(admin, Sqe.Identify(IdentifyCns.ActiveNamespaceList), new byte[4096]), NvmeStatus.InvalidField);
        Fails(Run(admin, Sqe.SetFeatures(FeatureId.NumberOfQueues, 0)), NvmeStatus.InvalidField);
        Ok(Run(admin, Sqe.SetFeatures(FeatureId.KeepAliveTimer, 0)));

        // No I/O queues on a discovery controller.
        var (io, _) = host.Open();
        CompletionQueueEntry ioc = Run(io, Sqe.Connect(1, 31), Sqe.ConnectData(TargetOptions.DiscoveryNqn, HostNqn, cntlid));
        Fails(ioc, NvmeStatus.ConnectInvalidParameters);
        Assert.Equal(42UL, ioc.Result);
    }

    [Fact]
    public void ListenerChange_BumpsGenerationAndIpv6IsReported()
    {
        using var host = new TestHost();
        host.Target.SetListenerAddress("192.0.2.10", 4420);
        var (admin, _, _) = host.ConnectAdmin(katoMs: 0, subNqn: TargetOptions.DiscoveryNqn);
        Enable(admin);
        byte[] before = new byte[20];
        Ok(Run(admin, Sqe.GetLogPage(LogPageId.Discovery, 20), before));
        host.Target.SetListenerAddress("2001:db8::1", 4420);
        byte[] log = new byte[2048];
        Ok(Run(admin, Sqe.GetLogPage(LogPageId.Discovery, 2048), log));
        Assert.NotEqual(U64(before, 0), U64(log, 0));
        Assert.Equal(2, log[1024 + 1]);
        Assert.Equal("2001:db8::1", WireText.ReadNulTerminated(log.AsSpan(1024 + 512, 256)));
    }

    [Fact]
    public void HostsOutsideTheAllowList_DoNotSeeTheSubsystem()
    {
        using var host = new TestHost(new TargetOptions { AllowedHostNqns = ["nqn.2014-08.org.nvmexpress:uuid:friend"] });
        host.Target.SetListenerAddress("192.0.2.10", 4420);
        var (admin, _, _) = host.ConnectAdmin(katoMs: 0, subNqn: TargetOptions.DiscoveryNqn);
        Enable(admin);
        byte[] header = new byte[20];
        Ok(Run(admin, Sqe.GetLogPage(LogPageId.Discovery, 20), header));
        Assert.Equal(1UL, U64(header, 8));
    }
}

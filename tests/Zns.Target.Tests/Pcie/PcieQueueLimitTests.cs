using Zns.Nvme;
using Zns.Target.Controller;

namespace Zns.Target.Tests.Pcie;

/// <summary>QEMU's mqes and max_ioqpairs on the PCIe controller: CAP.MQES bounds the I/O queues, not the admin queue.</summary>
public sealed class PcieQueueLimitTests
{
    [Fact]
    public void SmallMqes_BoundsIoQueues_WhileTheAdminQueueKeepsLinuxs32Entries()
    {
        using var f = new PcieFixture(new TargetOptions { MaxQueueEntries = 8, MaxIoQueues = 2 });
        Assert.Equal(7UL, f.Driver.Device.Read64(0) & 0xFFFF);
        f.Driver.Enable(adminEntries: 32);
        f.Driver.WaitReady();
        Assert.Equal(NvmeStatus.InvalidQueueSize.WithDnr(), f.Driver.CreateCq(1, 9, vector: 1));
        Assert.True(f.Driver.CreateCq(1, 8, vector: 1).IsSuccess);
        Assert.True(f.Driver.CreateCq(2, 8, vector: 2).IsSuccess);
        Assert.False(f.Driver.CreateCq(3, 8, vector: 3).IsSuccess); // max_ioqpairs 2
    }
}

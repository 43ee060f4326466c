using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Target.Tests.Pcie;

/// <summary>Interrupt Coalescing (Feature 08h) and Interrupt Vector Configuration (09h) on the PCIe function, with a clock the test moves.</summary>
public sealed class InterruptCoalescingTests
{
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => Interlocked.Read(ref _ticks);
        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }

    private static CompletionQueueEntry Feature(PcieFixture f, byte opcode, uint cdw10, uint cdw11)
    {
        SubmissionQueueEntry sqe = f.Driver.NewSqe(opcode);
        sqe.SetCdw(10, cdw10);
        sqe.SetCdw(11, cdw11);
        return f.Driver.Execute(0, sqe);
    }

    private static void WriteOneBlock(PcieFixture f, ulong page, ulong lba)
    {
        SubmissionQueueEntry w = f.Driver.NewSqe(IoOpcode.Write, 1);
        NvmeTestDriver.SetPrp(ref w, page);
        w.SetCdw10_11(lba);
        f.Driver.Submit(1, in w);
        Assert.True(f.Driver.WaitCompletion(1).Status.IsSuccess);
    }

    private static void Eventually(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            Thread.Sleep(1);
        }
    }

    private static void Stays(Func<bool> condition, string what)
    {
        // The clock does not move and the threshold is not reached, so nothing may fire however long this waits.
        Thread.Sleep(100);
        Assert.True(condition(), what);
    }

    [Fact]
    public void Completions_wait_for_the_threshold_or_the_aggregation_time()
    {
        using var f = new PcieFixture();
        var clock = new ManualClock();
        f.Function.Clock = clock;
        f.EnableWithIoQueue();
        ulong page = f.Ram.Alloc(4096);
        // THR = 2 (three completions), TIME = 10 (1 ms).
        Assert.Equal(NvmeStatus.Success, Feature(f, AdminOpcode.SetFeatures, 0x08, 0x0A02).Status);
        Assert.Equal(0x0A02UL, Feature(f, AdminOpcode.GetFeatures, 0x08, 0).Result);
        int before = f.Signals[1].Count;

        WriteOneBlock(f, page, 0);
        WriteOneBlock(f, page, 1);
        Stays(() => f.Signals[1].Count == before, "two completions of three held back");
        WriteOneBlock(f, page, 2);
        Eventually(() => f.Signals[1].Count == before + 1, "the third completion fires the vector");

        WriteOneBlock(f, page, 3);
        Stays(() => f.Signals[1].Count == before + 1, "one completion waits for the aggregation time");
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Eventually(() => f.Signals[1].Count == before + 2, "the aggregation time fires the vector");

        // CD on vector 1: every completion interrupts again.
        Assert.Equal(NvmeStatus.Success, Feature(f, AdminOpcode.SetFeatures, 0x09, 1 | 1u << 16).Status);
        Assert.Equal(1UL | 1UL << 16, Feature(f, AdminOpcode.GetFeatures, 0x09, 1).Result);
        // SEL 01b (default): coalescing enabled on vector 1 whatever was set, always disabled on the admin vector.
        Assert.Equal(1UL, Feature(f, AdminOpcode.GetFeatures, 0x09 | 1u << 8, 1).Result);
        Assert.Equal(1UL << 16, Feature(f, AdminOpcode.GetFeatures, 0x09 | 1u << 8, 0).Result);
        WriteOneBlock(f, page, 4);
        Eventually(() => f.Signals[1].Count == before + 3, "a vector with CD set is not coalesced");
        Assert.Equal(4UL + 1, f.Namespace.GetZone(0).WritePointer);
    }

    [Fact]
    public void A_threshold_or_time_of_zero_means_no_coalescing()
    {
        using var f = new PcieFixture();
        f.Function.Clock = new ManualClock();
        f.EnableWithIoQueue();
        ulong page = f.Ram.Alloc(4096);
        Assert.Equal(NvmeStatus.Success, Feature(f, AdminOpcode.SetFeatures, 0x08, 0x0007).Status); // THR 7, TIME 0
        int before = f.Signals[1].Count;
        WriteOneBlock(f, page, 0);
        Eventually(() => f.Signals[1].Count == before + 1, "TIME 0: the completion interrupts at once");
    }

    [Fact]
    public void Feature_commands_are_checked()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        // The admin vector is never coalesced: Get Features 09h reports CD for it.
        Assert.Equal(1UL << 16, Feature(f, AdminOpcode.GetFeatures, 0x09, 0).Result);
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), Feature(f, AdminOpcode.GetFeatures, 0x09, (uint)f.Function.MsixVectorCount).Status);
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), Feature(f, AdminOpcode.SetFeatures, 0x09, 0xFFFF).Status);
        Assert.Equal(NvmeStatus.FeatureIdNotSaveable.WithDnr(), Feature(f, AdminOpcode.SetFeatures, 0x08 | 0x8000_0000, 0x0101).Status);
        Assert.Equal(4UL, Feature(f, AdminOpcode.GetFeatures, 0x08 | 3 << 8, 0).Result); // SEL 3: changeable
        Assert.Equal(NvmeStatus.Success, Feature(f, AdminOpcode.SetFeatures, 0x08, 0x0101).Status);
        Assert.Equal(0UL, Feature(f, AdminOpcode.GetFeatures, 0x08 | 1 << 8, 0).Result);     // SEL 1: default
        Assert.Equal(0x0101UL, Feature(f, AdminOpcode.GetFeatures, 0x08, 0).Result);
    }
}

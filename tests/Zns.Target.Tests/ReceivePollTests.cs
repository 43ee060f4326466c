// Every wait in these tests is bounded by an explicit timeout, so test cancellation tokens add nothing.
#pragma warning disable xUnit1051

using Zns.Target.Tcp;
using static Zns.Target.Tests.ZnsLoopback;

namespace Zns.Target.Tests;

/// <summary>Runs alone: it measures the CPU time of the process's receive threads.</summary>
[CollectionDefinition(nameof(ReceiveThreadCpuMeasurement), DisableParallelization = true)]
public sealed class ReceiveThreadCpuMeasurement;

/// <summary>
/// <see cref="TargetTransportOptions.ReceivePoll"/>: a receive thread keeps polling for the host's next bytes for
/// that long and then sleeps in the kernel as without it; commands are answered the same either way.
/// </summary>
[Collection(nameof(ReceiveThreadCpuMeasurement))]
public sealed class ReceivePollTests
{
    [Theory]
    [InlineData(-1)]
    [InlineData(1_000_001)]
    public void Validate_RejectsAPollOutside0To1Second(int microseconds)
    {
        var e = Assert.Throws<ArgumentException>(() => new TargetTransportOptions { ReceivePoll = TimeSpan.FromMicroseconds(microseconds) }.Validate());
        Assert.Contains("ReceivePoll", e.Message);
    }

    [Fact]
    public async Task CommandsAreAnswered_WithinThePollWindow_AndAfterTheThreadWentToSleep()
    {
        await using var env = Start(transport: new TargetTransportOptions { ReceivePoll = TimeSpan.FromMilliseconds(50) });
        await using var host = await env.ConnectHostAsync();
        byte[] data = new byte[BlockSize], back = new byte[BlockSize];
        // Gaps of 0 and 10 ms find the thread polling, 200 ms asleep in its receive.
        int[] gapsMs = [0, 10, 200, 10, 200];
        for (int i = 0; i < gapsMs.Length; i++)
        {
            await Task.Delay(gapsMs[i]);
            Random.Shared.NextBytes(data);
            Assert.True((await host.Io.WriteAsync(1, (ulong)i, 1, data)).Status.IsSuccess);
            Assert.True((await host.Io.ReadAsync(1, (ulong)i, 1, back)).Status.IsSuccess);
            Assert.Equal(data, back);
        }
    }

    /// <summary>
    /// After a command, the connection's receive thread spends CPU for the poll window (it is polling, not sleeping)
    /// and none once the window is over.
    /// </summary>
    [Fact]
    public async Task TheReceiveThreadPollsForTheWindow_ThenSleeps()
    {
        var window = TimeSpan.FromMilliseconds(800);
        await using var env = Start(transport: new TargetTransportOptions { ReceivePoll = window });
        await using var host = await env.ConnectHostAsync();
        byte[] block = new byte[BlockSize];
        // Let every receive thread's window run out, then measure one command's window, then the quiet after it.
        await Task.Delay(window * 2);
        double idle0 = ReceiveThreadsCpuSeconds();
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        double idle = ReceiveThreadsCpuSeconds() - idle0;

        Assert.True((await host.Io.ReadAsync(1, 0, 1, block)).Status.IsSuccess);
        double polling0 = ReceiveThreadsCpuSeconds();
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        double polling = ReceiveThreadsCpuSeconds() - polling0;

        await Task.Delay(window);
        double after0 = ReceiveThreadsCpuSeconds();
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        double after = ReceiveThreadsCpuSeconds() - after0;

        // 500 ms of polling on one thread is up to 0.5 s of CPU (less when it yields to a busy machine); a sleeping
        // thread uses none (clock ticks are 10 ms).
        Assert.True(polling > 0.1, $"receive threads used {polling:F2} s of CPU in 0.5 s of their poll window");
        Assert.True(idle < 0.05, $"receive threads used {idle:F2} s of CPU in 0.5 s while idle");
        Assert.True(after < 0.05, $"receive threads used {after:F2} s of CPU in 0.5 s after their poll window");
    }

    /// <summary>User + system CPU seconds of this process's threads named zns-recv (Linux /proc).</summary>
    private static double ReceiveThreadsCpuSeconds()
    {
        long ticks = 0;
        foreach (string task in Directory.GetDirectories("/proc/self/task"))
        {
            string stat;
            try { stat = File.ReadAllText(Path.Combine(task, "stat")); }
            catch (IOException) { continue; } // the thread ended
            int open = stat.IndexOf('('), close = stat.LastIndexOf(')');
            if (stat[(open + 1)..close] != "zns-recv")
                continue;
            // Fields after the name: state is field 3, utime 14, stime 15.
            string[] fields = stat[(close + 2)..].Split(' ');
            ticks += long.Parse(fields[11]) + long.Parse(fields[12]);
        }
        return ticks / 100.0; // USER_HZ
    }
}

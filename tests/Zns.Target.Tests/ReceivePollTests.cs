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
    /// After a command, the connection's receive thread stays runnable for the poll window (it polls and yields; it
    /// does not sleep) and sleeps in its receive once the window is over. The thread's scheduler state is sampled
    /// rather than its CPU time, so a machine busy with other work (where a runnable thread gets little CPU) gives the
    /// same answer.
    /// </summary>
    [Fact]
    public async Task TheReceiveThreadPollsForTheWindow_ThenSleeps()
    {
        var window = TimeSpan.FromMilliseconds(800);
        await using var env = Start(transport: new TargetTransportOptions { ReceivePoll = window });
        await using var host = await env.ConnectHostAsync();
        byte[] block = new byte[BlockSize];
        // Let every receive thread's window run out, then sample the quiet, one command's window, and the quiet after it.
        await Task.Delay(window * 2);
        double idle = await RunnableShareAsync(TimeSpan.FromMilliseconds(400));

        Assert.True((await host.Io.ReadAsync(1, 0, 1, block)).Status.IsSuccess);
        double polling = await RunnableShareAsync(TimeSpan.FromMilliseconds(400));

        await Task.Delay(window);
        double after = await RunnableShareAsync(TimeSpan.FromMilliseconds(400));

        Assert.True(polling > 0.5, $"a receive thread was runnable in {polling:P0} of the samples in its poll window");
        Assert.True(idle < 0.1, $"a receive thread was runnable in {idle:P0} of the samples while idle");
        Assert.True(after < 0.1, $"a receive thread was runnable in {after:P0} of the samples after its poll window");
    }

    /// <summary>The share of samples, every 10 ms for <paramref name="duration"/>, in which a zns-recv thread was runnable.</summary>
    private static async Task<double> RunnableShareAsync(TimeSpan duration)
    {
        int samples = 0, runnable = 0;
        long end = Environment.TickCount64 + (long)duration.TotalMilliseconds;
        while (Environment.TickCount64 < end)
        {
            samples++;
            if (AnyReceiveThreadRunnable())
                runnable++;
            await Task.Delay(10);
        }
        return (double)runnable / samples;
    }

    /// <summary>Whether a thread of this process named zns-recv is running or ready to run (state R in Linux /proc).</summary>
    private static bool AnyReceiveThreadRunnable()
    {
        foreach (string task in Directory.GetDirectories("/proc/self/task"))
        {
            string stat;
            try { stat = File.ReadAllText(Path.Combine(task, "stat")); }
            catch (IOException) { continue; } // the thread ended
            int open = stat.IndexOf('('), close = stat.LastIndexOf(')');
            if (stat[(open + 1)..close] == "zns-recv" && stat[close + 2] == 'R')
                return true;
        }
        return false;
    }
}

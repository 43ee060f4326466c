using System.Diagnostics;
using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Benchmarks.Target;

/// <summary>
/// `pipe`: the no-socket target path (<see cref="PipeTarget"/>) in a plain loop for a fixed time, printing the time
/// per 4 KiB I/O. The loop has no harness around it, so a sampling profiler attached to it (perf with
/// DOTNET_PerfMapEnabled=1) sees only the target's code.
/// <c>--warmup S</c> runs the same loop untimed first, so that the JIT's tiering has ended before the timed part: in a
/// TCG guest, where the JIT itself runs emulated, that takes tens of seconds.
/// Run: <c>dotnet run -c Release --project bench/Zns.Benchmarks -- pipe [--seconds S] [--warmup S] [--workload read|write|none] [--depth N] [--bounce]</c>.
/// </summary>
internal static class PipeLoop
{
    public static int Run(string[] args)
    {
        double seconds = 5;
        double warmup = 0;
        string workload = "read";
        int depth = 1;
        bool bounce = false;
        for (int i = 0; i < args.Length; i += 2)
        {
            if (args[i] == "--bounce")
            {
                bounce = true;
                i--;
                continue;
            }
            if (i + 1 >= args.Length)
            {
                Console.Error.WriteLine($"pipe: {args[i]} needs a value");
                return 2;
            }
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture); break;
                case "--warmup": warmup = double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture); break;
                case "--workload": workload = args[i + 1]; break;
                case "--depth": depth = int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"pipe: unknown option {args[i]}"); return 2;
            }
        }
        if (workload is not ("read" or "write" or "none") || depth is < 1 or > 64)
        {
            Console.Error.WriteLine("pipe: --workload read|write|none, --depth 1..64");
            return 2;
        }
        // --bounce: every batch also sends one byte through a child process (cat) and waits for it back, so each I/O
        // pays two process switches, as a target behind a socket does; --workload none measures the bounce alone.
        using var child = bounce ? System.Diagnostics.Process.Start(new ProcessStartInfo("cat")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false,
        }) : null;
        var toChild = child?.StandardInput.BaseStream;
        var fromChild = child?.StandardOutput.BaseStream;
        using var target = new PipeTarget();
        bool write = workload == "write";
        var batch = PipeBatch.Of(depth, i => PipeTarget.IoCapsule(write ? IoOpcode.Write : IoOpcode.Read, (ushort)i,
            (ulong)i * 97 % (ulong)Layout.ZoneBlocks, 1, Layout.BlockSize, inCapsule: write));
        long Loop(double loopSeconds)
        {
            long done = 0;
            var loopClock = Stopwatch.StartNew();
            long loopEnd = (long)(loopSeconds * Stopwatch.Frequency);
            while (loopClock.ElapsedTicks < loopEnd)
            {
                for (int round = 0; round < 256; round++)
                {
                    if (write)
                        batch.AimWrites(target.Namespace, Layout.WriteZoneBase);
                    if (toChild is not null)
                    {
                        toChild.WriteByte(1);
                        toChild.Flush();
                        if (fromChild!.ReadByte() != 1)
                            throw new InvalidOperationException("the bounce process ended");
                    }
                    if (workload != "none" && target.Exchange(batch.Bytes) != depth)
                        throw new InvalidOperationException("missing responses");
                    done += depth;
                }
            }
            return done;
        }

        if (warmup > 0)
            Loop(warmup);
        var clock = Stopwatch.StartNew();
        double cpu0 = Process.GetCurrentProcess().TotalProcessorTime.TotalMicroseconds;
        long items0 = ThreadPool.CompletedWorkItemCount;
        long ios = Loop(seconds);
        double elapsed = clock.Elapsed.TotalMicroseconds;
        double cpu = Process.GetCurrentProcess().TotalProcessorTime.TotalMicroseconds - cpu0;
        double items = (double)(ThreadPool.CompletedWorkItemCount - items0) / ios;
        child?.StandardInput.Close();
        child?.WaitForExit();
        Console.WriteLine($"pipe {workload} 4K depth {depth}{(bounce ? " with a process bounce" : "")}{(warmup > 0 ? $" after {warmup:G} s of warm-up" : "")}: {ios} I/Os in {elapsed / 1e6:F1} s, {elapsed * 1000 / ios:F0} ns per I/O, {cpu * 1000 / ios:F0} ns CPU per I/O, {items:F3} thread-pool work items per I/O");
        return 0;
    }
}

using BenchmarkDotNet.Running;
using Zns.Benchmarks.Core;
using Zns.Benchmarks.Footprint;
using Zns.Benchmarks.Pcie;
using Zns.Benchmarks.Target;
using Zns.Benchmarks.Timing;

// `core`, `target`, `pipe`, `pcie` and `footprint` are hand-run side-by-side measurements that print one table; anything else goes to
// BenchmarkDotNet (for example `--filter *Core*`).
return args.FirstOrDefault() switch
{
    "core" => CoreSideBySide.Run(args[1..]),
    "target" => await TargetLoopback.RunAsync(args[1..]),
    "pipe" => PipeLoop.Run(args[1..]),
    "pcie" => PcieBenchmark.Run(args[1..]),
    "timing" => await TimingValidation.RunAsync(args[1..]),
    "footprint" => await FootprintBenchmark.RunAsync(args[1..]),
    TargetLoopback.ClientMode => await TargetClient.RunAsync(args[1..]),
    _ => Run(args),
};

static int Run(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(CoreFixture).Assembly).Run(args);
    return 0;
}

using System.Diagnostics;
using System.Globalization;
using System.Net;
using Zns.Core.Zones;
using Zns.Target;
using Zns.Target.Controller;
using Zns.Target.Tcp;

namespace Zns.Benchmarks.Target;

/// <summary>
/// <c>target</c> mode: the TestKit initiator (in a child process) drives an <see cref="NvmeTarget"/> behind an
/// <see cref="NvmeTcpListener"/> on 127.0.0.1 in this process, then the same byte counts go through a bare
/// request/response loop, for each workload and connection count. Server allocations are this process's
/// <see cref="GC.GetTotalAllocatedBytes(bool)"/> delta over the client's measurement window, divided by I/Os; the
/// client's own allocations are reported separately.
/// </summary>
internal static class TargetLoopback
{
    public const string ClientMode = "target-client";

    private sealed record Result(long Ops, double Seconds, long ServerAllocated, long ClientAllocated, int Gen0, int Gen1, int Gen2,
        double ServerCpu, double ClientCpu)
    {
        public double ServerMicrosPerIo => ServerCpu * 1e6 / Ops;
        public double ClientMicrosPerIo => ClientCpu * 1e6 / Ops;
        public double OpsPerSecond => Ops / Seconds;
        public double ServerBytesPerIo => Ops == 0 ? 0 : ServerAllocated / (double)Ops;
        public double ClientBytesPerIo => Ops == 0 ? 0 : ClientAllocated / (double)Ops;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        double seconds = 3, warmup = 1;
        string backstore = "ram";
        int[] connections = [1, 4];
        string? only = null;
        string[] clients = ["c"];
        AllocationSampler? sampler = null;
        bool control = false;
        var receivePoll = TimeSpan.Zero;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--warmup": warmup = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--backstore": backstore = args[++i]; break;
                case "--connections": connections = [.. args[++i].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture))]; break;
                case "--only": only = args[++i]; break;
                case "--client": clients = args[++i] == "both" ? ["c", "net"] : [args[i]]; break;
                case "--trace-allocations": sampler = new AllocationSampler(); break;
                case "--control": control = true; break;
                case "--receive-poll": receivePoll = TimeSpan.FromMicroseconds(int.Parse(args[++i], CultureInfo.InvariantCulture)); break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; usage: target [--seconds N] [--warmup N] [--backstore ram|shm] [--connections 1,4] [--only TEXT] [--client c|net|both] [--trace-allocations] [--control] [--receive-poll MICROSECONDS]");
                    return 2;
            }
        }

        if (clients.Any(c => c is not ("c" or "net")))
        {
            Console.Error.WriteLine("--client must be c, net or both");
            return 2;
        }
        string? nativeClient = clients.Contains("c") ? NativeClient.Build() : null;
        var options = new NamespaceOptions { LogicalBlockSize = Layout.BlockSize, ZoneSize = Layout.ZoneSize };
        string? shmPath = null;
        ZonedNamespace ns;
        if (backstore == "shm")
        {
            shmPath = $"/dev/shm/zns-bench-target-{Environment.ProcessId}.img";
            Zns.Core.Storage.FileBackstore.Create(shmPath, Layout.NamespaceSize, preallocate: false);
            ns = ZonedNamespace.OpenFile(shmPath, options, StateMode.Ephemeral);
        }
        else
        {
            ns = ZonedNamespace.CreateInMemory(Layout.NamespaceSize, options);
        }
        try
        {
            var data = new byte[Layout.BlockSize];
            Random.Shared.NextBytes(data);
            for (ulong lba = 0; lba < (ulong)(Layout.ReadZones * Layout.ZoneBlocks); lba++)
                ns.Write(lba, data);
            if (backstore == "ram")
                TouchWriteZones(ns);

            using var target = new NvmeTarget(new TargetOptions(), [ns]);
            await using var listener = new NvmeTcpListener(new TargetTransportOptions { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0), ReceivePoll = receivePoll }, target);
            listener.Start();
            target.SetListenerAddress(listener.LocalEndPoint);
            // --control: the management endpoint runs as under zns serve, its OpenTelemetry exporter listening to
            // every instrument, so the server's bytes per I/O include metrics collection.
            await using var controlServer = control
                ? await Zns.Control.ControlServer.StartAsync(new Zns.Control.ControlAddress(new IPEndPoint(IPAddress.Loopback, 0), null), null, new Zns.Control.ControlService(target))
                : null;
            if (controlServer is not null)
            {
                Console.WriteLine($"control endpoint (metrics collected): {controlServer.Address}");
            }
            await using var bare = new BareEchoServer();

            var workloads = new List<Workload>();
            foreach (int c in connections)
            {
                workloads.Add(new(WorkloadKind.Read, 4096, 1, c));
                workloads.Add(new(WorkloadKind.Read, 4096, 32, c));
                workloads.Add(new(WorkloadKind.Write, 4096, 1, c));
                workloads.Add(new(WorkloadKind.Write, 4096, 32, c));
                workloads.Add(new(WorkloadKind.Append, 4096, 32, c));
                workloads.Add(new(WorkloadKind.Write, 128 * 1024, 1, c));
            }
            if (only is not null)
                workloads.RemoveAll(w => !w.Name.Contains(only, StringComparison.OrdinalIgnoreCase));

            Console.WriteLine($"target: NVMe/TCP over 127.0.0.1 vs a bare request/response loop; {backstore} namespace, 16 MiB zones, " +
                $"{warmup:0.#} s warm-up + {seconds:0.#} s per row");
            Console.WriteLine($".NET {Environment.Version}, {Environment.ProcessorCount} CPUs; client in a child process: " +
                "c = bench/client/zns-bench-client.c (gcc -O2), net = TestKit initiator");
            Console.WriteLine();
            string header = $"{"workload",-16} {"conn",4} {"cli",3} {"nvme ops/s",11} {"MB/s",8} {"bare ops/s",11} {"MB/s",8} {"ratio",6} {"srv B/IO",9} {"cli B/IO",9} {"bare srv",9} {"srv GC 0/1/2",13} {"srv us/IO",9} {"cli us/IO",9} {"bare srv",8} {"bare cli",8}";
            Console.WriteLine(header);
            Console.WriteLine(new string('-', header.Length));
            foreach (var w in workloads)
            foreach (string client in clients)
            {
                ResetWriteZones(ns);
                GC.Collect();
                GC.WaitForPendingFinalizers();
                if (sampler is not null) sampler.Recording = true;
                string? clientPath = client == "c" ? nativeClient : null;
                var nvme = await MeasureAsync(clientPath, "nvme", listener.LocalEndPoint.Port, target.Subsystem.Nqn, warmup, seconds, w);
                if (sampler is not null) sampler.Recording = false;
                GC.Collect();
                var raw = await MeasureAsync(clientPath, "bare", bare.EndPoint.Port, "-", warmup, seconds, w);
                double mb = w.Size / 1e6;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{w.Name,-16} {w.Connections,4} {client,3} {nvme.OpsPerSecond,11:N0} {nvme.OpsPerSecond * mb,8:N0} {raw.OpsPerSecond,11:N0} {raw.OpsPerSecond * mb,8:N0} " +
                    $"{nvme.OpsPerSecond / raw.OpsPerSecond,6:0.00} {nvme.ServerBytesPerIo,9:0.0} {nvme.ClientBytesPerIo,9:0.0} {raw.ServerBytesPerIo,9:0.0} " +
                    $"{$"{nvme.Gen0}/{nvme.Gen1}/{nvme.Gen2}",13} {nvme.ServerMicrosPerIo,9:0.00} {nvme.ClientMicrosPerIo,9:0.00} {raw.ServerMicrosPerIo,8:0.00} {raw.ClientMicrosPerIo,8:0.00}"));
                if (sampler is not null)
                    Console.WriteLine($"    server allocation samples: {sampler.TakeTop(5)}");
            }
        }
        finally
        {
            ns.Dispose();
            if (shmPath is not null)
            {
                File.Delete(shmPath);
            }
        }
        return 0;
    }

    /// <summary>
    /// Writes every zone the write and append rows use once, so their RAM chunks exist before any row is measured:
    /// otherwise the first rows pay the kernel's first-touch page faults (a cost of a new RAM namespace, paid once in
    /// its life), which the bare loop never does.
    /// </summary>
    private static void TouchWriteZones(ZonedNamespace ns)
    {
        var chunk = new byte[128 * 1024]; // within MDTS
        int blocks = chunk.Length / Layout.BlockSize;
        foreach (var (first, count) in new[] { (Layout.WriteZoneBase, Layout.WriteZoneCount), (Layout.AppendZoneBase, Layout.AppendZoneCount) })
        for (int z = first; z < first + count; z++)
        {
            ulong start = ns.Geometry.ZoneStart((uint)z);
            for (int b = 0; b < Layout.ZoneBlocks; b += blocks)
                if (ns.Write(start + (ulong)b, chunk) is { IsSuccess: false } status)
                    throw new InvalidOperationException($"touching zone {z}: {status}");
        }
        ResetWriteZones(ns);
    }

    private static void ResetWriteZones(ZonedNamespace ns)
    {
        for (int z = Layout.WriteZoneBase; z < Layout.WriteZoneBase + Layout.WriteZoneCount; z++)
            ns.ZoneManagementSend(ns.Geometry.ZoneStart((uint)z), ZoneSendAction.Reset, selectAll: false);
        for (int z = Layout.AppendZoneBase; z < Layout.AppendZoneBase + Layout.AppendZoneCount; z++)
            ns.ZoneManagementSend(ns.Geometry.ZoneStart((uint)z), ZoneSendAction.Reset, selectAll: false);
    }

    private static async Task<Result> MeasureAsync(string? nativeClient, string mode, int port, string nqn, double warmup, double seconds, Workload w)
    {
        var psi = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string self = Environment.ProcessPath!;
        if (nativeClient is not null)
        {
            psi.FileName = nativeClient;
        }
        else if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            psi.FileName = self;
            psi.ArgumentList.Add(typeof(TargetLoopback).Assembly.Location);
        }
        else
        {
            psi.FileName = self;
        }
        if (nativeClient is null)
            psi.ArgumentList.Add(ClientMode);
        foreach (string a in new[] { mode, port.ToString(CultureInfo.InvariantCulture), nqn,
                     warmup.ToString(CultureInfo.InvariantCulture), seconds.ToString(CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        foreach (string a in w.ToArgs().Split(' '))
            psi.ArgumentList.Add(a);

        using var child = Process.Start(psi)!;
        var stderr = child.StandardError.ReadToEndAsync();
        long alloc0 = 0;
        int g0 = 0, g1 = 0, g2 = 0;
        TimeSpan cpu0 = default;
        Result? result = null;
        while (await child.StandardOutput.ReadLineAsync() is { } line)
        {
            if (line == "START")
            {
                g0 = GC.CollectionCount(0); g1 = GC.CollectionCount(1); g2 = GC.CollectionCount(2);
                alloc0 = GC.GetTotalAllocatedBytes(precise: true);
                cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            }
            else if (line.StartsWith("END ", StringComparison.Ordinal))
            {
                long alloc1 = GC.GetTotalAllocatedBytes(precise: true);
                TimeSpan cpu1 = Process.GetCurrentProcess().TotalProcessorTime;
                int e0 = GC.CollectionCount(0), e1 = GC.CollectionCount(1), e2 = GC.CollectionCount(2);
                string[] p = line.Split(' ');
                result = new Result(long.Parse(p[1], CultureInfo.InvariantCulture), double.Parse(p[2], CultureInfo.InvariantCulture),
                    alloc1 - alloc0, long.Parse(p[3], CultureInfo.InvariantCulture), e0 - g0, e1 - g1, e2 - g2,
                    (cpu1 - cpu0).TotalSeconds, double.Parse(p[4], CultureInfo.InvariantCulture));
            }
        }
        await child.WaitForExitAsync();
        string err = await stderr;
        if (result is null || child.ExitCode != 0)
            throw new InvalidOperationException($"client ({mode} {w.Name} x{w.Connections}) failed with exit code {child.ExitCode}: {err}");
        return result;
    }
}

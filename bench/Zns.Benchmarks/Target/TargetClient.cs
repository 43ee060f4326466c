using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Zns.Nvme;
using Zns.Protocol;
using Zns.TestKit;

namespace Zns.Benchmarks.Target;

/// <summary>
/// The load generator, run as a child process so the server's allocations can be measured alone in the parent. It
/// connects, warms up, prints <c>START</c>, measures for the window, prints <c>END ops seconds allocated cpu-seconds</c> and exits.
/// </summary>
internal static class TargetClient
{
    private const int CacheLine = 16; // longs between per-worker counters

    public static async Task<int> RunAsync(string[] args)
    {
        // target-client nvme|bare PORT NQN WARMUP SECONDS KIND SIZE QD CONNS
        string mode = args[0];
        var endPoint = new IPEndPoint(IPAddress.Loopback, int.Parse(args[1], CultureInfo.InvariantCulture));
        string nqn = args[2];
        double warmup = double.Parse(args[3], CultureInfo.InvariantCulture);
        double seconds = double.Parse(args[4], CultureInfo.InvariantCulture);
        var w = Workload.Parse(args.AsSpan(5));

        int workers = w.QueueDepth * w.Connections;
        long[] counters = new long[(workers + 1) * CacheLine];
        using var stop = new CancellationTokenSource();
        Task[] running;
        Func<ValueTask> cleanup;
        if (mode == "nvme")
            (running, cleanup) = await StartNvmeAsync(endPoint, nqn, w, counters, stop.Token);
        else
            (running, cleanup) = StartBare(endPoint, w, counters, stop.Token);

        await Task.Delay(TimeSpan.FromSeconds(warmup));
        long ops0 = Sum(counters);
        long alloc0 = GC.GetTotalAllocatedBytes(precise: true);
        TimeSpan cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        long t0 = Stopwatch.GetTimestamp();
        Console.WriteLine("START");
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        long ops1 = Sum(counters);
        long t1 = Stopwatch.GetTimestamp();
        long alloc1 = GC.GetTotalAllocatedBytes(precise: true);
        TimeSpan cpu1 = Process.GetCurrentProcess().TotalProcessorTime;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"END {ops1 - ops0} {(t1 - t0) / (double)Stopwatch.Frequency:0.000000} {alloc1 - alloc0} {(cpu1 - cpu0).TotalSeconds:0.000000}"));
        stop.Cancel();
        try { await Task.WhenAll(running); }
        catch (OperationCanceledException) { }
        await cleanup();
        return 0;
    }

    private static long Sum(long[] counters)
    {
        long s = 0;
        for (int i = CacheLine; i < counters.Length; i += CacheLine) s += Volatile.Read(ref counters[i]);
        return s;
    }

    // ------------------------------------------------------------------ NVMe/TCP through the TestKit initiator

    private static async Task<(Task[], Func<ValueTask>)> StartNvmeAsync(IPEndPoint ep, string nqn, Workload w, long[] counters, CancellationToken stop)
    {
        var admin = await NvmeTcpInitiator.ConnectAsync(ep);
        Check(await admin.ConnectAdminQueueAsync(nqn, Layout.HostNqn, Layout.HostId), "admin connect");
        ushort cntlid = admin.ControllerId;
        Check(await admin.PropertySetAsync(0x14, 0x00460061), "CC.EN");      // CC: enable, 64-byte SQEs, 16-byte CQEs
        while (((await admin.PropertyGetAsync(0x1C, false)).Result & 1) == 0)  // CSTS.RDY
            await Task.Delay(1);
        var queues = new NvmeTcpInitiator[w.Connections];
        for (int c = 0; c < w.Connections; c++)
        {
            queues[c] = await NvmeTcpInitiator.ConnectAsync(ep);
            Check(await queues[c].ConnectIoQueueAsync((ushort)(c + 1), cntlid, nqn, Layout.HostNqn, Layout.HostId), "io connect");
        }
        var append = new AppendRing();
        var tasks = new List<Task>();
        for (int c = 0; c < w.Connections; c++)
        {
            for (int q = 0; q < w.QueueDepth; q++)
            {
                int worker = c * w.QueueDepth + q;
                var io = queues[c];
                tasks.Add(w.Kind switch
                {
                    WorkloadKind.Read => ReadWorkerAsync(io, w, worker, counters, stop),
                    WorkloadKind.Write => WriteWorkerAsync(io, w, worker, counters, stop),
                    _ => AppendWorkerAsync(io, w, append, worker, counters, stop),
                });
            }
        }
        return ([.. tasks], async () =>
        {
            foreach (var q in queues) await q.DisposeAsync();
            await admin.DisposeAsync();
        });
    }

    private static void Check(CompletionQueueEntry cqe, string what)
    {
        if (!cqe.Status.IsSuccess) throw new InvalidOperationException($"{what}: {cqe.Status}");
    }

    private static async Task ReadWorkerAsync(NvmeTcpInitiator io, Workload w, int worker, long[] counters, CancellationToken stop)
    {
        var buffer = new byte[w.Size];
        int nlb = w.Size / Layout.BlockSize;
        long span = (long)Layout.ReadZones * Layout.ZoneBlocks;
        long lba = (long)worker * 997 * nlb % span;
        while (!stop.IsCancellationRequested)
        {
            Check(await io.ReadAsync(1, (ulong)lba, nlb, buffer), "read");
            counters[(worker + 1) * CacheLine]++;
            lba += nlb;
            if (lba + nlb > span) lba = 0;
        }
    }

    private static async Task WriteWorkerAsync(NvmeTcpInitiator io, Workload w, int worker, long[] counters, CancellationToken stop)
    {
        var data = new byte[w.Size];
        Random.Shared.NextBytes(data);
        int nlb = w.Size / Layout.BlockSize;
        // One zone per outstanding write, as a host with zone write locking does.
        ulong zslba = (ulong)(Layout.WriteZoneBase + worker) * Layout.ZoneBlocks;
        int offset = 0;
        while (!stop.IsCancellationRequested)
        {
            if (offset + nlb > Layout.ZoneBlocks)
            {
                Check(await io.ZoneManagementSendAsync(1, zslba, 4), "reset");
                offset = 0;
            }
            Check(await io.WriteAsync(1, zslba + (ulong)offset, nlb, data), "write");
            offset += nlb;
            counters[(worker + 1) * CacheLine]++;
        }
    }

    /// <summary>Every worker of every connection appends to one current zone; the first to find it full moves everyone on.</summary>
    private sealed class AppendRing
    {
        public int Current;
    }

    private static async Task AppendWorkerAsync(NvmeTcpInitiator io, Workload w, AppendRing ring, int worker, long[] counters, CancellationToken stop)
    {
        var data = new byte[w.Size];
        Random.Shared.NextBytes(data);
        int nlb = w.Size / Layout.BlockSize;
        int failures = 0;
        while (!stop.IsCancellationRequested)
        {
            int current = Volatile.Read(ref ring.Current);
            ulong zslba = (ulong)(Layout.AppendZoneBase + current % Layout.AppendZoneCount) * Layout.ZoneBlocks;
            var cqe = await io.ZoneAppendAsync(1, zslba, nlb, data);
            if (cqe.Status.IsSuccess)
            {
                failures = 0;
                counters[(worker + 1) * CacheLine]++;
                continue;
            }
            if (++failures > 100) Check(cqe, "append");
            if (Interlocked.CompareExchange(ref ring.Current, current + 1, current) == current)
            {
                // Zones are reset one ahead of use, so the zone everyone moves to is already empty.
                ulong ahead = (ulong)(Layout.AppendZoneBase + (current + 2) % Layout.AppendZoneCount) * Layout.ZoneBlocks;
                Check(await io.ZoneManagementSendAsync(1, ahead, 4), "reset");
            }
        }
    }

    // ------------------------------------------------------------------ bare loop

    private static (Task[], Func<ValueTask>) StartBare(IPEndPoint ep, Workload w, long[] counters, CancellationToken stop)
    {
        var sockets = new Socket[w.Connections];
        var tasks = new List<Task>();
        for (int c = 0; c < w.Connections; c++)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            s.Connect(ep);
            sockets[c] = s;
            var credits = new SemaphoreSlim(w.QueueDepth, w.QueueDepth);
            tasks.Add(BareSendAsync(s, w, credits, stop));
            tasks.Add(BareReceiveAsync(s, w, credits, counters, c, stop));
        }
        return ([.. tasks], () =>
        {
            foreach (var s in sockets) s.Dispose();
            return ValueTask.CompletedTask;
        });
    }

    private static async Task BareSendAsync(Socket s, Workload w, SemaphoreSlim credits, CancellationToken stop)
    {
        byte[] request = new byte[w.BareRequestLength];
        BinaryPrimitives.WriteInt32LittleEndian(request, w.BareRequestLength - Layout.CapsuleCmd);
        BinaryPrimitives.WriteInt32LittleEndian(request.AsSpan(4), w.BareResponseLength);
        try
        {
            while (true)
            {
                await credits.WaitAsync(stop);
                ReadOnlyMemory<byte> data = request;
                while (!data.IsEmpty) data = data[await s.SendAsync(data, SocketFlags.None, stop)..];
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }

    private static async Task BareReceiveAsync(Socket s, Workload w, SemaphoreSlim credits, long[] counters, int connection, CancellationToken stop)
    {
        byte[] buffer = new byte[256 * 1024];
        long received = 0;
        int responseLength = w.BareResponseLength;
        // Counters are per worker slot; a bare connection counts in its first slot.
        int slot = (connection * w.QueueDepth + 1) * CacheLine;
        try
        {
            while (true)
            {
                int n = await s.ReceiveAsync(buffer, SocketFlags.None, stop);
                if (n == 0) return;
                received += n;
                int done = (int)(received / responseLength);
                if (done > 0)
                {
                    received -= (long)done * responseLength;
                    counters[slot] += done;
                    credits.Release(done);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }
}

using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Zns.Benchmarks.Target;

/// <summary>
/// Samples this process's allocations through the runtime's GC AllocationTick events (one event per ~100 KB
/// allocated, with the type that crossed the threshold), to say what the server allocates when the per-I/O delta is
/// not zero. Only active with <c>--trace-allocations</c>.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private readonly ConcurrentDictionary<string, long> _bytes = new();
    public volatile bool Recording;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!Recording || e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null)
            return;
        int typeIndex = e.PayloadNames!.IndexOf("TypeName");
        int amountIndex = e.PayloadNames.IndexOf("AllocationAmount64");
        string type = typeIndex >= 0 ? e.Payload[typeIndex] as string ?? "?" : "?";
        long amount = amountIndex >= 0 ? Convert.ToInt64(e.Payload[amountIndex], System.Globalization.CultureInfo.InvariantCulture) : 0;
        _bytes.AddOrUpdate(type, amount, (_, v) => v + amount);
    }

    public string TakeTop(int count)
    {
        var top = _bytes.OrderByDescending(kv => kv.Value).Take(count).Select(kv => $"{kv.Key} ~{kv.Value / 1024} KiB");
        string s = string.Join("; ", top);
        _bytes.Clear();
        return s;
    }
}

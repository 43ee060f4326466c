using System.Diagnostics;

namespace Zns.Target.Metrics;

/// <summary>
/// Fixed log-linear latency buckets in nanoseconds (16 exact buckets below 16 ns, then 8 per power of two, so any
/// value is within 12.5% of its bucket), counted with <see cref="Interlocked"/> into a caller's <c>long[]</c>: no
/// lock and no allocation per command. Percentiles come from the difference of two copies of the counts.
/// </summary>
public static class LatencyHistogram
{
    /// <summary>Buckets per histogram: up to 2^42 ns (about 73 minutes); anything longer lands in the last one.</summary>
    public const int Buckets = 16 + (42 - 4) * 8;

    /// <summary>The bucket of <paramref name="nanoseconds"/>.</summary>
    public static int Index(long nanoseconds)
    {
        if (nanoseconds < 16)
        {
            return nanoseconds < 0 ? 0 : (int)nanoseconds;
        }
        int e = 63 - (int)long.LeadingZeroCount(nanoseconds);
        int sub = (int)(nanoseconds >> (e - 3)) & 7;
        return Math.Min(16 + (e - 4) * 8 + sub, Buckets - 1);
    }

    /// <summary>The middle of a bucket, in microseconds.</summary>
    public static double MidpointUs(int index)
    {
        if (index < 16)
        {
            return index / 1000.0;
        }
        int e = (index - 16) / 8 + 4;
        int sub = (index - 16) % 8;
        double low = (8 + sub) * Math.Pow(2, e - 3);
        double width = Math.Pow(2, e - 3);
        return (low + width / 2) / 1000.0;
    }

    /// <summary>Counts one latency of <paramref name="stopwatchTicks"/> into the histogram starting at <paramref name="offset"/>.</summary>
    internal static void Record(long[] counts, int offset, long stopwatchTicks)
    {
        long ns = Stopwatch.Frequency == 1_000_000_000 ? stopwatchTicks : (long)(stopwatchTicks * (1e9 / Stopwatch.Frequency));
        Interlocked.Increment(ref counts[offset + Index(ns)]);
    }

    /// <summary>
    /// The <paramref name="quantile"/> (0..1) of the counts, in microseconds rounded to 0.1, as the middle of the
    /// bucket holding it; 0 when there are no counts.
    /// </summary>
    public static double Percentile(ReadOnlySpan<long> counts, long total, double quantile)
    {
        if (total <= 0)
        {
            return 0;
        }
        long rank = Math.Max(1, (long)Math.Ceiling(quantile * total));
        long seen = 0;
        for (int i = 0; i < counts.Length; i++)
        {
            seen += counts[i];
            if (seen >= rank)
            {
                return Math.Round(MidpointUs(i), 1);
            }
        }
        return Math.Round(MidpointUs(counts.Length - 1), 1);
    }
}

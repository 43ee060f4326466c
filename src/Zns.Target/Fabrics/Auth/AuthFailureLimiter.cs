using System.Net;
using Zns.Target.Controller;

namespace Zns.Target.Fabrics.Auth;

/// <summary>
/// Counts failed authentication attempts per source address (the port is ignored: every connection gets a new one)
/// and refuses further attempts from an address with <see cref="TargetOptions.MaxAuthenticationFailures"/>
/// failures within <see cref="TargetOptions.AuthenticationFailureWindow"/>.
/// </summary>
/// <remarks>Memory is bounded: at most <see cref="MaxTrackedAddresses"/> addresses are remembered, the ones whose
/// failures have all expired are forgotten first.</remarks>
internal sealed class AuthFailureLimiter(int maxFailures, TimeSpan window, TimeProvider time)
{
    internal const int MaxTrackedAddresses = 4096;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Queue<long>> _failures = new(StringComparer.Ordinal);

    /// <summary>The address part of a "address:port" text (IPv4 or [IPv6]); the text itself otherwise.</summary>
    public static string SourceAddress(string remoteEndPoint) =>
        IPEndPoint.TryParse(remoteEndPoint, out IPEndPoint? ep) ? ep.Address.ToString() : remoteEndPoint;

    public bool IsBlocked(string remoteEndPoint)
    {
        string address = SourceAddress(remoteEndPoint);
        lock (_lock)
        {
            return _failures.TryGetValue(address, out Queue<long>? q) && Expire(q) >= maxFailures;
        }
    }

    public void RecordFailure(string remoteEndPoint)
    {
        string address = SourceAddress(remoteEndPoint);
        lock (_lock)
        {
            if (!_failures.TryGetValue(address, out Queue<long>? q))
            {
                if (_failures.Count >= MaxTrackedAddresses)
                {
                    Prune();
                }
                q = new Queue<long>();
                _failures[address] = q;
            }
            Expire(q);
            q.Enqueue(time.GetTimestamp());
            while (q.Count > maxFailures)
            {
                q.Dequeue();
            }
        }
    }

    private int Expire(Queue<long> q)
    {
        while (q.TryPeek(out long t) && time.GetElapsedTime(t) >= window)
        {
            q.Dequeue();
        }
        return q.Count;
    }

    private void Prune()
    {
        foreach (string key in _failures.Keys.ToArray())
        {
            if (Expire(_failures[key]) == 0)
            {
                _failures.Remove(key);
            }
        }
        if (_failures.Count >= MaxTrackedAddresses)
        {
            // Every slot is busy with recent failures: drop one, losing at most that address's count.
            _failures.Remove(_failures.Keys.First());
        }
    }
}

namespace Zns.Core.Timing;

/// <summary>
/// Pending completions ordered by due time: a binary min-heap over one array that grows (doubling) only when more
/// are pending than ever before, so steady-state scheduling allocates nothing. Not thread-safe.
/// </summary>
/// <typeparam name="T">What is due.</typeparam>
public sealed class TimerQueue<T>(int initialCapacity = 256) where T : class
{
    private (long Due, long Order, T Item)[] _heap = new (long, long, T)[Math.Max(4, initialCapacity)];
    private long _order;

    public int Count { get; private set; }

    /// <summary>The earliest due time, or <see cref="long.MaxValue"/> when nothing is pending.</summary>
    public long NextDue => Count > 0 ? _heap[0].Due : long.MaxValue;

    public void Add(long due, T item)
    {
        if (Count == _heap.Length)
        {
            Array.Resize(ref _heap, _heap.Length * 2);
        }
        // The insertion order breaks ties, so completions due together leave in the order they were scheduled.
        int i = Count++;
        var entry = (due, _order++, item);
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (!Less(entry, _heap[parent]))
            {
                break;
            }
            _heap[i] = _heap[parent];
            i = parent;
        }
        _heap[i] = entry;
    }

    /// <summary>Removes the earliest item if it is due at or before <paramref name="now"/>.</summary>
    public bool TryTakeDue(long now, out T item)
    {
        if (Count == 0 || _heap[0].Due > now)
        {
            item = null!;
            return false;
        }
        item = _heap[0].Item;
        var last = _heap[--Count];
        _heap[Count] = default;
        if (Count > 0)
        {
            int i = 0;
            while (true)
            {
                int child = 2 * i + 1;
                if (child >= Count)
                {
                    break;
                }
                if (child + 1 < Count && Less(_heap[child + 1], _heap[child]))
                {
                    child++;
                }
                if (!Less(_heap[child], last))
                {
                    break;
                }
                _heap[i] = _heap[child];
                i = child;
            }
            _heap[i] = last;
        }
        return true;
    }

    private static bool Less((long Due, long Order, T) a, (long Due, long Order, T) b) =>
        a.Due < b.Due || (a.Due == b.Due && a.Order < b.Order);
}

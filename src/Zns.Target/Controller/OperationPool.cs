namespace Zns.Target.Controller;

/// <summary>A bounded stack of reusable per-command operations (at most one per SQ entry can be outstanding).</summary>
internal sealed class OperationPool<T>(int capacity, Func<T> create) where T : class
{
    private readonly T[] _items = new T[capacity];
    private readonly Lock _lock = new();
    private int _count;

    public T Rent()
    {
        lock (_lock)
        {
            if (_count > 0)
            {
                T item = _items[--_count];
                _items[_count] = null!;
                return item;
            }
        }
        return create();
    }

    public void Return(T item)
    {
        lock (_lock)
        {
            if (_count < _items.Length)
            {
                _items[_count++] = item;
            }
        }
    }
}

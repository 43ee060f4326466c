namespace Zns.Target.Pcie;

/// <summary>Signals one interrupt (an eventfd write in production, a counter in tests).</summary>
public interface IInterruptSignal
{
    /// <summary>Raises the interrupt once.</summary>
    void Signal();

    /// <summary>Releases the signal's resources (closes the eventfd).</summary>
    void Close();
}

/// <summary>
/// MSI-X vectors of the function: the client's trigger for each vector (VFIO_USER_DEVICE_SET_IRQS with eventfds) and
/// the MSI-X table and PBA that BAR4 exposes. QEMU emulates the table and masking itself and reads the PBA from the
/// device; the table here is plain storage for clients that access it directly.
/// </summary>
internal sealed class MsixInterrupts
{
    private readonly Lock _lock = new();
    private readonly IInterruptSignal?[] _triggers;
    private readonly byte[] _table;

    public MsixInterrupts(int vectors)
    {
        _triggers = new IInterruptSignal?[vectors];
        _table = new byte[vectors * 16];
        Reset();
    }

    public int VectorCount => _triggers.Length;

    /// <summary>Table entries start masked (vector control bit 0), as after reset.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            Array.Clear(_table);
            for (int v = 0; v < _triggers.Length; v++)
            {
                _table[v * 16 + 12] = 1;
            }
        }
    }

    /// <summary>Replaces the triggers of vectors [start, start + count) (null entries de-assign); the old ones are closed.</summary>
    public bool SetTriggers(int start, int count, ReadOnlySpan<IInterruptSignal?> triggers)
    {
        if (start < 0 || count < 0 || start > _triggers.Length - count || (triggers.Length != 0 && triggers.Length != count))
        {
            return false;
        }
        lock (_lock)
        {
            for (int i = 0; i < count; i++)
            {
                _triggers[start + i]?.Close();
                _triggers[start + i] = triggers.Length == 0 ? null : triggers[i];
            }
        }
        return true;
    }

    /// <summary>Closes every trigger (disable all, client gone).</summary>
    public void ClearTriggers() => SetTriggers(0, _triggers.Length, []);

    /// <summary>Raises vector <paramref name="vector"/>; nothing happens while no trigger is assigned.</summary>
    public void Raise(int vector)
    {
        // Held while signalling so that SET_IRQS cannot close (and the kernel reuse) the descriptor mid-write.
        lock (_lock)
        {
            if ((uint)vector < (uint)_triggers.Length)
            {
                _triggers[vector]?.Signal();
            }
        }
    }

    /// <summary>BAR4 read: the table, then the PBA (all zero: an interrupt is never left pending here).</summary>
    public void ReadBar(long offset, Span<byte> destination)
    {
        destination.Clear();
        lock (_lock)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                long at = offset + i - PciConfigSpace.MsixTableOffset;
                if (at >= 0 && at < _table.Length)
                {
                    destination[i] = _table[at];
                }
            }
        }
    }

    public void WriteBar(long offset, ReadOnlySpan<byte> source)
    {
        lock (_lock)
        {
            for (int i = 0; i < source.Length; i++)
            {
                long at = offset + i - PciConfigSpace.MsixTableOffset;
                if (at >= 0 && at < _table.Length)
                {
                    _table[at] = source[i];
                }
            }
        }
    }
}

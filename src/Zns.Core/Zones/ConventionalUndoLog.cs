namespace Zns.Core.Zones;

/// <summary>
/// A conventional namespace's blocks written since the last Flush, each with the contents it had then, so a power
/// cut can put back what a volatile write cache would have lost: a cache never destroys data that was flushed
/// before, it only fails to write newer data over it.
/// </summary>
/// <remarks>
/// Preallocated (a fixed number of block copies and an open-addressing index over their LBAs), so a write allocates
/// nothing. When a write needs more copies than are left the namespace makes everything durable (an internal Flush)
/// and the log starts empty. Not synchronized: the caller holds the namespace's undo lock.
/// </remarks>
internal sealed class ConventionalUndoLog
{
    /// <summary>The undo area's default size.</summary>
    public const int DefaultBytes = 4 << 20;

    private readonly int _blockSize;
    private readonly byte[] _data;
    private readonly ulong[] _lbas;
    private readonly bool[] _durableNow;
    private readonly int[] _index; // slot + 1, 0 when free
    private readonly int _mask;

    /// <summary>Room for <paramref name="capacityBlocks"/> block copies.</summary>
    public ConventionalUndoLog(int blockSize, int capacityBlocks)
    {
        _blockSize = blockSize;
        Capacity = capacityBlocks;
        _data = new byte[(long)capacityBlocks * blockSize];
        _lbas = new ulong[capacityBlocks];
        _durableNow = new bool[capacityBlocks];
        int size = 1;
        while (size < capacityBlocks * 2)
        {
            size <<= 1;
        }
        _index = new int[size];
        _mask = size - 1;
    }

    /// <summary>How many block copies the log holds at most.</summary>
    public int Capacity { get; }

    /// <summary>Slots in use (blocks written since the last Flush, FUA-written ones included).</summary>
    public int Count { get; private set; }

    /// <summary>Blocks whose unflushed data a power cut may drop.</summary>
    public int UnflushedCount
    {
        get
        {
            int n = 0;
            for (int i = 0; i < Count; i++)
            {
                n += _durableNow[i] ? 0 : 1;
            }
            return n;
        }
    }

    /// <summary>How many of <paramref name="nlb"/> blocks from <paramref name="slba"/> need a new slot.</summary>
    public int NewSlotsFor(ulong slba, uint nlb)
    {
        int n = 0;
        for (ulong lba = slba; lba < slba + nlb; lba++)
        {
            n += Find(lba) < 0 ? 1 : 0;
        }
        return n;
    }

    /// <summary>
    /// The slot whose copy must take block <paramref name="lba"/>'s current contents before it is overwritten, or an
    /// empty span when the block already has its flushed contents saved. The caller checked there is room.
    /// </summary>
    public Span<byte> SlotToCapture(ulong lba)
    {
        int slot = Find(lba);
        if (slot >= 0)
        {
            if (!_durableNow[slot])
            {
                return default;
            }
            // A FUA write made the block durable since: its contents now are what a cut must put back.
            _durableNow[slot] = false;
            return Copy(slot);
        }
        slot = Count++;
        _lbas[slot] = lba;
        _durableNow[slot] = false;
        int h = Hash(lba);
        while (_index[h] != 0)
        {
            h = (h + 1) & _mask;
        }
        _index[h] = slot + 1;
        return Copy(slot);
    }

    /// <summary>A FUA write made these blocks durable: a cut keeps them as they are now.</summary>
    public void MarkDurable(ulong slba, uint nlb)
    {
        for (ulong lba = slba; lba < slba + nlb; lba++)
        {
            int slot = Find(lba);
            if (slot >= 0)
            {
                _durableNow[slot] = true;
            }
        }
    }

    /// <summary>A Flush: everything is durable.</summary>
    public void Clear()
    {
        if (Count == 0)
        {
            return;
        }
        Array.Clear(_index);
        Count = 0;
    }

    /// <summary>Slot <paramref name="slot"/>'s block, whether it is durable now, and its flushed contents.</summary>
    public (ulong Lba, bool DurableNow) Entry(int slot) => (_lbas[slot], _durableNow[slot]);

    /// <summary>The saved contents of slot <paramref name="slot"/>.</summary>
    public ReadOnlySpan<byte> Saved(int slot) => Copy(slot);

    private Span<byte> Copy(int slot) => _data.AsSpan(slot * _blockSize, _blockSize);

    private int Find(ulong lba)
    {
        for (int h = Hash(lba); _index[h] != 0; h = (h + 1) & _mask)
        {
            if (_lbas[_index[h] - 1] == lba)
            {
                return _index[h] - 1;
            }
        }
        return -1;
    }

    private int Hash(ulong lba) => (int)((lba * 0x9E3779B97F4A7C15UL) >> 40) & _mask;
}

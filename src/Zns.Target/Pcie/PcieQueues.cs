using System.Buffers;
using Zns.Target.Controller;

namespace Zns.Target.Pcie;

/// <summary>An I/O or admin completion queue in guest memory (physically contiguous: CAP.CQR = 1).</summary>
internal sealed class PcieCompletionQueue(ushort id, ulong baseAddress, int entries, bool interruptsEnabled, int vector)
{
    public readonly Lock Lock = new();
    public ushort Id { get; } = id;
    public ulong Base { get; } = baseAddress;
    public int Entries { get; } = entries;
    public bool InterruptsEnabled { get; } = interruptsEnabled;
    public int Vector { get; } = vector;

    // Guarded by Lock.
    public int Tail;
    public bool Phase = true;
    /// <summary>Last CQ head the host reported (doorbell or shadow doorbell).</summary>
    public int Head;
    /// <summary>Entries promised to commands already fetched, so that a completion always has a free slot.</summary>
    public int Reserved;
    public int SubmissionQueues;
    public volatile bool Deleted;
    /// <summary>Completions posted since the last interrupt (coalesced per polling pass).</summary>
    public bool InterruptPending;
    /// <summary>Completions held back by Interrupt Coalescing, and when the first of them was posted.</summary>
    public int Coalesced;
    public long FirstCoalescedAt;

    /// <summary>Free entries: one slot always stays empty (full = tail one behind head).</summary>
    public int FreeLocked => Entries - 1 - ((Tail - Head + Entries) % Entries) - Reserved;
}

/// <summary>A submission queue in guest memory with the NVMe queue handler that executes its commands.</summary>
internal sealed class PcieSubmissionQueue
{
    /// <summary>Most bounce buffers of one size the queue keeps for reuse.</summary>
    private const int MaxPooledPerSize = 256;

    private readonly CommandSlot[] _free;
    private int _freeCount;
    private readonly Lock _slotLock = new();

    public PcieSubmissionQueue(ushort id, ulong baseAddress, int entries, PcieCompletionQueue cq, SubmissionQueue handler, int maxDataLength)
    {
        Id = id;
        Base = baseAddress;
        Entries = entries;
        Cq = cq;
        Handler = handler;
        // The queue's own pool, not ArrayPool.Shared: timed completions return buffers on thread-pool threads, and
        // the shared pool's per-thread caches then strand them there, so the poller's next rent would allocate.
        // Twice the data: a separate metadata buffer (at most as long again) is gathered after it.
        BouncePool = ArrayPool<byte>.Create(Math.Max(2 * maxDataLength, 16), Math.Min(entries, MaxPooledPerSize));
        _free = new CommandSlot[entries];
        for (int i = 0; i < entries; i++)
        {
            _free[i] = new CommandSlot(this, maxDataLength);
        }
        _freeCount = entries;
    }

    public ushort Id { get; }
    public ulong Base { get; }
    public int Entries { get; }
    public PcieCompletionQueue Cq { get; }
    /// <summary>The controller's side of this queue: it executes the commands and keeps the SQ head.</summary>
    public SubmissionQueue Handler { get; }
    /// <summary>Bounce buffers for data that is not contiguous in this process (bounded by the queue's entries in use).</summary>
    public ArrayPool<byte> BouncePool { get; }

    /// <summary>Set when the queue is deleted or its controller reset: nothing more is fetched, late completions are dropped.</summary>
    public volatile bool Deleted;

    /// <summary>Commands fetched and not yet completed.</summary>
    public int Outstanding => Entries - Volatile.Read(ref _freeCount);

    public CommandSlot? RentSlot()
    {
        lock (_slotLock)
        {
            return _freeCount == 0 ? null : _free[--_freeCount];
        }
    }

    public void ReturnSlot(CommandSlot slot)
    {
        lock (_slotLock)
        {
            _free[_freeCount++] = slot;
        }
    }
}

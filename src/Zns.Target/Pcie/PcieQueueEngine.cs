using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Execution;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;

namespace Zns.Target.Pcie;

/// <summary>
/// Queue processing of the PCIe function: one poller thread fetches commands from every submission queue while
/// there is work, and sleeps when idle (woken by a doorbell write). With Doorbell Buffer Config the host writes
/// tails and heads to shadow doorbells in its memory; the poller reads those, and before sleeping writes the
/// EventIdx entries so that the next submission rings the real doorbell — a busy guest then never exits to ring.
/// </summary>
public sealed partial class NvmePcieFunction
{
    /// <summary>Idle passes spun (yielding) before the poller sleeps.</summary>
    private const int SpinPasses = 64;
    /// <summary>Longest sleep: a safety net for a host that updates only a shadow doorbell.</summary>
    private const int SleepMs = 50;
    private const int CqeSize = CompletionQueueEntry.Size;

    private readonly PcieSubmissionQueue?[] _ioSq;
    private readonly PcieCompletionQueue?[] _ioCq;
    private readonly Thread _poller;
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
    private readonly CommandExecutor _executor;
    private volatile bool _stopping;
    private bool _dbbufEnabled;
    private ulong _shadowBase, _eventIdxBase;

    /// <summary>Commands completed since creation (all queues); for tests and statistics.</summary>
    public long CompletedCommands => Interlocked.Read(ref _completed);
    private long _completed;

    private void WriteDoorbell(int index, uint value)
    {
        if ((uint)index >= (uint)_doorbells.Length)
        {
            _logger.BadDoorbell(Name, index, value, "no such queue");
            return;
        }
        Volatile.Write(ref _doorbells[index], value);
        _wake.Set();
    }

    private void StopQueue(ushort qid)
    {
        if (qid < _ioSq.Length && _ioSq[qid] is { } sq)
        {
            sq.Deleted = true;
            if (qid == 0)
            {
                // The admin queue stops at a controller reset: nothing, a parked AER's completion included, is posted.
                sq.Cq.Deleted = true;
            }
        }
    }

    /// <summary>Nothing more is fetched from any queue or posted to any completion queue.</summary>
    private void StopAllQueuesLocked()
    {
        foreach (PcieCompletionQueue? cq in _ioCq)
        {
            if (cq is not null)
            {
                cq.Deleted = true;
            }
        }
        foreach (PcieSubmissionQueue? sq in _ioSq)
        {
            if (sq is not null)
            {
                sq.Deleted = true;
            }
        }
    }

    /// <summary>
    /// Controller reset, queue side: nothing more is fetched or posted, commands still moving data are waited for (so
    /// that none touches guest memory after the reset completes), and every queue, the doorbell buffer and the
    /// interrupt coalescing settings are gone.
    /// </summary>
    private void DeleteAllQueuesLocked(string reason)
    {
        StopAllQueuesLocked();
        for (int i = 0; i < _ioSq.Length; i++)
        {
            if (_ioSq[i] is { } sq)
            {
                WaitForOutstanding(sq);
                if (i != 0)
                {
                    sq.Handler.Dispose();
                }
                _ioSq[i] = null;
            }
            _ioCq[i] = null;
        }
        _dbbufEnabled = false;
        _coalescing.Reset();
        Array.Clear(_doorbells);
        _logger.Reset(Name, reason);
    }

    /// <summary>Waits (bounded) until the queue's fetched commands have completed.</summary>
    private static void WaitForOutstanding(PcieSubmissionQueue sq)
    {
        long deadline = Environment.TickCount64 + 5000;
        while (sq.Outstanding > 0 && Environment.TickCount64 < deadline)
        {
            Thread.Sleep(1);
        }
    }

    // ---- Poller ----------------------------------------------------------------------------------------------

    private void PollLoop()
    {
        int idle = 0;
        while (!_stopping)
        {
            bool worked;
            lock (_stateLock)
            {
                worked = PollOnceGuardedLocked();
            }
            if (worked)
            {
                idle = 0;
                continue;
            }
            if (++idle < SpinPasses)
            {
                Thread.Yield();
                continue;
            }
            _wake.Reset();
            bool armed, coalescing;
            lock (_stateLock)
            {
                // Arm the event indexes, then look once more: a submission that raced with arming is seen here,
                // any later one rings the doorbell and sets _wake.
                armed = ArmEventIndexesLocked();
                worked = PollOnceGuardedLocked();
                coalescing = AnyCoalescedLocked();
            }
            if (!worked && armed && !coalescing)
            {
                _wake.Wait(SleepMs);
            }
            else if (coalescing)
            {
                // Held-back interrupts are due within TIME (at most 25.5 ms): keep polling until they fire.
                Thread.Yield();
            }
            idle = worked ? 0 : SpinPasses;
        }
    }

    /// <summary>
    /// A poll pass that survives a defect: command exceptions are the executor's (Internal Error for that command);
    /// anything else thrown while fetching or posting makes this controller fatal (CSTS.CFS, as a device that hit an
    /// internal error), logged once, and the process and the other functions go on.
    /// </summary>
    private bool PollOnceGuardedLocked()
    {
        try
        {
            return PollOnceLocked();
        }
        catch (Exception e)
        {
            _logger.PollerFailed(e, Name);
            SetFatalLocked($"internal error in the queue poller: {e.GetType().Name}");
            return false;
        }
    }

    /// <summary>One pass over every queue; true when anything was fetched.</summary>
    private bool PollOnceLocked()
    {
        if (_controller is not { IsFatal: false })
        {
            return false;
        }
        int pin = Memory.Enter();
        bool worked = false;
        try
        {
            for (int qid = 0; qid < _ioSq.Length; qid++)
            {
                if (_ioSq[qid] is { Deleted: false } sq)
                {
                    worked |= ProcessSubmissionQueue(sq);
                }
            }
            for (int qid = 0; qid < _ioCq.Length; qid++)
            {
                if (_ioCq[qid] is { } cq)
                {
                    RaiseIfPending(cq);
                }
            }
        }
        finally
        {
            Memory.Exit(pin);
        }
        return worked;
    }

    private bool ArmEventIndexesLocked()
    {
        if (!_dbbufEnabled)
        {
            return true;
        }
        int pin = Memory.Enter();
        try
        {
            for (int qid = 1; qid < _ioSq.Length; qid++)
            {
                if (_ioSq[qid] is { Deleted: false } sq && ReadShadow(2 * qid, out uint tail))
                {
                    WriteEventIndex(2 * qid, tail);
                }
                if (_ioCq[qid] is { } cq && ReadShadow(2 * qid + 1, out uint head))
                {
                    WriteEventIndex(2 * qid + 1, head);
                }
            }
            Interlocked.MemoryBarrier();
            return true;
        }
        finally
        {
            Memory.Exit(pin);
        }
    }

    private unsafe bool ReadShadow(int index, out uint value)
    {
        value = 0;
        if (!Memory.TryTranslate(_shadowBase + (ulong)index * 4, 4, write: false, out byte* p))
        {
            return false;
        }
        value = Volatile.Read(ref *(uint*)p);
        return true;
    }

    private unsafe void WriteEventIndex(int index, uint value)
    {
        if (Memory.TryTranslate(_eventIdxBase + (ulong)index * 4, 4, write: true, out byte* p))
        {
            Volatile.Write(ref *(uint*)p, value);
        }
    }

    /// <summary>The SQ tail (shadow doorbell for I/O queues once configured, else the register).</summary>
    private int ReadTail(PcieSubmissionQueue sq)
    {
        uint tail;
        if (!(_dbbufEnabled && sq.Id != 0 && ReadShadow(2 * sq.Id, out tail)))
        {
            tail = Volatile.Read(ref _doorbells[2 * sq.Id]);
        }
        if (tail >= (uint)sq.Entries)
        {
            // Invalid Doorbell Write Value: the write is ignored, the queue stays where it was.
            int head = sq.Handler.Head;
            _logger.BadDoorbell(Name, 2 * sq.Id, tail, $"SQ tail past the queue size {sq.Entries}");
            Volatile.Write(ref _doorbells[2 * sq.Id], (uint)head);
            return head;
        }
        return (int)tail;
    }

    private void RefreshHeadLocked(PcieCompletionQueue cq)
    {
        uint head;
        if (!(_dbbufEnabled && cq.Id != 0 && ReadShadow(2 * cq.Id + 1, out head)))
        {
            head = Volatile.Read(ref _doorbells[2 * cq.Id + 1]);
        }
        if (head < (uint)cq.Entries)
        {
            cq.Head = (int)head;
        }
    }

    private bool ProcessSubmissionQueue(PcieSubmissionQueue sq)
    {
        int tail = ReadTail(sq);
        bool worked = false;
        PcieCompletionQueue cq = sq.Cq;
        // The controller's submission queue keeps the one SQ head: every fetched entry is consumed there, executed or
        // refused, before the next one is fetched.
        while (sq.Handler.Head != tail && !sq.Deleted && !sq.Handler.Controller.IsFatal)
        {
            lock (cq.Lock)
            {
                RefreshHeadLocked(cq);
                if (cq.FreeLocked <= 0)
                {
                    break;
                }
                cq.Reserved++;
            }
            CommandSlot? slot = sq.RentSlot();
            if (slot is null)
            {
                lock (cq.Lock)
                {
                    cq.Reserved--;
                }
                break;
            }
            int head = sq.Handler.Head;
            if (!Memory.Read(sq.Base + (ulong)head * SubmissionQueueEntry.Size, slot.Command.Bytes))
            {
                lock (cq.Lock)
                {
                    cq.Reserved--;
                }
                sq.ReturnSlot(slot);
                SetFatalLocked($"submission queue {sq.Id} entry {head} is outside guest memory");
                return worked;
            }
            worked = true;
            Dispatch(sq, slot);
        }
        return worked;
    }

    /// <summary>
    /// Maps one command's data (the command data table gives its direction and length; PRPs or an SGL say where it
    /// is) and has the executor run it. A command whose data cannot be mapped is refused with the mapping's status.
    /// </summary>
    private void Dispatch(PcieSubmissionQueue sq, CommandSlot slot)
    {
        ref SubmissionQueueEntry sqe = ref slot.Command;
        slot.Owner = this;
        slot.Length = 0;
        slot.SegmentCount = 0;
        slot.Pin = -1;
        SubmissionQueue queue = sq.Handler;
        // PSDT: 00b PRPs, 01b an SGL for the data (MPTR a metadata buffer), 10b SGLs for both; this namespace has no
        // metadata, so 01b and 10b read the same data SGL. Admin commands use PRPs (as Linux sends them).
        int psdt = sqe.Flags >> 6;
        if (psdt == 3 || (psdt != 0 && sq.Id == 0))
        {
            CommandExecutor.Refuse(queue, slot, NvmeStatus.InvalidField.WithDnr());
            return;
        }
        DataTransfer transfer = queue.TransferOf(in sqe);
        if (transfer.Direction == DataDirection.Bidirectional)
        {
            // No command this controller implements moves data both ways.
            CommandExecutor.Refuse(queue, slot, NvmeStatus.InvalidOpcode.WithDnr());
            return;
        }
        if (transfer.Length > queue.MaxDataLength)
        {
            CommandExecutor.Refuse(queue, slot, NvmeStatus.InvalidField.WithDnr());
            return;
        }
        slot.Length = (int)transfer.Length;
        slot.ControllerToHost = transfer.Direction == DataDirection.ControllerToHost;
        if (slot.Length > 0)
        {
            slot.Pin = Memory.Enter();
            NvmeStatus walked = psdt == 0
                ? PrpWalker.Walk(Memory, Prp1(in sqe), Prp2(in sqe), slot.Length, deviceWrites: slot.ControllerToHost,
                    slot.Segments, out slot.SegmentCount)
                : SglWalker.Walk(Memory, sqe.Sgl1, slot.Length, deviceWrites: slot.ControllerToHost,
                    slot.Segments, out slot.SegmentCount);
            if (!walked.IsSuccess)
            {
                CommandExecutor.Refuse(queue, slot, walked);
                return;
            }
        }
        Memory<byte> data = slot.PrepareData(gather: !slot.ControllerToHost);
        _executor.Execute(queue, slot, HostData.Owned(data));
    }

    private static ulong Prp1(in SubmissionQueueEntry sqe) => sqe.SglAddress;

    private static ulong Prp2(in SubmissionQueueEntry sqe) => BinaryPrimitives.ReadUInt64LittleEndian(sqe.Sgl1[8..]);

    /// <summary>
    /// Posts a command's completion: copies read data out, writes the CQE with the current phase (its last dword
    /// last, so the host never sees the phase flip before the entry), and raises the vector now or, on the poller,
    /// once per pass.
    /// </summary>
    internal void Complete(CommandSlot slot, CompletionQueueEntry cqe, bool fromPoller)
    {
        PcieSubmissionQueue sq = slot.Queue;
        PcieCompletionQueue cq = sq.Cq;
        slot.FinishData(cqe.Status.IsSuccess);
        if (slot.Pin >= 0)
        {
            Memory.Exit(slot.Pin);
            slot.Pin = -1;
        }
        bool raise = false, wakePoller = false;
        int pin = Memory.Enter();
        try
        {
            lock (cq.Lock)
            {
                cq.Reserved--;
                if (!cq.Deleted)
                {
                    raise = PostLocked(cq, in cqe);
                    if (raise && _coalescing.Applies(cq.Vector))
                    {
                        raise = CoalesceLocked(cq);
                        wakePoller = !raise && !fromPoller;
                    }
                }
            }
        }
        finally
        {
            Memory.Exit(pin);
        }
        sq.ReturnSlot(slot);
        Interlocked.Increment(ref _completed);
        if (wakePoller)
        {
            // The poller fires the vector when the aggregation time is up.
            _wake.Set();
        }
        if (raise)
        {
            if (fromPoller)
            {
                cq.InterruptPending = true;
            }
            else
            {
                _msix.Raise(cq.Vector);
            }
        }
    }

    private unsafe bool PostLocked(PcieCompletionQueue cq, in CompletionQueueEntry cqe)
    {
        if (!Memory.TryTranslate(cq.Base + (ulong)cq.Tail * CqeSize, CqeSize, write: true, out byte* p))
        {
            SetFatalLocked($"completion queue {cq.Id} entry {cq.Tail} is outside guest memory");
            return false;
        }
        Span<byte> entry = stackalloc byte[CqeSize];
        cqe.Write(entry);
        uint last = BinaryPrimitives.ReadUInt32LittleEndian(entry[12..]) | (cq.Phase ? 1u << 16 : 0);
        entry[..12].CopyTo(new Span<byte>(p, 12));
        Volatile.Write(ref *(uint*)(p + 12), last);
        cq.Tail++;
        if (cq.Tail == cq.Entries)
        {
            cq.Tail = 0;
            cq.Phase = !cq.Phase;
        }
        return cq.InterruptsEnabled;
    }

    private void RaiseIfPending(PcieCompletionQueue cq)
    {
        if (cq.Coalesced > 0)
        {
            lock (cq.Lock)
            {
                if (cq.Coalesced > 0 && Clock.GetElapsedTime(cq.FirstCoalescedAt) >= _coalescing.Time)
                {
                    cq.Coalesced = 0;
                    cq.InterruptPending = true;
                }
            }
        }
        if (cq.InterruptPending)
        {
            cq.InterruptPending = false;
            _msix.Raise(cq.Vector);
        }
    }

    /// <summary>A completion under Interrupt Coalescing: true when it makes THR + 1 waiting, so the vector fires now.</summary>
    private bool CoalesceLocked(PcieCompletionQueue cq)
    {
        if (cq.Coalesced++ == 0)
        {
            cq.FirstCoalescedAt = Clock.GetTimestamp();
        }
        if (cq.Coalesced < _coalescing.Threshold)
        {
            return false;
        }
        cq.Coalesced = 0;
        return true;
    }

    /// <summary>Whether completions wait for their aggregation time (the poller must not sleep past it).</summary>
    private bool AnyCoalescedLocked()
    {
        foreach (PcieCompletionQueue? cq in _ioCq)
        {
            if (cq is { Coalesced: > 0 })
            {
                return true;
            }
        }
        return false;
    }
}

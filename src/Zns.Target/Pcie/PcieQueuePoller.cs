using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Execution;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;

namespace Zns.Target.Pcie;

/// <summary>
/// The queues of a PCIe function and their processing: one poller thread fetches commands from every submission queue while
/// there is work, and sleeps when idle (woken by a doorbell write). With Doorbell Buffer Config the host writes
/// tails and heads to shadow doorbells in its memory; the poller reads those, and before sleeping writes the
/// EventIdx entries so that the next submission rings the real doorbell — a busy guest then never exits to ring.
/// </summary>
/// <remarks>
/// Queue changes (admin commands, controller reset) and queue processing are serialised by <see cref="Lock"/>; a
/// doorbell write only stores a value and wakes the poller. Completions that come later post under their CQ's lock.
/// </remarks>
internal sealed partial class PcieQueuePoller : IDisposable
{
    /// <summary>Idle passes spun (yielding) before the poller sleeps.</summary>
    private const int SpinPasses = 64;
    /// <summary>Longest sleep: a safety net for a host that updates only a shadow doorbell.</summary>
    private const int SleepMs = 50;
    private const int CqeSize = CompletionQueueEntry.Size;

    private readonly NvmeTarget _target;
    private readonly ILogger _logger;
    private readonly MsixInterrupts _msix;
    private readonly InterruptCoalescing _coalescing;
    private readonly uint[] _doorbells;
    private readonly PcieSubmissionQueue?[] _ioSq;
    private readonly PcieCompletionQueue?[] _ioCq;
    private readonly Thread _poller;
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
    private readonly CommandExecutor _executor;
    private volatile bool _stopping;
    private bool _dbbufEnabled;
    private ulong _shadowBase, _eventIdxBase;

    public PcieQueuePoller(NvmeTarget target, GuestMemory memory, MsixInterrupts msix, string name)
    {
        _target = target;
        _logger = target.Logger;
        _msix = msix;
        Memory = memory;
        Name = name;
        int maxIoQueues = target.Options.MaxIoQueues;
        _coalescing = new InterruptCoalescing(msix.VectorCount);
        _doorbells = new uint[2 * (maxIoQueues + 1)];
        _ioSq = new PcieSubmissionQueue?[maxIoQueues + 1];
        _ioCq = new PcieCompletionQueue?[maxIoQueues + 1];
        _executor = new CommandExecutor(_logger, name);
        _poller = new Thread(PollLoop) { IsBackground = true, Name = $"zns-pcie {name}" };
        _poller.Start();
    }

    public string Name { get; }
    public GuestMemory Memory { get; }

    /// <summary>Serialises queue changes, register-driven resets and the poller's passes.</summary>
    public Lock Lock { get; } = new();

    /// <summary>The function's controller (set under <see cref="Lock"/>); null while there is none.</summary>
    public NvmeController? Controller { get; set; }

    /// <summary>The clock of interrupt coalescing's aggregation time (a fake one in tests).</summary>
    public TimeProvider Clock { get; set; } = TimeProvider.System;

    /// <summary>Commands completed since creation (all queues); for tests and statistics.</summary>
    public long CompletedCommands => Interlocked.Read(ref _completed);
    private long _completed;

    public void WriteDoorbell(int index, uint value)
    {
        if ((uint)index >= (uint)_doorbells.Length)
        {
            _logger.BadDoorbell(Name, index, value, "no such queue");
            return;
        }
        Volatile.Write(ref _doorbells[index], value);
        _wake.Set();
    }

    public void StopQueue(ushort qid)
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
    public void StopAllQueuesLocked()
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
    public void DeleteAllQueuesLocked(string reason)
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
            lock (Lock)
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
            lock (Lock)
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
        if (Controller is not { IsFatal: false })
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
        // PSDT: 00b PRPs, 01b an SGL for the data (MPTR a contiguous metadata buffer), 10b SGLs for both (MPTR the
        // address of the metadata's SGL descriptor). Admin commands use PRPs (as Linux sends them).
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
        if (transfer.Length > queue.MaxDataLength || transfer.MetadataLength > queue.MaxDataLength)
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
            if (walked.IsSuccess && transfer.MetadataLength > 0)
            {
                walked = WalkMetadata(in sqe, psdt, (int)transfer.MetadataLength, slot);
            }
            if (!walked.IsSuccess)
            {
                CommandExecutor.Refuse(queue, slot, walked);
                return;
            }
        }
        Memory<byte> data = slot.PrepareData(gather: !slot.ControllerToHost);
        _executor.Execute(queue, slot, HostData.Owned(data));
    }

    /// <summary>
    /// Maps a separate metadata buffer after the data's segments; the handler finds it after the data. With PSDT 10b
    /// MPTR names one SGL descriptor, otherwise it is the buffer's address, contiguous in guest memory.
    /// </summary>
    private unsafe NvmeStatus WalkMetadata(in SubmissionQueueEntry sqe, int psdt, int length, CommandSlot slot)
    {
        Span<GuestSegment> free = slot.Segments[slot.SegmentCount..];
        int count = 0;
        NvmeStatus status;
        if (psdt == 2)
        {
            Span<byte> descriptor = stackalloc byte[16];
            status = Memory.Read(sqe.MetadataPointer, descriptor)
                ? SglWalker.Walk(Memory, descriptor, length, deviceWrites: slot.ControllerToHost, free, out count)
                : NvmeStatus.DataTransferError;
        }
        else
        {
            status = NvmeStatus.Success;
            ulong address = sqe.MetadataPointer;
            for (int done = 0; done < length && status.IsSuccess;)
            {
                // Page by page: guest memory is contiguous per page at least, not necessarily beyond.
                int n = (int)Math.Min((ulong)(length - done), PrpWalker.PageSize - ((address + (ulong)done) & (PrpWalker.PageSize - 1)));
                status = Memory.TryTranslate(address + (ulong)done, n, slot.ControllerToHost, out byte* host)
                    && PrpWalker.TryAppend(free, ref count, host, n) ? NvmeStatus.Success : NvmeStatus.DataTransferError;
                done += n;
            }
        }
        if (status.IsSuccess)
        {
            slot.SegmentCount += count;
            slot.Length += length;
        }
        return status;
    }

    private static ulong Prp1(in SubmissionQueueEntry sqe) => sqe.SglAddress;

    private static ulong Prp2(in SubmissionQueueEntry sqe) => BinaryPrimitives.ReadUInt64LittleEndian(sqe.Sgl1[8..]);

    /// <summary>
    /// A fatal condition found while fetching or posting: the controller reports CSTS.CFS (until the next reset) and
    /// nothing more is fetched.
    /// </summary>
    private void SetFatalLocked(string reason)
    {
        if (Controller is { IsFatal: false } controller)
        {
            _logger.Fatal(Name, reason);
            controller.SetFatal();
        }
    }

    /// <summary>Stops the poller thread (the function is removed).</summary>
    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        _poller.Join();
    }

    /// <summary>Releases what outlives the poller thread.</summary>
    public void DisposeWake() => _wake.Dispose();

    /// <summary>The transport side of a PCIe queue as the shared controller logic sees it.</summary>
    public sealed class PcieQueueTransport(PcieQueuePoller poller, ushort qid) : IQueueTransport
    {
        public string RemoteEndPoint => $"{poller.Name} queue {qid}";

        public TransportTraits Traits => NvmePcieFunction.PcieTraits;

        public IMemoryQueueOperations MemoryQueues => poller;

        /// <summary>Controller teardown or shutdown: stop fetching from the queue (a reset deletes it later).</summary>
        public void Abort(string reason) => poller.StopQueue(qid);
    }
}

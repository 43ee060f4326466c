using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Target.Tests.Pcie;

/// <summary>Register access to a PCIe NVMe function: directly or through a vfio-user client.</summary>
internal interface IFunctionAccess
{
    uint Read32(long offset);
    ulong Read64(long offset);
    void Write32(long offset, uint value);
    void Write64(long offset, ulong value);
    byte[] ReadConfig(long offset, int count);
    void WriteConfig(long offset, ReadOnlySpan<byte> data);
}

/// <summary>
/// A minimal NVMe PCIe host driver for tests, doing what Linux's nvme-pci does: admin queue registers, CC.EN, queue
/// creation by admin command, PRPs in guest memory, completions by phase tag.
/// </summary>
internal sealed class NvmeTestDriver(IFunctionAccess device, GuestRam ram)
{
    private sealed class Queue
    {
        public ushort Id;
        public ulong Sq, Cq;
        public int Entries;
        public int SqTail, CqHead;
        public bool Phase = true;
    }

    private readonly Dictionary<ushort, Queue> _queues = [];
    private ushort _cid;

    public IFunctionAccess Device => device;
    public GuestRam Ram => ram;

    public const uint CcEnable = 1, CcCssAll = 6u << 4, CcIosqes = 6u << 16, CcIocqes = 4u << 20;
    public const uint DefaultCc = CcEnable | CcCssAll | CcIosqes | CcIocqes;

    public void Enable(int adminEntries = 32, uint cc = DefaultCc)
    {
        var q = new Queue { Id = 0, Entries = adminEntries, Sq = ram.Alloc(adminEntries * 64), Cq = ram.Alloc(adminEntries * 16) };
        _queues[0] = q;
        device.Write32(0x24, (uint)((adminEntries - 1) | ((adminEntries - 1) << 16)));
        device.Write64(0x28, q.Sq);
        device.Write64(0x30, q.Cq);
        device.Write32(0x14, cc);
    }

    public uint Csts => device.Read32(0x1C);

    public void WaitReady()
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((Csts & 1) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"CSTS.RDY never set (CSTS {Csts:x})");
            Thread.Sleep(1);
        }
    }

    public SubmissionQueueEntry NewSqe(byte opcode, uint nsid = 0)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(opcode);
        sqe.SetCommandId(++_cid);
        sqe.SetNamespaceId(nsid);
        return sqe;
    }

    public static void SetPrp(ref SubmissionQueueEntry sqe, ulong prp1, ulong prp2 = 0)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(sqe.Bytes[24..], prp1);
        BinaryPrimitives.WriteUInt64LittleEndian(sqe.Bytes[32..], prp2);
    }

    /// <summary>Submits without waiting.</summary>
    public void Submit(ushort qid, in SubmissionQueueEntry sqe, bool ring = true)
    {
        Queue q = _queues[qid];
        sqe.Bytes.CopyTo(ram.Span(q.Sq + (ulong)q.SqTail * 64, 64));
        q.SqTail = (q.SqTail + 1) % q.Entries;
        if (ring)
        {
            device.Write32(0x1000 + 8 * qid, (uint)q.SqTail);
        }
    }

    /// <summary>Waits for the next completion on the queue's CQ and rings its head doorbell.</summary>
    public CompletionQueueEntry WaitCompletion(ushort qid, int timeoutMs = 10000)
    {
        Queue q = _queues[qid];
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (true)
        {
            Span<byte> entry = ram.Span(q.Cq + (ulong)q.CqHead * 16, 16);
            ushort status = BinaryPrimitives.ReadUInt16LittleEndian(entry[14..]);
            if (((status & 1) != 0) == q.Phase)
            {
                CompletionQueueEntry cqe = CompletionQueueEntry.Read(entry);
                q.CqHead++;
                if (q.CqHead == q.Entries)
                {
                    q.CqHead = 0;
                    q.Phase = !q.Phase;
                }
                device.Write32(0x1000 + 8 * qid + 4, (uint)q.CqHead);
                return cqe;
            }
            Assert.True(DateTime.UtcNow < deadline, $"no completion on queue {qid} (CSTS {Csts:x})");
            Thread.SpinWait(100);
            Thread.Yield();
        }
    }

    /// <summary>True when no completion is waiting on the queue's CQ.</summary>
    public bool NoCompletionPending(ushort qid)
    {
        Queue q = _queues[qid];
        ushort status = BinaryPrimitives.ReadUInt16LittleEndian(ram.Span(q.Cq + (ulong)q.CqHead * 16 + 14, 2));
        return ((status & 1) != 0) != q.Phase;
    }

    public CompletionQueueEntry Execute(ushort qid, SubmissionQueueEntry sqe)
    {
        Submit(qid, in sqe);
        CompletionQueueEntry cqe = WaitCompletion(qid);
        Assert.Equal(sqe.CommandId, cqe.CommandId);
        Assert.Equal(qid, cqe.SqId);
        return cqe;
    }

    /// <summary>Identify into a fresh page; returns the 4 KiB.</summary>
    public byte[] Identify(byte cns, uint nsid = 0, byte csi = 0)
    {
        ulong buf = ram.Alloc(4096);
        SubmissionQueueEntry sqe = NewSqe(AdminOpcode.Identify, nsid);
        SetPrp(ref sqe, buf);
        sqe.SetCdw(10, cns);
        sqe.SetCdw(11, (uint)csi << 24);
        CompletionQueueEntry cqe = Execute(0, sqe);
        Assert.True(cqe.Status.IsSuccess, $"Identify CNS {cns}: {cqe.Status}");
        return ram.Span(buf, 4096).ToArray();
    }

    public NvmeStatus CreateCq(ushort qid, int entries, int vector, bool interrupts = true, bool contiguous = true, ulong? address = null)
    {
        ulong cq = address ?? ram.Alloc(entries * 16);
        SubmissionQueueEntry sqe = NewSqe(AdminOpcode.CreateIoCompletionQueue);
        SetPrp(ref sqe, cq);
        sqe.SetCdw(10, (uint)(qid | ((entries - 1) << 16)));
        sqe.SetCdw(11, (contiguous ? 1u : 0) | (interrupts ? 2u : 0) | ((uint)vector << 16));
        NvmeStatus status = Execute(0, sqe).Status;
        if (status.IsSuccess)
        {
            _queues[qid] = new Queue { Id = qid, Cq = cq, Entries = entries };
        }
        return status;
    }

    public NvmeStatus CreateSq(ushort qid, int entries, ushort cqid, ulong? address = null)
    {
        ulong sq = address ?? ram.Alloc(entries * 64);
        SubmissionQueueEntry sqe = NewSqe(AdminOpcode.CreateIoSubmissionQueue);
        SetPrp(ref sqe, sq);
        sqe.SetCdw(10, (uint)(qid | ((entries - 1) << 16)));
        sqe.SetCdw(11, 1u | ((uint)cqid << 16));
        NvmeStatus status = Execute(0, sqe).Status;
        if (status.IsSuccess)
        {
            Assert.Equal(qid, cqid);
            _queues[qid].Sq = sq;
            _queues[qid].Entries = Math.Min(_queues[qid].Entries, entries);
        }
        return status;
    }

    public void CreateIoQueuePair(ushort qid, int entries = 16)
    {
        Assert.True(CreateCq(qid, entries, vector: qid).IsSuccess);
        Assert.True(CreateSq(qid, entries, qid).IsSuccess);
    }

    /// <summary>Builds PRP1/PRP2 for a buffer of whole pages at <paramref name="pages"/> (page-aligned guest addresses).</summary>
    public void SetPrps(ref SubmissionQueueEntry sqe, IReadOnlyList<ulong> pages)
    {
        if (pages.Count == 1)
        {
            SetPrp(ref sqe, pages[0]);
        }
        else if (pages.Count == 2)
        {
            SetPrp(ref sqe, pages[0], pages[1]);
        }
        else
        {
            ulong list = ram.Alloc((pages.Count - 1) * 8);
            Span<byte> l = ram.Span(list, (pages.Count - 1) * 8);
            for (int i = 1; i < pages.Count; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(l[((i - 1) * 8)..], pages[i]);
            }
            SetPrp(ref sqe, pages[0], list);
        }
    }

    public NvmeStatus ReadWrite(byte opcode, ushort qid, ulong slba, IReadOnlyList<ulong> pages, int blocks, uint nsid = 1)
    {
        SubmissionQueueEntry sqe = NewSqe(opcode, nsid);
        SetPrps(ref sqe, pages);
        sqe.SetCdw10_11(slba);
        sqe.SetCdw(12, (uint)(blocks - 1));
        return Execute(qid, sqe).Status;
    }
}

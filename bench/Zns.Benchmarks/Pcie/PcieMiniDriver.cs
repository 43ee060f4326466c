using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Pcie;
using Zns.Target.VfioUser;

using Zns.Core.Interop;

namespace Zns.Benchmarks.Pcie;

/// <summary>
/// The smallest NVMe PCIe host driver that can load the function: memfd "guest RAM" mapped into the function's guest
/// memory, BAR0 register writes, an admin queue and one I/O queue pair in guest RAM, completions found by phase tag.
/// It allocates nothing per command, so every byte the benchmark process allocates in the timed window is the
/// function's (and the shared NVMe command logic's).
/// </summary>
internal sealed unsafe class PcieMiniDriver : IDisposable
{
    public const ulong RamBase = 1UL << 32;
    private const int AdminEntries = 16;
    public const ushort IoQid = 1;

    private readonly NvmePcieFunction _function;
    private readonly int _fd;
    private readonly byte* _host;
    private readonly int _size;
    private int _next = 4096;
    private readonly Queue _admin, _io;

    /// <summary>One submission/completion queue pair as the host sees it.</summary>
    private sealed class Queue
    {
        public ushort Id;
        public ulong Sq, Cq;
        public int Entries, SqTail, CqHead;
        public bool Phase = true;
    }

    public PcieMiniDriver(NvmePcieFunction function, int ramBytes, int ioEntries)
    {
        _function = function;
        _size = ramBytes;
        _fd = Posix.memfd_create("zns-bench-guest", Posix.MfdCloexec);
        if (_fd < 0 || Posix.ftruncate(_fd, ramBytes) != 0)
        {
            throw new IOException("memfd_create/ftruncate failed");
        }
        nint p = Posix.mmap(0, (nuint)ramBytes, Posix.ProtRead | Posix.ProtWrite, Posix.MapShared, _fd, 0);
        if (p == Posix.MapFailed)
        {
            throw new IOException("mmap of guest RAM failed");
        }
        _host = (byte*)p;
        int errno = function.Memory.Map(RamBase, (ulong)ramBytes, _fd, 0, readable: true, writable: true);
        if (errno != 0)
        {
            throw new IOException($"guest memory map failed: errno {errno}");
        }
        _admin = new Queue { Id = 0, Entries = AdminEntries, Sq = Alloc(AdminEntries * 64), Cq = Alloc(AdminEntries * 16) };
        _io = new Queue { Id = IoQid, Entries = ioEntries, Sq = Alloc(ioEntries * 64), Cq = Alloc(ioEntries * 16) };
    }

    /// <summary>Bump-allocates zeroed, page-aligned guest memory; returns its guest address.</summary>
    public ulong Alloc(int bytes)
    {
        int at = _next;
        _next += (bytes + 4095) & ~4095;
        if (_next > _size)
        {
            throw new InvalidOperationException("guest RAM exhausted");
        }
        new Span<byte>(_host + at, bytes).Clear();
        return RamBase + (ulong)at;
    }

    public Span<byte> Span(ulong address, int length) => new(_host + (long)(address - RamBase), length);

    public void Write32(long offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _function.WriteBar0(offset, b);
    }

    public uint Read32(long offset)
    {
        Span<byte> b = stackalloc byte[4];
        _function.ReadBar0(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    /// <summary>AQA/ASQ/ACQ, CC.EN (NVM command set, 64-byte SQEs, 16-byte CQEs), wait for CSTS.RDY, create the I/O queue pair.</summary>
    public void EnableAndCreateIoQueues()
    {
        Write32(0x24, (uint)((AdminEntries - 1) | ((AdminEntries - 1) << 16)));
        Write32(0x28, (uint)_admin.Sq);
        Write32(0x2C, (uint)(_admin.Sq >> 32));
        Write32(0x30, (uint)_admin.Cq);
        Write32(0x34, (uint)(_admin.Cq >> 32));
        Write32(0x14, 1u | (6u << 4) | (6u << 16) | (4u << 20));
        long deadline = Environment.TickCount64 + 10_000;
        while ((Read32(0x1C) & 1) == 0)
        {
            if ((Read32(0x1C) & 2) != 0 || Environment.TickCount64 > deadline)
            {
                throw new InvalidOperationException($"controller not ready (CSTS {Read32(0x1C):x})");
            }
            Thread.Sleep(1);
        }
        uint qsize = (uint)(IoQid | ((_io.Entries - 1) << 16));
        AdminOrThrow(AdminOpcode.CreateIoCompletionQueue, _io.Cq, qsize, 1u | 2u | ((uint)IoQid << 16));
        AdminOrThrow(AdminOpcode.CreateIoSubmissionQueue, _io.Sq, qsize, 1u | ((uint)IoQid << 16));
    }

    private void AdminOrThrow(byte opcode, ulong prp1, uint cdw10, uint cdw11)
    {
        Span<byte> sqe = Entry(_admin);
        sqe[0] = opcode;
        BinaryPrimitives.WriteUInt64LittleEndian(sqe[24..], prp1);
        BinaryPrimitives.WriteUInt32LittleEndian(sqe[40..], cdw10);
        BinaryPrimitives.WriteUInt32LittleEndian(sqe[44..], cdw11);
        Advance(_admin);
        ushort status = WaitOne(_admin, out _);
        if (status != 0)
        {
            throw new InvalidOperationException($"admin opcode {opcode:x2}: status {status:x4}");
        }
    }

    /// <summary>Writes an I/O command into the next SQ entry (the doorbell is rung by <see cref="RingSubmissions"/>).</summary>
    public void SubmitIo(ushort cid, byte opcode, ulong slba, int blocks, ulong prp1, ulong prp2, uint cdw13 = 0)
    {
        Span<byte> sqe = Entry(_io);
        sqe[0] = opcode;
        BinaryPrimitives.WriteUInt16LittleEndian(sqe[2..], cid);
        BinaryPrimitives.WriteUInt32LittleEndian(sqe[4..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(sqe[24..], prp1);
        BinaryPrimitives.WriteUInt64LittleEndian(sqe[32..], prp2);
        BinaryPrimitives.WriteUInt64LittleEndian(sqe[40..], slba);
        BinaryPrimitives.WriteUInt32LittleEndian(sqe[48..], (uint)(blocks - 1));
        BinaryPrimitives.WriteUInt32LittleEndian(sqe[52..], cdw13);
        Advance(_io);
    }

    public void RingSubmissions() => Write32(NvmePcieFunction.DoorbellOffset + 8 * IoQid, (uint)_io.SqTail);

    /// <summary>Takes the next I/O completion if one is posted (the CQ head doorbell is rung by <see cref="RingCompletions"/>).</summary>
    public bool TryReap(out ushort cid, out ushort status) => TryTake(_io, out cid, out status);

    public void RingCompletions() => Write32(NvmePcieFunction.DoorbellOffset + 8 * IoQid + 4, (uint)_io.CqHead);

    /// <summary>Submits one I/O command and waits for it (untimed work: zone resets, fills).</summary>
    public ushort ExecuteIo(byte opcode, ulong slba, int blocks, ulong prp1, ulong prp2 = 0, uint cdw13 = 0)
    {
        SubmitIo(0xFFFF, opcode, slba, blocks, prp1, prp2, cdw13);
        RingSubmissions();
        ushort status = WaitOne(_io, out _);
        RingCompletions();
        return status;
    }

    private Span<byte> Entry(Queue q)
    {
        Span<byte> e = Span(q.Sq + (ulong)q.SqTail * 64, 64);
        e.Clear();
        return e;
    }

    private void Advance(Queue q)
    {
        q.SqTail = (q.SqTail + 1) % q.Entries;
        if (q.Id == 0)
        {
            Write32(NvmePcieFunction.DoorbellOffset, (uint)q.SqTail);
        }
    }

    private ushort WaitOne(Queue q, out ushort cid)
    {
        long deadline = Environment.TickCount64 + 10_000;
        ushort status;
        while (!TryTake(q, out cid, out status))
        {
            if (Environment.TickCount64 > deadline)
            {
                throw new TimeoutException($"no completion on queue {q.Id} (CSTS {Read32(0x1C):x})");
            }
            Thread.SpinWait(20);
        }
        if (q.Id == 0)
        {
            Write32(NvmePcieFunction.DoorbellOffset + 4, (uint)q.CqHead);
        }
        return status;
    }

    private bool TryTake(Queue q, out ushort cid, out ushort status)
    {
        byte* entry = _host + (long)(q.Cq - RamBase) + q.CqHead * 16;
        uint last = Volatile.Read(ref *(uint*)(entry + 12));
        if (((last >> 16) & 1) != (q.Phase ? 1u : 0u))
        {
            cid = 0;
            status = 0;
            return false;
        }
        cid = (ushort)last;
        status = (ushort)(last >> 17);
        if (++q.CqHead == q.Entries)
        {
            q.CqHead = 0;
            q.Phase = !q.Phase;
        }
        return true;
    }

    public void Dispose()
    {
        Posix.munmap((nint)_host, (nuint)_size);
        Posix.close(_fd);
    }
}

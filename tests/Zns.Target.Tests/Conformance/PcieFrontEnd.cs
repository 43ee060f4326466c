using System.Buffers.Binary;
using System.Diagnostics;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Pcie;
using Zns.Target.Tests.Pcie;
using Zns.Target.VfioUser;

namespace Zns.Target.Tests.Conformance;

/// <summary>
/// The PCIe front end: an <see cref="NvmePcieFunction"/> over guest RAM, driven as Linux's nvme-pci drives it:
/// admin queue registers and CC.EN, I/O queue pair 1 created by admin commands, data in guest pages described by
/// PRP1, PRP2 or a PRP list, completions found by their phase tag after the queue's MSI-X vector fires.
/// </summary>
internal sealed class PcieFrontEnd : FrontEnd
{
    private const ulong RamBase = 1UL << 30;
    private const int RamBytes = 8 << 20, ArenaBytes = 4 << 20, Page = 4096, IoQueueEntries = 64;
    /// <summary>Buffers smaller than this start inside their page, as a kmalloc'ed buffer does.</summary>
    private const int SmallBuffer = 512, SmallBufferOffset = 0x200;

    private readonly GuestMemory _memory;
    private readonly NvmePcieFunction _function;
    private readonly GuestRam _ram;
    private readonly NvmeTestDriver _driver;
    private readonly Vector[] _vectors;
    private readonly ulong _arena;
    private int _arenaUsed;

    private PcieFrontEnd(TargetSpec spec) : base(FrontEndKind.Pcie, spec)
    {
        _memory = new GuestMemory(new MmapGuestMemoryMapper());
        _function = new NvmePcieFunction(Target, _memory, "conformance");
        _ram = new GuestRam(RamBase, RamBytes);
        Assert.Equal(0, _memory.Map(RamBase, RamBytes, _ram.Fd, 0, true, true));
        _vectors = [.. Enumerable.Range(0, _function.MsixVectorCount).Select(_ => new Vector())];
        Assert.True(_function.SetMsixTriggers(0, _vectors.Length, _vectors));
        _driver = new NvmeTestDriver(new DirectAccess(_function), _ram);
        _arena = _ram.Alloc(ArenaBytes);
    }

    public static PcieFrontEnd Start(TargetSpec spec)
    {
        var fe = new PcieFrontEnd(spec);
        try
        {
            fe._driver.Enable();
            fe._driver.WaitReady();
            fe._driver.CreateIoQueuePair(1, IoQueueEntries);
            return fe;
        }
        catch
        {
            fe.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

    /// <summary>CSTS as the host reads it.</summary>
    public uint Csts => _driver.Csts;

    /// <summary>Writes doorbell <paramref name="index"/> (SQ y tail is 2y, CQ y head 2y + 1) as a host does.</summary>
    public void RingDoorbell(int index, uint value) => _driver.Device.Write32(NvmePcieFunction.DoorbellOffset + 4 * index, value);

    public override Task ReconnectAsync() => ReconnectAsync(TimeSpan.Zero);

    /// <param name="settle">How long the enabled controller is left alone before the first admin command: it must
    /// post nothing meanwhile (a completion then is for a command the host never submitted).</param>
    public async Task ReconnectAsync(TimeSpan settle)
    {
        // Power is back when the new controller shows CSTS.CFS; then the host resets it (EN 1 -> 0 is a no-op on a
        // controller never enabled) and enables it, and re-creates its I/O queue pair.
        var deadline = DateTime.UtcNow + Conformance.Timeout;
        while ((_driver.Csts & 2) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"power never came back (CSTS {_driver.Csts:x})");
            await Task.Delay(5);
        }
        _driver.Device.Write32(0x14, 0);
        _driver.Enable();
        _driver.WaitReady();
        if (settle > TimeSpan.Zero)
        {
            await Task.Delay(settle);
            Assert.True(_driver.NoCompletionPending(0), "a completion on the admin queue before any command was submitted");
        }
        _driver.CreateIoQueuePair(1, IoQueueEntries);
    }

    protected override async Task<Exchanged[][]> ExchangeAsync(ushort qid, Command[][] batches)
    {
        _arenaUsed = 0;
        var buffers = new Dictionary<ushort, (ulong Address, int Length)>();
        var done = new Dictionary<ushort, (CompletionQueueEntry Cqe, TimeSpan Elapsed)>();
        var metadataAt = new Dictionary<ushort, (ulong Address, int Length)>();
        long start = Stopwatch.GetTimestamp();
        foreach (Command[] batch in batches)
        {
            for (int i = 0; i < batch.Length; i++)
            {
                Command c = batch[i];
                SubmissionQueueEntry sqe = c.Sqe;
                sqe.SetFlags(0); // PSDT 00b: PRPs
                int length = (c.DataOut?.Length ?? c.DataInLength) - c.MetadataLength;
                ulong address = 0;
                if (c.MetadataLength > 0)
                {
                    ulong metadata = Take(c.MetadataLength);
                    Span<byte> m = _ram.Span(metadata, c.MetadataLength);
                    if (c.DataOut is { } output)
                    {
                        output.AsSpan(length).CopyTo(m);
                    }
                    else
                    {
                        m.Fill(0xA5);
                    }
                    BinaryPrimitives.WriteUInt64LittleEndian(sqe.Bytes[16..], metadata);
                    metadataAt.Add(sqe.CommandId, (metadata, c.MetadataLength));
                }
                if (length > 0)
                {
                    address = Buffer(length, out List<ulong> pages);
                    if (c.DataOut is { } output)
                    {
                        output.AsSpan(0, length).CopyTo(_ram.Span(address, length));
                    }
                    else
                    {
                        _ram.Span(address, length).Fill(0xA5); // poison: a success must overwrite all of it
                    }
                    SetPrps(ref sqe, address, pages);
                }
                buffers.Add(sqe.CommandId, (address, c.DataInLength - (c.DataOut is null ? c.MetadataLength : 0)));
                // One doorbell write per batch.
                _driver.Submit(qid, in sqe, ring: i == batch.Length - 1);
            }
        }

        Vector vector = _vectors[qid];
        var deadline = DateTime.UtcNow + Conformance.Timeout;
        while (done.Count < buffers.Count)
        {
            while (!_driver.NoCompletionPending(qid))
            {
                CompletionQueueEntry cqe = _driver.WaitCompletion(qid);
                Assert.True(buffers.ContainsKey(cqe.CommandId) && !done.ContainsKey(cqe.CommandId), $"completion for CID {cqe.CommandId}, which is not outstanding");
                done.Add(cqe.CommandId, (cqe, Stopwatch.GetElapsedTime(start)));
            }
            if (done.Count == buffers.Count)
            {
                break;
            }
            TimeSpan left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, $"{buffers.Count - done.Count} commands on queue {qid} never completed (CSTS {_driver.Csts:x})");
            // Woken by the queue's vector; the bound only covers a signal raised between the check and the wait.
            await vector.WaitAsync(TimeSpan.FromMilliseconds(Math.Min(left.TotalMilliseconds, 100))).ConfigureAwait(false);
        }

        return [.. batches.Select(b => b.Select(c =>
        {
            var (cqe, elapsed) = done[c.Sqe.CommandId];
            var (address, length) = buffers[c.Sqe.CommandId];
            byte[] data = length > 0 ? _ram.Span(address, length).ToArray() : [];
            if (c.DataOut is null && metadataAt.TryGetValue(c.Sqe.CommandId, out var m))
            {
                data = [.. data, .. _ram.Span(m.Address, m.Length)];
            }
            return new Exchanged(cqe, data, elapsed);
        }).ToArray())];
    }

    /// <summary>Guest pages for <paramref name="length"/> bytes from the arena (reused by the next exchange).</summary>
    private ulong Buffer(int length, out List<ulong> pages)
    {
        int offset = length < SmallBuffer ? SmallBufferOffset : 0;
        int pageCount = (offset + length + Page - 1) / Page;
        ulong first = Take(pageCount * Page);
        pages = [.. Enumerable.Range(0, pageCount).Select(p => first + (ulong)(p * Page))];
        return first + (ulong)offset;
    }

    private ulong Take(int bytes)
    {
        int at = _arenaUsed;
        _arenaUsed += (bytes + Page - 1) & ~(Page - 1);
        Assert.True(_arenaUsed <= ArenaBytes, "the PCIe front end's data arena is exhausted");
        return _arena + (ulong)at;
    }

    /// <summary>PRP1 (with the buffer's offset), PRP2 for a second page, or PRP2 pointing to a list of the other pages.</summary>
    private void SetPrps(ref SubmissionQueueEntry sqe, ulong address, List<ulong> pages)
    {
        ulong prp2 = 0;
        if (pages.Count == 2)
        {
            prp2 = pages[1];
        }
        else if (pages.Count > 2)
        {
            Assert.True(pages.Count - 1 <= Page / 8, "one PRP list page is enough up to MDTS");
            prp2 = Take(Page);
            Span<byte> list = _ram.Span(prp2, Page);
            for (int i = 1; i < pages.Count; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(list[((i - 1) * 8)..], pages[i]);
            }
        }
        NvmeTestDriver.SetPrp(ref sqe, address, prp2);
    }

    public override ValueTask DisposeAsync()
    {
        _function.Dispose();
        _memory.Dispose();
        Host.Dispose();
        _ram.Dispose();
        foreach (Vector v in _vectors)
        {
            v.Dispose();
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>An MSI-X vector's trigger that a waiting host can await.</summary>
    private sealed class Vector : IInterruptSignal, IDisposable
    {
        private readonly SemaphoreSlim _raised = new(0);

        public void Signal() => _raised.Release();

        public void Close()
        {
        }

        public Task WaitAsync(TimeSpan timeout) => _raised.WaitAsync(timeout);

        public void Dispose() => _raised.Dispose();
    }
}

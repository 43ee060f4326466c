using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using Zns.Target.Pcie;
using Zns.Target.VfioUser;

namespace Zns.Target.Tests.Pcie;

/// <summary>Direct register access (what a vfio-user REGION_READ/WRITE ends up calling).</summary>
internal sealed class DirectAccess(NvmePcieFunction f) : IFunctionAccess
{
    public uint Read32(long offset)
    {
        Span<byte> b = stackalloc byte[4];
        Assert.True(f.ReadBar0(offset, b));
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public ulong Read64(long offset)
    {
        Span<byte> b = stackalloc byte[8];
        Assert.True(f.ReadBar0(offset, b));
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    public void Write32(long offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        Assert.True(f.WriteBar0(offset, b));
    }

    public void Write64(long offset, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        Assert.True(f.WriteBar0(offset, b));
    }

    public byte[] ReadConfig(long offset, int count)
    {
        byte[] b = new byte[count];
        Assert.True(f.ReadConfig(offset, b));
        return b;
    }

    public void WriteConfig(long offset, ReadOnlySpan<byte> data) => Assert.True(f.WriteConfig(offset, data));
}

/// <summary>A PCIe function over an in-memory zoned namespace with guest RAM mapped at 1 GiB.</summary>
internal sealed class PcieFixture : IDisposable
{
    public const ulong RamBase = 1UL << 30;

    public PcieFixture(TargetOptions? options = null, int ramBytes = 8 << 20)
    {
        Namespace = ZonedNamespace.CreateInMemory(16 << 20, new NamespaceOptions { ZoneSize = 1 << 20, ZoneCapacity = 1 << 20, MaxOpen = 2, MaxActive = 3 });
        Target = new NvmeTarget(options ?? new TargetOptions(), [Namespace]);
        Memory = new GuestMemory(new MmapGuestMemoryMapper());
        Function = new NvmePcieFunction(Target, Memory, "test");
        Ram = new GuestRam(RamBase, ramBytes);
        Assert.Equal(0, Memory.Map(RamBase, (ulong)ramBytes, Ram.Fd, 0, true, true));
        for (int v = 0; v < Function.MsixVectorCount; v++)
        {
            Signals.Add(new CountingSignal());
        }
        Assert.True(Function.SetMsixTriggers(0, Signals.Count, Signals.ToArray()));
        Driver = new NvmeTestDriver(new DirectAccess(Function), Ram);
    }

    public ZonedNamespace Namespace { get; }
    public NvmeTarget Target { get; }
    public GuestMemory Memory { get; }
    public NvmePcieFunction Function { get; }
    public GuestRam Ram { get; }
    public List<CountingSignal> Signals { get; } = [];
    public NvmeTestDriver Driver { get; }

    public void EnableWithIoQueue()
    {
        Driver.Enable();
        Driver.WaitReady();
        Driver.CreateIoQueuePair(1);
    }

    public void Dispose()
    {
        Function.Dispose();
        Memory.Dispose();
        Target.Dispose();
        Ram.Dispose();
        Namespace.Dispose();
    }
}

public sealed class PcieRegisterTests
{
    [Fact]
    public void Config_space_is_an_nvme_function_with_pm_msix_and_pcie_capabilities()
    {
        using var f = new PcieFixture();
        byte[] c = f.Driver.Device.ReadConfig(0, 256);
        Assert.Equal(PciConfigSpace.VendorId, BinaryPrimitives.ReadUInt16LittleEndian(c));
        Assert.Equal(new byte[] { 0x02, 0x08, 0x01 }, c[9..12]);
        Assert.Equal(0x10, c[6] & 0x10);
        var caps = new List<byte>();
        for (int p = c[0x34]; p != 0; p = c[p + 1])
        {
            caps.Add(c[p]);
        }
        Assert.Equal(new byte[] { 0x01, 0x11, 0x10 }, caps);
        int msix = c.AsSpan(0x40).IndexOf((byte)0x11) + 0x40;
        Assert.Equal(f.Function.MsixVectorCount - 1, BinaryPrimitives.ReadUInt16LittleEndian(c.AsSpan(msix + 2)) & 0x7FF);
        Assert.Equal(0, c[0x3D]); // no INTx pin
    }

    [Fact]
    public void Bar_sizing_reads_back_the_size_mask()
    {
        using var f = new PcieFixture();
        f.Driver.Device.WriteConfig(0x10, [0xFF, 0xFF, 0xFF, 0xFF]);
        uint bar0 = BinaryPrimitives.ReadUInt32LittleEndian(f.Driver.Device.ReadConfig(0x10, 4));
        Assert.Equal(~(uint)(PciConfigSpace.Bar0Size - 1) | 0x4, bar0);
        f.Driver.Device.WriteConfig(0x00, [0, 0, 0, 0]);
        Assert.Equal(PciConfigSpace.VendorId, BinaryPrimitives.ReadUInt16LittleEndian(f.Driver.Device.ReadConfig(0, 2)));
    }

    [Fact]
    public void Cap_reports_mqes_contiguous_queues_dstrd_0_and_the_io_command_set_bit()
    {
        using var f = new PcieFixture();
        ulong cap = f.Driver.Device.Read64(0);
        Assert.Equal(new TargetOptions().MaxQueueEntries - 1, (int)(cap & 0xFFFF));
        Assert.Equal(1UL, (cap >> 16) & 1); // CQR
        Assert.Equal(0UL, (cap >> 32) & 0xF); // DSTRD
        Assert.Equal(1UL, (cap >> 37) & 1); // CSS NVM
        Assert.Equal(1UL, (cap >> 43) & 1); // CSS I/O command sets
        Assert.Equal(cap, f.Driver.Device.Read32(0) | ((ulong)f.Driver.Device.Read32(4) << 32));
        Assert.Equal(0x0001_0400u, f.Driver.Device.Read32(8)); // VS 1.4, as QEMU reports
    }

    [Fact]
    public void Enable_then_reset_then_enable_again()
    {
        using var f = new PcieFixture();
        Assert.Equal(0u, f.Driver.Csts);
        f.Driver.Enable();
        f.Driver.WaitReady();
        byte[] id = f.Driver.Identify(1);
        Assert.Equal(SglWalker.SupportedSgls, BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(536))); // SGLS: byte-aligned SGLs, Bit Bucket
        Assert.Equal(1 << 8, BinaryPrimitives.ReadUInt16LittleEndian(id.AsSpan(256)) & (1 << 8)); // OACS DBBUF
        Assert.True(f.Signals[0].Count > 0, "admin completions raise vector 0");
        f.Driver.Device.Write32(0x14, 0);
        Assert.Equal(0u, f.Driver.Csts & 1);
        var again = new NvmeTestDriver(f.Driver.Device, f.Ram);
        again.Enable();
        again.WaitReady();
        again.Identify(1);
    }

    [Fact]
    public void Shutdown_reports_complete()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        f.Driver.Device.Write32(0x14, NvmeTestDriver.DefaultCc | (1u << 14));
        Assert.Equal(2u, (f.Driver.Csts >> 2) & 3);
    }

    [Fact]
    public void Invalid_admin_queue_size_sets_controller_fatal_status()
    {
        using var f = new PcieFixture();
        f.Driver.Device.Write32(0x24, 0); // ASQS = ACQS = 1 entry
        f.Driver.Device.Write32(0x14, NvmeTestDriver.DefaultCc);
        Assert.Equal(2u, f.Driver.Csts & 3);
        f.Driver.Device.Write32(0x14, 0);
        Assert.Equal(0u, f.Driver.Csts);
    }

    [Fact]
    public void Invalid_entry_sizes_set_controller_fatal_status()
    {
        using var f = new PcieFixture();
        f.Driver.Enable(cc: NvmeTestDriver.CcEnable | NvmeTestDriver.CcCssAll | (7u << 16) | NvmeTestDriver.CcIocqes);
        Assert.Equal(2u, f.Driver.Csts & 3);
    }
}

public sealed class PcieQueueTests
{
    private static List<ulong> Pages(GuestRam ram, int count)
    {
        var pages = new List<ulong>();
        for (int i = 0; i < count; i++)
        {
            pages.Add(ram.Alloc(4096));
        }
        return pages;
    }

    [Fact]
    public void Write_then_read_through_prp_lists_of_scattered_pages()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        // 12 pages in reverse order so that nothing merges: PRP1 + a PRP list of 11 entries.
        List<ulong> pages = Pages(f.Ram, 12);
        pages.Reverse();
        for (int i = 0; i < pages.Count; i++)
        {
            f.Ram.Span(pages[i], 4096).Fill((byte)(i + 1));
        }
        Assert.True(f.Driver.ReadWrite(IoOpcode.Write, 1, 0, pages, 12).IsSuccess);
        Assert.Equal(12UL, f.Namespace.GetZone(0).WritePointer);
        List<ulong> back = Pages(f.Ram, 12);
        Assert.True(f.Driver.ReadWrite(IoOpcode.Read, 1, 0, back, 12).IsSuccess);
        for (int i = 0; i < back.Count; i++)
        {
            Assert.True(f.Ram.Span(back[i], 4096).IndexOfAnyExcept((byte)(i + 1)) < 0, $"page {i}");
        }
        Assert.True(f.Signals[1].Count > 0, "I/O completions raise the CQ's vector");
    }

    [Fact]
    public void Prp_list_chains_across_list_pages()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        // 128 pages (512 KiB = MDTS): the list starts near the end of its page, so it must chain.
        var pages = new List<ulong>();
        for (int i = 0; i < 128; i++)
        {
            pages.Add(f.Ram.Alloc(4096));
        }
        for (int i = 0; i < pages.Count; i++)
        {
            f.Ram.Span(pages[i], 4096).Fill((byte)i);
        }
        ulong listPage1 = f.Ram.Alloc(4096), listPage2 = f.Ram.Alloc(4096);
        ulong listStart = listPage1 + 4096 - 8 * 4; // room for 3 entries + the chain pointer
        Span<byte> l1 = f.Ram.Span(listStart, 32);
        for (int i = 0; i < 3; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(l1[(i * 8)..], pages[1 + i]);
        }
        BinaryPrimitives.WriteUInt64LittleEndian(l1[24..], listPage2);
        Span<byte> l2 = f.Ram.Span(listPage2, 4096);
        for (int i = 4; i < 128; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(l2[((i - 4) * 8)..], pages[i]);
        }
        SubmissionQueueEntry sqe = f.Driver.NewSqe(IoOpcode.Write, 1);
        NvmeTestDriver.SetPrp(ref sqe, pages[0], listStart);
        sqe.SetCdw10_11(0);
        sqe.SetCdw(12, 127);
        Assert.True(f.Driver.Execute(1, sqe).Status.IsSuccess);
        byte[] data = new byte[128 * 4096];
        Assert.True(f.Namespace.Read(0, data).IsSuccess);
        for (int i = 0; i < 128; i++)
        {
            Assert.Equal((byte)i, data[i * 4096 + 100]);
        }
    }

    [Fact]
    public void Zone_append_returns_the_alba_and_zone_errors_come_back_as_statuses()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        ulong page = f.Ram.Alloc(4096);
        SubmissionQueueEntry append = f.Driver.NewSqe(IoOpcode.ZoneAppend, 1);
        NvmeTestDriver.SetPrp(ref append, page);
        append.SetCdw10_11(256); // zone 1
        CompletionQueueEntry cqe = f.Driver.Execute(1, append);
        Assert.True(cqe.Status.IsSuccess);
        Assert.Equal(256UL, cqe.Result);
        // A write not at the write pointer: Zone Invalid Write.
        Assert.Equal(NvmeStatus.ZoneInvalidWrite.WithDnr(), f.Driver.ReadWrite(IoOpcode.Write, 1, 300, [page], 1).WithDnr());
    }

    [Fact]
    public void Report_zones_over_pcie_matches_the_core()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        ulong buf = f.Ram.Alloc(4096);
        SubmissionQueueEntry sqe = f.Driver.NewSqe(IoOpcode.ZoneManagementReceive, 1);
        NvmeTestDriver.SetPrp(ref sqe, buf);
        sqe.SetCdw10_11(0);
        sqe.SetCdw(12, 4096 / 4 - 1);
        Assert.True(f.Driver.Execute(1, sqe).Status.IsSuccess);
        byte[] expected = new byte[4096];
        Assert.True(f.Namespace.ZoneManagementReceive(0, 0, 0, false, expected).IsSuccess);
        Assert.Equal(expected, f.Ram.Span(buf, 4096).ToArray());
    }

    [Fact]
    public void Prps_outside_guest_memory_get_data_transfer_error_and_nothing_is_written()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        Assert.Equal(NvmeStatus.DataTransferError, f.Driver.ReadWrite(IoOpcode.Write, 1, 0, [0x1000], 1));
        ulong page = f.Ram.Alloc(4096);
        // Second page beyond the end of RAM.
        Assert.Equal(NvmeStatus.DataTransferError, f.Driver.ReadWrite(IoOpcode.Write, 1, 0, [page, PcieFixture.RamBase + (ulong)f.Ram.Size], 2));
        Assert.Equal(0UL, f.Namespace.GetZone(0).WritePointer - 0);
        // A misaligned second PRP entry.
        Assert.Equal(NvmeStatus.PrpOffsetInvalid.WithDnr(), f.Driver.ReadWrite(IoOpcode.Write, 1, 0, [page, page + 8], 2));
        Assert.Equal(0UL, f.Namespace.GetZone(0).WritePointer);
    }

    [Fact]
    public void Invalid_queue_creation_is_refused_with_the_specified_statuses()
    {
        using var f = new PcieFixture();
        f.Driver.Enable();
        f.Driver.WaitReady();
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier.WithDnr(), f.Driver.CreateCq(0, 16, 0));
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier.WithDnr(), f.Driver.CreateCq(100, 16, 0));
        Assert.Equal(NvmeStatus.InvalidQueueSize.WithDnr(), f.Driver.CreateCq(1, 1, 0));
        Assert.Equal(NvmeStatus.InvalidQueueSize.WithDnr(), f.Driver.CreateCq(1, 4096, 0));
        Assert.Equal(NvmeStatus.InvalidInterruptVector.WithDnr(), f.Driver.CreateCq(1, 16, 200));
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), f.Driver.CreateCq(1, 16, 1, contiguous: false));
        Assert.Equal(NvmeStatus.PrpOffsetInvalid.WithDnr(), f.Driver.CreateCq(1, 16, 1, address: PcieFixture.RamBase + 0x10));
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), f.Driver.CreateCq(1, 16, 1, address: 0x1000));
        Assert.Equal(NvmeStatus.CompletionQueueInvalid.WithDnr(), f.Driver.CreateSq(1, 16, 1));
        Assert.True(f.Driver.CreateCq(1, 16, 1).IsSuccess);
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier.WithDnr(), f.Driver.CreateCq(1, 16, 1));
        Assert.True(f.Driver.CreateSq(1, 16, 1).IsSuccess);
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier.WithDnr(), f.Driver.CreateSq(1, 16, 1));
        // The CQ cannot go while an SQ uses it.
        SubmissionQueueEntry deleteCq = f.Driver.NewSqe(AdminOpcode.DeleteIoCompletionQueue);
        deleteCq.SetCdw(10, 1);
        Assert.Equal(NvmeStatus.InvalidQueueDeletion.WithDnr(), f.Driver.Execute(0, deleteCq).Status);
        SubmissionQueueEntry deleteSq = f.Driver.NewSqe(AdminOpcode.DeleteIoSubmissionQueue);
        deleteSq.SetCdw(10, 1);
        Assert.True(f.Driver.Execute(0, deleteSq).Status.IsSuccess);
        deleteCq = f.Driver.NewSqe(AdminOpcode.DeleteIoCompletionQueue);
        deleteCq.SetCdw(10, 1);
        Assert.True(f.Driver.Execute(0, deleteCq).Status.IsSuccess);
        deleteCq = f.Driver.NewSqe(AdminOpcode.DeleteIoCompletionQueue);
        deleteCq.SetCdw(10, 1);
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier.WithDnr(), f.Driver.Execute(0, deleteCq).Status);
    }

    [Fact]
    public void Fabrics_commands_and_a_reserved_psdt_are_refused()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        SubmissionQueueEntry fabrics = f.Driver.NewSqe(AdminOpcode.Fabrics);
        Assert.Equal(NvmeStatus.InvalidOpcode.WithDnr(), f.Driver.Execute(0, fabrics).Status);
        SubmissionQueueEntry reserved = f.Driver.NewSqe(IoOpcode.Read, 1);
        reserved.SetFlags(0xC0); // PSDT 11b is reserved (SGLs themselves: SglTests)
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), f.Driver.Execute(1, reserved).Status);
    }

    [Fact]
    public void Sq_doorbell_past_the_queue_size_is_ignored_and_the_queue_keeps_working()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        f.Driver.Device.Write32(0x1000 + 8, 1000);
        f.Driver.Device.Write32(0x1000 + 8 * 50, 1); // no such queue
        Thread.Sleep(20);
        Assert.True(f.Driver.NoCompletionPending(1));
        Assert.Equal(0u, f.Driver.Csts & 2);
        ulong page = f.Ram.Alloc(4096);
        Assert.True(f.Driver.ReadWrite(IoOpcode.Write, 1, 0, [page], 1).IsSuccess);
    }

    [Fact]
    public void Submission_queue_outside_guest_memory_sets_fatal_status()
    {
        using var f = new PcieFixture();
        f.Driver.Enable();
        f.Driver.WaitReady();
        ulong cq = f.Ram.Alloc(16 * 16);
        Assert.True(f.Driver.CreateCq(1, 16, 1, address: cq).IsSuccess);
        // Valid when created, then the guest unmaps the memory under it.
        ulong sq = f.Ram.Alloc(16 * 64);
        Assert.True(f.Driver.CreateSq(1, 16, 1, address: sq).IsSuccess);
        Assert.Equal(0, f.Memory.Unmap(PcieFixture.RamBase, (ulong)f.Ram.Size));
        f.Driver.Device.Write32(0x1000 + 8, 1);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while ((f.Driver.Csts & 2) == 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(1);
        }
        Assert.Equal(2u, f.Driver.Csts & 2);
    }

    [Fact]
    public void Shadow_doorbells_are_read_and_event_indexes_written()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        ulong shadow = f.Ram.Alloc(4096), events = f.Ram.Alloc(4096);
        SubmissionQueueEntry dbbuf = f.Driver.NewSqe(AdminOpcode.DoorbellBufferConfig);
        NvmeTestDriver.SetPrp(ref dbbuf, shadow, events);
        Assert.True(f.Driver.Execute(0, dbbuf).Status.IsSuccess);
        ulong page = f.Ram.Alloc(4096);
        SubmissionQueueEntry write = f.Driver.NewSqe(IoOpcode.Write, 1);
        NvmeTestDriver.SetPrp(ref write, page);
        write.SetCdw10_11(0);
        // Only the shadow doorbell is updated (no MMIO write): the poller must pick it up.
        f.Driver.Submit(1, in write, ring: false);
        BinaryPrimitives.WriteUInt32LittleEndian(f.Ram.Span(shadow + 8, 4), 1);
        CompletionQueueEntry cqe = f.Driver.WaitCompletion(1);
        Assert.True(cqe.Status.IsSuccess);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (BinaryPrimitives.ReadUInt32LittleEndian(f.Ram.Span(events + 8, 4)) != 1 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(1);
        }
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(f.Ram.Span(events + 8, 4)));
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), ExecuteDbbuf(f, shadow + 8, events));
    }

    private static NvmeStatus ExecuteDbbuf(PcieFixture f, ulong shadow, ulong events)
    {
        SubmissionQueueEntry dbbuf = f.Driver.NewSqe(AdminOpcode.DoorbellBufferConfig);
        NvmeTestDriver.SetPrp(ref dbbuf, shadow, events);
        return f.Driver.Execute(0, dbbuf).Status;
    }

    [Fact]
    public void Many_commands_in_flight_fill_the_queue_without_losing_any()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        ulong page = f.Ram.Alloc(4096);
        for (int round = 0; round < 4; round++)
        {
            var ids = new HashSet<ushort>();
            for (int i = 0; i < 15; i++)
            {
                SubmissionQueueEntry read = f.Driver.NewSqe(IoOpcode.Read, 1);
                NvmeTestDriver.SetPrp(ref read, page);
                read.SetCdw10_11((ulong)i);
                ids.Add(read.CommandId);
                f.Driver.Submit(1, in read);
            }
            for (int i = 0; i < 15; i++)
            {
                CompletionQueueEntry cqe = f.Driver.WaitCompletion(1);
                Assert.True(cqe.Status.IsSuccess);
                Assert.True(ids.Remove(cqe.CommandId));
            }
            Assert.Empty(ids);
        }
    }
}

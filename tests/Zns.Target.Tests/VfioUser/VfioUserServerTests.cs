using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Target.Pcie;
using Zns.Target.Tests.Pcie;
using Zns.Target.VfioUser;

namespace Zns.Target.Tests.VfioUser;

public sealed class VfioUserServerTests : IDisposable
{
    private const ulong RamBase = 0x1_0000_0000;
    private readonly string _dir = Directory.CreateTempSubdirectory("zns-vfio-").FullName;
    private readonly ZonedNamespace _ns = ZonedNamespace.CreateInMemory(16 << 20, new NamespaceOptions { ZoneSize = 1 << 20, ZoneCapacity = 1 << 20 });
    private readonly NvmeTarget _target;
    private readonly VfioUserServer _server;

    public VfioUserServerTests()
    {
        _target = new NvmeTarget(new TargetOptions(), [_ns]);
        _server = new VfioUserServer(_target, Path.Combine(_dir, "nvme.sock"));
        _server.Start();
    }

    public void Dispose()
    {
        _server.Dispose();
        _target.Dispose();
        _ns.Dispose();
        Directory.Delete(_dir, true);
    }

    private VfioUserTestClient Connect()
    {
        var client = new VfioUserTestClient(_server.SocketPath);
        VfioUserTestClient.Reply v = client.Version();
        Assert.False(v.IsError);
        return client;
    }

    [Fact]
    public void Version_reply_is_0_0_with_a_json_capability_object()
    {
        using var client = new VfioUserTestClient(_server.SocketPath);
        VfioUserTestClient.Reply v = client.Version();
        Assert.False(v.IsError);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(v.Payload));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(v.Payload.AsSpan(2)));
        Assert.Equal(0, v.Payload[^1]);
        using var doc = System.Text.Json.JsonDocument.Parse(v.Payload.AsMemory(4, v.Payload.Length - 5));
        System.Text.Json.JsonElement caps = doc.RootElement.GetProperty("capabilities");
        Assert.Equal(1 << 20, caps.GetProperty("max_data_xfer_size").GetInt32());
        Assert.Equal(4096, caps.GetProperty("pgsizes").GetInt32());
    }

    [Fact]
    public void Device_region_and_irq_info_describe_a_pci_nvme_function()
    {
        using VfioUserTestClient client = Connect();
        byte[] p = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(p, 16);
        VfioUserTestClient.Reply info = client.Call(VfioUserCommand.DeviceGetInfo, p);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(info.Payload.AsSpan(4))); // RESET | PCI
        Assert.Equal(9u, BinaryPrimitives.ReadUInt32LittleEndian(info.Payload.AsSpan(8)));
        Assert.Equal(5u, BinaryPrimitives.ReadUInt32LittleEndian(info.Payload.AsSpan(12)));
        long[] sizes = new long[9];
        for (uint i = 0; i < 9; i++)
        {
            byte[] q = new byte[32];
            BinaryPrimitives.WriteUInt32LittleEndian(q, 32);
            BinaryPrimitives.WriteUInt32LittleEndian(q.AsSpan(8), i);
            VfioUserTestClient.Reply r = client.Call(VfioUserCommand.DeviceGetRegionInfo, q);
            Assert.False(r.IsError);
            Assert.Equal(i, BinaryPrimitives.ReadUInt32LittleEndian(r.Payload.AsSpan(8)));
            sizes[i] = BinaryPrimitives.ReadInt64LittleEndian(r.Payload.AsSpan(16));
        }
        Assert.Equal([0x4000, 0, 0, 0, 0x2000, 0, 0, 4096, 0], sizes);
        byte[] irq = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(irq, 16);
        BinaryPrimitives.WriteUInt32LittleEndian(irq.AsSpan(8), 2);
        VfioUserTestClient.Reply msix = client.Call(VfioUserCommand.DeviceGetIrqInfo, irq);
        Assert.Equal((uint)_server.Function.MsixVectorCount, BinaryPrimitives.ReadUInt32LittleEndian(msix.Payload.AsSpan(12)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(msix.Payload.AsSpan(4)) & 1); // EVENTFD
    }

    [Fact]
    public void Bring_up_io_and_interrupts_over_the_socket_then_zone_state_survives_a_reconnect()
    {
        using var ram = new GuestRam(RamBase, 4 << 20);
        using var vector0 = new TestEventFd();
        using var vector1 = new TestEventFd();
        ulong page;
        using (VfioUserTestClient client = Connect())
        {
            Assert.False(client.DmaMap(RamBase, (ulong)ram.Size, ram.Fd).IsError);
            Assert.Equal(Errno.Eexist, client.DmaMap(RamBase + 4096, 4096, ram.Fd).Errno);
            Assert.False(client.SetIrqs(2, 4 | 32, 0, 2, [vector0.Fd, vector1.Fd]).IsError);
            client.WriteConfig(4, [0x06, 0x00]); // memory space + bus master
            var driver = new NvmeTestDriver(client, ram);
            driver.Enable();
            driver.WaitReady();
            byte[] id = driver.Identify(1);
            Assert.Equal("zns", System.Text.Encoding.ASCII.GetString(id, 24, 40).Trim());
            Assert.True(vector0.TakeWithin(TimeSpan.FromSeconds(2)) > 0, "admin completion interrupt");
            driver.CreateIoQueuePair(1);
            page = ram.Alloc(4096);
            ram.Span(page, 4096).Fill(0x5A);
            Assert.True(driver.ReadWrite(IoOpcode.Write, 1, 256, [page], 1).IsSuccess);
            Assert.True(vector1.TakeWithin(TimeSpan.FromSeconds(2)) > 0, "I/O completion interrupt on the CQ's vector");
            // Posted (no-reply) doorbell writes, as QEMU sends them, work too.
            SubmissionQueueEntry read = driver.NewSqe(IoOpcode.Read, 1);
            ulong back = ram.Alloc(4096);
            NvmeTestDriver.SetPrp(ref read, back);
            read.SetCdw10_11(256);
            driver.Submit(1, in read, ring: false);
            client.RegionWrite(0, 0x1008, BitConverter.GetBytes(2u), noReply: true);
            Assert.True(driver.WaitCompletion(1).Status.IsSuccess);
            Assert.True(ram.Span(back, 4096).IndexOfAnyExcept((byte)0x5A) < 0);
        }
        // The client left: the controller was reset and its memory unmapped; zone state stays.
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (_server.HasClient && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(5);
        }
        Assert.Equal(0, _server.Memory.WindowCount);
        Assert.Equal(257UL, _ns.GetZone(1).WritePointer);
        using (VfioUserTestClient client = Connect())
        {
            Assert.Equal(0u, client.Read32(0x1C)); // CSTS after the reset
            Assert.False(client.DmaMap(RamBase, (ulong)ram.Size, ram.Fd).IsError);
            var driver = new NvmeTestDriver(client, ram);
            driver.Enable();
            driver.WaitReady();
            driver.CreateIoQueuePair(1);
            ulong back = ram.Alloc(4096);
            Assert.True(driver.ReadWrite(IoOpcode.Read, 1, 256, [back], 1).IsSuccess);
            Assert.True(ram.Span(back, 4096).IndexOfAnyExcept((byte)0x5A) < 0);
            Assert.False(client.DmaUnmap(RamBase, (ulong)ram.Size).IsError);
            Assert.Equal(Errno.Enoent, client.DmaUnmap(RamBase, (ulong)ram.Size).Errno);
        }
    }

    [Fact]
    public void Malformed_commands_get_error_replies_and_the_session_continues()
    {
        using var client = new VfioUserTestClient(_server.SocketPath);
        Assert.Equal(Errno.Einval, client.RegionRead(0, 0, 4).Errno); // before VERSION
        Assert.Equal(Errno.Einval, client.Version("{not json").Errno);
        Assert.Equal(Errno.Einval, client.Version("[1,2]").Errno);
        Assert.False(client.Version(null).IsError);
        Assert.Equal(Errno.Einval, client.RegionRead(0, 0x3FFE, 4).Errno); // crosses the end of BAR0
        Assert.Equal(Errno.Einval, client.RegionRead(1, 0, 4).Errno); // absent region
        Assert.Equal(Errno.Einval, client.RegionRead(99, 0, 4).Errno);
        Assert.Equal(Errno.Einval, client.RegionRead(0, ulong.MaxValue - 1, 4).Errno);
        Assert.Equal(Errno.Einval, client.RegionRead(7, 0, 2 << 20).Errno); // above max_data_xfer_size
        Assert.Equal(Errno.Enotsup, client.Call(77, []).Errno);
        Assert.Equal(Errno.Einval, client.Call(VfioUserCommand.DmaMap, new byte[8]).Errno);
        Assert.Equal(Errno.Einval, client.DmaMap(0, 0, -1).Errno);
        Assert.Equal(Errno.Einval, client.DmaMap(ulong.MaxValue - 4095, 8192, -1).Errno);
        Assert.Equal(Errno.Einval, client.SetIrqs(2, 4 | 8 | 32, 0, 1).Errno); // two actions
        Assert.Equal(Errno.Einval, client.SetIrqs(2, 4 | 32, 5, 100).Errno); // vectors out of range
        using (var fd = new TestEventFd())
        {
            Assert.Equal(Errno.Einval, client.SetIrqs(0, 4 | 32, 0, 1, [fd.Fd]).Errno); // no INTx
        }
        // A write whose count disagrees with its payload.
        byte[] bad = new byte[20];
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(12), 100);
        Assert.Equal(Errno.Einval, client.Call(VfioUserCommand.RegionWrite, bad).Errno);
        Assert.Equal(Errno.Einval, client.Call(VfioUserCommand.DeviceReset, [1]).Errno);
        Assert.False(client.Call(VfioUserCommand.DeviceReset, []).IsError);
        Assert.Equal(PciConfigSpace.VendorId, BinaryPrimitives.ReadUInt16LittleEndian(client.ReadConfig(0, 2)));
    }

    [Fact]
    public void Broken_framing_closes_the_connection_and_the_next_client_is_served()
    {
        using (var client = new VfioUserTestClient(_server.SocketPath))
        {
            byte[] header = new byte[16];
            new VfioUserHeader(1, VfioUserCommand.Version, 8, 0, 0).Write(header); // size below the header
            client.SendRaw(header);
            Assert.Throws<IOException>(() => client.ReceiveReply());
        }
        using (var client = new VfioUserTestClient(_server.SocketPath))
        {
            byte[] header = new byte[16];
            new VfioUserHeader(1, VfioUserCommand.RegionWrite, 64 << 20, 0, 0).Write(header); // far above the limit
            client.SendRaw(header);
            Assert.Throws<IOException>(() => client.ReceiveReply());
        }
        using VfioUserTestClient ok = Connect();
        Assert.Equal(PciConfigSpace.VendorId, BinaryPrimitives.ReadUInt16LittleEndian(ok.ReadConfig(0, 2)));
    }

    [Fact]
    public void Unused_descriptors_are_closed()
    {
        using VfioUserTestClient client = Connect();
        using var ram = new GuestRam(RamBase, 1 << 20);
        // Count only the descriptors of this RAM (each one received is a new descriptor of the same memory file), so
        // sockets that tests running in parallel open and close do not count.
        string target = File.ResolveLinkTarget($"/proc/self/fd/{ram.Fd}", returnFinalTarget: false)!.FullName;
        int OfThisRam() => Directory.GetFiles("/proc/self/fd").Count(fd =>
        {
            try { return File.ResolveLinkTarget(fd, returnFinalTarget: false)?.FullName == target; }
            catch (IOException) { return false; } // closed while listed
        });
        int before = OfThisRam();
        for (int i = 0; i < 20; i++)
        {
            // Descriptors sent with a command that takes none.
            Assert.Equal(Errno.Einval, client.Call(VfioUserCommand.RegionRead, new byte[4], [ram.Fd]).Errno);
        }
        Assert.Equal(before, OfThisRam());
    }
}

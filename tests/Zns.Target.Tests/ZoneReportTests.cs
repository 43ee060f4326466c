using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Nvme.Layouts;

namespace Zns.Target.Tests;

/// <summary>
/// Zone Management Receive (<see cref="ZoneReportLayout"/>) against a namespace alone: the report's checks, header
/// and descriptors, with the zone changes that show in it. 8 zones of 16 blocks (512 B), capacity 12, descriptor
/// extension 64 bytes.
/// </summary>
public class ZoneReportTests
{
    private const int Bs = 512;
    private static ulong Z(uint zone) => zone * 16ul;

    private static NamespaceOptions Small(uint maxActive = 0) => new()
    {
        LogicalBlockSize = 512,
        ZoneSize = 16 * 512,
        ZoneCapacity = 12 * 512,
        MaxOpen = 0,
        MaxActive = maxActive,
        AutoTransition = true,
        CrossRead = false,
        DescriptorExtensionSize = 64,
        Zasl = 0,
    };

    private static ZonedNamespace Ram(NamespaceOptions options, int zones = 8) =>
        ZonedNamespace.CreateInMemory(zones * options.ZoneSize, options);

    private static byte[] Blocks(int count, byte fill) => Enumerable.Repeat(fill, count * Bs).ToArray();

    private static void AssertStatus(NvmeStatus expected, NvmeStatus actual)
    {
        Assert.True(expected.WithDnr() == actual, $"expected {expected.WithDnr()}, got {actual}");
    }

    private static void Ok(NvmeStatus s) => Assert.True(s.IsSuccess, $"expected success, got {s}");

    [Fact]
    public void SetDescriptorExtensionFromEmptyMakesClosedWithZdev()
    {
        using var ns = Ram(Small(maxActive: 1));
        var ext = Enumerable.Range(0, 64).Select(i => (byte)i).ToArray();
        AssertStatus(NvmeStatus.InvalidField, ns.ZoneManagementSend(Z(0), ZoneSendAction.SetDescriptorExtension, false, new byte[32]));
        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.SetDescriptorExtension, false, ext));
        var z = ns.GetZone(0);
        Assert.Equal(ZoneState.Closed, z.State);
        Assert.Equal(ZoneAttributes.DescriptorExtensionValid, z.Attributes);
        Assert.Equal(ext, ns.GetDescriptorExtension(0));
        AssertStatus(NvmeStatus.InvalidZoneStateTransition, ns.ZoneManagementSend(Z(0), ZoneSendAction.SetDescriptorExtension, false, ext));
        AssertStatus(NvmeStatus.TooManyActiveZones, ns.ZoneManagementSend(Z(1), ZoneSendAction.SetDescriptorExtension, false, ext));

        var report = new byte[64 + 2 * 128];
        Ok(ns.ZoneManagementReceive(0, 1, 0, partial: true, report));
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(report));
        Assert.Equal(0x80, report[64 + 2]);
        Assert.Equal(ext, report[(64 + 64)..(64 + 128)]);

        Ok(ns.ZoneManagementSend(Z(0), ZoneSendAction.Reset, false));
        Assert.Equal(ZoneAttributes.None, ns.GetZone(0).Attributes);
        Assert.All(ns.GetDescriptorExtension(0), b => Assert.Equal(0, b));
        using var none = Ram(Small() with { DescriptorExtensionSize = 0 });
        AssertStatus(NvmeStatus.InvalidField, none.ZoneManagementSend(0, ZoneSendAction.SetDescriptorExtension, false, default));
        AssertStatus(NvmeStatus.InvalidField, none.ZoneManagementReceive(0, 1, 0, false, new byte[4096]));
    }

    [Fact]
    public void ReportHasExactDescriptorsAndNumberOfZonesSemantics()
    {
        using var ns = Ram(Small());
        Ok(ns.Write(Z(1), Blocks(3, 1)));
        Ok(ns.ZoneManagementSend(Z(2), ZoneSendAction.Finish, false));
        var buf = new byte[64 + 3 * 64];
        Ok(ns.ZoneManagementReceive(Z(1) + 5, 0, 0, partial: false, buf));
        Assert.Equal(7ul, BinaryPrimitives.ReadUInt64LittleEndian(buf)); // all zones from zone 1 to the end
        var d = buf.AsSpan(64, 64);
        Assert.Equal(2, d[0]);
        Assert.Equal(0x20, d[1]);
        Assert.Equal(12ul, BinaryPrimitives.ReadUInt64LittleEndian(d[8..]));
        Assert.Equal(Z(1), BinaryPrimitives.ReadUInt64LittleEndian(d[16..]));
        Assert.Equal(Z(1) + 3, BinaryPrimitives.ReadUInt64LittleEndian(d[24..]));
        var full = buf.AsSpan(128, 64);
        Assert.Equal(0xE0, full[1]);
        Assert.Equal(ulong.MaxValue, BinaryPrimitives.ReadUInt64LittleEndian(full[24..]));

        Ok(ns.ZoneManagementReceive(0, 0, 0, partial: true, buf));
        Assert.Equal(3ul, BinaryPrimitives.ReadUInt64LittleEndian(buf));
        Ok(ns.ZoneManagementReceive(0, 0, (byte)ZoneReportFilter.Empty, partial: false, new byte[64]));
        var header = new byte[64];
        Ok(ns.ZoneManagementReceive(0, 0, (byte)ZoneReportFilter.Empty, partial: false, header));
        Assert.Equal(6ul, BinaryPrimitives.ReadUInt64LittleEndian(header));
        Ok(ns.ZoneManagementReceive(0, 0, (byte)ZoneReportFilter.ImplicitlyOpened, partial: false, buf));
        Assert.Equal(1ul, BinaryPrimitives.ReadUInt64LittleEndian(buf));
        Assert.Equal(Z(1), BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(64 + 16)));
        Assert.All(buf[128..], b => Assert.Equal(0, b));

        AssertStatus(NvmeStatus.InvalidField, ns.ZoneManagementReceive(0, 2, 0, false, buf));
        AssertStatus(NvmeStatus.InvalidField, ns.ZoneManagementReceive(0, 0, 8, false, buf));
        AssertStatus(NvmeStatus.InvalidField, ns.ZoneManagementReceive(0, 0, 0, false, new byte[60]));
        AssertStatus(NvmeStatus.LbaOutOfRange, ns.ZoneManagementReceive(8 * 16, 0, 0, false, buf));
    }

    [Fact]
    public void ConventionalNamespaceWritesAnywhereAndRefusesZoneCommands()
    {
        using var ns = ZonedNamespace.CreateInMemory(1 << 20, new NamespaceOptions { Zoned = false, LogicalBlockSize = 512 });
        Ok(ns.Write(100, Blocks(2, 3)));
        Ok(ns.Write(10, Blocks(1, 4)));
        var b = new byte[Bs];
        Ok(ns.Read(100, b));
        Assert.All(b, x => Assert.Equal(3, x));
        AssertStatus(NvmeStatus.InvalidOpcode, ns.Append(0, Blocks(1, 1), out _));
        AssertStatus(NvmeStatus.InvalidOpcode, ns.ZoneManagementSend(0, ZoneSendAction.Open, false));
        AssertStatus(NvmeStatus.InvalidOpcode, ns.ZoneManagementReceive(0, 0, 0, false, new byte[64]));
    }
}

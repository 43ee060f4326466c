using Zns.Nvme;
using Zns.Core.Zones;
using static Zns.Core.Tests.TestNamespaces;

namespace Zns.Core.Tests;

/// <summary>
/// A write into a Zone Random Write Area above everything written so far leaves unwritten blocks below it; after a
/// Zone Reset (which only discards, on RAM keeping the old bytes) those must read as zeros, as on QEMU.
/// </summary>
public class ZrwaGapTests
{
    private static void Ok(NvmeStatus s) => Assert.True(s.IsSuccess, s.ToString());

    [Fact]
    public void BlocksSkippedInTheWindow_ReadAsZeros_NotAsDataFromBeforeTheReset()
    {
        using var ns = Ram(Small() with { Zrwas = 8 * 512 });
        Ok(ns.Write(16, Blocks(12, 0xAA)));                                   // zone 1 full of old data
        Ok(ns.ZoneManagementSend(16, ZoneSendAction.Reset, false));
        Ok(ns.ZoneManagementSend(16, ZoneSendAction.Open, false, zsaso: true)); // with a ZRWA
        Ok(ns.Write(22, Blocks(1, 0x55)));                                    // block 6, above the write pointer
        Ok(ns.Write(16, Blocks(1, 0x66)));                                    // then block 0

        var zone = new byte[8 * 512];
        Ok(ns.Read(16, zone));
        Assert.All(zone[..512], b => Assert.Equal(0x66, b));
        Assert.All(zone[512..(6 * 512)], b => Assert.Equal(0, b));
        Assert.All(zone[(6 * 512)..(7 * 512)], b => Assert.Equal(0x55, b));
    }

    [Fact]
    public void ACopyIntoTheWindowAboveTheData_ZerosTheBlocksItSkips()
    {
        using var ns = Ram(Small() with { Zrwas = 8 * 512 });
        Ok(ns.Write(16, Blocks(12, 0xAA)));
        Ok(ns.Write(0, Blocks(1, 0x77)));
        Ok(ns.ZoneManagementSend(16, ZoneSendAction.Reset, false));
        Ok(ns.ZoneManagementSend(16, ZoneSendAction.Open, false, zsaso: true));
        var range = new byte[32];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(range.AsSpan(8), 0); // LBA 0, one block
        Ok(ns.Copy(20, 0, 1, range, out _));                                               // block 4 of zone 1

        var zone = new byte[5 * 512];
        Ok(ns.Read(16, zone));
        Assert.All(zone[..(4 * 512)], b => Assert.Equal(0, b));
        Assert.All(zone[(4 * 512)..], b => Assert.Equal(0x77, b));
    }
}

using Zns.Nvme;
using Zns.Core.Storage;
using Zns.Core.Zones;
using static Zns.Core.Tests.TestNamespaces;

namespace Zns.Core.Tests;

/// <summary>
/// A reset zone's old data is only discarded, not cleared, on RAM: what a host reads after a reset and a rewrite must
/// still be the new data and zeros, never the old blocks.
/// </summary>
public class ResetDataTests
{
    private static void Ok(NvmeStatus s) => Assert.True(s.IsSuccess, s.ToString());

    public static TheoryData<string> Backstores => new() { "ram", "file" };

    [Theory]
    [MemberData(nameof(Backstores))]
    public void RewrittenZoneReadsNewDataThenZeros(string kind)
    {
        using var dir = new TempDir();
        var options = Small();
        using var ns = kind == "ram" ? Ram(options) : OpenFile(dir, options);
        Ok(ns.Write(16, Blocks(12, 0xAA)));                    // zone 1 full of old data
        Ok(ns.ZoneManagementSend(16, ZoneSendAction.Reset, false));
        Ok(ns.Write(16, Blocks(2, 0x55)));

        var zone = new byte[16 * 512];
        Ok(ns.Read(16, zone));
        Assert.All(zone[..1024], b => Assert.Equal(0x55, b));
        Assert.All(zone[1024..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void RamDiscardKeepsChunksButTheNamespaceNeverShowsThem()
    {
        using var store = new MemoryBackstore(4 << 20);
        store.Write(1 << 20, Blocks(8, 0xAA));
        store.Discard(1 << 20, 1 << 20);
        var raw = new byte[512];
        store.Read(1 << 20, raw);
        Assert.All(raw, b => Assert.Equal(0xAA, b));          // Discard leaves the memory alone...
        store.Zero(1 << 20, 512);
        store.Read(1 << 20, raw);
        Assert.All(raw, b => Assert.Equal(0, b));             // ...Zero (Write Zeroes) clears it
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Discard(4 << 20, 1));
    }

    private static ZonedNamespace OpenFile(TempDir dir, NamespaceOptions options)
    {
        string path = dir.File("ns.raw");
        FileBackstore.Create(path, 8 * options.ZoneSize, preallocate: false);
        return ZonedNamespace.OpenFile(path, options);
    }
}

using Zns.Core.Zones;

namespace Zns.Core.Tests;

public class GeometryTests
{
    [Fact]
    public void SeedExampleGives512ZonesOf64MiBWith62MiBCapacity()
    {
        var options = new NamespaceOptions().WithQemuOptions("zoned.zone_size=64M,zoned.zone_capacity=62M,zoned.max_open=16,zoned.max_active=32,zoned.zasl=5");
        var g = ZoneGeometry.Create(options, 32L << 30);
        Assert.Equal(512u, g.ZoneCount);
        Assert.Equal(0x4000ul, g.ZoneSizeLbas);
        Assert.Equal(0x3E00ul, g.ZoneCapacityLbas);
        Assert.Equal(16u, g.MaxOpen);
        Assert.Equal(32u, g.MaxActive);
        Assert.Equal(131072, g.ZoneAppendLimitBytes);
        Assert.Equal(512ul * 0x4000, g.NamespaceSizeLbas);
        Assert.True(g.ZoneSizeIsPowerOfTwo);
    }

    [Fact]
    public void DefaultsFollowQemu()
    {
        var o = new NamespaceOptions();
        Assert.Equal(128L << 20, o.ZoneSize);
        Assert.Equal(4096, o.LogicalBlockSize);
        Assert.True(o.AutoTransition);
        var g = ZoneGeometry.Create(o, 1L << 30);
        Assert.Equal(8u, g.ZoneCount);
        Assert.Equal(g.ZoneSizeLbas, g.ZoneCapacityLbas);
        Assert.Equal(512 * 1024, g.MaxTransferBytes);
        Assert.Equal(g.MaxTransferBytes, g.ZoneAppendLimitBytes);
    }

    [Fact]
    public void PartialLastZoneIsNotExposed()
    {
        var g = ZoneGeometry.Create(new NamespaceOptions { ZoneSize = 1 << 20 }, (5L << 20) + 4096);
        Assert.Equal(5u, g.ZoneCount);
        Assert.Equal(5ul * 256, g.NamespaceSizeLbas);
    }

    [Fact]
    public void NonPowerOfTwoZoneSizeIsAllowedButFlagged()
    {
        var g = ZoneGeometry.Create(new NamespaceOptions { ZoneSize = 96L << 20 }, 1L << 30);
        Assert.False(g.ZoneSizeIsPowerOfTwo);
    }

    [Theory]
    [InlineData("zoned.zone_capacity=128M,zoned.zone_size=64M", "zoned.zone_capacity")]
    [InlineData("zoned.max_open=8,zoned.max_active=4", "zoned.max_open")]
    [InlineData("logical_block_size=1000", "logical_block_size")]
    [InlineData("logical_block_size=4M", "logical_block_size")]
    [InlineData("zoned.zone_size=1000", "zoned.zone_size")]
    [InlineData("zoned.zone_capacity=4000,zoned.zone_size=8K,logical_block_size=4096", "zoned.zone_capacity")]
    [InlineData("zoned.zrwas=6000", "zoned.zrwas")]
    [InlineData("zoned.zrwas=16K,zoned.zrwafg=12K", "zoned.zrwas")]
    [InlineData("zoned.zrwas=16K,zoned.max_active=4,zoned.numzrwa=5", "zoned.numzrwa")]
    [InlineData("pi=4", "pi")]
    [InlineData("pi=1", "ms")]
    [InlineData("pif=1", "pif")]
    [InlineData("zoned=off,ms=8", "ms")]
    [InlineData("zoned.zone_size=2G", "zoned.zone_size")]
    [InlineData("zoned.descr_ext_size=100", "zoned.descr_ext_size")]
    [InlineData("zoned.zasl=9", "zoned.zasl")]
    [InlineData("logical_block_size=512,physical_block_size=4096", "physical_block_size")]
    [InlineData("physical_block_size=512,logical_block_size=4096", "physical_block_size")]
    public void InvalidCombinationsNameTheOption(string list, string option)
    {
        var ex = Assert.Throws<OptionException>(() => ZoneGeometry.Create(new NamespaceOptions().WithQemuOptions(list), 1L << 30));
        Assert.Equal(option, ex.Option);
        Assert.StartsWith(option + ":", ex.Message);
    }

    [Theory]
    [InlineData("zoned.zone_size=12Q", "zoned.zone_size")]
    [InlineData("zoned.cross_read=maybe", "zoned.cross_read")]
    [InlineData("zoned.bogus=1", "zoned.bogus")]
    [InlineData("zoned.max_open=-1", "zoned.max_open")]
    [InlineData("novalue", "novalue")]
    public void MalformedOptionsNameTheOption(string list, string option)
    {
        var ex = Assert.Throws<OptionException>(() => new NamespaceOptions().WithQemuOptions(list));
        Assert.Equal(option, ex.Option);
    }

    [Theory]
    [InlineData("64M", 64L << 20)]
    [InlineData("62M", 62L << 20)]
    [InlineData("4096", 4096)]
    [InlineData("4K", 4096)]
    [InlineData("32G", 32L << 30)]
    [InlineData("1T", 1L << 40)]
    [InlineData("512B", 512)]
    public void SizesUseBinarySuffixes(string text, long bytes) =>
        Assert.Equal(bytes, NamespaceOptions.ParseSize("x", text));

    [Fact]
    public void BooleansAcceptQemuSpellings()
    {
        var o = new NamespaceOptions().WithQemuOptions("zoned.cross_read=on,zoned.auto_transition=off,zoned=true");
        Assert.True(o.CrossRead);
        Assert.False(o.AutoTransition);
        Assert.True(o.Zoned);
    }

    [Fact]
    public void PhysicalBlockSizeEqualToTheLogicalOneIsTaken()
    {
        ZoneGeometry g = ZoneGeometry.Create(new NamespaceOptions().WithQemuOptions("logical_block_size=4096,physical_block_size=4096,zoned.zone_size=1M"), 1L << 30);
        Assert.Equal(4096, g.BlockSize);
    }
}

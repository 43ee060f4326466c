using System.Buffers.Binary;
using Zns.Core.Storage;
using Zns.Core.Zones;
using static Zns.Core.Tests.TestNamespaces;

namespace Zns.Core.Tests;

/// <summary>
/// The namespace options the zone state file keeps: every one survives a reopen, a different value is refused or
/// applies for the run as its rule says, and a state file of the older format (which kept the geometry only) still
/// opens, with the defaults it was served with.
/// </summary>
public class KeptOptionsTests
{
    private const long Backstore = 8 * 16 * 512;

    // Every kept option away from its default, so that a field the state file drops cannot go unnoticed.
    private static NamespaceOptions Everything() => new NamespaceOptions
    {
        LogicalBlockSize = 512,
        ZoneSize = 16 * 512,
        ZoneCapacity = 12 * 512,
        DescriptorExtensionSize = 128,
    }.WithQemuOptions(
        "zoned.max_open=5,zoned.max_active=6,zoned.cross_read=on,zoned.auto_transition=off,mdts=5,zoned.zasl=3,vsl=4," +
        "zoned.zrwas=4K,zoned.zrwafg=2K,zoned.numzrwa=3,mssrl=16,mcl=64,msrc=3," +
        "uuid=6b3f1c1e-0d7a-4c1e-9d0a-0123456789ab,nguid=00112233-4455-6677-8899-aabbccddeeff,eui64=0x0011223344556677," +
        "ms=16,mset=1,pi=2,pil=1,pif=2");

    private static readonly Dictionary<string, string> EverythingKept = new()
    {
        ["logical_block_size"] = "512", ["zoned"] = "on", ["zoned.zone_size"] = "8K", ["zoned.zone_capacity"] = "6K",
        ["zoned.max_open"] = "5", ["zoned.max_active"] = "6", ["zoned.descr_ext_size"] = "128", ["zoned.cross_read"] = "on",
        ["zoned.zrwas"] = "4K", ["zoned.zrwafg"] = "2K", ["zoned.numzrwa"] = "3", ["mssrl"] = "16", ["mcl"] = "64", ["msrc"] = "3",
        ["uuid"] = "6b3f1c1e-0d7a-4c1e-9d0a-0123456789ab", ["nguid"] = "00112233445566778899aabbccddeeff",
        ["eui64"] = "0x0011223344556677", ["mdts"] = "5", ["zoned.zasl"] = "3", ["vsl"] = "4", ["zoned.auto_transition"] = "off",
        ["ms"] = "16", ["mset"] = "1", ["pi"] = "2", ["pil"] = "1", ["pif"] = "2",
    };

    private static string NewBackstore(TempDir dir, long size = Backstore)
    {
        string path = dir.File("ns.raw");
        FileBackstore.Create(path, size, preallocate: false);
        return path;
    }

    [Fact]
    public void EveryKeptOptionSurvivesAReopen_AndOpensTheSameNamespaceWithoutBeingGiven()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        using (ZonedNamespace.OpenFile(path, Everything())) { }

        var kept = ZonedNamespace.ReadKeptOptions(path)!;
        Assert.Equal(KeptNamespaceOptions.CurrentFormat, kept.Format);
        Assert.Equal(EverythingKept.Keys.Order(), KeptOption.All.Select(o => o.Name).Order());
        var defaults = new KeptNamespaceOptions { ZoneSize = 128L << 20 };
        foreach (KeptOption option in KeptOption.All)
        {
            Assert.Equal((option.Name, EverythingKept[option.Name]), (option.Name, option.ValueOf(kept)));
            if (option.Name != "zoned") // the conventional namespace's round trip is below
            {
                Assert.NotEqual((option.Name, option.ValueOf(defaults)), (option.Name, option.ValueOf(kept)));
            }
        }

        // What a command that is given no options opens: the namespace as it was made.
        using var ns = ZonedNamespace.OpenFile(path, ZonedNamespace.ReadStoredOptions(path)!);
        var g = ns.Geometry;
        Assert.Equal((8ul, 4ul, 3u, 3u), (g.ZrwaSizeLbas, g.ZrwaFlushGranularityLbas, g.ZrwaResources, g.ZrwaResourcesReported));
        Assert.Equal(((ushort)16, 64u, (byte)3, (byte)4), (g.Mssrl, g.Mcl, g.Msrc, g.Vsl));
        Assert.Equal((5u, 6u, true, false, (byte)5, (byte)3, 128), (g.MaxOpen, g.MaxActive, g.CrossRead, g.AutoTransition, g.Mdts, g.Zasl, g.DescriptorExtensionSize));
        Assert.Equal(Guid.Parse("6b3f1c1e-0d7a-4c1e-9d0a-0123456789ab"), ns.Uuid);
        Assert.Equal(Convert.FromHexString("00112233445566778899aabbccddeeff"), ns.Options.Nguid!.Value.ToArray());
        Assert.Equal(0x0011223344556677UL, ns.Options.Eui64);
        var open = ns.ZoneManagementSend(0, ZoneSendAction.Open, false, zsaso: true); // an Open that allocates a ZRWA
        Assert.True(open.IsSuccess, open.ToString());
    }

    [Fact]
    public void AConventionalNamespaceKeepsItsOptions_AndNoZoneOption()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        using (ZonedNamespace.OpenFile(path, new NamespaceOptions().WithQemuOptions("zoned=off,logical_block_size=512,mcl=64,vsl=3,eui64=0x5"))) { }
        var kept = ZonedNamespace.ReadKeptOptions(path)!;
        Assert.Equal(("off", "64", "3", "0x0000000000000005"),
            (KeptOption.Find("zoned")!.ValueOf(kept), KeptOption.Find("mcl")!.ValueOf(kept), KeptOption.Find("vsl")!.ValueOf(kept), KeptOption.Find("eui64")!.ValueOf(kept)));
        Assert.All(KeptOption.All.Where(o => o.ZonedOnly), o => Assert.Null(o.ValueOf(kept)));
        using var ns = ZonedNamespace.OpenFile(path, ZonedNamespace.ReadStoredOptions(path)!);
        Assert.False(ns.IsZoned);
        Assert.Equal((64u, (byte)3), (ns.Geometry.Mcl, ns.Geometry.Vsl));
    }

    [Fact]
    public void WithoutAUuidOption_TheGeneratedUuidIsKept_AndANullUuidMeansTheKeptOne()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        Guid uuid;
        using (var ns = ZonedNamespace.OpenFile(path, Small()))
        {
            uuid = ns.Uuid;
        }
        Assert.Equal(uuid, ZonedNamespace.ReadKeptOptions(path)!.Uuid);
        using (var ns = ZonedNamespace.OpenFile(path, Small()))
        {
            Assert.Equal(uuid, ns.Uuid);
        }
        Assert.Equal("uuid", Assert.Throws<OptionException>(() => ZonedNamespace.OpenFile(path, Small() with { Uuid = Guid.NewGuid() })).Option);
    }

    [Theory]
    [InlineData("zoned.zrwas=8K", "zoned.zrwas", "4K", "8K")]
    [InlineData("zoned.zrwafg=1K", "zoned.zrwafg", "2K", "1K")]
    [InlineData("zoned.numzrwa=2", "zoned.numzrwa", "3", "2")]
    [InlineData("mssrl=8", "mssrl", "16", "8")]
    [InlineData("mcl=32", "mcl", "64", "32")]
    [InlineData("msrc=1", "msrc", "3", "1")]
    [InlineData("nguid=ffeeddccbbaa99887766554433221100", "nguid", "00112233445566778899aabbccddeeff", "ffeeddccbbaa99887766554433221100")]
    [InlineData("eui64=0x1", "eui64", "0x0011223344556677", "0x0000000000000001")]
    [InlineData("uuid=00000000-0000-4000-8000-000000000001", "uuid", "6b3f1c1e-0d7a-4c1e-9d0a-0123456789ab", "00000000-0000-4000-8000-000000000001")]
    [InlineData("zoned.cross_read=off", "zoned.cross_read", "on", "off")]
    [InlineData("zoned.max_active=8", "zoned.max_active", "6", "8")]
    public void ADifferentValueOfAnOptionThatDescribesTheNamespace_IsRefusedNamingItAndBothValues(string change, string option, string kept, string given)
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        using (ZonedNamespace.OpenFile(path, Everything())) { }
        var stored = ZonedNamespace.ReadStoredOptions(path)!;

        var ex = Assert.Throws<OptionException>(() => ZonedNamespace.OpenFile(path, stored.WithQemuOptions(change)));
        Assert.Equal(option, ex.Option);
        Assert.Contains($"keeps {option}={kept}, {option}={given} given", ex.Reason);
        Assert.Equal(EverythingKept[option], KeptOption.Find(option)!.ValueOf(ZonedNamespace.ReadKeptOptions(path)!)); // nothing written
        using (ZonedNamespace.OpenFile(path, stored.WithQemuOptions(change), StateMode.Reformat)) { }
        Assert.Equal(given, KeptOption.Find(option)!.ValueOf(ZonedNamespace.ReadKeptOptions(path)!));
    }

    [Theory]
    [InlineData("mdts=6")]
    [InlineData("zoned.zasl=2")]
    [InlineData("vsl=2")]
    [InlineData("zoned.auto_transition=on")]
    public void AControllerOptionGivenAtServeTimeAppliesToThatRun_AndTheKeptValueStays(string change)
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        using (ZonedNamespace.OpenFile(path, Everything())) { }
        var before = ZonedNamespace.ReadKeptOptions(path)!;
        var stored = ZonedNamespace.ReadStoredOptions(path)!;

        using (var ns = ZonedNamespace.OpenFile(path, stored.WithQemuOptions(change)))
        {
            var g = ns.Geometry;
            string name = change[..change.IndexOf('=')];
            string value = name switch
            {
                "mdts" => g.Mdts.ToString(),
                "zoned.zasl" => g.Zasl.ToString(),
                "vsl" => g.Vsl.ToString(),
                _ => g.AutoTransition ? "on" : "off",
            };
            Assert.Equal(change, $"{name}={value}");
        }
        Assert.Equal(before, ZonedNamespace.ReadKeptOptions(path));
    }

    [Fact]
    public void AFormat1StateFile_OpensWithItsZonesAndTheDefaultsItWasServedWith_AndIsKeptAsFormat2()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        var uuid = Guid.Parse("11111111-2222-4333-8444-555555555555");
        var zones = EmptyZones(8, 16);
        zones[0] = (3, ZoneState.Closed);
        zones[2] = (32 + 12, ZoneState.Full);
        File.WriteAllBytes(path + ".zns", Format1File(slotSize: 4096, Backstore, zoneLbas: 16, capLbas: 12, ext: 64, uuid,
            maxOpen: 4, maxActive: 6, (Sequence: 5, Zones: zones)));

        var old = ZonedNamespace.ReadKeptOptions(path)!;
        Assert.Equal(1, old.Format);
        Assert.Equal(new KeptNamespaceOptions
        {
            Format = 1, LogicalBlockSize = 512, ZoneSize = 16 * 512, ZoneCapacity = 12 * 512, MaxOpen = 4, MaxActive = 6,
            DescriptorExtensionSize = 64, Uuid = uuid, Mdts = 7,
        }, old);
        Assert.All(KeptOption.All, o => Assert.Equal(o.Since <= 1, old.Keeps(o)));

        using (var ns = ZonedNamespace.OpenFile(path, ZonedNamespace.ReadStoredOptions(path)!))
        {
            Assert.Equal(uuid, ns.Uuid);
            Assert.Equal((ZoneState.Closed, 3ul), (ns.GetZone(0).State, ns.GetZone(0).WritePointer));
            Assert.Equal(ZoneState.Full, ns.GetZone(2).State);
            Assert.False(ns.Geometry.ZrwaSupported);
            Assert.Equal(((ushort)128, 128u, (byte)127, (byte)7), (ns.Geometry.Mssrl, ns.Geometry.Mcl, ns.Geometry.Msrc, ns.Geometry.Vsl));
        }
        var now = ZonedNamespace.ReadKeptOptions(path)!;
        Assert.Equal(old with { Format = KeptNamespaceOptions.CurrentFormat }, now);
        Assert.Equal(8192, new FileInfo(path + ".zns").Length); // the slots did not need to grow
    }

    [Fact]
    public void TheFirstOpenOfAFormat1StateFile_KeepsTheOptionsItDidNotKeepYet_AndStillRefusesADifferentGeometry()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        // Format 1 kept max_open as in effect: max_active's value when only max_active was given.
        File.WriteAllBytes(path + ".zns", Format1File(4096, Backstore, 16, 12, 64, Guid.NewGuid(), 6, 6, (1, EmptyZones(8, 16))));
        var stored = ZonedNamespace.ReadStoredOptions(path)!;

        Assert.Equal("zoned.zone_capacity", Assert.Throws<OptionException>(() =>
            ZonedNamespace.OpenFile(path, stored.WithQemuOptions("zoned.zone_capacity=4K"))).Option);
        // Such a file was served with its ZRWA and Copy options given every time: the first open takes them.
        using (var ns = ZonedNamespace.OpenFile(path, stored.WithQemuOptions("zoned.zrwas=2K,zoned.numzrwa=2,mcl=32")))
        {
            Assert.Equal(4ul, ns.Geometry.ZrwaSizeLbas);
        }
        var kept = ZonedNamespace.ReadKeptOptions(path)!;
        Assert.Equal((KeptNamespaceOptions.CurrentFormat, 2048L, 2u, 32u), (kept.Format, kept.Zrwas, kept.NumZrwa, kept.Mcl));
        Assert.Equal("zoned.zrwas", Assert.Throws<OptionException>(() => ZonedNamespace.OpenFile(path, stored)).Option);
    }

    [Fact]
    public void AFormat1StateFileWhoseSlotsMustGrow_KeepsItsNewestCommit()
    {
        // 248 zones: format 1 fills a 4 KiB slot exactly, format 2's larger header needs 8 KiB.
        const uint Zones = 248;
        using var dir = new TempDir();
        string path = NewBackstore(dir, Zones * 16 * 512);
        var older = EmptyZones(Zones, 16);
        older[0] = (2, ZoneState.Closed);
        var newest = EmptyZones(Zones, 16);
        newest[0] = (7, ZoneState.Closed);
        newest[247] = (247 * 16 + 1, ZoneState.Closed);
        // Commit 3 is in slot 1, which starts at another offset once the slots are 8 KiB.
        File.WriteAllBytes(path + ".zns", Format1File(4096, Zones * 16 * 512, 16, 16, 0, Guid.NewGuid(), 0, 0, (2, older), (3, newest)));

        var geometry = ZoneGeometry.Create(ZonedNamespace.ReadStoredOptions(path)!, Zones * 16 * 512);

        // A crash right after the state file is opened for commits, before the first one: the newest commit is
        // still there, in the larger slots.
        ZoneStateFile.OpenForCommits(path + ".zns", geometry, lastSequence: 3).Dispose();
        Assert.Equal(2 * 8192, new FileInfo(path + ".zns").Length);
        Assert.False(File.Exists(path + ".zns.resize"));
        var loaded = ZoneStateFile.TryLoad(path + ".zns")!;
        Assert.Equal((3ul, 1), (loaded.Sequence, loaded.Kept.Format));
        Assert.Equal(7ul, loaded.Zones[0].WritePointer);

        using (var ns = ZonedNamespace.OpenFile(path, ZonedNamespace.ReadStoredOptions(path)!))
        {
            Assert.Equal(7ul, ns.GetZone(0).WritePointer);
            Assert.Equal(247ul * 16 + 1, ns.GetZone(247).WritePointer);
        }
        Assert.Equal(KeptNamespaceOptions.CurrentFormat, ZonedNamespace.ReadKeptOptions(path)!.Format);
    }

    [Theory]
    [InlineData("timing", true)]
    [InlineData("timing.read_us", true)]
    [InlineData("nsid", true)]
    [InlineData("physical_block_size", true)]
    [InlineData("zoned.zrwas", false)]
    [InlineData("zrwas", false)]
    [InlineData("mcl", false)]
    [InlineData("ms", false)]
    public void OptionsThatAreNotKept_HaveAReasonToRefuseThem(string name, bool refused)
    {
        Assert.Equal(refused, KeptOption.WhyNotKept(name, new NamespaceOptions()) is not null);
        Assert.Equal(refused, KeptOption.Find(name) is null && name != "ms");
    }

    [Fact]
    public void AConventionalNamespaceKeepsNoZoneOption()
    {
        var conventional = new NamespaceOptions { Zoned = false };
        Assert.Contains("zoned=off", KeptOption.WhyNotKept("zoned.zrwas", conventional));
        Assert.Contains("zoned=off", KeptOption.WhyNotKept("zone_size", conventional));
        Assert.Null(KeptOption.WhyNotKept("mcl", conventional));
        Assert.Null(KeptOption.WhyNotKept("zoned", conventional));
    }

    private static (ulong WritePointer, ZoneState State)[] EmptyZones(uint count, ulong zoneLbas) =>
        Enumerable.Range(0, (int)count).Select(i => ((ulong)i * zoneLbas, ZoneState.Empty)).ToArray();

    /// <summary>
    /// A state file as format 1 wrote it (written out here field by field, not by the current code): the geometry
    /// header of 128 bytes, then 16-byte zone records and zeroed descriptor extensions; each commit in slot
    /// sequence mod 2.
    /// </summary>
    private static byte[] Format1File(int slotSize, long backstoreLength, ulong zoneLbas, ulong capLbas, int ext, Guid uuid,
        uint maxOpen, uint maxActive, params (ulong Sequence, (ulong WritePointer, ZoneState State)[] Zones)[] commits)
    {
        var file = new byte[2 * slotSize];
        foreach (var (sequence, zones) in commits)
        {
            var s = file.AsSpan((int)(sequence % 2) * slotSize, slotSize);
            "ZNSSTATE"u8.CopyTo(s);
            BinaryPrimitives.WriteInt32LittleEndian(s[8..], 1);
            BinaryPrimitives.WriteUInt64LittleEndian(s[16..], sequence);
            BinaryPrimitives.WriteInt64LittleEndian(s[24..], backstoreLength);
            BinaryPrimitives.WriteInt32LittleEndian(s[32..], 512);
            s[36] = 1;
            BinaryPrimitives.WriteUInt64LittleEndian(s[40..], zoneLbas);
            BinaryPrimitives.WriteUInt64LittleEndian(s[48..], capLbas);
            BinaryPrimitives.WriteUInt32LittleEndian(s[56..], (uint)zones.Length);
            BinaryPrimitives.WriteInt32LittleEndian(s[60..], ext);
            uuid.TryWriteBytes(s.Slice(64, 16));
            BinaryPrimitives.WriteUInt32LittleEndian(s[80..], maxOpen);
            BinaryPrimitives.WriteUInt32LittleEndian(s[84..], maxActive);
            s[88] = 0;   // cross read
            s[89] = 1;   // auto transition
            s[90] = 7;   // mdts
            s[91] = 0;   // zasl
            for (int i = 0; i < zones.Length; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(s[(128 + i * 16)..], zones[i].WritePointer);
                s[128 + i * 16 + 8] = (byte)zones[i].State;
            }
            int used = 128 + zones.Length * (16 + ext);
            BinaryPrimitives.WriteUInt32LittleEndian(s[12..], Crc32C.Compute(s[16..used]));
        }
        return file;
    }
}

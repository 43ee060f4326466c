using System.Buffers.Binary;
using System.Text;
using Zns.Core.Zones;
using Zns.Nvme;
using static Zns.Core.Tests.TestNamespaces;

namespace Zns.Core.Tests;

/// <summary>The guards (known vectors), the PI rules of each check, and metadata kept beside the data across reset and reopen.</summary>
public class ProtectionInformationTests
{
    private static void Ok(NvmeStatus s, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(s))] string? what = null) =>
        Assert.True(s.IsSuccess, $"{what}: {s}");

    private static byte[] Incrementing(int n) => Enumerable.Range(0, n).Select(i => (byte)i).ToArray();
    private static byte[] Decrementing(int n) => Enumerable.Range(0, n).Select(i => (byte)(0xFF - i)).ToArray();

    [Fact]
    public void Crc16T10DifMatchesTheCheckValueAndTheSpecificationsVectors()
    {
        Assert.Equal(0xD0DB, Crc16T10Dif.Compute(Encoding.ASCII.GetBytes("123456789")));
        // 16b guard test cases of the NVM command set specification: 32 bytes each.
        Assert.Equal(0x0000, Crc16T10Dif.Compute(new byte[32]));
        Assert.Equal(0xA293, Crc16T10Dif.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()));
        Assert.Equal(0x0224, Crc16T10Dif.Compute(Incrementing(32)));
        // Continuing over a split gives the same CRC.
        byte[] data = Incrementing(32);
        Assert.Equal(Crc16T10Dif.Compute(data), Crc16T10Dif.Update(Crc16T10Dif.Compute(data.AsSpan(0, 13)), data.AsSpan(13)));
    }

    [Fact]
    public void Crc64NvmeMatchesTheCheckValueAndTheSpecificationsVectors()
    {
        Assert.Equal(0xAE8B14860A799888UL, Crc64Nvme.Compute(Encoding.ASCII.GetBytes("123456789")));
        // 64b guard test cases of the NVM command set specification: 4 KiB each.
        Assert.Equal(0x6482D367EB22B64EUL, Crc64Nvme.Compute(new byte[4096]));
        Assert.Equal(0xC0DDBA7302ECA3ACUL, Crc64Nvme.Compute(Enumerable.Repeat((byte)0xFF, 4096).ToArray()));
        Assert.Equal(0x3E729F5F6750449CUL, Crc64Nvme.Compute(Incrementing(4096)));
        Assert.Equal(0x9A2DF64B8E9E517EUL, Crc64Nvme.Compute(Decrementing(4096)));
    }

    private static NamespaceOptions Pi(byte type, ushort ms = 8, byte pif = 0, bool first = false, bool extended = false) => Small() with
    {
        MetadataSize = ms, PiType = type, Pif = pif, PiFirst = first, MetadataExtended = extended,
    };

    private static ProtectionFields Fields(byte prinfo, ulong reftag, ushort app = 0, ushort mask = 0xFFFF, bool remap = false) =>
        new(prinfo, remap, reftag, app, mask);

    private const byte Pract = ProtectionFields.PractBit;
    private const byte CheckAll = ProtectionFields.CheckMask;

    [Theory]
    [InlineData(1, 8, 0, false)]
    [InlineData(2, 8, 0, true)]
    [InlineData(3, 16, 0, false)]
    [InlineData(1, 16, 2, false)]
    [InlineData(2, 24, 2, true)]
    [InlineData(3, 16, 2, false)]
    public void GeneratedPiPassesEveryCheckAndEachCorruptionFailsItsOwn(byte type, ushort ms, byte pif, bool first)
    {
        using var ns = Ram(Pi(type, ms, pif, first));
        byte[] data = Blocks(4, 0x5A);
        // PRACT moves no metadata when it is only the PI; more metadata than that still comes from the host.
        byte[] extra = ms == (pif == 2 ? 16 : 8) ? [] : new byte[4 * ms];
        Ok(ns.Write(16, data, extra, Fields(Pract, 16, app: 0x1234)));
        var back = new byte[data.Length];
        var md = new byte[4 * ms];
        Ok(ns.Read(16, back, md, Fields(CheckAll, 16, app: 0x1234)));
        Assert.Equal(data, back);
        MetadataFormat format = ns.Geometry.Metadata;
        (ulong guard, ushort app, ulong reference) = ProtectionInformation.ReadTuple(format, md.AsSpan(format.PiOffset, format.PiSize));
        Assert.Equal(ProtectionInformation.Guard(format, data.AsSpan(0, 512), md.AsSpan(0, ms)), guard);
        Assert.Equal(0x1234, app);
        Assert.Equal(16UL, reference);

        // The PI read back is the host's to write again without PRACT: its guard and application tag pass the checks.
        Ok(ns.Write(32, data, md, Fields(ProtectionFields.CheckGuard | ProtectionFields.CheckApplicationTag, 32, app: 0x1234)));
        Assert.Equal(NvmeStatus.EndToEndApplicationTagCheckError, ns.Read(16, back, md, Fields(ProtectionFields.CheckApplicationTag, 16, app: 0x4321)));
        Assert.True(ns.Read(16, back, md, Fields(ProtectionFields.CheckApplicationTag, 16, app: 0x4321, mask: 0)).IsSuccess, "a zero mask checks nothing");
        if (type != 3)
        {
            NvmeStatus wrongRef = ns.Read(16, back, md, Fields(ProtectionFields.CheckReferenceTag, 17));
            Assert.Equal(type == 1 ? NvmeStatus.InvalidProtectionInformation.WithDnr() : NvmeStatus.EndToEndReferenceTagCheckError, wrongRef);
        }
        var corrupt = (byte[])data.Clone();
        corrupt[700] ^= 1;
        var hostMd = new byte[4 * ms];
        Ok(ns.Read(16, back, hostMd, Fields(0, 16)));
        Assert.Equal(NvmeStatus.EndToEndGuardCheckError, ns.Write(48, corrupt, hostMd, Fields(ProtectionFields.CheckGuard, 16)));
        Assert.Equal(48UL, ns.GetZone(3).WritePointer);
    }

    [Fact]
    public void UnwrittenAndResetBlocksReadWithPiThatNoCheckLooksAt()
    {
        using var ns = Ram(Pi(1));
        Ok(ns.Write(16, Blocks(2, 1), [], Fields(Pract, 16)));
        Ok(ns.ZoneManagementSend(16, ZoneSendAction.Reset, false));
        var data = new byte[4 * 512];
        var md = new byte[4 * 8];
        Ok(ns.Read(16, data, md, Fields(CheckAll, 16)));
        Assert.All(data, b => Assert.Equal(0, b));
        Assert.All(md, b => Assert.Equal(0xFF, b));
    }

    [Fact]
    public void ZoneAppendRemapsReferenceTagsToTheAssignedLba()
    {
        using var ns = Ram(Pi(1));
        Ok(ns.Append(16, Blocks(3, 1), [], Fields(Pract | ProtectionFields.CheckReferenceTag, 16, remap: true), out ulong first));
        // The host's PI names the zone start; PIREMAP moves it to where the blocks landed.
        var hostMd = new byte[2 * 8];
        byte[] data = Blocks(2, 2);
        ProtectionInformation.Generate(ns.Geometry.Metadata, 512, data, hostMd, 0, 16);
        Ok(ns.Append(16, data, hostMd, Fields(CheckAll, 16, remap: true), out ulong second));
        Assert.Equal(16UL, first);
        Assert.Equal(19UL, second);
        var md = new byte[5 * 8];
        Ok(ns.Read(16, new byte[5 * 512], md, Fields(CheckAll, 16)));
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal((uint)(16 + i), BinaryPrimitives.ReadUInt32BigEndian(md.AsSpan(i * 8 + 4)));
        }
        // Type 1 needs PIREMAP.
        Assert.Equal(NvmeStatus.InvalidProtectionInformation.WithDnr(), ns.Append(16, data, [], Fields(Pract, 16), out _));
    }

    [Fact]
    public void ExtendedLbaInterleavesMetadataWithTheData()
    {
        using var ns = Ram(Pi(2, ms: 16, extended: true));
        var host = new byte[2 * (512 + 16)];
        new Random(5).NextBytes(host);
        // Without PI checks the metadata is stored as given, the PI tuple included.
        Ok(ns.Write(16, host, [], Fields(0, 0)));
        var back = new byte[host.Length];
        Ok(ns.Read(16, back, [], Fields(0, 0)));
        Assert.Equal(host, back);
        // PRACT with more metadata than the PI still moves the metadata; a data-only buffer is refused.
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), ns.Read(16, new byte[1024], [], Fields(Pract, 16)));
    }

    [Fact]
    public void WriteZeroesGeneratesPiWithPractAndRefusesChecks()
    {
        using var ns = Ram(Pi(1, ms: 16, pif: 2));
        Assert.Equal(NvmeStatus.InvalidProtectionInformation.WithDnr(), ns.WriteZeroes(16, 2, Fields(ProtectionFields.CheckGuard, 16)));
        Ok(ns.WriteZeroes(16, 2, Fields(Pract, 16, app: 7)));
        var md = new byte[2 * 16];
        Ok(ns.Read(16, new byte[1024], md, Fields(CheckAll, 16, app: 7)));
        Assert.Equal(Crc64Nvme.Compute(new byte[512]), BinaryPrimitives.ReadUInt64BigEndian(md));
        Assert.Equal(17UL, ProtectionInformation.ReadTuple(ns.Geometry.Metadata, md.AsSpan(16)).ReferenceTag);
    }

    [Fact]
    public void MetadataSurvivesReopenAndTheOptionsAreKept()
    {
        using var dir = new TempDir();
        string path = dir.File("pi.raw");
        var options = Pi(1, ms: 16, pif: 2, first: true);
        long size = 8 * 16 * (512 + 16);
        using (var f = File.Create(path)) { f.SetLength(size); }
        using (var ns = ZonedNamespace.OpenFile(path, options))
        {
            Assert.Equal(128UL, ns.Geometry.NamespaceSizeLbas);
            Assert.Equal(128L * 512, ns.Geometry.MetadataOffset);
            Ok(ns.Write(16, Blocks(3, 9), [], Fields(Pract, 16), fua: true));
        }
        KeptNamespaceOptions kept = ZonedNamespace.ReadKeptOptions(path)!;
        Assert.Equal(((ushort)16, false, (byte)1, true, (byte)2), (kept.MetadataSize, kept.MetadataExtended, kept.PiType, kept.PiFirst, kept.Pif));
        using (var ns = ZonedNamespace.OpenFile(path, ZonedNamespace.ReadStoredOptions(path)!))
        {
            Assert.Equal(ns.Geometry.Metadata, new MetadataFormat(16, false, 1, true, 2));
            var md = new byte[3 * 16];
            Ok(ns.Read(16, new byte[3 * 512], md, Fields(CheckAll, 16)));
            Assert.Equal(18UL, ProtectionInformation.ReadTuple(ns.Geometry.Metadata, md.AsSpan(32)).ReferenceTag);
        }
        var ex = Assert.Throws<OptionException>(() => ZonedNamespace.OpenFile(path, options with { PiType = 2 }));
        Assert.Equal("pi", ex.Option);
    }

    [Theory]
    [InlineData("pi=4", "pi", "invalid 'pi' value")]
    [InlineData("pi=1,pif=1,ms=16", "pif", "invalid 'pif'")]
    [InlineData("pi=1,ms=4", "ms", "at least 8 bytes of metadata required")]
    [InlineData("pi=1,pif=2,ms=8", "ms", "at least 16 bytes of metadata required")]
    [InlineData("ms=65536", "ms", "invalid number")]
    [InlineData("zoned=off,ms=8", "ms", "zoned namespaces only")]
    public void BadValuesAreRefusedNamingTheOption(string list, string option, string message)
    {
        var ex = Assert.Throws<OptionException>(() => ZonedNamespace.CreateInMemory(1 << 20, Small().WithQemuOptions(list)));
        Assert.Equal(option, ex.Option);
        Assert.Contains(message, ex.Message);
    }
}
